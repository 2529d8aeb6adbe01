//! `callbook serve` under hostile and careless use: the real binary, the
//! FoneStorm test server on 127.0.0.1, sequences an alert source or a
//! stranger can send (a flapping alert, a burst of repeats, idle
//! connections), each checked for the one thing that matters: everyone who
//! should be called is called, once.

#[path = "support/serve.rs"]
mod serve_support;
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_support::*;

#[test]
fn a_firing_alert_right_after_its_resolve_starts_a_new_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, first) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{first}");
    let first = first["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &resolved());
    assert_eq!((code, answer), (200, json!({"cancelled": first})));
    // The alert flaps: it fires again at once. The cancelled page may still be
    // finishing, but it no longer pages anyone, so this must be a new page.
    let (code, again) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "a re-fired alert was not paged: {again}");
    assert_ne!(again["run_id"].as_str(), Some(first.as_str()), "{again}");
    wait_placed(&server, 2);
}

#[test]
fn a_hundred_concurrent_firings_of_one_alert_start_one_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let body = firing().to_string();
    let addr = setup.addr();
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let body = body.clone();
                s.spawn(move || {
                    let (code, text) =
                        request(addr, "POST", "/hooks/alertmanager/critical", Some(&body))
                            .expect("serve answers");
                    (
                        code,
                        serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started: Vec<_> = answers.iter().filter(|(c, _)| *c == 202).collect();
    assert_eq!(started.len(), 1, "{answers:?}");
    let run_id = &started[0].1["run_id"];
    for (code, answer) in &answers {
        assert!(
            *code == 202 || (*code == 200 && &answer["deduplicated"] == run_id),
            "{code} {answer}"
        );
    }
    wait_placed(&server, 1);
    std::thread::sleep(Duration::from_millis(500));
    support::assert_nobody_twice(&server);
}

#[test]
fn idle_connections_from_a_stranger_do_not_keep_an_alert_out_for_long() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    // More idle connections than serve takes at once, none sending a byte.
    let idle: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect_timeout(&setup.addr(), Duration::from_secs(2)).ok())
        .collect();
    let start = Instant::now();
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    let took = start.elapsed();
    drop(idle);
    assert_eq!(code, 202, "{answer}");
    // Idle connections are closed after the header timeout (10 s), which
    // frees their slots: the alert waits for that, never for ever.
    assert!(took < Duration::from_secs(30), "answered after {took:?}");
    wait_placed(&server, 1);
}

#[test]
fn labels_with_control_and_bidi_characters_still_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let mut payload = firing();
    payload["commonLabels"]["alertname"] =
        json!("Disk\u{0}\u{7}\u{1b}[31m\u{202e}full\r\nX-Evil: 1");
    payload["groupKey"] = json!("{}:{alertname=\"Disk\u{0}\u{202e}\"}");
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &payload);
    assert_eq!(code, 202, "{answer}");
    wait_placed(&server, 1);
    let log = setup.log_text();
    assert!(!log.contains('\u{1b}'), "a raw escape in the log");
}

#[test]
fn a_long_group_key_still_pages_and_resolves() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let mut payload = firing();
    payload["groupKey"] = json!(format!("{{}}/{{}}:{{error=\"{}\"}}", "x".repeat(6000)));
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &payload);
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].clone();
    wait_placed(&server, 1);
    payload["status"] = json!("resolved");
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &payload);
    assert_eq!((code, &answer["cancelled"]), (200, &run_id), "{answer}");
}

