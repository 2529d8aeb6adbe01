//! Pages in the engine: a ladder planned as a timeline, then run round by
//! round until someone acknowledges.
//!
//! A page is recorded whole before its first call (its run, its short code,
//! its dedup key, its sources and every call of its timeline). Each round's
//! calls go out through the same dispatcher as a broadcast's; then the page
//! waits the step's `every`, looking for an acknowledgement at least once a
//! second, and at once when the callback sink records one. An
//! acknowledgement (from `callbook ack`, or from a callback the listener
//! received) ends the page: calls not yet sent are skipped with
//! `acknowledged by <name>`, calls in flight finish and are recorded. When
//! the last round has waited with no acknowledgement, the page is exhausted.

mod sink;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatch::{self, Control, Settings, StopReason};
use super::{
    Context, DryRun, EngineError, Finished, Provider, RunOptions, RunRecorder, confirmed,
    run_record,
};
use crate::model::{
    AckRecord, CallRecord, CallSlot, CallState, Outcome, PageRecord, RoundRecord, RunState, Status,
    Timestamp,
};
use crate::plan::{CallRequest, Decision, RunInput, fingerprint};
use crate::playbook::Playbook;
use crate::provider::limiter::RateLimiter;
use crate::report::Report;
use crate::report::ladder::AckReport;
use crate::store::Store;
use crate::timeline::{self, Timeline};

pub use sink::PageSink;
pub(crate) use sink::{CallMatch, SmsVerdict, record, unmatched};

/// What a page run by a [`super::Pager`] has that a `run` has not.
#[derive(Clone)]
pub(crate) struct Served {
    /// The webhook route that started it.
    pub route: String,
    /// The key when the playbook renders no `dedup.key`, after the route.
    pub fallback_key: String,
    /// Fired when the alert resolved: the page ends `cancelled`.
    pub resolved: CancellationToken,
    /// Given the page's live state once it is recorded (or resumed), so
    /// that the pager's callback sink can route callbacks to it.
    pub attach: Attach,
}

/// Given a pager's page's live state once its ladder runs.
pub(crate) type Attach = Arc<dyn Fn(&Arc<Mutex<PageState>>) + Send + Sync>;

/// The page's key: for a pager's page `{route}:{rendered dedup.key}` (or
/// `{route}:{fallback}`), else the rendered `dedup.key` (or the playbook's
/// name).
fn page_key<S: Store>(ctx: &Context<'_, S>, timeline: &Timeline) -> String {
    let rendered = rendered_key(timeline);
    match &ctx.served {
        Some(served) => format!(
            "{}:{}",
            served.route,
            rendered.unwrap_or_else(|| served.fallback_key.clone())
        ),
        None => rendered.unwrap_or_else(|| ctx.playbook.name.clone()),
    }
}

/// How often a waiting page looks for an acknowledgement and for calls
/// whose outcome is overdue.
const TICK: Duration = Duration::from_secs(1);

/// Plans a page's whole timeline as a dry run: nothing is called or written.
///
/// # Errors
/// [`EngineError::Plan`] when any round of the ladder cannot be planned.
pub(super) fn dry_run(
    playbook: &Playbook,
    input: &RunInput,
    max_calls: Option<u64>,
) -> Result<DryRun, EngineError> {
    let code = timeline::new_code(&[]);
    let timeline = timeline::plan(playbook, input, &code).map_err(EngineError::Plan)?;
    let over_limit = timeline.over_limit(max_calls.or(playbook.max_calls));
    let mut report = Report::from_timeline(playbook, &timeline, input);
    let finished_at = crate::model::timestamp(chrono::Utc::now().max(input.now));
    report.finished_at.clone_from(&finished_at);
    Ok(DryRun {
        planned: super::Planned::Page(Box::new(report)),
        finished_at,
        over_limit,
    })
}

/// One call of a live page, as the ladder and the callback sink both see it.
#[derive(Clone, Debug)]
pub(crate) struct LiveCall {
    /// Index in the report and the journal.
    pub idx: usize,
    /// The recipient's name.
    pub recipient: String,
    /// The dial string called.
    pub to: String,
    /// Where it stands.
    pub status: Status,
    /// The provider's id, once placed.
    pub call_id: Option<String>,
    /// When the answer to its request came (placed or unknown).
    pub answered_at: Option<Timestamp>,
    /// How it ended, once known.
    pub disposition: Option<String>,
    /// Billable seconds, from the `END` callback.
    pub billable_seconds: Option<u32>,
    /// When the `END` callback came.
    pub ended_at: Option<Timestamp>,
    /// The step and round that placed it.
    pub slot: (String, u32),
    /// 0 for a call of the timeline, N for the N-th retry of a person in a round.
    pub retry: u32,
    /// The timeline call it repeats (itself for a timeline call).
    pub origin: usize,
}

/// What the ladder and the callback sink share while a page runs.
#[derive(Debug)]
pub(crate) struct PageState {
    /// The page's run.
    pub run_id: String,
    /// The page's short code.
    pub code: String,
    /// The caller id the page calls from.
    pub caller_id: String,
    /// Every call of the timeline, by index.
    pub calls: Vec<LiveCall>,
    /// The page's people: name and dial string (acks count only from them).
    pub people: Vec<(String, String)>,
    /// The step and round started last.
    pub current: Option<(String, u32)>,
    /// Retries asked for by `END` callbacks (`escalation.retry`): the call
    /// to repeat and when; dropped when the next round starts.
    pub retries_due: Vec<(usize, tokio::time::Instant)>,
    /// Fired by the callback sink once it has recorded an acknowledgement,
    /// so that the ladder acts on it at once instead of at its next look at
    /// the journal (up to [`TICK`] later). The journal stays the one source
    /// of truth: a wake-up only makes the ladder look now.
    pub acked: CancellationToken,
    /// Wakes a waiting ladder when a callback scheduled a retry, so that it
    /// sleeps until its next deadline instead of looking every second.
    pub wake: Arc<tokio::sync::Notify>,
}

/// Runs a live page, or resumes one (`--resume`); see the module documentation.
///
/// # Errors
/// When the page is refused or rejected before any call.
pub(super) async fn run<S: Store>(
    ctx: Context<'_, S>,
    input: RunInput,
) -> Result<Finished, EngineError> {
    match begin(&ctx, input).await? {
        Ok(begun) => climb(&ctx, begun).await,
        Err(finished) => Ok(finished),
    }
}

