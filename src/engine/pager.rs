//! Many pages at once in one process: the engine's [`Pager`], which a
//! long-running server (`callbook serve`) hosts.
//!
//! Every page of a pager runs the same ladder as `callbook run` does (the
//! same planning, recording, dispatch, callback matching and resume code),
//! with what one process shares between pages:
//!
//! - **one provider connection**: one client (one login, its token renewed
//!   for everyone) and one rate limiter for the account, so the account's
//!   limit holds across every page at once;
//! - **one callback sink** ([`PagerSink`]): each callback is recorded once,
//!   then routed to the page it is about (a call's `END` by its `uid`, else
//!   by its numbers; an SMS by its short code, or bare to every page going
//!   that has called the sender; a call-back likewise);
//! - **no per-page polling**: a waiting page sleeps until its next deadline
//!   (the end of its wait, an outcome overdue, a retry due) and is woken in
//!   process by the sink or [`Pager::ack`]; one look per second at the
//!   journal, for all pages at once, finds acknowledgements recorded by other
//!   processes (`callbook ack`).
//!
//! Pages take no per-playbook run lock: pages of one playbook with different
//! keys run at once; a page's key (`{route}:{dedup key}`) is checked and the
//! page recorded in one step of the store, so one alert makes one page.
//! Everything durable goes through [`Store`]: after a restart,
//! [`Pager::resume_going`] continues every page the journal shows going.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::page::{self, CallMatch, PageSink, PageState, Served, SmsVerdict};
use super::{Context, EngineError, Observer, Provider, Resume, RunOptions};
use crate::escape::escape_controls;
use crate::listener::{CallbackSink, SinkError};
use crate::model::callback::Callback;
use crate::model::{AckRecord, AckResult, AckVia, Outcome, RunState, Status, Timestamp};
use crate::plan::RunInput;
use crate::playbook::{Playbook, ProviderSettings};
use crate::provider::limiter::RateLimiter;
use crate::provider::{self, Client, Credentials};
use crate::report::Report;
use crate::store::{Store, StoreError};

/// How often the pager looks at the journal for acknowledgements recorded
/// by other processes, for all its pages at once.
const ACK_LOOK: Duration = Duration::from_secs(1);
/// The longest `by` of a hand acknowledgement kept, in characters.
const MAX_BY_CHARS: usize = 200;
/// The longest note of a hand acknowledgement kept, in characters.
const MAX_NOTE_CHARS: usize = 2000;
/// How long a firing alert waits for the page of its key that a resolve
/// cancelled to end (its requests in flight finish) before it is planned:
/// a flapping alert then gets a page of its own, not a repeat of the
/// cancelled one.
const RESOLVING_WAIT: Duration = Duration::from_secs(10);

/// What a pager takes: plain, checked values (the server validates its own
/// configuration and environment into these once).
#[derive(Clone, Debug)]
pub struct PagerOptions {
    /// The one FoneStorm account every page calls through; `None`: every start is refused.
    pub credentials: Option<Credentials>,
    /// Overrides the provider's base URL.
    pub base_url: Option<String>,
    /// The password FoneStorm's callbacks carry (`CALLBOOK_CALLBACK_SECRET`).
    pub callback_secret: crate::listener::CallbackSecret,
    /// Also keep the rendered messages in the store.
    pub journal_messages: bool,
    /// The account's rate limit (requests per second); default as `run`'s.
    pub rate_limit: Option<f64>,
}

/// What became of an alert given to [`Pager::start`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// A page was recorded and runs in the background.
    Started {
        /// Its run.
        run_id: String,
    },
    /// A page with the same key is going, or ended acknowledged or exhausted
    /// within the playbook's `dedup.window`: nothing was recorded, nobody called.
    Deduplicated {
        /// The page that makes this alert a repeat.
        run_id: String,
    },
}

/// What became of a hand acknowledgement ([`Pager::ack`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandAck {
    /// Recorded; the page stops.
    Acknowledged,
    /// No such page.
    Unknown,
    /// The page already ended: nothing was recorded.
    Ended,
}

/// A page going, as [`Pager::active`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivePage {
    /// Its run.
    pub run_id: String,
    /// The webhook route that started it.
    pub route: String,
    /// Its key: `{route}:{rendered dedup.key}` (or the fallback key).
    pub key: String,
    /// Its short code.
    pub code: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// The step going, once a round started.
    pub step: Option<String>,
    /// The round going in that step.
    pub round: Option<u32>,
}

