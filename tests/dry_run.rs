//! `callbook run --dry-run`: the plan, exactly as it would be sent.

mod support;

use serde::Deserialize;
use support::{callbook, finish, run, write};

const NOW: &str = "2026-11-26T22:00:00Z";

/// The JSON report as the README's "The JSON report" section documents it; unknown fields fail the test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Report {
    callbook_version: String,
    playbook: PlaybookRef,
    run_id: String,
    dry_run: bool,
    started_at: String,
    finished_at: String,
    totals: Totals,
    calls: Vec<Call>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PlaybookRef {
    name: String,
    path: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Totals {
    recipients: usize,
    planned: usize,
    placed: usize,
    failed: usize,
    unknown: usize,
    skipped: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Call {
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
}

fn json_report(args: &[&str]) -> (Report, serde_json::Value) {
    let out = run(args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let typed: Report = serde_json::from_str(&out.stdout).unwrap();
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    (typed, value)
}

#[test]
fn disk_full_table() {
    let out = run(&["run", "playbooks/disk-full.yaml", "--dry-run", "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn disk_full_json_report() {
    let (report, value) = json_report(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    assert!(report.dry_run);
    assert!(report.run_id.starts_with("2026-11-26T22:00:00Z-"));
    assert_eq!(report.started_at, NOW);
    assert_eq!(
        report.totals,
        Totals {
            recipients: 4,
            planned: 3,
            placed: 0,
            failed: 0,
            unknown: 0,
            skipped: 1
        }
    );
    insta::assert_json_snapshot!(value, {
        ".run_id" => "[run_id]",
        ".finished_at" => "[finished_at]",
    });
}

#[test]
fn critical_variables_change_the_plan() {
    let (report, _) = json_report(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--now",
        NOW,
        "--format",
        "json",
        "--var",
        "severity=critical",
        "--var",
        "usage=97",
        "--var",
        "host=db-02",
    ]);
    let jonas = report
        .calls
        .iter()
        .find(|c| c.recipient == "Jonas Weber")
        .unwrap();
    assert_eq!(jonas.status, "planned");
    assert_eq!(jonas.service_type.as_deref(), Some("Phonenumber"));
    assert_eq!(jonas.service_id.as_deref(), Some("13214992200"));
    let alice = report
        .calls
        .iter()
        .find(|c| c.recipient == "Alice Ng")
        .unwrap();
    let ssml = alice.service_id.as_deref().unwrap();
    assert!(
        ssml.contains("db-02") && ssml.contains("97 percent"),
        "{ssml}"
    );
}

#[test]
fn vars_file_input_and_var_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let vars = write(dir.path(), "vars.yaml", "host: from-file\nusage: 50\n");
    let (report, _) = json_report(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--now",
        "2026-11-26T15:00:00Z",
        "--format",
        "json",
        "--vars-file",
        &vars,
        "--var",
        "usage=99",
        "--recipient",
        "Dana Whitfield",
    ]);
    assert_eq!(report.calls.len(), 1);
    assert_eq!(
        report.calls[0].service_id.as_deref(),
        Some("Disk alert on from-file: /var/lib/postgresql is 99 percent full.")
    );
}

#[test]
fn input_document_from_stdin() {
    let payload = r#"{"status": "firing", "groupKey": "{}:{alertname=\"DiskFull\"}", "commonLabels": {"alertname": "DiskFull", "instance": "db-07"},
        "commonAnnotations": {"summary": "db-07 /data at 98% & climbing"}}"#;
    let out = finish(
        callbook()
            .args([
                "run",
                "playbooks/critical-page.yaml",
                "--dry-run",
                "--now",
                NOW,
            ])
            .args(["--format", "json", "--input", "-"])
            .write_stdin(payload),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("db-07"), "{}", out.stdout);
}

#[test]
fn tag_selection() {
    let (report, _) = json_report(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--now",
        NOW,
        "--format",
        "json",
        "--tag",
        "primary",
        "--tag",
        "dba",
    ]);
    let names: Vec<_> = report.calls.iter().map(|c| c.recipient.as_str()).collect();
    assert_eq!(names, ["Alice Ng", "Priya Raman"]);
    assert_eq!(report.totals.recipients, 2);
}

#[test]
fn unknown_recipient_is_an_error_with_a_suggestion() {
    let out = run(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--recipient",
        "Alice Nq",
    ]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn duplicates_speed_dials_and_included_yaml() {
    let out = run(&[
        "run",
        "tests/fixtures/run/duplicates.yaml",
        "--dry-run",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn undefined_variable_for_one_recipient_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = run(&[
        "run",
        "tests/fixtures/run/one-undefined.yaml",
        "--dry-run",
        "--report-file",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "", "no plan is shown when any recipient fails");
    assert!(!report.exists(), "no report is written when planning fails");
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn values_in_ssml_are_escaped_never_markup() {
    let (report, _) = json_report(&[
        "run",
        "tests/fixtures/run/ssml-escape.yaml",
        "--dry-run",
        "--format",
        "json",
    ]);
    let ssml = report.calls[0].service_id.as_deref().unwrap();
    assert_eq!(
        ssml,
        "<speak>\n  Hello Al &lt;script&gt;. CPU &gt; 90% &amp; &lt;emphasis&gt;rising&lt;/emphasis&gt;\n</speak>"
    );
}

#[test]
fn var_that_breaks_ssml_structure_cannot() {
    let (report, _) = json_report(&[
        "run",
        "tests/fixtures/run/ssml-escape.yaml",
        "--dry-run",
        "--format",
        "json",
        "--var",
        "summary=</speak><speak>",
    ]);
    let ssml = report.calls[0].service_id.as_deref().unwrap();
    assert!(ssml.contains("&lt;/speak&gt;&lt;speak&gt;"), "{ssml}");
}

#[test]
fn report_file_is_written_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let out = run(&[
        "run",
        "playbooks/maintenance-broadcast.yaml",
        "--dry-run",
        "--now",
        NOW,
        "--report-file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report.playbook.name, "maintenance-broadcast");
    assert_eq!(report.calls.len(), report.totals.recipients);
    assert!(
        out.stdout.contains("RECIPIENT"),
        "table still goes to stdout"
    );
}

#[test]
fn bad_command_line_values_exit_2() {
    for (args, want) in [
        (
            vec!["--now", "yesterday"],
            "error: --now \"yesterday\" is not an RFC 3339 time",
        ),
        (vec!["--var", "novalue"], "error: --var: expected KEY=VALUE"),
        (
            vec!["--vars-file", "no-such.yaml"],
            "error: --vars-file: cannot read `no-such.yaml`: no such file",
        ),
        (
            vec!["--input", "no-such.json"],
            "error: --input: cannot read `no-such.json`: no such file",
        ),
    ] {
        let mut full = vec!["run", "playbooks/disk-full.yaml", "--dry-run"];
        full.extend(args);
        let out = run(&full);
        assert_eq!(out.code, 2, "{full:?}");
        assert!(out.stderr.starts_with(want), "{full:?}: {}", out.stderr);
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run(&["run", "playbooks/disk-full.yaml", "--dry-rnu"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--dry-run"), "{}", out.stderr);
}

#[test]
fn vars_file_and_input_that_are_devices_or_fifos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("vars.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.display().to_string();
    for (flag, file, what) in [
        ("--vars-file", "/dev/zero", "a device"),
        ("--input", "/dev/zero", "a device"),
        ("--vars-file", fifo.as_str(), "a FIFO"),
        ("--input", fifo.as_str(), "a FIFO"),
    ] {
        let out = support::finish(
            support::callbook()
                .args(["run", "playbooks/disk-full.yaml", "--dry-run", flag, file])
                .timeout(std::time::Duration::from_secs(60)),
        );
        assert_eq!(out.code, 2, "{flag} {file}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("not a regular file ({what})")),
            "{flag} {file}: {}",
            out.stderr
        );
    }
}

#[test]
fn endless_standard_input_is_cut_at_the_limit() {
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "playbooks/disk-full.yaml",
            "--dry-run",
            "--input",
            "-",
        ])
        .env("NO_COLOR", "1")
        .env("CALLBOOK_STATE_DIR", support::fresh_state_dir())
        .stdin(zero)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is larger than"), "{stderr}");
}

/// A value that must never be printed: it stands for a password.
const HUNTER: &str = "hunter2-do-not-print";

#[test]
fn var_with_a_secret_name_is_refused_without_echoing_it() {
    let arg = format!("db_password={HUNTER}");
    let out = run(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--var",
        &arg,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("`db_password` looks like a secret"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(HUNTER), "{}", out.stderr);
    assert!(!out.stdout.contains(HUNTER), "{}", out.stdout);
}

#[test]
fn var_with_a_bad_name_does_not_echo_the_value() {
    let arg = format!("db-password={HUNTER}");
    let out = run(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--var",
        &arg,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains(HUNTER), "{}", out.stderr);
}

#[test]
fn vars_file_with_a_secret_key_is_refused_without_printing_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let vars = write(
        dir.path(),
        "vars.yaml",
        format!("host: db-02\ndb:\n  client_secret: {HUNTER}\n"),
    );
    let out = run(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--vars-file",
        &vars,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("db.client_secret: --vars-file: `client_secret` looks like a secret"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(HUNTER), "{}", out.stderr);
}

#[test]
fn input_with_a_syntax_error_on_a_secret_line_does_not_print_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "input.json",
        format!("{{\"commonLabels\": {{\"api_token\": \"{HUNTER}\" \"x\"}}}}\n"),
    );
    let out = run(&[
        "run",
        "playbooks/disk-full.yaml",
        "--dry-run",
        "--input",
        &input,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("input.json:1:"), "{}", out.stderr);
    assert!(!out.stderr.contains(HUNTER), "{}", out.stderr);
}

/// A playbook and a CSV whose names and fields carry terminal escapes.
fn hostile_csv(dir: &std::path::Path, rows: &str) -> String {
    write(dir, "team.csv", format!("name,phone,note\n{rows}"));
    write(
        dir,
        "p.yaml",
        "version: 1\nname: esc\ncaller_id: \"321-499-1000\"\nrecipients:\n  - from: team.csv\nmessages:\n  m:\n    tts: \"Hi {{ recipient.name }}: {{ recipient.vars.note }}\"\nrules:\n  - play: m\n",
    )
}

fn assert_no_controls(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect();
    assert!(bad.is_empty(), "control characters {bad:?} in:\n{text}");
}

#[test]
fn control_characters_in_names_and_fields_never_reach_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_csv(
        dir.path(),
        "\"Eve\u{1b}[2J\u{1b}]0;pwned\u{7}\",+1 (321) 499-1008,\"x\u{1b}[31mred\rfake\u{202e}txt\"\n",
    );
    let out = run(&["run", &path, "--dry-run", "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_no_controls(&out.stdout);
    assert!(out.stdout.contains("Eve\u{241b}[2J"), "{}", out.stdout);
}

#[test]
fn control_characters_never_reach_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_csv(
        dir.path(),
        "\"Eve\u{1b}[2J\",+1 (321) 499-1008,x\n\"Eve\u{1b}[2J\",12345\u{1b}[8m,y\n",
    );
    let out = run(&["validate", &path]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_no_controls(&out.stderr);
    assert!(out.stderr.contains("Eve\u{241b}[2J"), "{}", out.stderr);
}

/// What an attacker puts in a CSV field or a variable to make the call play their sound.
const INJECTED: &str = "<audio src=\"https://evil.example/x.wav\"/>";

/// Renders the SSML message `page` (with a `tts` message `short` next to it)
/// with `note` set to [`INJECTED`], and returns what would be sent.
fn ssml_with(page: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        format!(
            "version: 1\nname: inj\ncaller_id: \"321-499-1000\"\nrecipients:\n  - {{ name: A, phone: \"+1 (321) 499-1008\" }}\nmessages:\n  short:\n    tts: \"{{{{ note }}}}\"\n  page:\n    ssml: '{page}'\nrules:\n  - tags: [never]\n    play: short\n  - play: page\n"
        ),
    );
    let var = format!("note={INJECTED}");
    let out = run(&[
        "run",
        &path,
        "--dry-run",
        "--format",
        "json",
        "--var",
        &var,
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ssml = report["calls"][0]["service_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!ssml.contains("<audio"), "markup got through: {ssml}");
    assert!(ssml.contains("&lt;audio"), "{ssml}");
    ssml
}

#[test]
fn ssml_including_a_tts_message_escapes_it() {
    ssml_with(r#"<speak>{% include "messages.short" %}</speak>"#);
}

#[test]
fn ssml_safe_filter_cannot_make_data_markup() {
    ssml_with("<speak>{{ note | safe }}</speak>");
}

#[test]
fn ssml_autoescape_false_block_still_escapes() {
    ssml_with("<speak>{% autoescape false %}{{ note }}{% endautoescape %}</speak>");
}

#[test]
fn ssml_macro_output_is_escaped() {
    ssml_with("<speak>{% macro m(x) %}{{ x }}{% endmacro %}{{ m(note) }}</speak>");
}

#[test]
fn ssml_macro_imported_from_a_tts_message_escapes() {
    ssml_with(
        r#"<speak>{% import "messages.short" as s %}{% set x %}{% include "messages.short" %}{% endset %}{{ x }}</speak>"#,
    );
}

#[test]
fn ssml_tojson_cannot_break_out_of_an_attribute() {
    let ssml = ssml_with(
        r#"<speak><say-as interpret-as="characters">{{ note | tojson }}</say-as></speak>"#,
    );
    assert!(!ssml.contains("\"https"), "{ssml}");
}
