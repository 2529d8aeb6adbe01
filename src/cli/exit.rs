//! Exit codes, in one place, as docs/operations.md's "Exit codes" table
//! documents them: every error and every finished run is mapped here.

use crate::diag::Diagnostic;
use crate::engine::{EngineError, Finished, StopReason};
use crate::store::StoreError;

/// What a callbook process reports to its caller (cron, an alerting hook, CI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every planned call was placed, or the dry-run plan is complete.
    Success = 0,
    /// At least one call failed or has an unknown outcome.
    CallsFailed = 1,
    /// Invalid playbook, input or usage: nothing was called.
    Invalid = 2,
    /// The run was refused before any call (credentials, limits, lock).
    Refused = 3,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// Why a command ended without doing what it was asked.
#[derive(Debug)]
pub enum Failure {
    /// The input is wrong; these diagnostics say where.
    Invalid(Vec<Diagnostic>),
    /// No state directory can be found.
    NoStateDir,
    /// The journal could not be read.
    Store(StoreError),
    /// `runs show` named no recorded run.
    NoSuchRun(String),
    /// The async runtime could not start.
    Runtime(std::io::Error),
    /// The engine refused or rejected the run.
    Engine(EngineError),
    /// Refused before anything was changed (missing credentials or secret);
    /// the message says why.
    Refused(String),
}

impl Failure {
    /// The exit code of this failure.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Invalid(_) | Failure::NoSuchRun(_) => Exit::Invalid,
            Failure::NoStateDir | Failure::Store(_) | Failure::Runtime(_) | Failure::Refused(_) => {
                Exit::Refused
            }
            Failure::Engine(e) => engine_error(e),
        }
    }
}

/// The exit code of an error from the engine.
fn engine_error(e: &EngineError) -> Exit {
    match e {
        EngineError::Plan(_)
        | EngineError::BaseUrl(_)
        | EngineError::NoSuchRun(_)
        | EngineError::NothingToResume(_)
        | EngineError::OtherPlaybook { .. }
        | EngineError::ResumeRefused { .. }
        | EngineError::ResumeFinished { .. }
        | EngineError::PlanChanged { .. } => Exit::Invalid,
        _ => Exit::Refused,
    }
}

/// The exit code of a live run that ran (see [`Exit`]).
pub fn finished(run: &Finished) -> Exit {
    if let Some(page) = &run.report.escalation {
        // A page: 0 acknowledged (or a repeat), 1 exhausted or stopped, 130 interrupted.
        return match page.outcome.as_deref() {
            Some("acknowledged" | "deduplicated") => Exit::Success,
            Some("interrupted") => Exit::Interrupted,
            _ if run.refused() => Exit::Refused,
            _ => Exit::CallsFailed,
        };
    }
    let t = &run.report.totals;
    match run.stop {
        Some(StopReason::Interrupted) => Exit::Interrupted,
        _ if run.refused() => Exit::Refused,
        _ if t.failed > 0 || t.unknown > 0 => Exit::CallsFailed,
        _ => Exit::Success,
    }
}
