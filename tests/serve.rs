//! `callbook serve` end to end: the real binary, the FoneStorm test server
//! on 127.0.0.1, real Alertmanager payloads and FoneStorm callbacks.
//!
//! An alert starts a page, the test server's calls and callbacks drive it,
//! an SMS acknowledges it, a resolved alert cancels it; the process is
//! killed with SIGKILL and restarted (the page resumes, nobody is called
//! twice), stopped with SIGTERM (exit 0 within the drain bound) and sent
//! SIGHUP with a broken playbook (the old one stays).

#[path = "support/serve.rs"]
mod serve_support;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, FaultRule, TestServer};
use serde_json::json;
use serve_support::*;
/// Two steps, one person each: everyone is called exactly once if nobody acks.
const LADDER: &str = r#"version: 1
name: serve-ladder
caller_id: "321-499-1000"
provider: { timeout: 5s, retries: 1 }
recipients:
  - { name: P1, phone: "+1 321 499 1001", tags: [primary] }
  - { name: P2, phone: "+1 321 499 1002", tags: [secondary] }
messages:
  m: { tts: "Page for {{ recipient.name }}. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: primary, tags: [primary], every: 3s }
    - { name: secondary, tags: [secondary], every: 1s }
"#;

#[test]
fn an_alertmanager_alert_pages_and_an_sms_ack_ends_the_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let (code, active) = setup.get("/runs?active=true");
    assert_eq!(code, 200);
    let page = active
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("{active}"))
        .clone();
    assert_eq!(page["route"], "critical");
    let short_code = page["code"].as_str().unwrap();
    let delivered = server
        .simulate_sms("+1 321 499 1001", FONENUMBER, &format!("1 {short_code}"))
        .unwrap();
    assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
    let report = setup.wait_outcome(&run_id);
    assert_eq!(report["escalation"]["outcome"], "acknowledged", "{report}");
    assert_eq!(report["escalation"]["ack"]["via"], "sms", "{report}");
    assert_eq!(server.placed_calls().len(), 1, "no call after the ack");
    let (code, active) = setup.get("/runs?active=true");
    assert_eq!((code, active), (200, json!([])));
    let (code, metrics) = setup.get("/metrics");
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for needle in [
        "callbook_pages_total{route=\"critical\",outcome=\"acknowledged\"} 1",
        "callbook_pages_active{route=\"critical\"} 0",
        "callbook_calls_total{playbook=\"serve-page\",status=\"placed\"} 1",
        "callbook_time_to_ack_seconds_count{route=\"critical\"} 1",
        "callbook_webhooks_total{route=\"critical\",code=\"202\"} 1",
        "callbook_provider_requests_total{endpoint=",
        "callbook_rate_limit_wait_seconds_count",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    let log = setup.log_text();
    assert!(log.contains(&run_id), "logs name the run: {log}");
    for secret in [TOKEN, SECRET, "test-token"] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn a_repeated_firing_alert_is_deduplicated_and_nobody_is_called_twice() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, first) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{first}");
    for _ in 0..3 {
        let (code, again) = setup.post("/hooks/alertmanager/critical", &firing());
        assert_eq!(
            (code, &again["deduplicated"]),
            (200, &first["run_id"]),
            "{again}"
        );
    }
    wait_placed(&server, 1);
    std::thread::sleep(Duration::from_millis(300));
    support::assert_nobody_twice(&server);
}

#[test]
fn a_resolved_alert_cancels_its_page_and_one_for_no_page_answers_null() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &resolved());
    assert_eq!((code, answer), (200, json!({"cancelled": null})));
    let (_, started) = setup.post("/hooks/alertmanager/critical", &firing());
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &resolved());
    assert_eq!((code, answer), (200, json!({"cancelled": run_id})));
    let report = setup.wait_outcome(&run_id);
    assert_eq!(report["escalation"]["outcome"], "cancelled", "{report}");
    assert_eq!(
        server.placed_calls().len(),
        1,
        "the second round was cancelled"
    );
}

#[test]
fn a_hand_ack_over_http_ends_the_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, started) = setup.post(
        "/hooks/json/critical",
        &json!({"commonLabels": {"alertname": "Checkout"}}),
    );
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let (code, answer) = setup.post(
        &format!("/runs/{run_id}/ack"),
        &json!({"by": "Alice", "note": "on it"}),
    );
    assert_eq!(code, 200, "{answer}");
    let report = setup.wait_outcome(&run_id);
    assert_eq!(report["escalation"]["outcome"], "acknowledged");
    let (code, _) = setup.post(&format!("/runs/{run_id}/ack"), &json!({"by": "Alice"}));
    assert_eq!(code, 409, "already ended");
    let (code, _) = setup.post("/runs/no-such-run/ack", &json!({"by": "Alice"}));
    assert_eq!(code, 404);
}

