//! The SQLite journal: one file in the state directory (WAL,
//! `synchronous=FULL`), read and written synchronously; [`super::SqliteStore`]
//! runs it on the blocking pool.
//!
//! Secrets are never written. Rendered messages are written only with
//! `--journal-messages`; otherwise a SHA-256 fingerprint of each request lets
//! a resumed run prove it would send exactly what was planned.
//!
//! The journal is private to its owner: the state directory is created 0700
//! and the database, its WAL and shared-memory files are 0600. It records the
//! canonical path of each playbook name, so two files sharing a `name:` never
//! share (and silently suppress each other through) one dedup history.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::model::{
    AckVia, CallRecord, CallState, Outcome, RunRecord, RunState, RunSummary, ServiceType,
    Timestamp, UnknownValue,
};
use crate::store::{DedupQuery, RunQuery, StoreError};

mod pages;

/// The journal format this build writes; a newer file is refused, not guessed at,
/// and an older one is migrated when a live run opens it.
///
/// Format 2 added the caller id, the process id and the fingerprint format of
/// each run, and the `playbooks` table of canonical paths. Format 3 added
/// pages: the `pages`, `page_rounds`, `acks` and `callbacks` tables, and
/// each call's step, round, planned offset and outcome. Format 4 added the
/// route of a pager's page (`pages.route`), and indexes to find the pages
/// going and their acknowledgements.
pub const SCHEMA_VERSION: i64 = 4;

/// The journal's file name inside the state directory.
pub const FILE_NAME: &str = "journal.sqlite3";

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// The format of the file as opened (older files are read as they are).
    version: i64,
    /// A private copy read instead of a journal that could not be opened in place.
    _copy: Option<tempfile::TempDir>,
    /// The file a live run writes, to notice it being deleted or replaced.
    file: Option<FileIdentity>,
}

/// Which file a path named when it was opened, to tell whether it still does.
///
/// A file deleted or replaced while a process holds it open is still written
/// by that process, but nobody will ever read it: a journal written there
/// records nothing, a lock held there excludes nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The identity of the open `file`, known by `path`.
    pub fn of(path: &Path, file: &std::fs::File) -> Option<FileIdentity> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let meta = file.metadata().ok()?;
            Some(FileIdentity {
                path: path.to_path_buf(),
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (path, file);
            None
        }
    }

    /// Whether the path still names the file opened.
    pub fn intact(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
        }
        #[cfg(not(unix))]
        true
    }

    /// The path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` (and its parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| StoreError::Io {
        what: "state directory",
        path: dir.to_path_buf(),
        reason: crate::playbook::io_reason(&e),
    })
}

/// Makes an existing file readable by its owner only (best effort: a file
/// that cannot be changed is reported by whatever opens it next).
///
/// A symbolic link is left alone: changing the mode through it would change
/// whatever file someone pointed it at.
pub fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_file()
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::debug!("cannot make `{}` private: {e}", path.display());
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Creates the journal file 0600 before SQLite does, so SQLite (which gives
/// the WAL and shared-memory files the database's mode) never makes it 0644.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(journal_io(path, crate::playbook::io_reason(&e))),
    }
}

/// Refuses a journal that is a symbolic link: callbook would write its
/// records, and set private modes, wherever the link points.
fn refuse_symlink(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(journal_io(
            path,
            "is a symbolic link: the journal must be a regular file in the state directory"
                .to_string(),
        )),
        _ => Ok(()),
    }
}

/// The journal file at `path` cannot be used, for `reason`.
fn journal_io(path: &Path, reason: String) -> StoreError {
    StoreError::Io {
        what: "journal",
        path: path.to_path_buf(),
        reason,
    }
}

