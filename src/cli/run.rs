//! `callbook run`: checks the flags once, then hands the engine plain values;
//! asks before calling, turns Ctrl-C into cancellation, draws the progress
//! bar and prints the report.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::args::{Format, RunArgs};
use super::exit::{self, Exit, Failure};
use super::{Output, print_stdout, runtime, state_dir, vars};
use crate::diag::{Diagnostic, Sources};
use crate::engine::{self, Observer, Planned, Resume, RunOptions};
use crate::model::Outcome;
use crate::plan::{RunInput, Selection};
use crate::playbook::{self, Playbook};
use crate::provider::Credentials;
use crate::report::{self, PlanReport, Report};
use crate::store::sqlite::SqliteStore;

/// Runs a playbook: a dry run, a live run or a resume.
pub(super) fn run(args: &RunArgs, out: &mut Output<'_>) -> Result<Exit, Failure> {
    if args.now.is_some() && !args.dry_run {
        // A moved clock would move dedup windows and the times the journal records.
        return Err(Failure::Invalid(vec![Diagnostic::error(
            None,
            "`--now` is only for dry runs: a live run always uses the real clock (nothing was called)"
                .to_string(),
        )]));
    }
    // A page resumes from what it recorded, not from the files on disk.
    let recorded = if args.dry_run {
        None
    } else {
        super::page::recorded_page(args, out.sources)?
    };
    let (playbook, input, resume_run) = match recorded {
        Some(page) => {
            out.diagnostics(&page.loaded.warnings);
            (page.loaded.playbook, page.input, Some(page.run_id))
        }
        None => {
            let options = playbook::LoadOptions {
                include_root: args.include_root.clone(),
            };
            let loaded = playbook::load_with(&args.playbook, out.sources, &options)
                .map_err(Failure::Invalid)?;
            out.diagnostics(&loaded.warnings);
            let playbook = loaded.playbook;
            let input = run_input(args, &playbook, out.sources).map_err(Failure::Invalid)?;
            (playbook, input, None)
        }
    };
    if let Some(report) = args.report_file.as_deref()
        && let Some(what) = overwritten_by_report(args, report)
    {
        return Err(Failure::Invalid(vec![Diagnostic::error(
            None,
            format!(
                "--report-file: `{}` is the {what}, which the report would replace; nothing was called",
                report.display()
            ),
        )]));
    }
    let report_file = match args
        .report_file
        .as_deref()
        .map(report::json::ReportFile::create)
    {
        None => None,
        Some(Ok(file)) => Some(file),
        Some(Err(e)) => {
            let path = args.report_file.as_deref().unwrap_or(Path::new(""));
            return Err(Failure::Invalid(vec![Diagnostic::error(
                None,
                format!(
                    "--report-file: cannot write `{}`: {}; nothing was called",
                    path.display(),
                    playbook::io_reason(&e)
                ),
            )]));
        }
    };
    let state_dir = state_dir(args.state_dir.as_deref());
    if args.dry_run {
        let exit = dry_run(args, out, &playbook, &input, state_dir.ok(), report_file);
        // The process ends next: freeing every recipient one by one only
        // delays the exit (by a tenth of a second for 100 000).
        std::mem::forget(playbook);
        return exit;
    }
    let store = Arc::new(SqliteStore::writable(state_dir?));
    let cancel = CancellationToken::new();
    let observer = Arc::new(Terminal {
        ask: !args.yes,
        bar_wanted: !out.quiet,
        bar: Mutex::new(None),
        cancel: cancel.clone(),
    });
    let finished = runtime()?
        .block_on(engine::run(
            store,
            &playbook,
            input,
            &options_of(args, &playbook, out.sources, resume_run)?,
            observer,
            cancel,
        ))
        .map_err(Failure::Engine)?;
    // The calls are done: a report file that fails now must not hide
    // what happened behind another exit code.
    emit(&finished.report, args.format, report_file, out);
    Ok(exit::finished(&finished))
}

/// What the engine takes from the command line and the environment.
fn options_of(
    args: &RunArgs,
    playbook: &Playbook,
    sources: &Sources,
    resume_run: Option<String>,
) -> Result<RunOptions, Failure> {
    let page = super::page_options(args, playbook, sources)?;
    let resume = match resume_run {
        // The page found by its recorded sources, whatever its playbook says now.
        Some(id) => Some(Resume::Run(id)),
        None => args.resume.as_ref().map(|id| match id {
            Some(id) => Resume::Run(id.clone()),
            None => Resume::Latest,
        }),
    };
    Ok(RunOptions {
        max_calls: args.max_calls,
        base_url: args.base_url.clone(),
        concurrency: args.concurrency,
        rate_limit: args.rate_limit,
        journal_messages: args.journal_messages,
        credentials: Credentials::from_env(),
        resume,
        ..page
    })
}

