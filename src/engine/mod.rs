//! The engine: plans and places the calls of a run, or of a resume, against
//! a [`Store`], the provider and an [`Observer`], and stops when its
//! cancellation token fires.
//!
//! It knows no terminal, no command line and no process: no standard
//! streams, no signals, no runtime of its own, no exit codes. A front end
//! (the CLI, a long-running server) builds a [`RunOptions`] once, chooses
//! how to confirm and how to show progress through its [`Observer`], and
//! decides what each [`EngineError`] means to its caller.
//!
//! Everything that can refuse the run (the lock, the store, `max_calls`,
//! the base URL, credentials, a declined confirmation, a rejected login) is
//! checked before the first call. Once calls start, every planned call ends
//! in the report as `placed`, `failed` or `unknown`, whatever happens.

pub mod dedup;
pub mod dispatch;
mod error;
mod page;
mod pager;
pub mod recorded;

mod resume;

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use dispatch::StopReason;
pub use error::EngineError;
pub use pager::{ActivePage, HandAck, Intake, Pager, PagerObserver, PagerOptions, PagerSink};

use crate::model::{
    CallRecord, CallState, FINGERPRINT_VERSION, Outcome, RunRecord, RunState, Status, Timestamp,
};
use crate::plan::{self, CallRequest, Decision, Plan, RunInput, fingerprint};
use crate::playbook::{self, Playbook};
use crate::provider::limiter::RateLimiter;
use crate::provider::{self, Client, Credentials};
use crate::report::Report;
use crate::store::{Store, StoreError};
use dispatch::{Control, Recorder, Settings};

/// What a live run takes besides its playbook and input: plain, checked
/// values (the front end validates its own flags into these once).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the playbook's `limits.max_calls`.
    pub max_calls: Option<u64>,
    /// Overrides the provider's base URL.
    pub base_url: Option<String>,
    /// Overrides `provider.concurrency`.
    pub concurrency: Option<u32>,
    /// Overrides `provider.rate_limit` (requests per second).
    pub rate_limit: Option<f64>,
    /// Also keep the rendered messages in the store.
    pub journal_messages: bool,
    /// FoneStorm credentials; `None` refuses the run.
    pub credentials: Option<Credentials>,
    /// Continue a recorded run instead of starting one.
    pub resume: Option<Resume>,
    /// For pages: `CALLBOOK_CALLBACK_SECRET` (`None` when unset, which refuses a page).
    pub callback_secret:
        Option<Result<crate::listener::CallbackSecret, crate::listener::SecretError>>,
    /// For pages: where to listen for callbacks (`None`: do not listen).
    pub listen: Option<std::net::SocketAddr>,
    /// For pages: the https URL at which FoneStorm reaches the listener.
    pub public_url: Option<crate::provider::hooks::PublicUrl>,
    /// For pages: the files the run was planned from (path, text; secret
    /// values hidden), recorded with the page.
    pub sources: Vec<(String, String)>,
}

/// Which recorded run to continue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The newest unfinished run of the playbook.
    Latest,
    /// This run.
    Run(String),
}

/// Hears about a live run as it goes; the CLI's progress bar and prompt are one.
///
/// Every method has a default that does nothing (and confirms), so a server
/// implements only what it shows.
pub trait Observer: Send + Sync + 'static {
    /// Asked once, just before the first call, when there are calls to
    /// place; `false` refuses the run. It runs on a blocking thread, so it
    /// may wait for a person.
    fn confirm(&self, _playbook: &str, _caller_id: &str, _calls: usize) -> bool {
        true
    }
    /// Calls are about to start: `total` of them.
    fn started(&self, _total: usize) {}
    /// One call ended.
    fn call_finished(&self, _recipient: &str, _to: &str, _outcome: &Outcome) {}
    /// No call is in flight any more.
    fn done(&self) {}
}

/// An observer that confirms everything and shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}

/// A live run that placed (or settled) its calls.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Every planned recipient, with what became of them.
    pub report: Report,
    /// Why the run stopped early, if it did.
    pub stop: Option<StopReason>,
}

