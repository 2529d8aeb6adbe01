//! `callbook serve` under load, against the local test server.
//!
//! Run with `cargo bench --bench serve` (about a minute; it builds and runs the
//! release binary). Two measurements:
//!
//! 1. **Intake.** [`ALERTS`] distinct Alertmanager alerts are posted at
//!    [`RATE`] per second (paced, from [`CLIENTS`] connections) to one route of
//!    a one-person page. Each must be answered `202` (the page planned and
//!    recorded in the journal). Shown: the achieved rate and the webhook
//!    latency percentiles, measured from sending the request to reading the
//!    whole answer. The pages then call through one rate limiter, which this
//!    part does not measure.
//! 2. **Shared rate limit.** [`CONCURRENT`] alerts arrive at once, each a page
//!    of three people, with the test server answering each call after 200 ms
//!    and enforcing 10 requests per second with 429s. Every page calls at
//!    once; the bench checks that the test server never saw more than 10
//!    requests in any one-second window, answered no 429, and saw one login.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook};

/// Alerts posted in the intake measurement.
const ALERTS: usize = 2_000;
/// Alerts per second asked for.
const RATE: f64 = 200.0;
/// Connections the alerts are spread over.
const CLIENTS: usize = 8;
/// Pages calling at once in the second measurement.
const CONCURRENT: usize = 20;
/// The account's limit, as the test server enforces it.
const LIMIT: u32 = 10;
/// A generous bound on anything the bench waits for, so a hang fails.
const HANG: Duration = Duration::from_secs(120);

const TOKEN: &str = "bench-webhook-token-0123456789";
const SECRET: &str = "bench-callback-secret-012345";
const FONENUMBER: &str = "3214991000";

