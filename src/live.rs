//! A live run: credentials, confirmation, signals, dispatch, and the final report.
//!
//! Everything that can refuse the run (credentials, `max_calls`, the base
//! URL, a declined confirmation, a rejected login) is checked before the
//! first call. Once calls start, every planned call ends in the report as
//! `placed`, `failed` or `unknown`, whatever happens.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::cli::RunArgs;
use crate::diag::Diagnostic;
use crate::dispatch::{self, Control, Observer, Outcome, Settings, StopReason};
use crate::exit::Exit;
use crate::journal::{self, CallRecord, Journal, RunRecord, fingerprint};
use crate::limiter::RateLimiter;
use crate::plan::{CallRequest, Decision, Plan, RunInput};
use crate::playbook::Playbook;
use crate::provider::{self, Client, Credentials};
use crate::report::{Report, Status, timestamp};
use crate::term;

/// Why a live run did not start: the diagnostics to show and the exit code.
pub type Refusal = (Vec<Diagnostic>, Exit);

fn refuse(message: String, exit: Exit) -> Refusal {
    (vec![Diagnostic::error(None, message)], exit)
}

/// What a live run works with besides its plan.
pub struct Context<'a> {
    /// The checked playbook.
    pub playbook: &'a Playbook,
    /// Variables, input, clock and run id.
    pub input: &'a RunInput,
    /// The command line.
    pub args: &'a RunArgs,
    /// `-q`: no progress bar.
    pub quiet: bool,
    /// Where the plan and every outcome are recorded.
    pub journal: Journal,
    /// The run lock's file: no call starts once it is deleted or replaced.
    pub lock: Option<journal::FileIdentity>,
}

/// Places the calls of a new run and returns the report and the exit code.
///
/// A run refused before its first call (`max_calls`, credentials, a declined
/// confirmation, a rejected login) is recorded as `refused`.
///
/// # Errors
/// When the run is refused before any call.
pub fn run(mut ctx: Context<'_>, plan: Plan) -> Result<(Report, Exit), Refusal> {
    let calls = calls_of(&plan);
    let mut run = run_record(&ctx);
    let records = records(ctx.playbook, &plan, ctx.args.journal_messages);
    let refused = |journal: &mut Journal, run: &mut RunRecord, refusal: Refusal| {
        if refusal.1 == Exit::Refused {
            record_refused(journal, run, &records);
        }
        refusal
    };
    if let Some(why) = plan.over_limit(ctx.args.max_calls.or(ctx.playbook.max_calls)) {
        let refusal = refuse(format!("{why}: nothing was called"), Exit::Refused);
        return Err(refused(&mut ctx.journal, &mut run, refusal));
    }
    let client = match client(&ctx) {
        Ok(c) => c,
        Err(refusal) => return Err(refused(&mut ctx.journal, &mut run, refusal)),
    };
    let report = Report::from_plan(ctx.playbook, plan, ctx.input);
    if !calls.is_empty() && !ctx.args.yes && !confirm(ctx.playbook, calls.len()) {
        let refusal = refuse(
            "not confirmed: nothing was called".to_string(),
            Exit::Refused,
        );
        return Err(refused(&mut ctx.journal, &mut run, refusal));
    }
    ctx.journal
        .begin_run(&run, &records)
        .map_err(|m| refuse(format!("{m}: nothing was called"), Exit::Refused))?;
    execute(ctx, client, report, calls, Resumed::No)
}

/// How a live run of this playbook is recorded when it starts.
fn run_record(ctx: &Context<'_>) -> RunRecord {
    RunRecord {
        id: ctx.input.run_id.clone(),
        playbook: ctx.playbook.name.clone(),
        path: ctx.playbook.path.display().to_string(),
        now: timestamp(ctx.input.now),
        started_at: timestamp(chrono::Utc::now()),
        finished_at: None,
        state: "running".to_string(),
        caller_id: Some(ctx.playbook.caller_id.clone()),
        pid: Some(std::process::id()),
        fingerprint_version: journal::FINGERPRINT_VERSION,
    }
}

