//! Bounds on every number and duration a playbook or the command line gives.
//!
//! callbook runs unattended, so a typo (`rate_limit: 1e19`, `retries: 3000`)
//! must be an error with a clear message before anything is called, never a
//! crash, a huge allocation or a run that takes a week. Each bound is far
//! beyond what a real account or playbook needs and small enough that the
//! machine is never at risk. The JSON Schema (`schema/playbook.schema.json`)
//! states the same numbers, so editors and `callbook validate` agree; a test
//! keeps the two equal.

use std::time::Duration;

/// Lowest `provider.rate_limit` / `--rate-limit`: one request every 100 s.
pub const MIN_RATE_LIMIT: f64 = 0.01;

/// Highest `provider.rate_limit` / `--rate-limit`, in requests per second.
///
/// The limiter keeps one start time per permit, so this also bounds its memory.
pub const MAX_RATE_LIMIT: f64 = 1000.0;

/// Highest `provider.concurrency` / `--concurrency`: requests in flight at once.
pub const MAX_CONCURRENCY: u32 = 1000;

/// Highest `provider.retries`: with backoff capped at 20 s, ten retries
/// already keep one call going for minutes.
pub const MAX_RETRIES: u32 = 10;

/// Shortest `provider.timeout`: a call request lasts until the callee picks up.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest `provider.timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Shortest `dedup.window` (a shorter one would suppress nothing).
pub const MIN_DEDUP_WINDOW: Duration = Duration::from_secs(1);

/// Longest `dedup.window`: 90 days.
pub const MAX_DEDUP_WINDOW: Duration = Duration::from_secs(90 * 86_400);

/// Highest `limits.max_calls` / `--max-calls`.
pub const MAX_CALLS: u64 = 1_000_000;

/// Default `limits.max_message_bytes`: the longest rendered message, URL or
/// destination (the `service_id` of a call request), or rendered dedup key,
/// in bytes. FoneStorm documents no limit of its own; 8 KiB is several
/// minutes of speech. It keeps a huge `--input` value out of the report,
/// the journal and the request.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 8 * 1024;

/// Highest `limits.max_message_bytes`.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024;

/// Most steps in `escalation.steps`: a ladder of more than a handful of
/// steps is a mistake, and each step multiplies the planned timeline.
pub const MAX_STEPS: usize = 20;

/// Most rounds of one step (`repeat`).
pub const MAX_REPEAT: u32 = 20;

/// Shortest `every` of a step: one second (tests use it; real pages wait minutes).
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// Longest `every` of a step: a day.
pub const MAX_EVERY: Duration = Duration::from_secs(86_400);

/// Longest whole ladder (every round's wait added up): a page that would go
/// on for more than a week is a typo (`every: 5h` for `5m`), not a page.
pub const MAX_LADDER: Duration = Duration::from_secs(7 * 86_400);

/// Most planned entries (a person in a round) of one page's timeline, so
/// planning and rendering every round up front stays within memory.
pub const MAX_TIMELINE_ENTRIES: usize = 100_000;

/// Most extra calls per person per round (`escalation.retry.max`).
pub const MAX_RETRY: u32 = 5;

/// Shortest and longest `escalation.retry.after`.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// See [`MIN_RETRY_AFTER`].
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Most words in `ack.sms`.
pub const MAX_ACK_WORDS: usize = 10;

/// Shortest and longest `ack.answered_min`.
pub const MIN_ANSWERED_MIN: Duration = Duration::from_secs(1);
/// See [`MIN_ANSWERED_MIN`].
pub const MAX_ANSWERED_MIN: Duration = Duration::from_secs(600);

/// Shortest and longest `ack.outcome_timeout`.
pub const MIN_OUTCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`MIN_OUTCOME_TIMEOUT`].
pub const MAX_OUTCOME_TIMEOUT: Duration = Duration::from_secs(3600);

/// Highest `callbook runs --limit`.
pub const MAX_RUNS_LISTED: usize = 10_000;

/// `0.5`, `10`, `1000`: a rate as people write it, for messages.
pub fn rate(value: f64) -> String {
    format!("{value}")
}

/// Checks a rate limit against [`MIN_RATE_LIMIT`] and [`MAX_RATE_LIMIT`].
///
/// # Errors
/// Why the value is out of range (also for NaN and infinities).
pub fn check_rate_limit(value: f64) -> Result<f64, String> {
    if value.is_finite() && (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "a rate limit is from {} to {} requests per second",
            rate(MIN_RATE_LIMIT),
            rate(MAX_RATE_LIMIT)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_bounded() {
        assert!(check_rate_limit(10.0).is_ok());
        assert!(check_rate_limit(0.01).is_ok());
        assert!(check_rate_limit(1000.0).is_ok());
        assert!(check_rate_limit(1e18).is_err());
        assert!(check_rate_limit(0.0).is_err());
        assert!(check_rate_limit(-1.0).is_err());
        assert!(check_rate_limit(f64::NAN).is_err());
        assert!(check_rate_limit(f64::INFINITY).is_err());
    }
}