#[test]
fn a_page_survives_kill_9_and_resumes_without_calling_anyone_twice() {
    let server = server();
    let setup = Setup::new(&[("ladder", LADDER)]);
    hooks_to(&server, setup.port);
    let mut first = setup.spawn(&server, "first.log");
    let (code, started) = setup.post("/hooks/json/ladder", &json!({"alert": "db"}));
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    // Killed while the page waits for an ack to its first step.
    first.kill().unwrap();
    first.wait().unwrap();
    let _second = Stop(setup.spawn(&server, "second.log"));
    let report = setup.wait_outcome(&run_id);
    assert_eq!(report["escalation"]["outcome"], "exhausted", "{report}");
    let mut placed = server.placed_calls();
    placed.sort();
    assert_eq!(placed, vec!["13214991001", "13214991002"], "{report}");
    support::assert_nobody_twice(&server);
}

#[test]
fn sigterm_exits_0_within_the_drain_bound_and_the_page_resumes_after() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let mut serve = setup.spawn(&server, "first.log");
    let (_, started) = setup.post("/hooks/alertmanager/critical", &firing());
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    signal(&serve, "TERM");
    // --drain-timeout is 10 s; the bound leaves room for a loaded machine.
    let (code, took) = wait_exit(&mut serve, Duration::from_secs(30));
    assert_eq!(code, 0, "{}", setup.log_text());
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // Still going after the restart, and not called again.
    let _again = Stop(setup.spawn(&server, "second.log"));
    let (_, active) = setup.get("/runs?active=true");
    assert!(
        active
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["run_id"] == run_id.as_str()),
        "{active}"
    );
    assert_eq!(server.placed_calls().len(), 1);
}

#[test]
fn sighup_with_a_broken_playbook_keeps_the_old_one() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let serve = setup.spawn(&server, "serve.log");
    let serve = Stop(serve);
    std::fs::write(
        setup.dir.path().join("critical.yaml"),
        "version: 1\nname: [broken\n",
    )
    .unwrap();
    signal(&serve.0, "HUP");
    let start = Instant::now();
    while !setup.log_text().contains("reload refused") {
        assert!(start.elapsed() < HANG, "{}", setup.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        setup.log_text().contains("critical.yaml"),
        "the log says why"
    );
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "the old playbook still pages: {answer}");
    wait_placed(&server, 1);
    // A valid reload adds a route.
    setup.write_config(&[("critical", PAGE), ("ladder", LADDER)]);
    signal(&serve.0, "HUP");
    let start = Instant::now();
    loop {
        let (code, _) = setup.post("/hooks/json/ladder", &json!({"alert": "x"}));
        if code == 202 {
            break;
        }
        assert_eq!(code, 404);
        assert!(start.elapsed() < HANG, "{}", setup.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_serve_on_the_same_state_directory_is_refused() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let other_port = free_port();
    let text = std::fs::read_to_string(setup.config()).unwrap().replace(
        &format!("127.0.0.1:{}", setup.port),
        &format!("127.0.0.1:{other_port}"),
    );
    let other = setup.dir.path().join("other.yaml");
    std::fs::write(&other, text).unwrap();
    let out = support::finish(
        support::callbook()
            .args(["serve", "--config"])
            .arg(&other)
            .args(["--base-url", &server.url()])
            .env("FONESTORM_TOKEN", "test-token")
            .env("CALLBOOK_CALLBACK_SECRET", SECRET)
            .env("CALLBOOK_WEBHOOK_TOKEN", TOKEN)
            .timeout(HANG),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("another `callbook serve`"),
        "{}",
        out.stderr
    );
}

#[test]
fn when_fonestorm_fails_a_page_retries_as_run_does() {
    let server = TestServer::start(Config {
        rate_limit: Some(10),
        faults: vec![FaultRule::new(fonestorm_testserver::Fault::Status(503)).times(2)],
        ..Config::default()
    })
    .unwrap();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, started) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let (_, report) = setup.get(&format!("/runs/{run_id}"));
    let call = &report["calls"][0];
    assert_eq!(call["status"], "placed", "{report}");
    assert_eq!(call["attempts"], 3, "two 503s, then placed: {report}");
    support::assert_nobody_twice(&server);
}

#[test]
fn a_journal_that_cannot_be_written_makes_readyz_and_webhooks_answer_503() {
    let can_mount = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"])
        .status()
        .is_ok_and(|s| s.success());
    let can_enter = Command::new("nsenter").arg("--version").output().is_ok();
    if !can_mount || !can_enter {
        eprintln!("SKIPPED: a full journal disk needs root for `unshare -m` and `nsenter`");
        return;
    }
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    std::fs::create_dir_all(setup.state()).unwrap();
    // serve runs with its state directory on a 4 MiB tmpfs of its own.
    let mut wrapper = Command::new("unshare");
    wrapper.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t tmpfs -o size=4m tmpfs '{}' && exec \"$0\" \"$@\"",
        setup.state().display()
    ));
    wrapper.arg(assert_cmd::cargo::cargo_bin("callbook"));
    let serve = Stop(setup.spawn_as(wrapper, &server, "serve.log"));
    let pid = serve.0.id().to_string();
    let fill = setup.state().join("fill");
    let filled = Command::new("nsenter")
        .args(["-t", &pid, "-m", "sh", "-c"])
        .arg(format!(
            "dd if=/dev/zero of='{}' bs=64k 2>/dev/null; true",
            fill.display()
        ))
        .status()
        .unwrap();
    assert!(filled.success());
    let (code, answer) = setup.get("/readyz");
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("journal"),
        "{answer}"
    );
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 503, "{answer}");
    assert_eq!(setup.get("/healthz").0, 200);
    assert!(server.placed_calls().is_empty(), "nothing half-started");
    let freed = Command::new("nsenter")
        .args(["-t", &pid, "-m", "rm", "-f"])
        .arg(&fill)
        .status()
        .unwrap();
    assert!(freed.success());
    assert_eq!(
        setup.get("/readyz").0,
        200,
        "ready again once there is room"
    );
}

