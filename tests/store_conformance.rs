//! The store conformance suite: every promise of the [`Store`] trait's
//! documentation, checked through the trait alone.
//!
//! Each check is an `async fn` generic over the store, taking a factory that
//! makes a fresh, empty store in a place of its own (and can open that place
//! again, as a restarted process would). [`backend!`] instantiates every check
//! for one backend: a new backend joins with one line and its factory. No
//! check knows what is behind the trait (no SQL, no file), so a backend
//! passes or it does not.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use callbook::model::{
    AckRecord, AckResult, AckVia, CallRecord, CallSlot, CallState, Outcome, PageRecord,
    RoundRecord, RunRecord, RunState, ServiceType, Status, Timestamp,
};
use callbook::store::sqlite::SqliteStore;
use callbook::store::{DedupQuery, LockHolder, RunQuery, Store, StoreError};

/// A fresh store, the means to open its place again, and whatever keeps
/// that place alive (a temporary directory, a scratch database).
struct Place<S: Store> {
    store: Arc<S>,
    reopen: Box<dyn Fn() -> Arc<S> + Send + Sync>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl<S: Store> Place<S> {
    /// The same place opened again, as by a process started after a crash.
    fn reopen(&self) -> Arc<S> {
        (self.reopen)()
    }
}

/// Makes a fresh, empty store in a place of its own.
type Factory<S> = fn() -> Place<S>;

/// The SQLite backend: a store in a new temporary state directory.
fn sqlite() -> Place<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let again = state.clone();
    Place {
        store: Arc::new(SqliteStore::writable(state)),
        reopen: Box::new(move || Arc::new(SqliteStore::writable(again.clone()))),
        _keep: Box::new(dir),
    }
}

/// Instantiates every check of the suite for one backend: `backend!(name, factory);`.
macro_rules! backend {
    (@checks $factory:path; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let check = super::$check($factory);
                tokio::time::timeout(std::time::Duration::from_secs(120), check)
                    .await
                    .expect("the check hung");
            }
        )+
    };
    ($name:ident, $factory:path) => {
        mod $name {
            backend!(@checks $factory;
                begin_run_reads_back_run_and_plan_in_plan_order,
                begin_run_is_all_or_nothing,
                begin_run_refuses_a_run_id_already_recorded,
                a_refused_run_is_recorded_but_not_resumable,
                sending_then_finished_moves_through_the_states,
                every_outcome_is_recorded,
                not_placed_puts_a_sending_call_back_to_pending,
                not_placed_never_undoes_an_outcome,
                a_sending_call_reads_as_unknown_after_a_crash,
                skip_records_the_reason,
                reopen_and_end_run_move_the_run_state,
                find_run_by_id_whatever_the_state,
                find_run_latest_unfinished_of_a_playbook,
                find_run_latest_unfinished_from_a_path,
                runs_are_newest_first_with_limit_and_filter,
                runs_count_calls_by_state,
                last_call_counts_placed_unknown_and_sending_only,
                last_call_is_per_playbook_key_and_dial,
                last_call_honours_since,
                last_call_leaves_out_except_run,
                last_call_is_the_latest,
                lock_refuses_a_second_holder_naming_the_first,
                lock_is_released_on_drop,
                lock_holder_tells_without_taking,
                locks_are_per_playbook,
                playbook_path_claims_are_recorded_and_replaced,
                begin_page_records_page_run_and_calls,
                begin_page_with_a_route_refuses_a_key_already_going,
                begin_page_without_a_route_never_refuses,
                begin_page_takes_a_key_again_once_its_page_ended,
                begin_page_is_all_or_nothing,
                round_started_and_page_rounds_in_order,
                record_ack_first_wins,
                record_ack_is_refused_after_end_page,
                record_ack_names_no_run_and_no_page,
                skip_pending_skips_only_calls_not_sent,
                end_page_records_outcome_and_run_state,
                going_codes_are_the_pages_not_ended,
                recent_page_is_the_latest_ended_in_its_window,
                record_callback_takes_any_kind_and_fields,
                set_disposition_and_call_endings,
                add_call_appends_a_call_with_its_slot,
                add_call_never_replaces_a_recorded_call,
                page_code_sources_and_outcome,
                going_page_is_the_page_still_going,
                served_pages_are_route_pages_not_ended_oldest_first,
                served_acks_are_route_pages_acknowledged_not_ended,
                concurrent_begin_page_of_one_key_makes_one_page,
                concurrent_record_ack_keeps_one_first,
                begin_page_from_two_processes_makes_one_page,
                record_ack_racing_end_page_is_consistent,
                huge_fields_round_trip,
                hostile_text_round_trips_exactly,
                unknown_run_ids_read_as_nothing,
                writes_about_unknown_runs_record_nothing,
                idx_out_of_range_changes_nothing,
                numbers_at_their_limits_round_trip_or_are_refused,
                instants_are_kept_to_the_second,
            );
        }
    };
}

backend!(sqlite_store, super::sqlite);

// ---------------------------------------------------------------------------
// Helpers

/// A whole-second instant `secs` after a fixed base (stores keep seconds).
fn at(secs: i64) -> Timestamp {
    let base: Timestamp = "2026-11-26T22:00:00Z".parse().unwrap();
    Timestamp(base.0 + chrono::Duration::seconds(secs))
}

/// Now, to the second, as a store stamps what it records itself.
fn now_secs() -> Timestamp {
    let now = Timestamp::now();
    now.to_string().parse().unwrap()
}

fn run(id: &str, playbook: &str, started: i64) -> RunRecord {
    RunRecord {
        id: id.into(),
        playbook: playbook.into(),
        path: format!("/etc/callbook/{playbook}.yaml"),
        now: at(started),
        started_at: at(started),
        finished_at: None,
        state: RunState::Running,
        caller_id: Some("13214991000".into()),
        pid: Some(std::process::id()),
        fingerprint_version: callbook::model::FINGERPRINT_VERSION,
    }
}

fn call(idx: usize, recipient: &str, to: &str, key: Option<&str>) -> CallRecord {
    CallRecord {
        idx,
        recipient: recipient.into(),
        to: to.into(),
        rule: Some("on-call".into()),
        service_type: Some(ServiceType::Tts),
        service_id: None,
        fingerprint: Some("f".repeat(64)),
        dedup_key: key.map(str::to_string),
        state: CallState::Pending,
        reason: None,
        call_id: None,
        attempts: 0,
        error: None,
    }
}

fn plan(n: usize) -> Vec<CallRecord> {
    (0..n)
        .map(|i| call(i, &format!("R{i}"), &format!("1321499100{i}"), Some("k")))
        .collect()
}

fn slot(step: &str, round: u32, at_offset: u64) -> CallSlot {
    CallSlot {
        step: step.into(),
        round,
        at_offset,
    }
}

fn page(run_id: &str, code: &str, key: &str, route: Option<&str>) -> PageRecord {
    PageRecord {
        run_id: run_id.into(),
        code: code.into(),
        dedup_key: key.into(),
        sources: format!("{{\"playbook\":\"{run_id}\"}}"),
        route: route.map(str::to_string),
    }
}

fn ladder(n: usize) -> Vec<(CallRecord, CallSlot)> {
    plan(n)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, slot("primary", i as u32 + 1, 60 * i as u64)))
        .collect()
}

fn ack(by: &str, secs: i64) -> AckRecord {
    AckRecord {
        by: by.into(),
        via: AckVia::Sms,
        at: at(secs),
        text: Some(format!("ack from {by}")),
    }
}

fn placed(call_id: &str, attempts: u32) -> Outcome {
    Outcome {
        status: Status::Placed,
        call_id: Some(call_id.into()),
        attempts,
        error: None,
    }
}

fn dedup(playbook: &str, key: &str, dial: &str, since: Timestamp) -> DedupQuery {
    DedupQuery {
        playbook: playbook.into(),
        key: key.into(),
        dial: dial.into(),
        since,
        except_run: None,
    }
}

fn long_ago() -> Timestamp {
    Timestamp(Timestamp::now().0 - chrono::Duration::hours(1))
}

/// A fresh, ready store.
async fn fresh<S: Store>(make: Factory<S>) -> Place<S> {
    let place = make();
    place.store.ready().await.unwrap();
    place
}