impl Finished {
    /// Whether the run was refused before anything could have been placed
    /// (a login that failed for good before any call went through).
    pub fn refused(&self) -> bool {
        let t = &self.report.totals;
        matches!(self.stop, Some(StopReason::AuthFailed(_))) && t.placed == 0 && t.unknown == 0
    }
}

/// A dry run's result: the plan as it would be sent.
#[derive(Clone, Debug)]
pub struct DryRun {
    /// A broadcast's plan, or a page's timeline as a report.
    pub planned: Planned,
    /// When planning finished (RFC 3339, UTC).
    pub finished_at: String,
    /// Why a live run would be refused for its size, if it would.
    pub over_limit: Option<String>,
}

/// What a dry run planned.
#[derive(Clone, Debug)]
pub enum Planned {
    /// A broadcast's plan, with dedup applied; its report is written
    /// straight from it (see [`crate::report::PlanReport`]).
    Broadcast(Plan),
    /// A page's whole timeline, as its report.
    Page(Box<Report>),
}

/// Plans a dry run: nothing is called and nothing written; dedup is read
/// from `store` (if there is one) when the playbook has a window.
///
/// # Errors
/// When the plan cannot be made or the store cannot be read.
pub async fn dry_run<S: Store>(
    store: Option<&S>,
    playbook: &Playbook,
    input: &RunInput,
    max_calls: Option<u64>,
) -> Result<DryRun, EngineError> {
    if playbook.escalation.is_some() {
        return page::dry_run(playbook, input, max_calls);
    }
    let mut plan = plan::plan(playbook, input).map_err(EngineError::Plan)?;
    if let Some(store) = store {
        dedup::apply(&mut plan, playbook, store, input.now)
            .await
            .map_err(EngineError::Read)?;
    }
    let over_limit = plan.over_limit(max_calls.or(playbook.max_calls));
    let finished_at = crate::model::timestamp(chrono::Utc::now().max(input.now));
    Ok(DryRun {
        planned: Planned::Broadcast(plan),
        finished_at,
        over_limit,
    })
}

/// Places the calls of a live run (or continues a recorded one) and
/// returns the report.
///
/// Holds the playbook's run lock throughout. A run refused before its first
/// call is recorded as `refused`; a resume refused keeps its state, so it
/// can still be resumed. When `cancel` fires, no new call starts and the
/// calls in flight are finished and recorded.
///
/// # Errors
/// When the run is refused or rejected before any call.
pub async fn run<S: Store>(
    store: Arc<S>,
    playbook: &Playbook,
    mut input: RunInput,
    options: &RunOptions,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
) -> Result<Finished, EngineError> {
    let lock = match store.lock(&playbook.name, Timestamp::now()).await {
        Ok(lock) => Arc::new(lock),
        Err(e) => {
            // The same alert again while its page is going: a repeat, not a refusal.
            if options.resume.is_none()
                && let Some(finished) = page::going_repeat(store.as_ref(), playbook, &input).await?
            {
                return Ok(finished);
            }
            let run = run_record(playbook, &input, RunState::Refused);
            if let Err(why) = store.begin_run(run, Vec::new()).await {
                tracing::debug!("the refused run was not recorded: {why}");
            }
            return Err(EngineError::Lock(e));
        }
    };
    store.ready().await.map_err(EngineError::Store)?;
    claim_name(store.as_ref(), playbook).await?;
    let ctx = Context {
        store,
        lock: Some(lock),
        playbook,
        options,
        observer,
        cancel,
        shared: None,
        served: None,
    };
    if playbook.escalation.is_some() {
        return page::run(ctx, input).await;
    }
    match &options.resume {
        Some(which) => {
            let (run, recorded) = resume::find(ctx.store.as_ref(), &playbook.name, which).await?;
            input.run_id.clone_from(&run.id);
            input.now = run.now.0;
            let plan = plan::plan(playbook, &input).map_err(EngineError::Plan)?;
            resume::resume(ctx, &input, plan, &run, &recorded).await
        }
        None => {
            let mut plan = plan::plan(playbook, &input).map_err(EngineError::Plan)?;
            dedup::apply(&mut plan, playbook, ctx.store.as_ref(), input.now)
                .await
                .map_err(EngineError::Store)?;
            start(ctx, &input, plan).await
        }
    }
}

