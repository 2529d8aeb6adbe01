//! The engine driven directly, as a long-running server would host it: no
//! binary, no command-line types, a temporary store, the test server, an
//! observer of its own and a cancellation token.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use callbook::diag::Sources;
use callbook::engine::{self, EngineError, Observer, RunOptions, StopReason};
use callbook::model::{CallState, Outcome, RunState, Status, Timestamp};
use callbook::plan::{RunInput, Selection, new_run_id};
use callbook::playbook::{self, Playbook};
use callbook::provider::{Credentials, Secret};
use callbook::store::sqlite::SqliteStore;
use callbook::store::{RunQuery, Store};
use fonestorm_testserver::{Config, TestServer};
use tokio_util::sync::CancellationToken;

/// What the engine told its observer.
#[derive(Default)]
struct Seen {
    confirm: bool,
    asked: Mutex<Vec<usize>>,
    started: Mutex<Vec<usize>>,
    finished: Mutex<Vec<(String, Status)>>,
    done: AtomicBool,
}

impl Seen {
    fn confirming(confirm: bool) -> Arc<Seen> {
        Arc::new(Seen {
            confirm,
            ..Seen::default()
        })
    }
}

impl Observer for Seen {
    fn confirm(&self, _playbook: &str, _caller_id: &str, calls: usize) -> bool {
        self.asked.lock().unwrap().push(calls);
        self.confirm
    }

    fn started(&self, total: usize) {
        self.started.lock().unwrap().push(total);
    }

    fn call_finished(&self, recipient: &str, _to: &str, outcome: &Outcome) {
        let seen = (recipient.to_string(), outcome.status);
        self.finished.lock().unwrap().push(seen);
    }

    fn done(&self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn team() -> Playbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/live/team.yaml");
    match playbook::load(&path, &mut Sources::default()) {
        Ok(loaded) => loaded.playbook,
        Err(d) => panic!("the fixture loads: {d:?}"),
    }
}

fn input(playbook: &Playbook) -> RunInput {
    let now = chrono::Utc::now();
    RunInput {
        run_id: new_run_id(now),
        now,
        dry_run: false,
        vars: playbook.vars.clone(),
        input: None,
        selection: Selection::default(),
    }
}

/// A test server, a store in a temporary directory, the team playbook and a fresh run's input.
struct Setup {
    server: TestServer,
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    playbook: Playbook,
    input: RunInput,
}

fn setup() -> Setup {
    let server = TestServer::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::writable(dir.path().join("state")));
    let playbook = team();
    let input = input(&playbook);
    Setup {
        server,
        _dir: dir,
        store,
        playbook,
        input,
    }
}

impl Setup {
    /// Runs the engine as a server would: its own observer and token.
    async fn run(
        &self,
        observer: Arc<Seen>,
        cancel: CancellationToken,
    ) -> Result<engine::Finished, EngineError> {
        engine::run(
            self.store.clone(),
            &self.playbook,
            self.input.clone(),
            &options(&self.server),
            observer,
            cancel,
        )
        .await
    }
}

fn options(server: &TestServer) -> RunOptions {
    RunOptions {
        base_url: Some(server.url()),
        credentials: Some(Credentials::Token(Secret::new("test-token".into()))),
        ..RunOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_places_every_call_and_records_each() {
    let t = setup();
    let seen = Seen::confirming(true);

    let finished = t.run(seen.clone(), CancellationToken::new()).await.unwrap();

    assert_eq!(finished.stop, None);
    assert_eq!(finished.report.totals.placed, 6);
    assert_eq!(t.server.placed_calls().len(), 6);
    assert_eq!(*seen.asked.lock().unwrap(), [6]);
    assert_eq!(*seen.started.lock().unwrap(), [6]);
    assert_eq!(seen.finished.lock().unwrap().len(), 6);
    assert!(seen.done.load(Ordering::SeqCst));
    let run = t.store.find_run(RunQuery::Id(t.input.run_id.clone()));
    assert_eq!(
        run.await.unwrap().map(|r| r.state),
        Some(RunState::Finished)
    );
    let calls = t.store.calls(&t.input.run_id).await.unwrap();
    assert_eq!(calls.len(), 6);
    assert!(
        calls.iter().all(|c| c.state == CallState::Placed),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_starts_no_call_and_stays_resumable() {
    let t = setup();
    let cancel = CancellationToken::new();
    cancel.cancel();

    let finished = t.run(Seen::confirming(true), cancel).await.unwrap();

    assert_eq!(finished.stop, Some(StopReason::Interrupted));
    assert_eq!(finished.report.totals.failed, 6);
    assert!(t.server.placed_calls().is_empty());
    let run = t
        .store
        .find_run(RunQuery::LatestUnfinished(t.playbook.name.clone()));
    let run = run.await.unwrap().unwrap();
    assert_eq!(run.id, t.input.run_id);
    assert_eq!(run.state, RunState::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_confirmation_calls_nobody_and_is_recorded_as_refused() {
    let t = setup();

    let refused = t
        .run(Seen::confirming(false), CancellationToken::new())
        .await
        .unwrap_err();

    assert!(matches!(refused, EngineError::NotConfirmed), "{refused:?}");
    assert!(t.server.requests().is_empty());
    let run = t.store.find_run(RunQuery::Id(t.input.run_id.clone()));
    assert_eq!(run.await.unwrap().map(|r| r.state), Some(RunState::Refused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_playbook_is_refused_while_the_first_holds_the_lock() {
    let t = setup();
    let held = t
        .store
        .lock(&t.playbook.name, Timestamp::now())
        .await
        .unwrap();

    let refused = t
        .run(Seen::confirming(true), CancellationToken::new())
        .await
        .unwrap_err();

    assert!(matches!(refused, EngineError::Lock(_)), "{refused:?}");
    assert!(refused.to_string().contains("is in progress"), "{refused}");
    assert!(t.server.requests().is_empty());
    drop(held);
}
