//! `callbook test`: finds the test files, runs every case (offline, see
//! [`crate::playtest`]), prints the results like `cargo test` on standard
//! output, writes `--junit` and applies `--update`.
//!
//! Exit codes: 0 every case passed, 1 a case failed, 2 a test file or its
//! playbook is invalid (its diagnostics on standard error), or no test
//! file was found. An invalid file does not stop the others from running.

use std::path::PathBuf;

use super::args::TestArgs;
use super::exit::Exit;
use super::{Output, print_stdout};
use crate::playtest::{self, CaseResult, TestFile, junit, output, update};

/// Runs `callbook test`.
pub(super) fn test(args: &TestArgs, out: &mut Output<'_>) -> Exit {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let files = match playtest::walk::find(&paths) {
        Ok(files) => files,
        Err(e) => {
            out.error(e.to_string());
            return Exit::Invalid;
        }
    };
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        out.error(format!(
            "no test files (`*.test.yaml`) in {}",
            shown.join(", ")
        ));
        return Exit::Invalid;
    }
    let mut tally = Tally::default();
    let mut failures = String::new();
    let mut suites = Vec::new();
    let mut updates = Vec::new();
    for path in &files {
        let file = match playtest::load(path, out.sources) {
            Ok(file) => file,
            Err(diagnostics) => {
                out.diagnostics(&diagnostics);
                tally.invalid += 1;
                suites.push(junit::Suite {
                    name: path.display().to_string(),
                    cases: Vec::new(),
                    error: Some(
                        diagnostics
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                });
                continue;
            }
        };
        out.diagnostics(&file.warnings);
        let results = run_file(&file, args.filter.as_deref(), &mut tally);
        let mut suite = junit::Suite {
            name: file.display.to_string(),
            ..junit::Suite::default()
        };
        for result in &results {
            print_stdout(&output::case_line(&file.display, result));
            let failure = (!result.passed()).then(|| {
                let text = output::failure(&file.display, result);
                failures.push('\n');
                failures.push_str(&text);
                text
            });
            suite.cases.push((result.name.clone(), failure));
        }
        suites.push(suite);
        if args.update && results.iter().any(|r| !r.passed()) {
            updates.push((file, results));
        }
    }
    print_stdout(&failures);
    print_stdout(&format!(
        "\n{}",
        output::closing(tally.passed, tally.failed, tally.filtered)
    ));
    for (file, results) in &updates {
        update_file(file, results, out);
    }
    let mut exit = if tally.invalid > 0 {
        Exit::Invalid
    } else if tally.failed > 0 {
        Exit::CallsFailed
    } else {
        Exit::Success
    };
    if let Some(path) = &args.junit {
        let written = junit::render(&suites).and_then(|xml| std::fs::write(path, xml));
        if let Err(e) = written {
            out.error(format!(
                "--junit: cannot write `{}`: {}",
                path.display(),
                crate::playbook::io_reason(&e)
            ));
            exit = Exit::Invalid;
        }
    }
    if tally.invalid > 0 {
        let files = if tally.invalid == 1 {
            "test file is"
        } else {
            "test files are"
        };
        out.note(&format!("{} {files} invalid", tally.invalid));
    }
    exit
}

/// Counts over every file.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    filtered: usize,
    invalid: usize,
}

/// Runs the cases of `file` that `filter` selects.
fn run_file(file: &TestFile, filter: Option<&str>, tally: &mut Tally) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for (i, case) in file.cases.iter().enumerate() {
        if let Some(filter) = filter {
            let full = format!("{} :: {}", file.display, case.name);
            if !full.contains(filter) {
                tally.filtered += 1;
                continue;
            }
        }
        let Some(result) = playtest::run_case(file, i) else {
            continue;
        };
        if result.passed() {
            tally.passed += 1;
        } else {
            tally.failed += 1;
        }
        results.push(result);
    }
    results
}

/// `--update`: shows what changes in `file`, then writes it, or says why not.
fn update_file(file: &TestFile, results: &[CaseResult], out: &Output<'_>) {
    let mut changes = Vec::new();
    for result in results.iter().filter(|r| !r.passed()) {
        let Some(case) = file.cases.get(result.index) else {
            continue;
        };
        match update::change(&file.text, case, &result.actual) {
            Ok(change) => changes.push(change),
            Err(why) => out.error(format!(
                "--update: `{}` :: {}: not updated: {why}",
                file.display, result.name
            )),
        }
    }
    if changes.is_empty() {
        return;
    }
    // Refused before anything is shown as done: a read-only file stays as it is.
    if let Err(reason) = std::fs::OpenOptions::new()
        .write(true)
        .open(&file.path)
        .map_err(|e| crate::playbook::io_reason(&e))
    {
        out.error(format!(
            "--update: cannot write `{}`: {reason}; it was not changed",
            file.display
        ));
        return;
    }
    for change in &changes {
        out.note(&format!(
            "--update: `{}` :: {}: expect changes (- old, + new):",
            file.display, change.case,
        ));
        for line in playtest::diff::render(&change.before, &change.after, "  ").lines() {
            out.note(line);
        }
    }
    let text = update::apply(&file.text, &changes);
    match update::write(&file.path, &text) {
        Ok(()) => out.note(&format!(
            "--update: updated `{}` ({} of its cases)",
            file.display,
            changes.len()
        )),
        Err(reason) => out.error(format!(
            "--update: cannot write `{}`: {reason}; it was not changed",
            file.display
        )),
    }
}
