//! The planning benchmark's workload: a playbook with an SSML message and four
//! rules, and a CSV of distinct, valid US numbers in four time zones.
//!
//! Shared by `benches/plan.rs` and `tests/plan_guard.rs`, so the test that pins
//! the plan checks exactly what the benchmark measures. `scripts/bench-memory.sh`
//! reads `PLAYBOOK` from this file and builds the same CSV.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The benchmark playbook; its recipients come from `people.csv` beside it.
pub const PLAYBOOK: &str = r#"version: 1
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

/// The instant every benchmark and the plan guard plan at.
pub const NOW: &str = "2026-11-26T15:00:00Z";

/// The CSV of `n` recipients: distinct numbers spread over ten area codes.
pub fn csv(n: usize) -> String {
    let areas = [212, 312, 415, 617, 713, 305, 206, 303, 404, 503];
    let zones = [
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "Europe/Berlin",
    ];
    let tags = ["storage;primary", "storage", "network", "dba;oncall"];
    let mut csv = String::from("name,phone,timezone,tags,team\n");
    for i in 0..n {
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
    csv
}

/// Writes the playbook and a CSV of `n` recipients into `dir`; returns the playbook's path.
pub fn write(dir: &Path, n: usize) -> PathBuf {
    std::fs::write(dir.join("people.csv"), csv(n)).expect("write csv");
    let path = dir.join("bench.yaml");
    std::fs::write(&path, PLAYBOOK).expect("write playbook");
    path
}
