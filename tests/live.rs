//! Live runs against the local FoneStorm test server: every fault, every
//! recipient accounted for, nobody called twice, no secret in any output.

mod support;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, Fault, FaultRule, TestServer};
use serde_json::Value;
use support::{Outcome, assert_nobody_twice, callbook, finish};

const TEAM: &str = "tests/fixtures/live/team.yaml";
const AT_LEAST_ONCE: &str = "tests/fixtures/live/at-least-once.yaml";
const DEDUP: &str = "tests/fixtures/live/dedup.yaml";
const PATIENT: &str = "tests/fixtures/live/patient.yaml";
const USERINFO: &str = "tests/fixtures/live/userinfo.yaml";
/// A password written into a base URL: it must never be shown.
const URL_SECRET: &str = "url-secret-pw";
const TOKEN: &str = "test-token";
const PASSWORD: &str = "s3cret-test-password";

fn numbers() -> Vec<String> {
    (1..=6).map(|i| format!("1321499100{i}")).collect()
}

enum Creds {
    Token,
    Login(&'static str),
    None,
}

struct Live {
    out: Outcome,
    report: Value,
}

fn live(server_url: &str, playbook: &str, creds: Creds, extra: &[&str]) -> Live {
    live_with_env(server_url, playbook, creds, extra, &[])
}

/// [`live`] with extra environment variables.
fn live_with_env(
    server_url: &str,
    playbook: &str,
    creds: Creds,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut cmd = callbook();
    cmd.args(["run", playbook, "--base-url", server_url, "--yes", "-vv"])
        .args(["--report-file", report_path.to_str().unwrap()])
        .args(extra);
    for (name, value) in env {
        cmd.env(name, value);
    }
    match creds {
        Creds::Token => {
            cmd.env("FONESTORM_TOKEN", TOKEN);
        }
        Creds::Login(password) => {
            cmd.env("FONESTORM_USERNAME", "callbook")
                .env("FONESTORM_PASSWORD", password);
        }
        Creds::None => {}
    }
    let out = finish(&mut cmd);
    let report = std::fs::read_to_string(&report_path)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    for secret in [TOKEN, PASSWORD, "wrong-password", URL_SECRET] {
        assert!(
            !out.stdout.contains(secret),
            "secret on stdout:\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(secret),
            "secret on stderr:\n{}",
            out.stderr
        );
        assert!(!report.to_string().contains(secret), "secret in report");
    }
    Live { out, report }
}

/// Every selected recipient is in the report and the totals add up.
fn assert_accounted(report: &Value) {
    let t = &report["totals"];
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(
        n("placed") + n("failed") + n("unknown"),
        n("planned"),
        "{t}"
    );
    assert_eq!(n("planned") + n("skipped"), n("recipients"), "{t}");
    assert_eq!(
        report["calls"].as_array().unwrap().len() as u64,
        n("recipients")
    );
}

fn statuses(report: &Value) -> HashMap<String, String> {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["to"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn call<'a>(report: &'a Value, to: &str) -> &'a Value {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["to"] == to)
        .unwrap()
}

/// A test server that injects `rule`.
fn faulty(rule: FaultRule) -> TestServer {
    TestServer::start(Config {
        faults: vec![rule],
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn every_call_is_placed_once() {
    let server = TestServer::start(Config::default()).unwrap();
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_eq!(run.report["dry_run"], false);
    let mut placed = server.placed_calls();
    placed.sort();
    assert_eq!(placed, numbers());
    for c in run.report["calls"].as_array().unwrap() {
        assert_eq!(c["attempts"], 1);
        assert!(c["call_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert_eq!(
        run.out.stderr.matches(" placed ").count(),
        6,
        "{}",
        run.out.stderr
    );
    assert!(
        run.out.stdout.contains("6 recipients: 6 placed"),
        "{}",
        run.out.stdout
    );
}

#[test]
fn login_is_used_and_wrong_password_calls_nobody() {
    let server = TestServer::start(Config::default()).unwrap();
    let ok = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(ok.out.code, 0, "{}", ok.out.stderr);
    assert_accounted(&ok.report);
    assert_eq!(server.auth_count(), 1);

    let server = TestServer::start(Config::default()).unwrap();
    let bad = live(&server.url(), TEAM, Creds::Login("wrong-password"), &[]);
    assert_eq!(bad.out.code, 3);
    assert!(server.placed_calls().is_empty());
    assert!(bad.out.stdout.is_empty());
    assert!(
        bad.out
            .stderr
            .contains("FoneStorm refused the login (HTTP 401)"),
        "{}",
        bad.out.stderr
    );
}

#[test]
fn missing_credentials_refuse_the_run() {
    let server = TestServer::start(Config::default()).unwrap();
    let run = live(&server.url(), TEAM, Creds::None, &[]);
    assert_eq!(run.out.code, 3);
    assert!(
        run.out.stderr.contains("no FoneStorm credentials"),
        "{}",
        run.out.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_rejected_static_token_stops_the_run() {
    let server = TestServer::start(Config {
        static_tokens: vec![],
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Token, &["--concurrency", "1"]);
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(run.report["totals"]["failed"], 6);
    assert_eq!(server.requests().len(), 1, "stops after the first 401");
}

#[test]
fn token_expiring_mid_run_is_renewed_once() {
    let server = faulty(FaultRule::new(Fault::ExpireToken).nth(3).times(1));
    let run = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_eq!(server.auth_count(), 2);
    assert_nobody_twice(&server);
    assert_eq!(server.tokens_seen().len(), 2);
}

#[test]
fn storms_of_429_are_waited_out() {
    let server = faulty(FaultRule::new(Fault::Status(429)).times(5));
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(server.count_429(), 5);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_nobody_twice(&server);
}

#[test]
fn rate_limit_is_never_exceeded() {
    let server = TestServer::start(Config {
        rate_limit: Some(5),
        latency: Duration::from_millis(50),
        ..Config::default()
    })
    .unwrap();
    let run = live(
        &server.url(),
        TEAM,
        Creds::Token,
        &["--rate-limit", "5", "--concurrency", "32"],
    );
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(server.count_429(), 0);
    assert!(server.max_requests_in_any_window(Duration::from_secs(1)) <= 5);
}

#[test]
fn service_unavailable_then_success() {
    let server = faulty(
        FaultRule::new(Fault::Status(503))
            .to("13214991002")
            .times(1),
    );
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(call(&run.report, "13214991002")["attempts"], 2);
    assert_eq!(call(&run.report, "13214991002")["status"], "placed");
    assert_nobody_twice(&server);
}

#[test]
fn server_error_is_unknown_and_not_retried() {
    let server = faulty(
        FaultRule::new(Fault::Status(500))
            .to("13214991003")
            .times(1),
    );
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    let c = call(&run.report, "13214991003");
    assert_eq!(c["status"], "unknown");
    assert_eq!(c["attempts"], 1);
    assert!(c["error"].as_str().unwrap().contains("HTTP 500"), "{c}");
    assert_nobody_twice(&server);
}

#[test]
fn server_error_is_retried_when_at_least_once_is_chosen() {
    let server = faulty(
        FaultRule::new(Fault::Status(500))
            .to("13214991003")
            .times(1),
    );
    let run = live(&server.url(), AT_LEAST_ONCE, Creds::Token, &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    let c = call(&run.report, "13214991003");
    assert_eq!(
        (c["status"].as_str(), c["attempts"].as_u64()),
        (Some("placed"), Some(2))
    );
    assert_eq!(
        server.placed_counts()["13214991003"],
        2,
        "at-least-once may call twice"
    );
}

#[test]
fn a_request_that_never_answers_times_out_as_unknown() {
    let server = faulty(FaultRule::new(Fault::Hang).to("13214991004"));
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    let c = call(&run.report, "13214991004");
    assert_eq!(c["status"], "unknown");
    assert!(c["error"].as_str().unwrap().contains("timed out"), "{c}");
    assert_eq!(run.report["totals"]["placed"], 5);
}

#[test]
fn connection_refused_fails_every_call_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = live(&url, TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    for c in run.report["calls"].as_array().unwrap() {
        assert_eq!(c["status"], "failed");
        assert_eq!(c["attempts"], 4);
        assert!(
            c["error"].as_str().unwrap().contains("could not connect"),
            "{c}"
        );
    }
}

#[test]
fn out_of_funds_stops_the_run() {
    let server = faulty(FaultRule::new(Fault::Status(402)).after(2));
    let run = live(&server.url(), TEAM, Creds::Token, &["--concurrency", "1"]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    let s = statuses(&run.report);
    assert_eq!(s.values().filter(|v| *v == "placed").count(), 2);
    assert_eq!(s.values().filter(|v| *v == "failed").count(), 4);
    assert_eq!(server.requests().len(), 3, "nothing is sent after the 402");
    // Which call meets the 402 depends on which task takes the one slot
    // first; every call after it is not attempted at all.
    let failed: Vec<_> = run.report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
        .collect();
    let refused = failed.iter().filter(|c| c["attempts"] == 1).count();
    assert_eq!(refused, 1, "{failed:?}");
    for c in failed.iter().filter(|c| c["attempts"] == 0) {
        assert!(
            c["error"]
                .as_str()
                .unwrap()
                .starts_with("not attempted: HTTP 402"),
            "{c}"
        );
    }
}

#[test]
fn malformed_answer_is_unknown() {
    let server = faulty(FaultRule::new(Fault::Malformed).to("13214991005"));
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    assert_eq!(call(&run.report, "13214991005")["status"], "unknown");
    assert_eq!(call(&run.report, "13214991005")["attempts"], 1);
    assert_nobody_twice(&server);
}

#[test]
fn refused_calls_fail_and_the_run_goes_on() {
    let server = faulty(FaultRule::new(Fault::Status(400)).to("13214991001"));
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1);
    assert_accounted(&run.report);
    assert_eq!(call(&run.report, "13214991001")["status"], "failed");
    assert_eq!(run.report["totals"]["placed"], 5);
}

#[test]
fn plain_http_to_another_host_is_refused() {
    let run = live("http://fonestorm.example.com", TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 2);
    assert!(run.out.stderr.contains("plain http"), "{}", run.out.stderr);
}

#[test]
fn max_calls_refuses_before_anything() {
    let server = TestServer::start(Config::default()).unwrap();
    let run = live(&server.url(), TEAM, Creds::Token, &["--max-calls", "5"]);
    assert_eq!(run.out.code, 3);
    assert!(server.requests().is_empty());
    assert!(
        run.out.stderr.contains("more than the limit of 5"),
        "{}",
        run.out.stderr
    );
}

#[cfg(unix)]
#[test]
fn interrupt_finishes_calls_in_flight_and_reports_all() {
    let server = TestServer::start(Config {
        latency: Duration::from_millis(1500),
        ..Config::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let state = support::fresh_state_dir();
    let report_arg = report_path.to_str().unwrap();
    let child = support::spawn_live(
        TEAM,
        &server.url(),
        &state,
        &["--concurrency", "2", "--report-file", report_arg],
    );
    // Wait until the first two calls are in flight (bounded: about 10 s at most).
    for _ in 0..200 {
        if server.requests().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_accounted(&report);
    let s = statuses(&report);
    assert_eq!(s.values().filter(|v| *v == "placed").count(), 2, "{s:?}");
    assert_eq!(s.values().filter(|v| *v == "failed").count(), 4, "{s:?}");
    assert_eq!(server.placed_calls().len(), 2);
}

/// Runs `callbook ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
#[cfg(unix)]
fn on_terminal(args: &str, answer: &str) -> (i32, String) {
    use std::io::Write as _;
    let command = format!(
        "{} {args}",
        assert_cmd::cargo::cargo_bin("callbook").display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("FONESTORM_TOKEN", TOKEN)
        .env("CALLBOOK_STATE_DIR", support::fresh_state_dir())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn a_person_at_a_terminal_is_asked_first_and_sees_progress() {
    let server = TestServer::start(Config {
        latency: Duration::from_millis(300),
        ..Config::default()
    })
    .unwrap();
    let args = format!("run {TEAM} --base-url {}", server.url());
    let (code, screen) = on_terminal(&args, "n\n");
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains("Place 6 calls for playbook `live-team` from 3214991000? [y/N]"),
        "{screen}"
    );
    assert!(
        screen.contains("not confirmed: nothing was called"),
        "{screen}"
    );
    assert!(server.requests().is_empty());

    let (code, screen) = on_terminal(&args, "y\n");
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("/6 calls"),
        "no progress bar drawn: {screen}"
    );
    assert_eq!(server.placed_calls().len(), 6);
}

#[test]
fn json_logs_carry_one_object_per_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let run = live(&server.url(), TEAM, Creds::Token, &["--log-format", "json"]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    let placed: Vec<Value> = run
        .out
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["fields"]["message"] == "placed")
        .collect();
    assert_eq!(placed.len(), 6);
    assert!(
        placed
            .iter()
            .all(|v| v["fields"]["call_id"].as_str().is_some())
    );
}

#[cfg(unix)]
#[test]
fn sigterm_then_a_second_signal_aborts_at_once() {
    let server = TestServer::start(Config {
        latency: Duration::from_secs(30),
        ..Config::default()
    })
    .unwrap();
    let child = support::spawn_live(TEAM, &server.url(), &support::fresh_state_dir(), &[]);
    for _ in 0..200 {
        if !server.requests().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    signal("-TERM");
    signal("-INT");
    // The first signal waits for the calls in flight; the second ends the process.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: starting no new calls"),
        "{stderr}"
    );
    assert!(
        stderr.contains("interrupted again: exiting now"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Answers the API does not document: never certain, never re-dialled.

/// The requests the test server saw for one number.
fn requests_to(server: &TestServer, to: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.to.as_deref() == Some(to))
        .count()
}

/// A first run gets `status` for one person; a second run inside the dedup
/// window must not call that person again.
fn undocumented_status_is_not_redialled(status: u16) {
    let server = faulty(
        FaultRule::new(Fault::Status(status))
            .to("13214991003")
            .times(1),
    );
    let state = support::fresh_state_dir();
    let state_arg = ["--state-dir", state.to_str().unwrap()];
    let first = live(&server.url(), DEDUP, Creds::Token, &state_arg);
    assert_eq!(first.out.code, 1, "{}", first.out.stderr);
    assert_accounted(&first.report);
    let c = call(&first.report, "13214991003");
    assert_eq!(c["status"], "unknown", "{c}");
    assert_eq!(c["attempts"], 1, "{c}");
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .contains(&format!("HTTP {status}")),
        "{c}"
    );
    assert_eq!(first.report["totals"]["placed"], 5);

    let second = live(&server.url(), DEDUP, Creds::Token, &state_arg);
    assert_eq!(second.out.code, 0, "{}", second.out.stderr);
    let c = call(&second.report, "13214991003");
    assert_eq!(c["status"], "skipped", "{c}");
    assert_eq!(requests_to(&server, "13214991003"), 1, "re-dialled");
    assert_nobody_twice(&server);
}

#[test]
fn status_409_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(409);
}

#[test]
fn status_408_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(408);
}

#[test]
fn status_501_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(501);
}

#[test]
fn status_520_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(520);
}

#[test]
fn status_524_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(524);
}

#[test]
fn redirect_is_unknown_and_not_redialled_by_the_next_run() {
    undocumented_status_is_not_redialled(307);
}

// ---------------------------------------------------------------------------
// Redirects, proxies and credentials in URLs: secrets stay where they belong.

#[test]
fn a_redirected_call_is_not_followed() {
    let server = faulty(FaultRule::new(Fault::Status(307)).to("13214991002"));
    let run = live(&server.url(), TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 1, "{}", run.out.stderr);
    assert_accounted(&run.report);
    let c = call(&run.report, "13214991002");
    assert_eq!(c["status"], "unknown", "{c}");
    assert!(c["error"].as_str().unwrap().contains("redirect"), "{c}");
    assert!(
        server.requests().iter().all(|r| r.path != "/redirected"),
        "the redirect was followed"
    );
    assert_nobody_twice(&server);
}

#[test]
fn a_redirected_login_is_refused_and_not_followed() {
    let server = TestServer::start(Config {
        auth_faults: vec![FaultRule::new(Fault::Status(307))],
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert!(
        run.out.stderr.contains("redirect (HTTP 307)"),
        "{}",
        run.out.stderr
    );
    assert!(
        run.out.stderr.contains("nothing was called"),
        "{}",
        run.out.stderr
    );
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/auth"], "the redirect was followed");
}

/// A listener that counts the connections made to it, as a proxy would see them.
fn counting_listener() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

#[test]
fn plain_http_never_goes_through_a_proxy() {
    let server = TestServer::start(Config::default()).unwrap();
    let (proxy, connections) = counting_listener();
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
        ("all_proxy", proxy.as_str()),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let run = live_with_env(&server.url(), TEAM, Creds::Login(PASSWORD), &[], &env);
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the proxy was used");
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_eq!(server.auth_count(), 1);
}

/// Runs against a base URL with credentials in it, which must be refused unseen.
fn assert_userinfo_refused(run: &Live) {
    assert_eq!(run.out.code, 2, "{}", run.out.stderr);
    assert!(
        run.out.stderr.contains("holds a user name or password"),
        "{}",
        run.out.stderr
    );
    assert!(!run.out.stderr.contains("ops:"), "{}", run.out.stderr);
}

#[test]
fn userinfo_in_the_base_url_option_is_refused_unseen() {
    let server = TestServer::start(Config::default()).unwrap();
    let url = server
        .url()
        .replace("http://", &format!("http://ops:{URL_SECRET}@"));
    let run = live(&url, TEAM, Creds::Token, &[]);
    assert_userinfo_refused(&run);
    assert!(server.requests().is_empty());
}

#[test]
fn userinfo_in_a_malformed_base_url_is_not_shown() {
    let url = format!("http://ops:{URL_SECRET}@127.0.0.1:99999999");
    let run = live(&url, TEAM, Creds::Token, &[]);
    assert_eq!(run.out.code, 2, "{}", run.out.stderr);
    assert!(run.out.stderr.contains("not a URL"), "{}", run.out.stderr);
}

#[test]
fn userinfo_with_a_slash_or_hash_in_the_password_is_not_shown() {
    // The parser ends the authority at the `/`, `?` or `#`, so the URL does
    // not parse; the message must still hide everything before the `@`.
    for sep in ['/', '?', '#'] {
        let url = format!("https://ops:{URL_SECRET}{sep}x@api.fonestorm.com/v2");
        let run = live(&url, TEAM, Creds::Token, &[]);
        assert_eq!(run.out.code, 2, "{}", run.out.stderr);
        assert!(run.out.stderr.contains("not a URL"), "{}", run.out.stderr);
        assert!(!run.out.stderr.contains(URL_SECRET), "{}", run.out.stderr);
        assert!(!run.out.stderr.contains("ops:"), "{}", run.out.stderr);
    }
}

#[test]
fn userinfo_in_the_playbook_base_url_is_refused_unseen() {
    let mut cmd = callbook();
    cmd.args(["run", USERINFO, "--yes", "-vv"])
        .env("FONESTORM_TOKEN", TOKEN);
    let out = finish(&mut cmd);
    assert!(!out.stderr.contains(URL_SECRET), "{}", out.stderr);
    assert!(!out.stdout.contains(URL_SECRET), "{}", out.stdout);
    assert_userinfo_refused(&Live {
        out,
        report: Value::Null,
    });
}

#[test]
fn userinfo_in_the_base_url_variable_is_refused_unseen() {
    let server = TestServer::start(Config::default()).unwrap();
    let url = server
        .url()
        .replace("http://", &format!("http://ops:{URL_SECRET}@"));
    let mut cmd = callbook();
    cmd.args(["run", TEAM, "--yes", "-vv"])
        .env("FONESTORM_TOKEN", TOKEN)
        .env("FONESTORM_BASE_URL", &url);
    let out = finish(&mut cmd);
    assert!(!out.stderr.contains(URL_SECRET), "{}", out.stderr);
    assert!(!out.stdout.contains(URL_SECRET), "{}", out.stdout);
    assert_userinfo_refused(&Live {
        out,
        report: Value::Null,
    });
    assert!(server.requests().is_empty());

    // `--help` does not show the variable's value either.
    let help = finish(
        callbook()
            .args(["run", "--help"])
            .env("FONESTORM_BASE_URL", &url),
    );
    assert_eq!(help.code, 0);
    assert!(!help.stdout.contains(URL_SECRET), "{}", help.stdout);
}

// ---------------------------------------------------------------------------
// Endless and dribbling answers: bounded in size and in time.

/// What the bare server answers to a request.
#[derive(Clone, Copy)]
enum Answer {
    /// `201`, then a chunked body that never ends.
    Endless,
    /// `201`, then one byte of body every 100 ms, forever.
    Dribble,
}

/// A bare HTTP/1.1 server for answers the test server cannot give, counting the
/// body bytes it managed to send. Each answer stops by itself after 60 s or
/// 4 GiB, so a client that never stops reading cannot hang the tests.
struct BareServer {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
    bytes_sent: Arc<AtomicU64>,
}

fn bare_server(answer: fn(&str) -> Answer) -> BareServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let paths = Arc::new(Mutex::new(Vec::new()));
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let (p, b) = (paths.clone(), bytes_sent.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (p, b) = (p.clone(), b.clone());
            std::thread::spawn(move || serve_bare(stream, answer, &p, &b));
        }
    });
    BareServer {
        url,
        paths,
        bytes_sent,
    }
}

fn serve_bare(
    stream: TcpStream,
    answer: fn(&str) -> Answer,
    paths: &Mutex<Vec<String>>,
    sent: &AtomicU64,
) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half.take(1 << 20));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 16)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    paths.lock().unwrap().push(path.clone());
    let mut stream = stream;
    let head = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let begin = Instant::now();
    let (chunk, pause) = match answer(&path) {
        Answer::Endless => (vec![b' '; 64 * 1024], Duration::ZERO),
        Answer::Dribble => (vec![b' '; 1], Duration::from_millis(100)),
    };
    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
    frame.extend_from_slice(&chunk);
    frame.extend_from_slice(b"\r\n");
    while begin.elapsed() < Duration::from_secs(60) && sent.load(Ordering::SeqCst) < 4 << 30 {
        if stream.write_all(&frame).is_err() {
            return;
        }
        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        std::thread::sleep(pause);
    }
}

#[test]
fn an_endless_answer_to_a_call_is_cut_off_as_unknown() {
    let server = bare_server(|_| Answer::Endless);
    let begin = Instant::now();
    let run = live(&server.url, PATIENT, Creds::Token, &[]);
    assert_eq!(run.out.code, 1, "{}", run.out.stderr);
    assert_accounted(&run.report);
    let c = call(&run.report, "13214991001");
    assert_eq!(c["status"], "unknown", "{c}");
    assert_eq!(c["attempts"], 1, "{c}");
    assert!(
        c["error"].as_str().unwrap().contains("larger than 64 KiB"),
        "{c}"
    );
    assert!(begin.elapsed() < Duration::from_secs(50), "not cut off");
    let sent = server.bytes_sent.load(Ordering::SeqCst);
    // What the client read plus what the sockets' buffers held.
    assert!(sent < 32 << 20, "{sent} bytes were sent");
    assert_eq!(server.paths.lock().unwrap().len(), 1);
}

#[test]
fn a_dribbling_answer_to_a_call_is_cut_off_as_unknown() {
    let server = bare_server(|_| Answer::Dribble);
    let begin = Instant::now();
    let run = live(&server.url, PATIENT, Creds::Token, &[]);
    assert_eq!(run.out.code, 1, "{}", run.out.stderr);
    let c = call(&run.report, "13214991001");
    assert_eq!(c["status"], "unknown", "{c}");
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .contains("took over 5s to read"),
        "{c}"
    );
    // The provider timeout is a minute; the body bound is what ended it.
    assert!(begin.elapsed() < Duration::from_secs(50), "not cut off");
}

#[test]
fn an_endless_answer_to_a_login_fails_clearly() {
    let server = bare_server(|_| Answer::Endless);
    let run = live(&server.url, TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert!(
        run.out.stderr.contains("larger than 64 KiB"),
        "{}",
        run.out.stderr
    );
    assert!(
        run.out.stderr.contains("nothing was called"),
        "{}",
        run.out.stderr
    );
    assert_eq!(*server.paths.lock().unwrap(), ["/auth"]);
    assert!(server.bytes_sent.load(Ordering::SeqCst) < 32 << 20);
}

// ---------------------------------------------------------------------------
// Token renewal: proportional to the lifetime, and through a passing failure.

/// No token the server issued appears in the run's output or report.
fn assert_no_issued_token(server: &TestServer, run: &Live) {
    for token in server.tokens_seen() {
        assert!(!run.out.stderr.contains(&token), "token on stderr");
        assert!(!run.out.stdout.contains(&token), "token on stdout");
        assert!(!run.report.to_string().contains(&token), "token in report");
    }
}

#[test]
fn a_one_minute_token_is_not_renewed_before_every_call() {
    let server = TestServer::start(Config {
        token_ttl: Some(Duration::from_secs(60)),
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_eq!(server.auth_count(), 1, "logged in more than once");
    assert_nobody_twice(&server);
    assert_no_issued_token(&server, &run);
}

#[test]
fn a_first_login_answered_503_is_retried() {
    let server = TestServer::start(Config {
        auth_faults: vec![FaultRule::new(Fault::Status(503)).nth(1).times(1)],
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_eq!(run.report["totals"]["placed"], 6);
    assert_eq!(server.auth_count(), 2);
    assert_nobody_twice(&server);
}

#[test]
fn a_login_that_keeps_failing_gives_up_and_calls_nobody() {
    let server = TestServer::start(Config {
        auth_faults: vec![FaultRule::new(Fault::Status(503))],
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert!(
        run.out.stderr.contains("gave up after 4 attempts"),
        "{}",
        run.out.stderr
    );
    assert_eq!(server.auth_count(), 4);
    assert!(server.placed_calls().is_empty());
}

#[test]
fn a_failed_renewal_keeps_the_still_valid_token() {
    // Eight-second tokens are renewed two seconds before they expire (more
    // than a call takes); the first renewal is answered 503 while the run is
    // still placing calls, one at a time, 1.2 s each.
    let server = TestServer::start(Config {
        token_ttl: Some(Duration::from_secs(8)),
        latency: Duration::from_millis(1200),
        auth_faults: vec![FaultRule::new(Fault::Status(503)).nth(2).times(1)],
        ..Config::default()
    })
    .unwrap();
    let run = live(
        &server.url(),
        TEAM,
        Creds::Login(PASSWORD),
        &["--concurrency", "1"],
    );
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_accounted(&run.report);
    assert_eq!(run.report["totals"]["placed"], 6);
    // The renewal was answered 503 during the run, and the next call went out
    // with the token from before it, and was placed.
    let requests = server.requests();
    let failed = requests
        .iter()
        .position(|r| r.path == "/auth" && r.status == Some(503))
        .expect("the renewal was not tried during the run");
    let token_before = requests[..failed]
        .iter()
        .rev()
        .find(|r| r.path == "/calls")
        .and_then(|r| r.token.clone())
        .expect("a call before the renewal");
    let next_call = requests[failed..]
        .iter()
        .find(|r| r.path == "/calls")
        .expect("a call after the failed renewal");
    assert_eq!(next_call.token.as_ref(), Some(&token_before));
    assert_eq!(next_call.status, Some(201));
    assert_no_issued_token(&server, &run);
    assert!(
        run.out
            .stderr
            .contains("the current token is still valid and is kept"),
        "{}",
        run.out.stderr
    );
    assert_nobody_twice(&server);
}

// ---------------------------------------------------------------------------
// A provider that echoes the credentials in its error messages.

/// A server answering every login with 401 and every call with `call_status`,
/// each message quoting the password or the token it was sent.
fn echoing_server(call_status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_echo(stream, call_status));
        }
    });
    url
}

fn serve_echo(stream: TcpStream, call_status: u16) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half.take(1 << 20));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    let mut token = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("token") {
                token = value.trim().to_string();
            }
        }
    }
    let mut body = vec![0; length.min(1 << 16)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, message) = if request_line.contains("/auth") {
        let password = request["password"].as_str().unwrap_or("");
        (401, format!("wrong password {password}"))
    } else {
        (call_status, format!("token {token} is not valid here"))
    };
    let answer = serde_json::json!({ "error": "no", "message": message }).to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} No\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

#[test]
fn a_token_echoed_in_a_call_error_is_hidden() {
    let url = echoing_server(400);
    let state = tempfile::tempdir().unwrap();
    // `live` checks stdout, stderr and the report for the token.
    let run = live(
        &url,
        PATIENT,
        Creds::Token,
        &["--state-dir", state.path().to_str().unwrap()],
    );
    assert_eq!(run.out.code, 1, "{}", run.out.stderr);
    let c = call(&run.report, "13214991001");
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["error"].as_str().unwrap().contains("token ***"), "{c}");
    for entry in std::fs::read_dir(state.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(TOKEN), "the token is in the journal");
    }
}