#[test]
fn a_hand_ack_racing_a_resolve_ends_the_page_once() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    let addr = setup.addr();
    let ack_path = format!("/runs/{run_id}/ack");
    let resolve = resolved().to_string();
    let (ack, res) = std::thread::scope(|s| {
        let a = s.spawn(|| request(addr, "POST", &ack_path, Some(r#"{"by": "ops"}"#)));
        let r = s.spawn(|| request(addr, "POST", "/hooks/alertmanager/critical", Some(&resolve)));
        (a.join().unwrap(), r.join().unwrap())
    });
    let (ack, res) = (ack.expect("serve answers"), res.expect("serve answers"));
    assert!(ack.0 == 200 || ack.0 == 409, "{ack:?}");
    assert_eq!(res.0, 200, "{res:?}");
    let start = Instant::now();
    loop {
        let (code, text) = request(addr, "GET", &format!("/runs/{run_id}"), None).unwrap();
        let report: Value = serde_json::from_str(&text).unwrap_or_default();
        if code == 200
            && let Some(outcome) = report["escalation"]["outcome"].as_str()
        {
            assert!(
                outcome == "acknowledged" || outcome == "cancelled",
                "{report}"
            );
            break;
        }
        assert!(start.elapsed() < HANG, "the page did not end: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, text) = request(addr, "GET", "/runs?active=true", None).unwrap();
    assert_eq!((code, text.trim()), (200, "[]"));
    std::thread::sleep(Duration::from_millis(300));
    support::assert_nobody_twice(&server);
}

#[test]
fn a_sighup_storm_while_alerts_arrive_loses_no_alert() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let serve = Stop(setup.spawn(&server, "serve.log"));
    let pid = serve.0.id().to_string();
    let addr = setup.addr();
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let storm = s.spawn(|| {
            for _ in 0..50 {
                let _ = Command::new("kill").args(["-HUP", &pid]).status();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut answers = Vec::new();
        for i in 0..20 {
            let mut payload = firing();
            payload["groupKey"] = json!(format!("{{}}:{{alertname=\"A{i}\"}}"));
            answers.push(
                request(
                    addr,
                    "POST",
                    "/hooks/alertmanager/critical",
                    Some(&payload.to_string()),
                )
                .expect("serve answers"),
            );
        }
        storm.join().unwrap();
        answers
    });
    for (code, text) in &answers {
        assert_eq!(*code, 202, "{text}");
    }
    wait_placed(&server, 20);
    let (code, _) = request(addr, "GET", "/readyz", None).unwrap();
    assert_eq!(code, 200, "{}", setup.log_text());
}

/// `{"a": [[[ … ]]]}` with `depth` levels of nesting in all.
fn nested(depth: usize) -> String {
    format!(
        "{{\"receiver\": \"x\", \"status\": \"firing\", \"version\": \"4\", \"groupKey\": \"{{}}:{{a=\\\"deep\\\"}}\", \"alerts\": [], \"commonLabels\": {{\"alertname\": \"Deep\"}}, \"deep\": {}{}}}",
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn a_deeply_nested_payload_is_never_accepted_and_then_lost_at_a_restart() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let mut first = setup.spawn(&server, "first.log");
    let (code, text) = request(
        setup.addr(),
        "POST",
        "/hooks/alertmanager/critical",
        Some(&nested(127)),
    )
    .expect("serve answers");
    // Accepted, it must resume after a restart like any page; else refused.
    if code != 202 {
        assert_eq!(code, 400, "{text}");
        let _ = first.kill();
        let _ = first.wait();
        return;
    }
    let answer: Value = serde_json::from_str(&text).unwrap();
    let run_id = answer["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    first.kill().unwrap();
    first.wait().unwrap();
    let _second = Stop(setup.spawn(&server, "second.log"));
    let (code, text) = request(setup.addr(), "GET", "/runs?active=true", None).unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains(&run_id),
        "an accepted page was not resumed: {text}\n{}",
        setup.log_text()
    );
}

#[test]
fn firing_and_resolved_racing_for_one_key_leave_no_page_going_after_the_last_resolve() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let addr = setup.addr();
    let (fire, resolve) = (firing().to_string(), resolved().to_string());
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let body = if i % 2 == 0 {
                    fire.clone()
                } else {
                    resolve.clone()
                };
                s.spawn(move || {
                    request(addr, "POST", "/hooks/alertmanager/critical", Some(&body))
                        .expect("serve answers")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = answers.iter().filter(|(c, _)| *c == 202).count();
    for (code, text) in &answers {
        assert!(*code == 200 || *code == 202, "{code} {text}");
    }
    // The alert's last word: resolved. Nothing may go on paging after it.
    let (code, text) =
        request(addr, "POST", "/hooks/alertmanager/critical", Some(&resolve)).unwrap();
    assert_eq!(code, 200, "{text}");
    let start = Instant::now();
    loop {
        let (code, text) = request(addr, "GET", "/runs?active=true", None).unwrap();
        if code == 200 && text.trim() == "[]" {
            break;
        }
        assert!(start.elapsed() < HANG, "still going: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.placed_calls().len() <= started,
        "more calls than pages: {} > {started}",
        server.placed_calls().len()
    );
}

#[test]
fn crossed_and_mangled_credentials_are_refused_and_never_logged() {
    use base64::Engine as _;
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("callbook:{SECRET}"));
    let body = firing().to_string();
    let hook = "/hooks/alertmanager/critical";
    let cases = [
        (hook, format!("authorization: Basic {basic}\r\n")),
        (hook, format!("authorization: Basic {TOKEN}\r\n")),
        (hook, format!("authorization: Bearer {TOKEN}x\r\n")),
        (hook, format!("authorization: Bearer x{TOKEN}\r\n")),
        (hook, format!("authorization: Bearer {SECRET}\r\n")),
        (hook, format!("authorization: Bearer\t{TOKEN}\r\n")),
        (hook, format!("authorization: {TOKEN}\r\n")),
        (
            hook,
            format!("authorization: Bearer {TOKEN}\r\nauthorization: Bearer {TOKEN}\r\n"),
        ),
        (
            "/fonestorm/calls",
            format!("authorization: Bearer {TOKEN}\r\n"),
        ),
        (
            "/fonestorm/sms",
            format!("authorization: Bearer {TOKEN}\r\n"),
        ),
        (
            "/fonestorm/inbound",
            format!(
                "authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("callbook:{TOKEN}"))
            ),
        ),
        (
            "/runs?active=true",
            format!("authorization: Basic {basic}\r\n"),
        ),
    ];
    for (path, headers) in &cases {
        let method = if path.starts_with("/runs") {
            "GET"
        } else {
            "POST"
        };
        let (code, text) =
            raw_request(setup.addr(), method, path, headers, &body).expect("serve answers");
        assert_eq!(code, 401, "{path} with {headers:?}: {text}");
        assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.placed_calls().is_empty());
    let (code, text) = request(setup.addr(), "GET", "/runs?active=true", None).unwrap();
    assert_eq!((code, text.trim()), (200, "[]"));
    let log = setup.log_text();
    for secret in [TOKEN, SECRET, basic.as_str()] {
        assert!(!log.contains(secret), "a secret in the log: {log}");
    }
}

#[test]
fn hostile_route_names_share_one_metrics_series_and_start_nothing() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let body = firing().to_string();
    let long = format!("/hooks/alertmanager/{}", "r".repeat(4000));
    let mut paths: Vec<String> = [
        "/hooks/alertmanager/..%2Fcritical",
        "/hooks/alertmanager/critical%2F..",
        "/hooks/alertmanager/critical/",
        "/hooks/alertmanager/CRITICAL",
        "/hooks/alertmanager/critical%00",
        "/hooks/alertmanager/%E2%80%AEcritical",
        "/hooks/json/..",
    ]
    .iter()
    .map(|p| (*p).to_string())
    .collect();
    paths.push(long);
    for i in 0..200 {
        paths.push(format!("/hooks/json/r{i}"));
    }
    for path in &paths {
        let (code, text) = request(setup.addr(), "POST", path, Some(&body)).expect("serve answers");
        assert!(
            code == 404 || code == 431 || code == 414,
            "{path}: {code} {text}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.placed_calls().is_empty());
    let (code, metrics) = request(setup.addr(), "GET", "/metrics", None).unwrap();
    assert_eq!(code, 200);
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("callbook_webhooks_total{"))
        .count();
    assert!(series <= 3, "{metrics}");
    assert!(
        !metrics.contains("r199") && !metrics.contains(".."),
        "{metrics}"
    );
}

#[test]
fn a_resolve_after_a_restart_cancels_the_resumed_page() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let mut first = setup.spawn(&server, "first.log");
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{answer}");
    let run_id = answer["run_id"].clone();
    wait_placed(&server, 1);
    first.kill().unwrap();
    first.wait().unwrap();
    let _second = Stop(setup.spawn(&server, "second.log"));
    let start = Instant::now();
    loop {
        let (code, text) = request(setup.addr(), "GET", "/runs?active=true", None).unwrap();
        if code == 200 && text.contains(run_id.as_str().unwrap()) {
            break;
        }
        assert!(start.elapsed() < HANG, "not resumed: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, again) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!((code, &again["deduplicated"]), (200, &run_id), "{again}");
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &resolved());
    assert_eq!((code, &answer["cancelled"]), (200, &run_id), "{answer}");
    support::assert_nobody_twice(&server);
}

#[test]
fn a_body_that_never_ends_gets_408_and_starts_nothing() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let _serve = Stop(setup.spawn(&server, "serve.log"));
    let mut stream = TcpStream::connect_timeout(&setup.addr(), Duration::from_secs(2)).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    let head = format!(
        "POST /hooks/alertmanager/critical HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(start.elapsed() < HANG, "no answer: {answer}");
    assert_eq!(answer.get(9..12), Some("408"), "{answer}");
    assert!(server.placed_calls().is_empty());
}

#[test]
fn a_page_that_cannot_be_resumed_is_stopped_and_its_alert_pages_again() {
    let server = server();
    let setup = Setup::new(&[("critical", PAGE)]);
    hooks_to(&server, setup.port);
    let mut first = setup.spawn(&server, "first.log");
    let (code, answer) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{answer}");
    let dead = answer["run_id"].as_str().unwrap().to_string();
    wait_placed(&server, 1);
    first.kill().unwrap();
    first.wait().unwrap();
    // What the page was planned from can no longer be read back.
    let journal = setup.dir.path().join("state").join("journal.sqlite3");
    let conn = rusqlite::Connection::open(&journal).unwrap();
    let changed = conn
        .execute(
            "UPDATE pages SET sources = '{\"not\": \"sources\"}' WHERE run_id = ?1",
            [&dead],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let _second = Stop(setup.spawn(&server, "second.log"));
    // The same alert again pages again instead of being taken as a repeat
    // of a page that nothing will ever drive.
    let (code, again) = setup.post("/hooks/alertmanager/critical", &firing());
    assert_eq!(code, 202, "{again}\n{}", setup.log_text());
    assert_ne!(again["run_id"].as_str(), Some(dead.as_str()));
    assert!(
        setup
            .log_text()
            .contains("it is ended as stopped so that its alert can page again"),
        "{}",
        setup.log_text()
    );
    wait_placed(&server, 2);
}
