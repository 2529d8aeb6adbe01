//! What the journal recorded, read back: a run's report (as `runs show`
//! prints it, and as a pager answers for a page going or ended), and the
//! sources a page recorded when it started (to resume it from them).

use std::collections::HashMap;

use crate::model::{CallRecord, RunRecord, RunState, Timestamp};
use crate::plan::Selection;
use crate::report::ladder::{AckReport, EscalationReport, RoundReport, StepReport};
use crate::report::{self, Report};
use crate::store::{RunQuery, Store, StoreError};

/// The report of run `run_id` as the journal holds it now (a page's ladder,
/// dispositions and acknowledgement included); `None` when there is no such run.
///
/// # Errors
/// When the journal cannot be read.
pub async fn report<S: Store>(store: &S, run_id: &str) -> Result<Option<Report>, StoreError> {
    let Some(run) = store.find_run(RunQuery::Id(run_id.to_string())).await? else {
        return Ok(None);
    };
    let calls = store.calls(&run.id).await?;
    let mut report = Report::from_journal(&run, &calls);
    if let Some(code) = store.page_code(&run.id).await? {
        ladder(store, &run, &calls, code, &mut report).await?;
    } else {
        // A broadcast run with `--listen` recorded how its calls ended.
        endings(store, &run, &mut report).await?;
    }
    Ok(Some(report))
}

/// A page's sources as the journal records them (see the engine's pages).
#[derive(Debug, Default, serde::Deserialize)]
pub struct RecordedSources {
    /// The playbook's text and its included files' texts, by path as loaded.
    #[serde(default)]
    pub files: HashMap<String, String>,
    /// The variables.
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// The input.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// `--tag` and `--recipient` (absent in pages recorded before them).
    #[serde(default)]
    selection: Option<RecordedSelection>,
}

impl RecordedSources {
    /// Reads the sources a page recorded (JSON).
    ///
    /// # Errors
    /// When the text is not the JSON the engine records.
    pub fn parse(text: &str) -> Result<RecordedSources, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The recorded selection; `None` when the page recorded none.
    pub fn selection(&self) -> Option<Selection> {
        self.selection.as_ref().map(|s| Selection {
            tags: s.tags.clone(),
            names: s.names.clone(),
        })
    }
}

/// `--tag` and `--recipient` as a page recorded them.
#[derive(Debug, Default, serde::Deserialize)]
struct RecordedSelection {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
}

/// Gives each call of the report how it ended, as its `END` callback said.
pub(crate) async fn endings<S: Store>(
    store: &S,
    run: &RunRecord,
    report: &mut Report,
) -> Result<(), StoreError> {
    for end in store.call_endings(&run.id).await? {
        if let Some(call) = report.calls.get_mut(end.idx) {
            call.disposition = Some(end.disposition);
            call.billable_seconds = end.billable_seconds;
            call.ended_at = end.ended_at.map(|t| t.to_string());
        }
    }
    Ok(())
}

/// Gives the report of a recorded page what the report of the live page
/// had: each call's step, round and ending, the rounds as they started, the
/// outcome and the acknowledgement.
async fn ladder<S: Store>(
    store: &S,
    run: &RunRecord,
    calls: &[CallRecord],
    code: String,
    report: &mut Report,
) -> Result<(), StoreError> {
    let slots = store.call_slots(&run.id).await?;
    let rounds = store.page_rounds(&run.id).await?;
    let outcome = store.page_outcome(&run.id).await?;
    let ack = store.first_ack(&run.id).await?;
    let since = |t: Timestamp| u64::try_from((t.0 - run.now.0).num_seconds()).unwrap_or(0);
    for (idx, slot) in &slots {
        if let Some(call) = report.calls.get_mut(*idx) {
            call.step = Some(slot.step.clone());
            call.round = Some(slot.round);
            call.at_offset_seconds = Some(slot.at_offset);
        }
    }
    endings(store, run, report).await?;
    // The ladder as the journal placed it: steps and rounds in timeline order.
    let mut steps: Vec<StepReport> = Vec::new();
    for (idx, slot) in &slots {
        let planned_call = calls.get(*idx).is_some_and(|c| c.fingerprint.is_some());
        let step = match steps.iter().position(|s| s.name == slot.step) {
            Some(i) => &mut steps[i],
            None => {
                steps.push(StepReport {
                    name: slot.step.clone(),
                    rounds: Vec::new(),
                });
                let last = steps.len() - 1;
                &mut steps[last]
            }
        };
        match step.rounds.iter_mut().find(|r| r.round == slot.round) {
            Some(r) => r.calls += usize::from(planned_call),
            None => {
                let started = rounds
                    .iter()
                    .find(|r| r.step == slot.step && r.round == slot.round)
                    .map(|r| r.started_at);
                // Not started: when it was planned (an absurd offset: the start).
                let planned = i64::try_from(slot.at_offset)
                    .ok()
                    .and_then(chrono::Duration::try_seconds)
                    .and_then(|d| run.now.0.checked_add_signed(d))
                    .unwrap_or(run.now.0);
                step.rounds.push(RoundReport {
                    round: slot.round,
                    started_at: started.unwrap_or(Timestamp(planned)).to_string(),
                    at_offset_seconds: slot.at_offset,
                    calls: usize::from(planned_call),
                });
            }
        }
    }
    for step in &mut steps {
        step.rounds.sort_by_key(|r| r.round);
    }
    let ends_at = rounds
        .iter()
        .map(|r| since(r.due_at))
        .chain(slots.iter().map(|(_, s)| s.at_offset))
        .max()
        .unwrap_or(0);
    let outcome = outcome.or_else(|| match run.state {
        RunState::Interrupted => Some("interrupted".to_string()),
        RunState::Stopped => Some("stopped".to_string()),
        _ => None,
    });
    let ack = ack.map(|a| {
        // The step and round going when it came: the last one started before.
        let going = rounds
            .iter()
            .filter(|r| r.started_at <= a.at)
            .max_by_key(|r| r.started_at);
        AckReport {
            by: a.by,
            via: a.via.as_str().to_string(),
            at: a.at.to_string(),
            after_seconds: since(a.at),
            text: a.text,
            step: going.map(|r| r.step.clone()),
            round: going.map(|r| r.round),
        }
    });
    report.escalation = Some(EscalationReport {
        code,
        outcome,
        ack,
        deduplicated_by: None,
        ends_at_offset_seconds: ends_at,
        steps,
    });
    // By step, round, then the order people were first called in (retries
    // are recorded last).
    let step_order: Vec<String> = report
        .escalation
        .as_ref()
        .map(|e| e.steps.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    ladder_order(report, &step_order);
    Ok(())
}

/// Orders a page's calls as its report shows them: by step (in `steps`
/// order), round, then the order people were first called in; retries,
/// recorded last, join their round. Recounts the totals.
pub(crate) fn ladder_order(report: &mut Report, steps: &[String]) {
    let mut people: Vec<String> = Vec::new();
    for c in &report.calls {
        if !people.contains(&c.recipient) {
            people.push(c.recipient.clone());
        }
    }
    let position = |c: &report::CallReport| {
        (
            c.step
                .as_ref()
                .and_then(|s| steps.iter().position(|n| n == s))
                .unwrap_or(usize::MAX),
            c.round.unwrap_or(0),
            people
                .iter()
                .position(|n| n == &c.recipient)
                .unwrap_or(usize::MAX),
        )
    };
    report.calls.sort_by_key(|c| position(c));
    report.recount();
}