#[test]
fn a_payload_the_playbook_cannot_render_gets_422_and_nothing_is_recorded() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    // The message reads `input.commonLabels.alertname`: a document without it fails.
    let (code, answer) = setup.post("/hooks/json/critical", &json!({"alert": "checkout"}));
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("critical.yaml"),
        "{answer}"
    );
    let (_, active) = setup.get("/runs?active=true");
    assert_eq!(active, json!([]));
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.placed_calls().is_empty());
}

#[test]
fn bad_requests_get_their_status_and_start_nothing() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let alert = firing().to_string();
    let bearer = format!("authorization: Bearer {TOKEN}\r\n");
    let mut no_group_key = firing();
    no_group_key.as_object_mut().unwrap().remove("groupKey");
    let mut no_status = firing();
    no_status.as_object_mut().unwrap().remove("status");
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024));
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("no token", String::new(), alert.clone(), 401, ""),
        (
            "wrong token",
            "authorization: Bearer not-the-token-at-all\r\n".to_string(),
            alert.clone(),
            401,
            "",
        ),
        (
            "malformed JSON",
            bearer.clone(),
            "{\"status\":".to_string(),
            400,
            "not JSON",
        ),
        ("over 1 MiB", bearer.clone(), big, 413, ""),
        (
            "no groupKey",
            bearer.clone(),
            no_group_key.to_string(),
            400,
            "missing `groupKey`",
        ),
        (
            "no status",
            bearer.clone(),
            no_status.to_string(),
            400,
            "missing `status`",
        ),
    ];
    for (what, headers, body, want, says) in cases {
        let (code, answer) = raw_request(
            setup.addr(),
            "POST",
            "/hooks/alertmanager/critical",
            &headers,
            &body,
        )
        .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(code, want, "{what}: {answer}");
        assert!(answer.contains(says), "{what}: {answer}");
    }
    let (code, _) = setup.post("/hooks/alertmanager/nope", &firing());
    assert_eq!(code, 404, "unknown route");
    let (_, active) = setup.get("/runs?active=true");
    assert_eq!(active, json!([]));
    assert!(server.placed_calls().is_empty());
}

/// A broadcast: everyone once, no ladder.
const BROADCAST: &str = r#"version: 1
name: serve-broadcast
caller_id: "321-499-1000"
recipients:
  - { name: B1, phone: "+1 321 499 1011" }
  - { name: B2, phone: "+1 321 499 1012" }
messages:
  m: { tts: "Maintenance tonight." }
rules:
  - play: m
"#;

#[test]
fn a_broadcast_route_calls_everyone_once_per_key() {
    let server = server();
    let setup = Setup::new(&[("notice", BROADCAST)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, started) = setup.post("/hooks/json/notice", &json!({"window": "tonight"}));
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 2);
    let start = Instant::now();
    loop {
        let (code, report) = setup.get(&format!("/runs/{run_id}"));
        if code == 200 && report["totals"]["placed"] == 2 {
            break;
        }
        assert!(start.elapsed() < HANG, "{report}");
        std::thread::sleep(Duration::from_millis(50));
    }
    support::assert_nobody_twice(&server);
}

#[test]
fn a_cron_run_shares_the_state_directory_with_a_running_serve() {
    // serve holds its own lock, not the playbooks' run locks: a `run` from
    // cron on the same state directory places its calls into the same
    // journal while a page is going.
    let server = server();
    let setup = Setup::new(&[("critical", PAGE), ("maintenance", BROADCAST)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{answer}");
    wait_placed(&server, 1);
    let out = support::finish(
        support::callbook()
            .arg("run")
            .arg(setup.dir.path().join("maintenance.yaml"))
            .args(["--yes", "--format", "json", "--base-url", &server.url()])
            .arg("--state-dir")
            .arg(setup.state())
            .env("FONESTORM_TOKEN", "test-token")
            .timeout(HANG),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["totals"]["placed"], 2, "{report}");
    let (code, page) = setup.get(&format!("/runs/{}", answer["run_id"].as_str().unwrap()));
    assert_eq!(code, 200, "{page}");
    let (code, _) = setup.get("/readyz");
    assert_eq!(code, 200);
    let listed = support::run(&[
        "runs",
        "--state-dir",
        setup.state().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let runs: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    support::assert_nobody_twice(&server);
}
