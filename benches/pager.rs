//! What 1 000 pages waiting in one pager cost: CPU and memory.
//!
//! Run with `cargo bench --bench pager` (about 30 s). In this process: the
//! test server (no rate limit of its own), a pager over a journal in a
//! temporary directory (the account's limit set to 200 requests per
//! second so that the pages start quickly), its callback sink served on a
//! local port that the server's callbacks point at. [`PAGES`] pages of one
//! person, each with three steps an hour apart, are started with distinct
//! keys; once every first-round call is answered and its `BEGIN`/`END`
//! callbacks are in, the process's user + system CPU time
//! (`/proc/self/stat`, in clock ticks) is read over [`IDLE`] of waiting,
//! and its resident memory (`VmRSS`) at the end. The pager looks at the
//! journal once a second for acknowledgements from other processes (for
//! all pages at once); nothing else runs while the pages wait. The bench
//! fails if the CPU exceeds 1 % of one core or a page calls twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callbook::diag::Sources;
use callbook::engine::{Intake, Pager, PagerObserver, PagerOptions};
use callbook::listener::{CallbackSecret, PATH_CALLS, PATH_INBOUND, PATH_SMS};
use callbook::plan::{RunInput, Selection, new_run_id};
use callbook::provider::{Credentials, Secret};
use callbook::store::sqlite::SqliteStore;
use fonestorm_testserver::{Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook};
use tokio_util::sync::CancellationToken;

/// Pages waiting at once.
const PAGES: usize = 1000;
/// How long the waiting pages' CPU time is measured.
const IDLE: Duration = Duration::from_secs(10);
/// A generous bound on anything the bench waits for, so a hang fails.
const HANG: Duration = Duration::from_secs(120);

const SECRET: &str = "bench-secret-0123456789";

const PLAYBOOK: &str = r#"version: 1
name: bench-pager
caller_id: "321-499-1000"
messages:
  m: { tts: "Page {{ input.alert }}. {{ ack.hint }}" }
rules:
  - play: m
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
dedup:
  key: "{{ input.alert }}"
  window: 1m
escalation:
  steps:
    - { name: first, every: 1h }
    - { name: second, every: 1h }
    - { name: third, every: 1h }
"#;

/// Hears nothing: the bench measures the pager alone.
struct Quiet;

impl PagerObserver for Quiet {}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(Config {
        rate_limit: None,
        ..Config::default()
    })
    .expect("test server starts");
    let store = Arc::new(SqliteStore::writable(dir.path().join("state")));
    let options = PagerOptions {
        credentials: Some(Credentials::Token(Secret::new("test-token".into()))),
        base_url: Some(server.url()),
        callback_secret: CallbackSecret::new(SECRET.into()).expect("a secret"),
        journal_messages: false,
        rate_limit: Some(200.0),
    };
    let pager = Pager::new(store, options, Arc::new(Quiet)).expect("a pager");
    let stop = CancellationToken::new();
    let listener = callbook::listener::bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("a port");
    let port = listener.local_addr().port();
    let secret = CallbackSecret::new(SECRET.into()).expect("a secret");
    tokio::spawn(listener.serve(secret, pager.sink(), stop.clone()));
    // Every callback of the FoneNumber to the sink, with its password.
    let at = |path: &str| {
        UrlHook::new(format!("http://127.0.0.1:{port}{path}"), HookMethod::Json)
            .basic_auth("callbook", SECRET)
    };
    let hooks = Hooks {
        sms: Some(SmsHook::Url(at(PATH_SMS))),
        receive_notify: Some(at(PATH_INBOUND)),
        send_notify: Some(at(PATH_CALLS)),
    };
    server.set_hooks("3214991000", hooks);

    let path = dir.path().join("bench-pager.yaml");
    std::fs::write(&path, PLAYBOOK).expect("the playbook is written");
    let mut sources = Sources::default();
    let loaded = callbook::playbook::load(&path, &mut sources).expect("the playbook loads");
    let playbook = Arc::new(loaded.playbook);
    let texts = sources.redacted_texts();

    let base = RunInput {
        run_id: String::new(),
        now: chrono::Utc::now(),
        dry_run: false,
        vars: playbook.vars.clone(),
        input: None,
        selection: Selection::default(),
    };
    let begin = Instant::now();
    for i in 0..PAGES {
        let now = chrono::Utc::now();
        let alert = format!("alert-{i}");
        let input = RunInput {
            run_id: new_run_id(now),
            now,
            input: Some(serde_json::json!({ "alert": alert })),
            ..base.clone()
        };
        let intake = pager
            .start("bench", playbook.clone(), input, texts.clone(), &alert)
            .await
            .expect("the page starts");
        assert!(matches!(intake, Intake::Started { .. }), "{intake:?}");
    }
    let intake = begin.elapsed();
    let settled = Instant::now();
    while server.placed_calls().len() < PAGES || server.callbacks().len() < 2 * PAGES {
        assert!(settled.elapsed() < HANG, "the first rounds did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let placed = settled.elapsed();
    // Let the last answers and callbacks be recorded (not measured).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let active = pager.active().await.expect("active pages").len();
    assert_eq!(active, PAGES, "every page waits");

    let before = cpu();
    let start = Instant::now();
    tokio::time::sleep(IDLE).await;
    let used = cpu() - before;
    let waited = start.elapsed();
    let rss = rss_kib();
    assert_eq!(
        server.placed_calls().len(),
        PAGES,
        "no second round, no repeat"
    );
    let share = used.as_secs_f64() / waited.as_secs_f64() * 100.0;
    eprintln!(
        "{PAGES} pages started in {:.2} s ({:.2} ms each, recorded before the answer); \
         first rounds placed and their callbacks in after {:.2} s more",
        intake.as_secs_f64(),
        intake.as_secs_f64() * 1000.0 / PAGES as f64,
        placed.as_secs_f64(),
    );
    eprintln!(
        "{PAGES} pages waiting (3 steps, every 1h): {:.0} ms of CPU in {:.1} s = {share:.2} % \
         of one core (tick {:.0} ms); resident memory {:.1} MiB",
        used.as_secs_f64() * 1000.0,
        waited.as_secs_f64(),
        1000.0 / clock_ticks() as f64,
        rss as f64 / 1024.0,
    );
    stop.cancel();
    pager.shutdown(Duration::from_secs(5)).await;
    assert!(
        share < 1.0,
        "{share:.2} % of a core while waiting: over 1 %"
    );
}

/// This process's user + system CPU time so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().expect("a tick count"))
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