/// The WAL and shared-memory files SQLite keeps next to `path`.
fn side_files(path: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm")]
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    path TEXT NOT NULL,
    now TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL,
    caller_id TEXT,
    pid INTEGER,
    fingerprint_version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS playbooks (name TEXT PRIMARY KEY, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_playbook ON runs (playbook, started_at);
CREATE TABLE IF NOT EXISTS calls (
    run_id TEXT NOT NULL REFERENCES runs (id),
    idx INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    dial TEXT NOT NULL,
    rule TEXT,
    service_type TEXT,
    service_id TEXT,
    fingerprint TEXT,
    dedup_key TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    call_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    sent_at TEXT,
    finished_at TEXT,
    step TEXT,
    round INTEGER,
    at_offset INTEGER,
    disposition TEXT,
    billable_seconds INTEGER,
    ended_at TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX IF NOT EXISTS calls_by_dedup ON calls (dedup_key, dial, sent_at);
";

/// The tables of pages (format 3), for a new journal and for a migration.
const PAGE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS pages (
    run_id TEXT PRIMARY KEY REFERENCES runs (id),
    code TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    sources TEXT NOT NULL,
    outcome TEXT,
    ended_at TEXT,
    route TEXT
);
CREATE TABLE IF NOT EXISTS page_rounds (
    run_id TEXT NOT NULL REFERENCES runs (id),
    step TEXT NOT NULL,
    round INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step, round)
);
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    via TEXT NOT NULL,
    text TEXT
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL
);
";

/// The indexes of format 4, for a new journal and for a migration.
const SERVED_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS pages_served_going ON pages (dedup_key) WHERE route IS NOT NULL AND outcome IS NULL;
CREATE INDEX IF NOT EXISTS acks_by_run ON acks (run_id);
";

/// Format 3 to 4: the route of a pager's page.
const MIGRATE_3_TO_4: &str = "
ALTER TABLE pages ADD COLUMN route TEXT;
UPDATE meta SET value = '4' WHERE key = 'schema_version';
";

/// Format 2 to 3: pages, their rounds, acknowledgements and callbacks.
const MIGRATE_2_TO_3: &str = "
ALTER TABLE calls ADD COLUMN step TEXT;
ALTER TABLE calls ADD COLUMN round INTEGER;
ALTER TABLE calls ADD COLUMN at_offset INTEGER;
ALTER TABLE calls ADD COLUMN disposition TEXT;
ALTER TABLE calls ADD COLUMN billable_seconds INTEGER;
ALTER TABLE calls ADD COLUMN ended_at TEXT;
";

/// Format 1 to 2: what each run calls from and who runs it, and playbook paths.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE runs ADD COLUMN caller_id TEXT;
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN fingerprint_version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE IF NOT EXISTS playbooks (name TEXT PRIMARY KEY, path TEXT NOT NULL);
UPDATE meta SET value = '2' WHERE key = 'schema_version';
";

fn db_error(path: &Path, e: &rusqlite::Error) -> StoreError {
    let detail = e.to_string();
    let hint = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            " (the file is corrupt or not a callbook journal)"
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => " (the file is corrupt)",
        Some(rusqlite::ErrorCode::ReadOnly) => " (the file or its directory is read-only)",
        Some(rusqlite::ErrorCode::DiskFull) => " (the disk is full)",
        Some(rusqlite::ErrorCode::SystemIoFailure) => {
            " (a write failed: is the disk full or failing?)"
        }
        Some(rusqlite::ErrorCode::CannotOpen) => " (cannot open the file)",
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            " (another process holds it)"
        }
        _ => "",
    };
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = e
        && let Some(value) = inner.downcast_ref::<UnknownValue>()
    {
        return StoreError::Unknown {
            path: path.to_path_buf(),
            value: value.clone(),
        };
    }
    StoreError::Database {
        path: path.to_path_buf(),
        detail,
        hint,
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` for a live run.
    ///
    /// Migrates a journal written by an older callbook; refuses a newer one.
    pub fn open(dir: &Path) -> Result<Journal, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(FILE_NAME);
        refuse_symlink(&path)?;
        create_private_file(&path)?;
        make_private(&path);
        let file = std::fs::File::open(&path)
            .ok()
            .and_then(|f| FileIdentity::of(&path, &f));
        for side in side_files(&path) {
            make_private(&side);
        }
        let conn = Connection::open(&path).map_err(|e| db_error(&path, &e))?;
        let mut journal = Journal::prepared(conn, path, None, true)?;
        journal.file = file;
        Ok(journal)
    }

    /// Opens the journal in `dir` read-only, for dry runs and listings; `None` if there is none.
    ///
    /// Works on a read-only state directory too: SQLite cannot create the
    /// shared-memory file a WAL database needs there, so the journal is then
    /// read as an immutable file or, when a WAL file holds recent writes, from
    /// a private copy of both.
    pub fn open_read_only(dir: &Path) -> Result<Option<Journal>, StoreError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let in_place = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| db_error(&path, &e))
            .and_then(|conn| Journal::prepared(conn, path.clone(), None, false));
        match in_place {
            Ok(journal) => Ok(Some(journal)),
            Err(first) => Journal::open_unwritable(&path).map(Some).map_err(|_| first),
        }
    }

    /// Reads a journal whose directory does not let SQLite keep its WAL index.
    fn open_unwritable(path: &Path) -> Result<Journal, StoreError> {
        let [wal, _] = side_files(path);
        let wal_holds_writes = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
        if !wal_holds_writes {
            let absolute = std::path::absolute(path)
                .map_err(|e| journal_io(path, crate::playbook::io_reason(&e)))?;
            let mut uri = url::Url::from_file_path(&absolute)
                .map_err(|()| journal_io(path, "not a usable path".to_string()))?;
            uri.set_query(Some("immutable=1"));
            let conn = Connection::open_with_flags(
                uri.as_str(),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| db_error(path, &e))?;
            return Journal::prepared(conn, path.to_path_buf(), None, false);
        }
        let copy =
            tempfile::tempdir().map_err(|e| journal_io(path, crate::playbook::io_reason(&e)))?;
        let copied = copy.path().join(FILE_NAME);
        let [copied_wal, _] = side_files(&copied);
        std::fs::copy(path, &copied)
            .and_then(|_| std::fs::copy(&wal, &copied_wal))
            .map_err(|e| journal_io(path, crate::playbook::io_reason(&e)))?;
        let conn = Connection::open(&copied).map_err(|e| db_error(path, &e))?;
        Journal::prepared(conn, path.to_path_buf(), Some(copy), false)
    }

    /// A journal over `conn`, its format checked (and, `writable`, created or migrated).
    fn prepared(
        conn: Connection,
        path: PathBuf,
        copy: Option<tempfile::TempDir>,
        writable: bool,
    ) -> Result<Journal, StoreError> {
        let mut journal = Journal {
            conn,
            path,
            version: SCHEMA_VERSION,
            _copy: copy,
            file: None,
        };
        journal.prepare(writable)?;
        Ok(journal)
    }

    fn err(&self, e: &rusqlite::Error) -> StoreError {
        db_error(&self.path, e)
    }

    /// Checks the version and sets durability; creates or migrates tables when writable.
    fn prepare(&mut self, writable: bool) -> Result<(), StoreError> {
        let c = &self.conn;
        c.busy_timeout(Duration::from_secs(5))
            .map_err(|e| self.err(&e))?;
        // Reading a page proves the file is a database before anything else.
        let has_meta: bool = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(&e))?
            > 0;
        let mut version = SCHEMA_VERSION;
        let mut unfinished = false;
        if has_meta {
            let found: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(&e))?;
            version = match found {
                Some(v) => v.parse::<i64>().unwrap_or(0),
                // Created by a callbook killed before it recorded the format
                // (older ones did not create it in one transaction): no run
                // yet, so it is read as empty and created again for writing.
                None if !self.holds_runs()? => {
                    unfinished = true;
                    1
                }
                None => 0,
            };
            if version > SCHEMA_VERSION {
                return Err(StoreError::TooNew {
                    path: self.path.clone(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if version < 1 {
                return Err(StoreError::NotAJournal {
                    path: self.path.clone(),
                });
            }
        }
        if writable {
            c.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| self.err(&e))?;
            c.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| self.err(&e))?;
            if unfinished {
                self.create_tables(true)?;
            } else if version < SCHEMA_VERSION {
                self.migrate()?;
            } else {
                self.create_tables(false)?;
            }
            version = SCHEMA_VERSION;
        }
        self.version = version;
        Ok(())
    }

    /// Creates the tables and records the format, all or nothing, so a
    /// process killed meanwhile never leaves a journal without its format.
    ///
    /// `again`: the file holds the tables of a creation cut short (no format,
    /// no run), which are dropped first unless another process finished it.
    fn create_tables(&mut self, again: bool) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let finished: Option<String> = if again {
            tx.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
        } else {
            None
        };
        if again && finished.is_none() {
            tx.execute_batch(
                "DROP TABLE IF EXISTS acks; DROP TABLE IF EXISTS page_rounds;
                 DROP TABLE IF EXISTS pages; DROP TABLE IF EXISTS callbacks;
                 DROP TABLE IF EXISTS calls; DROP TABLE IF EXISTS runs;
                 DROP TABLE IF EXISTS playbooks; DROP TABLE IF EXISTS meta;",
            )
            .map_err(err)?;
        }
        tx.execute_batch(SCHEMA).map_err(err)?;
        tx.execute_batch(PAGE_TABLES).map_err(err)?;
        tx.execute_batch(SERVED_INDEXES).map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Whether the file records any run (a `runs` table with a row in it).
    fn holds_runs(&self) -> Result<bool, StoreError> {
        let has_table = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(&e))?
            > 0;
        if !has_table {
            return Ok(false);
        }
        self.conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .map(|n| n > 0)
            .map_err(|e| self.err(&e))
    }

    /// Brings a format 1 or 2 journal to the current format in one transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        // Another process may have migrated it since this one read the version.
        let version: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if version.as_deref() == Some("1") {
            tx.execute_batch(MIGRATE_1_TO_2).map_err(err)?;
        }
        if matches!(version.as_deref(), Some("1" | "2")) {
            // The page tables as format 4 makes them, route included.
            tx.execute_batch(MIGRATE_2_TO_3).map_err(err)?;
            tx.execute_batch(PAGE_TABLES).map_err(err)?;
            tx.execute(
                "UPDATE meta SET value = '4' WHERE key = 'schema_version'",
                [],
            )
            .map_err(err)?;
        }
        if version.as_deref() == Some("3") {
            tx.execute_batch(MIGRATE_3_TO_4).map_err(err)?;
        }
        if matches!(version.as_deref(), Some("1" | "2" | "3")) {
            tx.execute_batch(SERVED_INDEXES).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        tracing::debug!(
            "journal `{}` migrated to format {SCHEMA_VERSION}",
            self.path.display()
        );
        Ok(())
    }

    /// The columns added by format 2, or NULLs in their place in an older file.
    fn run_columns(&self) -> &'static str {
        if self.version >= 2 {
            "id, playbook, path, now, started_at, finished_at, state, caller_id, pid, fingerprint_version"
        } else {
            "id, playbook, path, now, started_at, finished_at, state, NULL, NULL, 1"
        }
    }

    /// When `query.dial` was last called (placed, unknown or possibly sent)
    /// for its playbook and key since `query.since`, by any run but `query.except_run`.
    pub fn last_call(&self, query: &DedupQuery) -> Result<Option<Timestamp>, StoreError> {
        if !self.has_tables()? {
            return Ok(None);
        }
        let found: Option<Timestamp> = self
            .conn
            .query_row(
                "SELECT max(c.sent_at) FROM calls c JOIN runs r ON r.id = c.run_id
                 WHERE r.playbook = ?1 AND c.dedup_key = ?2 AND c.dial = ?3
                   AND c.state IN ('placed', 'unknown', 'sending') AND c.sent_at >= ?4
                   AND (?5 IS NULL OR c.run_id != ?5)",
                params![
                    query.playbook,
                    query.key,
                    query.dial,
                    query.since,
                    query.except_run
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))?
            .flatten();
        Ok(found)
    }

    fn has_tables(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(&e))
    }

    /// Records a new run and its whole plan, in one durable transaction.
    ///
    /// The run is recorded in `run.state`: `running` for a run about to call,
    /// `refused` (with `finished_at`) for one refused before any call.
    pub fn begin_run(&mut self, run: &RunRecord, calls: &[CallRecord]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| db_error(&path, &e);
        let tx = self.conn.transaction().map_err(err)?;
        insert_run(&tx, run).map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO calls (run_id, idx, recipient, dial, rule, service_type, service_id,
                     fingerprint, dedup_key, state, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(err)?;
            for c in calls {
                let idx = int("call index", c.idx).map_err(err)?;
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
                        c.reason
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Records that a request for call `idx` is about to be sent.
    ///
    /// Refuses when the journal file was deleted or replaced since it was
    /// opened: what is written then is lost, and the next run would call again.
    pub fn sending(&self, run_id: &str, idx: usize, attempt: u32) -> Result<(), StoreError> {
        if let Some(file) = self.file.as_ref().filter(|f| !f.intact()) {
            return Err(StoreError::JournalReplaced(file.path().to_path_buf()));
        }
        let now = Timestamp::now();
        self.conn
            .execute(
                "UPDATE calls SET state = 'sending', attempts = ?3, sent_at = ?4
                 WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx as i64, attempt, now],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Records that the last request for call `idx` certainly did not place it,
    /// so a crash before the next try leaves it to be called, not `unknown`.
    pub fn not_placed(&self, run_id: &str, idx: usize) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE calls SET state = 'pending' WHERE run_id = ?1 AND idx = ?2 AND state = 'sending'",
                params![run_id, idx as i64],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Records the outcome of call `idx`.
    pub fn finished(&self, run_id: &str, idx: usize, outcome: &Outcome) -> Result<(), StoreError> {
        let state = CallState::of_status(outcome.status);
        // A call that was never sent keeps no `sent_at`; one that was keeps its first.
        self.conn
            .execute(
                "UPDATE calls SET state = ?3, call_id = ?4, attempts = max(attempts, ?5), error = ?6,
                 finished_at = ?7 WHERE run_id = ?1 AND idx = ?2",
                params![
                    run_id,
                    idx as i64,
                    state,
                    outcome.call_id,
                    outcome.attempts,
                    outcome.error,
                    Timestamp::now()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Marks a run as ended (`finished`, `interrupted` or `stopped`).
    pub fn end_run(&self, run_id: &str, state: RunState) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
                params![run_id, state, Timestamp::now()],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Marks a run as running again (a resume), in process `pid`.
    pub fn reopen_run(&self, run_id: &str, pid: u32) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET state = 'running', finished_at = NULL, pid = ?2 WHERE id = ?1",
                params![run_id, pid],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Records that call `idx` is not made after all, and why.
    pub fn skip(&self, run_id: &str, idx: usize, reason: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE calls SET state = 'skipped', reason = ?3 WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx as i64, reason],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// The canonical path recorded for playbook `name`, if any.
    pub fn playbook_path(&self, name: &str) -> Result<Option<String>, StoreError> {
        if self.version < 2 {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT path FROM playbooks WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Records `path` as the file of playbook `name` from now on.
    pub fn set_playbook_path(&self, name: &str, path: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO playbooks (name, path) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET path = excluded.path",
                params![name, path],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// The run asked for: by id, or the newest unfinished run of a playbook.
    ///
    /// Unfinished: `running` (which, under the run lock, means its process
    /// is gone), `interrupted` or `stopped`; never `finished` or `refused`.
    pub fn find_run(&self, query: &RunQuery) -> Result<Option<RunRecord>, StoreError> {
        if !self.has_tables()? {
            return Ok(None);
        }
        let map = |r: &rusqlite::Row<'_>| {
            Ok(RunRecord {
                id: r.get(0)?,
                playbook: r.get(1)?,
                path: r.get(2)?,
                now: r.get(3)?,
                started_at: r.get(4)?,
                finished_at: r.get(5)?,
                state: r.get(6)?,
                caller_id: r.get(7)?,
                pid: r.get(8)?,
                fingerprint_version: r.get(9)?,
            })
        };
        let cols = self.run_columns();
        let found = match query {
            RunQuery::Id(id) => self.conn.query_row(
                &format!("SELECT {cols} FROM runs WHERE id = ?1"),
                params![id],
                map,
            ),
            RunQuery::LatestUnfinished(playbook) => self.conn.query_row(
                &format!(
                    "SELECT {cols} FROM runs WHERE playbook = ?1
                     AND state IN ('running', 'interrupted', 'stopped')
                     ORDER BY started_at DESC, rowid DESC LIMIT 1"
                ),
                params![playbook],
                map,
            ),
            RunQuery::LatestUnfinishedFrom(path) => self.conn.query_row(
                &format!(
                    "SELECT {cols} FROM runs WHERE path = ?1
                     AND state IN ('running', 'interrupted', 'stopped')
                     ORDER BY started_at DESC, rowid DESC LIMIT 1"
                ),
                params![path],
                map,
            ),
        };
        found.optional().map_err(|e| self.err(&e))
    }

    /// The recorded plan of run `id`, in plan order.
    pub fn calls(&self, run_id: &str) -> Result<Vec<CallRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, recipient, dial, rule, service_type, service_id, fingerprint, dedup_key,
                 state, reason, call_id, attempts, error FROM calls WHERE run_id = ?1 ORDER BY idx",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                Ok(CallRecord {
                    idx: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(usize::MAX),
                    recipient: r.get(1)?,
                    to: r.get(2)?,
                    rule: r.get(3)?,
                    service_type: r.get(4)?,
                    service_id: r.get(5)?,
                    fingerprint: r.get(6)?,
                    dedup_key: r.get(7)?,
                    state: r.get(8)?,
                    reason: r.get(9)?,
                    call_id: r.get(10)?,
                    attempts: r.get(11)?,
                    error: r.get(12)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }

    /// Recent runs, newest first, of one playbook or of all.
    pub fn runs(
        &self,
        playbook: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        if !self.has_tables()? {
            return Ok(Vec::new());
        }
        let pid = if self.version >= 2 { "r.pid" } else { "NULL" };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT r.id, r.playbook, r.started_at, r.finished_at, r.state,
                   sum(c.state = 'placed'), sum(c.state = 'failed'),
                   sum(c.state IN ('unknown', 'sending')), sum(c.state = 'pending'),
                   sum(c.state = 'skipped'), {pid}
                 FROM runs r LEFT JOIN calls c ON c.run_id = r.id
                 WHERE ?1 IS NULL OR r.playbook = ?1
                 GROUP BY r.id ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![playbook, limit as i64], |r| {
                let n = |i: usize| {
                    r.get::<_, Option<i64>>(i)
                        .map(|v| v.unwrap_or(0).max(0) as u64)
                };
                Ok(RunSummary {
                    run_id: r.get(0)?,
                    playbook: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    state: r.get(4)?,
                    placed: n(5)?,
                    failed: n(6)?,
                    unknown: n(7)?,
                    pending: n(8)?,
                    skipped: n(9)?,
                    pid: r.get(10)?,
                })
            })
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(&e))
    }
}

/// Stores an enum or a timestamp as its one spelling, and refuses any other
/// when reading it back (an [`UnknownValue`], never a guess).
macro_rules! as_text {
    ($($ty:ty),+) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.to_string()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownValue| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

as_text!(CallState, RunState, ServiceType, Timestamp, AckVia);

/// `value` as SQLite keeps integers, refused beyond `i64::MAX`: a wrapped or
/// clamped index or offset would be read back as another call or time.
pub(super) fn int<T>(what: &str, value: T) -> rusqlite::Result<i64>
where
    T: TryInto<i64> + Copy + std::fmt::Display,
{
    value.try_into().map_err(|_| {
        rusqlite::Error::ToSqlConversionFailure(
            format!("{what} {value} is too large for the journal").into(),
        )
    })
}

/// Records `run` in `runs`: the first row of every run, broadcast or page.
pub(super) fn insert_run(
    tx: &rusqlite::Transaction<'_>,
    run: &RunRecord,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO runs (id, playbook, path, now, started_at, finished_at, state,
         caller_id, pid, fingerprint_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            run.id,
            run.playbook,
            run.path,
            run.now,
            run.started_at,
            run.finished_at,
            run.state,
            run.caller_id,
            run.pid,
            run.fingerprint_version
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FINGERPRINT_VERSION;

    fn stamp(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn run_record() -> RunRecord {
        RunRecord {
            id: "r1".into(),
            playbook: "p".into(),
            path: "p.yaml".into(),
            now: stamp("2026-11-26T22:00:00Z"),
            started_at: stamp("2026-11-26T22:00:00Z"),
            finished_at: None,
            state: RunState::Running,
            caller_id: Some("13214991000".into()),
            pid: Some(std::process::id()),
            fingerprint_version: FINGERPRINT_VERSION,
        }
    }

    fn call_record() -> CallRecord {
        CallRecord {
            idx: 0,
            recipient: "A".into(),
            to: "13214991008".into(),
            rule: None,
            service_type: Some(ServiceType::Tts),
            service_id: None,
            fingerprint: None,
            dedup_key: None,
            state: CallState::Pending,
            reason: None,
            call_id: None,
            attempts: 0,
            error: None,
        }
    }

    #[test]
    fn a_run_is_recorded_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let run = run_record();
        let mut rec = call_record();
        rec.fingerprint = Some("f".repeat(64));
        rec.dedup_key = Some("k".into());
        j.begin_run(&run, &[rec]).unwrap();
        j.sending("r1", 0, 1).unwrap();
        j.not_placed("r1", 0).unwrap();
        assert_eq!(j.calls("r1").unwrap()[0].state, CallState::Pending);
        j.sending("r1", 0, 2).unwrap();
        let since = Timestamp(chrono::Utc::now() - chrono::Duration::minutes(5));
        let query = |key: &str, except_run: Option<&str>| DedupQuery {
            playbook: "p".into(),
            key: key.into(),
            dial: "13214991008".into(),
            since,
            except_run: except_run.map(str::to_string),
        };
        assert!(j.last_call(&query("k", None)).unwrap().is_some());
        assert!(j.last_call(&query("other", None)).unwrap().is_none());
        assert!(
            j.last_call(&query("k", Some("r1"))).unwrap().is_none(),
            "a run's own calls are not its dedup history"
        );
        assert_eq!(j.calls("r1").unwrap()[0].state, CallState::Sending);
        assert_eq!(
            j.find_run(&RunQuery::LatestUnfinished("p".into()))
                .unwrap()
                .unwrap()
                .state,
            RunState::Running
        );
        let summary = &j.runs(Some("p"), 10).unwrap()[0];
        assert_eq!((summary.unknown, summary.pending), (1, 0));
    }

    #[test]
    fn an_unknown_state_in_the_file_is_an_error_not_an_unknown_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let run = run_record();
        let rec = call_record();
        j.begin_run(&run, &[rec]).unwrap();
        j.conn
            .execute_batch("UPDATE calls SET state = 'Placed'; UPDATE runs SET state = 'paused';")
            .unwrap();
        let e = j.calls("r1").unwrap_err().to_string();
        assert!(e.ends_with("unknown call state `Placed`"), "{e}");
        let e = j.find_run(&RunQuery::Id("r1".into())).unwrap_err();
        assert!(e.to_string().ends_with("unknown run state `paused`"), "{e}");
        j.conn
            .execute_batch("UPDATE runs SET state = 'running', now = 'yesterday';")
            .unwrap();
        let e = j.find_run(&RunQuery::Id("r1".into())).unwrap_err();
        assert!(
            e.to_string().ends_with("unknown timestamp `yesterday`"),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), vec![0x42u8; 8192]).unwrap();
        let e = Journal::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt or not a callbook journal"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let e = Journal::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("newer callbook"), "{e}");
    }

    #[test]
    fn a_creation_cut_short_is_created_again_but_a_journal_with_runs_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE runs (id TEXT PRIMARY KEY, playbook TEXT NOT NULL);",
        )
        .unwrap();
        drop(conn);
        assert!(
            Journal::open_read_only(dir.path())
                .unwrap()
                .unwrap()
                .runs(None, 10)
                .unwrap()
                .is_empty()
        );
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.runs(None, 10).unwrap().is_empty());
        assert_eq!(j.version, SCHEMA_VERSION);
        drop(j);

        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE runs (id TEXT PRIMARY KEY, playbook TEXT NOT NULL);
             INSERT INTO runs VALUES ('r1', 'p');",
        )
        .unwrap();
        drop(conn);
        let e = Journal::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a callbook journal"), "{e}");
    }
}
