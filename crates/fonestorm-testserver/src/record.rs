//! The record of every request the server saw, and the figures tests assert on
//! (calls placed, rate-limit rejections, peak request rate). The figures are pure
//! functions of the record, so they are unit-tested without a server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::callback::CallbackRecord;
use crate::config::{Fault, Outcome};

/// Whether a call request counts as a placed call: what a real account would
/// have been charged for, and what "never call anyone twice" is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placed {
    /// Not placed: an error answer, or not a call request.
    No,
    /// Placed, and the answer said so (`201`, also with a malformed body).
    Yes,
    /// Possibly placed: answered `500`/`502`/`504`, or never answered (hang,
    /// dropped connection). The server counts these as placed, the worst case.
    Ambiguous,
}

impl Placed {
    /// Whether the call counts towards [`Handle::placed_calls`](crate::Handle::placed_calls).
    pub fn counts(self) -> bool {
        self != Placed::No
    }
}

/// One request as the server saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// When the request was admitted or rejected by the rate limiter; records are
    /// in this order.
    #[serde(skip)]
    pub arrived: Instant,
    /// `arrived`, relative to the server's start.
    #[serde(skip)]
    pub at: Duration,
    /// `at` in whole milliseconds, for logs and `/_stats`.
    pub at_ms: u64,
    /// The HTTP method.
    pub method: String,
    /// The request path, e.g. `/calls`.
    pub path: String,
    /// The `to` field of a call request's body, when there was one (even if the
    /// body was otherwise invalid).
    pub to: Option<String>,
    /// The `token` header, when there was one.
    pub token: Option<String>,
    /// The status answered; `None` while the request is in flight, and forever for
    /// a request that hung or whose connection was dropped.
    pub status: Option<u16>,
    /// The id of the call, when one was answered.
    pub call_id: Option<String>,
    /// Whether this request counts as a placed call.
    pub placed: Placed,
    /// Whether the rate limiter rejected the request (it then got `429` and did not
    /// count towards the limit).
    pub rate_limited: bool,
    /// The injected fault that decided the answer, if any.
    pub fault: Option<Fault>,
    /// For a call counted as placed: the `uid` of its callbacks (the `call.id`
    /// answered, when one was).
    pub uid: Option<String>,
    /// For a call counted as placed: how it ended, as its `END` callback says.
    pub outcome: Option<Outcome>,
}

impl RequestRecord {
    /// A record for a request that has just arrived.
    pub(crate) fn new(arrived: Instant, started: Instant, method: &str, path: &str) -> Self {
        let at = arrived.saturating_duration_since(started);
        RequestRecord {
            arrived,
            at,
            at_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
            method: method.to_owned(),
            path: path.to_owned(),
            to: None,
            token: None,
            status: None,
            call_id: None,
            placed: Placed::No,
            rate_limited: false,
            fault: None,
            uid: None,
            outcome: None,
        }
    }

    /// One line for the log: time, request, `to` and outcome. Holds no secret:
    /// neither the token nor a password is part of it.
    pub(crate) fn log_line(&self, outcome: &str) -> String {
        let to = self
            .to
            .as_deref()
            .map(|to| format!(" to={to}"))
            .unwrap_or_default();
        let secs = self.at.as_secs_f64();
        format!(
            "{secs:>9.3}s {} {}{to} -> {outcome}",
            self.method, self.path
        )
    }
}

/// The `to` of every call counted as placed, in arrival order.
pub(crate) fn placed_calls(records: &[RequestRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|record| record.placed.counts())
        .filter_map(|record| record.to.clone())
        .collect()
}

/// How many times each `to` was placed.
pub(crate) fn placed_counts(records: &[RequestRecord]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for to in placed_calls(records) {
        *counts.entry(to).or_insert(0) += 1;
    }
    counts
}

/// How many requests were answered with `status`.
pub(crate) fn count_status(records: &[RequestRecord], status: u16) -> usize {
    records
        .iter()
        .filter(|record| record.status == Some(status))
        .count()
}

/// How many `POST /auth` requests got past the rate limiter.
pub(crate) fn auth_count(records: &[RequestRecord]) -> usize {
    records
        .iter()
        .filter(|record| record.path == "/auth" && !record.rate_limited)
        .count()
}

/// The most requests not rejected by the rate limiter that arrived within any
/// half-open window `[t, t + window)`. The server's own limiter uses the same
/// rule, so with a limit of L this never exceeds L for a one-second window.
pub(crate) fn max_in_any_window(records: &[RequestRecord], window: Duration) -> usize {
    let arrivals: Vec<Instant> = records
        .iter()
        .filter(|record| !record.rate_limited)
        .map(|record| record.arrived)
        .collect();
    let mut best = 0;
    let mut start = 0;
    for (end, &last) in arrivals.iter().enumerate() {
        while last.saturating_duration_since(arrivals[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The summary `GET /_stats` serves and [`Handle::stats`](crate::Handle::stats)
/// returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request, in arrival order.
    pub requests: Vec<RequestRecord>,
    /// The `to` of every call counted as placed, in arrival order.
    pub placed_calls: Vec<String>,
    /// How many times each `to` was placed.
    pub placed_counts: BTreeMap<String, usize>,
    /// How many requests were answered `429`.
    pub count_429: usize,
    /// How many `POST /auth` requests got past the rate limiter.
    pub auth_count: usize,
    /// Every token presented on `POST /calls`.
    pub tokens_seen: BTreeSet<String>,
    /// The most accepted requests within any one second.
    pub max_requests_in_one_second: usize,
    /// How many times each fault rule fired, in the order of the rules.
    pub fault_fires: Vec<u32>,
    /// Every callback sent or lost, in the order they finished.
    pub callbacks: Vec<CallbackRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(offsets_ms: &[u64], limited: &[bool]) -> Vec<RequestRecord> {
        let start = Instant::now();
        offsets_ms
            .iter()
            .zip(limited)
            .map(|(&ms, &rate_limited)| RequestRecord {
                rate_limited,
                ..RequestRecord::new(start + Duration::from_millis(ms), start, "POST", "/calls")
            })
            .collect()
    }

    #[test]
    fn window_is_half_open() {
        let recs = records(&[0, 500, 1000, 1500], &[false; 4]);
        assert_eq!(max_in_any_window(&recs, Duration::from_secs(1)), 2);
        assert_eq!(max_in_any_window(&recs, Duration::from_millis(1001)), 3);
    }

    #[test]
    fn rate_limited_requests_do_not_count() {
        let recs = records(&[0, 1, 2, 3], &[false, true, true, false]);
        assert_eq!(max_in_any_window(&recs, Duration::from_secs(1)), 2);
    }

    #[test]
    fn empty_record_has_no_peak() {
        assert_eq!(max_in_any_window(&[], Duration::from_secs(1)), 0);
    }

    #[test]
    fn ambiguous_calls_count_as_placed() {
        let mut recs = records(&[0, 1, 2], &[false; 3]);
        for (record, (to, placed)) in recs.iter_mut().zip([
            ("1", Placed::Yes),
            ("1", Placed::Ambiguous),
            ("2", Placed::No),
        ]) {
            record.to = Some(to.to_owned());
            record.placed = placed;
        }
        assert_eq!(placed_calls(&recs), ["1", "1"]);
        assert_eq!(placed_counts(&recs), HashMap::from([("1".to_owned(), 2)]));
    }
}