/// Hears what a pager does, for metrics. Every method does nothing by
/// default; none may block (they are called from the pages' tasks).
pub trait PagerObserver: Send + Sync + 'static {
    /// A page started for `route`.
    fn page_started(&self, _route: &str) {}
    /// A page of `route` ended with `outcome`; `time_to_ack` when acknowledged.
    fn page_ended(&self, _route: &str, _outcome: &str, _time_to_ack: Option<Duration>) {}
    /// A call of playbook `playbook` finished with `status`.
    fn call_finished(&self, _playbook: &str, _status: Status) {}
    /// A call of playbook `playbook` ended with `disposition` (its `END` callback).
    fn disposition(&self, _playbook: &str, _disposition: &str) {}
    /// A FoneStorm request to `endpoint` was answered with `code` (0: no answer).
    fn provider_request(&self, _endpoint: &str, _code: u16) {}
    /// A request waited `waited` for the rate limit.
    fn rate_limit_wait(&self, _waited: Duration) {}
}

/// Runs many pages at once in one process; see the module documentation.
///
/// Cheap to clone: every clone is the same pager.
pub struct Pager<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Pager<S> {
    fn clone(&self) -> Self {
        Pager {
            inner: self.inner.clone(),
        }
    }
}

/// What every clone of a pager, its pages' tasks and its sink share.
struct Inner<S: Store> {
    store: Arc<S>,
    options: PagerOptions,
    observer: Arc<dyn PagerObserver>,
    /// The account's client and limiter; `None` without credentials.
    provider: Option<Provider>,
    /// Fired by [`Pager::shutdown`]: no new call, every page records its state.
    shutdown: CancellationToken,
    /// The pages going in this process, by run id.
    pages: Mutex<HashMap<String, Going<S>>>,
    /// The tasks of the pages, by run id, to abort what `shutdown` cannot wait for.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Told whenever a page's task ends.
    ended: tokio::sync::Notify,
    /// Whether the look at the journal for acknowledgements runs.
    looking: AtomicBool,
}

/// A page going in this process.
struct Going<S: Store> {
    route: String,
    key: String,
    code: String,
    started_at: String,
    playbook: String,
    resolved: CancellationToken,
    /// Its live state and its sink, once its ladder runs.
    live: Option<Live<S>>,
}

/// A page's live state and the sink that acts on its callbacks.
struct Live<S: Store> {
    state: Arc<Mutex<PageState>>,
    sink: Arc<PageSink<S>>,
}

impl<S: Store> Pager<S> {
    /// A pager over `store`, telling `observer` what it does.
    ///
    /// # Errors
    /// [`EngineError::BaseUrl`] for an unusable base URL, [`EngineError::Client`]
    /// when the client cannot be built.
    pub fn new(
        store: Arc<S>,
        options: PagerOptions,
        observer: Arc<dyn PagerObserver>,
    ) -> Result<Pager<S>, EngineError> {
        let defaults = ProviderSettings::default();
        let base = options.base_url.clone().unwrap_or(defaults.base_url);
        let base = provider::check_base_url(&base).map_err(EngineError::BaseUrl)?;
        let provider = match options.credentials.clone() {
            None => None,
            Some(credentials) => {
                let heard = observer.clone();
                let client = Client::new(base, credentials, defaults.timeout)
                    .map_err(EngineError::Client)?
                    .with_request_hook(Arc::new(move |endpoint, code| {
                        heard.provider_request(endpoint, code);
                    }));
                let waited = observer.clone();
                let limiter = RateLimiter::new(options.rate_limit.unwrap_or(defaults.rate_limit))
                    .with_wait_hook(Arc::new(move |d| waited.rate_limit_wait(d)));
                Some(Provider {
                    client: Arc::new(client),
                    limiter: Arc::new(limiter),
                })
            }
        };
        Ok(Pager {
            inner: Arc::new(Inner {
                store,
                options,
                observer,
                provider,
                shutdown: CancellationToken::new(),
                pages: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                ended: tokio::sync::Notify::new(),
                looking: AtomicBool::new(false),
            }),
        })
    }

