//! Planning throughput: 100 000 CSV recipients, an SSML message, four rules.
//!
//! Run with `cargo bench --bench plan`. Each benchmark prints the time for the
//! whole 100 000; divide to get recipients per second. The README records the
//! figures measured on the project's 2-core machine.

use std::path::{Path, PathBuf};

use callbook::diag::Sources;
use callbook::model::{CallRecord, CallState, FINGERPRINT_VERSION, RunRecord, RunState};
use callbook::plan::{self, RunInput, Selection};
use callbook::plan::{CallRequest, ServiceType};
use callbook::playbook::{self, Loaded};
use callbook::report::{self, PlanReport};
use callbook::store::sqlite::journal::Journal;
use sha2::{Digest, Sha256};

#[path = "support/workload.rs"]
mod workload;

const RECIPIENTS: usize = 100_000;

/// SHA-256 of the compact JSON of the report's `calls` for 100 000 recipients
/// (`tests/plan_guard.rs` pins 20 000 the same way in a debug build).
const CALLS_100K_SHA256: &str = "0daea770dc54db50e2714e50acf05be1b6f4dd11f6ffcf1f0cff87a4adc08c93";

/// SHA-256 of the compact JSON of the report's `calls` for 20 000 recipients,
/// as `tests/plan_guard.rs` pins it through the binary.
const CALLS_20K_SHA256: &str = "4b1563d936ceda42f90ff3f5d2227cbb042ca0ad1c07ed0bf94426da143284d7";

fn main() {
    // No optimisation may change who is called with what: check the plan first.
    check_plan(20_000, CALLS_20K_SHA256);
    check_plan(RECIPIENTS, CALLS_100K_SHA256);
    divan::main();
}

/// Plans `n` recipients of the workload and checks the digest of the report's `calls`.
fn check_plan(n: usize, want: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = workload::write(dir.path(), n);
    let loaded = load(&path);
    let mut input = run_input();
    input.vars = loaded.playbook.vars.clone();
    let plan = plan::plan(&loaded.playbook, &input).expect("plans");
    let report = PlanReport::new(&loaded.playbook, &plan, &input);
    let mut json = Vec::new();
    report::json::write(&report, &mut json).expect("a Vec accepts");
    let report: serde_json::Value = serde_json::from_slice(&json).expect("the report is JSON");
    let calls = serde_json::to_vec(&report["calls"]).expect("calls serialize");
    let got: String = Sha256::digest(&calls)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, want, "the plan of {n} recipients changed");
}

/// A playbook and a CSV of `RECIPIENTS` recipients in a temp dir.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = workload::write(dir.path(), RECIPIENTS);
    (dir, path)
}

fn load(path: &Path) -> Loaded {
    playbook::load(path, &mut Sources::default()).expect("bench playbook is valid")
}

fn run_input() -> RunInput {
    let now = workload::NOW.parse().expect("valid time");
    RunInput {
        run_id: plan::new_run_id(now),
        now,
        dry_run: true,
        vars: serde_json::Map::new(),
        input: None,
        selection: Selection::default(),
    }
}

/// Reading and checking the playbook and its CSV (libphonenumber checks every number).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn load_100k(bencher: divan::Bencher) {
    let (_dir, path) = fixture();
    bencher.bench_local(|| load(&path));
}

/// Rules, rendering and SSML checks for every recipient of a loaded playbook.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn plan_100k(bencher: divan::Bencher) {
    let (_dir, path) = fixture();
    let loaded = load(&path);
    let mut input = run_input();
    input.vars = loaded.playbook.vars.clone();
    bencher.bench_local(|| plan::plan(&loaded.playbook, &input).expect("plans"));
}

/// Recording the plan of a 100 000-call run in the journal: one durable transaction.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn journal_plan_100k(bencher: divan::Bencher) {
    let calls: Vec<CallRecord> = (0..RECIPIENTS)
        .map(|i| {
            let request = CallRequest {
                to: format!("1212734{:04}", i % 10_000).into(),
                service_type: ServiceType::Tts,
                service_id: format!("<speak>Hello Person {i}.</speak>"),
                dedup_key: Some("db-01:/var".to_string()),
            };
            CallRecord {
                idx: i,
                recipient: format!("Person {i}"),
                to: request.to.to_string(),
                rule: Some("everyone else".to_string()),
                service_type: Some(ServiceType::Tts),
                service_id: None,
                fingerprint: Some(plan::fingerprint(&request, Some("13214991000"))),
                dedup_key: request.dedup_key.clone(),
                state: CallState::Pending,
                reason: None,
                call_id: None,
                attempts: 0,
                error: None,
            }
        })
        .collect();
    let mut n = 0;
    bencher.bench_local(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut journal = Journal::open(dir.path()).expect("journal opens");
        n += 1;
        let run = RunRecord {
            id: format!("bench-{n}"),
            playbook: "bench".to_string(),
            path: "bench.yaml".to_string(),
            now: "2026-11-26T15:00:00Z".parse().expect("a timestamp"),
            started_at: "2026-11-26T15:00:00Z".parse().expect("a timestamp"),
            finished_at: None,
            state: RunState::Running,
            caller_id: Some("13214991000".to_string()),
            pid: Some(std::process::id()),
            fingerprint_version: FINGERPRINT_VERSION,
        };
        journal.begin_run(&run, &calls).expect("plan recorded");
    });
}

/// Everything `callbook run --dry-run --format json` does: load, plan, JSON report.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn end_to_end_100k(bencher: divan::Bencher) {
    let (_dir, path) = fixture();
    bencher.bench_local(|| {
        let loaded = load(&path);
        let mut input = run_input();
        input.vars = loaded.playbook.vars.clone();
        let plan = plan::plan(&loaded.playbook, &input).expect("plans");
        let report = PlanReport::new(&loaded.playbook, &plan, &input);
        report::json::write(&report, std::io::sink()).expect("sink accepts");
    });
}
