//! Bounds and truthful exit codes: every number from a playbook or the command
//! line is bounded, rendered messages have a size limit, a report file that
//! cannot be written stops the run before the first call, a `--tag` no
//! recipient has and an empty `--input` are errors, and the sources point only
//! at documents the repository holds.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, TestServer};
use support::{Outcome, callbook, finish, run, write};

const TEAM: &str = "tests/fixtures/live/team.yaml";

/// A playbook of two storage recipients, with `extra` added at the top level.
fn playbook(extra: &str) -> String {
    format!(
        r#"version: 1
name: bounds
caller_id: "321-499-1000"
recipients:
  - {{ name: P1, phone: "+1 321 499 1001", tags: [storage] }}
  - {{ name: P2, phone: "+1 321 499 1002", tags: [network] }}
{extra}
"#
    )
}

/// A playbook that plays one message, written as `message` (e.g. `tts: "{{ input.text }}"`).
fn playing(message: &str, extra: &str) -> String {
    playbook(&format!(
        "messages:\n  m:\n    {message}\nrules:\n  - play: m\n{extra}"
    ))
}

/// A playbook whose only rule connects to `connect` (e.g. `device: "{{ input.text }}"`).
fn connecting(connect: &str, extra: &str) -> String {
    playbook(&format!("rules:\n  - connect: {{ {connect} }}\n{extra}"))
}

fn validate(text: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p.yaml", text);
    run(&["validate", &path])
}

/// `callbook run PLAYBOOK --dry-run ARGS` with `stdin` on standard input.
fn dry_run(text: &str, args: &[&str], stdin: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p.yaml", text);
    finish(
        callbook()
            .args(["run", &path, "--dry-run"])
            .args(args)
            .write_stdin(stdin),
    )
}

/// A live run of `playbook` against `server`, with a token, and `stdin` on standard input.
fn live(server: &TestServer, playbook: &str, args: &[&str], stdin: &str) -> Outcome {
    finish(
        callbook()
            .args(["run", playbook, "--yes", "--base-url", &server.url()])
            .args(args)
            .env("FONESTORM_TOKEN", "test-token")
            .write_stdin(stdin),
    )
}

