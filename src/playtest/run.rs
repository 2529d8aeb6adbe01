//! Running one case: the plan `run --dry-run` would make with the case's
//! clock, variables, input, tags and dedup history, then the comparison
//! with what the case expects.
//!
//! Nothing is contacted and no journal is read or written: the dedup
//! history is the case's `history` alone. A page's short code is fixed
//! ([`TEST_CODE`]) so that messages holding `ack.hint` stay the same from
//! one run to the next.

use std::collections::HashSet;

use super::file::{CallExpect, Case, Expect, TestFile};
use super::simulate::{self, PageSummary};
use crate::diag::Diagnostic;
use crate::engine::dedup::short_duration;
use crate::plan::{self, Decision, RunInput, Selection};
use crate::playbook::Playbook;
use crate::report::{CallReport, Report, Status};

/// The short code of every page planned by a test.
pub const TEST_CODE: &str = "K7F";

/// What a case planned: the report (with a page's simulated events
/// applied), or why the plan failed.
#[derive(Clone, Debug)]
pub enum Actual {
    /// The plan, as its dry-run report.
    Planned {
        /// The report.
        report: Box<Report>,
        /// For a page: how its simulated timeline ended.
        page: Option<PageSummary>,
    },
    /// The plan failed with these diagnostics.
    Failed(Vec<Diagnostic>),
    /// The simulation could not be played (an event names no call).
    BadSimulation(String),
}

/// One difference between what a case expects and what it planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What was compared, e.g. `calls[0] (Alice Ng): status`.
    pub what: String,
    /// The expected value, as text.
    pub expected: String,
    /// The actual value, as text.
    pub actual: String,
    /// Whether the values are messages, shown as a line diff.
    pub text: bool,
}

/// The result of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its index in the file.
    pub index: usize,
    /// What it planned.
    pub actual: Actual,
    /// Every difference found; empty when the case passed.
    pub mismatches: Vec<Mismatch>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Plans and checks case `index` of `file`.
pub fn run_case(file: &TestFile, index: usize) -> Option<CaseResult> {
    let case = file.cases.get(index)?;
    let actual = plan_case(&file.playbook, case);
    let mismatches = compare(&case.expect, &actual);
    Some(CaseResult {
        name: case.name.clone(),
        index,
        actual,
        mismatches,
    })
}

/// The plan of `case`, as `run --dry-run` would make it.
pub fn plan_case(playbook: &Playbook, case: &Case) -> Actual {
    let mut vars = playbook.vars.clone();
    vars.extend(case.vars.clone());
    let input = RunInput {
        run_id: "test".to_string(),
        now: case.now,
        dry_run: true,
        vars,
        input: case.input.clone(),
        selection: Selection {
            tags: case.tags.clone(),
            names: Vec::new(),
        },
    };
    if playbook.escalation.is_some() {
        let timeline = match crate::timeline::plan(playbook, &input, TEST_CODE) {
            Ok(t) => t,
            Err(d) => return Actual::Failed(d),
        };
        let mut report = Report::from_timeline(playbook, &timeline, &input);
        if let Some(ago) = page_repeat(playbook, case) {
            // The same alert was paged within the window: nobody is called.
            report.calls.clear();
            report.recount();
            if let Some(e) = report.escalation.as_mut() {
                e.outcome = Some("deduplicated".to_string());
                e.deduplicated_by = Some(format!("a page {ago} ago"));
            }
            return Actual::Planned {
                report: Box::new(report),
                page: Some(PageSummary::default()),
            };
        }
        return match simulate::apply(&mut report, playbook, case.now, &case.simulate) {
            Ok(summary) => Actual::Planned {
                report: Box::new(report),
                page: Some(summary),
            },
            Err(m) => Actual::BadSimulation(m),
        };
    }
    let mut plan = match plan::plan(playbook, &input) {
        Ok(p) => p,
        Err(d) => return Actual::Failed(d),
    };
    apply_history(&mut plan, playbook, case);
    Actual::Planned {
        report: Box::new(Report::from_plan(playbook, plan, &input)),
        page: None,
    }
}