/// A fresh store holding run `r1` of playbook `p` with `n` pending calls.
async fn with_run<S: Store>(make: Factory<S>, n: usize) -> Place<S> {
    let place = fresh(make).await;
    place
        .store
        .begin_run(run("r1", "p", 0), plan(n))
        .await
        .unwrap();
    place
}

/// A fresh store holding page `r1` of playbook `p` (key `k`, route `/alert`).
async fn with_page<S: Store>(make: Factory<S>, n: usize) -> Place<S> {
    let place = fresh(make).await;
    let begun = place
        .store
        .begin_page(
            run("r1", "p", 0),
            page("r1", "AB12", "k", Some("/alert")),
            ladder(n),
        )
        .await
        .unwrap();
    assert_eq!(begun, None);
    place
}

async fn states<S: Store>(store: &S, run_id: &str) -> Vec<CallState> {
    let calls = store.calls(run_id).await.unwrap();
    calls.into_iter().map(|c| c.state).collect()
}

// ---------------------------------------------------------------------------
// Runs and their plans

async fn begin_run_reads_back_run_and_plan_in_plan_order<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let mut calls = plan(12);
    calls[3].reason = Some("duplicate of R1".into());
    calls[3].state = CallState::Skipped;
    calls[5].service_type = Some(ServiceType::SoundFile);
    calls[5].dedup_key = None;
    calls[5].rule = None;
    calls[5].fingerprint = None;
    calls[7].service_id = Some("rendered message".into());
    let mut reversed = calls.clone();
    reversed.reverse();
    let record = run("r1", "p", 0);
    place
        .store
        .begin_run(record.clone(), reversed)
        .await
        .unwrap();
    assert_eq!(place.store.calls("r1").await.unwrap(), calls);
    let found = place.store.find_run(RunQuery::Id("r1".into())).await;
    assert_eq!(found.unwrap(), Some(record));
}

async fn begin_run_is_all_or_nothing<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    // Two calls at one index: the plan cannot be recorded, so nothing is.
    let mut calls = plan(3);
    calls[2].idx = 1;
    let refused = place.store.begin_run(run("r1", "p", 0), calls).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        place
            .store
            .find_run(RunQuery::Id("r1".into()))
            .await
            .unwrap(),
        None
    );
    assert!(place.store.calls("r1").await.unwrap().is_empty());
    assert!(place.store.runs(None, 10).await.unwrap().is_empty());
    // And the id is still free.
    place
        .store
        .begin_run(run("r1", "p", 0), plan(3))
        .await
        .unwrap();
    assert_eq!(place.store.calls("r1").await.unwrap(), plan(3));
}

async fn begin_run_refuses_a_run_id_already_recorded<S: Store>(make: Factory<S>) {
    let place = with_run(make, 2).await;
    let again = place.store.begin_run(run("r1", "other", 5), plan(4)).await;
    assert!(again.is_err(), "{again:?}");
    let found = place
        .store
        .find_run(RunQuery::Id("r1".into()))
        .await
        .unwrap();
    assert_eq!(found, Some(run("r1", "p", 0)));
    assert_eq!(place.store.calls("r1").await.unwrap(), plan(2));
}

async fn a_refused_run_is_recorded_but_not_resumable<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let mut refused = run("r1", "p", 0);
    refused.state = RunState::Refused;
    refused.finished_at = Some(at(1));
    place
        .store
        .begin_run(refused.clone(), plan(2))
        .await
        .unwrap();
    let found = place
        .store
        .find_run(RunQuery::Id("r1".into()))
        .await
        .unwrap();
    assert_eq!(found, Some(refused.clone()));
    let latest = RunQuery::LatestUnfinished("p".into());
    assert_eq!(place.store.find_run(latest).await.unwrap(), None);
    let from = RunQuery::LatestUnfinishedFrom(refused.path.clone());
    assert_eq!(place.store.find_run(from).await.unwrap(), None);
}

async fn sending_then_finished_moves_through_the_states<S: Store>(make: Factory<S>) {
    let place = with_run(make, 2).await;
    let store = &place.store;
    store.sending("r1", 1, 1).await.unwrap();
    let calls = store.calls("r1").await.unwrap();
    assert_eq!(calls[1].state, CallState::Sending);
    assert_eq!(calls[1].attempts, 1);
    assert_eq!(calls[0].state, CallState::Pending, "only call 1 moves");
    store.sending("r1", 1, 2).await.unwrap();
    assert_eq!(store.calls("r1").await.unwrap()[1].attempts, 2);
    store.finished("r1", 1, &placed("call-1", 2)).await.unwrap();
    let calls = store.calls("r1").await.unwrap();
    assert_eq!(calls[1].state, CallState::Placed);
    assert_eq!(calls[1].call_id.as_deref(), Some("call-1"));
    assert_eq!(calls[1].attempts, 2);
    assert_eq!(calls[1].error, None);
    assert_eq!(calls[0], plan(2)[0]);
}

async fn every_outcome_is_recorded<S: Store>(make: Factory<S>) {
    let place = with_run(make, 3).await;
    let store = &place.store;
    let failed = Outcome {
        status: Status::Failed,
        call_id: None,
        attempts: 1,
        error: Some("HTTP 400: invalid number".into()),
    };
    let unknown = Outcome {
        status: Status::Unknown,
        call_id: None,
        attempts: 3,
        error: Some("timed out".into()),
    };
    for (idx, outcome) in [(0, placed("c0", 1)), (1, failed), (2, unknown)] {
        store.sending("r1", idx, outcome.attempts).await.unwrap();
        store.finished("r1", idx, &outcome).await.unwrap();
        let got = &store.calls("r1").await.unwrap()[idx];
        assert_eq!(got.state.status(), outcome.status);
        assert_eq!(
            (&got.call_id, got.attempts, &got.error),
            (&outcome.call_id, outcome.attempts, &outcome.error)
        );
    }
    assert_eq!(
        states(store.as_ref(), "r1").await,
        [CallState::Placed, CallState::Failed, CallState::Unknown]
    );
}

async fn not_placed_puts_a_sending_call_back_to_pending<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.not_placed("r1", 0).await.unwrap();
    assert_eq!(states(store.as_ref(), "r1").await, [CallState::Pending]);
    // And it survives a restart as certainly not sent.
    let again = place.reopen();
    assert_eq!(states(again.as_ref(), "r1").await, [CallState::Pending]);
    let query = dedup("p", "k", "13214991000", long_ago());
    assert_eq!(again.last_call(query).await.unwrap(), None);
}

async fn not_placed_never_undoes_an_outcome<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.finished("r1", 0, &placed("c0", 1)).await.unwrap();
    store.not_placed("r1", 0).await.unwrap();
    assert_eq!(states(store.as_ref(), "r1").await, [CallState::Placed]);
}

async fn a_sending_call_reads_as_unknown_after_a_crash<S: Store>(make: Factory<S>) {
    let place = with_run(make, 3).await;
    place.store.sending("r1", 1, 1).await.unwrap();
    place
        .store
        .finished("r1", 0, &placed("c0", 1))
        .await
        .unwrap();
    // The process dies: nothing else is written.
    let Place {
        store,
        reopen,
        _keep,
    } = place;
    drop(store);
    let store = reopen();
    store.ready().await.unwrap();
    let calls = store.calls("r1").await.unwrap();
    let status: Vec<Status> = calls.iter().map(|c| c.state.status()).collect();
    assert_eq!(status, [Status::Placed, Status::Unknown, Status::Planned]);
    let summary = &store.runs(Some("p"), 10).await.unwrap()[0];
    assert_eq!(
        (summary.placed, summary.unknown, summary.pending),
        (1, 1, 1)
    );
    // Still resumable, and still counted by dedup.
    let latest = store.find_run(RunQuery::LatestUnfinished("p".into())).await;
    assert_eq!(latest.unwrap().map(|r| r.id), Some("r1".to_string()));
    let query = dedup("p", "k", "13214991001", long_ago());
    assert!(store.last_call(query).await.unwrap().is_some());
}

async fn skip_records_the_reason<S: Store>(make: Factory<S>) {
    let place = with_run(make, 2).await;
    place.store.skip("r1", 1, "called 3m ago").await.unwrap();
    let calls = place.store.calls("r1").await.unwrap();
    assert_eq!(calls[1].state, CallState::Skipped);
    assert_eq!(calls[1].reason.as_deref(), Some("called 3m ago"));
    assert_eq!(calls[0].state, CallState::Pending);
}