    /// Plans, dedups and records the page (run, timeline, key, route,
    /// sources) before returning [`Intake::Started`]; the ladder then runs
    /// in the background on the current runtime.
    ///
    /// The key is `{route}:{rendered dedup.key}`, or `{route}:{fallback_key}`
    /// when the playbook sets no `dedup.key`. A page going with that key, or
    /// one that ended acknowledged or exhausted within `dedup.window`, makes
    /// this a repeat ([`Intake::Deduplicated`]: nothing recorded, nobody called).
    ///
    /// # Errors
    /// [`EngineError::Plan`] or [`EngineError::TooManyCalls`] (nothing is
    /// recorded), [`EngineError::NoCredentials`], [`EngineError::ShuttingDown`]
    /// once [`Pager::shutdown`] began, or the store's error.
    ///
    /// A broadcast (a playbook without `escalation`) runs once per key the
    /// same way: deduplicated while one with that key is going in this
    /// process (its calls also keep the playbook's per-call `dedup` window);
    /// resolving its alert starts no further call of it; it is not resumed
    /// after a restart and records no dispositions.
    pub async fn start(
        &self,
        route: &str,
        playbook: Arc<Playbook>,
        input: RunInput,
        sources: Vec<(String, String)>,
        fallback_key: &str,
    ) -> Result<Intake, EngineError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        self.await_resolving(route, &playbook, &input, fallback_key)
            .await;
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        self.spawn(Launch {
            route: route.to_string(),
            fallback_key: fallback_key.to_string(),
            playbook,
            input,
            sources,
            resume: None,
        })
        .await
    }

    /// Waits, up to [`RESOLVING_WAIT`], until no page of this alert's key
    /// that its resolve cancelled is still ending in this process: such a
    /// page holds its key until it ends, and an alert firing again meanwhile
    /// would be taken for its repeat and page nobody.
    async fn await_resolving(
        &self,
        route: &str,
        playbook: &Playbook,
        input: &RunInput,
        fallback_key: &str,
    ) {
        // A payload that cannot be planned is refused by `spawn` with its diagnostics.
        let Ok(key) = page::served_key(playbook, input, route, fallback_key) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + RESOLVING_WAIT;
        loop {
            let ended = self.inner.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let resolving = self
                .inner
                .lock_pages()
                .values()
                .any(|g| g.key == key && g.resolved.is_cancelled());
            if !resolving {
                return;
            }
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                waited = tokio::time::timeout_at(deadline, ended) => if waited.is_err() {
                    tracing::warn!(
                        "a page of this alert's key, cancelled by its resolve, is still ending after {}s",
                        RESOLVING_WAIT.as_secs()
                    );
                    return;
                },
            }
        }
    }

    /// The alert resolved: ends the page going for its key with outcome
    /// `cancelled` (calls not yet sent are skipped `cancelled: the alert
    /// resolved`; calls in flight finish and are recorded). Returns its run
    /// id, or `None` when none is going. The page ends in the background.
    ///
    /// # Errors
    /// [`EngineError::Plan`] when the key cannot be rendered from `input`.
    pub async fn resolve(
        &self,
        route: &str,
        playbook: &Playbook,
        input: &RunInput,
        fallback_key: &str,
    ) -> Result<Option<String>, EngineError> {
        let key = page::served_key(playbook, input, route, fallback_key)?;
        let pages = self.inner.lock_pages();
        let found = pages
            .iter()
            .find(|(_, g)| g.key == key && !g.resolved.is_cancelled())
            .map(|(id, g)| (id.clone(), g.resolved.clone()));
        drop(pages);
        Ok(found.map(|(run_id, resolved)| {
            tracing::info!(
                run = run_id.as_str(),
                "the alert resolved: cancelling the page"
            );
            resolved.cancel();
            run_id
        }))
    }

    /// A hand acknowledgement (like `callbook ack`), recorded and acted on
    /// at once. `by` and `note` are cut to 200 and 2000 characters.
    ///
    /// # Errors
    /// When the journal cannot be written.
    pub async fn ack(
        &self,
        run_id: &str,
        by: &str,
        note: Option<String>,
    ) -> Result<HandAck, EngineError> {
        let record = AckRecord {
            by: by.trim().chars().take(MAX_BY_CHARS).collect(),
            via: AckVia::Manual,
            at: Timestamp::now(),
            text: note.map(|n| n.chars().take(MAX_NOTE_CHARS).collect()),
        };
        let result = self
            .inner
            .store
            .record_ack(run_id, record)
            .await
            .map_err(EngineError::Store)?;
        Ok(match result {
            AckResult::Recorded => {
                self.inner.wake(run_id);
                HandAck::Acknowledged
            }
            AckResult::NoSuchRun | AckResult::NotAPage => HandAck::Unknown,
            AckResult::Ended(_) => HandAck::Ended,
        })
    }

    /// The run's report so far, as the journal holds it (a page or a
    /// broadcast, going or ended); `None` if there is no such run.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub async fn report(&self, run_id: &str) -> Result<Option<Report>, EngineError> {
        super::recorded::report(self.inner.store.as_ref(), run_id)
            .await
            .map_err(EngineError::Read)
    }

    /// The pages going in this process, oldest first.
    ///
    /// # Errors
    /// None today; a store shared between hosts may fail to answer.
    pub async fn active(&self) -> Result<Vec<ActivePage>, EngineError> {
        let pages = self.inner.lock_pages();
        let mut active: Vec<ActivePage> = pages
            .iter()
            .map(|(run_id, g)| {
                let current = g.live.as_ref().and_then(|live| {
                    live.state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .current
                        .clone()
                });
                ActivePage {
                    run_id: run_id.clone(),
                    route: g.route.clone(),
                    key: g.key.clone(),
                    code: g.code.clone(),
                    started_at: g.started_at.clone(),
                    step: current.as_ref().map(|(s, _)| s.clone()),
                    round: current.map(|(_, r)| r),
                }
            })
            .collect();
        drop(pages);
        active.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
        Ok(active)
    }

    /// The sink that receives FoneStorm's callbacks for every page of this
    /// pager: serve it with [`crate::listener::Listener::serve`].
    pub fn sink(&self) -> Arc<PagerSink<S>> {
        Arc::new(PagerSink {
            inner: Arc::downgrade(&self.inner),
            store: self.inner.store.clone(),
        })
    }

    /// At start: resumes every page a pager started that the journal shows
    /// going, from its recorded sources, as `run --resume` does (waits count
    /// from the recorded times, nobody is called twice, calls left `sending`
    /// are `unknown`). Returns how many were resumed; a page that cannot be
    /// resumed is logged and left as it is.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub async fn resume_going(&self) -> Result<usize, EngineError> {
        let store = self.inner.store.clone();
        store.ready().await.map_err(EngineError::Store)?;
        let going = store.served_pages().await.map_err(EngineError::Read)?;
        let mut resumed = 0;
        for served in going {
            if self.inner.lock_pages().contains_key(&served.run_id) {
                continue;
            }
            let run = served.run_id.clone();
            match self.resume_one(served).await {
                Ok(Intake::Started { .. }) => resumed += 1,
                Ok(Intake::Deduplicated { .. }) => {}
                // Its recorded sources no longer plan (or not as recorded):
                // no later start can resume it either, and left going it
                // would hold its key, so the same alert firing again would
                // page nobody. It ends `stopped`; its unsent calls stay
                // pending in the journal.
                Err(e @ (EngineError::Plan(_) | EngineError::PlanChanged { .. })) => {
                    tracing::error!(
                        run = run.as_str(),
                        "page {run} cannot be resumed: {e}; it is ended as stopped so that its alert can page again"
                    );
                    if let Err(why) = store.end_run(&run, RunState::Stopped).await {
                        tracing::error!(run = run.as_str(), "page {run} not ended: {why}");
                    }
                }
                Err(e) => tracing::error!(run = run.as_str(), "page {run} not resumed: {e}"),
            }
        }
        Ok(resumed)
    }

    /// Resumes one recorded page from its recorded sources.
    async fn resume_one(&self, served: crate::model::ServedPage) -> Result<Intake, EngineError> {
        let store = self.inner.store.as_ref();
        let text = store
            .page_sources(&served.run_id)
            .await
            .map_err(EngineError::Read)?
            .unwrap_or_default();
        let recorded = super::recorded::RecordedSources::parse(&text).map_err(|e| {
            EngineError::PlanChanged {
                run: served.run_id.clone(),
                what: format!("its recorded sources cannot be read: {e}"),
            }
        })?;
        let mut sources = crate::diag::Sources::default();
        let loaded =
            crate::playbook::load_recorded(Path::new(&served.path), &recorded.files, &mut sources)
                .map_err(EngineError::Plan)?;
        let input = RunInput {
            run_id: served.run_id.clone(),
            now: served.started_at.0,
            dry_run: false,
            vars: recorded.vars.clone(),
            input: recorded.input.clone(),
            selection: recorded.selection().unwrap_or_default(),
        };
        self.spawn(Launch {
            route: served.route,
            fallback_key: String::new(),
            playbook: Arc::new(loaded.playbook),
            input,
            sources: Vec::new(),
            resume: Some((served.run_id, served.key)),
        })
        .await
    }

    /// SIGTERM: starts no new call, lets requests in flight finish up to
    /// `within`, has every page record its state (pages stay going,
    /// resumable at the next start), then returns. A request still
    /// unanswered after `within` is left recorded as sent: after the
    /// restart its call is `unknown`, never dialled again.
    pub async fn shutdown(&self, within: Duration) {
        self.inner.shutdown.cancel();
        let drained = async {
            loop {
                let ended = self.inner.ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if self.inner.lock_tasks().is_empty() {
                    return;
                }
                ended.await;
            }
        };
        if tokio::time::timeout(within, drained).await.is_err() {
            let tasks: Vec<_> = self.inner.lock_tasks().drain().collect();
            tracing::warn!(
                pages = tasks.len(),
                "pages still finishing requests at the end of the drain: left as recorded"
            );
            for (_, task) in tasks {
                task.abort();
            }
        }
    }

    /// Starts the task of a new or resumed page; answers once it is recorded
    /// (or found a repeat, or refused).
    async fn spawn(&self, launch: Launch) -> Result<Intake, EngineError> {
        let Some(provider) = self.inner.provider.clone() else {
            return Err(EngineError::NoCredentials);
        };
        self.inner.look_for_acks();
        let (told, answer) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        let run_id = launch.input.run_id.clone();
        // Registered before the task can end, so that its end removes it.
        {
            let mut tasks = self.inner.lock_tasks();
            let task = tokio::spawn(run_page(inner, provider, launch, told));
            tasks.insert(run_id, task.abort_handle());
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) => Err(EngineError::Store(StoreError::Worker(
                "the page's task ended before it answered".to_string(),
            ))),
        }
    }
}

