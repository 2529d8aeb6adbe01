//! The commands: wiring options to loading, planning and reporting.
//!
//! Standard output carries only the report; diagnostics, warnings and logs
//! go to standard error, coloured only where that stream is a terminal.

use std::io::Write as _;
use std::path::Path;

use anstream::ColorChoice;

use crate::cli::{Cli, ColorWhen, Command, Format, LogFormat, RunArgs, RunsAction, RunsArgs};
use crate::diag::{Diagnostic, Printer, Sources};
use crate::exit::Exit;
use crate::journal::{self, Journal};
use crate::plan::{self, RunInput, Selection};
use crate::playbook;
use crate::report::{self, Report};
use crate::vars;
use crate::{live, lock};

/// Runs one command line to completion and returns the exit code.
pub fn main(cli: Cli) -> Exit {
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => ColorChoice::Always.write_global(),
        ColorWhen::Never => ColorChoice::Never.write_global(),
    }
    init_logging(&cli);
    let mut sources = Sources::default();
    let mut out = Output {
        sources: &mut sources,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Validate {
            playbooks,
            include_root,
        } => {
            let options = playbook::LoadOptions { include_root };
            validate(&playbooks, &options, &mut out)
        }
        Command::Run(args) => run(&args, &mut out),
        Command::Runs(args) => runs(&args, &out),
        Command::Schema => {
            print_stdout(crate::schema::SCHEMA);
            Exit::Success
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::INFO,
        (false, 1) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    let ansi = anstream::AutoStream::choice(&std::io::stderr()) != ColorChoice::Never;
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(crate::term::StderrAroundBar)
        .with_target(false);
    // A second initialisation (only in tests) keeps the first subscriber.
    let _ = match cli.log_format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Where diagnostics go: standard error, with snippets from the files read.
struct Output<'a> {
    sources: &'a mut Sources,
    quiet: bool,
}

impl Output<'_> {
    fn diagnostics(&self, diagnostics: &[Diagnostic]) {
        let styled = anstream::AutoStream::choice(&std::io::stderr()) != ColorChoice::Never;
        let printer = Printer::new(self.sources, styled);
        let mut stderr = anstream::stderr().lock();
        for d in diagnostics {
            if self.quiet && !d.is_error() {
                continue;
            }
            let _ = write!(stderr, "{}", printer.render(d));
        }
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            let text = crate::term::escape_controls(text);
            let _ = writeln!(anstream::stderr(), "{text}");
        }
    }
}

fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn validate(
    paths: &[std::path::PathBuf],
    options: &playbook::LoadOptions,
    out: &mut Output<'_>,
) -> Exit {
    let mut failed = 0;
    for path in paths {
        match playbook::load_with(path, out.sources, options) {
            Ok(loaded) => {
                out.diagnostics(&loaded.warnings);
                let p = &loaded.playbook;
                out.note(&format!(
                    "{}: ok ({}, {}, {})",
                    path.display(),
                    count(p.recipients.len(), "recipient"),
                    count(p.messages.len(), "message"),
                    count(p.rules.len(), "rule")
                ));
            }
            Err(diagnostics) => {
                failed += 1;
                out.diagnostics(&diagnostics);
            }
        }
    }
    if failed > 0 {
        let errors = if failed == 1 {
            "playbook has"
        } else {
            "playbooks have"
        };
        out.note(&format!("{failed} {errors} errors"));
        Exit::Invalid
    } else {
        Exit::Success
    }
}