/// What a live run works with besides its plan.
struct Context<'a, S: Store> {
    store: Arc<S>,
    /// Held for the whole run; checked before every request. A pager's
    /// pages take none: pages with different keys run at once.
    lock: Option<Arc<S::Lock>>,
    playbook: &'a Playbook,
    options: &'a RunOptions,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
    /// A pager's one login and rate limiter; `None`: the run makes its own.
    shared: Option<Provider>,
    /// What a page run by a [`Pager`] has besides; `None` for `run`.
    served: Option<page::Served>,
}

/// The provider connection a run places its calls through: one client
/// (one login, its token renewed) and one rate limiter. A `run` makes its
/// own; a [`Pager`] gives every page the account's one.
#[derive(Clone)]
pub(crate) struct Provider {
    /// The client, logged in once for everyone who shares it.
    pub client: Arc<Client>,
    /// The account's rate limit, shared by every request through `client`.
    pub limiter: Arc<RateLimiter>,
}

/// The run's provider: the shared one, or a new client and limiter
/// (the base URL and credentials checked).
fn provider<S: Store>(ctx: &Context<'_, S>) -> Result<Provider, EngineError> {
    if let Some(shared) = &ctx.shared {
        return Ok(shared.clone());
    }
    let client = client(ctx.playbook, ctx.options)?;
    let rate = ctx
        .options
        .rate_limit
        .unwrap_or(ctx.playbook.provider.rate_limit);
    Ok(Provider {
        client: Arc::new(client),
        limiter: Arc::new(RateLimiter::new(rate)),
    })
}

/// Places the calls of a new run.
async fn start<S: Store>(
    ctx: Context<'_, S>,
    input: &RunInput,
    plan: Plan,
) -> Result<Finished, EngineError> {
    let ready = prepare(&ctx, input, plan).await?;
    execute(
        ctx,
        ready.provider,
        ready.report,
        ready.calls,
        RunState::Refused,
    )
    .await
}

/// A new broadcast, checked and recorded, about to place its calls.
struct Ready {
    provider: Provider,
    report: Report,
    calls: Vec<(usize, CallRequest)>,
}

/// Checks a new broadcast (its size, the provider, the confirmation) and
/// records it. A refusal is recorded as a refused run, except in a pager,
/// whose caller gets it as its answer.
async fn prepare<S: Store>(
    ctx: &Context<'_, S>,
    input: &RunInput,
    plan: Plan,
) -> Result<Ready, EngineError> {
    let calls = calls_of(&plan);
    let records = records(ctx.playbook, &plan, ctx.options.journal_messages);
    let checked = match plan.over_limit(ctx.options.max_calls.or(ctx.playbook.max_calls)) {
        Some(why) => Err(EngineError::TooManyCalls(why)),
        None => provider(ctx),
    };
    let checked = match checked {
        Ok(client) if confirmed(ctx, calls.len()).await => Ok(client),
        Ok(_) => Err(EngineError::NotConfirmed),
        Err(e) => Err(e),
    };
    let client = match checked {
        Ok(client) => client,
        Err(e) => {
            // A bad base URL is a mistake in the request, not a refused run.
            if !matches!(e, EngineError::BaseUrl(_)) && ctx.served.is_none() {
                let mut run = run_record(ctx.playbook, input, RunState::Refused);
                run.finished_at = Some(Timestamp::now());
                if let Err(why) = ctx.store.begin_run(run, records).await {
                    tracing::warn!("the refused run was not recorded: {why}");
                }
            }
            return Err(e);
        }
    };
    let report = Report::from_plan(ctx.playbook, plan, input);
    let run = run_record(ctx.playbook, input, RunState::Running);
    ctx.store
        .begin_run(run, records)
        .await
        .map_err(EngineError::Store)?;
    Ok(Ready {
        provider: client,
        report,
        calls,
    })
}

