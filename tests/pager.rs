//! The engine's `Pager`, driven as `callbook serve` hosts it: many pages at
//! once in one process, one login and one rate limiter for the account, one
//! callback sink routing every callback to its page, and pages that survive
//! a restart. Against the test server on 127.0.0.1, with the pager's sink
//! served by the crate's own callback listener.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callbook::diag::Sources;
use callbook::engine::{EngineError, HandAck, Intake, Pager, PagerObserver, PagerOptions};
use callbook::listener::{CallbackSecret, CallbackSink as _, PATH_CALLS, PATH_INBOUND, PATH_SMS};
use callbook::model::callback::{CallEvent, Callback, InboundSms, RawFields};
use callbook::model::{CallState, RunState, Status};
use callbook::plan::{RunInput, Selection, new_run_id};
use callbook::playbook::{self, Playbook};
use callbook::provider::{Credentials, Secret};
use callbook::report::Report;
use callbook::store::sqlite::SqliteStore;
use callbook::store::{RunQuery, Store as _};
use fonestorm_testserver::{Config, HookMethod, Hooks, SmsHook, TestServer, UrlHook};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "pager-secret-0123456789";
const FONENUMBER: &str = "3214991000";
/// Generous: what makes a hang fail instead of hanging.
const HANG: Duration = Duration::from_secs(60);

/// Two people, one step of two rounds with a long wait, keyed by `input.alert`.
const TWO_ROUNDS: &str = r#"version: 1
name: pager-two
caller_id: "321-499-1000"
recipients:
  - { name: P1, phone: "+1 321 499 1001" }
  - { name: P2, phone: "+1 321 499 1002" }
messages:
  m: { tts: "Page {{ input.alert }}. {{ ack.hint }}" }
rules:
  - play: m
dedup:
  key: "{{ input.alert }}"
  window: 1m
escalation:
  steps:
    - { name: primary, repeat: 2, every: 10m }
"#;

/// What the pager told its observer.
#[derive(Default)]
struct Seen {
    started: AtomicUsize,
    ended: Mutex<Vec<(String, String)>>,
    calls: Mutex<Vec<Status>>,
    dispositions: Mutex<Vec<String>>,
    requests: Mutex<Vec<(String, u16)>>,
}

impl PagerObserver for Seen {
    fn page_started(&self, _route: &str) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn page_ended(&self, route: &str, outcome: &str, _time_to_ack: Option<Duration>) {
        let ended = (route.to_string(), outcome.to_string());
        self.ended.lock().unwrap().push(ended);
    }
    fn call_finished(&self, _playbook: &str, status: Status) {
        self.calls.lock().unwrap().push(status);
    }
    fn disposition(&self, _playbook: &str, disposition: &str) {
        let d = disposition.to_string();
        self.dispositions.lock().unwrap().push(d);
    }
    fn provider_request(&self, endpoint: &str, code: u16) {
        let r = (endpoint.to_string(), code);
        self.requests.lock().unwrap().push(r);
    }
}

/// A test server, a store, a pager and its sink served on a local port
/// that the server's callbacks point at.
struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    pager: Pager<SqliteStore>,
    seen: Arc<Seen>,
    listening: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.listening.cancel();
    }
}

fn options(server: &TestServer, credentials: Option<Credentials>) -> PagerOptions {
    PagerOptions {
        credentials,
        base_url: Some(server.url()),
        callback_secret: CallbackSecret::new(SECRET.to_string()).unwrap(),
        journal_messages: false,
        rate_limit: None,
    }
}

fn token() -> Option<Credentials> {
    Some(Credentials::Token(Secret::new("test-token".into())))
}

async fn setup(config: Config) -> Setup {
    setup_with(config, token(), None).await
}

async fn setup_with(config: Config, credentials: Option<Credentials>, rate: Option<f64>) -> Setup {
    let server = TestServer::start(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::writable(dir.path().join("state")));
    let seen = Arc::new(Seen::default());
    let mut opts = options(&server, credentials);
    opts.rate_limit = rate;
    let pager = Pager::new(store.clone(), opts, seen.clone()).unwrap();
    let listening = serve_sink(&server, &pager).await;
    Setup {
        server,
        dir,
        store,
        pager,
        seen,
        listening,
    }
}