/// `1 rule`, `2 rules`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn run(args: &RunArgs, out: &mut Output<'_>) -> Exit {
    if args.now.is_some() && !args.dry_run {
        // A moved clock would move dedup windows and the times the journal records.
        out.diagnostics(&[Diagnostic::error(
            None,
            "`--now` is only for dry runs: a live run always uses the real clock (nothing was called)"
                .to_string(),
        )]);
        return Exit::Invalid;
    }
    let options = playbook::LoadOptions {
        include_root: args.include_root.clone(),
    };
    let loaded = match playbook::load_with(&args.playbook, out.sources, &options) {
        Ok(l) => l,
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            return Exit::Invalid;
        }
    };
    out.diagnostics(&loaded.warnings);
    let playbook = loaded.playbook;
    let mut input = match run_input(args, &playbook, out.sources) {
        Ok(i) => i,
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            return Exit::Invalid;
        }
    };
    if let Some(report) = args.report_file.as_deref()
        && let Some(what) = overwritten_by_report(args, report)
    {
        out.diagnostics(&[Diagnostic::error(
            None,
            format!(
                "--report-file: `{}` is the {what}, which the report would replace; nothing was called",
                report.display()
            ),
        )]);
        return Exit::Invalid;
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
            out.diagnostics(&[Diagnostic::error(
                None,
                format!(
                    "--report-file: cannot write `{}`: {}; nothing was called",
                    path.display(),
                    playbook::io_reason(&e)
                ),
            )]);
            return Exit::Invalid;
        }
    };
    let state_dir = journal::state_dir(args.state_dir.as_deref());
    if args.dry_run {
        return dry_run(args, out, &playbook, &input, state_dir.ok(), report_file);
    }
    let refused = |out: &Output<'_>, message: String| {
        out.diagnostics(&[Diagnostic::error(None, message)]);
        Exit::Refused
    };
    let state_dir = match state_dir {
        Ok(d) => d,
        Err(m) => return refused(out, m),
    };
    let run_lock = match lock::acquire(
        &state_dir,
        &playbook.name,
        &report::timestamp(chrono::Utc::now()),
    ) {
        Ok(l) => l,
        Err(m) => {
            let recorded = Journal::open(&state_dir)
                .and_then(|mut j| live::record_refused_run(&mut j, &playbook, &input));
            if let Err(e) = recorded {
                tracing::debug!("the refused run was not recorded: {e}");
            }
            return refused(out, m);
        }
    };
    let journal = match Journal::open(&state_dir) {
        Ok(j) => j,
        Err(m) => return refused(out, format!("{m}: nothing was called")),
    };
    if let Err(m) = claim_name(&journal, &playbook) {
        return refused(out, m);
    }
    let result = match args.resume.as_deref() {
        Some(id) => {
            let id = (!id.is_empty()).then_some(id);
            let (run, recorded) = match resumable(&journal, &playbook.name, id) {
                Ok(found) => found,
                Err((message, exit)) => {
                    out.diagnostics(&[Diagnostic::error(None, message)]);
                    return exit;
                }
            };
            input.run_id.clone_from(&run.id);
            if let Ok(now) = chrono::DateTime::parse_from_rfc3339(&run.now) {
                input.now = now.with_timezone(&chrono::Utc);
            }
            let Some(plan) = plan_or_report(&playbook, &input, out) else {
                return Exit::Invalid;
            };
            let ctx = live_context(&playbook, &input, args, out, (journal, &run_lock));
            live::resume(ctx, plan, &run, &recorded)
        }
        None => {
            let Some(mut plan) = plan_or_report(&playbook, &input, out) else {
                return Exit::Invalid;
            };
            if let Err(m) = journal::apply_dedup(&mut plan, &playbook, &journal, input.now) {
                return refused(out, format!("{m}: nothing was called"));
            }
            let ctx = live_context(&playbook, &input, args, out, (journal, &run_lock));
            live::run(ctx, plan)
        }
    };
    match result {
        Ok((report, exit)) => {
            // The calls are done: a report file that fails now must not hide
            // what happened behind another exit code.
            emit(&report, args.format, report_file, out);
            exit
        }
        Err((diagnostics, exit)) => {
            out.diagnostics(&diagnostics);
            exit
        }
    }
}

/// Records this file as the one playbook of its `name` in the journal.
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
fn claim_name(journal: &Journal, playbook: &playbook::Playbook) -> Result<(), String> {
    let here = std::path::absolute(&playbook.path).map_err(|e| {
        format!(
            "playbook `{}`: {}",
            playbook.path.display(),
            playbook::io_reason(&e)
        )
    })?;
    let here = here.display().to_string();
    match journal.playbook_path(&playbook.name)? {
        Some(there) if there == here || same_file(Path::new(&there), &playbook.path) => {
            return Ok(());
        }
        Some(there) if still_named(Path::new(&there), &playbook.name) => {
            return Err(format!(
                "playbook `{}` in `{}` has the same name as `{there}`, whose runs the journal holds: \
                 give one of them another `name` (nothing was called)",
                playbook.name,
                playbook.path.display()
            ));
        }
        _ => {}
    }
    journal.set_playbook_path(&playbook.name, &here)
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

fn live_context<'a>(
    playbook: &'a playbook::Playbook,
    input: &'a RunInput,
    args: &'a RunArgs,
    out: &Output<'_>,
    (journal, lock): (Journal, &lock::RunLock),
) -> live::Context<'a> {
    live::Context {
        playbook,
        input,
        args,
        quiet: out.quiet,
        journal,
        lock: lock.identity(),
    }
}