/// What a page's task needs to begin.
struct Launch {
    route: String,
    fallback_key: String,
    playbook: Arc<Playbook>,
    input: RunInput,
    sources: Vec<(String, String)>,
    /// The run to resume and its recorded key; `None`: a new page.
    resume: Option<(String, String)>,
}

/// Where a task answers once its run is recorded (or found a repeat, or refused).
type Told = tokio::sync::oneshot::Sender<Result<Intake, EngineError>>;

/// A broadcast's task: plans it, takes its key (or finds the broadcast
/// going with it), records it, answers `told`, then places its calls.
async fn run_broadcast<S: Store>(
    inner: Arc<Inner<S>>,
    provider: Provider,
    launch: Launch,
    told: Told,
) {
    let Launch {
        route,
        fallback_key,
        playbook,
        input,
        ..
    } = launch;
    let run_id = input.run_id.clone();
    let options = RunOptions {
        journal_messages: inner.options.journal_messages,
        ..RunOptions::default()
    };
    // Its alert resolving stops it like a shutdown does: no further call.
    let stop = inner.shutdown.child_token();
    let served = Served {
        route: route.clone(),
        fallback_key,
        resolved: stop.clone(),
        attach: Arc::new(|_| {}),
    };
    let ctx = inner.context(&playbook, &options, provider, stop.clone(), served);
    let claim = |key: String| {
        let mut pages = inner.lock_pages();
        if let Some((going, _)) = pages.iter().find(|(_, g)| g.key == key) {
            return Some(going.clone());
        }
        let going = Going {
            route,
            key,
            code: String::new(),
            started_at: crate::model::timestamp(input.now),
            playbook: playbook.name.clone(),
            resolved: stop.clone(),
            live: None,
        };
        pages.insert(run_id.clone(), going);
        None
    };
    let answered = |result: Result<Result<(), String>, EngineError>| {
        let intake = match result {
            Ok(Ok(())) => Ok(Intake::Started {
                run_id: run_id.clone(),
            }),
            Ok(Err(going)) => Ok(Intake::Deduplicated { run_id: going }),
            Err(e) => Err(e),
        };
        let _ = told.send(intake);
    };
    super::broadcast(ctx, &input, claim, answered).await;
    inner.forget(&run_id);
}

