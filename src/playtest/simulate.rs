//! What happens on a page's timeline, offline: simulated dispositions,
//! acknowledgements and resolutions applied to its dry-run report.
//!
//! The timeline itself is the one `run --dry-run` plans ([`crate::timeline`],
//! [`crate::report::Report::from_timeline`]); this only plays events on it
//! as the live ladder would: a disposition that `escalation.retry` names
//! adds a retry `retry.after` later (dropped when the next round, or the
//! page's end, comes first; at most `retry.max` per person per round); an
//! acknowledgement at offset T skips every call after T (`acknowledged by
//! NAME`); a resolution before any acknowledgement ends the page
//! `cancelled` the same way. Without either the page ends `exhausted`.

use std::time::Duration;

use super::file::{Event, EventKind};
use crate::playbook::Playbook;
use crate::playbook::escalation::Retry;
use crate::report::ladder::AckReport;
use crate::report::{CallReport, Report, Status, timestamp};

/// How a simulated page ended, beyond what its report says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageSummary {
    /// Rounds started by the time the page ended.
    pub rounds_run: usize,
    /// Calls placed up to the acknowledgement (retries included), if acknowledged.
    pub calls_before_ack: Option<usize>,
}

/// How the page stopped, and when.
enum Stop {
    Ack { by: String, via: String },
    Resolve,
}

/// Plays `events` on `report`, the dry-run report of a page started at
/// `report.started_at`'s time `now`.
///
/// # Errors
/// A disposition for a call the timeline does not place by then: the
/// message says which event and why.
pub fn apply(
    report: &mut Report,
    playbook: &Playbook,
    now: chrono::DateTime<chrono::Utc>,
    events: &[Event],
) -> Result<PageSummary, String> {
    let Some(escalation) = report.escalation.clone() else {
        return Ok(PageSummary::default());
    };
    let retry = playbook.escalation.as_ref().and_then(|e| e.retry.as_ref());
    // Every round's (step, round, offset), in timeline order.
    let rounds: Vec<(&str, u32, u64)> = escalation
        .steps
        .iter()
        .flat_map(|s| {
            s.rounds
                .iter()
                .map(move |r| (s.name.as_str(), r.round, r.at_offset_seconds))
        })
        .collect();
    let end = escalation.ends_at_offset_seconds;
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].at);
    let mut stop: Option<(u64, Stop)> = None;
    for i in order {
        let event = &events[i];
        let at = event.at.as_secs();
        if at > end {
            // The page already ended exhausted: nobody hears this any more.
            continue;
        }
        match &event.kind {
            EventKind::Disposition {
                recipient,
                step,
                round,
                value,
            } => {
                let found = report.calls.iter().position(|c| {
                    c.recipient == *recipient
                        && c.status == Status::Planned
                        && c.disposition.is_none()
                        && c.at_offset_seconds.is_some_and(|o| o <= at)
                        && step.as_ref().is_none_or(|s| c.step.as_ref() == Some(s))
                        && round.is_none_or(|r| c.round == Some(r))
                });
                let Some(idx) = found else {
                    return Err(format!(
                        "simulate[{i}]: {} has no call{} placed by {} without a disposition yet",
                        recipient,
                        slot(step.as_deref(), *round),
                        label(event.at)
                    ));
                };
                report.calls[idx].disposition = Some(value.clone());
                if let Some(retry) = retry {
                    add_retry(report, idx, retry, at, &rounds, end, value);
                }
            }
            EventKind::Ack { by, via } => {
                stop = Some((
                    at,
                    Stop::Ack {
                        by: by.clone(),
                        via: via.clone(),
                    },
                ));
                break;
            }
            EventKind::Resolve => {
                stop = Some((at, Stop::Resolve));
                break;
            }
        }
    }
    let mut summary = PageSummary {
        rounds_run: rounds.len(),
        calls_before_ack: None,
    };
    let (outcome, ack) = match &stop {
        None => ("exhausted", None),
        Some((at, why)) => {
            let reason = match why {
                Stop::Ack { by, .. } => format!("acknowledged by {by}"),
                Stop::Resolve => "not attempted: the alert resolved".to_string(),
            };
            for c in &mut report.calls {
                if c.status == Status::Planned && c.at_offset_seconds.is_some_and(|o| o > *at) {
                    c.status = Status::Skipped;
                    c.reason = Some(reason.clone());
                }
            }
            summary.rounds_run = rounds.iter().filter(|r| r.2 <= *at).count();
            match why {
                Stop::Resolve => ("cancelled", None),
                Stop::Ack { by, via } => {
                    summary.calls_before_ack = Some(
                        report
                            .calls
                            .iter()
                            .filter(|c| c.status == Status::Planned)
                            .count(),
                    );
                    let going = rounds.iter().rev().find(|r| r.2 <= *at);
                    let due = now + chrono::Duration::seconds(i64::try_from(*at).unwrap_or(0));
                    let ack = AckReport {
                        by: by.clone(),
                        via: via.clone(),
                        at: timestamp(due),
                        after_seconds: *at,
                        text: None,
                        step: going.map(|r| r.0.to_string()),
                        round: going.map(|r| r.1),
                    };
                    ("acknowledged", Some(ack))
                }
            }
        }
    };
    if let Some(e) = report.escalation.as_mut() {
        e.outcome = Some(outcome.to_string());
        e.ack = ack;
    }
    report.recount();
    Ok(summary)
}

/// Adds a retry of the call at `idx`, which ended `value` at `at`, when
/// `retry` names that ending, the person has retries left in the round,
/// and it is due before the next round (or the page's end).
fn add_retry(
    report: &mut Report,
    idx: usize,
    retry: &Retry,
    at: u64,
    rounds: &[(&str, u32, u64)],
    end: u64,
    value: &str,
) {
    if !retry.on.iter().any(|m| m.matches(value)) {
        return;
    }
    let origin = report.calls[idx].clone();
    let same_slot = |c: &CallReport| {
        c.recipient == origin.recipient && c.step == origin.step && c.round == origin.round
    };
    let calls_in_round = report.calls.iter().filter(|c| same_slot(c)).count();
    if calls_in_round > retry.max as usize {
        return;
    }
    let this = rounds
        .iter()
        .position(|r| Some(r.0) == origin.step.as_deref() && Some(r.1) == origin.round);
    let next = this.and_then(|i| rounds.get(i + 1)).map_or(end, |r| r.2);
    let due = at.saturating_add(retry.after.as_secs());
    if due >= next {
        // Still due when the next round starts: dropped (the round calls them anyway).
        return;
    }
    let last = report
        .calls
        .iter()
        .rposition(|c| c.step == origin.step && c.round == origin.round)
        .unwrap_or(idx);
    let retry_call = CallReport {
        at_offset_seconds: Some(due),
        disposition: None,
        status: Status::Planned,
        reason: None,
        ..origin
    };
    report.calls.insert(last + 1, retry_call);
}

/// ` in step `x`, round 2` for a message.
fn slot(step: Option<&str>, round: Option<u32>) -> String {
    match (step, round) {
        (Some(s), Some(r)) => format!(" in step `{s}`, round {r}"),
        (Some(s), None) => format!(" in step `{s}`"),
        (None, Some(r)) => format!(" in round {r}"),
        (None, None) => String::new(),
    }
}

/// `+7m` for an offset.
fn label(d: Duration) -> String {
    crate::timeline::offset_label(d)
}
