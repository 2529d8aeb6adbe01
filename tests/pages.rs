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
fn a_live_page_is_refused_before_any_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(&server, state.path(), PAGE, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("is a page"), "{}", out.stderr);
    assert!(server.requests().is_empty());
}
