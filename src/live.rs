//! A live run: credentials, confirmation, signals, dispatch, and the final report.
//!
//! Everything that can refuse the run (credentials, `max_calls`, the base
//! URL, a declined confirmation, a rejected login) is checked before the
//! first call. Once calls start, every planned call ends in the report as
//! `placed`, `failed` or `unknown`, whatever happens.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cli::RunArgs;
use crate::diag::Diagnostic;
use crate::dispatch::{self, Control, Observer, Outcome, Settings, StopReason};
use crate::exit::Exit;
use crate::limiter::RateLimiter;
use crate::plan::{Decision, Plan, RunInput};
use crate::playbook::Playbook;
use crate::provider::{self, Client, Credentials};
use crate::report::{Report, Status, timestamp};
use crate::term;

/// Why a live run did not start: the diagnostics to show and the exit code.
pub type Refusal = (Vec<Diagnostic>, Exit);

/// Places the calls of `plan` and returns the report and the exit code.
///
/// # Errors
/// When the run is refused before any call.
pub fn run(
    playbook: &Playbook,
    plan: Plan,
    input: &RunInput,
    args: &RunArgs,
    quiet: bool,
) -> Result<(Report, Exit), Refusal> {
    let refuse = |message: String, exit: Exit| (vec![Diagnostic::error(None, message)], exit);
    let calls: Vec<(usize, crate::plan::CallRequest)> = plan
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.decision {
            Decision::Call(c) => Some((i, c.clone())),
            Decision::Skip(_) => None,
        })
        .collect();
    if let Some(max) = args.max_calls.or(playbook.max_calls)
        && calls.len() as u64 > max
    {
        return Err(refuse(
            format!(
                "the plan holds {} calls, more than the limit of {max} (limits.max_calls or --max-calls): nothing was called",
                calls.len()
            ),
            Exit::Refused,
        ));
    }
    let provider_settings = &playbook.provider;
    let base = args
        .base_url
        .clone()
        .unwrap_or_else(|| provider_settings.base_url.clone());
    let base = provider::check_base_url(&base)
        .map_err(|m| refuse(format!("base URL: {m}"), Exit::Invalid))?;
    let Some(credentials) = Credentials::from_env() else {
        return Err(refuse(
            "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD; nothing was called".to_string(),
            Exit::Refused,
        ));
    };
    let mut report = Report::from_plan(playbook, plan, input);
    if calls.is_empty() {
        report.finished_at = timestamp(chrono::Utc::now());
        return Ok((report, Exit::Success));
    }
    if !args.yes && !confirm(playbook, calls.len()) {
        return Err(refuse(
            "not confirmed: nothing was called".to_string(),
            Exit::Refused,
        ));
    }
    let client = Client::new(base, credentials, provider_settings.timeout)
        .map_err(|m| refuse(m, Exit::Refused))?;
    let settings = Settings {
        fonenumber: playbook.caller_id.clone(),
        concurrency: args.concurrency.unwrap_or(provider_settings.concurrency) as usize,
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
        args.rate_limit.unwrap_or(provider_settings.rate_limit),
    ));
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
        let observer = Arc::new(LogObserver {
            names,
            bar: bar.clone(),
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
    match stop {
        Some(StopReason::Interrupted) => {
            tracing::error!("interrupted: calls in flight were finished and recorded");
        }
        Some(StopReason::AuthFailed(m) | StopReason::Fatal(m)) => {
            tracing::error!("the run stopped: {m}");
        }
        None => {}
    }
    Ok((report, exit))
}

/// The exit code `cli.md` gives a finished live run.
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
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            {
                let sigterm = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = sigterm => {}
                }
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

/// Logs one line per call outcome and moves the progress bar.
struct LogObserver {
    names: Vec<(String, String)>,
    bar: Option<indicatif::ProgressBar>,
}

impl Observer for LogObserver {
    fn finished(&self, index: usize, outcome: &Outcome) {
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
    }
}
