//! The commands: wiring options to loading, planning and reporting.
//!
//! Standard output carries only the report; diagnostics, warnings and logs
//! go to standard error, coloured only where that stream is a terminal.

use std::io::Write as _;
use std::path::Path;

use anstream::ColorChoice;

use crate::cli::{Cli, ColorWhen, Command, Format, LogFormat, RunArgs};
use crate::diag::{Diagnostic, Printer, Sources};
use crate::exit::Exit;
use crate::plan::{self, RunInput, Selection};
use crate::playbook;
use crate::report::{self, Report};
use crate::vars;

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
        Command::Validate { playbooks } => validate(&playbooks, &mut out),
        Command::Run(args) => run(&args, &mut out),
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

fn validate(paths: &[std::path::PathBuf], out: &mut Output<'_>) -> Exit {
    let mut failed = 0;
    for path in paths {
        match playbook::load(path, out.sources) {
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
    let loaded = match playbook::load(&args.playbook, out.sources) {
        Ok(l) => l,
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            return Exit::Invalid;
        }
    };
    out.diagnostics(&loaded.warnings);
    let playbook = loaded.playbook;
    let input = match run_input(args, &playbook, out.sources) {
        Ok(i) => i,
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            return Exit::Invalid;
        }
    };
    let plan = match plan::plan(&playbook, &input) {
        Ok(p) => p,
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            out.note("nothing was called");
            return Exit::Invalid;
        }
    };
    if !args.dry_run {
        return match crate::live::run(&playbook, plan, &input, args, out.quiet) {
            Ok((report, exit)) => match emit(&report, args, out) {
                Exit::Success => exit,
                failed => failed,
            },
            Err((diagnostics, exit)) => {
                out.diagnostics(&diagnostics);
                exit
            }
        };
    }
    if let Some(max) = args.max_calls.or(playbook.max_calls)
        && plan.calls() as u64 > max
    {
        out.diagnostics(&[Diagnostic::warning(
            None,
            format!(
                "a live run would be refused: the plan holds {} calls, more than the limit of {max}",
                plan.calls()
            ),
        )]);
    }
    let mut report = Report::from_plan(&playbook, plan, &input);
    report.finished_at = report::timestamp(chrono::Utc::now().max(input.now));
    emit(&report, args, out)
}

/// Writes the report where it was asked for; a report that cannot be written is an error.
fn emit(report: &Report, args: &RunArgs, out: &Output<'_>) -> Exit {
    if let Some(path) = &args.report_file
        && let Err(e) = report::json::write_file(report, path)
    {
        out.diagnostics(&[Diagnostic::error(
            None,
            format!(
                "--report-file: cannot write `{}`: {}",
                path.display(),
                playbook::io_reason(&e)
            ),
        )]);
        return Exit::Invalid;
    }
    match args.format {
        // A closed pipe (`| head`) is not an error worth reporting.
        Format::Json => drop(report::json::write(report, std::io::stdout().lock())),
        Format::Table => print_stdout(&report::table::render(report)),
    }
    Exit::Success
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