/// Starts a new page (recorded whole) or reopens a recorded one
/// (`--resume`); `Err` holds the report of a page deduplicated.
pub(super) async fn begin<S: Store>(
    ctx: &Context<'_, S>,
    input: RunInput,
) -> Result<Result<Begun, Finished>, EngineError> {
    match &ctx.options.resume {
        Some(which) => resume(ctx, input, which).await.map(Ok),
        None => start(ctx, input).await,
    }
}

/// Climbs the ladder of a page begun, and ends it.
pub(super) async fn climb<S: Store>(
    ctx: &Context<'_, S>,
    begun: Begun,
) -> Result<Finished, EngineError> {
    let Begun {
        input,
        timeline,
        mut report,
        requests,
        code,
        client,
        secret,
        done,
        ..
    } = begun;
    let state = Arc::new(Mutex::new(PageState {
        run_id: input.run_id.clone(),
        code,
        caller_id: ctx.playbook.caller_id.clone(),
        calls: live_calls(&report, requests.len()),
        people: people(&report),
        current: None,
        retries_due: Vec::new(),
        acked: CancellationToken::new(),
        wake: Arc::new(tokio::sync::Notify::new()),
    }));
    let listening = CancellationToken::new();
    listen(ctx, &state, secret, &listening).await;
    if let Some(served) = &ctx.served {
        (served.attach)(&state);
    }
    let ladder = Ladder {
        ctx,
        state: state.clone(),
        provider: client,
        requests,
        run_id: input.run_id.clone(),
    };
    let result = ladder.climb(&timeline, &done, &mut report).await;
    listening.cancel();
    let (outcome, stop) = result?;
    finish(ctx, &state, &mut report, &input, outcome).await;
    Ok(Finished { report, stop })
}

/// A page ready to climb its ladder: new, or resumed.
pub(super) struct Begun {
    /// The page's run id, clock, variables and input.
    pub input: RunInput,
    timeline: Timeline,
    report: Report,
    requests: Vec<Option<CallRequest>>,
    /// The page's short code.
    pub code: String,
    /// The page's key as recorded (empty for a resumed page: it is in the journal).
    pub key: String,
    client: Provider,
    secret: crate::listener::CallbackSecret,
    /// The rounds a resumed page had started already.
    done: Vec<RoundRecord>,
}

/// The callback secret, or why the page is refused.
fn secret_of(options: &RunOptions) -> Result<crate::listener::CallbackSecret, EngineError> {
    match options.callback_secret.clone() {
        None => Err(EngineError::NoCallbackSecret),
        Some(Ok(secret)) => Ok(secret),
        Some(Err(e)) => Err(EngineError::CallbackSecret(e.to_string())),
    }
}

/// Plans and records a new page; `Err` holds the report of a deduplicated one.
async fn start<S: Store>(
    ctx: &Context<'_, S>,
    input: RunInput,
) -> Result<Result<Begun, Finished>, EngineError> {
    let playbook = ctx.playbook;
    let options = ctx.options;
    let going = ctx.store.going_codes().await.map_err(EngineError::Read)?;
    let code = timeline::new_code(&going);
    let timeline = timeline::plan(playbook, &input, &code).map_err(EngineError::Plan)?;
    let secret = match secret_of(options) {
        Ok(secret) => secret,
        Err(e) => return refuse(ctx, &input, e).await.map(Err),
    };
    if let Some(finished) = deduplicated(ctx, &input, &timeline).await? {
        return Ok(Err(finished));
    }
    let checked = match timeline.over_limit(options.max_calls.or(playbook.max_calls)) {
        Some(why) => Err(EngineError::TooManyCalls(why)),
        None => super::provider(ctx),
    };
    let client = match checked {
        Ok(c) if confirmed(ctx, timeline.calls()).await => c,
        Ok(_) => {
            return refuse(ctx, &input, EngineError::NotConfirmed)
                .await
                .map(Err);
        }
        Err(e @ EngineError::BaseUrl(_)) => return Err(e),
        Err(e) => return refuse(ctx, &input, e).await.map(Err),
    };
    let report = Report::from_timeline(playbook, &timeline, &input);
    let requests = requests_of(&timeline);
    let records = records(playbook, &report, &requests, options.journal_messages);
    let key = page_key(ctx, &timeline);
    let page = PageRecord {
        run_id: input.run_id.clone(),
        code: code.clone(),
        dedup_key: key.clone(),
        sources: sources(options, &input),
        route: ctx.served.as_ref().map(|s| s.route.clone()),
    };
    let run = run_record(playbook, &input, RunState::Running);
    let going = ctx
        .store
        .begin_page(run, page, records)
        .await
        .map_err(EngineError::Store)?;
    if let Some(going) = going {
        // Another page took the key meanwhile: this one is its repeat.
        let mut report = Report::from_timeline(playbook, &timeline, &input);
        return Ok(Err(repeat_of(&mut report, going)));
    }
    Ok(Ok(Begun {
        input,
        timeline,
        report,
        requests,
        code,
        key,
        client,
        secret,
        done: Vec::new(),
    }))
}

/// Reopens a recorded page: planned again with its clock and short code,
/// checked call for call against what was recorded, its calls' states and
/// its started rounds read back, so nobody is called twice.
async fn resume<S: Store>(
    ctx: &Context<'_, S>,
    mut input: RunInput,
    which: &super::Resume,
) -> Result<Begun, EngineError> {
    let playbook = ctx.playbook;
    let store = ctx.store.as_ref();
    let (run, recorded) = super::resume::find(store, &playbook.name, which).await?;
    let Some(code) = store.page_code(&run.id).await.map_err(EngineError::Read)? else {
        return Err(EngineError::PlanChanged {
            run: run.id,
            what: "it was recorded as a broadcast, and the playbook is now a page".to_string(),
        });
    };
    input.run_id.clone_from(&run.id);
    input.now = run.now.0;
    let timeline = timeline::plan(playbook, &input, &code).map_err(EngineError::Plan)?;
    let requests = requests_of(&timeline);
    let same = recorded.len() >= requests.len()
        && requests.iter().zip(&recorded).all(|(r, c)| {
            r.as_ref()
                .map(|r| fingerprint(r, Some(&playbook.caller_id)))
                == c.fingerprint
        });
    if !same {
        return Err(EngineError::PlanChanged {
            run: run.id,
            what: "the page's calls are not the ones recorded".to_string(),
        });
    }
    let secret = secret_of(ctx.options)?;
    let client = super::provider(ctx)?;
    let slots = store.call_slots(&run.id).await.map_err(EngineError::Read)?;
    let done = store
        .page_rounds(&run.id)
        .await
        .map_err(EngineError::Read)?;
    let mut report = Report::from_timeline(playbook, &timeline, &input);
    report.dry_run = false;
    report.started_at = run.started_at.to_string();
    settle(&mut report, &recorded, &slots);
    let pending = report
        .calls
        .iter()
        .filter(|c| c.status == Status::Planned)
        .count();
    if !confirmed(ctx, pending).await {
        return Err(EngineError::NotConfirmed);
    }
    store
        .reopen_run(&run.id, std::process::id())
        .await
        .map_err(EngineError::Store)?;
    tracing::info!(run = run.id.as_str(), pending, "resuming the page");
    Ok(Begun {
        input,
        timeline,
        report,
        requests,
        code,
        key: String::new(),
        client,
        secret,
        done,
    })
}

