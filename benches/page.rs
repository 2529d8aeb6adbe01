//! How fast a live page acts on an acknowledgement, and what a waiting page
//! costs, against the local test server.
//!
//! Run with `cargo bench --bench page` (about 75 s). Two measurements:
//!
//! 1. **Ack to stop.** [`PAGES`] pages, one after another, each of one person
//!    with two rounds ten minutes apart. Once the first round's call is
//!    placed and the page is waiting, the test server delivers the person's
//!    SMS `1 <code>` to the page's listener. Measured from just before the
//!    server sends that callback to the moment the `callbook` process has
//!    exited: the page has stopped (the ack is in the journal, the second
//!    round is skipped, the page is recorded acknowledged and its report
//!    written), so no call can start after it. Also shown: the time until
//!    the listener answered `200` (the callback and the ack are recorded by
//!    then). The bench fails if any page places a second call, ends other
//!    than acknowledged by SMS, or the SMS is not answered `200`.
//! 2. **CPU while waiting.** One page of 100 people and three steps (an hour
//!    apart) places its first round, then waits: the process's user + system
//!    CPU time (`/proc/PID/stat`, in 10 ms ticks: hence a long window) over
//!    [`IDLE`] of that wait,
//!    which includes its look at the journal for `callbook ack` once a second.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fonestorm_testserver::{
    Config, HookMethod, Hooks, RequestRecord, SmsHook, TestServer, UrlHook,
};

/// Pages acknowledged in the first measurement: enough for a real p99.
const PAGES: usize = 200;
/// How long the waiting page's CPU time is measured.
const IDLE: Duration = Duration::from_secs(30);
/// The limit the requirement sets for ack to stop, at p99.
const TARGET: Duration = Duration::from_millis(50);
/// A generous bound on anything the bench waits for, so a hang fails.
const HANG: Duration = Duration::from_secs(30);

const SECRET: &str = "bench-secret-0123456789";
const FONENUMBER: &str = "3214991000";

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    ack_to_stop(dir.path());
    cpu_while_waiting(dir.path());
}

/// A port nobody listens on right now, for a page's listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
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

/// `callbook run` of a page, live, as a child process with its report on stdout.
fn spawn_page(server: &TestServer, state: &Path, playbook: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_callbook"))
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
        .stderr(Stdio::null())
        .spawn()
        .expect("callbook starts")
}

/// The call requests the server answered (`POST /calls`, any outcome).
fn call_requests(server: &TestServer) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/calls")
        .collect()
}

/// Waits until the server answered `n` call requests; panics after [`HANG`].
fn wait_answered(server: &TestServer, n: usize) -> Vec<RequestRecord> {
    let start = Instant::now();
    loop {
        let calls = call_requests(server);
        if calls.iter().filter(|r| r.status.is_some()).count() >= n {
            return calls;
        }
        assert!(start.elapsed() < HANG, "{n} calls not answered in {HANG:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn write(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write playbook");
    path
}

/// The page of the first measurement: one person, two rounds 10 minutes apart.
const ONE: &str = r#"version: 1
name: bench-ack
caller_id: "321-499-1000"
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
messages:
  m: { tts: "Page for {{ recipient.name }}. {{ ack.hint }}" }
rules:
  - play: m
escalation:
  steps:
    - { name: primary, repeat: 2, every: 10m }
"#;

/// Percentile `p` (0 to 100) of sorted durations, nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(what: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p99 = percentile(&samples, 99);
    eprintln!(
        "{what}: n {}, p50 {}, p90 {}, p99 {}, max {}",
        samples.len(),
        ms(percentile(&samples, 50)),
        ms(percentile(&samples, 90)),
        ms(p99),
        ms(samples[samples.len() - 1]),
    );
    p99
}