/// Records a run refused before any call, so `callbook runs` shows it as such.
fn record_refused(journal: &mut Journal, run: &mut RunRecord, records: &[CallRecord]) {
    run.state = "refused".to_string();
    run.finished_at = Some(timestamp(chrono::Utc::now()));
    if let Err(e) = journal.begin_run(run, records) {
        tracing::warn!("the refused run was not recorded: {e}");
    }
}

/// Records run `playbook` refused before it could plan (another run holds its lock).
pub fn record_refused_run(
    journal: &mut Journal,
    playbook: &Playbook,
    input: &RunInput,
) -> Result<(), String> {
    let now = timestamp(chrono::Utc::now());
    let run = RunRecord {
        id: input.run_id.clone(),
        playbook: playbook.name.clone(),
        path: playbook.path.display().to_string(),
        now: timestamp(input.now),
        started_at: now.clone(),
        finished_at: Some(now),
        state: "refused".to_string(),
        caller_id: Some(playbook.caller_id.clone()),
        pid: Some(std::process::id()),
        fingerprint_version: journal::FINGERPRINT_VERSION,
    };
    journal.begin_run(&run, &[])
}

/// Whether `execute` continues a recorded run, and the state to give it back if refused.
enum Resumed<'a> {
    /// A new run: refused, it is `refused`.
    No,
    /// A resume: refused, the run keeps this state, so it can still be resumed.
    Yes(&'a str),
}

/// Continues recorded run `run`: nobody already placed is called again.
///
/// `plan` is the playbook planned again with the run's clock; it must match
/// what was recorded, call for call. A call still to be made is skipped when
/// the dedup window holds a call to the same person by a later run, exactly
/// as a fresh run would skip it.
///
/// # Errors
/// When the plan no longer matches or the run is refused.
pub fn resume(
    ctx: Context<'_>,
    plan: Plan,
    run: &RunRecord,
    recorded: &[CallRecord],
) -> Result<(Report, Exit), Refusal> {
    let sorted = sort_recorded(&ctx, &plan, run, recorded)?;
    let client = client(&ctx)?;
    let mut report = Report::from_plan(ctx.playbook, plan, ctx.input);
    report.run_id = run.id.clone();
    report.started_at = run.started_at.clone();
    settle_report(&mut report, &sorted);
    let Sorted { calls, deduped, .. } = sorted;
    if !calls.is_empty() && !ctx.args.yes && !confirm(ctx.playbook, calls.len()) {
        return Err(refuse(
            "not confirmed: nothing was called".to_string(),
            Exit::Refused,
        ));
    }
    let reopened = ctx.journal.reopen_run(&run.id).and_then(|()| {
        deduped
            .iter()
            .try_for_each(|(i, reason)| ctx.journal.skip(&run.id, *i, reason))
    });
    reopened.map_err(|m| refuse(format!("{m}: nothing was called"), Exit::Refused))?;
    tracing::info!(
        run = %run.id,
        remaining = calls.len(),
        "resuming: calls already placed or possibly placed are not repeated"
    );
    // Refused from here on (a rejected login), it stays resumable.
    let was = match run.state.as_str() {
        "stopped" => "stopped",
        _ => "interrupted",
    };
    execute(ctx, client, report, calls, Resumed::Yes(was))
}

/// A recorded run's calls, sorted by what a resume does with them.
struct Sorted<'r> {
    /// Still to be made.
    calls: Vec<(usize, CallRequest)>,
    /// Settled by the run itself: placed, possibly placed, or skipped.
    settled: Vec<(usize, Status, &'r CallRecord)>,
    /// Still to be made, but a later run called them inside the dedup window.
    deduped: Vec<(usize, String)>,
}

