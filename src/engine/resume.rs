//! `--resume`: continue a recorded run; nobody already placed is called again.

use crate::model::{CallRecord, CallState, RunRecord, RunState, Status};
use crate::plan::{CallRequest, Decision, Plan, RunInput, fingerprint};
use crate::report::Report;
use crate::store::{RunQuery, Store};

use super::{Context, EngineError, Finished, Resume, confirmed, dedup, execute};

/// The run to resume and its recorded plan, or why there is none.
pub(super) async fn find<S: Store>(
    store: &S,
    playbook: &str,
    which: &Resume,
) -> Result<(RunRecord, Vec<CallRecord>), EngineError> {
    let query = match which {
        Resume::Run(id) => RunQuery::Id(id.clone()),
        Resume::Latest => RunQuery::LatestUnfinished(playbook.to_string()),
    };
    let run = store.find_run(query).await.map_err(EngineError::Read)?;
    let run = match run {
        Some(run) if run.playbook != playbook => {
            return Err(EngineError::OtherPlaybook {
                run: run.id,
                belongs: run.playbook,
                playbook: playbook.to_string(),
            });
        }
        Some(run) if run.state == RunState::Refused => {
            return Err(EngineError::ResumeRefused {
                run: run.id,
                playbook: playbook.to_string(),
            });
        }
        Some(run) if run.state == RunState::Finished => {
            return Err(EngineError::ResumeFinished {
                at: run
                    .finished_at
                    .map_or_else(|| "?".to_string(), |t| t.to_string()),
                run: run.id,
                playbook: playbook.to_string(),
            });
        }
        Some(run) => run,
        None => {
            return Err(match which {
                Resume::Run(id) => EngineError::NoSuchRun(id.clone()),
                Resume::Latest => EngineError::NothingToResume(playbook.to_string()),
            });
        }
    };
    let recorded = store.calls(&run.id).await.map_err(EngineError::Read)?;
    Ok((run, recorded))
}

/// Continues recorded run `run`: nobody already placed is called again.
///
/// `plan` is the playbook planned again with the run's clock; it must match
/// what was recorded, call for call. A call still to be made is skipped when
/// the dedup window holds a call to the same person by a later run, exactly
/// as a fresh run would skip it.
pub(super) async fn resume<S: Store>(
    ctx: Context<'_, S>,
    input: &RunInput,
    plan: Plan,
    run: &RunRecord,
    recorded: &[CallRecord],
) -> Result<Finished, EngineError> {
    let sorted = sort_recorded(&ctx, &plan, run, recorded).await?;
    let client = super::provider(&ctx)?;
    let mut report = Report::from_plan(ctx.playbook, plan, input);
    report.run_id.clone_from(&run.id);
    report.started_at = run.started_at.to_string();
    settle_report(&mut report, &sorted);
    let Sorted { calls, deduped, .. } = sorted;
    if !confirmed(&ctx, calls.len()).await {
        return Err(EngineError::NotConfirmed);
    }
    ctx.store
        .reopen_run(&run.id, std::process::id())
        .await
        .map_err(EngineError::Store)?;
    for (i, reason) in &deduped {
        ctx.store
            .skip(&run.id, *i, reason)
            .await
            .map_err(EngineError::Store)?;
    }
    tracing::info!(
        run = %run.id,
        remaining = calls.len(),
        "resuming: calls already placed or possibly placed are not repeated"
    );
    // Refused from here on (a rejected login), it stays resumable.
    let was = match run.state {
        RunState::Stopped => RunState::Stopped,
        _ => RunState::Interrupted,
    };
    execute(ctx, client, report, calls, was).await
}

/// A recorded run's calls, sorted by what a resume does with them.
struct Sorted<'r> {
    /// Still to be made.
    calls: Vec<(usize, CallRequest)>,
    /// Settled by the run itself: placed, possibly placed, or skipped.
    settled: Vec<(usize, Status, &'r CallRecord)>,
    /// Still to be made, but a later run called them inside the dedup window.
    deduped: Vec<(usize, String)>,
}

