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
}

/// Places the calls of a new run and returns the report and the exit code.
///
/// # Errors
/// When the run is refused before any call.
pub fn run(mut ctx: Context<'_>, plan: Plan) -> Result<(Report, Exit), Refusal> {
    let calls = calls_of(&plan);
    if let Some(why) = plan.over_limit(ctx.args.max_calls.or(ctx.playbook.max_calls)) {
        return Err(refuse(format!("{why}: nothing was called"), Exit::Refused));
    }
    let client = client(&ctx)?;
    let records = records(ctx.playbook, &plan, ctx.args.journal_messages);
    let report = Report::from_plan(ctx.playbook, plan, ctx.input);
    if !calls.is_empty() && !ctx.args.yes && !confirm(ctx.playbook, calls.len()) {
        return Err(refuse(
            "not confirmed: nothing was called".to_string(),
            Exit::Refused,
        ));
    }
    let run = RunRecord {
        id: ctx.input.run_id.clone(),
        playbook: ctx.playbook.name.clone(),
        path: ctx.playbook.path.display().to_string(),
        now: timestamp(ctx.input.now),
        started_at: timestamp(chrono::Utc::now()),
        finished_at: None,
        state: "running".to_string(),
    };
    ctx.journal
        .begin_run(&run, &records)
        .map_err(|m| refuse(format!("{m}: nothing was called"), Exit::Refused))?;
    execute(ctx, client, report, calls)
}

/// Continues recorded run `run`: nobody already placed is called again.
///
/// `plan` is the playbook planned again with the run's clock; it must match
/// what was recorded, call for call.
///
/// # Errors
/// When the plan no longer matches or the run is refused.
pub fn resume(
    ctx: Context<'_>,
    plan: Plan,
    run: &RunRecord,
    recorded: &[CallRecord],
) -> Result<(Report, Exit), Refusal> {
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
    let retry_unknown = ctx.playbook.provider.retry_ambiguous;
    let mut calls = Vec::new();
    let mut settled = Vec::new();
    for (i, (entry, rec)) in plan.entries.iter().zip(recorded).enumerate() {
        let name = &ctx.playbook.recipients[entry.recipient].name;
        if *name != rec.recipient || entry.to != rec.to {
            return Err(changed(format!(
                "entry {i} was `{}`, now `{name}`",
                rec.recipient
            )));
        }
        if rec.state == "skipped" {
            settled.push((i, Status::Skipped, rec));
            continue;
        }
        let Decision::Call(call) = &entry.decision else {
            return Err(changed(format!(
                "`{name}` was to be called, now is skipped"
            )));
        };
        if rec.fingerprint.as_deref() != Some(fingerprint(call).as_str()) {
            return Err(changed(format!(
                "the call to `{name}` would now send something else"
            )));
        }
        let status = journal::status_of(&rec.state);
        let again = match status {
            Status::Placed | Status::Skipped => false,
            Status::Unknown => retry_unknown,
            Status::Failed | Status::Planned => true,
        };
        if again {
            calls.push((i, call.clone()));
        } else {
            settled.push((i, status, rec));
        }
    }
    let client = client(&ctx)?;
    let mut report = Report::from_plan(ctx.playbook, plan, ctx.input);
    report.run_id = run.id.clone();
    report.started_at = run.started_at.clone();
    for (i, status, rec) in settled {
        if let Some(c) = report.calls.get_mut(i) {
            c.status = status;
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
            if status == Status::Skipped {
                c.service_type = None;
                c.service_id = None;
            }
        }
    }
    if !calls.is_empty() && !ctx.args.yes && !confirm(ctx.playbook, calls.len()) {
        return Err(refuse(
            "not confirmed: nothing was called".to_string(),
            Exit::Refused,
        ));
    }
    ctx.journal
        .reopen_run(&run.id)
        .map_err(|m| refuse(format!("{m}: nothing was called"), Exit::Refused))?;
    tracing::info!(
        run = %run.id,
        remaining = calls.len(),
        "resuming: calls already placed or possibly placed are not repeated"
    );
    execute(ctx, client, report, calls)
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
                fingerprint: call.map(fingerprint),
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
) -> Result<(Report, Exit), Refusal> {
    let provider_settings = &ctx.playbook.provider;
    let run_id = report.run_id.clone();
    let journal = Arc::new(Mutex::new(ctx.journal));
    if calls.is_empty() {
        end_run(&journal, &run_id, "finished");
        report.recount();
        report.finished_at = timestamp(chrono::Utc::now());
        return Ok((report, Exit::Success));
    }
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
    let observer_run = run_id.clone();
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
    let state = match &stop {
        Some(StopReason::Interrupted) => {
            tracing::error!("interrupted: calls in flight were finished and recorded");
            "interrupted"
        }
        Some(StopReason::AuthFailed(m) | StopReason::Fatal(m)) => {
            tracing::error!("the run stopped: {m}");
            "stopped"
        }
        None => "finished",
    };
    end_run(&journal, &run_id, state);
    Ok((report, exit))
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
