//! The SQLite store: the journal file and the run locks in a state directory.
//!
//! SQLite and file locks block, so every call runs on tokio's blocking pool
//! behind one mutex (SQLite serialises writers anyway); the async workers
//! that place calls never wait on the disk themselves.

pub mod journal;
pub mod lock;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use journal::Journal;

use super::{DedupQuery, LockHolder, RunQuery, Store, StoreError};
use crate::model::{
    AckRecord, AckResult, CallEnding, CallRecord, CallSlot, Outcome, PageEnd, PageRecord,
    RoundRecord, RunRecord, RunState, RunSummary, ServedPage, Timestamp,
};

/// The journal as opened so far.
#[derive(Debug)]
enum Slot {
    /// Not opened yet: the first call opens (or, writable, creates) it.
    Closed,
    /// Read-only, and there is no journal: every read finds nothing.
    Missing,
    /// Open.
    Open(Box<Journal>),
}

/// A [`Store`] over the SQLite journal and the file locks in a state directory.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    dir: PathBuf,
    writable: bool,
    slot: Arc<Mutex<Slot>>,
}

impl SqliteStore {
    /// The store in `state_dir` for live runs: created (0700, 0600) on first
    /// use, an older journal migrated, a newer one refused.
    pub fn writable(state_dir: PathBuf) -> SqliteStore {
        SqliteStore::new(state_dir, true)
    }

    /// The store in `state_dir` for dry runs and listings: never written,
    /// readable on a read-only directory, and empty when there is no journal.
    pub fn read_only(state_dir: PathBuf) -> SqliteStore {
        SqliteStore::new(state_dir, false)
    }

    fn new(dir: PathBuf, writable: bool) -> SqliteStore {
        SqliteStore {
            dir,
            writable,
            slot: Arc::new(Mutex::new(Slot::Closed)),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the journal on the blocking pool; `absent` answers when a
    /// read-only store has no journal.
    fn call<T, F>(
        &self,
        absent: fn() -> Result<T, StoreError>,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Journal) -> Result<T, StoreError> + Send + 'static,
    {
        let (slot, dir, writable) = (self.slot.clone(), self.dir.clone(), self.writable);
        let task = tokio::task::spawn_blocking(move || {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if matches!(*slot, Slot::Closed) {
                *slot = if writable {
                    Slot::Open(Box::new(Journal::open(&dir)?))
                } else {
                    Journal::open_read_only(&dir)?
                        .map_or(Slot::Missing, |j| Slot::Open(Box::new(j)))
                };
            }
            match &mut *slot {
                Slot::Open(journal) => f(journal),
                Slot::Closed | Slot::Missing => absent(),
            }
        });
        async move { task.await.map_err(|e| StoreError::Worker(e.to_string()))? }
    }

    fn write<F>(&self, f: F) -> impl Future<Output = Result<(), StoreError>> + Send + 'static
    where
        F: FnOnce(&mut Journal) -> Result<(), StoreError> + Send + 'static,
    {
        self.call(|| Err(StoreError::ReadOnly), f)
    }
}

impl Store for SqliteStore {
    type Lock = lock::RunLock;

    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.call(|| Ok(()), |_| Ok(()))
    }

    fn lock(
        &self,
        playbook: &str,
        started_at: Timestamp,
    ) -> impl Future<Output = Result<Self::Lock, StoreError>> + Send {
        let (dir, playbook) = (self.dir.clone(), playbook.to_string());
        let task = tokio::task::spawn_blocking(move || {
            lock::acquire(&dir, &playbook, &started_at.to_string())
        });
        async move { task.await.map_err(|e| StoreError::Worker(e.to_string()))? }
    }

    fn check_lock(&self, lock: &Self::Lock) -> impl Future<Output = Result<(), StoreError>> + Send {
        let identity = lock.identity();
        let task = tokio::task::spawn_blocking(move || match identity {
            Some(i) if !i.intact() => Err(StoreError::LockReplaced(i.path().to_path_buf())),
            _ => Ok(()),
        });
        async move { task.await.map_err(|e| StoreError::Worker(e.to_string()))? }
    }

    fn lock_holder(&self, playbook: &str) -> impl Future<Output = LockHolder> + Send {
        let (dir, playbook) = (self.dir.clone(), playbook.to_string());
        let task = tokio::task::spawn_blocking(move || lock::probe(&dir, &playbook));
        // Cannot tell: claim nothing about the run.
        async move { task.await.unwrap_or(LockHolder::Held { pid: None }) }
    }

    fn playbook_path(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let name = name.to_string();
        self.call(|| Ok(None), move |j| j.playbook_path(&name))
    }

    fn set_playbook_path(
        &self,
        name: &str,
        path: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (name, path) = (name.to_string(), path.to_string());
        self.write(move |j| j.set_playbook_path(&name, &path))
    }

    fn begin_run(
        &self,
        run: RunRecord,
        calls: Vec<CallRecord>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(move |j| j.begin_run(&run, &calls))
    }

    fn reopen_run(
        &self,
        run_id: &str,
        pid: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let run_id = run_id.to_string();
        self.write(move |j| j.reopen_run(&run_id, pid))
    }

    fn end_run(
        &self,
        run_id: &str,
        state: RunState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let run_id = run_id.to_string();
        self.write(move |j| j.end_run(&run_id, state))
    }

    fn skip(
        &self,
        run_id: &str,
        idx: usize,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, reason) = (run_id.to_string(), reason.to_string());
        self.write(move |j| j.skip(&run_id, idx, &reason))
    }

