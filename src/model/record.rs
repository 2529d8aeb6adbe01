//! What a store keeps of runs and calls, and what a call ends as.

use serde::Serialize;

use super::{CallState, RunState, ServiceType, Status, Timestamp};

/// The fingerprint format new runs record: 2 covers the caller id too.
///
/// Runs recorded by format 1 journals carry fingerprints without it.
pub const FINGERPRINT_VERSION: i64 = 2;

/// A run as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// `name` of the playbook.
    pub playbook: String,
    /// The playbook's path as given.
    pub path: String,
    /// The run's clock (`now`): a resume plans with it again.
    pub now: Timestamp,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if it did.
    pub finished_at: Option<Timestamp>,
    /// Where it stands.
    pub state: RunState,
    /// The caller id the run calls from (`None` in runs of format 1 journals).
    pub caller_id: Option<String>,
    /// The process that runs (or ran) it, to tell a live run from a crashed one.
    pub pid: Option<u32>,
    /// How its fingerprints were computed (see [`FINGERPRINT_VERSION`]).
    pub fingerprint_version: i64,
}

/// One entry of a recorded plan, with its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Index in the plan.
    pub idx: usize,
    /// Recipient name.
    pub recipient: String,
    /// Dial string.
    pub to: String,
    /// The deciding rule.
    pub rule: Option<String>,
    /// FoneStorm service type, for calls.
    pub service_type: Option<ServiceType>,
    /// The rendered message, only with `--journal-messages`.
    pub service_id: Option<String>,
    /// SHA-256 of what is sent, for calls.
    pub fingerprint: Option<String>,
    /// The rendered dedup key.
    pub dedup_key: Option<String>,
    /// Where the call stands.
    pub state: CallState,
    /// Why skipped.
    pub reason: Option<String>,
    /// Provider call id.
    pub call_id: Option<String>,
    /// Requests sent.
    pub attempts: u32,
    /// Why failed or unknown.
    pub error: Option<String>,
}

/// A line of `callbook runs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// `name` of the playbook.
    pub playbook: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if it did.
    pub finished_at: Option<Timestamp>,
    /// Where it stands.
    pub state: RunState,
    /// The process recorded for the run, to tell whether a `running` run still is.
    #[serde(skip)]
    pub pid: Option<u32>,
    /// Calls placed.
    pub placed: u64,
    /// Calls failed.
    pub failed: u64,
    /// Calls with unknown outcome (including sent but never recorded).
    pub unknown: u64,
    /// Calls not yet attempted.
    pub pending: u64,
    /// Recipients skipped.
    pub skipped: u64,
}

/// What became of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `placed`, `failed` or `unknown`.
    pub status: Status,
    /// The provider's id, when placed.
    pub call_id: Option<String>,
    /// Requests sent for this call.
    pub attempts: u32,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}