/// Checks that `plan` is the plan recorded for `run` and sorts its calls.
async fn sort_recorded<'r, S: Store>(
    ctx: &Context<'_, S>,
    plan: &Plan,
    run: &RunRecord,
    recorded: &'r [CallRecord],
) -> Result<Sorted<'r>, EngineError> {
    let changed = |what: String| EngineError::PlanChanged {
        run: run.id.clone(),
        what,
    };
    if plan.entries.len() != recorded.len() {
        return Err(changed(format!(
            "it planned {} recipients, this plan has {}",
            recorded.len(),
            plan.entries.len()
        )));
    }
    if let Some(was) = &run.caller_id
        && *was != ctx.playbook.caller_id
    {
        return Err(changed(format!(
            "it called from `{was}`, the playbook now calls from `{}`",
            ctx.playbook.caller_id
        )));
    }
    // Fingerprints of runs recorded before format 2 do not cover the caller id.
    let caller_id = (run.fingerprint_version >= 2).then_some(ctx.playbook.caller_id.as_str());
    let retry_unknown = ctx.playbook.provider.retry_ambiguous;
    let now = chrono::Utc::now();
    let mut sorted = Sorted {
        calls: Vec::new(),
        settled: Vec::new(),
        deduped: Vec::new(),
    };
    for (i, (entry, rec)) in plan.entries.iter().zip(recorded).enumerate() {
        let name = &ctx.playbook.recipients[entry.recipient].name;
        if *name != rec.recipient || *entry.to != *rec.to {
            return Err(changed(format!(
                "entry {i} was `{}`, now `{name}`",
                rec.recipient
            )));
        }
        if rec.state == CallState::Skipped {
            sorted.settled.push((i, Status::Skipped, rec));
            continue;
        }
        let Decision::Call(call) = &entry.decision else {
            return Err(changed(format!(
                "`{name}` was to be called, now is skipped"
            )));
        };
        if rec.fingerprint.as_deref() != Some(fingerprint(call, caller_id).as_str()) {
            return Err(changed(format!(
                "the call to `{name}` would now send something else"
            )));
        }
        // The dedup history is looked up, and the resumed calls recorded, by key:
        // under another key a later run's calls to them would go unseen.
        if rec.dedup_key != call.dedup_key {
            return Err(changed(format!(
                "the dedup key of the call to `{name}` changed"
            )));
        }
        let status = rec.state.status();
        let again = match status {
            Status::Placed | Status::Skipped => false,
            Status::Unknown => retry_unknown,
            Status::Failed | Status::Planned => true,
        };
        if !again {
            sorted.settled.push((i, status, rec));
            continue;
        }
        // A later run may have called them meanwhile: the dedup window decides, as for any run.
        let skip =
            dedup::already_called(ctx.store.as_ref(), ctx.playbook, call, now, Some(&run.id))
                .await
                .map_err(EngineError::Store)?;
        match skip {
            Some(reason) => sorted.deduped.push((i, reason)),
            None => sorted.calls.push((i, call.clone())),
        }
    }
    Ok(sorted)
}

/// Fills in what the recorded run already settled and what dedup skips.
fn settle_report(report: &mut Report, sorted: &Sorted<'_>) {
    for (i, status, rec) in &sorted.settled {
        if let Some(c) = report.calls.get_mut(*i) {
            c.status = *status;
            c.call_id.clone_from(&rec.call_id);
            c.attempts = rec.attempts;
            c.reason = rec.reason.clone().or(c.reason.take());
            c.error = match (&rec.error, rec.state) {
                (_, CallState::Sending) => Some(
                    "the request was sent but its outcome was never recorded: the call may have been placed"
                        .to_string(),
                ),
                (e, _) => e.clone(),
            };
            if *status == Status::Skipped {
                c.service_type = None;
                c.service_id = None;
            }
        }
    }
    for (i, reason) in &sorted.deduped {
        if let Some(c) = report.calls.get_mut(*i) {
            c.status = Status::Skipped;
            c.reason = Some(reason.clone());
            c.service_type = None;
            c.service_id = None;
        }
    }
}