/// Skips, as the journal's dedup would, every call to a number that the
/// case's history called within the playbook's window.
fn apply_history(plan: &mut plan::Plan, playbook: &Playbook, case: &Case) {
    let Some(dedup) = &playbook.dedup else {
        return;
    };
    for entry in &mut plan.entries {
        let Decision::Call(call) = &entry.decision else {
            continue;
        };
        if call.dedup_key.is_none() {
            continue;
        }
        let last = case
            .history
            .iter()
            .filter(|(name, ago)| {
                *ago <= dedup.window
                    && playbook
                        .recipients
                        .iter()
                        .any(|r| r.name == *name && r.target.dial() == &*call.to)
            })
            .map(|(_, ago)| *ago)
            .min();
        if let Some(ago) = last {
            entry.decision = Decision::Skip(format!("already called {} ago", short_duration(ago)));
        }
    }
}

/// How long ago a page of this playbook called someone of the case's
/// history within the dedup window (the same alert paged again).
fn page_repeat(playbook: &Playbook, case: &Case) -> Option<String> {
    let dedup = playbook.dedup.as_ref()?;
    case.history
        .iter()
        .filter(|(_, ago)| *ago <= dedup.window)
        .map(|(_, ago)| *ago)
        .min()
        .map(short_duration)
}

/// Every difference between `expect` and `actual`.
pub fn compare(expect: &Expect, actual: &Actual) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let (report, page) = match actual {
        Actual::Failed(diagnostics) => {
            let text = error_text(diagnostics);
            match &expect.error_contains {
                Some(want) if text.contains(want.as_str()) => {}
                Some(want) => out.push(Mismatch {
                    what: "error_contains".to_string(),
                    expected: want.clone(),
                    actual: text,
                    text: true,
                }),
                None => out.push(Mismatch {
                    what: "the plan".to_string(),
                    expected: "a plan".to_string(),
                    actual: format!("the plan failed:\n{text}"),
                    text: false,
                }),
            }
            return out;
        }
        Actual::BadSimulation(m) => {
            out.push(Mismatch {
                what: "simulate".to_string(),
                expected: "events on calls the timeline places".to_string(),
                actual: m.clone(),
                text: false,
            });
            return out;
        }
        Actual::Planned { report, page } => (report, page),
    };
    if let Some(want) = &expect.error_contains {
        out.push(Mismatch {
            what: "error_contains".to_string(),
            expected: format!("the plan fails with {want:?}"),
            actual: "the plan succeeded".to_string(),
            text: false,
        });
    }
    let t = &report.totals;
    for (key, want) in &expect.totals {
        let got = match key.as_str() {
            "recipients" => t.recipients,
            "planned" => t.planned,
            "placed" => t.placed,
            "failed" => t.failed,
            "unknown" => t.unknown,
            _ => t.skipped,
        };
        if got != *want {
            out.push(Mismatch {
                what: format!("totals.{key}"),
                expected: want.to_string(),
                actual: got.to_string(),
                text: false,
            });
        }
    }
    let mut used = vec![false; report.calls.len()];
    for (j, want) in expect.calls.iter().enumerate() {
        compare_call(j, want, &report.calls, &mut used, &mut out);
    }
    if expect.calls_exactly {
        let listed: HashSet<&str> = expect.calls.iter().map(|c| c.recipient.as_str()).collect();
        let mut extra: Vec<&str> = Vec::new();
        for c in &report.calls {
            if c.status == Status::Planned
                && !listed.contains(c.recipient.as_str())
                && !extra.contains(&c.recipient.as_str())
            {
                extra.push(&c.recipient);
            }
        }
        if !extra.is_empty() {
            out.push(Mismatch {
                what: "calls_exactly".to_string(),
                expected: "only the listed recipients are planned".to_string(),
                actual: format!("also planned: {}", extra.join(", ")),
                text: false,
            });
        }
    }
    if let Some(want) = &expect.escalation {
        let e = report.escalation.as_ref();
        let outcome = e.and_then(|e| e.outcome.clone());
        let ack = e.and_then(|e| e.ack.as_ref());
        let mut field = |what: &str, want: Option<String>, got: Option<String>| {
            if let Some(want) = want
                && Some(&want) != got.as_ref()
            {
                out.push(Mismatch {
                    what: format!("escalation.{what}"),
                    expected: want,
                    actual: got.unwrap_or_else(|| "(none)".to_string()),
                    text: false,
                });
            }
        };
        field("outcome", want.outcome.clone(), outcome);
        field("ack_by", want.ack_by.clone(), ack.map(|a| a.by.clone()));
        field("ack_via", want.ack_via.clone(), ack.map(|a| a.via.clone()));
        let summary = page.clone().unwrap_or_default();
        field(
            "calls_before_ack",
            want.calls_before_ack.map(|n| n.to_string()),
            summary.calls_before_ack.map(|n| n.to_string()),
        );
        field(
            "rounds_run",
            want.rounds_run.map(|n| n.to_string()),
            Some(summary.rounds_run.to_string()),
        );
    }
    out
}