/// A pager's broadcast: recorded by [`prepare`], its calls then placed in
/// the background; `Err` holds the run id of the broadcast going with the
/// same key (`claim` says whether the key is free, and takes it).
///
/// # Errors
/// As [`prepare`], and [`EngineError::Plan`] when the plan cannot be made.
async fn broadcast<S: Store>(
    ctx: Context<'_, S>,
    input: &RunInput,
    claim: impl FnOnce(String) -> Option<String>,
    started: impl FnOnce(Result<Result<(), String>, EngineError>),
) -> Option<Finished> {
    let ready = async {
        let mut plan = plan::plan(ctx.playbook, input).map_err(EngineError::Plan)?;
        let rendered = plan.entries.iter().find_map(|e| match &e.decision {
            Decision::Call(c) => c.dedup_key.clone(),
            Decision::Skip(_) => None,
        });
        if let Some(served) = &ctx.served {
            let key = format!(
                "{}:{}",
                served.route,
                rendered.unwrap_or_else(|| served.fallback_key.clone())
            );
            if let Some(going) = claim(key) {
                return Ok(Err(going));
            }
        }
        dedup::apply(&mut plan, ctx.playbook, ctx.store.as_ref(), input.now)
            .await
            .map_err(EngineError::Store)?;
        prepare(&ctx, input, plan).await.map(Ok)
    };
    match ready.await {
        Ok(Ok(ready)) => {
            started(Ok(Ok(())));
            let finished = execute(
                ctx,
                ready.provider,
                ready.report,
                ready.calls,
                RunState::Refused,
            );
            finished.await.ok()
        }
        Ok(Err(going)) => {
            started(Ok(Err(going)));
            None
        }
        Err(e) => {
            started(Err(e));
            None
        }
    }
}

/// Asks the observer, on a blocking thread, before the first of `calls` calls.
async fn confirmed<S: Store>(ctx: &Context<'_, S>, calls: usize) -> bool {
    if calls == 0 {
        return true;
    }
    let observer = ctx.observer.clone();
    let (name, caller_id) = (ctx.playbook.name.clone(), ctx.playbook.caller_id.clone());
    tokio::task::spawn_blocking(move || observer.confirm(&name, &caller_id, calls))
        .await
        .unwrap_or(false)
}

/// How a run of this playbook is recorded when it starts (or is refused).
fn run_record(playbook: &Playbook, input: &RunInput, state: RunState) -> RunRecord {
    let now = Timestamp::now();
    RunRecord {
        id: input.run_id.clone(),
        playbook: playbook.name.clone(),
        path: playbook.path.display().to_string(),
        now: Timestamp(input.now),
        started_at: now,
        finished_at: (state == RunState::Refused).then_some(now),
        state,
        caller_id: Some(playbook.caller_id.clone()),
        pid: Some(std::process::id()),
        fingerprint_version: FINGERPRINT_VERSION,
    }
}

/// Records this file as the one playbook of its `name` in the store.
///
/// Runs share their dedup history, lock and resumable runs by name, so a
/// second file with the same name is refused while the recorded one still
/// holds that name; a recorded file that is gone (moved) or renamed is replaced.
///
/// The path is recorded as given (made absolute), symbolic links unresolved:
/// a deployment that points `current/` at a new release directory runs the
/// same playbook, although the old release still holds a file of that name.
/// Another spelling of the recorded file is the same playbook too, and
/// leaves the recorded path as it is.
async fn claim_name<S: Store>(store: &S, playbook: &Playbook) -> Result<(), EngineError> {
    let here = std::path::absolute(&playbook.path).map_err(|e| EngineError::PlaybookFile {
        path: playbook.path.display().to_string(),
        reason: playbook::io_reason(&e),
    })?;
    let here = here.display().to_string();
    match store
        .playbook_path(&playbook.name)
        .await
        .map_err(EngineError::Read)?
    {
        Some(there) if there == here || same_file(Path::new(&there), &playbook.path) => {
            return Ok(());
        }
        Some(there) if still_named(Path::new(&there), &playbook.name) => {
            return Err(EngineError::NameTaken {
                name: playbook.name.clone(),
                path: playbook.path.display().to_string(),
                holder: there,
            });
        }
        _ => {}
    }
    store
        .set_playbook_path(&playbook.name, &here)
        .await
        .map_err(EngineError::Read)
}