/// Serves the pager's sink on a free port and points the server's callbacks at it.
async fn serve_sink(server: &TestServer, pager: &Pager<SqliteStore>) -> CancellationToken {
    let listener = callbook::listener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let stop = CancellationToken::new();
    let secret = CallbackSecret::new(SECRET.to_string()).unwrap();
    tokio::spawn(listener.serve(secret, pager.sink(), stop.clone()));
    let ours = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        Some(UrlHook::new(url, HookMethod::Json).basic_auth("callbook", SECRET))
    };
    let sms = ours(PATH_SMS).map(SmsHook::Url);
    let hooks = Hooks {
        send_notify: ours(PATH_CALLS),
        receive_notify: ours(PATH_INBOUND),
        sms,
    };
    server.set_hooks(FONENUMBER, hooks);
    stop
}

/// The playbook `yaml`, loaded from a file in `dir`, and its sources.
fn load(dir: &Path, name: &str, yaml: &str) -> (Arc<Playbook>, Vec<(String, String)>) {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    let mut sources = Sources::default();
    match playbook::load(&path, &mut sources) {
        Ok(loaded) => (Arc::new(loaded.playbook), sources.redacted_texts()),
        Err(d) => panic!("the playbook loads: {d:?}"),
    }
}

fn input(playbook: &Playbook, alert: &str) -> RunInput {
    let now = chrono::Utc::now();
    // A fresh run id each time: the pager decides by key, not by id.
    RunInput {
        input: Some(serde_json::json!({ "alert": alert })),
        vars: playbook.vars.clone(),
        selection: Selection::default(),
        dry_run: false,
        run_id: new_run_id(now),
        now,
    }
}

impl Setup {
    async fn start(
        &self,
        playbook: &(Arc<Playbook>, Vec<(String, String)>),
        alert: &str,
    ) -> Intake {
        self.pager
            .start(
                "ops",
                playbook.0.clone(),
                input(&playbook.0, alert),
                playbook.1.clone(),
                alert,
            )
            .await
            .unwrap()
    }

    /// The alert `alert` of `route` resolved: the page cancelled, if any.
    async fn resolve(
        &self,
        playbook: &(Arc<Playbook>, Vec<(String, String)>),
        route: &str,
        alert: &str,
    ) -> Option<String> {
        let input = input(&playbook.0, alert);
        let resolved = self.pager.resolve(route, &playbook.0, &input, alert);
        resolved.await.unwrap()
    }

    /// Two pages of `playbook`, for alerts `disk-a` and `disk-b`.
    async fn two_pages(
        &self,
        playbook: &(Arc<Playbook>, Vec<(String, String)>),
    ) -> (String, String) {
        let a = started(&self.start(playbook, "disk-a").await);
        (a, started(&self.start(playbook, "disk-b").await))
    }

    /// Starts a page that must be refused; why.
    async fn refused(&self, playbook: &(Arc<Playbook>, Vec<(String, String)>)) -> EngineError {
        let (book, sources) = playbook;
        let refused = self
            .pager
            .start(
                "ops",
                book.clone(),
                input(book, "disk-a"),
                sources.clone(),
                "disk-a",
            )
            .await;
        match refused {
            Err(e) => e,
            Ok(intake) => panic!("not refused: {intake:?}"),
        }
    }

    async fn report(&self, run_id: &str) -> Report {
        self.pager.report(run_id).await.unwrap().unwrap()
    }

    async fn outcome(&self, run_id: &str) -> Option<String> {
        self.report(run_id).await.escalation.and_then(|e| e.outcome)
    }