/// Gives a resumed page's report what the journal recorded of each call,
/// and adds the retries it had placed.
fn settle(report: &mut Report, recorded: &[CallRecord], slots: &[(usize, CallSlot)]) {
    let planned = report.calls.len();
    for (idx, c) in recorded.iter().enumerate() {
        let status = c.state.status();
        if idx >= planned {
            let Some((_, slot)) = slots.iter().find(|(i, _)| *i == idx) else {
                continue;
            };
            let Some(mut entry) = report
                .calls
                .iter()
                .find(|e| e.recipient == c.recipient)
                .cloned()
            else {
                continue;
            };
            entry.step = Some(slot.step.clone());
            entry.round = Some(slot.round);
            entry.at_offset_seconds = Some(slot.at_offset);
            report.calls.push(entry);
        }
        if let Some(entry) = report.calls.get_mut(idx) {
            entry.status = status;
            entry.call_id.clone_from(&c.call_id);
            entry.attempts = c.attempts;
            entry.error.clone_from(&c.error);
            if status == Status::Skipped {
                entry.reason.clone_from(&c.reason);
            }
        }
    }
}

/// The ladder's view of every call of the report; calls past `planned`
/// are retries of the first call of the same person, step and round.
fn live_calls(report: &Report, planned: usize) -> Vec<LiveCall> {
    let calls = &report.calls;
    calls
        .iter()
        .enumerate()
        .map(|(idx, c)| {
            let slot = (
                c.step.clone().unwrap_or_default(),
                c.round.unwrap_or_default(),
            );
            let origin = if idx < planned {
                idx
            } else {
                calls[..planned.min(calls.len())]
                    .iter()
                    .position(|o| {
                        o.recipient == c.recipient && o.step == c.step && o.round == c.round
                    })
                    .unwrap_or(idx)
            };
            LiveCall {
                idx,
                recipient: c.recipient.clone(),
                to: c.to.clone(),
                status: c.status,
                call_id: c.call_id.clone(),
                answered_at: None,
                disposition: None,
                billable_seconds: None,
                ended_at: None,
                slot,
                retry: u32::from(idx >= planned),
                origin,
            }
        })
        .collect()
}

/// Records the page as refused (before any call) and returns `e`.
async fn refuse<S: Store>(
    ctx: &Context<'_, S>,
    input: &RunInput,
    e: EngineError,
) -> Result<Finished, EngineError> {
    // A pager's refusal is its caller's answer: nothing is recorded.
    if ctx.served.is_some() {
        return Err(e);
    }
    let mut run = run_record(ctx.playbook, input, RunState::Refused);
    run.finished_at = Some(Timestamp::now());
    if let Err(why) = ctx.store.begin_run(run, Vec::new()).await {
        tracing::warn!("the refused page was not recorded: {why}");
    }
    Err(e)
}

/// The page that makes this one a repeat, if any: the report then says
/// `deduplicated` and names it, and nobody is called.
async fn deduplicated<S: Store>(
    ctx: &Context<'_, S>,
    input: &RunInput,
    timeline: &Timeline,
) -> Result<Option<Finished>, EngineError> {
    let Some(dedup) = &ctx.playbook.dedup else {
        return Ok(None);
    };
    let key = page_key(ctx, timeline);
    let window = chrono::Duration::from_std(dedup.window).unwrap_or_default();
    let since = Timestamp(input.now - window);
    let Some(earlier) = ctx
        .store
        .recent_page(&ctx.playbook.name, &key, since)
        .await
        .map_err(EngineError::Read)?
    else {
        return Ok(None);
    };
    tracing::warn!(
        run = earlier.run_id.as_str(),
        "deduplicated: page {} for the same key ended {} at {}; nobody is called",
        earlier.run_id,
        earlier.outcome,
        earlier.ended_at
    );
    let mut report = Report::from_timeline(ctx.playbook, timeline, input);
    report.dry_run = false;
    report.calls.clear();
    report.recount();
    if let Some(e) = report.escalation.as_mut() {
        e.outcome = Some("deduplicated".to_string());
        e.deduplicated_by = Some(earlier.run_id);
    }
    report.finished_at = crate::model::timestamp(chrono::Utc::now());
    Ok(Some(Finished { report, stop: None }))
}

/// When a page of `playbook` for the same dedup key is still going (its run
/// holds the lock), the report of this one as its repeat: nobody is called.
///
/// # Errors
/// When the page cannot be planned or the journal cannot be read.
pub(super) async fn going_repeat<S: Store>(
    store: &S,
    playbook: &Playbook,
    input: &RunInput,
) -> Result<Option<Finished>, EngineError> {
    if playbook.escalation.is_none() {
        return Ok(None);
    }
    let timeline = timeline::plan(playbook, input, "AAA").map_err(EngineError::Plan)?;
    let key = rendered_key(&timeline).unwrap_or_else(|| playbook.name.clone());
    let Some(going) = store
        .going_page(&playbook.name, &key)
        .await
        .map_err(EngineError::Read)?
    else {
        return Ok(None);
    };
    tracing::warn!(
        run = going.as_str(),
        "deduplicated: page {going} for the same key is still going; nobody is called"
    );
    let mut report = Report::from_timeline(playbook, &timeline, input);
    report.dry_run = false;
    report.calls.clear();
    report.recount();
    if let Some(e) = report.escalation.as_mut() {
        e.outcome = Some("deduplicated".to_string());
        e.code = store
            .page_code(&going)
            .await
            .map_err(EngineError::Read)?
            .unwrap_or_default();
        e.deduplicated_by = Some(going);
    }
    report.finished_at = crate::model::timestamp(chrono::Utc::now());
    Ok(Some(Finished { report, stop: None }))
}

