//! The run report: what was (or would be) called, and why not where not.
//!
//! One [`Report`] is built per run and written as JSON (`--format json`,
//! `--report-file`, see [`json`]) or as a table for people (see [`table`]).
//! It holds no secret: only recipients, dial strings and rendered messages.

pub mod json;
pub mod ladder;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::model::{CallRecord, RunRecord};
pub use crate::model::{Status, timestamp};
use crate::plan::{Decision, Plan, RunInput};
use crate::playbook::Playbook;

/// The whole report of one run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The callbook version that wrote it.
    pub callbook_version: String,
    /// Which playbook ran.
    pub playbook: PlaybookRef,
    /// The run's id.
    pub run_id: String,
    /// True when nothing was called.
    pub dry_run: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Counts by status.
    pub totals: Totals,
    /// One entry per selected recipient, in playbook order (for a page:
    /// one per call of its timeline, by step, round, then playbook order).
    pub calls: Vec<CallReport>,
    /// The ladder of a page and how it ended; absent for a broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<ladder::EscalationReport>,
}

/// The playbook a report is about.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlaybookRef {
    /// `name` from the playbook.
    pub name: String,
    /// The path it was loaded from.
    pub path: String,
}

/// Counts by status; in a live run `placed + failed + unknown == planned`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Selected recipients.
    pub recipients: usize,
    /// Calls that would be or were attempted.
    pub planned: usize,
    /// Calls the provider accepted.
    pub placed: usize,
    /// Calls that certainly were not placed.
    pub failed: usize,
    /// Calls that may or may not have been placed.
    pub unknown: usize,
    /// Recipients not called on purpose.
    pub skipped: usize,
}

/// One recipient's line of the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CallReport {
    /// The recipient's name.
    pub recipient: String,
    /// The dial string.
    pub to: String,
    /// The rule that decided, if one matched.
    pub rule: Option<String>,
    /// FoneStorm `service_type`, for calls.
    pub service_type: Option<String>,
    /// FoneStorm `service_id`, for calls: the rendered message or destination.
    pub service_id: Option<String>,
    /// What happened.
    pub status: Status,
    /// The provider's call id, once placed.
    pub call_id: Option<String>,
    /// Requests sent for this call.
    pub attempts: u32,
    /// Why the recipient was skipped.
    pub reason: Option<String>,
    /// Why the call failed.
    pub error: Option<String>,
    /// For a page: the step that placed the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// For a page: the round of that step, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// For a page: when the call is planned, in seconds from the page's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_offset_seconds: Option<u64>,
    /// How the call ended, from the provider's `END` callback (or `NO_CALLBACK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Billable seconds, from the `END` callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_seconds: Option<u32>,
    /// When the `END` callback came, RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

impl Report {
    /// The report of a plan; calls start as `planned`.
    pub fn from_plan(playbook: &Playbook, plan: Plan, run: &RunInput) -> Report {
        let calls = plan
            .entries
            .into_iter()
            .map(|e| {
                let recipient = playbook.recipients[e.recipient].name.clone();
                match e.decision {
                    Decision::Call(c) => CallReport {
                        recipient,
                        to: e.to,
                        rule: e.rule,
                        service_type: Some(c.service_type.as_str().to_string()),
                        service_id: Some(c.service_id),
                        status: Status::Planned,
                        call_id: None,
                        attempts: 0,
                        reason: None,
                        error: None,
                        step: None,
                        round: None,
                        at_offset_seconds: None,
                        disposition: None,
                        billable_seconds: None,
                        ended_at: None,
                    },
                    Decision::Skip(reason) => CallReport {
                        recipient,
                        to: e.to,
                        rule: e.rule,
                        service_type: None,
                        service_id: None,
                        status: Status::Skipped,
                        call_id: None,
                        attempts: 0,
                        reason: Some(reason),
                        error: None,
                        step: None,
                        round: None,
                        at_offset_seconds: None,
                        disposition: None,
                        billable_seconds: None,
                        ended_at: None,
                    },
                }
            })
            .collect();
        let started = timestamp(run.now);
        let mut report = Report {
            callbook_version: env!("CARGO_PKG_VERSION").to_string(),
            playbook: PlaybookRef {
                name: playbook.name.clone(),
                path: playbook.path.display().to_string(),
            },
            run_id: run.run_id.clone(),
            dry_run: run.dry_run,
            started_at: started.clone(),
            finished_at: started,
            totals: Totals::default(),
            calls,
            escalation: None,
        };
        report.recount();
        report
    }

    /// The report of a recorded run, as the journal holds it.
    ///
    /// Messages appear only if the run kept them (`--journal-messages`).
    pub fn from_journal(run: &RunRecord, calls: &[CallRecord]) -> Report {
        let calls = calls
            .iter()
            .map(|c| CallReport {
                recipient: c.recipient.clone(),
                to: c.to.clone(),
                rule: c.rule.clone(),
                service_type: c.service_type.map(|t| t.as_str().to_string()),
                service_id: c.service_id.clone(),
                status: c.state.status(),
                call_id: c.call_id.clone(),
                attempts: c.attempts,
                reason: c.reason.clone(),
                error: c.error.clone(),
                step: None,
                round: None,
                at_offset_seconds: None,
                disposition: None,
                billable_seconds: None,
                ended_at: None,
            })
            .collect();
        let mut report = Report {
            callbook_version: env!("CARGO_PKG_VERSION").to_string(),
            playbook: PlaybookRef {
                name: run.playbook.clone(),
                path: run.path.clone(),
            },
            run_id: run.id.clone(),
            dry_run: false,
            started_at: run.started_at.to_string(),
            finished_at: run.finished_at.map(|t| t.to_string()).unwrap_or_default(),
            totals: Totals::default(),
            calls,
            escalation: None,
        };
        report.recount();
        report
    }

    /// Recomputes `totals` from `calls`.
    ///
    /// For a page a person appears once per round: `recipients` counts
    /// distinct people.
    pub fn recount(&mut self) {
        let recipients = if self.escalation.is_some() {
            let names: std::collections::HashSet<&str> =
                self.calls.iter().map(|c| c.recipient.as_str()).collect();
            names.len()
        } else {
            self.calls.len()
        };
        let mut t = Totals {
            recipients,
            ..Totals::default()
        };
        for c in &self.calls {
            match c.status {
                Status::Planned => t.planned += 1,
                Status::Placed => t.placed += 1,
                Status::Failed => t.failed += 1,
                Status::Unknown => t.unknown += 1,
                Status::Skipped => t.skipped += 1,
            }
        }
        if !self.dry_run {
            t.planned += t.placed + t.failed + t.unknown;
        }
        self.totals = t;
    }
}