/// A page's task: begins the page (answering `told`), climbs its ladder,
/// and forgets it when it ends.
async fn run_page<S: Store>(inner: Arc<Inner<S>>, provider: Provider, launch: Launch, told: Told) {
    if launch.playbook.escalation.is_none() {
        return run_broadcast(inner, provider, launch, told).await;
    }
    let Launch {
        route,
        fallback_key,
        playbook,
        input,
        sources,
        resume,
    } = launch;
    let (resume, known_key) = resume.unzip();
    let run_id = input.run_id.clone();
    let options = RunOptions {
        journal_messages: inner.options.journal_messages,
        callback_secret: Some(Ok(inner.options.callback_secret.clone())),
        sources,
        resume: resume.clone().map(Resume::Run),
        ..RunOptions::default()
    };
    let resolved = CancellationToken::new();
    let attach = {
        let (weak, run_id, playbook) = (Arc::downgrade(&inner), run_id.clone(), playbook.clone());
        Arc::new(move |state: &Arc<Mutex<PageState>>| {
            if let Some(inner) = weak.upgrade() {
                let sink = Arc::new(PageSink::new(inner.store.clone(), state.clone(), &playbook));
                if let Some(going) = inner.lock_pages().get_mut(&run_id) {
                    going.live = Some(Live {
                        state: state.clone(),
                        sink,
                    });
                }
            }
        })
    };
    let served = Served {
        route: route.clone(),
        fallback_key,
        resolved: resolved.clone(),
        attach,
    };
    let ctx = inner.context(
        &playbook,
        &options,
        provider,
        inner.shutdown.clone(),
        served,
    );
    let begun = page::begin(&ctx, input).await;
    let begun = match begun {
        Err(e) => {
            inner.forget(&run_id);
            let _ = told.send(Err(e));
            return;
        }
        Ok(Err(repeat)) => {
            inner.forget(&run_id);
            let by = repeat
                .report
                .escalation
                .and_then(|e| e.deduplicated_by)
                .unwrap_or_default();
            let _ = told.send(Ok(Intake::Deduplicated { run_id: by }));
            return;
        }
        Ok(Ok(begun)) => begun,
    };
    let key = known_key.unwrap_or_else(|| begun.key.clone());
    inner.lock_pages().insert(
        run_id.clone(),
        Going {
            route: route.clone(),
            key,
            code: begun.code.clone(),
            started_at: crate::model::timestamp(begun.input.now),
            playbook: playbook.name.clone(),
            resolved,
            live: None,
        },
    );
    inner.observer.page_started(&route);
    let _ = told.send(Ok(Intake::Started {
        run_id: run_id.clone(),
    }));
    let (outcome, after) = match page::climb(&ctx, begun).await {
        Ok(finished) => {
            let escalation = finished.report.escalation;
            let outcome = escalation
                .as_ref()
                .and_then(|e| e.outcome.clone())
                .unwrap_or_else(|| "stopped".to_string());
            let after = escalation
                .and_then(|e| e.ack)
                .map(|a| Duration::from_secs(a.after_seconds));
            (outcome, after)
        }
        Err(e) => {
            // Before any call (a login refused): the page holds its key no longer.
            tracing::error!(run = run_id.as_str(), "page {run_id} stopped: {e}");
            if let Err(e) = inner.store.end_run(&run_id, RunState::Stopped).await {
                tracing::error!("{e}");
            }
            ("stopped".to_string(), None)
        }
    };
    inner.observer.page_ended(&route, &outcome, after);
    inner.forget(&run_id);
}