/// The page's `dedup.key` rendered with the input (the first call's), if it has one.
fn rendered_key(timeline: &Timeline) -> Option<String> {
    timeline
        .rounds
        .iter()
        .flat_map(|r| &r.entries)
        .find_map(|e| match &e.decision {
            Decision::Call(c) => c.dedup_key.clone(),
            Decision::Skip(_) => None,
        })
}

/// The key a pager's page for this alert has (or would have), planned with
/// a placeholder code; nothing is recorded.
///
/// # Errors
/// [`EngineError::Plan`] when the page cannot be planned.
pub(super) fn served_key(
    playbook: &Playbook,
    input: &RunInput,
    route: &str,
    fallback_key: &str,
) -> Result<String, EngineError> {
    let timeline = timeline::plan(playbook, input, "AAA").map_err(EngineError::Plan)?;
    Ok(format!(
        "{route}:{}",
        rendered_key(&timeline).unwrap_or_else(|| fallback_key.to_string())
    ))
}

/// `report` made the report of a repeat of page `going`: nobody is called.
fn repeat_of(report: &mut Report, going: String) -> Finished {
    tracing::warn!(
        run = going.as_str(),
        "deduplicated: page {going} for the same key is still going; nobody is called"
    );
    report.dry_run = false;
    report.calls.clear();
    report.recount();
    if let Some(e) = report.escalation.as_mut() {
        e.outcome = Some("deduplicated".to_string());
        e.deduplicated_by = Some(going);
    }
    report.finished_at = crate::model::timestamp(chrono::Utc::now());
    Finished {
        report: report.clone(),
        stop: None,
    }
}

/// What the page was planned from, as JSON, for the journal: the files read
/// (secret-looking values hidden), the variables and the input.
fn sources(options: &RunOptions, input: &RunInput) -> String {
    let files: serde_json::Map<String, serde_json::Value> = options
        .sources
        .iter()
        .map(|(path, text)| (path.clone(), serde_json::Value::String(text.clone())))
        .collect();
    serde_json::json!({
        "files": files,
        "vars": input.vars,
        "input": input.input,
        "selection": {
            "tags": input.selection.tags,
            "names": input.selection.names,
        },
        "now": crate::model::timestamp(input.now),
    })
    .to_string()
}

/// The request of each timeline entry (by report index), `None` for skipped ones.
fn requests_of(timeline: &Timeline) -> Vec<Option<CallRequest>> {
    timeline
        .rounds
        .iter()
        .flat_map(|r| &r.entries)
        .map(|e| match &e.decision {
            Decision::Call(c) => Some(c.clone()),
            Decision::Skip(_) => None,
        })
        .collect()
}

/// The timeline as the journal records it.
fn records(
    playbook: &Playbook,
    report: &Report,
    requests: &[Option<CallRequest>],
    with_messages: bool,
) -> Vec<(CallRecord, CallSlot)> {
    report
        .calls
        .iter()
        .zip(requests)
        .enumerate()
        .map(|(idx, (c, call))| {
            let record = CallRecord {
                idx,
                recipient: c.recipient.clone(),
                to: c.to.clone(),
                rule: c.rule.clone(),
                service_type: call.as_ref().map(|c| c.service_type),
                service_id: call
                    .as_ref()
                    .filter(|_| with_messages)
                    .map(|c| c.service_id.clone()),
                fingerprint: call
                    .as_ref()
                    .map(|c| fingerprint(c, Some(&playbook.caller_id))),
                // A page's dedup is per page (its own record), never per call.
                dedup_key: None,
                state: if call.is_some() {
                    CallState::Pending
                } else {
                    CallState::Skipped
                },
                reason: c.reason.clone(),
                call_id: None,
                attempts: 0,
                error: None,
            };
            let slot = CallSlot {
                step: c.step.clone().unwrap_or_default(),
                round: c.round.unwrap_or(0),
                at_offset: c.at_offset_seconds.unwrap_or(0),
            };
            (record, slot)
        })
        .collect()
}

/// The page's people: each recipient once, with their dial string.
fn people(report: &Report) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in &report.calls {
        if !out.iter().any(|(n, _)| n == &c.recipient) {
            out.push((c.recipient.clone(), c.to.clone()));
        }
    }
    out
}

/// Serves callbacks for this page until `stop`; a listener that cannot
/// start is a loud warning, not a refusal: the page still escalates on time.
async fn listen<S: Store>(
    ctx: &Context<'_, S>,
    state: &Arc<Mutex<PageState>>,
    secret: crate::listener::CallbackSecret,
    stop: &CancellationToken,
) {
    let Some(addr) = ctx.options.listen else {
        return;
    };
    match crate::listener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(addr = %listener.local_addr(), "listening for callbacks");
            let sink = Arc::new(PageSink::new(
                ctx.store.clone(),
                state.clone(),
                ctx.playbook,
            ));
            tokio::spawn(listener.serve(secret, sink, stop.clone()));
        }
        Err(e) => tracing::error!(
            "cannot listen for callbacks on {addr}: {e}; the page escalates on time only and learns of no acknowledgement but `callbook ack`"
        ),
    }
}

/// `t` rounded up to a whole second.
fn ceil_second(t: Timestamp) -> Timestamp {
    use chrono::{SubsecRound as _, Timelike as _};
    if t.0.nanosecond() == 0 {
        t
    } else {
        Timestamp(t.0.trunc_subsecs(0) + chrono::Duration::seconds(1))
    }
}

/// How a page ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PageOutcome {
    /// Someone acknowledged.
    Acknowledged(AckRecord),
    /// The last round waited with no acknowledgement.
    Exhausted,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Its alert resolved (a pager's page).
    Cancelled,
    /// The provider or the journal made going on impossible.
    Stopped(String),
}

