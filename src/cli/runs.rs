//! `callbook runs [PLAYBOOK]` and `callbook runs show RUN_ID`: the journal, read-only.

use super::args::{Format, RunsAction, RunsArgs};
use super::exit::{Exit, Failure};
use super::{print_stdout, runtime, state_dir};
use crate::model::{CallRecord, RunRecord, RunState, RunSummary, Timestamp};
use crate::report::ladder::{AckReport, EscalationReport, RoundReport, StepReport};
use crate::report::{self, Report};
use crate::store::sqlite::SqliteStore;
use crate::store::{LockHolder, RunQuery, Store, StoreError};

/// Lists runs or prints one run's report.
pub(super) fn runs(args: &RunsArgs) -> Result<Exit, Failure> {
    let store = SqliteStore::read_only(state_dir(args.state_dir.as_deref())?);
    runtime()?.block_on(async {
        match &args.action {
            None => list(&store, args).await,
            Some(RunsAction::Show { run_id }) => show(&store, run_id, args.format).await,
        }
    })
}

async fn list(store: &SqliteStore, args: &RunsArgs) -> Result<Exit, Failure> {
    let mut list = store
        .runs(args.playbook.as_deref(), args.limit)
        .await
        .map_err(Failure::Store)?;
    settle_running(store, &mut list).await;
    match args.format {
        Format::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        )),
        Format::Table => print_stdout(&report::table::runs(&list)),
    }
    Ok(Exit::Success)
}

async fn show(store: &SqliteStore, run_id: &str, format: Format) -> Result<Exit, Failure> {
    let run = store
        .find_run(RunQuery::Id(run_id.to_string()))
        .await
        .map_err(Failure::Store)?
        .ok_or_else(|| Failure::NoSuchRun(run_id.to_string()))?;
    let calls = store.calls(&run.id).await.map_err(Failure::Store)?;
    let mut report = Report::from_journal(&run, &calls);
    if let Some(code) = store.page_code(&run.id).await.map_err(Failure::Store)? {
        ladder(store, &run, &calls, code, &mut report)
            .await
            .map_err(Failure::Store)?;
    } else {
        // A broadcast run with `--listen` recorded how its calls ended.
        endings(store, &run, &mut report)
            .await
            .map_err(Failure::Store)?;
    }
    super::run::print_report(&report, format);
    Ok(Exit::Success)
}

/// Gives each call of the report how it ended, as its `END` callback said.
async fn endings<S: Store>(
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
                .and_then(|s| step_order.iter().position(|n| n == s))
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
    Ok(())
}

/// Shows a run recorded as `running` whose process is gone as `interrupted`.
///
/// A live run holds its playbook's lock for as long as its process lives, so
/// a `running` run is still running only while the lock is held by its pid.
async fn settle_running<S: Store>(store: &S, runs: &mut [RunSummary]) {
    for run in runs.iter_mut().filter(|r| r.state == RunState::Running) {
        let alive = match store.lock_holder(&run.playbook).await {
            LockHolder::Free => false,
            LockHolder::Held { pid } => match (pid, run.pid) {
                (Some(holder), Some(recorded)) => holder == recorded,
                // Not enough recorded to tell: trust the record.
                _ => true,
            },
        };
        if !alive {
            run.state = RunState::Interrupted;
        }
    }
}
