//! The report of a page: one line per call of its ladder, and how it ended.
//!
//! A page's `calls` hold one entry per person per round (plus retries, in a
//! live page), ordered by step, round, then playbook order, each with its
//! `step`, `round` and planned `at_offset_seconds`. The `escalation` block
//! says what the ladder was and how the page ended:
//!
//! ```json
//! "escalation": {
//!   "code": "K7F",
//!   "outcome": "acknowledged",
//!   "ack": { "by": "Alice Ng", "via": "sms", "at": "2026-11-26T22:07:12Z", "after_seconds": 432, "text": "1" },
//!   "ends_at_offset_seconds": 1500,
//!   "steps": [ { "name": "primary", "rounds": [ { "round": 1, "started_at": "…", "at_offset_seconds": 0, "calls": 2 } ] } ]
//! }
//! ```
//!
//! As a table, the calls get their offset (`+0m`, `+5m`), step and round
//! in front, and a last line says how the ladder unfolds or ended.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::table::{excerpt, summary};
use super::{CallReport, PlaybookRef, Report, Status, Totals, timestamp};
use crate::escape::escape_controls;
use crate::plan::{Decision, RunInput};
use crate::playbook::Playbook;
use crate::timeline::{Timeline, due, offset_label};

/// The `escalation` block of a page's report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EscalationReport {
    /// The page's short code, as SMS acknowledgements name it.
    pub code: String,
    /// `acknowledged`, `exhausted`, `cancelled`, `interrupted` or
    /// `deduplicated`; absent in a dry run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Who acknowledged, how and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckReport>,
    /// The earlier page that made this one a repeat (`deduplicated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_by: Option<String>,
    /// When the page ends exhausted if nobody acknowledges, in seconds from its start.
    pub ends_at_offset_seconds: u64,
    /// Every step with its rounds.
    pub steps: Vec<StepReport>,
}

/// An acknowledgement.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AckReport {
    /// The recipient (or, by hand, the person) who acknowledged.
    pub by: String,
    /// `sms`, `call_back`, `answered` or `manual`.
    pub via: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// Seconds from the page's start.
    pub after_seconds: u64,
    /// The text of an SMS or the note of a manual acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The step going when it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The round of that step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

/// One step of the ladder in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// Its rounds, in order.
    pub rounds: Vec<RoundReport>,
}

/// One round of a step in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoundReport {
    /// The round within its step, from 1.
    pub round: u32,
    /// When it started (in a dry run: when it would start), RFC 3339, UTC.
    pub started_at: String,
    /// When it is planned, in seconds from the page's start.
    pub at_offset_seconds: u64,
    /// The calls it places.
    pub calls: usize,
}

impl Report {
    /// The report of a page's planned timeline; calls start as `planned`.
    pub fn from_timeline(playbook: &Playbook, timeline: &Timeline, run: &RunInput) -> Report {
        let step_names: Vec<&str> = playbook
            .escalation
            .as_ref()
            .map(|e| e.steps.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        let step_name = |i: usize| step_names.get(i).copied().unwrap_or("?").to_string();
        let mut calls = Vec::new();
        let mut steps: Vec<StepReport> = Vec::new();
        for round in &timeline.rounds {
            let offset = round.offset.as_secs();
            for e in &round.entries {
                let recipient = playbook.recipients[e.recipient].name.clone();
                let (service_type, service_id, status, reason) = match &e.decision {
                    Decision::Call(c) => (
                        Some(c.service_type.as_str().to_string()),
                        Some(c.service_id.clone()),
                        Status::Planned,
                        None,
                    ),
                    Decision::Skip(r) => (None, None, Status::Skipped, Some(r.clone())),
                };
                calls.push(CallReport {
                    recipient,
                    to: e.to.to_string(),
                    rule: e.rule.as_deref().map(str::to_string),
                    service_type,
                    service_id,
                    status,
                    call_id: None,
                    attempts: 0,
                    reason,
                    error: None,
                    step: Some(step_name(round.step)),
                    round: Some(round.round),
                    at_offset_seconds: Some(offset),
                    disposition: None,
                    billable_seconds: None,
                    ended_at: None,
                });
            }
            let report = RoundReport {
                round: round.round,
                started_at: timestamp(due(run.now, round.offset)),
                at_offset_seconds: offset,
                calls: round.calls(),
            };
            match steps.last_mut() {
                Some(last) if round.round > 1 => last.rounds.push(report),
                _ => steps.push(StepReport {
                    name: step_name(round.step),
                    rounds: vec![report],
                }),
            }
        }
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
            escalation: Some(EscalationReport {
                code: timeline.code.clone(),
                outcome: None,
                ack: None,
                deduplicated_by: None,
                ends_at_offset_seconds: timeline.end.as_secs(),
                steps,
            }),
        };
        report.recount();
        report
    }
}