impl<S: Store> Inner<S> {
    /// The context one run of this pager works in: no run lock, the
    /// account's provider, stopped by `cancel`.
    fn context<'a>(
        &self,
        playbook: &'a Playbook,
        options: &'a RunOptions,
        provider: Provider,
        cancel: CancellationToken,
        served: Served,
    ) -> Context<'a, S> {
        Context {
            store: self.store.clone(),
            lock: None,
            playbook,
            options,
            observer: Arc::new(Relay {
                observer: self.observer.clone(),
                playbook: playbook.name.clone(),
            }),
            cancel,
            shared: Some(provider),
            served: Some(served),
        }
    }

    fn lock_pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, Going<S>>> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets page `run_id` (its task ends) and tells `shutdown`.
    fn forget(&self, run_id: &str) {
        self.lock_pages().remove(run_id);
        self.lock_tasks().remove(run_id);
        self.ended.notify_waiters();
    }

    /// Wakes page `run_id`'s ladder: an acknowledgement of it is recorded.
    fn wake(&self, run_id: &str) {
        if let Some(live) = self.lock_pages().get(run_id).and_then(|g| g.live.as_ref()) {
            live.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .acked
                .cancel();
        }
    }

    /// The pages whose ladder runs, with their playbook's name.
    fn live(&self) -> Vec<(String, Arc<PageSink<S>>)> {
        self.lock_pages()
            .values()
            .filter_map(|g| {
                g.live
                    .as_ref()
                    .map(|live| (g.playbook.clone(), live.sink.clone()))
            })
            .collect()
    }

    /// Starts the one look per second at the journal for acknowledgements
    /// recorded by other processes, unless it runs already.
    fn look_for_acks(self: &Arc<Self>) {
        if self.looking.swap(true, Ordering::SeqCst) {
            return;
        }
        let (weak, shutdown): (Weak<Inner<S>>, _) = (Arc::downgrade(self), self.shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(ACK_LOOK) => {}
                }
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if inner.lock_pages().is_empty() {
                    continue;
                }
                match inner.store.served_acks().await {
                    Ok(acked) => {
                        for run_id in acked {
                            inner.wake(&run_id);
                        }
                    }
                    Err(e) => tracing::warn!("cannot look for acknowledgements: {e}"),
                }
            }
        });
    }
}

