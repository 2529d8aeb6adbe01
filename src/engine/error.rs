//! Why a run did not start or could not go on, by kind.
//!
//! The engine only says what happened; the front end decides what it means
//! to its caller (the CLI maps each kind to an exit code in one place).

use std::fmt;

use crate::diag::Diagnostic;
use crate::store::StoreError;

/// A run refused or rejected before it placed any call.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// The plan could not be made (a template failed for a recipient …).
    Plan(Vec<Diagnostic>),
    /// The run lock could not be taken (another run holds it, or the store
    /// cannot lock).
    Lock(StoreError),
    /// The store failed before the first call: nothing was called.
    Store(StoreError),
    /// The store could not be read to find a run or to dedup.
    Read(StoreError),
    /// The playbook file cannot be named canonically.
    PlaybookFile {
        /// The path as given.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// Another playbook file holds this playbook's `name` in the store.
    NameTaken {
        /// The `name`.
        name: String,
        /// This file.
        path: String,
        /// The file that holds the name.
        holder: String,
    },
    /// `--resume RUN_ID` names no recorded run.
    NoSuchRun(String),
    /// `--resume` found no unfinished run of the playbook.
    NothingToResume(String),
    /// The run to resume belongs to another playbook.
    OtherPlaybook {
        /// The run.
        run: String,
        /// Its playbook.
        belongs: String,
        /// The playbook of this run.
        playbook: String,
    },
    /// The run to resume was refused before any call.
    ResumeRefused {
        /// The run.
        run: String,
        /// Its playbook.
        playbook: String,
    },
    /// The run to resume has finished.
    ResumeFinished {
        /// The run.
        run: String,
        /// Its playbook.
        playbook: String,
        /// When it finished.
        at: String,
    },
    /// The plan made again for a resume is not the recorded one.
    PlanChanged {
        /// The run.
        run: String,
        /// What differs.
        what: String,
    },
    /// More calls than `max_calls` allows.
    TooManyCalls(String),
    /// The provider's base URL is not acceptable.
    BaseUrl(crate::provider::BaseUrlError),
    /// No provider credentials were given.
    NoCredentials,
    /// The provider client could not be built.
    Client(crate::provider::ClientError),
    /// The provider refused the login before any call.
    Login(String),
    /// The confirmation was declined.
    NotConfirmed,
    /// The playbook has no ladder where a page needs one.
    PageNotLive(String),
    /// A page without `CALLBOOK_CALLBACK_SECRET`.
    NoCallbackSecret,
    /// `CALLBOOK_CALLBACK_SECRET` cannot be used (the message never shows it).
    CallbackSecret(String),
    /// A pager asked to start a page while it shuts down.
    ShuttingDown,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Plan(diagnostics) => {
                write!(f, "the run cannot be planned ({} problems)", diagnostics.len())
            }
            EngineError::Lock(e) | EngineError::Read(e) => write!(f, "{e}"),
            EngineError::Store(e) => write!(f, "{e}: nothing was called"),
            EngineError::PlaybookFile { path, reason } => write!(f, "playbook `{path}`: {reason}"),
            EngineError::NameTaken { name, path, holder } => write!(
                f,
                "playbook `{name}` in `{path}` has the same name as `{holder}`, whose runs the journal holds: \
                 give one of them another `name` (nothing was called)"
            ),
            EngineError::NoSuchRun(id) => write!(f, "no run `{id}` in the journal"),
            EngineError::NothingToResume(playbook) => write!(
                f,
                "no unfinished run of `{playbook}` in the journal: nothing to resume"
            ),
            EngineError::OtherPlaybook {
                run,
                belongs,
                playbook,
            } => write!(f, "run {run} belongs to playbook `{belongs}`, not `{playbook}`"),
            EngineError::ResumeRefused { run, playbook } => write!(
                f,
                "run {run} of `{playbook}` was refused before any call: nothing to resume, run the playbook again"
            ),
            EngineError::ResumeFinished { run, playbook, at } => {
                write!(f, "run {run} of `{playbook}` finished at {at}: nothing to resume")
            }
            EngineError::PlanChanged { run, what } => write!(
                f,
                "cannot resume run {run}: {what}; resume with the playbook, variables, input and selection (--tag, --recipient) it started with (nothing was called)"
            ),
            EngineError::TooManyCalls(why) => write!(f, "{why}: nothing was called"),
            EngineError::BaseUrl(m) => write!(f, "base URL: {m}"),
            EngineError::NoCredentials => f.write_str(
                "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD; nothing was called",
            ),
            EngineError::Client(e) => write!(f, "{e}"),
            EngineError::Login(m) => write!(f, "{m}; nothing was called"),
            EngineError::NotConfirmed => f.write_str("not confirmed: nothing was called"),
            EngineError::PageNotLive(name) => write!(
                f,
                "`{name}` has no `escalation`: it is not a page (nothing was called)"
            ),
            EngineError::NoCallbackSecret => f.write_str(
                "a page needs CALLBOOK_CALLBACK_SECRET, the password FoneStorm's callbacks carry; nothing was called",
            ),
            EngineError::CallbackSecret(why) => write!(f, "{why}; nothing was called"),
            EngineError::ShuttingDown => {
                f.write_str("shutting down: no page starts now (nothing was called)")
            }
        }
    }
}

impl std::error::Error for EngineError {}
