//! Live pages against the test server: the ladder runs round by round,
//! stops at the first acknowledgement (by hand, by SMS, by calling back),
//! records outcomes from callbacks, and refuses what it must before any call.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fonestorm_testserver::{
    CallbackFault, CallbackRule, Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook,
};
use support::{callbook, finish, json, run};

const LIVE: &str = "tests/fixtures/pages/live-page.yaml";
const SLOW: &str = "tests/fixtures/pages/slow-page.yaml";
const SECRET: &str = "page-secret-0123456789";
const FONENUMBER: &str = "3214991000";
const P1: &str = "13214991001";
const P2: &str = "13214991002";

/// A port nobody listens on right now, for the page's listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_080)
}

/// Points the test server's callbacks for the FoneNumber at a page listening on `port`.
fn hooks_to(server: &TestServer, port: u16, password: &str) {
    let hook = |path: &str| {
        UrlHook::new(format!("http://127.0.0.1:{port}{path}"), HookMethod::Json)
            .basic_auth("callbook", password)
    };
    server.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(hook("/fonestorm/calls")),
            receive_notify: Some(hook("/fonestorm/inbound")),
            sms: Some(SmsHook::Url(hook("/fonestorm/sms"))),
        },
    );
}

/// `callbook run PLAYBOOK` live, waited for, with the page's secret and listener.
fn page(
    server: &TestServer,
    state: &Path,
    playbook: &str,
    port: u16,
    extra: &[&str],
) -> support::Outcome {
    finish(
        callbook()
            .args([
                "run",
                playbook,
                "--yes",
                "--format",
                "json",
                "--base-url",
                &server.url(),
            ])
            .arg("--state-dir")
            .arg(state)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("FONESTORM_TOKEN", "test-token")
            .env("CALLBOOK_CALLBACK_SECRET", SECRET)
            .timeout(Duration::from_secs(120)),
    )
}

/// The same, as a child process (for acks and signals while it runs).
fn spawn_page(server: &TestServer, state: &Path, playbook: &str, port: u16) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            playbook,
            "--yes",
            "--format",
            "json",
            "--base-url",
            &server.url(),
        ])
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("FONESTORM_TOKEN", "test-token")
        .env("CALLBOOK_CALLBACK_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callbook starts")
}