/// The ladder at work: places each round's calls, then waits.
struct Ladder<'a, 'b, S: Store> {
    ctx: &'a Context<'b, S>,
    state: Arc<Mutex<PageState>>,
    provider: Provider,
    requests: Vec<Option<CallRequest>>,
    run_id: String,
}

impl<S: Store> Ladder<'_, '_, S> {
    /// Runs every round until an ack, the end of the ladder, or a stop.
    async fn climb(
        &self,
        timeline: &Timeline,
        done: &[RoundRecord],
        report: &mut Report,
    ) -> Result<(PageOutcome, Option<StopReason>), EngineError> {
        let playbook = self.ctx.playbook;
        let limiter = self.provider.limiter.clone();
        let client = self.provider.client.clone();
        if client.needs_login() {
            client
                .login(0, &limiter)
                .await
                .map_err(|e| EngineError::Login(e.to_string()))?;
        }
        if self.ctx.served.is_none() {
            // A pager checks its callbacks once for all its pages.
            self.check_callbacks(&limiter).await;
        }
        self.ctx.observer.started(timeline.calls());
        let mut first = 0usize;
        for round in &timeline.rounds {
            let range = first..first + round.entries.len();
            first = range.end;
            if let Some(outcome) = self.stopped().await? {
                return Ok((outcome, None));
            }
            let step = &playbook
                .escalation
                .as_ref()
                .map(|e| e.steps[round.step].clone())
                .ok_or_else(|| EngineError::PageNotLive(playbook.name.clone()))?;
            let recorded = done
                .iter()
                .find(|r| r.step == step.name && r.round == round.round);
            let (now, wait) = match recorded {
                // Started before a crash or an interrupt: its wait is
                // counted from when it really started, and one that ran
                // out while callbook was down ends at once.
                Some(r) => (
                    r.started_at,
                    (r.due_at.0 - Timestamp::now().0)
                        .to_std()
                        .unwrap_or_default(),
                ),
                None => {
                    let now = Timestamp::now();
                    let wait = if round.calls() > 0 {
                        step.every
                    } else {
                        Duration::ZERO
                    };
                    // The journal keeps whole seconds: the due time is
                    // rounded up, so a resumed wait is never shorter.
                    let due = ceil_second(Timestamp(
                        now.0 + chrono::Duration::from_std(wait).unwrap_or_default(),
                    ));
                    if let Err(e) = self
                        .ctx
                        .store
                        .round_started(&self.run_id, &step.name, round.round, now, due)
                        .await
                    {
                        tracing::error!("{e}");
                        return Ok((PageOutcome::Stopped(e.to_string()), None));
                    }
                    (now, wait)
                }
            };
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.current = Some((step.name.clone(), round.round));
                // A retry still due when the next round starts is dropped.
                state.retries_due.clear();
            }
            if let Some(r) = report.escalation.as_mut().and_then(|e| {
                e.steps
                    .iter_mut()
                    .find(|s| s.name == step.name)
                    .and_then(|s| s.rounds.iter_mut().find(|r| r.round == round.round))
            }) {
                r.started_at = now.to_string();
            }
            // Only calls never sent: a resumed round places what it had not yet.
            let calls: Vec<(usize, CallRequest)> = range
                .clone()
                .filter(|&i| {
                    report
                        .calls
                        .get(i)
                        .is_some_and(|c| c.status == Status::Planned)
                })
                .filter_map(|i| self.requests.get(i).cloned().flatten().map(|c| (i, c)))
                .collect();
            tracing::info!(
                step = step.name.as_str(),
                round = round.round,
                calls = calls.len(),
                "round started"
            );
            if !calls.is_empty()
                && let Some(stop) = self.place(calls, &limiter, report).await
            {
                let outcome = self.after_stop(&stop).await?;
                let stop = (outcome == PageOutcome::Interrupted).then_some(stop);
                return Ok((outcome, stop));
            }
            let placed = range.clone().any(|i| {
                report
                    .calls
                    .get(i)
                    .is_some_and(|c| matches!(c.status, Status::Placed | Status::Unknown))
            });
            // A round whose people were all skipped or failed does not wait.
            if placed && let Some(outcome) = self.wait(wait, &limiter, report).await? {
                return Ok((outcome, None));
            }
        }
        Ok((PageOutcome::Exhausted, None))
    }

    /// Why the page must not go on, if it must not: an ack, its alert
    /// resolved, or an interrupt.
    async fn stopped(&self) -> Result<Option<PageOutcome>, EngineError> {
        if let Some(ack) = self.ack().await? {
            return Ok(Some(PageOutcome::Acknowledged(ack)));
        }
        if self.resolved().is_cancelled() {
            return Ok(Some(PageOutcome::Cancelled));
        }
        if self.ctx.cancel.is_cancelled() {
            return Ok(Some(PageOutcome::Interrupted));
        }
        Ok(None)
    }

    /// How the page ends when placing calls stopped for `stop`.
    async fn after_stop(&self, stop: &StopReason) -> Result<PageOutcome, EngineError> {
        Ok(match stop {
            StopReason::Interrupted => self.stopped().await?.unwrap_or(PageOutcome::Interrupted),
            StopReason::AuthFailed(m) | StopReason::Fatal(m) => PageOutcome::Stopped(m.clone()),
        })
    }

    /// Fired when the page's alert resolved; never for a `run`.
    fn resolved(&self) -> CancellationToken {
        self.ctx
            .served
            .as_ref()
            .map(|s| s.resolved.clone())
            .unwrap_or_default()
    }

    /// The token the callback sink fires when it records an acknowledgement.
    fn acked(&self) -> CancellationToken {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .acked
            .clone()
    }

    /// The acknowledgement that counts, if one was recorded.
    async fn ack(&self) -> Result<Option<AckRecord>, EngineError> {
        self.ctx
            .store
            .first_ack(&self.run_id)
            .await
            .map_err(EngineError::Store)
    }

    /// Places one round's calls; an ack or an interrupt meanwhile starts no
    /// new call (calls in flight finish). Returns why it stopped, if it did.
    async fn place(
        &self,
        calls: Vec<(usize, CallRequest)>,
        limiter: &Arc<RateLimiter>,
        report: &mut Report,
    ) -> Option<StopReason> {
        let provider = &self.ctx.playbook.provider;
        let settings = Settings {
            fonenumber: self.ctx.playbook.caller_id.clone(),
            concurrency: self.ctx.options.concurrency.unwrap_or(provider.concurrency) as usize,
            retries: provider.retries,
            retry_ambiguous: provider.retry_ambiguous,
        };
        let control = Arc::new(Control::default());
        // A pager looks at the journal once for all its pages and wakes them.
        let polls = self.ctx.served.is_none();
        let watcher = {
            let (control, cancel, acked, resolved, store, run_id) = (
                control.clone(),
                self.ctx.cancel.clone(),
                self.acked(),
                self.resolved(),
                self.ctx.store.clone(),
                self.run_id.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = resolved.cancelled() => break,
                        // The sink fires it only after recording an ack.
                        () = acked.cancelled() => break,
                        () = tokio::time::sleep(TICK), if polls => {
                            if matches!(store.first_ack(&run_id).await, Ok(Some(_))) {
                                break;
                            }
                        }
                    }
                }
                // An ack or an interrupt: no new call starts.
                control.stop(StopReason::Interrupted);
            })
        };
        let recorder = Arc::new(PageRecorder {
            inner: RunRecorder {
                names: report
                    .calls
                    .iter()
                    .map(|c| (c.recipient.clone(), c.to.clone()))
                    .collect(),
                store: self.ctx.store.clone(),
                lock: self.ctx.lock.clone(),
                run_id: self.run_id.clone(),
                observer: self.ctx.observer.clone(),
            },
            state: self.state.clone(),
        });
        let indices: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
        let outcomes = dispatch::dispatch(
            self.provider.client.clone(),
            calls,
            settings,
            limiter.clone(),
            control.clone(),
            recorder,
        )
        .await;
        watcher.abort();
        for (index, outcome) in indices.into_iter().zip(outcomes) {
            if let Some(call) = report.calls.get_mut(index) {
                call.status = outcome.status;
                call.call_id = outcome.call_id;
                call.attempts = outcome.attempts;
                call.error = outcome.error;
            }
        }
        control.reason()
    }

    /// Waits `wait` for an ack; marks calls whose `END` never came within
    /// `outcome_timeout` `NO_CALLBACK`, and places retries when due.
    ///
    /// A `run` looks at the journal at least once a second (`callbook ack`
    /// from another process). A pager's page sleeps until its next deadline
    /// (the end of the wait, an outcome overdue, a retry due) unless woken:
    /// by an ack (the sink, `ack()`, or the pager's one look at the journal),
    /// its alert resolving, a retry scheduled, or the shutdown.
    async fn wait(
        &self,
        wait: Duration,
        limiter: &Arc<RateLimiter>,
        report: &mut Report,
    ) -> Result<Option<PageOutcome>, EngineError> {
        let until = tokio::time::Instant::now() + wait;
        let acked = self.acked();
        let resolved = self.resolved();
        let wake = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wake
            .clone();
        let polls = self.ctx.served.is_none();
        let mut woken = false;
        loop {
            if let Some(outcome) = self.stopped().await? {
                return Ok(Some(outcome));
            }
            self.overdue_outcomes().await;
            sync_outcomes(&self.state, report);
            if let Some(stop) = self.retry_due(limiter, report).await {
                return Ok(Some(self.after_stop(&stop).await?));
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(None);
            }
            let mut next = self.next_deadline().map_or(until, |d| d.min(until));
            if polls {
                next = next.min(now + TICK);
            }
            tokio::select! {
                () = self.ctx.cancel.cancelled() => {}
                () = resolved.cancelled() => {}
                // Once woken, the ack is in the journal: the next look finds
                // it. Waking only once keeps this from spinning otherwise.
                () = acked.cancelled(), if !woken => woken = true,
                () = wake.notified() => {}
                () = tokio::time::sleep_until(next.max(now)) => {}
            }
        }
    }

    /// The earliest of the retries due and the outcomes that become overdue.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        let timeout = self.ctx.playbook.ack.outcome_timeout;
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (now, wall) = (tokio::time::Instant::now(), Timestamp::now());
        let overdue = state
            .calls
            .iter()
            .filter(|c| c.disposition.is_none() && c.status == Status::Placed)
            .filter_map(|c| c.answered_at)
            .map(|at| {
                let since = (wall.0 - at.0).to_std().unwrap_or_default();
                // A whole second late at most: the timeout is checked on a clock of its own.
                now + timeout.saturating_sub(since) + Duration::from_millis(10)
            });
        state
            .retries_due
            .iter()
            .map(|(_, at)| *at)
            .chain(overdue)
            .min()
    }

    /// Places the retries that are due: each a new call of the person, in
    /// the report and the journal, right after its `END` asked for it.
    async fn retry_due(
        &self,
        limiter: &Arc<RateLimiter>,
        report: &mut Report,
    ) -> Option<StopReason> {
        let now = tokio::time::Instant::now();
        let due: Vec<usize> = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (due, later): (Vec<_>, Vec<_>) =
                state.retries_due.drain(..).partition(|(_, at)| *at <= now);
            state.retries_due = later;
            due.into_iter().map(|(idx, _)| idx).collect()
        };
        let mut calls = Vec::new();
        for original in due {
            let origin = {
                let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.calls.get(original).map(|c| c.origin)
            };
            let Some(request) = origin.and_then(|o| self.requests.get(o).cloned().flatten()) else {
                continue;
            };
            let Some(mut entry) = report.calls.get(original).cloned() else {
                continue;
            };
            let idx = report.calls.len();
            entry.status = Status::Planned;
            entry.call_id = None;
            entry.attempts = 0;
            entry.error = None;
            entry.reason = None;
            entry.disposition = None;
            entry.billable_seconds = None;
            entry.ended_at = None;
            let retry = {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(first) = state.calls.get(original).cloned() else {
                    continue;
                };
                let retry = state
                    .calls
                    .iter()
                    .filter(|c| c.recipient == first.recipient && c.slot == first.slot)
                    .map(|c| c.retry)
                    .max()
                    .unwrap_or(0)
                    + 1;
                state.calls.push(LiveCall {
                    idx,
                    status: Status::Planned,
                    call_id: None,
                    answered_at: None,
                    disposition: None,
                    billable_seconds: None,
                    ended_at: None,
                    retry,
                    ..first
                });
                retry
            };
            let slot = CallSlot {
                step: entry.step.clone().unwrap_or_default(),
                round: entry.round.unwrap_or_default(),
                at_offset: entry.at_offset_seconds.unwrap_or_default(),
            };
            let call_record = CallRecord {
                idx,
                recipient: entry.recipient.clone(),
                to: entry.to.clone(),
                rule: entry.rule.clone(),
                service_type: Some(request.service_type),
                service_id: self
                    .ctx
                    .options
                    .journal_messages
                    .then(|| request.service_id.clone()),
                fingerprint: Some(fingerprint(&request, Some(&self.ctx.playbook.caller_id))),
                dedup_key: None,
                state: CallState::Pending,
                reason: None,
                call_id: None,
                attempts: 0,
                error: None,
            };
            if let Err(e) = self
                .ctx
                .store
                .add_call(&self.run_id, call_record, slot)
                .await
            {
                tracing::error!("{e}");
                return Some(StopReason::Fatal(e.to_string()));
            }
            tracing::info!(recipient = entry.recipient.as_str(), retry, "retrying");
            report.calls.push(entry);
            calls.push((idx, request));
        }
        if calls.is_empty() {
            return None;
        }
        self.place(calls, limiter, report).await
    }

    /// Gives `NO_CALLBACK` to placed calls whose `END` is overdue.
    async fn overdue_outcomes(&self) {
        overdue_outcomes(self.ctx, &self.state, &self.run_id).await;
    }

    /// Warns loudly when the caller id's callbacks do not point at `--public-url`.
    async fn check_callbacks(&self, limiter: &RateLimiter) {
        let fonenumber = &self.ctx.playbook.caller_id;
        let Some(public) = &self.ctx.options.public_url else {
            tracing::warn!(
                "no --public-url: the page cannot check where the callbacks of {fonenumber} point; without them it escalates on time only"
            );
            return;
        };
        match self.provider.client.callbacks(limiter, fonenumber).await {
            Ok(callbacks) => {
                for problem in crate::provider::hooks::problems(fonenumber, &callbacks, public) {
                    tracing::error!(
                        "callbacks point elsewhere: {problem}; the page escalates on time and learns of no outcome or acknowledgement by them"
                    );
                }
            }
            Err(e) => tracing::warn!("cannot check where the callbacks of {fonenumber} point: {e}"),
        }
    }
}

