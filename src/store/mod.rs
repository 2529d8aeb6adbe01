//! Everything durable, behind one async interface.
//!
//! A live run records its whole plan before the first call, records that a
//! request is *about to be sent* before sending it, and its outcome when the
//! answer comes. So after a crash every call is either known (`placed`,
//! `failed`, `unknown`), known to have been possibly sent (`sending`, read as
//! `unknown`), or certainly not sent (`pending`) — which is what makes
//! `--resume` safe and dedup windows work across runs.
//!
//! [`Store`] names those records, the dedup look-up, the resume look-ups,
//! the claim of a playbook name and the run lock, in terms of [`crate::model`]
//! only: no database type crosses it, every multi-row write is one
//! transaction inside one method, and the lock is whatever the store makes
//! it (a file lock for [`sqlite::SqliteStore`], an advisory lock or a lease
//! for a shared database). Secrets are never handed to a store.

pub mod error;
pub mod sqlite;

use std::future::Future;

pub use error::StoreError;

use crate::model::{
    AckRecord, AckResult, CallEnding, CallRecord, CallSlot, Outcome, PageEnd, PageRecord,
    RoundRecord, RunRecord, RunState, RunSummary, ServedPage, Timestamp,
};

/// Which recorded run a resume or `runs show` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunQuery {
    /// The run with this id, whatever its playbook or state.
    Id(String),
    /// The newest unfinished (resumable) run of this playbook.
    LatestUnfinished(String),
    /// The newest unfinished (resumable) run started from the playbook at
    /// this path (as recorded): found even when the file changed or is gone.
    LatestUnfinishedFrom(String),
}

/// A dedup look-up: when was `dial` last called for `playbook` and `key`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupQuery {
    /// `name` of the playbook.
    pub playbook: String,
    /// The rendered dedup key.
    pub key: String,
    /// The dial string.
    pub dial: String,
    /// Only calls sent at or after this instant count.
    pub since: Timestamp,
    /// A run whose calls do not count (a resume's own).
    pub except_run: Option<String>,
}

/// Who holds a playbook's run lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockHolder {
    /// No run of the playbook is in progress.
    Free,
    /// A run is in progress, in process `pid` when the store knows it.
    Held {
        /// The holder's process id.
        pid: Option<u32>,
    },
}