/// Whether `a` and `b` are one file (a hard link or another mount of it).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Whether the playbook at `path` still exists and is still called `name`.
///
/// Only its `name:` is read: a playbook that needs `--include-root`, or
/// fails another check right now, still holds its name.
fn still_named(path: &Path, name: &str) -> bool {
    let Ok(bytes) = playbook::read_bounded(path, playbook::MAX_PLAYBOOK_BYTES) else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return false;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    playbook::yaml::parse(text)
        .is_ok_and(|(doc, _)| doc.get("name").and_then(serde_json::Value::as_str) == Some(name))
}

/// The calls of a plan with their plan indices.
fn calls_of(plan: &Plan) -> Vec<(usize, CallRequest)> {
    plan.entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.decision {
            Decision::Call(c) => Some((i, c.clone())),
            Decision::Skip(_) => None,
        })
        .collect()
}

/// The plan as the store records it.
fn records(playbook: &Playbook, plan: &Plan, with_messages: bool) -> Vec<CallRecord> {
    plan.entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (call, reason) = match &e.decision {
                Decision::Call(c) => (Some(c), None),
                Decision::Skip(r) => (None, Some(r.clone())),
            };
            CallRecord {
                idx: i,
                recipient: playbook.recipients[e.recipient].name.clone(),
                to: e.to.to_string(),
                rule: e.rule.as_deref().map(str::to_string),
                service_type: call.map(|c| c.service_type),
                service_id: call.filter(|_| with_messages).map(|c| c.service_id.clone()),
                fingerprint: call.map(|c| fingerprint(c, Some(&playbook.caller_id))),
                dedup_key: call.and_then(|c| c.dedup_key.clone()),
                state: if call.is_some() {
                    CallState::Pending
                } else {
                    CallState::Skipped
                },
                reason,
                call_id: None,
                attempts: 0,
                error: None,
            }
        })
        .collect()
}

/// Checks the base URL and credentials and builds the client.
fn client(playbook: &Playbook, options: &RunOptions) -> Result<Client, EngineError> {
    let settings = &playbook.provider;
    let base = options
        .base_url
        .clone()
        .unwrap_or_else(|| settings.base_url.clone());
    let base = provider::check_base_url(&base).map_err(EngineError::BaseUrl)?;
    let credentials = options
        .credentials
        .clone()
        .ok_or(EngineError::NoCredentials)?;
    Client::new(base, credentials, settings.timeout).map_err(EngineError::Client)
}

/// Logs in, dispatches `calls`, records everything, and completes the report.
///
/// `refused_state` is what the run becomes if it is refused before any
/// call: `refused` for a new run, its former state for a resume.
async fn execute<S: Store>(
    ctx: Context<'_, S>,
    client: Provider,
    mut report: Report,
    calls: Vec<(usize, CallRequest)>,
    refused_state: RunState,
) -> Result<Finished, EngineError> {
    let run_id = report.run_id.clone();
    if calls.is_empty() {
        end_run(ctx.store.as_ref(), &run_id, RunState::Finished).await;
        report.recount();
        report.finished_at = crate::model::timestamp(chrono::Utc::now());
        return Ok(Finished { report, stop: None });
    }
    let finished = match dispatch_all(&ctx, client, report, calls, &run_id).await {
        Ok(finished) => finished,
        Err(e) => {
            end_run(ctx.store.as_ref(), &run_id, refused_state).await;
            return Err(e);
        }
    };
    let state = match &finished.stop {
        Some(StopReason::Interrupted) => {
            tracing::error!("interrupted: calls in flight were finished and recorded");
            RunState::Interrupted
        }
        Some(StopReason::AuthFailed(m) | StopReason::Fatal(m)) => {
            tracing::error!("the run stopped: {m}");
            // Refused before any call was placed or possibly placed.
            if finished.refused() {
                refused_state
            } else {
                RunState::Stopped
            }
        }
        None => RunState::Finished,
    };
    end_run(ctx.store.as_ref(), &run_id, state).await;
    Ok(finished)
}

