//! What the `callbook serve` tests share: a serve set up in a temporary
//! directory and run as the real binary, requests with and without the
//! webhook token, the Alertmanager fixture, and waits bounded so that a hang
//! fails instead of blocking.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fonestorm_testserver::{Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook};
use serde_json::{Value, json};

pub const TOKEN: &str = "serve-e2e-webhook-token-5c2a";
pub const SECRET: &str = "serve-e2e-callback-secret-9b";
pub const FONENUMBER: &str = "3214991000";
/// Generous: what makes a hang fail instead of hanging.
pub const HANG: Duration = Duration::from_secs(60);

pub const PAGE: &str = r#"version: 1
name: serve-page
caller_id: "321-499-1000"
provider: { timeout: 5s, retries: 2 }
recipients:
  - { name: P1, phone: "+1 321 499 1001", tags: [primary] }
messages:
  m: { tts: "{{ input.commonLabels.alertname if input else 'page' }}. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: primary, tags: [primary], repeat: 2, every: 10m }
"#;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_181)
}

/// Points the test server's callbacks at serve on `port`.
pub fn hooks_to(server: &TestServer, port: u16) {
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

/// A serve setup in a temporary directory: its configuration, playbooks and journal.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Setup {
    pub fn new(routes: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let setup = Setup { dir, port };
        setup.write_config(routes);
        setup
    }

    pub fn write_config(&self, routes: &[(&str, &str)]) {
        let mut config = format!(
            "listen: 127.0.0.1:{}\npublic_url: http://127.0.0.1:{}\nstate_dir: state\nroutes:\n",
            self.port, self.port
        );
        for (route, text) in routes {
            let file = format!("{route}.yaml");
            std::fs::write(self.dir.path().join(&file), text).unwrap();
            config.push_str(&format!("  {route}: {file}\n"));
        }
        std::fs::write(self.config(), config).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("serve.yaml")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Starts serve against `server`, logs to a file, and waits until it is ready.
    pub fn spawn(&self, server: &TestServer, log: &str) -> Child {
        let command = Command::new(assert_cmd::cargo::cargo_bin("callbook"));
        self.spawn_as(command, server, log)
    }

    /// As [`Setup::spawn`], with `command` (the binary, or a wrapper that execs it).
    pub fn spawn_as(&self, mut command: Command, server: &TestServer, log: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join(log)).unwrap();
        let mut child = command
            .args(["serve", "--log-format", "json", "--config"])
            .arg(self.config())
            .args(["--base-url", &server.url()])
            .env("FONESTORM_TOKEN", "test-token")
            .env("CALLBOOK_CALLBACK_SECRET", SECRET)
            .env("CALLBOOK_WEBHOOK_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .env_remove("CALLBOOK_STATE_DIR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("callbook starts");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("serve exited with {status}: {}", self.log_text());
            }
            if request(self.addr(), "GET", "/readyz", None).is_some_and(|(code, _)| code == 200) {
                return child;
            }
            assert!(
                start.elapsed() < HANG,
                "serve not ready: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
        text
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (code, text) =
            request(self.addr(), "POST", path, Some(&body.to_string())).expect("serve answers");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (code, text) = request(self.addr(), "GET", path, None).expect("serve answers");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Polls `GET /runs/{run_id}` until the page's outcome is set.
    pub fn wait_outcome(&self, run_id: &str) -> Value {
        let start = Instant::now();
        loop {
            let (code, report) = self.get(&format!("/runs/{run_id}"));
            if code == 200
                && let Some(outcome) = report["escalation"]["outcome"].as_str()
                && outcome != "interrupted"
            {
                return report;
            }
            assert!(
                start.elapsed() < HANG,
                "page {run_id} did not end: {report}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One HTTP/1.1 request with the webhook token; `None` when nothing answers.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let auth = format!("authorization: Bearer {TOKEN}\r\n");
    raw_request(addr, method, path, &auth, body.unwrap_or(""))
}

/// One HTTP/1.1 request with `headers` (each ending in CRLF) and a JSON body.
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{headers}\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    // A server refusing a body may answer (and close) before reading all of it.
    let _ = stream.write_all(body.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let code = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((code, body.to_string()))
}

pub fn firing() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/serve/alertmanager-firing.json").unwrap(),
    )
    .unwrap()
}

pub fn resolved() -> Value {
    let mut payload = firing();
    payload["status"] = json!("resolved");
    payload["alerts"][0]["status"] = json!("resolved");
    payload
}

/// Waits until the test server placed `n` calls.
pub fn wait_placed(server: &TestServer, n: usize) {
    let start = Instant::now();
    while server.placed_calls().len() < n {
        assert!(start.elapsed() < HANG, "{n} calls not placed in {HANG:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits for the process to exit; its exit code and how long it took.
pub fn wait_exit(child: &mut Child, bound: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), start.elapsed());
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("serve did not exit within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops serve for good at the end of a test.
pub struct Stop(pub Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn server() -> TestServer {
    TestServer::start(Config {
        rate_limit: Some(10),
        ..Config::default()
    })
    .unwrap()
}