async fn reopen_and_end_run_move_the_run_state<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    let get = || async {
        store
            .find_run(RunQuery::Id("r1".into()))
            .await
            .unwrap()
            .unwrap()
    };
    store.end_run("r1", RunState::Interrupted).await.unwrap();
    let ended = get().await;
    assert_eq!(ended.state, RunState::Interrupted);
    assert!(ended.finished_at.is_some());
    store.reopen_run("r1", 4242).await.unwrap();
    let reopened = get().await;
    assert_eq!(reopened.state, RunState::Running);
    assert_eq!(reopened.finished_at, None);
    assert_eq!(reopened.pid, Some(4242));
    store.end_run("r1", RunState::Finished).await.unwrap();
    assert_eq!(get().await.state, RunState::Finished);
}

// ---------------------------------------------------------------------------
// Finding runs

async fn find_run_by_id_whatever_the_state<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let all = [
        RunState::Running,
        RunState::Finished,
        RunState::Interrupted,
        RunState::Stopped,
        RunState::Refused,
    ];
    for (i, state) in all.into_iter().enumerate() {
        let mut r = run(&format!("r{i}"), "p", i as i64);
        r.state = state;
        if state != RunState::Running {
            r.finished_at = Some(at(i as i64 + 1));
        }
        store.begin_run(r.clone(), plan(1)).await.unwrap();
        let found = store.find_run(RunQuery::Id(r.id.clone())).await.unwrap();
        assert_eq!(found, Some(r));
    }
    let missing = store.find_run(RunQuery::Id("nope".into())).await.unwrap();
    assert_eq!(missing, None);
}

async fn find_run_latest_unfinished_of_a_playbook<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let latest = |name: &str| store.find_run(RunQuery::LatestUnfinished(name.into()));
    assert_eq!(latest("p").await.unwrap(), None);
    for (id, started, state) in [
        ("old", 0, RunState::Interrupted),
        ("mid", 10, RunState::Stopped),
        ("done", 20, RunState::Finished),
        ("refused", 30, RunState::Refused),
    ] {
        let mut r = run(id, "p", started);
        r.state = state;
        r.finished_at = Some(at(started + 1));
        store.begin_run(r, plan(1)).await.unwrap();
    }
    store
        .begin_run(run("other", "q", 40), plan(1))
        .await
        .unwrap();
    let found = latest("p").await.unwrap().map(|r| r.id);
    assert_eq!(
        found.as_deref(),
        Some("mid"),
        "finished and refused runs are not resumable"
    );
    store.begin_run(run("new", "p", 50), plan(1)).await.unwrap();
    let found = latest("p").await.unwrap().map(|r| r.id);
    assert_eq!(found.as_deref(), Some("new"), "a running run is resumable");
    store.end_run("new", RunState::Finished).await.unwrap();
    store.end_run("mid", RunState::Finished).await.unwrap();
    let found = latest("p").await.unwrap().map(|r| r.id);
    assert_eq!(found.as_deref(), Some("old"));
    assert_eq!(
        latest("q").await.unwrap().map(|r| r.id).as_deref(),
        Some("other")
    );
    assert_eq!(latest("nope").await.unwrap(), None);
}

async fn find_run_latest_unfinished_from_a_path<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let mut a = run("a", "p", 0);
    a.path = "/srv/a.yaml".into();
    a.state = RunState::Interrupted;
    let mut b = run("b", "p", 10);
    b.path = "/srv/b.yaml".into();
    b.state = RunState::Interrupted;
    let mut c = run("c", "renamed", 20);
    c.path = "/srv/a.yaml".into();
    c.state = RunState::Stopped;
    for r in [a, b, c] {
        store.begin_run(r, plan(1)).await.unwrap();
    }
    let from = |path: &str| store.find_run(RunQuery::LatestUnfinishedFrom(path.into()));
    let found = from("/srv/a.yaml").await.unwrap().map(|r| r.id);
    assert_eq!(
        found.as_deref(),
        Some("c"),
        "found by path, whatever its name"
    );
    assert_eq!(
        from("/srv/b.yaml").await.unwrap().map(|r| r.id).as_deref(),
        Some("b")
    );
    assert_eq!(from("/srv/gone.yaml").await.unwrap(), None);
    store.end_run("c", RunState::Finished).await.unwrap();
    assert_eq!(
        from("/srv/a.yaml").await.unwrap().map(|r| r.id).as_deref(),
        Some("a")
    );
}

async fn runs_are_newest_first_with_limit_and_filter<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    assert!(store.runs(None, 10).await.unwrap().is_empty());
    // Recorded out of order: the order is by start.
    for (id, playbook, started) in [
        ("b", "p", 20),
        ("a", "p", 10),
        ("d", "q", 40),
        ("c", "p", 30),
    ] {
        store
            .begin_run(run(id, playbook, started), plan(1))
            .await
            .unwrap();
    }
    let ids = |runs: Vec<callbook::model::RunSummary>| {
        runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.runs(None, 10).await.unwrap()),
        ["d", "c", "b", "a"]
    );
    assert_eq!(ids(store.runs(None, 2).await.unwrap()), ["d", "c"]);
    assert_eq!(
        ids(store.runs(Some("p"), 10).await.unwrap()),
        ["c", "b", "a"]
    );
    assert_eq!(ids(store.runs(Some("p"), 1).await.unwrap()), ["c"]);
    assert!(store.runs(None, 0).await.unwrap().is_empty());
    assert!(store.runs(Some("nope"), 10).await.unwrap().is_empty());
    let first = &store.runs(Some("q"), 10).await.unwrap()[0];
    assert_eq!(
        (
            first.playbook.as_str(),
            first.started_at,
            first.finished_at,
            first.state
        ),
        ("q", at(40), None, RunState::Running)
    );
    assert_eq!(first.pid, Some(std::process::id()));
}

async fn runs_count_calls_by_state<S: Store>(make: Factory<S>) {
    let place = with_run(make, 7).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.finished("r1", 0, &placed("c0", 1)).await.unwrap();
    store.sending("r1", 1, 1).await.unwrap();
    let failed = Outcome {
        status: Status::Failed,
        call_id: None,
        attempts: 1,
        error: Some("no".into()),
    };
    store.finished("r1", 1, &failed).await.unwrap();
    store.sending("r1", 2, 1).await.unwrap();
    let unknown = Outcome {
        status: Status::Unknown,
        ..failed
    };
    store.finished("r1", 2, &unknown).await.unwrap();
    store.sending("r1", 3, 1).await.unwrap();
    store.skip("r1", 4, "quiet hours").await.unwrap();
    let s = &store.runs(None, 10).await.unwrap()[0];
    assert_eq!(
        (s.placed, s.failed, s.unknown, s.pending, s.skipped),
        (1, 1, 2, 2, 1),
        "a sending call counts as unknown"
    );
    store
        .begin_run(run("empty", "p", 5), Vec::new())
        .await
        .unwrap();
    let s = &store.runs(None, 1).await.unwrap()[0];
    assert_eq!(s.run_id, "empty");
    assert_eq!(
        (s.placed, s.failed, s.unknown, s.pending, s.skipped),
        (0, 0, 0, 0, 0)
    );
}

// ---------------------------------------------------------------------------
// Dedup

async fn last_call_counts_placed_unknown_and_sending_only<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let query = || dedup("p", "k", "13214991000", long_ago());
    for id in ["pending", "skipped", "failed", "back"] {
        store.begin_run(run(id, "p", 0), plan(1)).await.unwrap();
    }
    // Pending, skipped, failed, sent-then-not-placed: never called.
    store.skip("skipped", 0, "dup").await.unwrap();
    store.sending("failed", 0, 1).await.unwrap();
    let failed = Outcome {
        status: Status::Failed,
        call_id: None,
        attempts: 1,
        error: Some("400".into()),
    };
    store.finished("failed", 0, &failed).await.unwrap();
    store.sending("back", 0, 1).await.unwrap();
    store.not_placed("back", 0).await.unwrap();
    assert_eq!(store.last_call(query()).await.unwrap(), None);
    // Sending, unknown and placed each count.
    for (id, outcome) in [
        ("sending", None),
        (
            "unknown",
            Some(Outcome {
                status: Status::Unknown,
                ..failed.clone()
            }),
        ),
        ("placed", Some(placed("c", 1))),
    ] {
        let place = fresh(make).await;
        let store = &place.store;
        store.begin_run(run(id, "p", 0), plan(1)).await.unwrap();
        let before = now_secs();
        store.sending(id, 0, 1).await.unwrap();
        if let Some(outcome) = outcome {
            store.finished(id, 0, &outcome).await.unwrap();
        }
        let after = Timestamp::now();
        let last = store.last_call(query()).await.unwrap();
        let last = last.unwrap_or_else(|| panic!("a {id} call is not counted"));
        assert!(
            before <= last && last <= after,
            "{id}: {last} not in {before}..{after}"
        );
    }
}