fn assert_nothing_called(server: &TestServer) {
    assert!(
        server.requests().is_empty(),
        "the server saw requests: {:?}",
        server
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
}

// ---- numbers from the command line ----

#[test]
fn a_huge_rate_limit_flag_is_a_usage_error_before_anything_is_called() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let out = live(
        &server,
        TEAM,
        &["--rate-limit", "1e18", "--state-dir", state_dir],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--rate-limit"), "{}", out.stderr);
    assert!(
        out.stderr.contains("0.01 to 1000 requests per second"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_nothing_called(&server);
    let runs = run(&["runs", "--state-dir", state_dir, "--format", "json"]);
    assert_eq!(runs.stdout.trim(), "[]", "no run was recorded");
}

#[test]
fn a_tiny_rate_limit_flag_is_a_usage_error() {
    let out = dry_run(&playing("tts: hi", ""), &["--rate-limit", "0.0001"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("out of range"), "{}", out.stderr);
}

#[test]
fn a_rate_limit_flag_that_is_not_a_number_is_a_usage_error() {
    let out = dry_run(&playing("tts: hi", ""), &["--rate-limit", "NaN"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_huge_concurrency_flag_is_a_usage_error() {
    let out = dry_run(&playing("tts: hi", ""), &["--concurrency", "1000001"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--concurrency"), "{}", out.stderr);
}

#[test]
fn the_largest_concurrency_and_rate_flags_are_accepted() {
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--concurrency", "1000", "--rate-limit", "1000"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_huge_max_calls_flag_is_a_usage_error() {
    let out = dry_run(&playing("tts: hi", ""), &["--max-calls", "1000001"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--max-calls"), "{}", out.stderr);
}

#[test]
fn a_huge_runs_limit_is_a_usage_error() {
    let state = tempfile::tempdir().unwrap();
    let out = run(&[
        "runs",
        "--state-dir",
        state.path().to_str().unwrap(),
        "--limit",
        "18446744073709551615",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("1 to 10000"), "{}", out.stderr);
}

// ---- numbers from the playbook: validate catches what run would reject ----

#[test]
fn validate_names_every_out_of_range_number() {
    let out = run(&[
        "validate",
        "tests/fixtures/limits/out-of-range-numbers.yaml",
    ]);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn validate_names_every_out_of_range_duration() {
    let out = run(&[
        "validate",
        "tests/fixtures/limits/out-of-range-durations.yaml",
    ]);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn a_huge_playbook_rate_limit_is_refused_by_a_live_run_before_anything_is_called() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        playing("tts: hi", "provider:\n  rate_limit: 1e19\n"),
    );
    let out = live(&server, &path, &[], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("provider.rate_limit: `1e+19` is greater than the maximum 1000"),
        "{}",
        out.stderr
    );
    assert_nothing_called(&server);
}

#[test]
fn a_rate_limit_below_the_minimum_is_invalid() {
    let out = validate(&playing("tts: hi", "provider:\n  rate_limit: 0.001\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is less than the minimum 0.01"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_non_finite_rate_limit_is_invalid() {
    let out = validate(&playing("tts: hi", "provider:\n  rate_limit: .inf\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn too_many_retries_are_invalid() {
    let out = validate(&playing("tts: hi", "provider:\n  retries: 11\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is greater than the maximum 10"),
        "{}",
        out.stderr
    );
}

#[test]
fn too_much_concurrency_is_invalid() {
    let out = validate(&playing("tts: hi", "provider:\n  concurrency: 1001\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_huge_max_calls_is_invalid() {
    let out = validate(&playing("tts: hi", "limits:\n  max_calls: 1000001\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_timeout_under_a_second_is_invalid() {
    let out = validate(&playing("tts: hi", "provider:\n  timeout: 999ms\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("from 1s to 1h"), "{}", out.stderr);
}

#[test]
fn a_zero_dedup_window_is_invalid() {
    let out = validate(&playing("tts: hi", "dedup:\n  window: 0s\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("from 1s to 90d"), "{}", out.stderr);
}

#[test]
fn a_dedup_window_of_ninety_days_is_valid() {
    let out = validate(&playing("tts: hi", "dedup:\n  window: 90d\n"));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn whole_numbers_written_as_floats_are_read_as_integers() {
    let out = run(&["validate", "tests/fixtures/limits/whole-floats.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---- limits.max_message_bytes ----

/// An `--input` document whose `text` is `n` bytes of `x`.
fn long_input(n: usize) -> String {
    format!("{{\"text\": \"{}\"}}", "x".repeat(n))
}

#[test]
fn a_huge_input_value_fails_the_plan_naming_the_recipient() {
    let out = dry_run(
        &playing("tts: \"{{ input.text }}\"", ""),
        &["--input", "-"],
        &long_input(1024 * 1024),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "for recipient `P1`: the message renders to 1048576 bytes, more than `limits.max_message_bytes` (8192)"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("recipient `P2`"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report: {}", out.stdout.len());
}

#[test]
fn a_message_of_exactly_the_default_limit_is_planned() {
    let out = dry_run(
        &playing("tts: \"{{ input.text }}\"", ""),
        &["--input", "-", "--format", "json"],
        &long_input(8192),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_message_one_byte_over_the_default_limit_is_refused() {
    let out = dry_run(
        &playing("tts: \"{{ input.text }}\"", ""),
        &["--input", "-"],
        &long_input(8193),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("8193 bytes"), "{}", out.stderr);
}

#[test]
fn the_limit_counts_bytes_not_characters() {
    // 30 characters, 90 bytes.
    let out = dry_run(
        &playing(
            "tts: \"{{ input.text }}\"",
            "limits:\n  max_message_bytes: 60\n",
        ),
        &["--input", "-"],
        &format!("{{\"text\": \"{}\"}}", "€".repeat(30)),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("90 bytes"), "{}", out.stderr);
}

#[test]
fn a_long_ssml_message_is_refused() {
    let out = dry_run(
        &playing(
            "ssml: \"<speak>{{ input.text }}</speak>\"",
            "limits:\n  max_message_bytes: 100\n",
        ),
        &["--input", "-"],
        &long_input(200),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("more than `limits.max_message_bytes` (100)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_long_sound_file_url_is_refused() {
    let out = dry_run(
        &playing(
            "sound_file: \"https://sounds.example.com/{{ input.text }}.wav\"",
            "limits:\n  max_message_bytes: 100\n",
        ),
        &["--input", "-"],
        &long_input(200),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("for recipient `P1`"), "{}", out.stderr);
}

#[test]
fn a_long_device_id_is_refused() {
    let out = dry_run(
        &connecting("device: \"{{ input.text }}\"", ""),
        &["--input", "-"],
        &long_input(9000),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("for recipient `P1`: the destination renders to 9000 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_long_voicemail_id_is_refused() {
    let out = dry_run(
        &connecting("voicemail: \"{{ input.text }}\"", ""),
        &["--input", "-"],
        &long_input(9000),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("9000 bytes"), "{}", out.stderr);
}

#[test]
fn a_long_connect_phone_is_refused_before_it_is_parsed() {
    let out = dry_run(
        &connecting("phone: \"{{ input.text }}\"", ""),
        &["--input", "-"],
        &long_input(9000),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("9000 bytes"), "{}", out.stderr);
}

#[test]
fn a_long_dedup_key_is_refused() {
    let out = dry_run(
        &playing(
            "tts: hi",
            "dedup:\n  key: \"{{ input.text }}\"\n  window: 30m\n",
        ),
        &["--input", "-"],
        &long_input(9000),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("for recipient `P1`: the dedup key renders to 9000 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_huge_message_is_refused_by_a_live_run_before_anything_is_called() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        playing("tts: \"{{ input.text }}\"", ""),
    );
    let out = live(&server, &path, &["--input", "-"], &long_input(100_000));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was called"), "{}", out.stderr);
    assert_nothing_called(&server);
}

#[test]
fn max_message_bytes_out_of_range_is_invalid() {
    let out = validate(&playing("tts: hi", "limits:\n  max_message_bytes: 65537\n"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is greater than the maximum 65536"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_playbook_name_too_long_for_a_lock_file_is_refused_by_validate() {
    // A live run names its lock file after the playbook: a name the file
    // system cannot hold must fail `validate`, not the 3 a.m. run.
    let text =
        playing("tts: hi", "").replace("name: bounds", &format!("name: {}", "a".repeat(300)));
    let out = validate(&text);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("error: name:"), "{}", out.stderr);
}

#[test]
fn a_playbook_name_of_100_characters_is_accepted() {
    let text =
        playing("tts: hi", "").replace("name: bounds", &format!("name: {}", "a".repeat(100)));
    let out = validate(&text);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---- --report-file ----

#[test]
fn a_report_file_in_a_missing_directory_stops_the_run_before_the_first_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("no-such-dir").join("report.json");
    let out = live(
        &server,
        TEAM,
        &["--report-file", report.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--report-file: cannot write"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was called"), "{}", out.stderr);
    assert_nothing_called(&server);
}

#[test]
fn a_report_file_that_is_a_directory_stops_the_run_before_the_first_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = live(
        &server,
        TEAM,
        &["--report-file", dir.path().to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
    assert_nothing_called(&server);
}

#[test]
fn a_report_file_in_a_missing_directory_fails_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("no-such-dir").join("report.json");
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--report-file", report.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn a_report_file_leaves_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--report-file", report.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn a_report_file_that_is_the_playbook_is_refused_and_the_playbook_kept() {
    let dir = tempfile::tempdir().unwrap();
    let text = playing("tts: hi", "");
    let path = write(dir.path(), "p.yaml", &text);
    let same = dir.path().join(".").join("p.yaml");
    let out = finish(callbook().args([
        "run",
        &path,
        "--dry-run",
        "--report-file",
        same.to_str().unwrap(),
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--report-file"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_report_file_that_is_the_input_is_refused_and_the_input_kept() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "alert.json", "{\"status\": \"firing\"}");
    let out = live(
        &server,
        TEAM,
        &["--input", &input, "--report-file", &input],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nothing was called"), "{}", out.stderr);
    assert_nothing_called(&server);
    assert_eq!(
        std::fs::read_to_string(&input).unwrap(),
        "{\"status\": \"firing\"}"
    );
}

/// A dry run with `--report-file` at `report`, which must be refused and left as it was.
fn assert_report_file_refused(report: &std::path::Path) {
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--report-file", report.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_report_file_that_is_a_fifo_is_refused_and_not_replaced() {
    // `--report-file /dev/stdout` run as root would replace the system's
    // /dev/stdout with a regular file; a FIFO stands for any special file.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    assert_report_file_refused(&fifo);
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(!meta.is_file(), "the FIFO was replaced by a file");
}

#[cfg(unix)]
#[test]
fn a_report_file_that_is_a_symlink_is_refused_and_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let target = write(dir.path(), "target.json", "{}");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_report_file_refused(&link);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
}

/// Waits (generously) until the server has seen a call request.
fn wait_for_a_call(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.requests().iter().any(|r| r.path.ends_with("/calls")) {
        assert!(Instant::now() < deadline, "no call request arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_report_file_that_fails_after_the_calls_keeps_the_exit_code_and_prints_the_report() {
    let server = TestServer::start(Config {
        latency: Duration::from_secs(1),
        ..Config::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let state = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", TEAM, "--yes", "--format", "json"])
        .args(["--base-url", &server.url()])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--report-file")
        .arg(&report)
        .env("FONESTORM_TOKEN", "test-token")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_call(&server);
    // The calls are under way: the report's place is taken by a directory.
    std::fs::create_dir(&report).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("--report-file: cannot write"), "{stderr}");
    assert!(
        stderr.contains("the report is on standard output"),
        "{stderr}"
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["totals"]["placed"], 6, "{printed}");
    assert!(Path::new(&report).is_dir());
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "only the directory is left");
}

// ---- --tag ----

#[test]
fn an_unknown_tag_is_an_error_with_a_suggestion() {
    let out = run(&[
        "run",
        "playbooks/maintenance-broadcast.yaml",
        "--dry-run",
        "--tag",
        "storge",
    ]);
    insta::assert_snapshot!(out.diagnostics());
}

#[test]
fn one_unknown_tag_among_known_ones_is_an_error() {
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--tag", "storage", "--tag", "netwrk"],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--tag: no recipient has the tag `netwrk`, did you mean `network`?"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("`storage`"), "{}", out.stderr);
}

#[test]
fn a_known_tag_still_selects() {
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--tag", "network", "--format", "json"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["totals"]["recipients"], 1);
    assert_eq!(report["calls"][0]["recipient"], "P2");
}

#[test]
fn an_unknown_tag_calls_nobody_in_a_live_run() {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p.yaml", playing("tts: hi", ""));
    let out = live(&server, &path, &["--tag", "storge"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_nothing_called(&server);
}

// ---- empty --input ----

#[test]
fn an_empty_input_on_stdin_is_an_error() {
    let out = dry_run(&playing("tts: hi", ""), &["--input", "-"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--input: `<stdin>` is empty (empty input)"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_input_of_only_whitespace_and_comments_is_an_error() {
    let out = dry_run(
        &playing("tts: hi", ""),
        &["--input", "-"],
        "\n   \n# the payload went missing\n---\n",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("empty input"), "{}", out.stderr);
}

#[test]
fn an_empty_input_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "empty.json", "");
    let out = dry_run(&playing("tts: hi", ""), &["--input", &input], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("empty input"), "{}", out.stderr);
}

#[test]
fn an_empty_input_calls_nobody_in_a_live_run() {
    let server = TestServer::start(Config::default()).unwrap();
    let out = live(&server, TEAM, &["--input", "-"], "  \n");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_nothing_called(&server);
}

#[test]
fn an_explicit_null_input_is_still_a_document() {
    let out = dry_run(&playing("tts: hi", ""), &["--input", "-"], "null\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---- documentation points only at what the repository holds ----

/// Every Markdown file name mentioned in `text`.
fn markdown_references(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .map(|word| word.trim_end_matches(['.', '/']))
        .filter(|word| word.ends_with(".md") && word.len() > ".md".len())
        .map(str::to_string)
        .collect()
}

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            source_files(&path, out);
        } else if ["rs", "json", "toml", "yaml", "yml", "sh", "dict", "csv"]
            .iter()
            .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            out.push(path);
        }
    }
}

#[test]
fn sources_mention_only_documents_the_repository_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "crates",
        "tests",
        "benches",
        "fuzz",
        "schema",
        "scripts",
        "playbooks",
    ] {
        source_files(&root.join(dir), &mut files);
    }
    files.push(root.join("Cargo.toml"));
    assert!(files.len() > 20, "found the sources: {files:?}");
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for reference in markdown_references(&text) {
            if !root.join(&reference).is_file() {
                missing.push(format!("{}: `{reference}`", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "references to missing documents:\n{}",
        missing.join("\n")
    );
}

#[test]
fn markdown_references_are_found() {
    assert_eq!(
        markdown_references(concat!(
            "see `design/cli",
            ".md`, and README",
            ".md. Not .md alone"
        )),
        [concat!("design/cli", ".md"), concat!("README", ".md")]
    );
}