/// `run --dry-run`: the plan as it would be sent, dedup read from the journal.
fn dry_run(
    args: &RunArgs,
    out: &Output<'_>,
    playbook: &Playbook,
    input: &RunInput,
    state_dir: Option<std::path::PathBuf>,
    report_file: Option<report::json::ReportFile>,
) -> Result<Exit, Failure> {
    let store = state_dir.map(SqliteStore::read_only);
    let dry = runtime()?
        .block_on(engine::dry_run(
            store.as_ref(),
            playbook,
            input,
            args.max_calls,
        ))
        .map_err(Failure::Engine)?;
    if let Some(why) = &dry.over_limit {
        out.diagnostics(&[Diagnostic::warning(
            None,
            format!("a live run would be refused: {why}"),
        )]);
    }
    let written = match &dry.planned {
        Planned::Page(report) => emit(report, args.format, report_file, out),
        Planned::Broadcast(plan) => {
            let mut report = PlanReport::new(playbook, plan, input);
            report.header.finished_at.clone_from(&dry.finished_at);
            match args.format {
                Format::Json => emit_json(&report, report_file, out),
                Format::Table => emit(&report.to_report(), args.format, report_file, out),
            }
        }
    };
    // As the playbook: the plan is not freed piece by piece at exit.
    std::mem::forget(dry);
    if written {
        Ok(Exit::Success)
    } else {
        // Nothing was called, and the file asked for is missing.
        Ok(Exit::Invalid)
    }
}

/// Which file of the run `report` would replace: the playbook, the
/// `--vars-file` or the `--input` (so that the next cron run still finds them).
fn overwritten_by_report(args: &RunArgs, report: &Path) -> Option<&'static str> {
    let report = report.canonicalize().ok()?;
    [
        (Some(args.playbook.as_path()), "playbook"),
        (args.vars_file.as_deref(), "--vars-file"),
        (args.input.as_deref(), "--input file"),
    ]
    .into_iter()
    .find_map(|(path, what)| {
        let path = path?.canonicalize().ok()?;
        (path == report).then_some(what)
    })
}

/// Prints the report and writes `--report-file`, made ready before the run.
///
/// Returns whether the report file (if any) was written. When it was not,
/// the error says so and the report is still on standard output, so a run's
/// outcome is never lost.
fn emit(
    report: &Report,
    format: Format,
    report_file: Option<report::json::ReportFile>,
    out: &Output<'_>,
) -> bool {
    if format == Format::Json {
        return emit_json(report, report_file, out);
    }
    let mut written = true;
    if let Some(file) = report_file {
        let path = file.path().to_path_buf();
        if let Err(e) = file.write(report) {
            written = false;
            out.error(format!(
                "--report-file: cannot write `{}`: {}; the report is on standard output",
                path.display(),
                playbook::io_reason(&e)
            ));
        }
    }
    print_report(report, format);
    written
}

/// The JSON report on standard output and in `--report-file`, serialized
/// once and written to both as it is made; otherwise as [`emit`].
fn emit_json(
    report: &impl serde::Serialize,
    report_file: Option<report::json::ReportFile>,
    out: &Output<'_>,
) -> bool {
    let Some(file) = report_file else {
        // A closed pipe (`| head`) is not an error worth reporting.
        drop(report::json::write(report, std::io::stdout().lock()));
        return true;
    };
    let path = file.path().to_path_buf();
    match file.write_also(report, Some(std::io::stdout().lock())) {
        Ok(()) => true,
        Err(e) => {
            out.error(format!(
                "--report-file: cannot write `{}`: {}; the report is on standard output",
                path.display(),
                playbook::io_reason(&e)
            ));
            false
        }
    }
}

/// The report on standard output, as a table or JSON.
pub(super) fn print_report(report: &Report, format: Format) {
    match format {
        // A closed pipe (`| head`) is not an error worth reporting.
        Format::Json => drop(report::json::write(report, std::io::stdout().lock())),
        Format::Table => print_stdout(&report::table::render(report)),
    }
}

/// Everything about the run that comes from the command line.
fn run_input(
    args: &RunArgs,
    playbook: &Playbook,
    sources: &mut Sources,
) -> Result<RunInput, Vec<Diagnostic>> {
    let flags = vars::InputFlags {
        now: args.now.as_deref(),
        vars_file: args.vars_file.as_deref(),
        input: args.input.as_deref(),
        vars: &args.vars,
        selection: Selection {
            tags: args.tags.clone(),
            names: args.recipients.clone(),
        },
        dry_run: args.dry_run,
    };
    vars::run_input(flags, playbook, sources)
}

/// The terminal's view of a live run: the prompt, signals and the progress bar.
struct Terminal {
    /// Ask before calling (no `--yes`).
    ask: bool,
    /// Draw a progress bar (no `-q`; drawn only on a terminal).
    bar_wanted: bool,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    /// Fired by the first Ctrl-C or SIGTERM.
    cancel: CancellationToken,
}

impl Observer for Terminal {
    /// Asks before calling, when a person is at a terminal; never under cron.
    fn confirm(&self, playbook: &str, caller_id: &str, calls: usize) -> bool {
        if !(self.ask && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return true;
        }
        let noun = if calls == 1 { "call" } else { "calls" };
        eprint!("Place {calls} {noun} for playbook `{playbook}` from {caller_id}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    }

    fn started(&self, total: usize) {
        listen_for_signals(self.cancel.clone(), total);
        let bar = super::term::start_progress(total as u64, self.bar_wanted);
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }

    fn call_finished(&self, _recipient: &str, _to: &str, _outcome: &Outcome) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(PoisonError::into_inner) {
            bar.inc(1);
        }
    }

    fn done(&self) {
        let bar = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        super::term::finish_progress(bar);
    }
}

/// Ctrl-C / SIGTERM: the first cancels the run (no new calls), the second exits at once.
///
/// Must be called on the runtime, before any call starts: a signal in
/// between would otherwise kill the process outright.
fn listen_for_signals(cancel: CancellationToken, total: usize) {
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
            cancel.cancel();
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
