//! Pages in the engine: a ladder planned as a timeline, then run round by
//! round until someone acknowledges.

use super::{DryRun, EngineError};
use crate::plan::RunInput;
use crate::playbook::Playbook;
use crate::report::Report;
use crate::timeline;

/// Plans a page's whole timeline as a dry run: nothing is called or written.
///
/// # Errors
/// [`EngineError::Plan`] when any round of the ladder cannot be planned.
pub(super) fn dry_run(
    playbook: &Playbook,
    input: &RunInput,
    max_calls: Option<u64>,
) -> Result<DryRun, EngineError> {
    let code = timeline::new_code(&[]);
    let timeline = timeline::plan(playbook, input, &code).map_err(EngineError::Plan)?;
    let over_limit = timeline.over_limit(max_calls.or(playbook.max_calls));
    let mut report = Report::from_timeline(playbook, &timeline, input);
    report.finished_at = crate::model::timestamp(chrono::Utc::now().max(input.now));
    Ok(DryRun { report, over_limit })
}