/// Waits (generously) until the server saw `n` placed calls.
fn wait_for_calls(server: &TestServer, n: usize) {
    let start = Instant::now();
    while server.placed_calls().len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no call placed in 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The id of the only run in `state`.
fn run_id(state: &Path) -> String {
    let out = run(&[
        "runs",
        "--state-dir",
        state.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    runs[0]["run_id"].as_str().unwrap().to_string()
}

/// Waits (generously) for a spawned page to end; its exit code and both streams.
fn wait_page(child: Child) -> support::Outcome {
    let out = child.wait_with_output().expect("callbook ends");
    support::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn calls_of(report: &serde_json::Value) -> Vec<(String, String, u64, String)> {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap_or("").to_string(),
                c["recipient"].as_str().unwrap_or("").to_string(),
                c["round"].as_u64().unwrap_or(0),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_page_nobody_acknowledges_climbs_the_whole_ladder_and_is_exhausted() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = page(&server, state.path(), LIVE, free_port(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    assert_eq!(
        calls_of(&report),
        [
            ("primary".into(), "P1".into(), 1, "placed".into()),
            ("primary".into(), "P1".into(), 2, "placed".into()),
            ("secondary".into(), "P2".into(), 1, "placed".into()),
        ]
    );
    assert_eq!(report["totals"]["recipients"], 2);
    assert_eq!(report["totals"]["placed"], 3);
    let counts = server.placed_counts();
    assert_eq!(counts.get(P1), Some(&2), "once per round");
    assert_eq!(counts.get(P2), Some(&1));
    assert!(!out.stderr.contains(SECRET));
}

#[test]
fn a_page_without_the_callback_secret_is_refused_before_any_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .args(["run", LIVE, "--yes", "--base-url", &server.url()])
            .arg("--state-dir")
            .arg(state.path())
            .env("FONESTORM_TOKEN", "test-token")
            .env_remove("CALLBOOK_CALLBACK_SECRET"),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("CALLBOOK_CALLBACK_SECRET"),
        "{}",
        out.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_callback_secret_too_short_is_refused_unseen() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = finish(
        callbook()
            .args(["run", LIVE, "--yes", "--base-url", &server.url()])
            .arg("--state-dir")
            .arg(state.path())
            .env("FONESTORM_TOKEN", "test-token")
            .env("CALLBOOK_CALLBACK_SECRET", "short-pw"),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("too short"), "{}", out.stderr);
    assert!(!out.stderr.contains("short-pw"), "{}", out.stderr);
    assert!(server.requests().is_empty());
}

#[test]
fn an_ack_by_hand_stops_the_page_and_skips_the_calls_not_sent() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    let id = run_id(state.path());
    let ack = run(&[
        "ack",
        &id,
        "--by",
        "Alice Ng",
        "--note",
        "on it",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    let started = Instant::now();
    let out = wait_page(child);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the page stopped soon"
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "acknowledged");
    assert_eq!(report["escalation"]["ack"]["by"], "Alice Ng");
    assert_eq!(report["escalation"]["ack"]["via"], "manual");
    assert_eq!(report["escalation"]["ack"]["text"], "on it");
    assert_eq!(report["escalation"]["ack"]["step"], "primary");
    let calls = calls_of(&report);
    assert_eq!(calls[0].3, "placed");
    for later in &calls[1..] {
        assert_eq!(later.3, "skipped", "{calls:?}");
    }
    assert_eq!(report["calls"][1]["reason"], "acknowledged by Alice Ng");
    assert_eq!(server.placed_calls(), [P1]);
    // It has ended: a second ack is refused.
    let again = run(&["ack", &id, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert!(
        again.stderr.contains("already ended (acknowledged)"),
        "{}",
        again.stderr
    );
}

#[test]
fn the_table_of_an_acknowledged_page_ends_with_who_and_how() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", SLOW, "--yes", "--base-url", &server.url()])
        .arg("--state-dir")
        .arg(state.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("FONESTORM_TOKEN", "test-token")
        .env("CALLBOOK_CALLBACK_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_calls(&server, 1);
    let id = run_id(state.path());
    let ack = run(&[
        "ack",
        &id,
        "--by",
        "Alice Ng",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    let _ = child.stdin.take();
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = out
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("acknowledged by Alice Ng by hand after ")
            && last.ends_with("(step primary, round 1)"),
        "{}",
        out.stdout
    );
}

#[test]
fn ack_of_a_run_that_does_not_exist_is_invalid() {
    let state = tempfile::tempdir().unwrap();
    let out = run(&[
        "ack",
        "no-such-run",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no run `no-such-run`"),
        "{}",
        out.stderr
    );
}

#[test]
fn ack_of_a_broadcast_is_invalid() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(&server, state.path(), "tests/fixtures/live/team.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = run_id(state.path());
    let out = run(&["ack", &id, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is not a page"), "{}", out.stderr);
}

#[test]
fn an_overlong_ack_name_is_invalid() {
    let state = tempfile::tempdir().unwrap();
    let by = "x".repeat(201);
    let out = run(&[
        "ack",
        "r",
        "--by",
        &by,
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn an_sms_ack_from_a_recipient_stops_the_page() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let child = spawn_page(&server, state.path(), SLOW, port);
    wait_for_calls(&server, 1);
    let delivered = server
        .simulate_sms("+1 321 499 1001", FONENUMBER, " ACK ")
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["ack"]["by"], "P1");
    assert_eq!(report["escalation"]["ack"]["via"], "sms");
    assert_eq!(report["escalation"]["ack"]["text"], "ACK");
    assert_eq!(server.placed_calls(), [P1]);
}

#[test]
fn an_sms_from_a_number_that_is_not_a_recipient_is_ignored() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let child = spawn_page(&server, state.path(), LIVE, port);
    wait_for_calls(&server, 1);
    let delivered = server
        .simulate_sms("+1 312 734 2210", FONENUMBER, "1")
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
    let out = wait_page(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(json(&out)["escalation"]["outcome"], "exhausted");
    assert!(
        out.stderr.contains("not a recipient of this page"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_callback_with_a_wrong_password_changes_nothing() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, "not-the-page-secret-at-all");
    let child = spawn_page(&server, state.path(), LIVE, port);
    wait_for_calls(&server, 1);
    let delivered = server
        .simulate_sms("+1 321 499 1001", FONENUMBER, "1")
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(401), "{delivered:?}");
    let out = wait_page(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    assert!(
        report["calls"][0]["disposition"].is_null(),
        "no outcome from a refused callback"
    );
}

#[test]
fn a_call_back_from_a_recipient_acknowledges() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let child = spawn_page(&server, state.path(), SLOW, port);
    wait_for_calls(&server, 1);
    let delivered = server
        .simulate_inbound_call("13214991001", FONENUMBER)
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["ack"]["via"], "call_back");
    assert_eq!(report["escalation"]["ack"]["by"], "P1");
}

#[test]
fn dispositions_from_end_callbacks_are_in_the_report() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), LIVE, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    // The last call's END may come after the last wait; the first ones have theirs.
    assert_eq!(report["calls"][0]["disposition"], "ANSWERED", "{report:#}");
    assert_eq!(report["calls"][0]["billable_seconds"], 30);
    assert!(report["calls"][0]["ended_at"].is_string());
}

#[test]
fn a_duplicated_end_callback_is_recorded_once() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_callback_faults(vec![CallbackRule::new(CallbackFault::DuplicateEnd)]);
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), LIVE, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["calls"][0]["disposition"], "ANSWERED");
    assert_eq!(
        server.placed_counts().get(P1),
        Some(&2),
        "nobody called more for it"
    );
}

#[test]
fn a_second_page_for_the_same_alert_within_the_window_is_deduplicated() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(LIVE).unwrap()
        + "dedup:\n  key: \"{{ alert }}\"\n  window: 1h\nvars: { alert: disk }\n";
    let path = support::write(dir.path(), "dedup-page.yaml", text);
    let first = page(&server, state.path(), &path, free_port(), &[]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let calls = server.placed_calls().len();
    let second = page(&server, state.path(), &path, free_port(), &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report = json(&second);
    assert_eq!(report["escalation"]["outcome"], "deduplicated");
    assert_eq!(
        report["escalation"]["deduplicated_by"],
        json(&first)["run_id"]
    );
    assert_eq!(server.placed_calls().len(), calls, "nobody called again");
    // Another alert is paged.
    let third = page(
        &server,
        state.path(),
        &path,
        free_port(),
        &["--var", "alert=cpu"],
    );
    assert_eq!(third.code, 1, "{}", third.stderr);
    assert!(server.placed_calls().len() > calls);
}

#[cfg(unix)]
#[test]
fn ctrl_c_mid_wait_exits_130_and_starts_no_new_round() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let out = wait_page(child);
    assert_eq!(out.code, 130, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "interrupted");
    assert_eq!(server.placed_calls(), [P1]);
}

#[test]
fn a_page_that_cannot_listen_warns_loudly_and_still_escalates() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = page(&server, state.path(), LIVE, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot listen for callbacks"),
        "{}",
        out.stderr
    );
    assert_eq!(server.placed_calls().len(), 3);
}

#[test]
fn callbacks_pointing_elsewhere_are_a_loud_warning() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(
        &server,
        state.path(),
        LIVE,
        port,
        &["--public-url", "https://pages.example.com"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("callbacks point elsewhere"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("points at http://127.0.0.1"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_journal_of_format_2_is_migrated_by_the_first_page() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.sqlite3");
    std::fs::copy("tests/fixtures/journal-v2/journal.sqlite3", &journal).unwrap();
    let out = page(&server, state.path(), LIVE, free_port(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let conn = rusqlite::Connection::open(&journal).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "4");
    let rounds: i64 = conn
        .query_row("SELECT count(*) FROM page_rounds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rounds, 3);
    let runs = run(&[
        "runs",
        "--state-dir",
        state.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        2,
        "the old run is still listed"
    );
}

/// Posts `body` (JSON) to the page's listener with Basic auth; the status code.
fn post(port: u16, path: &str, body: &[u8]) -> u16 {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("callbook:{SECRET}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A listener may answer (413) before it read an oversized body.
    let _ = stream.write_all(body);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits (generously) until the page's listener accepts connections.
fn wait_for_listener(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the page never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of `playbook` with `extra` appended, in `dir`.
fn with(dir: &Path, playbook: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(playbook).unwrap() + extra;
    support::write(dir, "page.yaml", text)
}

#[test]
fn a_lost_end_callback_is_no_callback_after_the_outcome_timeout() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_callback_faults(vec![CallbackRule::new(CallbackFault::LoseEnd)]);
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = "version: 1\nname: lost-end\ncaller_id: \"321-499-1000\"\nrecipients:\n  - { name: P1, phone: \"+1 321 499 1001\" }\nmessages:\n  m: { tts: \"hi\" }\nrules:\n  - play: m\nescalation:\n  steps: [{ name: only, every: 13s }]\nack:\n  outcome_timeout: 10s\n";
    let path = support::write(dir.path(), "lost-end.yaml", text);
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(
        report["calls"][0]["disposition"], "NO_CALLBACK",
        "{report:#}"
    );
    assert_eq!(report["calls"][0]["status"], "placed");
}

#[test]
fn an_answered_call_long_enough_acknowledges_when_answered_is_on() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = with(
        dir.path(),
        SLOW,
        "ack:\n  answered: true\n  answered_min: 20s\n",
    );
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["ack"]["via"], "answered");
    assert_eq!(report["escalation"]["ack"]["by"], "P1");
    assert_eq!(server.placed_calls(), [P1]);
}

#[test]
fn an_answered_call_too_short_does_not_acknowledge() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = with(
        dir.path(),
        LIVE,
        "ack:\n  answered: true\n  answered_min: 40s\n",
    );
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(json(&out)["escalation"]["outcome"], "exhausted");
}

#[test]
fn of_two_acks_the_first_wins() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    let id = run_id(state.path());
    let dir = state.path().to_str().unwrap();
    let first = run(&["ack", &id, "--by", "First", "--state-dir", dir]);
    let second = run(&["ack", &id, "--by", "Second", "--state-dir", dir]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(matches!(second.code, 0 | 3), "{}", second.stderr);
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out)["escalation"]["ack"]["by"], "First");
}

#[test]
fn an_ack_while_a_call_is_in_flight_lets_it_finish_and_starts_nothing_new() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_latency(Duration::from_secs(10));
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    let start = Instant::now();
    while !server.requests().iter().any(|r| r.path == "/calls") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no call request in 60s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ringing = Instant::now();
    let id = run_id(state.path());
    let ack = run(&[
        "ack",
        &id,
        "--by",
        "Alice",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    assert!(
        ringing.elapsed() < Duration::from_secs(9),
        "acknowledged while it rang"
    );
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(
        report["calls"][0]["status"], "placed",
        "the call in flight finished"
    );
    assert_eq!(report["calls"][1]["status"], "skipped");
    assert_eq!(server.placed_calls(), [P1]);
}

#[test]
fn a_callback_for_a_call_whose_answer_was_lost_records_it_placed() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_faults(vec!["to=13214991001:500x1".parse().unwrap()]);
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_page(&server, state.path(), SLOW, port);
    wait_for_listener(port);
    let start = Instant::now();
    while !server.requests().iter().any(|r| r.path == "/calls") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no call request in 60s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let end = br#"{"uid": "lost-1", "status": "END", "direction": "OUTBOUND", "from": "3214991000", "to": "13214991001", "disposition": "NO_ANSWER", "billable_seconds": "0"}"#;
    assert_eq!(post(port, "/fonestorm/calls", end), 200);
    let id = run_id(state.path());
    let ack = run(&["ack", &id, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    let out = wait_page(child);
    let report = json(&out);
    assert_eq!(report["calls"][0]["status"], "placed", "{report:#}");
    assert_eq!(report["calls"][0]["disposition"], "NO_ANSWER");
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/calls")
            .count(),
        1,
        "never dialled again"
    );
}

#[test]
fn malformed_and_oversized_callbacks_are_refused_and_change_nothing() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_page(&server, state.path(), LIVE, port);
    wait_for_listener(port);
    wait_for_calls(&server, 1);
    assert_eq!(post(port, "/fonestorm/sms", b"{not json"), 400);
    assert_eq!(post(port, "/fonestorm/sms", &vec![b'a'; 70 * 1024]), 413);
    let out = wait_page(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(json(&out)["escalation"]["outcome"], "exhausted");
}

#[test]
fn an_sms_naming_another_page_is_ignored() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let child = spawn_page(&server, state.path(), LIVE, port);
    wait_for_calls(&server, 1);
    // No page's code has a `0` (the codes avoid it).
    let delivered = server
        .simulate_sms("13214991001", FONENUMBER, "1 Z00")
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
    let out = wait_page(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(json(&out)["escalation"]["outcome"], "exhausted");
}

const TEAM: &str = "tests/fixtures/live/team.yaml";

#[test]
fn a_broadcast_with_listen_records_how_each_call_ended() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), TEAM, port, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("does not listen"), "{}", out.stderr);
    let report = json(&out);
    assert!(report["escalation"].is_null(), "{report:#}");
    let calls = report["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 6);
    for c in calls {
        assert_eq!(c["status"], "placed", "{report:#}");
        assert_eq!(c["disposition"], "ANSWERED", "{report:#}");
        assert_eq!(c["billable_seconds"], 30, "{report:#}");
        assert!(c["ended_at"].is_string(), "{report:#}");
    }
    assert_eq!(server.placed_calls().len(), 6);
    // The journal has them too.
    let shown = show(state.path(), report["run_id"].as_str().unwrap());
    for c in shown["calls"].as_array().unwrap() {
        assert_eq!(c["disposition"], "ANSWERED", "{shown:#}");
    }
}

#[test]
fn a_broadcast_without_listen_records_no_disposition() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(&server, state.path(), TEAM, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    assert!(report["calls"][0]["disposition"].is_null(), "{report:#}");
}

#[test]
fn a_broadcast_without_the_secret_still_calls_and_says_it_cannot_listen() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::live(
        &server,
        state.path(),
        TEAM,
        &["--listen", &format!("127.0.0.1:{}", free_port())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot listen for callbacks"),
        "{}",
        out.stderr
    );
    assert_eq!(server.placed_calls().len(), 6);
}

/// A one-person broadcast whose `END` callbacks wait `outcome_timeout`.
fn lost_end_broadcast(dir: &Path, timeout: &str) -> String {
    let text = format!(
        "version: 1\nname: lost-end-broadcast\ncaller_id: \"321-499-1000\"\nrecipients:\n  - {{ name: P1, phone: \"+1 321 499 1001\" }}\nmessages:\n  m: {{ tts: \"hi\" }}\nrules:\n  - play: m\nack:\n  outcome_timeout: {timeout}\n"
    );
    support::write(dir, "lost-end-broadcast.yaml", text)
}

#[test]
fn a_broadcast_gives_a_lost_end_no_callback_after_the_outcome_timeout() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_callback_faults(vec![CallbackRule::new(CallbackFault::LoseEnd)]);
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = lost_end_broadcast(dir.path(), "10s");
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let started = Instant::now();
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(started.elapsed() >= Duration::from_secs(10), "it waited");
    let report = json(&out);
    assert_eq!(report["calls"][0]["status"], "placed");
    assert_eq!(
        report["calls"][0]["disposition"], "NO_CALLBACK",
        "{report:#}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_a_broadcast_waits_for_outcomes_exits_130_with_what_was_recorded() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_callback_faults(vec![CallbackRule::new(CallbackFault::LoseEnd)]);
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = lost_end_broadcast(dir.path(), "5m");
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let child = spawn_page(&server, state.path(), &path, port);
    wait_for_calls(&server, 1);
    // The call's answer is recorded, then the wait begins.
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = wait_page(child);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it stopped waiting"
    );
    assert_eq!(out.code, 130, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["calls"][0]["status"], "placed", "{report:#}");
    assert!(report["calls"][0]["disposition"].is_null(), "{report:#}");
    assert_eq!(server.placed_calls(), [P1]);
}

/// A one-person page whose round waits `every`, retrying BUSY once after 1s.
fn retry_page(dir: &Path, every: &str) -> String {
    let text = format!(
        "version: 1\nname: retry-page\ncaller_id: \"321-499-1000\"\nrecipients:\n  - {{ name: P1, phone: \"+1 321 499 1001\" }}\n  - {{ name: P2, phone: \"+1 321 499 1002\" }}\nmessages:\n  m: {{ tts: \"hi\" }}\nrules:\n  - play: m\nescalation:\n  steps: [{{ name: only, every: {every} }}]\n  retry:\n    on: [BUSY, FAILED]\n    after: 1s\n    max: 1\n"
    );
    support::write(dir, "retry.yaml", text)
}

#[test]
fn a_busy_person_is_dialled_again_once_within_the_round() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_dispositions(vec![fonestorm_testserver::DispositionScript {
        to: Some(P1.to_string()),
        outcomes: vec![fonestorm_testserver::Outcome::unanswered("BUSY")],
    }]);
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = retry_page(dir.path(), "6s");
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    let people: Vec<&str> = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(people, ["P1", "P1", "P2"], "{report:#}");
    assert_eq!(report["calls"][0]["disposition"], "BUSY");
    assert_eq!(report["calls"][1]["status"], "placed");
    assert_eq!(report["totals"]["placed"], 3);
    // Busy again, but `max: 1`: no third call; P2 answered, never retried.
    assert_eq!(server.placed_counts().get(P1), Some(&2));
    assert_eq!(server.placed_counts().get(P2), Some(&1));
}

#[test]
fn a_retry_still_due_when_the_round_ends_is_dropped() {
    let server = TestServer::start(Config::default()).unwrap();
    server.set_dispositions(vec![fonestorm_testserver::DispositionScript {
        to: Some(P1.to_string()),
        outcomes: vec![fonestorm_testserver::Outcome::unanswered("BUSY")],
    }]);
    server.set_callback_delay(Duration::from_millis(1500));
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The round waits 1s; the END comes 1.5s after the call and asks for a retry 1s later.
    let path = retry_page(dir.path(), "1s");
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), &path, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(server.placed_counts().get(P1), Some(&1));
}

const RESUME: &str = "tests/fixtures/pages/resume-page.yaml";

/// When the server saw each call request to `to`, from its start.
fn call_times(server: &TestServer, to: &str) -> Vec<Duration> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/calls" && r.to.as_deref() == Some(to))
        .map(|r| r.at)
        .collect()
}

#[cfg(unix)]
#[test]
fn a_page_killed_mid_wait_resumes_where_it_stood_and_calls_nobody_twice() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_page(&server, state.path(), RESUME, free_port());
    wait_for_calls(&server, 1);
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let _ = child.wait();
    let out = page(&server, state.path(), RESUME, free_port(), &["--resume"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["run_id"], run_id(state.path()));
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    assert_eq!(
        calls_of(&report),
        [
            ("primary".into(), "P1".into(), 1, "placed".into()),
            ("primary".into(), "P1".into(), 2, "placed".into()),
            ("secondary".into(), "P2".into(), 1, "placed".into()),
        ]
    );
    assert_eq!(
        server.placed_counts().get(P1),
        Some(&2),
        "round 1 not again"
    );
    assert_eq!(server.placed_counts().get(P2), Some(&1));
    // Round 2 came when round 1's recorded wait ran out, not a new 4s later.
    let times = call_times(&server, P1);
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(3900), "{gap:?}");
}

#[cfg(unix)]
#[test]
fn a_wait_that_ran_out_while_callbook_was_down_ends_at_once() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = spawn_page(&server, state.path(), RESUME, free_port());
    wait_for_calls(&server, 1);
    child.kill().unwrap();
    let _ = child.wait();
    std::thread::sleep(Duration::from_secs(5));
    let resumed = Instant::now();
    let out = page(&server, state.path(), RESUME, free_port(), &["--resume"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let times = call_times(&server, P1);
    assert_eq!(times.len(), 2, "{times:?}");
    // Round 2 at once, then its own 4s wait, then the last round and its 1s.
    assert!(resumed.elapsed() < Duration::from_secs(30));
}

#[cfg(unix)]
#[test]
fn an_interrupted_page_can_be_resumed() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), RESUME, free_port());
    wait_for_calls(&server, 1);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = wait_page(child);
    assert_eq!(out.code, 130, "{}", out.stderr);
    let out = page(&server, state.path(), RESUME, free_port(), &["--resume"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(server.placed_counts().get(P1), Some(&2));
    assert_eq!(server.placed_counts().get(P2), Some(&1));
}

#[test]
fn an_acknowledged_page_cannot_be_resumed() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    let id = run_id(state.path());
    let ack = run(&["ack", &id, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    assert_eq!(wait_page(child).code, 0);
    let out = page(&server, state.path(), SLOW, free_port(), &["--resume", &id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to resume"), "{}", out.stderr);
    assert_eq!(server.placed_calls(), [P1]);
}

#[test]
fn the_same_alert_while_its_page_is_going_is_a_repeat_not_a_refusal() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    let first = run_id(state.path());
    let again = page(&server, state.path(), SLOW, free_port(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let report = json(&again);
    assert_eq!(report["escalation"]["outcome"], "deduplicated");
    assert_eq!(report["escalation"]["deduplicated_by"], first.as_str());
    assert_eq!(server.placed_calls(), [P1], "nobody called for the repeat");
    let ack = run(&["ack", &first, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    assert_eq!(wait_page(child).code, 0);
}

#[test]
fn a_callback_for_a_call_of_no_page_is_ignored() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_page(&server, state.path(), LIVE, port);
    wait_for_listener(port);
    wait_for_calls(&server, 1);
    let end = br#"{"uid": "someone-else", "status": "END", "direction": "OUTBOUND", "from": "3214991000", "to": "13127342210", "disposition": "ANSWERED", "billable_seconds": "90"}"#;
    assert_eq!(
        post(port, "/fonestorm/calls", end),
        200,
        "recorded, then ignored"
    );
    let out = wait_page(child);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    for call in report["calls"].as_array().unwrap() {
        assert_ne!(call["billable_seconds"], 90, "{call}");
    }
    let conn = rusqlite::Connection::open(state.path().join("journal.sqlite3")).unwrap();
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM callbacks WHERE fields LIKE '%someone-else%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "every callback is recorded");
}

#[test]
fn no_secret_reaches_the_journal_or_the_output_of_a_page() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), LIVE, port, &["-vv"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(SECRET) && !text.contains("test-token"));
    }
    let conn = rusqlite::Connection::open(state.path().join("journal.sqlite3")).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(state.path().join("journal.sqlite3")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(SECRET),
        "the callback secret is in the journal"
    );
    assert!(!text.contains("test-token"), "the token is in the journal");
    assert!(
        text.contains("live-page"),
        "the journal holds the page's sources"
    );
}

/// A copy of the resume page in `dir`, its people in an included CSV and its
/// message naming `{{ service }}`; returns the playbook's path.
fn resume_page_in(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(RESUME)
        .unwrap()
        .replace(
            "  - { name: P1, phone: \"+1 321 499 1001\", tags: [primary] }\n  - { name: P2, phone: \"+1 321 499 1002\", tags: [secondary] }\n",
            "  - from: people.csv\n",
        )
        .replace("Page for", "{{ service }} page for");
    assert!(text.contains("from: people.csv"), "{text}");
    let playbook = dir.join("resume-page.yaml");
    std::fs::write(&playbook, text).unwrap();
    std::fs::write(
        dir.join("people.csv"),
        "name,phone,tags\nP1,+1 321 499 1001,primary\nP2,+1 321 499 1002,secondary\n",
    )
    .unwrap();
    std::fs::write(dir.join("vars.yaml"), "service: db\n").unwrap();
    playbook
}

/// Starts the page of [`resume_page_in`], kills it once its first call is
/// placed (as a crash would) and returns its run id.
fn crash_resume_page(server: &TestServer, state: &Path, playbook: &Path) -> String {
    let vars = playbook.with_file_name("vars.yaml");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .arg("run")
        .arg(playbook)
        .args(["--yes", "--format", "json", "--base-url", &server.url()])
        .arg("--vars-file")
        .arg(&vars)
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("FONESTORM_TOKEN", "test-token")
        .env("CALLBOOK_CALLBACK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("callbook starts");
    wait_for_calls(server, 1);
    child.kill().unwrap();
    let _ = child.wait();
    run_id(state)
}

/// Every call of a resumed page's report: recipient, round, status, message.
fn messages_of(report: &serde_json::Value) -> Vec<(String, u64, String, String)> {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["recipient"].as_str().unwrap_or("").to_string(),
                c["round"].as_u64().unwrap_or(0),
                c["status"].as_str().unwrap_or("").to_string(),
                c["service_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn a_page_whose_files_changed_resumes_as_it_started() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let playbook = resume_page_in(dir.path());
    let id = crash_resume_page(&server, state.path(), &playbook);
    // Everything the page was planned from changes under it.
    let text = std::fs::read_to_string(&playbook).unwrap();
    std::fs::write(&playbook, text.replace("page for", "PAGE FOR")).unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "name,phone,tags\nP1,+1 321 499 1009,primary\nP2,+1 321 499 1002,secondary\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("vars.yaml"), "service: web\n").unwrap();
    let out = page(
        &server,
        state.path(),
        playbook.to_str().unwrap(),
        free_port(),
        &["--resume", "--var", "service=web"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`--var`, `--vars-file` and `--input` are not used"),
        "{}",
        out.stderr
    );
    let report = json(&out);
    assert_eq!(report["run_id"], id);
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    let calls = messages_of(&report);
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (recipient, round, status, message) in &calls {
        assert_eq!(status, "placed", "{calls:?}");
        assert!(
            message.starts_with(&format!("db page for {recipient}, round {round}.")),
            "{calls:?}"
        );
    }
    assert_eq!(server.placed_counts().get(P1), Some(&2));
    assert_eq!(server.placed_counts().get(P2), Some(&1));
    assert_eq!(server.placed_counts().get("13214991009"), None);
}

#[cfg(unix)]
#[test]
fn a_page_whose_files_were_deleted_resumes_from_its_recorded_sources() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let playbook = resume_page_in(dir.path());
    let id = crash_resume_page(&server, state.path(), &playbook);
    for file in ["resume-page.yaml", "people.csv", "vars.yaml"] {
        std::fs::remove_file(dir.path().join(file)).unwrap();
    }
    let out = page(
        &server,
        state.path(),
        playbook.to_str().unwrap(),
        free_port(),
        &["--resume", &id],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out);
    assert_eq!(report["escalation"]["outcome"], "exhausted");
    assert_eq!(server.placed_counts().get(P1), Some(&2));
    assert_eq!(server.placed_counts().get(P2), Some(&1));
}

#[cfg(unix)]
#[test]
fn a_page_whose_playbook_was_deleted_resumes_by_its_path() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let playbook = resume_page_in(dir.path());
    let id = crash_resume_page(&server, state.path(), &playbook);
    std::fs::remove_file(&playbook).unwrap();
    let out = page(
        &server,
        state.path(),
        playbook.to_str().unwrap(),
        free_port(),
        &["--resume"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(json(&out)["run_id"], id);
    assert_eq!(server.placed_counts().get(P1), Some(&2));
}

#[cfg(unix)]
#[test]
fn resuming_a_page_with_another_playbook_is_invalid() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let playbook = resume_page_in(dir.path());
    let id = crash_resume_page(&server, state.path(), &playbook);
    let out = page(&server, state.path(), SLOW, free_port(), &["--resume", &id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("belongs to playbook"), "{}", out.stderr);
    assert_eq!(server.placed_counts().get(P1), Some(&1));
}

/// `callbook runs show RUN_ID` as JSON.
fn show(state: &Path, id: &str) -> serde_json::Value {
    let out = run(&[
        "runs",
        "show",
        id,
        "--state-dir",
        state.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out)
}

/// What the live report and `runs show` must agree on for each call.
fn ladder_of(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!([
                c["recipient"],
                c["step"],
                c["round"],
                c["at_offset_seconds"],
                c["status"],
                c["disposition"],
                c["billable_seconds"],
                c["ended_at"],
            ])
        })
        .collect()
}

#[test]
fn runs_show_of_a_page_gives_its_ladder_and_the_dispositions() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    hooks_to(&server, port, SECRET);
    let out = page(&server, state.path(), LIVE, port, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let live = json(&out);
    let shown = show(state.path(), live["run_id"].as_str().unwrap());
    assert_eq!(shown["calls"][0]["disposition"], "ANSWERED", "{shown:#}");
    assert_eq!(shown["calls"][0]["billable_seconds"], 30);
    // A late END (after the page's last wait) is in the journal only.
    let (live_calls, shown_calls) = (ladder_of(&live), ladder_of(&shown));
    assert_eq!(live_calls.len(), shown_calls.len());
    for (l, s) in live_calls.iter().zip(&shown_calls) {
        if l[5].is_null() {
            assert_eq!(
                l.as_array().unwrap()[..5],
                s.as_array().unwrap()[..5],
                "{live_calls:?} {shown_calls:?}"
            );
        } else {
            assert_eq!(l, s);
        }
    }
    let (l, s) = (&live["escalation"], &shown["escalation"]);
    assert_eq!(s["outcome"], "exhausted");
    assert_eq!(s["code"], l["code"]);
    for (ls, ss) in l["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(s["steps"].as_array().unwrap())
    {
        assert_eq!(ls, ss, "{l:#} {s:#}");
    }
    assert_eq!(
        l["steps"].as_array().unwrap().len(),
        s["steps"].as_array().unwrap().len()
    );
    assert_eq!(shown["totals"], live["totals"]);
}

#[test]
fn runs_show_of_an_acknowledged_page_says_who_took_it() {
    let server = TestServer::start(Config::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let child = spawn_page(&server, state.path(), SLOW, free_port());
    wait_for_calls(&server, 1);
    let id = run_id(state.path());
    let ack = run(&[
        "ack",
        &id,
        "--by",
        "Alice Ng",
        "--note",
        "on it",
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    let out = wait_page(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let live = json(&out);
    let shown = show(state.path(), &id);
    assert_eq!(shown["escalation"]["outcome"], "acknowledged");
    assert_eq!(shown["escalation"]["ack"], live["escalation"]["ack"]);
    assert_eq!(calls_of(&shown), calls_of(&live));
    assert_eq!(shown["calls"][1]["reason"], "acknowledged by Alice Ng");
    let table = run(&[
        "runs",
        "show",
        &id,
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("acknowledged by Alice Ng by hand after"),
        "{}",
        table.stdout
    );
}
