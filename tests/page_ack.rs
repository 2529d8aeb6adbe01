//! A page acts on an acknowledgement its listener received at once, not at
//! its next look at the journal (once a second): whether it is waiting for
//! the next round or placing a round's calls.
//!
//! Each test repeats its case on several pages, since a once-a-second look
//! happens to come soon after an ack now and then: a page that only looks
//! once a second is caught by all of them together, while the bounds stay
//! many times what acting at once takes.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callbook::store::Store as _;
use fonestorm_testserver::{
    Config, HookMethod, Hooks, RequestRecord, SmsHook, TestServer, UrlHook,
};

const SECRET: &str = "page-secret-0123456789";
const FONENUMBER: &str = "3214991000";
/// Generous: what makes a hang fail instead of hanging.
const HANG: Duration = Duration::from_secs(60);

/// A port nobody listens on right now, for the page's listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_081)
}

/// Points the test server's callbacks for the FoneNumber at a listener on `port`.
fn hooks_to(server: &TestServer, port: u16) {
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
}

fn spawn_page(server: &TestServer, state: &Path, playbook: &Path, port: u16) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("callbook"))
        .args(["run", "--yes", "-q", "--format", "json"])
        .arg(playbook)
        .args(["--base-url", &server.url()])
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

/// The call requests the server saw.
fn call_requests(server: &TestServer) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/calls")
        .collect()
}

/// Waits (generously) until the server answered `n` call requests.
fn wait_answered(server: &TestServer, n: usize) {
    let start = Instant::now();
    while call_requests(server)
        .iter()
        .filter(|r| r.status.is_some())
        .count()
        < n
    {
        assert!(start.elapsed() < HANG, "{n} calls not answered in {HANG:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The short code of the latest run of `playbook` in `state`.
fn page_code(state: &Path, playbook: &str) -> String {
    let store = callbook::store::sqlite::SqliteStore::read_only(state.to_path_buf());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let runs = store.runs(Some(playbook), 1).await.unwrap();
        store.page_code(&runs[0].run_id).await.unwrap().unwrap()
    })
}

/// Waits (generously) for the page to exit; when it did, and its report.
fn wait_exit(mut child: Child) -> (Instant, i32, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let at = Instant::now();
            let out = child.wait_with_output().unwrap();
            let report = String::from_utf8_lossy(&out.stdout).into_owned();
            return (at, status.code().unwrap_or(-1), report);
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("the page did not stop within {HANG:?} of its ack");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn write(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn an_sms_ack_ends_a_waiting_page_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = write(
        dir.path(),
        "ack-wait.yaml",
        r#"version: 1
name: ack-wait
caller_id: "321-499-1000"
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
messages:
  m: { tts: "Page. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: primary, repeat: 2, every: 10m }
"#,
    );
    let state = dir.path().join("state");
    let mut slowest = Duration::ZERO;
    for page in 0..8 {
        let server = TestServer::start(Config {
            rate_limit: None,
            ..Config::default()
        })
        .unwrap();
        let port = free_port();
        hooks_to(&server, port);
        let child = spawn_page(&server, &state, &playbook, port);
        wait_answered(&server, 1);
        let code = page_code(&state, "ack-wait");
        // Let the page record the answer and begin its 10-minute wait.
        std::thread::sleep(Duration::from_millis(200));
        let delivered = server
            .simulate_sms("+1 321 499 1001", FONENUMBER, &format!("1 {code}"))
            .unwrap();
        let answered = Instant::now();
        assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
        let (exited, code, report) = wait_exit(child);
        assert_eq!(code, 0, "page {page}: {report}");
        assert!(report.contains("\"acknowledged\""), "{report}");
        assert_eq!(server.placed_calls().len(), 1, "no call after the ack");
        slowest = slowest.max(exited.saturating_duration_since(answered));
    }
    // Looking once a second, some of the eight would take hundreds of ms.
    assert!(
        slowest < Duration::from_millis(400),
        "the slowest page stopped {slowest:?} after its ack was recorded"
    );
}

#[test]
fn an_sms_ack_during_a_round_starts_no_further_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from(
        "version: 1\nname: ack-round\ncaller_id: \"321-499-1000\"\n\
         provider: { rate_limit: 100, concurrency: 1 }\nrecipients:\n\
         \x20 - { name: P0, phone: \"+1 321 499 1001\" }\n",
    );
    for i in 1..30 {
        yaml.push_str(&format!(
            "  - {{ name: P{i}, phone: \"+1 (212) 734-{:04}\" }}\n",
            1000 + i
        ));
    }
    yaml.push_str(
        "messages:\n  m: { tts: \"Page. {{ ack.hint }}\" }\nrules:\n  - play: m\n\
         escalation:\n  steps:\n    - { name: all, every: 10m }\n",
    );
    let playbook = write(dir.path(), "ack-round.yaml", &yaml);
    let state = dir.path().join("state");
    let mut late = Vec::new();
    for page in 0..4 {
        // One call at a time, each answered after 100 ms: about ten calls a
        // second, steadily (the rate limit would let them go in bursts).
        let server = TestServer::start(Config {
            rate_limit: None,
            latency: Duration::from_millis(100),
            ..Config::default()
        })
        .unwrap();
        let port = free_port();
        hooks_to(&server, port);
        let child = spawn_page(&server, &state, &playbook, port);
        wait_answered(&server, 2);
        let code = page_code(&state, "ack-round");
        let delivered = server
            .simulate_sms("+1 321 499 1001", FONENUMBER, &format!("1 {code}"))
            .unwrap();
        let answered = Instant::now();
        assert_eq!(delivered.receiver_status, Some(200), "{delivered:?}");
        let (_, code, report) = wait_exit(child);
        assert_eq!(code, 0, "page {page}: {report}");
        assert!(report.contains("acknowledged by P0"), "{report}");
        let calls = call_requests(&server);
        assert!(
            calls.len() < 30,
            "page {page}: the round went on: {calls:?}"
        );
        // A call already on its way when the ack came may still arrive; one
        // that starts later must not. At ten a second, a page looking once a
        // second starts several.
        late.push(
            calls
                .iter()
                .filter(|r| r.arrived > answered + Duration::from_millis(150))
                .count(),
        );
    }
    assert!(
        late.iter().all(|&n| n == 0),
        "calls started after the ack, per page: {late:?}"
    );
}
