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
use callbook::report::{self, Report};
use callbook::store::sqlite::journal::Journal;

const RECIPIENTS: usize = 100_000;

const PLAYBOOK: &str = r#"version: 1
name: bench
caller_id: "321-499-1000"
vars: { host: db-01, usage: 93, severity: warning }
recipients:
  - from: people.csv
messages:
  page:
    ssml: |
      <speak>
        Hello {{ recipient.name }} of {{ recipient.vars.team }}.
        <break time="400ms"/>
        Host <say-as interpret-as="characters">{{ host }}</say-as> is {{ usage }} percent full.
      </speak>
  short:
    tts: "Disk alert on {{ host }}: {{ usage }} percent."
rules:
  - name: quiet hours
    when: severity != "critical" and (recipient.local_time.hour >= 22 or recipient.local_time.hour < 7)
    skip: quiet hours
  - name: primary
    tags: [primary]
    play: page
  - name: network
    tags: [network]
    play: short
  - name: everyone else
    play: page
"#;

fn main() {
    divan::main();
}

/// A playbook and a CSV of `RECIPIENTS` distinct, valid US numbers in a temp dir.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let areas = [212, 312, 415, 617, 713, 305, 206, 303, 404, 503];
    let zones = [
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "Europe/Berlin",
    ];
    let tags = ["storage;primary", "storage", "network", "dba;oncall"];
    let mut csv = String::from("name,phone,timezone,tags,team\n");
    for i in 0..RECIPIENTS {
        let area = areas[i % areas.len()];
        let exchange = 230 + (i / areas.len()) / 10_000;
        let line = (i / areas.len()) % 10_000;
        csv.push_str(&format!(
            "Person {i},+1 ({area}) {exchange}-{line:04},{},{},team-{}\n",
            zones[i % 4],
            tags[i % 4],
            i % 17
        ));
    }
    std::fs::write(dir.path().join("people.csv"), csv).expect("write csv");
    let path = dir.path().join("bench.yaml");
    std::fs::write(&path, PLAYBOOK).expect("write playbook");
    (dir, path)
}

fn load(path: &Path) -> Loaded {
    playbook::load(path, &mut Sources::default()).expect("bench playbook is valid")
}

fn run_input() -> RunInput {
    let now = "2026-11-26T15:00:00Z".parse().expect("valid time");
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
                to: format!("1212734{:04}", i % 10_000),
                service_type: ServiceType::Tts,
                service_id: format!("<speak>Hello Person {i}.</speak>"),
                dedup_key: Some("db-01:/var".to_string()),
            };
            CallRecord {
                idx: i,
                recipient: format!("Person {i}"),
                to: request.to.clone(),
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
        let report = Report::from_plan(&loaded.playbook, plan, &input);
        report::json::write(&report, std::io::sink()).expect("sink accepts");
    });
}
