//! The command line: clap definitions, the prompt, signals, the progress
//! bar, tables, and the one place that turns outcomes into exit codes.
//!
//! Standard output carries only the report; diagnostics, warnings and logs
//! go to standard error, coloured only where that stream is a terminal. The
//! engine below knows none of this: this layer builds checked options from
//! the flags once ([`run::Options`]), starts the runtime and hands the
//! engine plain values.

mod ack;
pub mod args;
mod completions;
pub mod exit;
mod hooks;
mod init;
mod man;
mod online;
mod page;
mod preview;
mod run;
mod runs;
mod serve;
pub mod term;
mod test;
pub mod vars;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anstream::ColorChoice;

pub use args::Cli;
use args::{ColorWhen, Command, LogFormat};
use exit::{Exit, Failure};
use page::page_options;

use crate::diag::{Diagnostic, Printer, Sources};
use crate::playbook;

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
    let result = match cli.command {
        Command::Validate {
            playbooks,
            include_root,
            online: true,
            base_url,
            public_url,
        } => {
            let options = online::OnlineOptions {
                include_root,
                base_url: base_url.as_deref(),
                public_url: public_url.as_deref(),
            };
            online::validate(&playbooks, &options, &mut out)
        }
        Command::Validate {
            playbooks,
            include_root,
            ..
        } => {
            let options = playbook::LoadOptions { include_root };
            Ok(validate(&playbooks, &options, &mut out))
        }
        Command::Run(args) => run::run(&args, &mut out),
        Command::Runs(args) => runs::runs(&args),
        Command::Hooks(args) => hooks::hooks(&args.action, &mut out),
        Command::Ack(args) => ack::ack(&args, &out),
        Command::Init { dir, name } => init::init(dir.as_deref(), name.as_deref(), &out),
        Command::Preview(args) => preview::preview(&args, &mut out),
        Command::Completions { shell } => Ok(completions::completions(shell)),
        Command::Man { dir } => man::man(dir.as_deref(), &out),
        Command::Schema(args) => {
            print_stdout(if args.serve {
                crate::schema::SERVE_SCHEMA
            } else if args.test {
                crate::schema::TEST_SCHEMA
            } else {
                crate::schema::SCHEMA
            });
            Ok(Exit::Success)
        }
        Command::Test(args) => Ok(test::test(&args, &mut out)),
        Command::Serve(args) => serve::serve(&args, &mut out),
    };
    result.unwrap_or_else(|failure| out.failure(failure))
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
        .with_writer(term::StderrAroundBar)
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

    fn error(&self, message: String) {
        self.diagnostics(&[Diagnostic::error(None, message)]);
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            let text = crate::escape::escape_controls(text);
            let _ = writeln!(anstream::stderr(), "{text}");
        }
    }

    /// Shows why a command failed and returns its exit code.
    fn failure(&self, failure: Failure) -> Exit {
        match &failure {
            Failure::Invalid(diagnostics) => self.diagnostics(diagnostics),
            Failure::NoStateDir => self.error(
                "no state directory: set --state-dir, CALLBOOK_STATE_DIR or HOME".to_string(),
            ),
            Failure::Store(e) => self.error(e.to_string()),
            Failure::NoSuchRun(id) => self.error(format!("no run `{id}` in the journal")),
            Failure::Runtime(e) => self.error(format!("cannot start the runtime: {e}")),
            Failure::Engine(crate::engine::EngineError::Plan(diagnostics)) => {
                self.diagnostics(diagnostics);
                self.note("nothing was called");
            }
            Failure::Engine(e) => self.error(e.to_string()),
            Failure::Refused(message) => self.error(message.clone()),
        }
        failure.exit()
    }
}

fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `1 playbook has errors`, `2 playbooks have errors`.
fn have_errors(failed: usize) -> String {
    if failed == 1 {
        "1 playbook has errors".to_string()
    } else {
        format!("{failed} playbooks have errors")
    }
}

/// Checks the test file at `path` (its schema and its playbook) and says
/// so; whether it is valid.
fn validate_test_file(path: &Path, out: &mut Output<'_>) -> bool {
    match crate::playtest::load(path, out.sources) {
        Ok(file) => {
            out.diagnostics(&file.warnings);
            out.note(&format!(
                "{}: ok (tests of `{}`, {})",
                path.display(),
                file.playbook.name,
                count(file.cases.len(), "case")
            ));
            true
        }
        Err(diagnostics) => {
            out.diagnostics(&diagnostics);
            false
        }
    }
}

fn validate(paths: &[PathBuf], options: &playbook::LoadOptions, out: &mut Output<'_>) -> Exit {
    let mut failed = 0;
    for path in paths {
        // A test file beside the playbooks is checked as a test file.
        if crate::playtest::is_test_file(path) {
            if !validate_test_file(path, out) {
                failed += 1;
            }
            continue;
        }
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
        out.note(&have_errors(failed));
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

/// The state directory: `--state-dir`, `CALLBOOK_STATE_DIR`, `$XDG_STATE_HOME/callbook`
/// or `~/.local/state/callbook`.
fn state_dir(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(xdg) = env("XDG_STATE_HOME") {
        return Ok(xdg.join("callbook"));
    }
    env("HOME")
        .map(|home| home.join(".local/state/callbook"))
        .ok_or(Failure::NoStateDir)
}

/// The runtime the engine runs on: built here, at the edge, never below.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::Runtime)
}