const ONE: &str = r#"version: 1
name: bench-one
caller_id: "321-499-1000"
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
messages:
  m: { tts: "Alert {{ input.groupKey }}. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: primary, every: 1h }
"#;

const THREE: &str = r#"version: 1
name: bench-three
caller_id: "321-499-1000"
provider: { concurrency: 50 }
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
  - { name: P2, phone: "+1 321 499 1002" }
  - { name: P3, phone: "+1 321 499 1003" }
messages:
  m: { tts: "Alert {{ input.groupKey }}. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: everyone, every: 1h }
"#;

fn main() {
    let binary = build_release();
    let dir = tempfile::tempdir().expect("temp dir");
    intake(&binary, dir.path());
    shared_limit(&binary, dir.path());
}

/// Builds the release binary the bench runs (the bench itself is already release).
fn build_release() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "callbook"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the release build failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("release/callbook")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running serve with one route.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path, dir: &Path, name: &str, playbook: &str, server: &TestServer) -> Serve {
    let port = free_port();
    let here = dir.join(name);
    std::fs::create_dir_all(&here).expect("dir");
    std::fs::write(here.join("playbook.yaml"), playbook).expect("playbook");
    std::fs::write(
        here.join("serve.yaml"),
        format!("listen: 127.0.0.1:{port}\nstate_dir: state\nroutes:\n  r: playbook.yaml\n"),
    )
    .expect("config");
    let hook = |path: &str| {
        UrlHook::new(format!("http://127.0.0.1:{port}{path}"), HookMethod::Json)
            .basic_auth("callbook", SECRET)
    };
    server.set_hooks(
        FONENUMBER,
        Hooks {
            send_notify: Some(hook("/fonestorm/calls")),
            receive_notify: Some(hook("/fonestorm/inbound")),
            sms: Some(SmsHook::Url(hook("/fonestorm/sms"))),
        },
    );
    let child = Command::new(binary)
        .args(["serve", "-q", "--config"])
        .arg(here.join("serve.yaml"))
        .args(["--base-url", &server.url()])
        .env("FONESTORM_TOKEN", "test-token")
        .env("CALLBOOK_CALLBACK_SECRET", SECRET)
        .env("CALLBOOK_WEBHOOK_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve starts");
    let serve = Serve {
        child,
        addr: ([127, 0, 0, 1], port).into(),
    };
    let begun = Instant::now();
    while post(&mut None, serve.addr, "/readyz", "").map(|r| r.0) != Some(200) {
        assert!(begun.elapsed() < HANG, "serve did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    serve
}

/// One request on a kept-alive connection (opened when `conn` is `None`);
/// `/readyz` is asked with GET, everything else POSTed.
fn post(
    conn: &mut Option<TcpStream>,
    addr: SocketAddr,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    if conn.is_none() {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_nodelay(true).ok()?;
        stream.set_read_timeout(Some(HANG)).ok()?;
        *conn = Some(stream);
    }
    let stream = conn.as_mut()?;
    let method = if path == "/readyz" { "GET" } else { "POST" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()));
    if sent.is_err() {
        *conn = None;
        return None;
    }
    let answer = read_answer(stream);
    if answer.is_none() {
        *conn = None;
    }
    answer
}

/// Reads one HTTP/1.1 answer with a `content-length`.
fn read_answer(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let code = head.get(9..12)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut byte).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&byte[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
            return Some((code, body));
        }
        let n = stream.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
}

fn alert(key: &str) -> String {
    serde_json::json!({
        "version": "4",
        "status": "firing",
        "groupKey": key,
        "receiver": "callbook",
        "alerts": [{"status": "firing", "labels": {"alertname": key}}],
        "commonLabels": {"alertname": key},
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn intake(binary: &Path, dir: &Path) {
    let server = TestServer::start(Config {
        rate_limit: Some(LIMIT),
        ..Config::default()
    })
    .expect("test server");
    let serve = start(binary, dir, "intake", ONE, &server);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(ALERTS)));
    let begun = Instant::now();
    let per_client = ALERTS / CLIENTS;
    let interval = Duration::from_secs_f64(CLIENTS as f64 / RATE);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let latencies = latencies.clone();
            let addr = serve.addr;
            std::thread::spawn(move || {
                let mut conn = None;
                let offset = interval.mul_f64(c as f64 / CLIENTS as f64);
                for i in 0..per_client {
                    let due = begun + offset + interval.mul_f64(i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let body = alert(&format!("bench-{c}-{i}"));
                    let sent = Instant::now();
                    let answer = post(&mut conn, addr, "/hooks/alertmanager/r", &body);
                    let took = sent.elapsed();
                    match answer {
                        Some((202, _)) => latencies.lock().expect("lock").push(took),
                        other => panic!("alert {c}-{i} not accepted: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let elapsed = begun.elapsed();
    let mut all = latencies.lock().expect("lock").clone();
    all.sort();
    println!(
        "intake: {} alerts accepted (202) in {:.2} s = {:.0}/s asked {RATE:.0}/s; webhook latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.9).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    drop(serve);
}

fn shared_limit(binary: &Path, dir: &Path) {
    let server = TestServer::start(Config {
        rate_limit: Some(LIMIT),
        latency: Duration::from_millis(200),
        ..Config::default()
    })
    .expect("test server");
    let serve = start(binary, dir, "limit", THREE, &server);
    let begun = Instant::now();
    let threads: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let addr = serve.addr;
            std::thread::spawn(move || {
                let answer = post(
                    &mut None,
                    addr,
                    "/hooks/alertmanager/r",
                    &alert(&format!("at-once-{i}")),
                );
                assert_eq!(answer.map(|a| a.0), Some(202), "alert {i}");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let calls = CONCURRENT * 3;
    while server.placed_calls().len() < calls {
        assert!(begun.elapsed() < HANG, "calls not placed in {HANG:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = begun.elapsed();
    let most = server.max_requests_in_any_window(Duration::from_secs(1));
    let refused = server.count_429();
    let logins = server.auth_count();
    println!(
        "shared limit: {CONCURRENT} pages, {calls} calls placed in {:.2} s; at most {most} requests in any one second (limit {LIMIT}), {refused} answered 429, {logins} login(s)",
        took.as_secs_f64()
    );
    assert!(
        most <= LIMIT as usize,
        "over the limit: {most} in one second"
    );
    assert_eq!(refused, 0, "the provider answered 429");
    drop(serve);
}