    /// Waits (generously) until page `run_id` ended; its outcome.
    async fn ended(&self, run_id: &str) -> String {
        let start = Instant::now();
        loop {
            let going = self
                .pager
                .active()
                .await
                .unwrap()
                .iter()
                .any(|p| p.run_id == run_id);
            if !going && let Some(outcome) = self.outcome(run_id).await {
                return outcome;
            }
            assert!(start.elapsed() < HANG, "page {run_id} did not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (generously) until the server answered `n` call requests.
    async fn answered(&self, n: usize) {
        until(&format!("{n} calls answered"), || {
            self.server
                .requests()
                .iter()
                .filter(|r| r.path == "/calls" && r.status.is_some())
                .count()
                >= n
        })
        .await;
    }
}

/// A pager whose one page (of [`TWO_ROUNDS`], alert `disk-a`) placed its first round.
async fn one_page() -> (Setup, (Arc<Playbook>, Vec<(String, String)>), String) {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let id = started(&t.start(&playbook, "disk-a").await);
    t.answered(2).await;
    (t, playbook, id)
}

/// The test server answering each call request after `ms` milliseconds.
fn slow(ms: u64) -> Config {
    Config {
        latency: Duration::from_millis(ms),
        ..Config::default()
    }
}

/// Waits (generously) until `ok`.
async fn until(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < HANG, "not within {HANG:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn started(intake: &Intake) -> String {
    match intake {
        Intake::Started { run_id } => run_id.clone(),
        other => panic!("not started: {other:?}"),
    }
}

/// The short code of page `run_id`.
async fn code(store: &SqliteStore, run_id: &str) -> String {
    store.page_code(run_id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_of_one_playbook_page_at_once() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);

    let (a, b) = t.two_pages(&playbook).await;

    assert_ne!(a, b);
    t.answered(4).await;
    let active = t.pager.active().await.unwrap();
    let keys: Vec<&str> = active.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{active:?}");
    assert!(keys.contains(&"ops:disk-a") && keys.contains(&"ops:disk-b"));
    assert!(active.iter().all(|p| p.route == "ops"));
    // Each page called both people once, in its first round.
    let counts = t.server.placed_counts();
    assert_eq!(counts.values().sum::<usize>(), 4, "{counts:?}");
    assert_eq!(t.seen.started.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_is_deduplicated_and_nobody_is_called_twice() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);

    let first = started(&t.start(&playbook, "disk-a").await);
    let second = t.start(&playbook, "disk-a").await;

    assert_eq!(
        second,
        Intake::Deduplicated {
            run_id: first.clone()
        }
    );
    t.answered(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.server.placed_calls().len(), 2);
    let runs = t.store.runs(None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "the repeat recorded nothing: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_storm_of_one_key_makes_one_page() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);

    let mut starts = Vec::new();
    for _ in 0..1000 {
        let (pager, playbook) = (t.pager.clone(), playbook.clone());
        starts.push(tokio::spawn(async move {
            pager
                .start(
                    "ops",
                    playbook.0.clone(),
                    input(&playbook.0, "storm"),
                    playbook.1,
                    "storm",
                )
                .await
        }));
    }
    let mut intakes = Vec::new();
    for s in starts {
        intakes.push(s.await.unwrap().unwrap());
    }

    let pages: Vec<&Intake> = intakes
        .iter()
        .filter(|i| matches!(i, Intake::Started { .. }))
        .collect();
    assert_eq!(pages.len(), 1, "one page for one key");
    let id = started(pages[0]);
    assert!(intakes.iter().all(|i| match i {
        Intake::Started { run_id } | Intake::Deduplicated { run_id } => run_id == &id,
    }));
    t.answered(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(t.server.placed_counts().values().all(|&n| n == 1));
    assert_eq!(t.server.placed_calls().len(), 2);
    assert_eq!(t.store.runs(None, 2000).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_cancels_the_page_unsent_calls_skipped_in_flight_ones_finish() {
    let t = setup(slow(800)).await;
    let yaml = TWO_ROUNDS.replace("recipients:", "provider: { concurrency: 1 }\nrecipients:");
    let playbook = load(t.dir.path(), "two.yaml", &yaml);
    let id = started(&t.start(&playbook, "disk-a").await);
    // The first call's request is in flight (the server takes 800 ms).
    until("the first call sent", || {
        t.server.requests().iter().any(|r| r.path == "/calls")
    })
    .await;

    let resolved = t.resolve(&playbook, "ops", "disk-a").await;

    assert_eq!(resolved.as_deref(), Some(id.as_str()));
    assert_eq!(t.ended(&id).await, "cancelled");
    let report = t.report(&id).await;
    let placed: Vec<_> = report
        .calls
        .iter()
        .filter(|c| c.status == Status::Placed)
        .collect();
    assert_eq!(placed.len(), 1, "the call in flight finished: {report:?}");
    let skipped = report
        .calls
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .filter(|c| c.reason.as_deref() == Some("cancelled: the alert resolved"))
        .count();
    assert_eq!(skipped, 3, "{:?}", report.calls);
    assert_eq!(t.server.placed_calls().len(), 1);
    // A cancelled page holds no dedup window: the alert firing again pages.
    started(&t.start(&playbook, "disk-a").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_of_no_page_going_is_none() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    started(&t.start(&playbook, "disk-a").await);

    let resolved = t.resolve(&playbook, "ops", "disk-b").await;

    assert_eq!(resolved, None);
    let other_route = t.resolve(&playbook, "db", "disk-a").await;
    assert_eq!(other_route, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_with_a_short_code_acknowledges_only_that_page() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let (a, b) = t.two_pages(&playbook).await;
    t.answered(4).await;
    let code_b = code(&t.store, &b).await;

    let sms = t
        .server
        .simulate_sms_async("+1 321 499 1002", FONENUMBER, &format!("ack {code_b}"))
        .await
        .unwrap();

    assert_eq!(sms.receiver_status, Some(200), "{sms:?}");
    assert_eq!(t.ended(&b).await, "acknowledged");
    let ack = t.report(&b).await.escalation.unwrap().ack.unwrap();
    assert_eq!((ack.by.as_str(), ack.via.as_str()), ("P2", "sms"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.outcome(&a).await, None, "page a goes on");
    assert!(
        t.pager
            .active()
            .await
            .unwrap()
            .iter()
            .any(|p| p.run_id == a)
    );
}

/// The rule for a bare word (`docs/pages.md`): it acknowledges every page
/// still going that has already called the sender on that caller id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_sms_acknowledges_every_page_that_called_the_sender() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let only_p2 = TWO_ROUNDS
        .replace("name: pager-two", "name: pager-p1")
        .replace("  - { name: P2, phone: \"+1 321 499 1002\" }\n", "");
    let p1_only = load(t.dir.path(), "p1.yaml", &only_p2);
    let a = started(&t.start(&playbook, "disk-a").await);
    let b = started(&t.start(&p1_only, "disk-b").await);
    t.answered(3).await;

    let sms = t
        .server
        .simulate_sms_async("+1 321 499 1002", FONENUMBER, "1")
        .await
        .unwrap();

    assert_eq!(sms.receiver_status, Some(200), "{sms:?}");
    assert_eq!(t.ended(&a).await, "acknowledged");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.outcome(&b).await, None, "page b never called P2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_ack_ends_the_page_at_once_and_unknown_or_ended_runs_say_so() {
    let (t, _playbook, id) = one_page().await;

    let acked = t
        .pager
        .ack(&id, "Dana", Some("on it".into()))
        .await
        .unwrap();

    assert_eq!(acked, HandAck::Acknowledged);
    let at = Instant::now();
    assert_eq!(t.ended(&id).await, "acknowledged");
    assert!(at.elapsed() < Duration::from_secs(5), "{:?}", at.elapsed());
    let ack = t.report(&id).await.escalation.unwrap().ack.unwrap();
    assert_eq!((ack.by.as_str(), ack.via.as_str()), ("Dana", "manual"));
    assert_eq!(
        t.pager.ack(&id, "Eve", None).await.unwrap(),
        HandAck::Ended,
        "an ended page"
    );
    assert_eq!(
        t.pager.ack("no-such-run", "Eve", None).await.unwrap(),
        HandAck::Unknown
    );
    assert!(t.pager.report("no-such-run").await.unwrap().is_none());
    assert_eq!(
        t.seen.ended.lock().unwrap().as_slice(),
        [("ops".to_string(), "acknowledged".to_string())]
    );
}

/// `callbook ack` from another process: found by the pager's one look per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_recorded_by_another_process_ends_the_page() {
    let (t, _playbook, id) = one_page().await;
    let other = SqliteStore::writable(t.dir.path().join("state"));

    let record = callbook::model::AckRecord {
        by: "Dana".into(),
        via: callbook::model::AckVia::Manual,
        at: callbook::model::Timestamp::now(),
        text: None,
    };
    other.record_ack(&id, record).await.unwrap();

    assert_eq!(t.ended(&id).await, "acknowledged");
    assert_eq!(t.server.placed_calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_pages_at_once_keep_the_account_limit_with_one_login() {
    let t = setup_with(
        Config {
            rate_limit: None,
            ..Config::default()
        },
        Some(Credentials::Login {
            username: "callbook".into(),
            password: Secret::new("s3cret-test-password".into()),
        }),
        None,
    )
    .await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let mut starts = Vec::new();
    for i in 0..20 {
        let (pager, playbook) = (t.pager.clone(), playbook.clone());
        starts.push(tokio::spawn(async move {
            let key = format!("alert-{i}");
            pager
                .start(
                    "ops",
                    playbook.0.clone(),
                    input(&playbook.0, &key),
                    playbook.1,
                    &key,
                )
                .await
        }));
    }
    for s in starts {
        started(&s.await.unwrap().unwrap());
    }

    t.answered(40).await;
    assert_eq!(t.server.auth_count(), 1, "one login for every page");
    assert_eq!(t.server.count_429(), 0);
    let peak = t.server.max_requests_in_any_window(Duration::from_secs(1));
    assert!(peak <= 10, "{peak} requests within one second");
    assert!(t.server.placed_counts().values().all(|&n| n == 20));
    let requests = t.seen.requests.lock().unwrap().clone();
    assert_eq!(requests.iter().filter(|(e, _)| e == "auth").count(), 1);
    assert_eq!(
        requests
            .iter()
            .filter(|(e, c)| e == "calls" && *c == 201)
            .count(),
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_shut_down_goes_on_after_a_restart_and_nobody_is_called_twice() {
    let t = setup(Config::default()).await;
    let yaml = TWO_ROUNDS.replace("every: 10m", "every: 3s");
    let playbook = load(t.dir.path(), "two.yaml", &yaml);
    let id = started(&t.start(&playbook, "disk-a").await);
    t.answered(2).await;

    t.pager.shutdown(Duration::from_secs(10)).await;

    let run = t
        .store
        .find_run(RunQuery::Id(id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.state, RunState::Interrupted);
    assert!(t.pager.active().await.unwrap().is_empty());
    let refused = t
        .pager
        .start(
            "ops",
            playbook.0.clone(),
            input(&playbook.0, "disk-b"),
            playbook.1.clone(),
            "disk-b",
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, EngineError::ShuttingDown), "{refused:?}");
    let seen = Arc::new(Seen::default());
    let again = Pager::new(t.store.clone(), options(&t.server, token()), seen).unwrap();
    let _listening = serve_sink(&t.server, &again).await;
    assert_eq!(again.resume_going().await.unwrap(), 1);
    assert_eq!(again.active().await.unwrap()[0].key, "ops:disk-a");
    assert_eq!(again.resume_going().await.unwrap(), 0, "never twice");

    let start = Instant::now();
    let outcome = loop {
        let going = again.active().await.unwrap().iter().any(|p| p.run_id == id);
        let report = again.report(&id).await.unwrap().unwrap();
        let outcome = report.escalation.and_then(|e| e.outcome);
        if !going && outcome.is_some() {
            break outcome;
        }
        assert!(start.elapsed() < HANG, "the resumed page did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(outcome.as_deref(), Some("exhausted"));
    assert_eq!(t.server.placed_calls().len(), 4, "two rounds of two");
    assert!(t.server.placed_counts().values().all(|&n| n == 2));
    let rounds = t.store.page_rounds(&id).await.unwrap();
    assert_eq!(rounds.len(), 2);
    let gap = rounds[1].started_at.0 - rounds[0].started_at.0;
    assert!(
        gap >= chrono::Duration::seconds(3),
        "the wait was honoured: {gap}"
    );
    let calls = t.store.calls(&id).await.unwrap();
    assert!(
        calls.iter().all(|c| c.state == CallState::Placed),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_error_records_nothing_and_calls_nobody() {
    let t = setup(Config::default()).await;
    let yaml = TWO_ROUNDS.replace(
        "Page {{ input.alert }}",
        "Page {{ input.alert.missing.deeper }}",
    );
    let playbook = load(t.dir.path(), "bad.yaml", &yaml);

    let refused = t.refused(&playbook).await;

    assert!(matches!(refused, EngineError::Plan(_)), "{refused:?}");
    assert!(t.store.runs(None, 10).await.unwrap().is_empty());
    assert!(t.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_calls_records_nothing() {
    let t = setup(Config::default()).await;
    let yaml = TWO_ROUNDS.replace("recipients:", "limits: { max_calls: 3 }\nrecipients:");
    let playbook = load(t.dir.path(), "big.yaml", &yaml);

    let refused = t.refused(&playbook).await;

    assert!(
        matches!(refused, EngineError::TooManyCalls(_)),
        "{refused:?}"
    );
    assert!(t.store.runs(None, 10).await.unwrap().is_empty());
    assert!(t.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_every_start_is_refused() {
    let t = setup_with(Config::default(), None, None).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);

    let refused = t.refused(&playbook).await;

    assert!(matches!(refused, EngineError::NoCredentials), "{refused:?}");
    assert!(t.store.runs(None, 10).await.unwrap().is_empty());
}

fn fields(pairs: &[(&str, &str)]) -> RawFields {
    let mut raw = RawFields::new();
    for (k, v) in pairs {
        raw.insert(k, v).unwrap();
    }
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_for_unknown_calls_and_duplicates_change_nothing() {
    // The test sends the END callbacks itself.
    let late = Config {
        callback_delay: Duration::from_secs(3600),
        ..Config::default()
    };
    let t = setup(late).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let id = started(&t.start(&playbook, "disk-a").await);
    t.answered(2).await;
    let sink = t.pager.sink();
    let end = |uid: &str, to: &str, disposition: &str| {
        Callback::Call(
            CallEvent::from_fields(fields(&[
                ("uid", uid),
                ("status", "END"),
                ("disposition", disposition),
                ("billable_seconds", "12"),
                ("from", FONENUMBER),
                ("to", to),
                ("direction", "OUTBOUND"),
            ]))
            .unwrap(),
        )
    };

    // A call no page placed, to nobody's number.
    sink.receive(end("no-such-call", "2125550000", "ANSWERED"))
        .await
        .unwrap();
    let report = t.report(&id).await;
    assert!(report.calls.iter().all(|c| c.disposition.is_none()));
    // The first END of a call counts; a duplicate (or a contradicting one) changes nothing.
    let uid = report.calls[0].call_id.clone().unwrap();
    let to = report.calls[0].to.clone();
    sink.receive(end(&uid, &to, "NO_ANSWER")).await.unwrap();
    sink.receive(end(&uid, &to, "ANSWERED")).await.unwrap();

    let report = t.report(&id).await;
    assert_eq!(report.calls[0].disposition.as_deref(), Some("NO_ANSWER"));
    assert_eq!(*t.seen.dispositions.lock().unwrap(), ["NO_ANSWER"]);
    // Every callback was recorded, matched or not.
    assert_eq!(t.outcome(&id).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_for_an_ended_page_or_from_a_stranger_acknowledges_nothing() {
    let t = setup(Config::default()).await;
    let playbook = load(t.dir.path(), "two.yaml", TWO_ROUNDS);
    let a = started(&t.start(&playbook, "disk-a").await);
    t.answered(2).await;
    let code_a = code(&t.store, &a).await;
    assert_eq!(
        t.pager.ack(&a, "Dana", None).await.unwrap(),
        HandAck::Acknowledged
    );
    assert_eq!(t.ended(&a).await, "acknowledged");
    let b = started(&t.start(&playbook, "disk-b").await);
    t.answered(4).await;
    let sink = t.pager.sink();
    let sms = |from: &str, text: &str| {
        Callback::Sms(
            InboundSms::from_fields(fields(&[
                ("from", from),
                ("to", FONENUMBER),
                ("message", text),
            ]))
            .unwrap(),
        )
    };

    // The ended page's code, from one of its people: page b is not acknowledged.
    sink.receive(sms("+1 321 499 1001", &format!("1 {code_a}")))
        .await
        .unwrap();
    // A stranger's bare ack.
    sink.receive(sms("+1 212 555 0000", "1")).await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.outcome(&b).await, None);
    let ack = t.report(&a).await.escalation.unwrap().ack.unwrap();
    assert_eq!(ack.by, "Dana", "the first ack stays the one that counts");
}

/// A journal of format 3 (before pages had a route) is migrated when a
/// pager opens it: its pages are kept (they were `run`'s, so the pager does
/// not resume them), and new pages record their route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_format_3_is_migrated_and_keeps_its_pages() {
    let (t, playbook, old) = one_page().await;
    t.pager.shutdown(Duration::from_secs(10)).await;
    let journal = t.dir.path().join("state/journal.sqlite3");
    // Make it what format 3 wrote.
    let conn = rusqlite::Connection::open(&journal).unwrap();
    conn.execute_batch(
        "DROP INDEX pages_served_going; DROP INDEX acks_by_run;
         ALTER TABLE pages DROP COLUMN route;
         UPDATE meta SET value = '3' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let store = Arc::new(SqliteStore::writable(t.dir.path().join("state")));
    let seen = Arc::new(Seen::default());
    let again = Pager::new(store.clone(), options(&t.server, token()), seen).unwrap();
    let _listening = serve_sink(&t.server, &again).await;

    assert_eq!(again.resume_going().await.unwrap(), 0);

    let conn = rusqlite::Connection::open(&journal).unwrap();
    let mut format = conn
        .prepare("SELECT value FROM meta WHERE key = 'schema_version'")
        .unwrap();
    let version: String = format.query_row([], |r| r.get(0)).unwrap();
    drop(format);
    assert_eq!(version, "4");
    let report = again.report(&old).await.unwrap().unwrap();
    assert_eq!(report.calls.len(), 4, "the old page is kept");
    let input = input(&playbook.0, "disk-a");
    let new = again
        .start(
            "ops",
            playbook.0.clone(),
            input,
            playbook.1.clone(),
            "disk-a",
        )
        .await
        .unwrap();
    let new = started(&new);
    let route: Option<String> = conn
        .query_row("SELECT route FROM pages WHERE run_id = ?1", [&new], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(route.as_deref(), Some("ops"));
}

/// A broadcast (no `escalation`) runs once per key: while one with the key
/// is going, the same alert is a repeat; it runs in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_runs_once_per_key_in_the_background() {
    let t = setup(slow(500)).await;
    let yaml = TWO_ROUNDS
        .replace("name: pager-two", "name: pager-broadcast")
        .replace("  window: 1m", "  window: 1s")
        .replace(" {{ ack.hint }}", "");
    let yaml = &yaml[..yaml.find("escalation:").unwrap()];
    let playbook = load(t.dir.path(), "broadcast.yaml", yaml);

    let first = started(&t.start(&playbook, "disk-a").await);
    let again = t.start(&playbook, "disk-a").await;
    let other = started(&t.start(&playbook, "disk-b").await);

    assert_eq!(
        again,
        Intake::Deduplicated {
            run_id: first.clone()
        }
    );
    for id in [&first, &other] {
        let start = Instant::now();
        loop {
            let run = t.store.find_run(RunQuery::Id(id.clone())).await.unwrap();
            if run.is_some_and(|r| r.state == RunState::Finished) {
                break;
            }
            assert!(start.elapsed() < HANG, "broadcast {id} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(t.server.placed_calls().len(), 4, "two people, two keys");
    let report = t.report(&first).await;
    assert_eq!(report.totals.placed, 2);
    assert!(report.escalation.is_none());
    assert!(t.pager.active().await.unwrap().is_empty());
}