/// The run to resume and its recorded plan, or why there is none.
fn resumable(
    journal: &Journal,
    playbook: &str,
    id: Option<&str>,
) -> Result<(journal::RunRecord, Vec<journal::CallRecord>), (String, Exit)> {
    let run = journal
        .find_run(playbook, id)
        .map_err(|m| (m, Exit::Refused))?;
    let run = match (run, id) {
        (Some(run), _) if run.playbook != playbook => {
            return Err((
                format!(
                    "run {} belongs to playbook `{}`, not `{playbook}`",
                    run.id, run.playbook
                ),
                Exit::Invalid,
            ));
        }
        (Some(run), _) if run.state == "refused" => {
            return Err((
                format!(
                    "run {} of `{playbook}` was refused before any call: nothing to resume, run the playbook again",
                    run.id
                ),
                Exit::Invalid,
            ));
        }
        (Some(run), _) if run.state == "finished" => {
            return Err((
                format!(
                    "run {} of `{playbook}` finished at {}: nothing to resume",
                    run.id,
                    run.finished_at.as_deref().unwrap_or("?")
                ),
                Exit::Invalid,
            ));
        }
        (Some(run), _) => run,
        (None, Some(id)) => return Err((format!("no run `{id}` in the journal"), Exit::Invalid)),
        (None, None) => {
            return Err((
                format!("no unfinished run of `{playbook}` in the journal: nothing to resume"),
                Exit::Invalid,
            ));
        }
    };
    let recorded = journal.calls(&run.id).map_err(|m| (m, Exit::Refused))?;
    Ok((run, recorded))
}

/// Plans the run, or prints why it cannot be planned.
fn plan_or_report(
    playbook: &playbook::Playbook,
    input: &RunInput,
    out: &Output<'_>,
) -> Option<plan::Plan> {
    match plan::plan(playbook, input) {
        Ok(p) => Some(p),
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            out.note("nothing was called");
            None
        }
    }
}

/// `run --dry-run`: the plan as it would be sent, dedup read from the journal.
fn dry_run(
    args: &RunArgs,
    out: &Output<'_>,
    playbook: &playbook::Playbook,
    input: &RunInput,
    state_dir: Option<std::path::PathBuf>,
    report_file: Option<report::json::ReportFile>,
) -> Exit {
    let Some(mut plan) = plan_or_report(playbook, input, out) else {
        return Exit::Invalid;
    };
    if playbook.dedup.is_some()
        && let Some(dir) = state_dir
    {
        let deduped = Journal::open_read_only(&dir).and_then(|journal| match journal {
            Some(j) => journal::apply_dedup(&mut plan, playbook, &j, input.now),
            None => Ok(()),
        });
        if let Err(m) = deduped {
            out.diagnostics(&[Diagnostic::error(None, m)]);
            return Exit::Refused;
        }
    }
    if let Some(why) = plan.over_limit(args.max_calls.or(playbook.max_calls)) {
        out.diagnostics(&[Diagnostic::warning(
            None,
            format!("a live run would be refused: {why}"),
        )]);
    }
    let mut report = Report::from_plan(playbook, plan, input);
    report.finished_at = report::timestamp(chrono::Utc::now().max(input.now));
    if emit(&report, args.format, report_file, out) {
        Exit::Success
    } else {
        // Nothing was called, and the file asked for is missing.
        Exit::Invalid
    }
}

