//! `callbook ack RUN_ID [--by NAME] [--note TEXT]`: acknowledges a page by
//! hand. The acknowledgement is recorded in the journal; the page, which
//! looks for one at least once a second, stops.

use super::args::AckArgs;
use super::exit::{Exit, Failure};
use super::{Output, runtime, state_dir};
use crate::diag::Diagnostic;
use crate::escape::escape_controls;
use crate::model::{AckRecord, AckResult, AckVia, Timestamp};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// The longest `--by`, in characters.
pub const MAX_BY_CHARS: usize = 200;
/// The longest `--note`, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Records a manual acknowledgement of page `args.run_id`.
pub(super) fn ack(args: &AckArgs, out: &Output<'_>) -> Result<Exit, Failure> {
    let by = match &args.by {
        Some(by) => by.trim().to_string(),
        None => user_name(),
    };
    let invalid = |m: String| Failure::Invalid(vec![Diagnostic::error(None, m)]);
    if by.is_empty() || by.chars().count() > MAX_BY_CHARS {
        return Err(invalid(format!(
            "--by: give a name of 1 to {MAX_BY_CHARS} characters"
        )));
    }
    if let Some(note) = &args.note
        && note.chars().count() > MAX_NOTE_CHARS
    {
        return Err(invalid(format!(
            "--note: at most {MAX_NOTE_CHARS} characters"
        )));
    }
    let store = SqliteStore::writable(state_dir(args.state_dir.as_deref())?);
    let record = AckRecord {
        by: by.clone(),
        via: AckVia::Manual,
        at: Timestamp::now(),
        text: args.note.clone(),
    };
    // The store starts its work on the runtime: the future is made inside it.
    let result = runtime()?
        .block_on(async { store.record_ack(&args.run_id, record).await })
        .map_err(Failure::Store)?;
    let run = escape_controls(&args.run_id);
    match result {
        AckResult::Recorded => {
            out.note(&format!(
                "page {run} acknowledged by {}",
                escape_controls(&by)
            ));
            Ok(Exit::Success)
        }
        AckResult::NoSuchRun => Err(invalid(format!("no run `{run}` in the journal"))),
        AckResult::NotAPage => Err(invalid(format!(
            "run `{run}` is not a page: only pages are acknowledged"
        ))),
        AckResult::Ended(how) => {
            out.error(format!(
                "page `{run}` already ended ({}): nothing was recorded",
                escape_controls(&how)
            ));
            Ok(Exit::Refused)
        }
    }
}

/// The OS user name, the default of `--by`.
fn user_name() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