/// Durable state of runs and calls; see the module documentation.
///
/// Every method is async and returns a `Send` future, so an engine task on a
/// multi-threaded runtime (a `serve` process) can await it; an
/// implementation over a blocking driver runs it on a blocking pool.
///
/// What every implementation keeps, so that one conformance suite
/// (`tests/store_conformance.rs`) holds them all to it:
/// - text exactly as given, whatever its size or characters;
/// - a call of a run by its index, once: a plan or a retry that repeats an
///   index recorded already is refused, and so is an index or an offset
///   too large to keep, never wrapped or clamped;
/// - instants to the second at least (the journal keeps whole seconds);
/// - a write naming a run or call index that is not recorded records
///   nothing (whether it also fails is the store's choice), and a read of
///   one finds nothing.
pub trait Store: Send + Sync + 'static {
    /// Held for as long as a run of one playbook is in progress; dropping it
    /// releases the lock, and so must the end of the process that holds it.
    type Lock: Send + Sync + 'static;

    /// Makes the store ready for a live run: creates or migrates what it needs.
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the run lock of playbook `playbook`, or says who holds it
    /// ([`StoreError::Locked`]).
    fn lock(
        &self,
        playbook: &str,
        started_at: Timestamp,
    ) -> impl Future<Output = Result<Self::Lock, StoreError>> + Send;

    /// Whether `lock` still excludes other runs: a lock file deleted by a
    /// careless clean-up, or a lease lost, no longer does, and the run must
    /// start no new call ([`StoreError::LockReplaced`]).
    fn check_lock(&self, lock: &Self::Lock) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether a run of `playbook` holds its lock, without taking it.
    fn lock_holder(&self, playbook: &str) -> impl Future<Output = LockHolder> + Send;

    /// The canonical path of the file that holds playbook name `name`, if any.
    fn playbook_path(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Records `path` as the file of playbook name `name` from now on.
    fn set_playbook_path(
        &self,
        name: &str,
        path: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a new run and its whole plan, all or nothing.
    ///
    /// `run.state` is [`RunState::Running`] for a run about to call, or
    /// [`RunState::Refused`] (with `finished_at`) for one refused before any call.
    fn begin_run(
        &self,
        run: RunRecord,
        calls: Vec<CallRecord>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks run `run_id` as running again (a resume) in process `pid`.
    fn reopen_run(
        &self,
        run_id: &str,
        pid: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks run `run_id` as ended in `state`.
    fn end_run(
        &self,
        run_id: &str,
        state: RunState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that call `idx` is not made after all, and why.
    fn skip(
        &self,
        run_id: &str,
        idx: usize,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records, durably, that request `attempt` of call `idx` is about to be sent.
    fn sending(
        &self,
        run_id: &str,
        idx: usize,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the last request for call `idx` certainly did not place
    /// it, so a crash before the next try leaves it to be called.
    fn not_placed(
        &self,
        run_id: &str,
        idx: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the final outcome of call `idx`.
    fn finished(
        &self,
        run_id: &str,
        idx: usize,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The run asked for, if recorded.
    fn find_run(
        &self,
        query: RunQuery,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;

    /// The recorded plan of run `run_id`, in plan order.
    fn calls(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<CallRecord>, StoreError>> + Send;

    /// Recent runs, newest first, of one playbook or of all.
    fn runs(
        &self,
        playbook: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunSummary>, StoreError>> + Send;

    /// When the call asked about was last placed, possibly placed or sent.
    fn last_call(
        &self,
        query: DedupQuery,
    ) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;

    /// Records a new page, its run and every call of its timeline, all or nothing.
    ///
    /// A page with a route (a pager's) is recorded only if no page with a
    /// route and the same key is going: that check and the record are one
    /// step, so two alerts racing for one key make one page. `Some` names
    /// the page going, and nothing was recorded.
    fn begin_page(
        &self,
        run: RunRecord,
        page: PageRecord,
        calls: Vec<(CallRecord, CallSlot)>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The pages with a route (a pager's) that have not ended, oldest first.
    fn served_pages(&self) -> impl Future<Output = Result<Vec<ServedPage>, StoreError>> + Send;

    /// The pages with a route that have not ended but have an
    /// acknowledgement recorded (by `callbook ack` from another process,
    /// say): a pager looks once a second for all its pages at once.
    fn served_acks(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Records that a round of page `run_id` started, and when the next is due.
    fn round_started(
        &self,
        run_id: &str,
        step: &str,
        round: u32,
        started_at: Timestamp,
        due_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records an acknowledgement of page `run_id` unless the page ended.
    fn record_ack(
        &self,
        run_id: &str,
        ack: AckRecord,
    ) -> impl Future<Output = Result<AckResult, StoreError>> + Send;

    /// The first acknowledgement of page `run_id` (the one that counts), if any:
    /// the first recorded, whatever time it carries.
    fn first_ack(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<AckRecord>, StoreError>> + Send;

    /// Marks every call of `run_id` not yet sent as skipped, for `reason`.
    fn skip_pending(
        &self,
        run_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends page `run_id` with `outcome`, its run in `state`.
    fn end_page(
        &self,
        run_id: &str,
        outcome: &str,
        state: RunState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The short codes of the pages still going.
    fn going_codes(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The latest page of `playbook` and dedup `key` that ended
    /// (acknowledged or exhausted) at or after `since`.
    fn recent_page(
        &self,
        playbook: &str,
        key: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<Option<PageEnd>, StoreError>> + Send;

    /// Records one callback as received: its kind and its fields as JSON.
    fn record_callback(
        &self,
        kind: &str,
        fields: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records how call `idx` of `run_id` ended.
    fn set_disposition(
        &self,
        run_id: &str,
        idx: usize,
        disposition: &str,
        billable_seconds: Option<u32>,
        ended_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds call `record` (a retry) to page `run_id`, at `slot` of its ladder.
    fn add_call(
        &self,
        run_id: &str,
        record: CallRecord,
        slot: CallSlot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The short code of page `run_id`, if that run is a page.
    fn page_code(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// What page `run_id` recorded as its sources (JSON), if that run is a page.
    fn page_sources(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// How page `run_id` ended (`acknowledged`, `exhausted`), once it did.
    fn page_outcome(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// How each call of page `run_id` that ended ended (its `END` callback).
    fn call_endings(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<CallEnding>, StoreError>> + Send;

    /// The rounds page `run_id` started, in order.
    fn page_rounds(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<RoundRecord>, StoreError>> + Send;

    /// Where each call of page `run_id` sits on its ladder, by index.
    fn call_slots(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<(usize, CallSlot)>, StoreError>> + Send;

    /// The page of `playbook` with dedup key `key` that is still going, if any.
    fn going_page(
        &self,
        playbook: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}
