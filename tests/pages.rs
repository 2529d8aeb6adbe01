//! Pages: `escalation` and `ack` in playbooks, the ladder planned as a
//! timeline by a dry run, and what a live run does with a page.

mod support;

use fonestorm_testserver::{Config, TestServer};
use support::{run, write};

const PAGE: &str = "tests/fixtures/pages/page.yaml";

fn schema_validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/playbook.schema.json").unwrap())
            .unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn yaml_as_json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    callbook::playbook::yaml::parse(&text).unwrap().0
}

// ---- validate: the keys ----

#[test]
fn a_page_with_every_key_is_valid() {
    let out = run(&["validate", PAGE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn every_meaning_problem_of_a_ladder_is_named_at_its_place() {
    let out = run(&["validate", "tests/fixtures/pages/bad-ladder.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn schema_problems_of_a_ladder_are_named_at_their_place() {
    let out = run(&["validate", "tests/fixtures/pages/bad-ladder-schema.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn a_ladder_longer_than_a_week_is_refused() {
    let out = run(&["validate", "tests/fixtures/pages/too-long-ladder.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn the_committed_schema_accepts_a_page_and_rejects_a_bad_ladder() {
    let validator = schema_validator();
    assert!(validator.is_valid(&yaml_as_json(PAGE)));
    assert!(!validator.is_valid(&yaml_as_json("tests/fixtures/pages/bad-ladder-schema.yaml")));
    // Its problems are the meaning checks' to find.
    assert!(validator.is_valid(&yaml_as_json("tests/fixtures/pages/bad-ladder.yaml")));
}

#[test]
fn the_schema_states_the_ladder_bounds_callbook_enforces() {
    use callbook::limits;
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("schema/playbook.schema.json").unwrap())
            .unwrap();
    let n = |pointer: &str| {
        schema
            .pointer(pointer)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("schema has no {pointer}"))
    };
    assert_eq!(
        n("/properties/escalation/properties/steps/maxItems"),
        limits::MAX_STEPS as u64
    );
    assert_eq!(
        n("/$defs/escalation_step/properties/repeat/maximum"),
        u64::from(limits::MAX_REPEAT)
    );
    assert_eq!(
        n("/properties/escalation/properties/retry/properties/max/maximum"),
        u64::from(limits::MAX_RETRY)
    );
    assert_eq!(
        n("/properties/ack/properties/sms/maxItems"),
        limits::MAX_ACK_WORDS as u64
    );
}

fn page_text(extra: &str) -> String {
    format!(
        "version: 1\nname: p\ncaller_id: \"321-555-1111\"\nrecipients:\n  - {{ name: A, phone: \"+1 321 499 1008\", tags: [one] }}\nmessages:\n  m: {{ tts: \"hi {{{{ ack.hint }}}}\" }}\nrules:\n  - play: m\n{extra}"
    )
}

#[test]
fn a_page_without_any_way_to_acknowledge_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        page_text("escalation:\n  steps: [{ name: one }]\nack:\n  sms: []\n  call_back: false\n"),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("a page needs a way to acknowledge it"),
        "{}",
        out.stderr
    );
}

#[test]
fn answered_alone_is_a_way_to_acknowledge() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        page_text(
            "escalation:\n  steps: [{ name: one }]\nack:\n  sms: []\n  call_back: false\n  answered: true\n",
        ),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn an_sms_word_listed_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        page_text("escalation:\n  steps: [{ name: one }]\nack:\n  sms: [ack, ACK]\n"),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("p.yaml:13:14: error: ack.sms[1]"),
        "{}",
        out.stderr
    );
}

#[test]
fn too_many_steps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let steps: String = (0..21).map(|i| format!("    - name: s{i}\n")).collect();
    let path = write(
        dir.path(),
        "p.yaml",
        page_text(&format!("escalation:\n  steps:\n{steps}")),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("escalation.steps"), "{}", out.stderr);
}

#[test]
fn an_every_of_zero_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        page_text("escalation:\n  steps: [{ name: one, every: 0s }]\n"),
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("escalation.steps[0].every: \"0s\" is out of range"),
        "{}",
        out.stderr
    );
}

// ---- live ----