/// Compares entry `j` of `expect.calls` with the first unused call of that
/// person (narrowed by step and round), in timeline order.
fn compare_call(
    j: usize,
    want: &CallExpect,
    calls: &[CallReport],
    used: &mut [bool],
    out: &mut Vec<Mismatch>,
) {
    let what = format!("calls[{j}] ({})", want.recipient);
    let found = calls.iter().enumerate().position(|(i, c)| {
        !used[i]
            && c.recipient == want.recipient
            && want
                .step
                .as_ref()
                .is_none_or(|s| c.step.as_ref() == Some(s))
            && want.round.is_none_or(|r| c.round == Some(r))
    });
    let Some(i) = found else {
        let slot = match (&want.step, want.round) {
            (Some(s), Some(r)) => format!(" in step `{s}`, round {r}"),
            (Some(s), None) => format!(" in step `{s}`"),
            (None, Some(r)) => format!(" in round {r}"),
            (None, None) => String::new(),
        };
        out.push(Mismatch {
            what,
            expected: format!("a call{slot}"),
            actual: "not in the plan (not selected, or no such call left)".to_string(),
            text: false,
        });
        return;
    };
    used[i] = true;
    let c = &calls[i];
    if let Some(status) = &want.status
        && status != c.status.as_str()
    {
        let mut got = c.status.as_str().to_string();
        if let Some(reason) = &c.reason {
            got.push_str(&format!(" ({reason})"));
        }
        out.push(Mismatch {
            what: format!("{what}: status"),
            expected: status.clone(),
            actual: got,
            text: false,
        });
    }
    let mut field = |name: &str, want: &Option<String>, got: Option<&str>| {
        if let Some(want) = want
            && Some(want.as_str()) != got
        {
            out.push(Mismatch {
                what: format!("{what}: {name}"),
                expected: want.clone(),
                actual: got.unwrap_or("(none)").to_string(),
                text: false,
            });
        }
    };
    field("rule", &want.rule, c.rule.as_deref());
    field(
        "service_type",
        &want.service_type,
        c.service_type.as_deref(),
    );
    field("to", &want.to, Some(c.to.as_str()));
    let message = c.service_id.as_deref().unwrap_or_default();
    for part in &want.message_contains {
        if !message.contains(part.as_str()) {
            out.push(Mismatch {
                what: format!("{what}: message_contains"),
                expected: part.clone(),
                actual: c
                    .service_id
                    .clone()
                    .unwrap_or_else(|| format!("(no message: {})", c.status.as_str())),
                text: true,
            });
        }
    }
    if let Some(part) = &want.reason_contains {
        let reason = c.reason.as_deref().unwrap_or_default();
        if !reason.contains(part.as_str()) {
            out.push(Mismatch {
                what: format!("{what}: reason_contains"),
                expected: part.clone(),
                actual: c
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("(no reason: {})", c.status.as_str())),
                text: false,
            });
        }
    }
}

/// The plan's errors as text, one per line, as `validate` prints their first lines.
pub fn error_text(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
