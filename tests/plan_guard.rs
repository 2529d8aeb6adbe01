//! Pins the plan of the planning benchmark's workload: who is called, with what,
//! and who is skipped and why. Optimisations of loading, phone numbers, rules or
//! rendering must leave the `calls` of the JSON report byte-identical.
//!
//! A debug build plans 20 000 recipients here; `cargo bench --bench plan` checks
//! the full 100 000 the same way before it measures anything.

mod support;

#[path = "../benches/support/workload.rs"]
mod workload;

use sha2::{Digest, Sha256};

/// SHA-256 of the compact JSON of `calls` for 20 000 recipients.
const CALLS_20K_SHA256: &str = "4b1563d936ceda42f90ff3f5d2227cbb042ca0ad1c07ed0bf94426da143284d7";

/// SHA-256 of the compact JSON of `calls` for 4 000 recipients at 05:00 UTC.
const CALLS_4K_QUIET_SHA256: &str =
    "c2068259c568638c56aa6a0f6bc1bd7f1117df9a8fe172114f7d87c10b28f31a";

/// The hex SHA-256 of the `calls` array of a JSON report, written compactly.
fn calls_digest(report: &str) -> String {
    let report: serde_json::Value = serde_json::from_str(report).expect("the report is JSON");
    let calls = report.get("calls").expect("the report has calls");
    let bytes = serde_json::to_vec(calls).expect("calls serialize");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Plans `n` recipients of the workload at `now` with the real binary; returns the report.
fn dry_run(n: usize, now: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = workload::write(dir.path(), n).display().to_string();
    let out = support::run(&["run", &path, "--dry-run", "--format", "json", "--now", now]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON report");
    assert_eq!(report["totals"]["recipients"], n);
    out.stdout
}

#[test]
fn plan_of_the_benchmark_workload_is_unchanged() {
    let report = dry_run(20_000, workload::NOW);
    assert_eq!(calls_digest(&report), CALLS_20K_SHA256);
}

/// At 05:00 UTC three of the four time zones are in quiet hours: the skips and
/// their reasons are pinned too.
#[test]
fn plan_with_quiet_hours_is_unchanged() {
    let report = dry_run(4_000, "2026-11-26T05:00:00Z");
    let parsed: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(parsed["totals"]["skipped"], 3_000);
    assert_eq!(calls_digest(&report), CALLS_4K_QUIET_SHA256);
}