    fn sending(
        &self,
        run_id: &str,
        idx: usize,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let run_id = run_id.to_string();
        self.write(move |j| j.sending(&run_id, idx, attempt))
    }

    fn not_placed(
        &self,
        run_id: &str,
        idx: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let run_id = run_id.to_string();
        self.write(move |j| j.not_placed(&run_id, idx))
    }

    fn finished(
        &self,
        run_id: &str,
        idx: usize,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, outcome) = (run_id.to_string(), outcome.clone());
        self.write(move |j| j.finished(&run_id, idx, &outcome))
    }

    fn find_run(
        &self,
        query: RunQuery,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send {
        self.call(|| Ok(None), move |j| j.find_run(&query))
    }

    fn calls(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<CallRecord>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(Vec::new()), move |j| j.calls(&run_id))
    }

    fn runs(
        &self,
        playbook: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunSummary>, StoreError>> + Send {
        let playbook = playbook.map(str::to_string);
        self.call(
            || Ok(Vec::new()),
            move |j| j.runs(playbook.as_deref(), limit),
        )
    }

    fn last_call(
        &self,
        query: DedupQuery,
    ) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send {
        self.call(|| Ok(None), move |j| j.last_call(&query))
    }

    fn begin_page(
        &self,
        run: RunRecord,
        page: PageRecord,
        calls: Vec<(CallRecord, CallSlot)>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        self.call(
            || Err(StoreError::ReadOnly),
            move |j| j.begin_page(&run, &page, &calls),
        )
    }

    fn served_pages(&self) -> impl Future<Output = Result<Vec<ServedPage>, StoreError>> + Send {
        self.call(|| Ok(Vec::new()), Journal::served_pages)
    }

    fn served_acks(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        self.call(|| Ok(Vec::new()), Journal::served_acks)
    }

    fn round_started(
        &self,
        run_id: &str,
        step: &str,
        round: u32,
        started_at: Timestamp,
        due_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, step) = (run_id.to_string(), step.to_string());
        self.write(move |j| j.round_started(&run_id, &step, round, started_at, due_at))
    }

    fn record_ack(
        &self,
        run_id: &str,
        ack: AckRecord,
    ) -> impl Future<Output = Result<AckResult, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(
            || Ok(AckResult::NoSuchRun),
            move |j| j.record_ack(&run_id, &ack),
        )
    }

    fn first_ack(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<AckRecord>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(None), move |j| j.first_ack(&run_id))
    }

    fn skip_pending(
        &self,
        run_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, reason) = (run_id.to_string(), reason.to_string());
        self.write(move |j| j.skip_pending(&run_id, &reason))
    }

    fn end_page(
        &self,
        run_id: &str,
        outcome: &str,
        state: RunState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, outcome) = (run_id.to_string(), outcome.to_string());
        self.write(move |j| j.end_page(&run_id, &outcome, state))
    }

    fn going_codes(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        self.call(|| Ok(Vec::new()), |j| j.going_codes())
    }

    fn recent_page(
        &self,
        playbook: &str,
        key: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<Option<PageEnd>, StoreError>> + Send {
        let (playbook, key) = (playbook.to_string(), key.to_string());
        self.call(|| Ok(None), move |j| j.recent_page(&playbook, &key, since))
    }

    fn record_callback(
        &self,
        kind: &str,
        fields: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let kind = kind.to_string();
        self.write(move |j| j.record_callback(&kind, &fields))
    }

    fn set_disposition(
        &self,
        run_id: &str,
        idx: usize,
        disposition: &str,
        billable_seconds: Option<u32>,
        ended_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (run_id, disposition) = (run_id.to_string(), disposition.to_string());
        self.write(move |j| {
            j.set_disposition(&run_id, idx, &disposition, billable_seconds, ended_at)
        })
    }

    fn add_call(
        &self,
        run_id: &str,
        record: CallRecord,
        slot: CallSlot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let run_id = run_id.to_string();
        self.write(move |j| j.add_call(&run_id, &record, &slot))
    }

    fn page_code(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(None), move |j| j.page_code(&run_id))
    }

    fn page_sources(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(None), move |j| j.page_sources(&run_id))
    }

    fn page_outcome(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(None), move |j| j.page_outcome(&run_id))
    }

    fn call_endings(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<CallEnding>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(Vec::new()), move |j| j.call_endings(&run_id))
    }

    fn page_rounds(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<RoundRecord>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(Vec::new()), move |j| j.page_rounds(&run_id))
    }

    fn call_slots(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<(usize, CallSlot)>, StoreError>> + Send {
        let run_id = run_id.to_string();
        self.call(|| Ok(Vec::new()), move |j| j.call_slots(&run_id))
    }

    fn going_page(
        &self,
        playbook: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let (playbook, key) = (playbook.to_string(), key.to_string());
        self.call(|| Ok(None), move |j| j.going_page(&playbook, &key))
    }
}