/// The first measurement; see the module documentation.
fn ack_to_stop(dir: &Path) {
    let playbook = write(dir, "bench-ack.yaml", ONE);
    let state = dir.join("state-ack");
    let mut answered = Vec::with_capacity(PAGES);
    let mut stopped = Vec::with_capacity(PAGES);
    let mut not_200 = 0usize;
    let bench = Instant::now();
    for page in 0..PAGES {
        // A server per page: its call count and records are this page's.
        let server = TestServer::start(Config {
            rate_limit: None,
            ..Config::default()
        })
        .expect("test server starts");
        let port = free_port();
        hooks_to(&server, port);
        let mut child = spawn_page(&server, &state, &playbook, port);
        let mut stdout = child.stdout.take().expect("piped stdout");
        wait_answered(&server, 1);
        // The code is in the message; the page's first call has been answered.
        // Give the page time to record the answer and start waiting (not measured).
        std::thread::sleep(Duration::from_millis(50));
        let code = page_code(&state).unwrap_or_else(|| panic!("page {page}: no code"));
        // Its report is read to the end (the process exits) before it is
        // waited for, all within the bound of `wait_bounded`.
        let exited = std::thread::spawn(move || {
            let mut report = String::new();
            let read = stdout.read_to_string(&mut report);
            let status = child.wait().expect("callbook ends");
            let at = Instant::now();
            read.expect("report");
            (status, at, report)
        });
        let sent = Instant::now();
        let delivery = server
            .simulate_sms("+1 321 499 1001", FONENUMBER, &format!("1 {code}"))
            .expect("the SMS is delivered");
        let answered_at = Instant::now();
        if delivery.receiver_status != Some(200) {
            not_200 += 1;
        }
        let (status, exit_at, report) = wait_bounded(exited);
        assert_eq!(status.code(), Some(0), "page {page} exit: {report}");
        assert!(
            report.contains("\"via\": \"sms\"") || report.contains("\"via\":\"sms\""),
            "page {page} not acknowledged by SMS: {report}"
        );
        let placed = server.placed_calls().len();
        assert_eq!(placed, 1, "page {page}: a call after the ack");
        answered.push(answered_at - sent);
        stopped.push(exit_at - sent);
    }
    eprintln!(
        "ack to stop, {PAGES} pages in {:.1} s ({not_200} SMS callbacks not answered 200):",
        bench.elapsed().as_secs_f64()
    );
    summary(
        "  SMS sent -> listener answered 200 (ack recorded)",
        answered,
    );
    let p99 = summary("  SMS sent -> callbook exited (page stopped)", stopped);
    assert_eq!(not_200, 0, "every SMS ack answered 200");
    eprintln!(
        "  p99 {} the {} target",
        if p99 <= TARGET { "within" } else { "OVER" },
        ms(TARGET)
    );
}

/// The short code of the latest page in `state`, read from its journal.
fn page_code(state: &Path) -> Option<String> {
    use callbook::store::Store as _;
    let store = callbook::store::sqlite::SqliteStore::read_only(state.to_path_buf());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let runs = store.runs(Some("bench-ack"), 1).await.ok()?;
        let run = runs.first()?;
        store.page_code(&run.run_id).await.ok()?
    })
}

/// Joins `thread`, panicking if it takes longer than [`HANG`].
fn wait_bounded<T: Send + 'static>(thread: std::thread::JoinHandle<T>) -> T {
    let start = Instant::now();
    while !thread.is_finished() {
        assert!(start.elapsed() < HANG, "callbook did not stop in {HANG:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    thread.join().expect("waiter thread")
}

/// The user + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 after `)`.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// The clock ticks per second of `/proc/PID/stat`.
fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The second measurement; see the module documentation.
fn cpu_while_waiting(dir: &Path) {
    let mut yaml = String::from(
        "version: 1\nname: bench-wait\ncaller_id: \"321-499-1000\"\n\
         provider: { rate_limit: 100, concurrency: 32 }\nrecipients:\n",
    );
    for i in 0..100 {
        yaml.push_str(&format!(
            "  - {{ name: P{i}, phone: \"+1 (212) 734-{:04}\" }}\n",
            1000 + i
        ));
    }
    yaml.push_str(
        "messages:\n  m: { tts: \"Page for {{ recipient.name }}. {{ ack.hint }}\" }\n\
         rules:\n  - play: m\nescalation:\n  steps:\n\
         \x20   - { name: first, every: 1h }\n\
         \x20   - { name: second, every: 1h }\n\
         \x20   - { name: third, every: 1h }\n",
    );
    let playbook = write(dir, "bench-wait.yaml", &yaml);
    let server = TestServer::start(Config {
        rate_limit: None,
        ..Config::default()
    })
    .expect("test server starts");
    let port = free_port();
    hooks_to(&server, port);
    let mut child = spawn_page(&server, &dir.join("state-wait"), &playbook, port);
    wait_answered(&server, 100);
    // Let the round's answers and END callbacks settle (not measured).
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let before = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(IDLE);
    let after = cpu_ticks(pid);
    let waited = start.elapsed();
    let calls = call_requests(&server).len();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(calls, 100, "the page waited: no second round");
    let hz = ticks_per_second();
    let cpu = Duration::from_secs_f64((after - before) as f64 / hz as f64);
    eprintln!(
        "CPU while waiting (3 steps, 100 people, first round placed): {} of CPU in {:.1} s \
         = {:.2} ms per second of waiting (resolution {:.1} ms per second)",
        ms(cpu),
        waited.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / waited.as_secs_f64(),
        1000.0 / hz as f64 / waited.as_secs_f64(),
    );
}
