//! `callbook runs [PLAYBOOK]` and `callbook runs show RUN_ID`: the journal, read-only.

use super::args::{Format, RunsAction, RunsArgs};
use super::exit::{Exit, Failure};
use super::{print_stdout, runtime, state_dir};
use crate::model::{RunState, RunSummary};
use crate::report;
use crate::store::sqlite::SqliteStore;
use crate::store::{LockHolder, Store};

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
    let report = crate::engine::recorded::report(store, run_id)
        .await
        .map_err(Failure::Store)?
        .ok_or_else(|| Failure::NoSuchRun(run_id.to_string()))?;
    super::run::print_report(&report, format);
    Ok(Exit::Success)
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