/// Checks that `plan` is the plan recorded for `run` and sorts its calls.
fn sort_recorded<'r>(
    ctx: &Context<'_>,
    plan: &Plan,
    run: &RunRecord,
    recorded: &'r [CallRecord],
) -> Result<Sorted<'r>, Refusal> {
    let changed = |what: String| {
        refuse(
            format!(
                "cannot resume run {}: {what}; resume with the playbook, variables and input it started with (nothing was called)",
                run.id
            ),
            Exit::Invalid,
        )
    };
    if plan.entries.len() != recorded.len() {
        return Err(changed(format!(
            "it planned {} recipients, this plan has {}",
            recorded.len(),
            plan.entries.len()
        )));
    }
    if let Some(was) = &run.caller_id
        && *was != ctx.playbook.caller_id
    {
        return Err(changed(format!(
            "it called from `{was}`, the playbook now calls from `{}`",
            ctx.playbook.caller_id
        )));
    }
    // Fingerprints of runs recorded before format 2 do not cover the caller id.
    let caller_id = (run.fingerprint_version >= 2).then_some(ctx.playbook.caller_id.as_str());
    let retry_unknown = ctx.playbook.provider.retry_ambiguous;
    let now = chrono::Utc::now();
    let mut sorted = Sorted {
        calls: Vec::new(),
        settled: Vec::new(),
        deduped: Vec::new(),
    };
    for (i, (entry, rec)) in plan.entries.iter().zip(recorded).enumerate() {
        let name = &ctx.playbook.recipients[entry.recipient].name;
        if *name != rec.recipient || entry.to != rec.to {
            return Err(changed(format!(
                "entry {i} was `{}`, now `{name}`",
                rec.recipient
            )));
        }
        if rec.state == "skipped" {
            sorted.settled.push((i, Status::Skipped, rec));
            continue;
        }
        let Decision::Call(call) = &entry.decision else {
            return Err(changed(format!(
                "`{name}` was to be called, now is skipped"
            )));
        };
        if rec.fingerprint.as_deref() != Some(fingerprint(call, caller_id).as_str()) {
            return Err(changed(format!(
                "the call to `{name}` would now send something else"
            )));
        }
        // The dedup history is looked up, and the resumed calls recorded, by key:
        // under another key a later run's calls to them would go unseen.
        if rec.dedup_key != call.dedup_key {
            return Err(changed(format!(
                "the dedup key of the call to `{name}` changed"
            )));
        }
        let status = journal::status_of(&rec.state);
        let again = match status {
            Status::Placed | Status::Skipped => false,
            Status::Unknown => retry_unknown,
            Status::Failed | Status::Planned => true,
        };
        if !again {
            sorted.settled.push((i, status, rec));
            continue;
        }
        // A later run may have called them meanwhile: the dedup window decides, as for any run.
        let skip = journal::already_called(&ctx.journal, ctx.playbook, call, now, Some(&run.id))
            .map_err(|m| refuse(format!("{m}: nothing was called"), Exit::Refused))?;
        match skip {
            Some(reason) => sorted.deduped.push((i, reason)),
            None => sorted.calls.push((i, call.clone())),
        }
    }
    Ok(sorted)
}

/// Fills in what the recorded run already settled and what dedup skips.
fn settle_report(report: &mut Report, sorted: &Sorted<'_>) {
    for (i, status, rec) in &sorted.settled {
        if let Some(c) = report.calls.get_mut(*i) {
            c.status = *status;
            c.call_id = rec.call_id.clone();
            c.attempts = rec.attempts;
            c.reason = rec.reason.clone().or(c.reason.take());
            c.error = match (&rec.error, rec.state.as_str()) {
                (_, "sending") => Some(
                    "the request was sent but its outcome was never recorded: the call may have been placed"
                        .to_string(),
                ),
                (e, _) => e.clone(),
            };
            if *status == Status::Skipped {
                c.service_type = None;
                c.service_id = None;
            }
        }
    }
    for (i, reason) in &sorted.deduped {
        if let Some(c) = report.calls.get_mut(*i) {
            c.status = Status::Skipped;
            c.reason = Some(reason.clone());
            c.service_type = None;
            c.service_id = None;
        }
    }
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

/// The plan as the journal records it.
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
                to: e.to.clone(),
                rule: e.rule.clone(),
                service_type: call.map(|c| c.service_type.as_str().to_string()),
                service_id: call.filter(|_| with_messages).map(|c| c.service_id.clone()),
                fingerprint: call.map(|c| fingerprint(c, Some(&playbook.caller_id))),
                dedup_key: call.and_then(|c| c.dedup_key.clone()),
                state: if call.is_some() { "pending" } else { "skipped" }.to_string(),
                reason,
                call_id: None,
                attempts: 0,
                error: None,
            }
        })
        .collect()
}