/// Gives `NO_CALLBACK` to placed calls whose `END` is overdue (past
/// `ack.outcome_timeout` from the answer to their request).
async fn overdue_outcomes<S: Store>(
    ctx: &Context<'_, S>,
    state: &Arc<Mutex<PageState>>,
    run_id: &str,
) {
    let timeout = ctx.playbook.ack.outcome_timeout;
    let now = Timestamp::now();
    let overdue: Vec<usize> = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let overdue: Vec<usize> = state
            .calls
            .iter_mut()
            .filter(|c| c.disposition.is_none() && c.status == Status::Placed)
            .filter(|c| {
                c.answered_at
                    .is_some_and(|at| (now.0 - at.0).to_std().unwrap_or_default() >= timeout)
            })
            .map(|c| {
                c.disposition = Some("NO_CALLBACK".to_string());
                c.idx
            })
            .collect();
        for &idx in &overdue {
            sink::schedule_retry(&mut state, idx, "NO_CALLBACK", ctx.playbook);
        }
        overdue
    };
    for idx in overdue {
        if let Err(e) = ctx
            .store
            .set_disposition(run_id, idx, "NO_CALLBACK", None, now)
            .await
        {
            tracing::error!("{e}");
        }
    }
}

/// A broadcast run with `--listen`: its calls as the callback sink sees
/// them, and the listener serving until the broadcast has its outcomes.
pub(super) struct Listening {
    state: Arc<Mutex<PageState>>,
    stop: CancellationToken,
}