async fn last_call_is_per_playbook_key_and_dial<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.finished("r1", 0, &placed("c", 1)).await.unwrap();
    let since = long_ago();
    assert!(
        store
            .last_call(dedup("p", "k", "13214991000", since))
            .await
            .unwrap()
            .is_some()
    );
    for q in [
        dedup("other", "k", "13214991000", since),
        dedup("p", "other", "13214991000", since),
        dedup("p", "k", "13214991009", since),
        dedup("p", "K", "13214991000", since),
    ] {
        assert_eq!(store.last_call(q.clone()).await.unwrap(), None, "{q:?}");
    }
    // A call without a dedup key is nobody's dedup history.
    let mut keyless = plan(1);
    keyless[0].dedup_key = None;
    store.begin_run(run("r2", "p", 0), keyless).await.unwrap();
    store.sending("r2", 0, 1).await.unwrap();
    store.finished("r2", 0, &placed("c2", 1)).await.unwrap();
    assert_eq!(
        store
            .last_call(dedup("p", "", "13214991000", since))
            .await
            .unwrap(),
        None
    );
}

async fn last_call_honours_since<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    let sent = store
        .last_call(dedup("p", "k", "13214991000", long_ago()))
        .await
        .unwrap()
        .unwrap();
    // `since` is inclusive.
    let at_sent = store.last_call(dedup("p", "k", "13214991000", sent)).await;
    assert_eq!(at_sent.unwrap(), Some(sent));
    let later = Timestamp(sent.0 + chrono::Duration::seconds(1));
    let after = store.last_call(dedup("p", "k", "13214991000", later)).await;
    assert_eq!(after.unwrap(), None);
}

async fn last_call_leaves_out_except_run<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.finished("r1", 0, &placed("c", 1)).await.unwrap();
    let mut query = dedup("p", "k", "13214991000", long_ago());
    query.except_run = Some("r1".into());
    assert_eq!(store.last_call(query.clone()).await.unwrap(), None);
    query.except_run = Some("another".into());
    assert!(store.last_call(query.clone()).await.unwrap().is_some());
    // Another run's call counts even when the resumed run's does not.
    store.begin_run(run("r2", "p", 5), plan(1)).await.unwrap();
    store.sending("r2", 0, 1).await.unwrap();
    query.except_run = Some("r1".into());
    assert!(store.last_call(query).await.unwrap().is_some());
}

async fn last_call_is_the_latest<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    store.begin_run(run("r1", "p", 0), plan(1)).await.unwrap();
    store.sending("r1", 0, 1).await.unwrap();
    let query = || dedup("p", "k", "13214991000", long_ago());
    let first = store.last_call(query()).await.unwrap().unwrap();
    // Stores keep seconds: wait for the next one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.begin_run(run("r2", "p", 5), plan(1)).await.unwrap();
    store.sending("r2", 0, 1).await.unwrap();
    let second = store.last_call(query()).await.unwrap().unwrap();
    assert!(second > first, "{second} is not after {first}");
}

// ---------------------------------------------------------------------------
// The run lock and playbook claims

async fn lock_refuses_a_second_holder_naming_the_first<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let held = place.store.lock("p", at(0)).await.unwrap();
    place.store.check_lock(&held).await.unwrap();
    match place.store.lock("p", at(5)).await {
        Err(StoreError::Locked { playbook, holder }) => {
            assert_eq!(playbook, "p");
            let holder = holder.expect("the holder is named");
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
        }
        Err(e) => panic!("not `Locked`: {e}"),
        Ok(_) => panic!("a second lock of `p` was granted"),
    }
    // Another store on the same place (another process) is refused too.
    let other = place.reopen();
    assert!(matches!(
        other.lock("p", at(5)).await,
        Err(StoreError::Locked { .. })
    ));
    drop(held);
}

async fn lock_is_released_on_drop<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let held = place.store.lock("p", at(0)).await.unwrap();
    drop(held);
    let again = place.store.lock("p", at(1)).await.unwrap();
    place.store.check_lock(&again).await.unwrap();
}

async fn lock_holder_tells_without_taking<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    assert_eq!(store.lock_holder("p").await, LockHolder::Free);
    let held = store.lock("p", at(0)).await.unwrap();
    assert_eq!(
        store.lock_holder("p").await,
        LockHolder::Held {
            pid: Some(std::process::id())
        }
    );
    // Asking did not take it, nor block the holder.
    store.check_lock(&held).await.unwrap();
    drop(held);
    assert_eq!(store.lock_holder("p").await, LockHolder::Free);
    let taken = store.lock("p", at(1)).await;
    assert!(taken.is_ok(), "{:?}", taken.err());
}

async fn locks_are_per_playbook<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let p = store.lock("p", at(0)).await.unwrap();
    let q = store.lock("q", at(0)).await.unwrap();
    assert_eq!(store.lock_holder("r").await, LockHolder::Free);
    drop(p);
    assert_eq!(store.lock_holder("p").await, LockHolder::Free);
    assert!(matches!(
        store.lock_holder("q").await,
        LockHolder::Held { .. }
    ));
    drop(q);
}

async fn playbook_path_claims_are_recorded_and_replaced<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    assert_eq!(store.playbook_path("disk-full").await.unwrap(), None);
    store
        .set_playbook_path("disk-full", "/srv/a.yaml")
        .await
        .unwrap();
    store
        .set_playbook_path("other", "/srv/o.yaml")
        .await
        .unwrap();
    let path = store.playbook_path("disk-full").await.unwrap();
    assert_eq!(path.as_deref(), Some("/srv/a.yaml"));
    store
        .set_playbook_path("disk-full", "/srv/b.yaml")
        .await
        .unwrap();
    let path = store.playbook_path("disk-full").await.unwrap();
    assert_eq!(path.as_deref(), Some("/srv/b.yaml"), "from now on");
    let other = store.playbook_path("other").await.unwrap();
    assert_eq!(other.as_deref(), Some("/srv/o.yaml"));
    // Durable.
    let again = place.reopen();
    let path = again.playbook_path("disk-full").await.unwrap();
    assert_eq!(path.as_deref(), Some("/srv/b.yaml"));
}

// ---------------------------------------------------------------------------
// Pages

async fn begin_page_records_page_run_and_calls<S: Store>(make: Factory<S>) {
    let place = with_page(make, 3).await;
    let store = &place.store;
    let found = store.find_run(RunQuery::Id("r1".into())).await.unwrap();
    assert_eq!(found, Some(run("r1", "p", 0)));
    assert_eq!(store.calls("r1").await.unwrap(), plan(3));
    let slots = store.call_slots("r1").await.unwrap();
    let want: Vec<(usize, CallSlot)> = ladder(3).into_iter().map(|(c, s)| (c.idx, s)).collect();
    assert_eq!(slots, want);
    assert_eq!(
        store.page_code("r1").await.unwrap().as_deref(),
        Some("AB12")
    );
}