/// Logs in, places `calls` and completes the report with why the run stopped, if it did.
async fn dispatch_all<S: Store>(
    ctx: &Context<'_, S>,
    provider: Provider,
    mut report: Report,
    calls: Vec<(usize, CallRequest)>,
    run_id: &str,
) -> Result<Finished, EngineError> {
    let provider_settings = &ctx.playbook.provider;
    let settings = Settings {
        fonenumber: ctx.playbook.caller_id.clone(),
        concurrency: ctx
            .options
            .concurrency
            .unwrap_or(provider_settings.concurrency) as usize,
        retries: provider_settings.retries,
        retry_ambiguous: provider_settings.retry_ambiguous,
    };
    let Provider { client, limiter } = provider;
    if client.needs_login() {
        client
            .login(0, &limiter)
            .await
            .map_err(|e| EngineError::Login(e.to_string()))?;
    }
    let control = Arc::new(Control::default());
    if ctx.cancel.is_cancelled() {
        control.stop(StopReason::Interrupted);
    }
    let watcher = {
        let (control, cancel) = (control.clone(), ctx.cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            control.stop(StopReason::Interrupted);
        })
    };
    let total = calls.len();
    ctx.observer.started(total);
    let recorder = RunRecorder {
        names: report
            .calls
            .iter()
            .map(|c| (c.recipient.clone(), c.to.clone()))
            .collect(),
        store: ctx.store.clone(),
        lock: ctx.lock.clone(),
        run_id: run_id.to_string(),
        observer: ctx.observer.clone(),
    };
    let indices: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
    // With `--listen`, a broadcast records how its calls ended too.
    let listening = page::Listening::start(ctx, &report).await;
    let outcomes = match &listening {
        Some(l) => {
            let recorder = Arc::new(l.recorder(recorder));
            dispatch::dispatch(client, calls, settings, limiter, control.clone(), recorder).await
        }
        None => {
            let recorder = Arc::new(recorder);
            dispatch::dispatch(client, calls, settings, limiter, control.clone(), recorder).await
        }
    };
    watcher.abort();
    ctx.observer.done();
    for (index, outcome) in indices.into_iter().zip(outcomes) {
        if let Some(call) = report.calls.get_mut(index) {
            call.status = outcome.status;
            call.call_id = outcome.call_id;
            call.attempts = outcome.attempts;
            call.error = outcome.error;
        }
    }
    let mut stop = control.reason();
    if let Some(l) = listening
        && l.finish(ctx, &mut report).await
        && stop.is_none()
    {
        stop = Some(StopReason::Interrupted);
    }
    report.recount();
    report.finished_at = crate::model::timestamp(chrono::Utc::now());
    Ok(Finished { report, stop })
}

/// Marks the run ended; a failure is logged (the calls are done, their outcomes recorded).
async fn end_run<S: Store>(store: &S, run_id: &str, state: RunState) {
    if let Err(e) = store.end_run(run_id, state).await {
        tracing::error!("{e}");
    }
}

/// Records each call in the store, logs its outcome and tells the observer.
struct RunRecorder<S: Store> {
    names: Vec<(String, String)>,
    store: Arc<S>,
    lock: Option<Arc<S::Lock>>,
    run_id: String,
    observer: Arc<dyn Observer>,
}

impl<S: Store> Recorder for RunRecorder<S> {
    async fn sending(&self, index: usize, attempt: u32) -> Result<(), StoreError> {
        // A lock that excludes nobody any more: another run may be calling them.
        if let Some(lock) = &self.lock {
            self.store.check_lock(lock).await?;
        }
        self.store.sending(&self.run_id, index, attempt).await
    }

    async fn not_placed(&self, index: usize) -> Result<(), StoreError> {
        self.store.not_placed(&self.run_id, index).await
    }

    async fn finished(&self, index: usize, outcome: &Outcome) -> Result<(), StoreError> {
        let recorded = self.store.finished(&self.run_id, index, outcome).await;
        let (recipient, to) = self
            .names
            .get(index)
            .map_or(("?", "?"), |(n, t)| (n.as_str(), t.as_str()));
        let call_id = outcome.call_id.as_deref().unwrap_or("");
        let error = outcome.error.as_deref().unwrap_or("");
        let attempts = outcome.attempts;
        match outcome.status {
            Status::Placed => tracing::info!(recipient, to, call_id, attempts, "placed"),
            Status::Unknown => tracing::warn!(recipient, to, attempts, error, "unknown outcome"),
            _ => tracing::warn!(recipient, to, attempts, error, "failed"),
        }
        self.observer.call_finished(recipient, to, outcome);
        recorded
    }
}
