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
///
/// Serialized through [`ReportJson`], the one description of the JSON
/// shape, which [`PlanReport`] shares.
#[derive(Clone, Debug, Deserialize, PartialEq)]
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
///
/// Serialized through [`CallJson`], which [`PlanReport`] shares.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
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
    ///
    /// A copy of every call: for large plans written as JSON, [`PlanReport`]
    /// writes the same bytes straight from the plan.
    pub fn from_plan(playbook: &Playbook, plan: Plan, run: &RunInput) -> Report {
        let planned = PlanReport::new(playbook, &plan, run);
        let calls = planned.calls().map(|c| c.to_owned()).collect();
        Report {
            calls,
            ..planned.header
        }
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

/// The JSON shape of a report: every report is written through this, so a
/// report built from the journal and one written straight from a plan have
/// the same fields in the same order.
#[derive(Serialize)]
struct ReportJson<'a, C> {
    callbook_version: &'a str,
    playbook: &'a PlaybookRef,
    run_id: &'a str,
    dry_run: bool,
    started_at: &'a str,
    finished_at: &'a str,
    totals: &'a Totals,
    calls: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<&'a ladder::EscalationReport>,
}

impl<'a, C> ReportJson<'a, C> {
    /// `header`'s fields around `calls`.
    fn new(header: &'a Report, calls: C) -> Self {
        ReportJson {
            callbook_version: &header.callbook_version,
            playbook: &header.playbook,
            run_id: &header.run_id,
            dry_run: header.dry_run,
            started_at: &header.started_at,
            finished_at: &header.finished_at,
            totals: &header.totals,
            calls,
            escalation: header.escalation.as_ref(),
        }
    }
}

/// The JSON shape of one call of a report, borrowed.
#[derive(Serialize)]
pub struct CallJson<'a> {
    recipient: &'a str,
    to: &'a str,
    rule: Option<&'a str>,
    service_type: Option<&'a str>,
    service_id: Option<&'a str>,
    status: Status,
    call_id: Option<&'a str>,
    attempts: u32,
    reason: Option<&'a str>,
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    round: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_offset_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    billable_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<&'a str>,
}

impl CallJson<'_> {
    /// An owned copy, for a [`Report`].
    fn to_owned(&self) -> CallReport {
        let own = |s: Option<&str>| s.map(str::to_string);
        CallReport {
            recipient: self.recipient.to_string(),
            to: self.to.to_string(),
            rule: own(self.rule),
            service_type: own(self.service_type),
            service_id: own(self.service_id),
            status: self.status,
            call_id: own(self.call_id),
            attempts: self.attempts,
            reason: own(self.reason),
            error: own(self.error),
            step: own(self.step),
            round: self.round,
            at_offset_seconds: self.at_offset_seconds,
            disposition: own(self.disposition),
            billable_seconds: self.billable_seconds,
            ended_at: own(self.ended_at),
        }
    }
}

impl<'a> From<&'a CallReport> for CallJson<'a> {
    fn from(c: &'a CallReport) -> Self {
        CallJson {
            recipient: &c.recipient,
            to: &c.to,
            rule: c.rule.as_deref(),
            service_type: c.service_type.as_deref(),
            service_id: c.service_id.as_deref(),
            status: c.status,
            call_id: c.call_id.as_deref(),
            attempts: c.attempts,
            reason: c.reason.as_deref(),
            error: c.error.as_deref(),
            step: c.step.as_deref(),
            round: c.round,
            at_offset_seconds: c.at_offset_seconds,
            disposition: c.disposition.as_deref(),
            billable_seconds: c.billable_seconds,
            ended_at: c.ended_at.as_deref(),
        }
    }
}

impl Serialize for CallReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CallJson::from(self).serialize(serializer)
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReportJson::new(self, &self.calls).serialize(serializer)
    }
}

/// The report of a plan, written straight from it: a dry run of 100 000
/// recipients holds its calls once, not once in the plan and again in a report.
#[derive(Debug)]
pub struct PlanReport<'a> {
    /// Every field but the calls (which stay empty here).
    pub header: Report,
    playbook: &'a Playbook,
    plan: &'a Plan,
}

impl<'a> PlanReport<'a> {
    /// The report of `plan`; calls are `planned` or `skipped`.
    pub fn new(playbook: &'a Playbook, plan: &'a Plan, run: &RunInput) -> Self {
        let started = timestamp(run.now);
        let mut totals = Totals {
            recipients: plan.entries.len(),
            ..Totals::default()
        };
        for e in &plan.entries {
            match e.decision {
                Decision::Call(_) => totals.planned += 1,
                Decision::Skip(_) => totals.skipped += 1,
            }
        }
        let header = Report {
            callbook_version: env!("CARGO_PKG_VERSION").to_string(),
            playbook: PlaybookRef {
                name: playbook.name.clone(),
                path: playbook.path.display().to_string(),
            },
            run_id: run.run_id.clone(),
            dry_run: run.dry_run,
            started_at: started.clone(),
            finished_at: started,
            totals,
            calls: Vec::new(),
            escalation: None,
        };
        PlanReport {
            header,
            playbook,
            plan,
        }
    }

    /// Each entry of the plan as a line of the report.
    fn calls(&self) -> impl Iterator<Item = CallJson<'_>> {
        self.plan.entries.iter().map(|e| {
            let recipient = self
                .playbook
                .recipients
                .get(e.recipient)
                .map_or("", |r| r.name.as_str());
            let (call, reason) = match &e.decision {
                Decision::Call(c) => (Some(c), None),
                Decision::Skip(reason) => (None, Some(reason.as_str())),
            };
            CallJson {
                recipient,
                to: &e.to,
                rule: e.rule.as_deref(),
                service_type: call.map(|c| c.service_type.as_str()),
                service_id: call.map(|c| c.service_id.as_str()),
                status: if call.is_some() {
                    Status::Planned
                } else {
                    Status::Skipped
                },
                call_id: None,
                attempts: 0,
                reason,
                error: None,
                step: None,
                round: None,
                at_offset_seconds: None,
                disposition: None,
                billable_seconds: None,
                ended_at: None,
            }
        })
    }

    /// A [`Report`] holding a copy of every call (for the table).
    pub fn to_report(&self) -> Report {
        Report {
            calls: self.calls().map(|c| c.to_owned()).collect(),
            ..self.header.clone()
        }
    }
}

impl Serialize for PlanReport<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let calls = Calls(std::cell::Cell::new(Some(self.calls())));
        ReportJson::new(&self.header, calls).serialize(serializer)
    }
}

/// Serializes the calls of an iterator once, without collecting them.
struct Calls<I>(std::cell::Cell<Option<I>>);

impl<'a, I: Iterator<Item = CallJson<'a>>> Serialize for Calls<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.take() {
            Some(calls) => serializer.collect_seq(calls),
            None => Err(serde::ser::Error::custom("the calls were already written")),
        }
    }
}