async fn begin_page_with_a_route_refuses_a_key_already_going<S: Store>(make: Factory<S>) {
    let place = with_page(make, 2).await;
    let store = &place.store;
    let second = store
        .begin_page(
            run("r2", "p", 5),
            page("r2", "CD34", "k", Some("/alert")),
            ladder(4),
        )
        .await
        .unwrap();
    assert_eq!(second.as_deref(), Some("r1"), "names the page going");
    assert_eq!(
        store.find_run(RunQuery::Id("r2".into())).await.unwrap(),
        None
    );
    assert!(store.calls("r2").await.unwrap().is_empty());
    assert_eq!(store.page_code("r2").await.unwrap(), None);
    assert_eq!(store.runs(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.going_codes().await.unwrap(), ["AB12"]);
    // Another key is another page.
    let other = store
        .begin_page(
            run("r3", "p", 6),
            page("r3", "EF56", "k2", Some("/alert")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(other, None);
    // An interrupted page (a pager shut down) is still going.
    store.end_run("r1", RunState::Interrupted).await.unwrap();
    let third = store
        .begin_page(
            run("r4", "p", 7),
            page("r4", "GH78", "k", Some("/alert")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(third.as_deref(), Some("r1"));
}

async fn begin_page_without_a_route_never_refuses<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    for (id, code) in [("r1", "AB12"), ("r2", "CD34")] {
        let begun = store
            .begin_page(run(id, "p", 0), page(id, code, "k", None), ladder(1))
            .await
            .unwrap();
        assert_eq!(begun, None, "{id}");
    }
    // A page with a route does not count the pages without one.
    let served = store
        .begin_page(
            run("r3", "p", 0),
            page("r3", "EF56", "k", Some("/a")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(served, None);
    assert_eq!(store.runs(None, 10).await.unwrap().len(), 3);
}

async fn begin_page_takes_a_key_again_once_its_page_ended<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    store
        .end_page("r1", "exhausted", RunState::Finished)
        .await
        .unwrap();
    let again = store
        .begin_page(
            run("r2", "p", 5),
            page("r2", "CD34", "k", Some("/alert")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(
        store.page_code("r2").await.unwrap().as_deref(),
        Some("CD34")
    );
}

async fn begin_page_is_all_or_nothing<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let mut calls = ladder(3);
    calls[2].0.idx = 0;
    let refused = store
        .begin_page(
            run("r1", "p", 0),
            page("r1", "AB12", "k", Some("/a")),
            calls,
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        store.find_run(RunQuery::Id("r1".into())).await.unwrap(),
        None
    );
    assert_eq!(store.page_code("r1").await.unwrap(), None);
    assert!(store.served_pages().await.unwrap().is_empty());
    assert!(store.going_codes().await.unwrap().is_empty());
    // Nothing holds the key.
    let begun = store
        .begin_page(
            run("r2", "p", 0),
            page("r2", "AB12", "k", Some("/a")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(begun, None);
}

async fn round_started_and_page_rounds_in_order<S: Store>(make: Factory<S>) {
    let place = with_page(make, 3).await;
    let store = &place.store;
    assert!(store.page_rounds("r1").await.unwrap().is_empty());
    let rounds = [
        ("primary", 1, 0, 60),
        ("primary", 2, 60, 120),
        ("secondary", 1, 120, 180),
        ("primary", 3, 180, 240),
    ];
    for (step, round, started, due) in rounds {
        store
            .round_started("r1", step, round, at(started), at(due))
            .await
            .unwrap();
    }
    let want: Vec<RoundRecord> = rounds
        .iter()
        .map(|&(step, round, started, due)| RoundRecord {
            step: step.into(),
            round,
            started_at: at(started),
            due_at: at(due),
        })
        .collect();
    assert_eq!(store.page_rounds("r1").await.unwrap(), want);
}

async fn record_ack_first_wins<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    assert_eq!(store.first_ack("r1").await.unwrap(), None);
    let first = ack("alice", 10);
    assert_eq!(
        store.record_ack("r1", first.clone()).await.unwrap(),
        AckResult::Recorded
    );
    // A later one is recorded too, but the first counts, even if it claims an earlier time.
    let mut second = ack("bob", 5);
    second.via = AckVia::Manual;
    second.text = None;
    assert_eq!(
        store.record_ack("r1", second).await.unwrap(),
        AckResult::Recorded
    );
    assert_eq!(store.first_ack("r1").await.unwrap(), Some(first.clone()));
    assert_eq!(place.reopen().first_ack("r1").await.unwrap(), Some(first));
}

async fn record_ack_is_refused_after_end_page<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    store
        .end_page("r1", "exhausted", RunState::Finished)
        .await
        .unwrap();
    let late = store.record_ack("r1", ack("alice", 10)).await.unwrap();
    assert_eq!(late, AckResult::Ended("exhausted".into()));
    assert_eq!(store.first_ack("r1").await.unwrap(), None);
    // A page whose run ended without `end_page` has ended too.
    let other = store
        .begin_page(run("r2", "p", 0), page("r2", "CD34", "k2", None), ladder(1))
        .await
        .unwrap();
    assert_eq!(other, None);
    store.end_run("r2", RunState::Finished).await.unwrap();
    let late = store.record_ack("r2", ack("bob", 10)).await.unwrap();
    assert_eq!(late, AckResult::Ended("finished".into()));
    assert_eq!(store.first_ack("r2").await.unwrap(), None);
}

async fn record_ack_names_no_run_and_no_page<S: Store>(make: Factory<S>) {
    let place = with_run(make, 1).await;
    let store = &place.store;
    assert_eq!(
        store.record_ack("nope", ack("a", 0)).await.unwrap(),
        AckResult::NoSuchRun
    );
    assert_eq!(
        store.record_ack("r1", ack("a", 0)).await.unwrap(),
        AckResult::NotAPage
    );
    assert_eq!(store.first_ack("r1").await.unwrap(), None);
    assert_eq!(store.first_ack("nope").await.unwrap(), None);
}

async fn skip_pending_skips_only_calls_not_sent<S: Store>(make: Factory<S>) {
    let place = with_page(make, 5).await;
    let store = &place.store;
    store.sending("r1", 0, 1).await.unwrap();
    store.finished("r1", 0, &placed("c0", 1)).await.unwrap();
    store.sending("r1", 1, 1).await.unwrap();
    store.skip("r1", 2, "earlier reason").await.unwrap();
    store
        .skip_pending("r1", "acknowledged by alice")
        .await
        .unwrap();
    let calls = store.calls("r1").await.unwrap();
    let got: Vec<(CallState, Option<&str>)> = calls
        .iter()
        .map(|c| (c.state, c.reason.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (CallState::Placed, None),
            (CallState::Sending, None),
            (CallState::Skipped, Some("earlier reason")),
            (CallState::Skipped, Some("acknowledged by alice")),
            (CallState::Skipped, Some("acknowledged by alice")),
        ]
    );
}

async fn end_page_records_outcome_and_run_state<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    assert_eq!(store.page_outcome("r1").await.unwrap(), None);
    store
        .end_page("r1", "acknowledged", RunState::Finished)
        .await
        .unwrap();
    assert_eq!(
        store.page_outcome("r1").await.unwrap().as_deref(),
        Some("acknowledged")
    );
    let r = store
        .find_run(RunQuery::Id("r1".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.state, RunState::Finished);
    assert!(r.finished_at.is_some());
}

async fn going_codes_are_the_pages_not_ended<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    assert!(store.going_codes().await.unwrap().is_empty());
    for (id, code, route) in [
        ("r1", "AB12", Some("/a")),
        ("r2", "CD34", None),
        ("r3", "EF56", None),
    ] {
        let key = format!("k-{id}");
        let begun = store
            .begin_page(run(id, "p", 0), page(id, code, &key, route), ladder(1))
            .await
            .unwrap();
        assert_eq!(begun, None);
    }
    // A broadcast run has no code.
    store.begin_run(run("b", "p", 0), plan(1)).await.unwrap();
    store
        .end_page("r3", "acknowledged", RunState::Finished)
        .await
        .unwrap();
    let codes: HashSet<String> = store.going_codes().await.unwrap().into_iter().collect();
    let want: HashSet<String> = ["AB12", "CD34"].map(String::from).into();
    assert_eq!(codes, want);
}

async fn recent_page_is_the_latest_ended_in_its_window<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    let window = long_ago();
    assert_eq!(
        store.recent_page("p", "k", window).await.unwrap(),
        None,
        "still going"
    );
    let before = now_secs();
    store
        .end_page("r1", "acknowledged", RunState::Finished)
        .await
        .unwrap();
    let after = Timestamp::now();
    let end = store.recent_page("p", "k", window).await.unwrap().unwrap();
    assert_eq!(
        (end.run_id.as_str(), end.outcome.as_str()),
        ("r1", "acknowledged")
    );
    assert!(
        before <= end.ended_at && end.ended_at <= after,
        "{}",
        end.ended_at
    );
    let at_end = store.recent_page("p", "k", end.ended_at).await.unwrap();
    assert_eq!(
        at_end.map(|e| e.run_id).as_deref(),
        Some("r1"),
        "`since` is inclusive"
    );
    let later = Timestamp(end.ended_at.0 + chrono::Duration::seconds(1));
    assert_eq!(store.recent_page("p", "k", later).await.unwrap(), None);
    assert_eq!(store.recent_page("q", "k", window).await.unwrap(), None);
    assert_eq!(store.recent_page("p", "k2", window).await.unwrap(), None);
    // The latest one, once the next ended.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let begun = store
        .begin_page(
            run("r2", "p", 5),
            page("r2", "CD34", "k", Some("/alert")),
            ladder(1),
        )
        .await
        .unwrap();
    assert_eq!(begun, None);
    store
        .end_page("r2", "exhausted", RunState::Finished)
        .await
        .unwrap();
    let end = store.recent_page("p", "k", window).await.unwrap().unwrap();
    assert_eq!(
        (end.run_id.as_str(), end.outcome.as_str()),
        ("r2", "exhausted")
    );
}

async fn record_callback_takes_any_kind_and_fields<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    // Nothing reads callbacks back through the trait: they are a record.
    store
        .record_callback("END", r#"{"uid":"c1","disposition":"ANSWERED"}"#.into())
        .await
        .unwrap();
    store.record_callback("", String::new()).await.unwrap();
    store
        .record_callback("sms", "not json at all".into())
        .await
        .unwrap();
}

async fn set_disposition_and_call_endings<S: Store>(make: Factory<S>) {
    let place = with_page(make, 3).await;
    let store = &place.store;
    assert!(store.call_endings("r1").await.unwrap().is_empty());
    store
        .set_disposition("r1", 2, "ANSWERED", Some(31), at(100))
        .await
        .unwrap();
    store
        .set_disposition("r1", 0, "NO_ANSWER", None, at(50))
        .await
        .unwrap();
    let endings = store.call_endings("r1").await.unwrap();
    let got: Vec<_> = endings
        .iter()
        .map(|e| {
            (
                e.idx,
                e.disposition.as_str(),
                e.billable_seconds,
                e.ended_at,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "NO_ANSWER", None, Some(at(50))),
            (2, "ANSWERED", Some(31), Some(at(100))),
        ],
        "only the calls that ended, by index"
    );
    // A later word replaces the earlier one.
    store
        .set_disposition("r1", 0, "NO_CALLBACK", None, at(60))
        .await
        .unwrap();
    let endings = store.call_endings("r1").await.unwrap();
    assert_eq!(endings[0].disposition, "NO_CALLBACK");
    assert_eq!(endings.len(), 2);
}

async fn add_call_appends_a_call_with_its_slot<S: Store>(make: Factory<S>) {
    let place = with_page(make, 2).await;
    let store = &place.store;
    let retry = call(2, "R0", "13214991000", Some("k"));
    store
        .add_call("r1", retry.clone(), slot("primary", 3, 300))
        .await
        .unwrap();
    let calls = store.calls("r1").await.unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2], retry);
    let slots = store.call_slots("r1").await.unwrap();
    assert_eq!(slots.last(), Some(&(2, slot("primary", 3, 300))));
    assert_eq!(slots.len(), 3);
    // A retry is a call like any other: it is sent, and counted by dedup.
    store.sending("r1", 2, 1).await.unwrap();
    let q = dedup("p", "k", "13214991000", long_ago());
    assert!(store.last_call(q).await.unwrap().is_some());
}

async fn add_call_never_replaces_a_recorded_call<S: Store>(make: Factory<S>) {
    let place = with_page(make, 2).await;
    let store = &place.store;
    store.sending("r1", 1, 1).await.unwrap();
    store.finished("r1", 1, &placed("c1", 1)).await.unwrap();
    let before = store.calls("r1").await.unwrap();
    let clash = call(1, "Mallory", "19999999999", None);
    let added = store.add_call("r1", clash, slot("x", 9, 9)).await;
    assert!(added.is_err(), "{added:?}");
    assert_eq!(store.calls("r1").await.unwrap(), before);
    assert_eq!(
        store.call_slots("r1").await.unwrap()[1],
        (1, slot("primary", 2, 60))
    );
}

async fn page_code_sources_and_outcome<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    store.begin_run(run("b", "p", 0), plan(1)).await.unwrap();
    assert_eq!(
        store.page_code("r1").await.unwrap().as_deref(),
        Some("AB12")
    );
    let sources = store.page_sources("r1").await.unwrap();
    assert_eq!(sources, Some(page("r1", "AB12", "k", None).sources));
    assert_eq!(store.page_outcome("r1").await.unwrap(), None, "not ended");
    for id in ["b", "nope"] {
        assert_eq!(store.page_code(id).await.unwrap(), None, "{id}");
        assert_eq!(store.page_sources(id).await.unwrap(), None, "{id}");
        assert_eq!(store.page_outcome(id).await.unwrap(), None, "{id}");
    }
    store
        .end_page("r1", "exhausted", RunState::Finished)
        .await
        .unwrap();
    assert_eq!(
        store.page_outcome("r1").await.unwrap().as_deref(),
        Some("exhausted")
    );
    assert_eq!(
        store.page_code("r1").await.unwrap().as_deref(),
        Some("AB12")
    );
}

async fn going_page_is_the_page_still_going<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    assert_eq!(
        store.going_page("p", "k").await.unwrap().as_deref(),
        Some("r1")
    );
    assert_eq!(store.going_page("q", "k").await.unwrap(), None);
    assert_eq!(store.going_page("p", "k2").await.unwrap(), None);
    // Pages without a route count too.
    let begun = store
        .begin_page(run("r2", "p", 0), page("r2", "CD34", "k2", None), ladder(1))
        .await
        .unwrap();
    assert_eq!(begun, None);
    assert_eq!(
        store.going_page("p", "k2").await.unwrap().as_deref(),
        Some("r2")
    );
    store
        .end_page("r1", "acknowledged", RunState::Finished)
        .await
        .unwrap();
    assert_eq!(store.going_page("p", "k").await.unwrap(), None);
}