/// Longest recipient, step or rule name shown before it is cut.
const NAME_CHARS: usize = 28;

/// Renders a page's report as a table: offset, step and round before each
/// call, then the totals and how the ladder unfolds or ended.
pub fn render(report: &Report) -> String {
    const HEADER: [&str; 9] = [
        "AT",
        "STEP",
        "ROUND",
        "RECIPIENT",
        "TO",
        "RULE",
        "TYPE",
        "STATUS",
        "MESSAGE / REASON",
    ];
    let rows: Vec<[String; 9]> = report.calls.iter().map(row).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    write_row(&mut out, &HEADER.map(str::to_string), &widths);
    for row in &rows {
        write_row(&mut out, row, &widths);
    }
    out.push('\n');
    out.push_str(&summary(report));
    out.push('\n');
    if let Some(line) = ladder_line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn row(c: &CallReport) -> [String; 9] {
    let detail = match c.status {
        Status::Skipped => c.reason.clone().unwrap_or_default(),
        Status::Failed | Status::Unknown => c.error.clone().unwrap_or_default(),
        _ => c.service_id.as_deref().map(excerpt).unwrap_or_default(),
    };
    let offset = c
        .at_offset_seconds
        .map(|s| offset_label(std::time::Duration::from_secs(s)))
        .unwrap_or_else(|| "-".to_string());
    // Names, rules and CSV fields are data: never let them drive the terminal.
    [
        offset,
        cut(
            &escape_controls(c.step.as_deref().unwrap_or("-")),
            NAME_CHARS,
        ),
        c.round.map_or_else(|| "-".to_string(), |r| r.to_string()),
        cut(&escape_controls(&c.recipient), NAME_CHARS),
        escape_controls(&c.to).into_owned(),
        cut(
            &escape_controls(c.rule.as_deref().unwrap_or("-")),
            NAME_CHARS,
        ),
        c.service_type.clone().unwrap_or_else(|| "-".to_string()),
        c.status.as_str().to_string(),
        escape_controls(&detail).into_owned(),
    ]
}

/// The last line: how the ladder unfolds (dry run) or how the page ended.
fn ladder_line(report: &Report) -> Option<String> {
    let e = report.escalation.as_ref()?;
    let rounds: usize = e.steps.iter().map(|s| s.rounds.len()).sum();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let end = offset_label(std::time::Duration::from_secs(e.ends_at_offset_seconds));
    let mut line = format!(
        "page {}: {}, {}; if nobody acknowledges it ends exhausted at {end}",
        e.code,
        plural(e.steps.len(), "step"),
        plural(rounds, "round"),
    );
    match (e.outcome.as_deref(), &e.ack) {
        (Some("acknowledged"), Some(ack)) => {
            let via = match ack.via.as_str() {
                "sms" => "by SMS",
                "call_back" => "by calling back",
                "answered" => "by answering",
                _ => "by hand",
            };
            let after = crate::playbook::escalation::compact_duration(
                std::time::Duration::from_secs(ack.after_seconds),
            );
            line = format!(
                "acknowledged by {} {via} after {after}",
                escape_controls(&ack.by)
            );
            if let (Some(step), Some(round)) = (&ack.step, ack.round) {
                line.push_str(&format!(" (step {}, round {round})", escape_controls(step)));
            }
        }
        (Some("deduplicated"), _) => {
            line = format!(
                "deduplicated by page {} for the same alert: nobody was called",
                escape_controls(e.deduplicated_by.as_deref().unwrap_or("?"))
            );
        }
        (Some("exhausted"), _) => {
            line = format!(
                "exhausted: nobody acknowledged page {} after {}",
                e.code,
                plural(rounds, "round")
            );
        }
        (Some("cancelled"), _) => {
            line = format!(
                "cancelled: the alert of page {} resolved after {}",
                e.code,
                plural(rounds, "round")
            );
        }
        (Some(other), _) => line = format!("page {}: {}", e.code, escape_controls(other)),
        (None, _) => {}
    }
    Some(line)
}

fn write_row(out: &mut String, cells: &[String; 9], widths: &[usize; 9]) {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let _ = write!(line, "{cell:<w$}  ");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}
