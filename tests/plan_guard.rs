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

/// The JSON report goes to standard output and `--report-file` in one pass:
/// a reader that stops early (`| head`) must not cut the file short.
#[test]
fn a_closed_standard_output_leaves_the_report_file_whole() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = workload::write(dir.path(), 2_000).display().to_string();
    let file = dir.path().join("report.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callbook"))
        .args(["run", &path, "--dry-run", "--format", "json"])
        .args(["--now", workload::NOW, "--report-file"])
        .arg(&file)
        .env("CALLBOOK_STATE_DIR", dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("callbook starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("the report starts");
    drop(stdout);
    let status = child.wait().expect("callbook ends");
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&file).expect("the report file is there");
    let report: serde_json::Value = serde_json::from_str(&text).expect("a whole JSON report");
    assert_eq!(report["calls"].as_array().map(Vec::len), Some(2_000));
}

/// A report written straight from a plan and one built as a copy of every
/// call are the same JSON: both go through one description of the shape.
#[test]
fn a_report_from_the_plan_is_the_same_json_as_a_copied_one() {
    use callbook::plan::{self, RunInput, Selection};
    use callbook::report::{self, PlanReport, Report};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = workload::write(dir.path(), 500);
    let loaded = callbook::playbook::load(&path, &mut callbook::diag::Sources::default())
        .expect("the workload loads");
    let now = workload::NOW.parse().expect("a time");
    let input = RunInput {
        run_id: plan::new_run_id(now),
        now,
        dry_run: true,
        vars: loaded.playbook.vars.clone(),
        input: None,
        selection: Selection::default(),
    };
    let planned = plan::plan(&loaded.playbook, &input).expect("plans");
    let mut streamed = Vec::new();
    report::json::write(
        &PlanReport::new(&loaded.playbook, &planned, &input),
        &mut streamed,
    )
    .expect("a Vec accepts");
    let mut copied = Vec::new();
    report::json::write(
        &Report::from_plan(&loaded.playbook, planned, &input),
        &mut copied,
    )
    .expect("a Vec accepts");
    assert_eq!(
        String::from_utf8_lossy(&streamed),
        String::from_utf8_lossy(&copied)
    );
}
