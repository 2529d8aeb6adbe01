//! The journal's records of pages: the page beside its run, each call's
//! place on the ladder, the rounds as they start, acknowledgements (the
//! first one wins) and every callback received.

use rusqlite::{OptionalExtension, params};

use super::{Journal, db_error, insert_run, int};
use crate::model::{
    AckRecord, AckResult, CallEnding, CallRecord, CallSlot, PageEnd, PageRecord, RoundRecord,
    RunRecord, RunState, ServedPage, Timestamp,
};

/// The pages with a route that have not ended (the pager's pages going).
const SERVED_GOING: &str = "p.route IS NOT NULL AND p.outcome IS NULL
    AND r.state IN ('running', 'interrupted')";
use crate::store::StoreError;

impl Journal {
    /// Records a new page: its run, its page record and every call of its
    /// timeline, all or nothing.
    pub fn begin_page(
        &mut self,
        run: &RunRecord,
        page: &PageRecord,
        calls: &[(CallRecord, CallSlot)],
    ) -> Result<Option<String>, StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        if page.route.is_some() {
            let going: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT p.run_id FROM pages p JOIN runs r ON r.id = p.run_id
                         WHERE p.dedup_key = ?1 AND {SERVED_GOING} LIMIT 1"
                    ),
                    params![page.dedup_key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if going.is_some() {
                return Ok(going);
            }
        }
        insert_run(&tx, run).map_err(err)?;
        tx.execute(
            "INSERT INTO pages (run_id, code, dedup_key, sources, route) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![page.run_id, page.code, page.dedup_key, page.sources, page.route],
        )
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO calls (run_id, idx, recipient, dial, rule, service_type, service_id,
                     fingerprint, dedup_key, state, reason, step, round, at_offset)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(err)?;
            for (c, slot) in calls {
                let idx = int("call index", c.idx).map_err(err)?;
                let offset = int("offset", slot.at_offset).map_err(err)?;
                insert
                    .execute(params![
                        run.id,
                        idx,
                        c.recipient,
                        c.to,
                        c.rule,
                        c.service_type,
                        c.service_id,
                        c.fingerprint,
                        c.dedup_key,
                        c.state,
                        c.reason,
                        slot.step,
                        slot.round,
                        offset
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(None)
    }

    /// The pages with a route that have not ended, oldest first.
    pub fn served_pages(&mut self) -> Result<Vec<ServedPage>, StoreError> {
        let columns =
            "p.run_id, r.playbook, r.path, p.route, p.dedup_key, p.code, r.started_at, r.state";
        self.served(columns, "ORDER BY r.started_at, p.run_id", |r| {
            let (run_id, playbook, path, route) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let (key, code, started_at, state) = (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
            Ok(ServedPage {
                run_id,
                playbook,
                path,
                route,
                key,
                code,
                started_at,
                state,
            })
        })
    }

    /// The pages with a route that have not ended and have an acknowledgement.
    pub fn served_acks(&mut self) -> Result<Vec<String>, StoreError> {
        let acked = "AND EXISTS (SELECT 1 FROM acks a WHERE a.run_id = p.run_id)";
        self.served("p.run_id", acked, |r| r.get(0))
    }

    /// `columns` of the pages with a route that have not ended (`more`:
    /// further conditions, an order), each row read by `row`.
    fn served<T>(
        &self,
        columns: &str,
        more: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        if self.version < 4 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {columns} FROM pages p JOIN runs r ON r.id = p.run_id WHERE {SERVED_GOING} {more}"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt.query_map([], row).map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// Records that a round started at `started_at` and that the next is due at `due_at`.
    pub fn round_started(
        &self,
        run_id: &str,
        step: &str,
        round: u32,
        started_at: Timestamp,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO page_rounds (run_id, step, round, started_at, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_id, step, round, started_at, due_at],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Records an acknowledgement of page `run_id`, unless it has ended.
    pub fn record_ack(&mut self, run_id: &str, ack: &AckRecord) -> Result<AckResult, StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let run: Option<RunState> = tx
            .query_row(
                "SELECT state FROM runs WHERE id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(state) = run else {
            return Ok(AckResult::NoSuchRun);
        };
        let page: Option<Option<String>> = tx
            .query_row(
                "SELECT outcome FROM pages WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let result = match page {
            None => AckResult::NotAPage,
            Some(Some(outcome)) => AckResult::Ended(outcome),
            Some(None) if matches!(state, RunState::Finished | RunState::Refused) => {
                AckResult::Ended(state.to_string())
            }
            Some(None) => {
                tx.execute(
                    "INSERT INTO acks (run_id, at, by, via, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, ack.at, ack.by, ack.via, ack.text],
                )
                .map_err(err)?;
                AckResult::Recorded
            }
        };
        tx.commit().map_err(err)?;
        Ok(result)
    }

    /// The first acknowledgement recorded for page `run_id`, if any.
    pub fn first_ack(&self, run_id: &str) -> Result<Option<AckRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT by, via, at, text FROM acks WHERE run_id = ?1 ORDER BY id LIMIT 1",
                params![run_id],
                |r| {
                    Ok(AckRecord {
                        by: r.get(0)?,
                        via: r.get(1)?,
                        at: r.get(2)?,
                        text: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Marks every call of `run_id` not yet sent as skipped, for `reason`.
    pub fn skip_pending(&self, run_id: &str, reason: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE calls SET state = 'skipped', reason = ?2 WHERE run_id = ?1 AND state = 'pending'",
                params![run_id, reason],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Ends page `run_id` with `outcome` (`acknowledged`, `exhausted`), its run in `state`.
    pub fn end_page(
        &mut self,
        run_id: &str,
        outcome: &str,
        state: RunState,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let now = Timestamp::now();
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "UPDATE pages SET outcome = ?2, ended_at = ?3 WHERE run_id = ?1",
            params![run_id, outcome, now],
        )
        .map_err(err)?;
        tx.execute(
            "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
            params![run_id, state, now],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The short codes of the pages still going, so a new page takes another.
    pub fn going_codes(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.code FROM pages p JOIN runs r ON r.id = p.run_id
                 WHERE p.outcome IS NULL AND r.state IN ('running', 'interrupted', 'stopped')",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// The latest page of `playbook` with dedup key `key` that ended
    /// acknowledged or exhausted at or after `since`.
    pub fn recent_page(
        &self,
        playbook: &str,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<PageEnd>, StoreError> {
        self.conn
            .query_row(
                "SELECT p.run_id, p.outcome, p.ended_at FROM pages p JOIN runs r ON r.id = p.run_id
                 WHERE r.playbook = ?1 AND p.dedup_key = ?2
                   AND p.outcome IN ('acknowledged', 'exhausted') AND p.ended_at >= ?3
                 ORDER BY p.ended_at DESC LIMIT 1",
                params![playbook, key, since],
                |r| {
                    Ok(PageEnd {
                        run_id: r.get(0)?,
                        outcome: r.get(1)?,
                        ended_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Records one callback as received (`fields` as JSON, no secret in them).
    pub fn record_callback(&self, kind: &str, fields: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO callbacks (received_at, kind, fields) VALUES (?1, ?2, ?3)",
                params![Timestamp::now(), kind, fields],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Records how call `idx` of `run_id` ended.
    pub fn set_disposition(
        &self,
        run_id: &str,
        idx: usize,
        disposition: &str,
        billable_seconds: Option<u32>,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE calls SET disposition = ?3, billable_seconds = ?4, ended_at = ?5
                 WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx as i64, disposition, billable_seconds, ended_at],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Adds one call (a retry) to page `run_id`.
    pub fn add_call(
        &self,
        run_id: &str,
        c: &CallRecord,
        slot: &CallSlot,
    ) -> Result<(), StoreError> {
        let idx = int("call index", c.idx).map_err(|e| self.err(&e))?;
        let offset = int("offset", slot.at_offset).map_err(|e| self.err(&e))?;
        self.conn
            .execute(
                "INSERT INTO calls (run_id, idx, recipient, dial, rule, service_type, service_id,
                 fingerprint, dedup_key, state, reason, step, round, at_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    run_id,
                    idx,
                    c.recipient,
                    c.to,
                    c.rule,
                    c.service_type,
                    c.service_id,
                    c.fingerprint,
                    c.dedup_key,
                    c.state,
                    c.reason,
                    slot.step,
                    slot.round,
                    offset
                ],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// One text column of page `run_id`: `None` when the run is no page,
    /// the journal predates pages or the column is empty.
    fn page_text(&self, sql: &str, run_id: &str) -> Result<Option<String>, StoreError> {
        if self.version < 3 {
            return Ok(None);
        }
        self.conn
            .query_row(sql, params![run_id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(&e))
    }

    /// The short code of page `run_id`, if the run is a page.
    pub fn page_code(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.page_text("SELECT code FROM pages WHERE run_id = ?1", run_id)
    }

    /// The sources page `run_id` recorded (JSON), if that run is a page.
    pub fn page_sources(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.page_text("SELECT sources FROM pages WHERE run_id = ?1", run_id)
    }

    /// How page `run_id` ended (`acknowledged`, `exhausted`), once it did.
    pub fn page_outcome(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.page_text("SELECT outcome FROM pages WHERE run_id = ?1", run_id)
    }

    /// How each call of page `run_id` that ended ended, by index.
    pub fn call_endings(&self, run_id: &str) -> Result<Vec<CallEnding>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, disposition, billable_seconds, ended_at FROM calls
                 WHERE run_id = ?1 AND disposition IS NOT NULL ORDER BY idx",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                let idx: i64 = r.get(0)?;
                Ok(CallEnding {
                    idx: usize::try_from(idx).unwrap_or(usize::MAX),
                    disposition: r.get(1)?,
                    billable_seconds: r.get(2)?,
                    ended_at: r.get(3)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// The rounds page `run_id` started: step, round, when, and when the next was due.
    pub fn page_rounds(&self, run_id: &str) -> Result<Vec<RoundRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT step, round, started_at, due_at FROM page_rounds WHERE run_id = ?1
                 ORDER BY started_at, rowid",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                Ok(RoundRecord {
                    step: r.get(0)?,
                    round: r.get(1)?,
                    started_at: r.get(2)?,
                    due_at: r.get(3)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// Where each call of page `run_id` sits on the ladder, by index.
    pub fn call_slots(&self, run_id: &str) -> Result<Vec<(usize, CallSlot)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, step, round, at_offset FROM calls WHERE run_id = ?1 AND step IS NOT NULL
                 ORDER BY idx",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                let idx: i64 = r.get(0)?;
                let offset: i64 = r.get(3)?;
                Ok((
                    usize::try_from(idx).unwrap_or(usize::MAX),
                    CallSlot {
                        step: r.get(1)?,
                        round: r.get(2)?,
                        at_offset: u64::try_from(offset).unwrap_or(0),
                    },
                ))
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// The page of `playbook` with dedup key `key` still going, if any.
    pub fn going_page(&self, playbook: &str, key: &str) -> Result<Option<String>, StoreError> {
        if self.version < 3 {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT p.run_id FROM pages p JOIN runs r ON r.id = p.run_id
                 WHERE r.playbook = ?1 AND p.dedup_key = ?2 AND p.outcome IS NULL
                   AND r.state = 'running'
                 ORDER BY r.started_at DESC LIMIT 1",
                params![playbook, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))
    }
}