/// Tells the pager's observer of each finished call of one playbook.
struct Relay {
    observer: Arc<dyn PagerObserver>,
    playbook: String,
}

impl Observer for Relay {
    fn call_finished(&self, _recipient: &str, _to: &str, outcome: &Outcome) {
        self.observer.call_finished(&self.playbook, outcome.status);
    }
}

/// Receives FoneStorm's callbacks for every page of a [`Pager`]: records
/// each one first, then routes it (see the module documentation).
pub struct PagerSink<S: Store> {
    inner: Weak<Inner<S>>,
    store: Arc<S>,
}

impl<S: Store> PagerSink<S> {
    /// Routes a call's `BEGIN`/`END` to the page whose call it is: by `uid`
    /// first, else the page with the latest call to that number.
    async fn call(
        &self,
        pages: &[(String, Arc<PageSink<S>>)],
        event: crate::model::callback::CallEvent,
    ) {
        let now = Timestamp::now();
        let mut best: Option<(&String, &Arc<PageSink<S>>, CallMatch)> = None;
        for (playbook, sink) in pages {
            let Some(found) = sink.match_call(&event, now) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((_, _, b)) => (found.by_uid, found.answered_at) > (b.by_uid, b.answered_at),
            };
            if better {
                best = Some((playbook, sink, found));
            }
        }
        let Some((playbook, sink, found)) = best else {
            page::unmatched(&event);
            return;
        };
        match sink.apply_call(event, found).await {
            Ok(Some(disposition)) => {
                if let Some(inner) = self.inner.upgrade() {
                    inner.observer.disposition(playbook, &disposition);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }
}

impl<S: Store> CallbackSink for PagerSink<S> {
    async fn receive(&self, callback: Callback) -> Result<(), SinkError> {
        page::record(self.store.as_ref(), &callback).await?;
        let pages = self.inner.upgrade().map(|i| i.live()).unwrap_or_default();
        match callback {
            Callback::Call(event) => self.call(&pages, event).await,
            Callback::Sms(sms) => {
                // With a short code only that page; bare, every page going
                // that has called the sender on that caller id.
                let mut acked = false;
                for (_, sink) in &pages {
                    if let SmsVerdict::Ack(person, text) = sink.sms_verdict(&sms) {
                        sink.record_ack(person, AckVia::Sms, Some(text)).await;
                        acked = true;
                    }
                }
                if !acked {
                    tracing::info!(
                        from = escape_controls(&sms.from).as_ref(),
                        "an SMS that acknowledges no page going: ignored"
                    );
                }
            }
            Callback::Inbound(call) => {
                let mut acked = false;
                for (_, sink) in &pages {
                    if let Some(person) = sink.call_back_person(&call) {
                        sink.record_ack(person, AckVia::CallBack, None).await;
                        acked = true;
                    }
                }
                if !acked {
                    tracing::info!(
                        from = escape_controls(&call.from).as_ref(),
                        "a call back that acknowledges no page going: ignored"
                    );
                }
            }
        }
        Ok(())
    }
}
