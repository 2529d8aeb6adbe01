//! What can go wrong with a store, by kind.

use std::fmt;
use std::path::PathBuf;

use crate::model::UnknownValue;

/// A store failure; each variant's text names the file or the run it is about.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused an operation (`hint` says the likely cause).
    Database {
        /// The database file.
        path: PathBuf,
        /// The driver's message.
        detail: String,
        /// A short likely cause, such as ` (the disk is full)`.
        hint: &'static str,
    },
    /// A file or directory the store needs cannot be used.
    Io {
        /// What it is: `state directory`, `journal` or `lock`.
        what: &'static str,
        /// Where it is.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
    /// The store was written by a newer callbook.
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its format.
        found: i64,
        /// The newest format this build reads.
        supported: i64,
    },
    /// The file is a database but not a callbook journal.
    NotAJournal {
        /// The database file.
        path: PathBuf,
    },
    /// A recorded value this build does not know.
    Unknown {
        /// The database file.
        path: PathBuf,
        /// The value.
        value: UnknownValue,
    },
    /// Another run of the playbook holds its lock.
    Locked {
        /// `name` of the playbook.
        playbook: String,
        /// Who holds it (`pid 42, started …`), if known.
        holder: Option<String>,
    },
    /// The journal file was deleted or replaced while the run wrote it:
    /// nothing written now would ever be read.
    JournalReplaced(PathBuf),
    /// The run lock's file was deleted or replaced during the run: it
    /// excludes nobody any more, and another run may be calling.
    LockReplaced(PathBuf),
    /// The lock file was removed while the lock was being taken.
    LockRemoved(PathBuf),
    /// The store is open read-only (a dry run, a listing) and was asked to write.
    ReadOnly,
    /// The worker that ran a blocking store call died.
    Worker(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database { path, detail, hint } => {
                write!(f, "journal `{}`: {detail}{hint}", path.display())
            }
            StoreError::Io { what, path, reason } => {
                write!(f, "{what} `{}`: {reason}", path.display())
            }
            StoreError::TooNew {
                path,
                found,
                supported,
            } => write!(
                f,
                "journal `{}` was written by a newer callbook (format {found}; this one reads format {supported})",
                path.display()
            ),
            StoreError::NotAJournal { path } => write!(
                f,
                "journal `{}` is not a callbook journal (no format version)",
                path.display()
            ),
            StoreError::Unknown { path, value } => {
                write!(f, "journal `{}`: {value}", path.display())
            }
            StoreError::Locked { playbook, holder } => write!(
                f,
                "another run of `{playbook}` is in progress ({}): nothing was called",
                holder.as_deref().unwrap_or("another process")
            ),
            StoreError::JournalReplaced(path) => write!(
                f,
                "journal `{}` was deleted or replaced during the run: no call is recorded any more, so no new call is started",
                path.display()
            ),
            StoreError::LockReplaced(path) => write!(
                f,
                "lock `{}` was deleted or replaced during the run: another run may be calling now, so no new call is started",
                path.display()
            ),
            StoreError::LockRemoved(path) => write!(
                f,
                "lock `{}` was removed while it was taken: nothing was called",
                path.display()
            ),
            StoreError::ReadOnly => f.write_str("the journal is open read-only"),
            StoreError::Worker(m) => write!(f, "the journal's worker failed: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}