/// `callbook runs [PLAYBOOK]` and `callbook runs show RUN_ID`.
fn runs(args: &RunsArgs, out: &Output<'_>) -> Exit {
    let opened = journal::state_dir(args.state_dir.as_deref())
        .and_then(|dir| Journal::open_read_only(&dir).map(|j| (dir, j)));
    let (state_dir, journal) = match opened {
        Ok(found) => found,
        Err(m) => {
            out.diagnostics(&[Diagnostic::error(None, m)]);
            return Exit::Refused;
        }
    };
    match &args.action {
        None => {
            let list = match journal.map(|j| j.runs(args.playbook.as_deref(), args.limit)) {
                None => Ok(Vec::new()),
                Some(result) => result,
            };
            let list = list.map(|mut list| {
                settle_running(&state_dir, &mut list);
                list
            });
            match list {
                Ok(list) => {
                    match args.format {
                        Format::Json => print_stdout(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(&list).unwrap_or_default()
                        )),
                        Format::Table => print_stdout(&report::table::runs(&list)),
                    }
                    Exit::Success
                }
                Err(m) => {
                    out.diagnostics(&[Diagnostic::error(None, m)]);
                    Exit::Refused
                }
            }
        }
        Some(RunsAction::Show { run_id }) => {
            let found = journal.map(|j| {
                j.find_run("", Some(run_id))
                    .and_then(|run| run.map(|r| j.calls(&r.id).map(|c| (r, c))).transpose())
            });
            match found {
                Some(Ok(Some((run, calls)))) => {
                    let report = Report::from_journal(&run, &calls);
                    print_report(&report, args.format);
                    Exit::Success
                }
                Some(Err(m)) => {
                    out.diagnostics(&[Diagnostic::error(None, m)]);
                    Exit::Refused
                }
                _ => {
                    out.diagnostics(&[Diagnostic::error(
                        None,
                        format!("no run `{run_id}` in the journal"),
                    )]);
                    Exit::Invalid
                }
            }
        }
    }
}

/// Shows a run recorded as `running` whose process is gone as `interrupted`.
///
/// A live run holds its playbook's lock for as long as its process lives, so
/// a `running` run is still running only while the lock is held by its pid.
fn settle_running(state_dir: &Path, runs: &mut [journal::RunSummary]) {
    for run in runs.iter_mut().filter(|r| r.state == "running") {
        let alive = match lock::probe(state_dir, &run.playbook) {
            lock::Holder::Free => false,
            lock::Holder::Held { pid } => match (pid, run.pid) {
                (Some(holder), Some(recorded)) => holder == recorded,
                // Not enough recorded to tell: trust the record.
                _ => true,
            },
        };
        if !alive {
            run.state = "interrupted".to_string();
        }
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
    let mut written = true;
    if let Some(file) = report_file {
        let path = file.path().to_path_buf();
        if let Err(e) = file.write(report) {
            written = false;
            out.diagnostics(&[Diagnostic::error(
                None,
                format!(
                    "--report-file: cannot write `{}`: {}; the report is on standard output",
                    path.display(),
                    playbook::io_reason(&e)
                ),
            )]);
        }
    }
    print_report(report, format);
    written
}

/// The report on standard output, as a table or JSON.
fn print_report(report: &Report, format: Format) {
    match format {
        // A closed pipe (`| head`) is not an error worth reporting.
        Format::Json => drop(report::json::write(report, std::io::stdout().lock())),
        Format::Table => print_stdout(&report::table::render(report)),
    }
}

/// Everything about the run that comes from the command line.
fn run_input(
    args: &RunArgs,
    playbook: &playbook::Playbook,
    sources: &mut Sources,
) -> Result<RunInput, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let now = match args.now.as_deref().map(vars::parse_now).transpose() {
        Ok(now) => now.unwrap_or_else(chrono::Utc::now),
        Err(d) => {
            errors.push(d);
            chrono::Utc::now()
        }
    };
    let vars_file = read_optional(
        args.vars_file.as_deref(),
        "--vars-file",
        sources,
        &mut errors,
    );
    let input = read_optional(args.input.as_deref(), "--input", sources, &mut errors);
    let mut cli_vars = Vec::new();
    for v in &args.vars {
        match vars::parse_var(v) {
            Ok(kv) => cli_vars.push(kv),
            Err(d) => errors.push(d),
        }
    }
    let merged = vars::merge(&playbook.vars, vars_file, cli_vars).map_err(|d| vec![d]);
    match merged {
        Ok(vars) if errors.is_empty() => Ok(RunInput {
            run_id: plan::new_run_id(now),
            now,
            dry_run: args.dry_run,
            vars,
            input,
            selection: Selection {
                tags: args.tags.clone(),
                names: args.recipients.clone(),
            },
        }),
        Ok(_) => Err(errors),
        Err(mut e) => {
            errors.append(&mut e);
            Err(errors)
        }
    }
}

fn read_optional(
    path: Option<&Path>,
    flag: &str,
    sources: &mut Sources,
    errors: &mut Vec<Diagnostic>,
) -> Option<serde_json::Value> {
    let path = path?;
    vars::read_document(path, flag, sources)
        .map_err(|d| errors.push(d))
        .ok()
}