#[test]
fn a_password_echoed_in_a_login_error_is_hidden() {
    let url = echoing_server(400);
    let run = live(&url, TEAM, Creds::Login(PASSWORD), &[]);
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert!(
        run.out.stderr.contains("wrong password ***"),
        "{}",
        run.out.stderr
    );
}

#[test]
fn a_token_with_a_line_break_is_refused_before_any_call() {
    let server = TestServer::start(Config::default()).unwrap();
    let token = format!("{TOKEN}\r\n");
    let run = live_with_env(
        &server.url(),
        TEAM,
        Creds::None,
        &[],
        &[("FONESTORM_TOKEN", token.as_str())],
    );
    assert_eq!(run.out.code, 3, "{}", run.out.stderr);
    assert!(
        run.out
            .stderr
            .contains("FONESTORM_TOKEN holds a line break"),
        "{}",
        run.out.stderr
    );
    assert!(
        run.out.stderr.contains("nothing was called"),
        "{}",
        run.out.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_password_that_is_part_of_the_token_leaves_the_token_whole() {
    // Every JWT starts with `eyJ`: hiding the password in a successful
    // answer would break the token and fail every call.
    let server = TestServer::start(Config {
        password: "eyJ".to_string(),
        ..Config::default()
    })
    .unwrap();
    let run = live(&server.url(), TEAM, Creds::Login("eyJ"), &[]);
    assert_eq!(run.out.code, 0, "{}", run.out.stderr);
    assert_eq!(run.report["totals"]["placed"], 6);
}