async fn served_pages_are_route_pages_not_ended_oldest_first<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    assert!(store.served_pages().await.unwrap().is_empty());
    for (id, started, route) in [
        ("late", 30, Some("/b")),
        ("early", 10, Some("/a")),
        ("run", 0, None),
        ("ended", 5, Some("/a")),
    ] {
        let key = format!("{}:k-{id}", route.unwrap_or(""));
        let begun = store
            .begin_page(
                run(id, "p", started),
                page(id, &id.to_uppercase(), &key, route),
                ladder(1),
            )
            .await
            .unwrap();
        assert_eq!(begun, None);
    }
    store
        .end_page("ended", "exhausted", RunState::Finished)
        .await
        .unwrap();
    store.end_run("late", RunState::Interrupted).await.unwrap();
    let served = store.served_pages().await.unwrap();
    let got: Vec<_> = served
        .iter()
        .map(|s| (s.run_id.as_str(), s.route.as_str(), s.key.as_str(), s.state))
        .collect();
    assert_eq!(
        got,
        [
            ("early", "/a", "/a:k-early", RunState::Running),
            ("late", "/b", "/b:k-late", RunState::Interrupted),
        ]
    );
    let early = &served[0];
    assert_eq!(
        (
            early.playbook.as_str(),
            early.path.as_str(),
            early.code.as_str(),
            early.started_at
        ),
        ("p", "/etc/callbook/p.yaml", "EARLY", at(10))
    );
}

async fn served_acks_are_route_pages_acknowledged_not_ended<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    for (id, route) in [
        ("a", Some("/a")),
        ("b", Some("/a")),
        ("c", None),
        ("d", Some("/a")),
    ] {
        let key = format!("k-{id}");
        let begun = store
            .begin_page(run(id, "p", 0), page(id, id, &key, route), ladder(1))
            .await
            .unwrap();
        assert_eq!(begun, None);
    }
    assert!(store.served_acks().await.unwrap().is_empty());
    for id in ["a", "c", "d"] {
        let recorded = store.record_ack(id, ack("alice", 1)).await.unwrap();
        assert_eq!(recorded, AckResult::Recorded);
    }
    store
        .end_page("d", "acknowledged", RunState::Finished)
        .await
        .unwrap();
    assert_eq!(store.served_acks().await.unwrap(), ["a"]);
}