/// Checks the base URL and credentials and builds the client.
fn client(ctx: &Context<'_>) -> Result<Client, Refusal> {
    let settings = &ctx.playbook.provider;
    let base = ctx
        .args
        .base_url
        .clone()
        .unwrap_or_else(|| settings.base_url.clone());
    let base = provider::check_base_url(&base)
        .map_err(|m| refuse(format!("base URL: {m}"), Exit::Invalid))?;
    let Some(credentials) = Credentials::from_env() else {
        return Err(refuse(
            "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD; nothing was called".to_string(),
            Exit::Refused,
        ));
    };
    Client::new(base, credentials, settings.timeout).map_err(|m| refuse(m, Exit::Refused))
}

/// Dispatches `calls`, records everything, and completes the report.
fn execute(
    ctx: Context<'_>,
    client: Client,
    mut report: Report,
    calls: Vec<(usize, CallRequest)>,
    resumed: Resumed<'_>,
) -> Result<(Report, Exit), Refusal> {
    let run_id = report.run_id.clone();
    let Context {
        playbook,
        args,
        quiet,
        journal,
        lock,
        ..
    } = ctx;
    let ctx_parts = Parts {
        playbook,
        args,
        quiet,
        lock,
    };
    let journal = Arc::new(Mutex::new(journal));
    if calls.is_empty() {
        end_run(&journal, &run_id, "finished");
        report.recount();
        report.finished_at = timestamp(chrono::Utc::now());
        // Settled calls of a resumed run count like any: an `unknown` one is exit 1.
        let exit = exit_code(&report, None);
        return Ok((report, exit));
    }
    let refused_state = match resumed {
        Resumed::No => "refused",
        Resumed::Yes(was) => was,
    };
    match dispatch_all(&ctx_parts, client, report, calls, &journal, &run_id) {
        Ok((report, exit, stop)) => {
            let state = match &stop {
                Some(StopReason::Interrupted) => {
                    tracing::error!("interrupted: calls in flight were finished and recorded");
                    "interrupted"
                }
                Some(StopReason::AuthFailed(m) | StopReason::Fatal(m)) => {
                    tracing::error!("the run stopped: {m}");
                    // Refused before any call was placed or possibly placed.
                    if exit == Exit::Refused {
                        refused_state
                    } else {
                        "stopped"
                    }
                }
                None => "finished",
            };
            end_run(&journal, &run_id, state);
            Ok((report, exit))
        }
        Err(refusal) => {
            end_run(&journal, &run_id, refused_state);
            Err(refusal)
        }
    }
}

/// What dispatching needs of the run's context (the journal is shared apart).
struct Parts<'a> {
    playbook: &'a Playbook,
    args: &'a RunArgs,
    quiet: bool,
    lock: Option<journal::FileIdentity>,
}

/// Logs in, places `calls` and completes the report; says why the run stopped, if it did.
fn dispatch_all(
    ctx: &Parts<'_>,
    client: Client,
    mut report: Report,
    calls: Vec<(usize, CallRequest)>,
    journal: &Arc<Mutex<Journal>>,
    run_id: &str,
) -> Result<(Report, Exit, Option<StopReason>), Refusal> {
    let provider_settings = &ctx.playbook.provider;
    let settings = Settings {
        fonenumber: ctx.playbook.caller_id.clone(),
        concurrency: ctx
            .args
            .concurrency
            .unwrap_or(provider_settings.concurrency) as usize,
        retries: provider_settings.retries,
        retry_ambiguous: provider_settings.retry_ambiguous,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| refuse(format!("cannot start the runtime: {e}"), Exit::Refused))?;
    let names: Vec<(String, String)> = report
        .calls
        .iter()
        .map(|c| (c.recipient.clone(), c.to.clone()))
        .collect();
    let total = calls.len();
    let limiter = Arc::new(RateLimiter::new(
        ctx.args.rate_limit.unwrap_or(provider_settings.rate_limit),
    ));
    let quiet = ctx.quiet;
    let observer_journal = journal.clone();
    let observer_run = run_id.to_string();
    let observer_lock = ctx.lock.clone();
    let (outcomes, stop) = runtime.block_on(async move {
        let client = Arc::new(client);
        if client.needs_login() {
            client
                .login(0, &limiter)
                .await
                .map_err(|e| refuse(format!("{e}; nothing was called"), Exit::Refused))?;
        }
        let control = Arc::new(Control::default());
        listen_for_signals(control.clone(), total);
        let bar = term::start_progress(total as u64, !quiet);
        let observer = Arc::new(RunObserver {
            names,
            bar: bar.clone(),
            journal: observer_journal,
            run_id: observer_run,
            lock: observer_lock,
        });
        let indices: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
        let outcomes =
            dispatch::dispatch(client, calls, settings, limiter, control.clone(), observer).await;
        term::finish_progress(bar);
        Ok::<_, Refusal>((
            indices.into_iter().zip(outcomes).collect::<Vec<_>>(),
            control.reason(),
        ))
    })?;
    for (index, outcome) in outcomes {
        if let Some(call) = report.calls.get_mut(index) {
            call.status = outcome.status;
            call.call_id = outcome.call_id;
            call.attempts = outcome.attempts;
            call.error = outcome.error;
        }
    }
    report.recount();
    report.finished_at = timestamp(chrono::Utc::now());
    let exit = exit_code(&report, stop.as_ref());
    Ok((report, exit, stop))
}

