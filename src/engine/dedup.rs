//! Dedup windows: a recipient already called for the same reason recently
//! is skipped, across runs, as `already called 12m ago`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Timestamp;
use crate::plan::{CallRequest, Decision, Plan};
use crate::playbook::Playbook;
use crate::store::{DedupQuery, Store, StoreError};

/// Skips calls already made within the playbook's dedup window.
///
/// A recipient with a `placed` or `unknown` call (or one sent but never
/// recorded) for the same playbook and dedup key within the window is skipped
/// as `already called 12m ago`.
///
/// # Errors
/// When the store cannot be read.
pub async fn apply<S: Store>(
    plan: &mut Plan,
    playbook: &Playbook,
    store: &S,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if playbook.dedup.is_none() {
        return Ok(());
    }
    for entry in &mut plan.entries {
        let Decision::Call(call) = &entry.decision else {
            continue;
        };
        if let Some(reason) = already_called(store, playbook, call, now, None).await? {
            entry.decision = Decision::Skip(reason);
        }
    }
    Ok(())
}

/// Why `call` is not to be made at `now`: `already called 12m ago` when the
/// dedup window holds a `placed` or `unknown` call (or one sent but never
/// recorded) of the same playbook, key and number by any run but `except_run`.
///
/// A resume passes its own run, so its history is judged like a fresh run's.
///
/// # Errors
/// When the store cannot be read.
pub async fn already_called<S: Store>(
    store: &S,
    playbook: &Playbook,
    call: &CallRequest,
    now: DateTime<Utc>,
    except_run: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let (Some(dedup), Some(key)) = (&playbook.dedup, &call.dedup_key) else {
        return Ok(None);
    };
    let window = chrono::Duration::from_std(dedup.window).unwrap_or(chrono::Duration::MAX);
    let since = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let last = store
        .last_call(DedupQuery {
            playbook: playbook.name.clone(),
            key: key.clone(),
            dial: call.to.to_string(),
            since: Timestamp(since),
            except_run: except_run.map(str::to_string),
        })
        .await?;
    Ok(last.map(|at| {
        let ago = (now - at.0).to_std().unwrap_or_default();
        format!("already called {} ago", short_duration(ago))
    }))
}

/// `45s`, `12m`, `1h5m`: how long ago, to the unit that matters.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        _ if (s % 3600) / 60 == 0 => format!("{}h", s / 3600),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations() {
        assert_eq!(short_duration(Duration::from_secs(45)), "45s");
        assert_eq!(short_duration(Duration::from_secs(12 * 60 + 5)), "12m");
        assert_eq!(short_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(short_duration(Duration::from_secs(3900)), "1h5m");
    }
}