// ---------------------------------------------------------------------------
// Concurrency

async fn concurrent_begin_page_of_one_key_makes_one_page<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = place.store.clone();
        tasks.spawn(async move {
            let id = format!("r{i}");
            let code = format!("C{i:03}");
            let begun = store
                .begin_page(
                    run(&id, "p", i),
                    page(&id, &code, "/a:k", Some("/a")),
                    ladder(2),
                )
                .await
                .unwrap();
            (id, begun)
        });
    }
    let mut made = Vec::new();
    let mut going = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (id, None) => made.push(id),
            (_, Some(other)) => {
                going.insert(other);
            }
        }
    }
    assert_eq!(made.len(), 1, "pages made: {made:?}");
    let want: HashSet<String> = made.iter().cloned().collect();
    assert_eq!(going, want, "every loser names the winner");
    let store = &place.store;
    assert_eq!(store.runs(None, 100).await.unwrap().len(), 1);
    assert_eq!(store.served_pages().await.unwrap().len(), 1);
    assert_eq!(store.calls(&made[0]).await.unwrap().len(), 2);
}

async fn begin_page_from_two_processes_makes_one_page<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    // Two handles on one place: two pagers (processes, hosts) racing.
    let handles = [place.store.clone(), place.reopen()];
    handles[1].ready().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = handles[i % 2].clone();
        tasks.spawn(async move {
            let id = format!("r{i}");
            let key = "/a:k";
            let begun = store
                .begin_page(run(&id, "p", 0), page(&id, &id, key, Some("/a")), ladder(1))
                .await
                .unwrap();
            (id, begun)
        });
    }
    let mut made = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, begun) = joined.unwrap();
        if begun.is_none() {
            made.push(id);
        }
    }
    assert_eq!(made.len(), 1, "pages made: {made:?}");
    for store in &handles {
        let served = store.served_pages().await.unwrap();
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].run_id, made[0]);
    }
}

async fn concurrent_record_ack_keeps_one_first<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = place.store.clone();
        tasks.spawn(async move {
            let by = format!("user{i}");
            let result = store.record_ack("r1", ack(&by, i)).await.unwrap();
            (by, result)
        });
    }
    let mut all = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (by, result) = joined.unwrap();
        assert_eq!(result, AckResult::Recorded, "{by}");
        all.insert(by);
    }
    let first = place.store.first_ack("r1").await.unwrap().unwrap();
    assert!(all.contains(&first.by), "{first:?}");
    // The first stays the first.
    for _ in 0..3 {
        let again = place.store.first_ack("r1").await.unwrap();
        assert_eq!(again.as_ref(), Some(&first));
    }
    assert_eq!(place.store.served_acks().await.unwrap(), ["r1"]);
}

async fn record_ack_racing_end_page_is_consistent<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = place.store.clone();
        tasks.spawn(async move { store.record_ack("r1", ack(&format!("u{i}"), i)).await });
    }
    let store = place.store.clone();
    let ender =
        tokio::spawn(async move { store.end_page("r1", "exhausted", RunState::Finished).await });
    let mut recorded = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap().unwrap() {
            AckResult::Recorded => recorded += 1,
            AckResult::Ended(outcome) => assert_eq!(outcome, "exhausted"),
            other => panic!("{other:?}"),
        }
    }
    ender.await.unwrap().unwrap();
    let first = place.store.first_ack("r1").await.unwrap();
    assert_eq!(
        first.is_some(),
        recorded > 0,
        "recorded {recorded}, first {first:?}"
    );
    // Once ended, every later one is refused.
    let late = place.store.record_ack("r1", ack("late", 99)).await.unwrap();
    assert_eq!(late, AckResult::Ended("exhausted".into()));
}

// ---------------------------------------------------------------------------
// Hostile input

/// Text no store may alter: quotes, SQL, escapes, control characters, NUL,
/// bidirectional overrides, emoji and invalid-looking JSON.
const HOSTILE: &str = "it's \"quoted\" `tick` \\ back; DROP TABLE runs;-- \0 nul \x01\x07\x1b[31m red \r\n\ttab \u{202e}rtl\u{202c} é 🙂 {\"a\":";