fn end_run(journal: &Mutex<Journal>, run_id: &str, state: &str) {
    let journal = journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = journal.end_run(run_id, state) {
        tracing::error!("{e}");
    }
}

/// The exit code of a finished live run (see [`Exit`]).
fn exit_code(report: &Report, stop: Option<&StopReason>) -> Exit {
    let t = &report.totals;
    match stop {
        Some(StopReason::Interrupted) => Exit::Interrupted,
        Some(StopReason::AuthFailed(_)) if t.placed == 0 && t.unknown == 0 => Exit::Refused,
        _ if t.failed > 0 || t.unknown > 0 => Exit::CallsFailed,
        _ => Exit::Success,
    }
}

/// Asks before calling, when a person is at a terminal; never under cron.
fn confirm(playbook: &Playbook, calls: usize) -> bool {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return true;
    }
    let noun = if calls == 1 { "call" } else { "calls" };
    eprint!(
        "Place {calls} {noun} for playbook `{}` from {}? [y/N] ",
        playbook.name, playbook.caller_id
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Ctrl-C / SIGTERM: the first stops new calls, the second exits at once.
fn listen_for_signals(control: Arc<Control>, total: usize) {
    // Registered here, before any call starts, not when the task first runs:
    // a signal in between would otherwise kill the process outright.
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    let count = AtomicUsize::new(0);
    tokio::spawn(async move {
        loop {
            #[cfg(unix)]
            tokio::select! {
                () = next_signal(&mut interrupt) => {}
                () = next_signal(&mut terminate) => {}
            }
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if count.fetch_add(1, Ordering::SeqCst) > 0 {
                eprintln!("interrupted again: exiting now; calls in flight have unknown outcomes");
                std::process::exit(Exit::Interrupted as i32);
            }
            tracing::warn!(
                "interrupted: starting no new calls (of {total}); finishing those in flight, Ctrl-C again to abort"
            );
            control.stop(StopReason::Interrupted);
        }
    });
}

/// The next delivery of a signal; never, if it could not be registered.
#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    let delivered = match signal {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !delivered {
        std::future::pending::<()>().await;
    }
}

/// Records each call in the journal, logs its outcome and moves the progress bar.
struct RunObserver {
    names: Vec<(String, String)>,
    bar: Option<indicatif::ProgressBar>,
    journal: Arc<Mutex<Journal>>,
    run_id: String,
    lock: Option<journal::FileIdentity>,
}

impl RunObserver {
    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Observer for RunObserver {
    fn sending(&self, index: usize, attempt: u32) -> Result<(), String> {
        if let Some(lock) = self.lock.as_ref().filter(|l| !l.intact()) {
            return Err(format!(
                "lock `{}` was deleted or replaced during the run: another run may be calling now, so no new call is started",
                lock.path().display()
            ));
        }
        self.journal().sending(&self.run_id, index, attempt)
    }

    fn not_placed(&self, index: usize) -> Result<(), String> {
        self.journal().not_placed(&self.run_id, index)
    }

    fn finished(&self, index: usize, outcome: &Outcome) -> Result<(), String> {
        let recorded = self.journal().finished(&self.run_id, index, outcome);
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
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        recorded
    }
}