impl Listening {
    /// Serves callbacks for the broadcast `report` describes, when `--listen`
    /// asks for it. A listener that cannot start (no usable secret, the port
    /// taken) is a loud error, not a refusal: the calls matter more than
    /// their dispositions.
    pub(super) async fn start<S: Store>(
        ctx: &Context<'_, S>,
        report: &Report,
    ) -> Option<Listening> {
        let addr = ctx.options.listen?;
        let secret = match secret_of(ctx.options) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::error!(
                    "cannot listen for callbacks on {addr}: {e}; the broadcast records no dispositions"
                );
                return None;
            }
        };
        let state = Arc::new(Mutex::new(PageState {
            run_id: report.run_id.clone(),
            code: String::new(),
            caller_id: ctx.playbook.caller_id.clone(),
            calls: live_calls(report, report.calls.len()),
            people: people(report),
            current: None,
            retries_due: Vec::new(),
            // A broadcast takes no acknowledgement: nothing waits on this.
            acked: CancellationToken::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }));
        let stop = CancellationToken::new();
        match crate::listener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(addr = %listener.local_addr(), "listening for callbacks");
                let sink = Arc::new(PageSink::new(
                    ctx.store.clone(),
                    state.clone(),
                    ctx.playbook,
                ));
                tokio::spawn(listener.serve(secret, sink, stop.clone()));
                Some(Listening { state, stop })
            }
            Err(e) => {
                tracing::error!(
                    "cannot listen for callbacks on {addr}: {e}; the broadcast records no dispositions"
                );
                None
            }
        }
    }

    /// The recorder of the broadcast's calls: it also tells the sink each
    /// call's id and when its request was answered.
    pub(super) fn recorder<S: Store>(&self, inner: RunRecorder<S>) -> PageRecorder<S> {
        PageRecorder {
            inner,
            state: self.state.clone(),
        }
    }

    /// Waits for the `END` callbacks of the placed calls, each up to
    /// `ack.outcome_timeout` from the answer to its request (then it is
    /// `NO_CALLBACK`), stops listening and puts the dispositions in
    /// `report`. Returns whether Ctrl-C or SIGTERM cut the wait short.
    pub(super) async fn finish<S: Store>(self, ctx: &Context<'_, S>, report: &mut Report) -> bool {
        let run_id = report.run_id.clone();
        let outstanding = |state: &Arc<Mutex<PageState>>| {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .calls
                .iter()
                // Placed by this process: a resumed run's earlier calls
                // are recorded when their END comes, but not waited for.
                .filter(|c| c.status == Status::Placed && c.disposition.is_none())
                .filter(|c| c.answered_at.is_some())
                .count()
        };
        let waiting = outstanding(&self.state);
        if waiting > 0 {
            tracing::info!(
                calls = waiting,
                "waiting up to {}s for how the calls ended",
                ctx.playbook.ack.outcome_timeout.as_secs()
            );
        }
        let interrupted = loop {
            overdue_outcomes(ctx, &self.state, &run_id).await;
            if outstanding(&self.state) == 0 {
                break false;
            }
            if ctx.cancel.is_cancelled() {
                break true;
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        };
        if interrupted {
            tracing::error!(
                "interrupted while waiting for how the calls ended: the dispositions received are recorded"
            );
        }
        self.stop.cancel();
        sync_outcomes(&self.state, report);
        report.recount();
        interrupted
    }
}