async fn round_trip_every_field<S: Store>(make: Factory<S>, text: &str) {
    let place = fresh(make).await;
    let store = &place.store;
    let t = |label: &str| format!("{label}:{text}");
    let mut r = run("r1", "p", 0);
    r.playbook = t("playbook");
    r.path = t("path");
    r.caller_id = Some(t("caller"));
    let mut c = call(0, &t("recipient"), &t("to"), Some(&t("key")));
    c.rule = Some(t("rule"));
    c.service_id = Some(t("message"));
    c.fingerprint = Some(t("fingerprint"));
    let mut s = call(1, "s", "1", None);
    s.state = CallState::Skipped;
    s.reason = Some(t("reason"));
    let mut p = page("r1", &t("code"), &t("page-key"), Some(&t("route")));
    p.sources = t("sources");
    let begun = store
        .begin_page(
            r.clone(),
            p.clone(),
            vec![
                (c.clone(), slot(&t("step"), 1, 0)),
                (s.clone(), slot("x", 1, 0)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(begun, None);
    assert!(store.find_run(RunQuery::Id("r1".into())).await.unwrap() == Some(r.clone()));
    let calls = store.calls("r1").await.unwrap();
    assert!(calls == [c.clone(), s], "the plan changed");
    let slots = store.call_slots("r1").await.unwrap();
    assert!(slots[0].1.step == t("step"));
    assert!(store.page_code("r1").await.unwrap() == Some(p.code.clone()));
    assert!(store.page_sources("r1").await.unwrap() == Some(p.sources.clone()));
    assert!(
        store
            .going_page(&r.playbook, &p.dedup_key)
            .await
            .unwrap()
            .as_deref()
            == Some("r1")
    );
    assert!(store.going_codes().await.unwrap() == [p.code.clone()]);
    let served = store.served_pages().await.unwrap();
    assert!(
        served[0].route == t("route") && served[0].key == p.dedup_key && served[0].path == r.path
    );
    let found = store
        .find_run(RunQuery::LatestUnfinished(r.playbook.clone()))
        .await;
    assert!(found.unwrap().map(|f| f.id).as_deref() == Some("r1"));
    let found = store
        .find_run(RunQuery::LatestUnfinishedFrom(r.path.clone()))
        .await;
    assert!(found.unwrap().map(|f| f.id).as_deref() == Some("r1"));
    assert!(store.runs(Some(&r.playbook), 1).await.unwrap()[0].playbook == r.playbook);

    store.sending("r1", 0, 1).await.unwrap();
    let outcome = Outcome {
        status: Status::Unknown,
        call_id: Some(t("call-id")),
        attempts: 1,
        error: Some(t("error")),
    };
    store.finished("r1", 0, &outcome).await.unwrap();
    let got = &store.calls("r1").await.unwrap()[0];
    assert!(got.call_id == outcome.call_id && got.error == outcome.error);
    let query = dedup(&r.playbook, &t("key"), &t("to"), long_ago());
    assert!(store.last_call(query).await.unwrap().is_some());

    store
        .round_started("r1", &t("round-step"), 1, at(0), at(1))
        .await
        .unwrap();
    assert!(store.page_rounds("r1").await.unwrap()[0].step == t("round-step"));
    store
        .set_disposition("r1", 0, &t("disposition"), Some(1), at(2))
        .await
        .unwrap();
    assert!(store.call_endings("r1").await.unwrap()[0].disposition == t("disposition"));
    let a = AckRecord {
        by: t("by"),
        via: AckVia::CallBack,
        at: at(3),
        text: Some(t("note")),
    };
    assert_eq!(
        store.record_ack("r1", a.clone()).await.unwrap(),
        AckResult::Recorded
    );
    assert!(store.first_ack("r1").await.unwrap() == Some(a));
    store
        .record_callback(&t("kind"), t("fields"))
        .await
        .unwrap();
    store
        .set_playbook_path(&t("name"), &t("claim"))
        .await
        .unwrap();
    assert!(store.playbook_path(&t("name")).await.unwrap() == Some(t("claim")));
    store.skip_pending("r1", &t("skip-all")).await.unwrap();
    store
        .end_page("r1", &t("outcome"), RunState::Finished)
        .await
        .unwrap();
    assert!(store.page_outcome("r1").await.unwrap() == Some(t("outcome")));
    assert!(matches!(
        store.record_ack("r1", ack("late", 4)).await.unwrap(),
        AckResult::Ended(o) if o == t("outcome")
    ));
    // And it reads the same after a restart.
    let again = place.reopen();
    assert!(again.calls("r1").await.unwrap()[0].recipient == c.recipient);
    assert!(again.page_sources("r1").await.unwrap() == Some(p.sources));
}

async fn huge_fields_round_trip<S: Store>(make: Factory<S>) {
    let huge = "x".repeat(1 << 20);
    round_trip_every_field(make, &huge).await;
}

async fn hostile_text_round_trips_exactly<S: Store>(make: Factory<S>) {
    round_trip_every_field(make, HOSTILE).await;
}

async fn unknown_run_ids_read_as_nothing<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    for id in ["nope", "", "r1'; --", HOSTILE] {
        assert_eq!(store.find_run(RunQuery::Id(id.into())).await.unwrap(), None);
        assert!(store.calls(id).await.unwrap().is_empty());
        assert_eq!(store.first_ack(id).await.unwrap(), None);
        assert_eq!(store.page_code(id).await.unwrap(), None);
        assert_eq!(store.page_sources(id).await.unwrap(), None);
        assert_eq!(store.page_outcome(id).await.unwrap(), None);
        assert!(store.call_endings(id).await.unwrap().is_empty());
        assert!(store.page_rounds(id).await.unwrap().is_empty());
        assert!(store.call_slots(id).await.unwrap().is_empty());
        assert_eq!(
            store.record_ack(id, ack("a", 0)).await.unwrap(),
            AckResult::NoSuchRun
        );
    }
}

async fn writes_about_unknown_runs_record_nothing<S: Store>(make: Factory<S>) {
    let place = with_page(make, 1).await;
    let store = &place.store;
    let before = (
        store.runs(None, 10).await.unwrap(),
        store.calls("r1").await.unwrap(),
        store.served_pages().await.unwrap(),
        store.going_codes().await.unwrap(),
    );
    // Each may succeed or fail; none may panic, record a run or touch another.
    let id = "nope";
    let _ = store.reopen_run(id, 1).await;
    let _ = store.end_run(id, RunState::Finished).await;
    let _ = store.skip(id, 0, "r").await;
    let _ = store.sending(id, 0, 1).await;
    let _ = store.not_placed(id, 0).await;
    let _ = store.finished(id, 0, &placed("c", 1)).await;
    let _ = store.round_started(id, "s", 1, at(0), at(1)).await;
    let _ = store.skip_pending(id, "r").await;
    let _ = store.end_page(id, "acknowledged", RunState::Finished).await;
    let _ = store.set_disposition(id, 0, "ANSWERED", None, at(0)).await;
    let after = (
        store.runs(None, 10).await.unwrap(),
        store.calls("r1").await.unwrap(),
        store.served_pages().await.unwrap(),
        store.going_codes().await.unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(store.find_run(RunQuery::Id(id.into())).await.unwrap(), None);
    assert!(store.call_endings("r1").await.unwrap().is_empty());
    let q = dedup("p", "k", "13214991000", long_ago());
    assert_eq!(store.last_call(q).await.unwrap(), None);
}

async fn idx_out_of_range_changes_nothing<S: Store>(make: Factory<S>) {
    let place = with_page(make, 2).await;
    let store = &place.store;
    let before = store.calls("r1").await.unwrap();
    for idx in [2, 99, usize::MAX / 2, usize::MAX] {
        let _ = store.sending("r1", idx, 1).await;
        let _ = store.not_placed("r1", idx).await;
        let _ = store.finished("r1", idx, &placed("c", 1)).await;
        let _ = store.skip("r1", idx, "r").await;
        let _ = store
            .set_disposition("r1", idx, "ANSWERED", Some(1), at(0))
            .await;
    }
    assert_eq!(store.calls("r1").await.unwrap(), before);
    assert!(store.call_endings("r1").await.unwrap().is_empty());
    let q = dedup("p", "k", "13214991000", long_ago());
    assert_eq!(store.last_call(q).await.unwrap(), None);
    let s = &store.runs(None, 1).await.unwrap()[0];
    assert_eq!((s.placed, s.unknown, s.pending), (0, 0, 2));
}

async fn numbers_at_their_limits_round_trip_or_are_refused<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let mut r = run("r1", "p", 0);
    r.pid = Some(u32::MAX);
    r.fingerprint_version = i64::MAX;
    let mut c = call(i64::MAX as usize, "R", "1", Some("k"));
    c.state = CallState::Pending;
    let far = slot("s", u32::MAX, i64::MAX as u64);
    let begun = store
        .begin_page(
            r.clone(),
            page("r1", "AB12", "k", None),
            vec![(c.clone(), far.clone())],
        )
        .await
        .unwrap();
    assert_eq!(begun, None);
    assert_eq!(
        store.find_run(RunQuery::Id("r1".into())).await.unwrap(),
        Some(r)
    );
    assert_eq!(store.calls("r1").await.unwrap(), [c.clone()]);
    assert_eq!(store.call_slots("r1").await.unwrap(), [(c.idx, far)]);
    store.sending("r1", c.idx, u32::MAX).await.unwrap();
    store
        .set_disposition("r1", c.idx, "ANSWERED", Some(u32::MAX), at(0))
        .await
        .unwrap();
    assert_eq!(store.calls("r1").await.unwrap()[0].attempts, u32::MAX);
    let ending = &store.call_endings("r1").await.unwrap()[0];
    assert_eq!(
        (ending.idx, ending.billable_seconds),
        (c.idx, Some(u32::MAX))
    );
    store
        .round_started("r1", "s", u32::MAX, at(0), at(1))
        .await
        .unwrap();
    assert_eq!(store.page_rounds("r1").await.unwrap()[0].round, u32::MAX);
    // Beyond what a store can keep: refused, or kept exactly, never changed.
    let beyond = [
        (call(usize::MAX, "R", "1", None), slot("s", 1, 0)),
        (call(i64::MAX as usize + 1, "R", "1", None), slot("s", 1, 0)),
        (call(7, "R", "1", None), slot("s", 1, u64::MAX)),
        (call(8, "R", "1", None), slot("s", 1, i64::MAX as u64 + 1)),
    ];
    for (i, (c, s)) in beyond.into_iter().enumerate() {
        let id = format!("b{i}");
        let begun = store
            .begin_page(
                run(&id, "p", 0),
                page(&id, "X", "k", None),
                vec![(c.clone(), s.clone())],
            )
            .await;
        if begun.is_ok() {
            assert_eq!(
                store.calls(&id).await.unwrap(),
                std::slice::from_ref(&c),
                "{id}"
            );
            assert_eq!(
                store.call_slots(&id).await.unwrap(),
                [(c.idx, s.clone())],
                "{id}"
            );
        } else {
            assert_eq!(
                store.find_run(RunQuery::Id(id.clone())).await.unwrap(),
                None
            );
        }
        let added = store.add_call("r1", c.clone(), s.clone()).await;
        let slots = store.call_slots("r1").await.unwrap();
        if added.is_ok() {
            assert!(slots.contains(&(c.idx, s)), "{id}: {slots:?}");
        } else {
            assert_eq!(slots.len(), 1, "{id}: {slots:?}");
        }
        let id = format!("plain{i}");
        if store
            .begin_run(run(&id, "p", 0), vec![c.clone()])
            .await
            .is_ok()
        {
            assert_eq!(store.calls(&id).await.unwrap(), [c], "{id}");
        }
    }
}

async fn instants_are_kept_to_the_second<S: Store>(make: Factory<S>) {
    let place = fresh(make).await;
    let store = &place.store;
    let mut r = run("r1", "p", 0);
    let fine = Timestamp(at(0).0 + chrono::Duration::milliseconds(999));
    r.now = fine;
    r.started_at = fine;
    store.begin_run(r, plan(1)).await.unwrap();
    let found = store
        .find_run(RunQuery::Id("r1".into()))
        .await
        .unwrap()
        .unwrap();
    assert!(found.now == at(0) || found.now == fine, "{}", found.now);
    assert!(found.started_at == at(0) || found.started_at == fine);
}