#[test]
fn resuming_a_page_with_nothing_to_resume_is_invalid() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(&server, state.path(), PAGE, &["--resume"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to resume"), "{}", out.stderr);
    assert!(server.requests().is_empty());
}

// ---- dry run: the timeline ----

const NOW: &str = "2026-11-27T11:58:00Z";

/// The short code is random: golden files show it as `[CODE]`.
fn code_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"text 1 [A-Z0-9]{3} to", "text 1 [CODE] to"),
        (r"page [A-Z0-9]{3}:", "page [CODE]:"),
        (r#""code": "[A-Z0-9]{3}""#, r#""code": "[CODE]""#),
        (r#""run_id": "[^"]+""#, r#""run_id": "[RUN]""#),
        (r#""finished_at": "[^"]+""#, r#""finished_at": "[TIME]""#),
    ]
}

fn dry(playbook: &str, extra: &[&str]) -> support::Outcome {
    let mut args = vec!["run", playbook, "--dry-run"];
    if !extra.contains(&"--now") {
        args.extend_from_slice(&["--now", NOW]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// A page's JSON report, pinned: unknown fields fail the test.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PageReport {
    callbook_version: String,
    playbook: serde_json::Value,
    run_id: String,
    dry_run: bool,
    started_at: String,
    finished_at: String,
    totals: serde_json::Value,
    calls: Vec<PageCall>,
    escalation: Escalation,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PageCall {
    recipient: String,
    to: String,
    rule: Option<String>,
    service_type: Option<String>,
    service_id: Option<String>,
    status: String,
    call_id: Option<String>,
    attempts: u32,
    reason: Option<String>,
    error: Option<String>,
    step: String,
    round: u32,
    at_offset_seconds: u64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Escalation {
    code: String,
    ends_at_offset_seconds: u64,
    steps: Vec<StepReport>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StepReport {
    name: String,
    rounds: Vec<RoundReport>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RoundReport {
    round: u32,
    started_at: String,
    at_offset_seconds: u64,
    calls: usize,
}

fn page_report(playbook: &str, extra: &[&str]) -> PageReport {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = dry(playbook, &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn the_dry_run_of_a_page_shows_the_whole_ladder_as_a_table() {
    let out = dry(PAGE, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::with_settings!({ filters => code_filters() }, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn the_json_report_of_a_page_gives_every_call_its_step_round_and_offset() {
    let out = dry(PAGE, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::with_settings!({ filters => code_filters() }, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn a_page_report_matches_its_documented_shape() {
    let report = page_report(PAGE, &[]);
    let lines: Vec<(&str, u32, u64, &str)> = report
        .calls
        .iter()
        .map(|c| {
            (
                c.step.as_str(),
                c.round,
                c.at_offset_seconds,
                c.recipient.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("primary", 1, 0, "Alice Ng"),
            ("primary", 2, 300, "Alice Ng"),
            ("secondary", 1, 600, "Dana Whitfield"),
            ("everyone", 1, 1200, "Alice Ng"),
            ("everyone", 1, 1200, "Dana Whitfield"),
            ("everyone", 1, 1200, "Priya Raman"),
        ]
    );
    assert_eq!(report.totals["recipients"], 3, "distinct people");
    assert_eq!(report.totals["planned"], 5);
    assert_eq!(report.escalation.ends_at_offset_seconds, 1500);
    assert_eq!(report.escalation.code.len(), 3);
    let rounds: Vec<(&str, u32, usize)> = report
        .escalation
        .steps
        .iter()
        .flat_map(|s| {
            s.rounds
                .iter()
                .map(move |r| (s.name.as_str(), r.round, r.calls))
        })
        .collect();
    assert_eq!(
        rounds,
        [
            ("primary", 1, 1),
            ("primary", 2, 1),
            ("secondary", 1, 1),
            ("everyone", 1, 2)
        ]
    );
}

#[test]
fn templates_see_the_step_round_code_and_hint() {
    let report = page_report(PAGE, &[]);
    let code = &report.escalation.code;
    assert_eq!(
        report.calls[1].service_id.as_deref(),
        Some(
            format!(
                "Database db-01 is down (step primary, round 2). To acknowledge, text 1 {code} to 3 2 1, 5 5 5, 1 1 1 1, or call this number back."
            )
            .as_str()
        )
    );
}

#[test]
fn each_round_is_planned_at_the_time_it_is_due() {
    // Priya (Los Angeles) is in quiet hours until 07:00 her time. The page
    // starts at 06:45 there; its last round is due 20 minutes later, at 07:05.
    let report = page_report(PAGE, &["--now", "2026-11-27T14:45:00Z"]);
    let priya = report
        .calls
        .iter()
        .find(|c| c.recipient == "Priya Raman")
        .unwrap();
    assert_eq!(priya.status, "planned", "{priya:?}");
    // Started 20 minutes earlier, the same round falls at 06:45 and is skipped.
    let report = page_report(PAGE, &["--now", "2026-11-27T14:25:00Z"]);
    let priya = report
        .calls
        .iter()
        .find(|c| c.recipient == "Priya Raman")
        .unwrap();
    assert_eq!(priya.reason.as_deref(), Some("quiet hours"), "{priya:?}");
}

#[test]
fn a_template_failing_in_a_later_round_fails_the_page_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = dry(
        "tests/fixtures/pages/later-round-fails.yaml",
        &["--report-file", report.to_str().unwrap()],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!report.exists(), "no report of a plan that failed");
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn a_live_page_whose_later_round_fails_is_invalid_and_calls_nobody() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(
        &server,
        state.path(),
        "tests/fixtures/pages/later-round-fails.yaml",
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(server.requests().is_empty());
}

#[test]
fn a_round_that_calls_nobody_does_not_wait() {
    let report = page_report("tests/fixtures/pages/skipped-round.yaml", &[]);
    let lines: Vec<(&str, u32, u64, &str)> = report
        .calls
        .iter()
        .map(|c| {
            (
                c.step.as_str(),
                c.round,
                c.at_offset_seconds,
                c.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("primary", 1, 0, "skipped"),
            ("primary", 2, 0, "skipped"),
            ("secondary", 1, 0, "planned"),
        ]
    );
    assert_eq!(report.escalation.ends_at_offset_seconds, 600);
    assert_eq!(report.totals["skipped"], 2);
}

#[test]
fn the_hint_leaves_out_ways_that_are_off() {
    let report = page_report("tests/fixtures/pages/skipped-round.yaml", &[]);
    let call = report.calls.iter().find(|c| c.status == "planned").unwrap();
    assert_eq!(
        call.service_id.as_deref(),
        Some("Database is down. To acknowledge, call this number back.")
    );
}

#[test]
fn max_calls_counts_every_call_of_the_ladder() {
    let out = dry(PAGE, &["--max-calls", "4"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "a live run would be refused: the page's ladder holds 5 calls, more than the limit of 4"
        ),
        "{}",
        out.stderr
    );
    let out = dry(PAGE, &["--max-calls", "5"]);
    assert!(!out.stderr.contains("refused"), "{}", out.stderr);
}

#[test]
fn a_selection_no_step_calls_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\nname: p\ncaller_id: \"321-555-1111\"\nrecipients:\n  - { name: A, phone: \"+1 321 499 1008\", tags: [one] }\n  - { name: B, phone: \"+1 312 734 2210\", tags: [two] }\nmessages:\n  m: { tts: \"hi\" }\nrules:\n  - play: m\nescalation:\n  steps: [{ name: first, tags: [one] }]\n";
    let path = write(dir.path(), "q.yaml", text);
    let out = dry(&path, &["--tag", "two"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no step of the ladder calls any selected recipient"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_timeline_over_its_bound_is_refused_before_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("name,phone\n");
    for i in 1..=300 {
        csv.push_str(&format!("r{i},+1 212 867 {}\n", 4000 + i));
    }
    write(dir.path(), "many.csv", csv);
    let steps: String = (0..20)
        .map(|i| format!("    - {{ name: s{i}, repeat: 20, every: 1s }}\n"))
        .collect();
    let text = format!(
        "version: 1\nname: p\ncaller_id: \"321-555-1111\"\nrecipients:\n  - from: many.csv\nmessages:\n  m: {{ tts: \"hi\" }}\nrules:\n  - play: m\nescalation:\n  steps:\n{steps}"
    );
    let path = write(dir.path(), "p.yaml", text);
    let started = std::time::Instant::now();
    let out = dry(&path, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("would call people 120000 times, more than the limit of 100000"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn the_example_critical_page_is_a_three_step_page() {
    let out = run(&[
        "run",
        "playbooks/critical-page.yaml",
        "--dry-run",
        "--now",
        "2026-11-26T22:00:00Z",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::with_settings!({ filters => code_filters() }, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn ssml_pages_escape_nothing_of_the_hint_into_markup() {
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\nname: p\ncaller_id: \"321-555-1111\"\nrecipients:\n  - { name: A, phone: \"+1 321 499 1008\" }\nmessages:\n  m: { ssml: \"<speak>Round {{ escalation.round }}. {{ ack.hint }}</speak>\" }\nrules:\n  - play: m\nescalation:\n  steps: [{ name: first }]\nack:\n  sms: [\"ok\"]\n";
    let path = write(dir.path(), "p.yaml", text);
    let report = page_report(&path, &[]);
    let code = &report.escalation.code;
    assert_eq!(
        report.calls[0].service_id.as_deref(),
        Some(
            format!(
                "<speak>Round 1. To acknowledge, text ok {code} to 3 2 1, 5 5 5, 1 1 1 1, or call this number back.</speak>"
            )
            .as_str()
        )
    );
}
