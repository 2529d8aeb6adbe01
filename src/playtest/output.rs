//! The text `callbook test` prints, built here as plain strings (the
//! command line decides where it goes): one line per case like `cargo test`,
//! each failure's expected and actual values side by side (a line diff for
//! messages), and the closing count.
//!
//! ```text
//! test playbooks/disk-full.test.yaml :: warning at night waits ... FAILED
//!
//! ---- playbooks/disk-full.test.yaml :: warning at night waits ----
//!   calls[0] (Alice Ng): status
//!     expected: skipped
//!     actual:   planned
//!
//! 3 passed, 1 failed
//! ```

use std::fmt::Write as _;

use super::diff;
use super::run::{CaseResult, Mismatch};
use crate::escape::escape_controls;

/// `test FILE :: CASE ... ok` (or `FAILED`).
pub fn case_line(file: &str, result: &CaseResult) -> String {
    format!(
        "test {} :: {} ... {}\n",
        escape_controls(file),
        escape_controls(&result.name),
        if result.passed() { "ok" } else { "FAILED" }
    )
}

/// The heading and every mismatch of a failed case.
pub fn failure(file: &str, result: &CaseResult) -> String {
    let mut out = format!(
        "---- {} :: {} ----\n",
        escape_controls(file),
        escape_controls(&result.name)
    );
    out.push_str(&mismatches(&result.mismatches));
    out
}

/// Every mismatch, expected and actual side by side (a diff for messages).
pub fn mismatches(list: &[Mismatch]) -> String {
    let mut out = String::new();
    for m in list {
        let _ = writeln!(out, "  {}", escape_controls(&m.what));
        if m.text {
            out.push_str("    - expected, + actual:\n");
            out.push_str(&diff::render(&m.expected, &m.actual, "    "));
        } else {
            let _ = writeln!(out, "    expected: {}", block(&m.expected));
            let _ = writeln!(out, "    actual:   {}", block(&m.actual));
        }
    }
    out
}

/// A value on its line; the lines after the first indented under it.
fn block(text: &str) -> String {
    text.lines()
        .map(|l| escape_controls(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n              ")
}

/// `N passed, M failed` (and how many were filtered out, if any).
pub fn closing(passed: usize, failed: usize, filtered: usize) -> String {
    if filtered > 0 {
        format!("{passed} passed, {failed} failed, {filtered} filtered out\n")
    } else {
        format!("{passed} passed, {failed} failed\n")
    }
}