/// Copies what callbacks taught (dispositions, calls found placed) into the report.
fn sync_outcomes(state: &Arc<Mutex<PageState>>, report: &mut Report) {
    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
    for live in &state.calls {
        if let Some(call) = report.calls.get_mut(live.idx) {
            if live.status == Status::Placed && call.status == Status::Unknown {
                call.status = Status::Placed;
                call.error = None;
            }
            if call.call_id.is_none() {
                call.call_id.clone_from(&live.call_id);
            }
            call.disposition.clone_from(&live.disposition);
            call.billable_seconds = live.billable_seconds;
            call.ended_at = live.ended_at.map(|t| t.to_string());
        }
    }
}

/// Ends the page in the journal and completes its report.
async fn finish<S: Store>(
    ctx: &Context<'_, S>,
    state: &Arc<Mutex<PageState>>,
    report: &mut Report,
    input: &RunInput,
    outcome: PageOutcome,
) {
    let run_id = input.run_id.clone();
    let store = ctx.store.as_ref();
    sync_outcomes(state, report);
    let (word, run_state) = match &outcome {
        PageOutcome::Acknowledged(_) => ("acknowledged", RunState::Finished),
        PageOutcome::Exhausted => ("exhausted", RunState::Finished),
        PageOutcome::Cancelled => ("cancelled", RunState::Finished),
        PageOutcome::Interrupted => ("interrupted", RunState::Interrupted),
        PageOutcome::Stopped(_) => ("stopped", RunState::Stopped),
    };
    let not_sent = match &outcome {
        PageOutcome::Acknowledged(ack) => format!("acknowledged by {}", ack.by),
        PageOutcome::Exhausted => "not attempted: the page was exhausted".to_string(),
        PageOutcome::Cancelled => "cancelled: the alert resolved".to_string(),
        PageOutcome::Interrupted => "not attempted: the page was interrupted".to_string(),
        PageOutcome::Stopped(m) => format!("not attempted: {m}"),
    };
    // Calls never sent: skipped (journal and report alike).
    for call in &mut report.calls {
        let never_sent =
            call.status == Status::Planned || (call.status == Status::Failed && call.attempts == 0);
        if never_sent {
            call.status = Status::Skipped;
            call.reason = Some(not_sent.clone());
            call.error = None;
        }
    }
    let result = match &outcome {
        PageOutcome::Acknowledged(_) | PageOutcome::Exhausted | PageOutcome::Cancelled => {
            let skipped = store.skip_pending(&run_id, &not_sent).await;
            let marked = mark_unsent(store, &run_id, report, &not_sent).await;
            let ended = store.end_page(&run_id, word, run_state).await;
            skipped.and(marked).and(ended)
        }
        // An interrupted or stopped page keeps its unsent calls pending.
        _ => store.end_run(&run_id, run_state).await,
    };
    if let Err(e) = result {
        tracing::error!("{e}");
    }
    if let Some(e) = report.escalation.as_mut() {
        e.outcome = Some(word.to_string());
        if let PageOutcome::Acknowledged(ack) = &outcome {
            let after = (ack.at.0 - input.now).num_seconds().max(0);
            e.ack = Some(AckReport {
                by: ack.by.clone(),
                via: ack.via.as_str().to_string(),
                at: ack.at.to_string(),
                after_seconds: u64::try_from(after).unwrap_or(0),
                text: ack.text.clone(),
                step: None,
                round: None,
            });
            // The step and round going when the ack came: the last one started.
            let current = state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .current
                .clone();
            if let (Some(a), Some((step, round))) = (e.ack.as_mut(), current) {
                a.step = Some(step);
                a.round = Some(round);
            }
        }
        if let PageOutcome::Stopped(m) = &outcome {
            tracing::error!("the page stopped: {m}");
        }
    }
    // Retries were added at the end: by step, round, then playbook order.
    let steps: Vec<String> = ctx
        .playbook
        .escalation
        .as_ref()
        .map(|e| e.steps.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    super::recorded::ladder_order(report, &steps);
    report.finished_at = crate::model::timestamp(chrono::Utc::now());
}

/// Records as skipped the calls a stop left `failed` without any attempt.
async fn mark_unsent<S: Store>(
    store: &S,
    run_id: &str,
    report: &Report,
    reason: &str,
) -> Result<(), crate::store::StoreError> {
    for (idx, call) in report.calls.iter().enumerate() {
        if call.status == Status::Skipped && call.reason.as_deref() == Some(reason) {
            store.skip(run_id, idx, reason).await?;
        }
    }
    Ok(())
}

/// Records calls as a broadcast does, and tells the callback sink about them.
pub(super) struct PageRecorder<S: Store> {
    inner: RunRecorder<S>,
    state: Arc<Mutex<PageState>>,
}

impl<S: Store> dispatch::Recorder for PageRecorder<S> {
    async fn sending(&self, index: usize, attempt: u32) -> Result<(), crate::store::StoreError> {
        self.inner.sending(index, attempt).await
    }

    async fn not_placed(&self, index: usize) -> Result<(), crate::store::StoreError> {
        self.inner.not_placed(index).await
    }

    async fn finished(
        &self,
        index: usize,
        outcome: &Outcome,
    ) -> Result<(), crate::store::StoreError> {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(call) = state.calls.get_mut(index) {
                // A callback may already have told us more (an END for an
                // `unknown` call says it was placed).
                if call.status != Status::Placed {
                    call.status = outcome.status;
                }
                if call.call_id.is_none() {
                    call.call_id.clone_from(&outcome.call_id);
                }
                if outcome.attempts > 0 {
                    call.answered_at = Some(Timestamp::now());
                }
            }
        }
        self.inner.finished(index, outcome).await
    }
}
