//! What the test server does: credentials, latency, rate limit and the faults to
//! inject. Kept in one plain struct so that a test can state its whole scenario in
//! one expression, and so that a running server can swap any part of it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::hooks::{Hooks, OptionsSpelling};

/// The behaviour of a test server. Every field can be changed while the server
/// runs, through [`Handle::update_config`](crate::Handle::update_config) and the
/// narrower setters next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a successful `POST /calls` takes to answer. The real API answers
    /// only once the call connects (seconds of ringing), so clients must keep many
    /// requests in flight; a latency lets tests and benchmarks see that.
    pub latency: Duration,
    /// Requests accepted per sliding one-second window over all API paths, beyond
    /// which the server answers `429` with `Retry-After: 1`. `None` means no limit,
    /// which lets a test measure the client's own pacing with
    /// [`Handle::max_requests_in_any_window`](crate::Handle::max_requests_in_any_window).
    pub rate_limit: Option<u32>,
    /// The user name `POST /auth` accepts.
    pub username: String,
    /// The password `POST /auth` accepts. Never logged.
    pub password: String,
    /// Tokens that `POST /calls` accepts without a prior `POST /auth`, and that do
    /// not expire (unless a [`Fault::ExpireToken`] expires one).
    pub static_tokens: Vec<String>,
    /// When set, the lifetime of every token `POST /auth` issues, overriding the
    /// `expires` the client asked for; lets a test expire tokens within a run.
    pub token_ttl: Option<Duration>,
    /// The account's FoneNumbers: a `fonenumber` outside this list gets `404`.
    pub fonenumbers: Vec<String>,
    /// FoneNumbers of the account that `GET /fonenumbers` shows as inactive
    /// (`is_active: false`), so that a client's check of its caller id can be
    /// tested; calls from them are still accepted.
    pub inactive_fonenumbers: Vec<String>,
    /// FoneNumbers of the account whose SMS service `GET /fonenumbers` shows as
    /// off (`sms_enabled: false` in the SMS settings).
    pub sms_disabled_fonenumbers: Vec<String>,
    /// Faults to inject into `POST /calls`, tried in order; the first rule that
    /// matches and has fires left decides the answer.
    pub faults: Vec<FaultRule>,
    /// Faults to inject into `POST /auth`, tried in order like `faults`; `nth`
    /// counts login requests and `to` never matches. Lets a test make a token
    /// renewal fail (e.g. one `503`) while the old token is still valid.
    pub auth_faults: Vec<FaultRule>,
    /// The callbacks registered when the server starts, per FoneNumber, e.g. a
    /// foreign URL already installed, so that a client's refusal to replace it
    /// can be tested. Read once at start: later changes go through the API or
    /// [`Handle::set_hooks`](crate::Handle::set_hooks).
    pub hooks: BTreeMap<String, Hooks>,
    /// Which keys `GET /fonenumbers` uses for the callback settings.
    pub options_spelling: OptionsSpelling,
    /// How calls end, per dial string and attempt; the first script whose `to`
    /// matches (or that has none) decides. Calls no script matches end with
    /// `default_outcome`.
    pub dispositions: Vec<DispositionScript>,
    /// How a call that no script matches ends.
    pub default_outcome: Outcome,
    /// How long after a call's `BEGIN` callback its `END` callback is sent.
    pub callback_delay: Duration,
    /// How long one callback delivery may take before it is given up (and
    /// recorded as failed); callbacks are never retried, as FoneStorm does not.
    pub callback_timeout: Duration,
    /// Callbacks to lose or duplicate, tried in order; the first rule that
    /// matches a placed call and has fires left applies to it.
    pub callback_faults: Vec<CallbackRule>,
    /// The `account_code` field of call callbacks.
    pub account_code: String,
    /// How the numbers in callbacks are written.
    pub number_style: NumberStyle,
    /// The field that carries an inbound SMS's text.
    pub sms_text_field: SmsTextField,
    /// Print one line per request on stderr (path, `to`, status; never a secret).
    /// Off by default so tests stay quiet; the binary turns it on.
    pub log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            latency: Duration::ZERO,
            rate_limit: Some(10),
            username: "callbook".to_owned(),
            password: "s3cret-test-password".to_owned(),
            static_tokens: vec!["test-token".to_owned()],
            token_ttl: None,
            fonenumbers: vec!["3214991000".to_owned()],
            inactive_fonenumbers: Vec::new(),
            sms_disabled_fonenumbers: Vec::new(),
            faults: Vec::new(),
            auth_faults: Vec::new(),
            hooks: BTreeMap::new(),
            options_spelling: OptionsSpelling::Call,
            dispositions: Vec::new(),
            default_outcome: Outcome::answered(30),
            callback_delay: Duration::ZERO,
            callback_timeout: Duration::from_secs(5),
            callback_faults: Vec::new(),
            account_code: "1000".to_owned(),
            number_style: NumberStyle::AsDialed,
            sms_text_field: SmsTextField::Message,
            log: false,
        }
    }
}

/// How one call ended, as its `END` callback reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `ANSWERED`, `NO_ANSWER`, `BUSY`, `CANCEL`, `REJECTED` or `FAILED:<code>`.
    pub disposition: String,
    /// The billable seconds of the call.
    pub billable_seconds: u64,
}

impl Outcome {
    /// A call a person answered and talked on for `billable_seconds`.
    pub fn answered(billable_seconds: u64) -> Self {
        Outcome {
            disposition: "ANSWERED".to_owned(),
            billable_seconds,
        }
    }

    /// A call with this disposition and no billable time.
    pub fn unanswered(disposition: impl Into<String>) -> Self {
        Outcome {
            disposition: disposition.into(),
            billable_seconds: 0,
        }
    }
}

/// How the calls to one dial string end, attempt by attempt: the n-th placed
/// call to it ends with `outcomes[n - 1]`, and the last entry repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispositionScript {
    /// The dial string (`to`) it applies to, exactly; `None` applies to all.
    pub to: Option<String>,
    /// The outcomes of the 1st, 2nd, ... call; never empty when parsed.
    pub outcomes: Vec<Outcome>,
}

impl DispositionScript {
    /// The outcome of the `attempt`-th call (from 1); `None` only when empty.
    pub(crate) fn outcome(&self, attempt: u64) -> Option<&Outcome> {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.outcomes.get(index).or_else(|| self.outcomes.last())
    }
}

/// Which placed calls a callback fault hits, how often, and what happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackRule {
    /// Hit only calls to this dial string.
    pub to: Option<String>,
    /// Hit only the n-th placed call (from 1), counting every call the server
    /// counts as placed.
    pub nth: Option<u64>,
    /// How many times the rule fires; `None` means every time it matches.
    pub times: Option<u32>,
    /// What happens to the call's callbacks.
    pub fault: CallbackFault,
}

impl CallbackRule {
    /// A rule that hits every placed call; narrow it with `to`/`nth`/`times`.
    pub fn new(fault: CallbackFault) -> Self {
        CallbackRule {
            to: None,
            nth: None,
            times: None,
            fault,
        }
    }

    /// Hit only calls to this dial string.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Hit only the n-th placed call.
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    /// Fire at most `times` times.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub(crate) fn matches(&self, to: &str, nth_placed: u64) -> bool {
        self.to.as_deref().is_none_or(|want| want == to)
            && self.nth.is_none_or(|want| want == nth_placed)
    }
}

/// What happens to a placed call's callbacks instead of normal delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackFault {
    /// The `BEGIN` callback is lost (never sent).
    LoseBegin,
    /// The `END` callback is lost: the client never learns how the call ended.
    LoseEnd,
    /// Both callbacks are lost.
    LoseBoth,
    /// The `END` callback is sent twice, to test that handling it is idempotent.
    DuplicateEnd,
}

/// How numbers are written in callbacks: FoneStorm's documentation does not say,
/// so clients must accept either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum NumberStyle {
    /// As dialed: `from` is the 10-digit FoneNumber, `to` the dial string.
    #[default]
    AsDialed,
    /// E.164 with `+`: a 10-digit number gets `+1`, an 11-digit one `+`, and
    /// `011` becomes `+`.
    Plus,
}

impl NumberStyle {
    /// Writes `number` in this style.
    pub(crate) fn write(self, number: &str) -> String {
        match self {
            NumberStyle::AsDialed => number.to_owned(),
            NumberStyle::Plus => {
                if let Some(rest) = number.strip_prefix("011") {
                    format!("+{rest}")
                } else if number.len() == 10 {
                    format!("+1{number}")
                } else {
                    format!("+{number}")
                }
            }
        }
    }
}

/// The field of an inbound SMS callback that carries the text: FoneStorm's
/// documentation does not pin it down, so clients accept several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsTextField {
    /// `message` (the default).
    #[default]
    Message,
    /// `msg`.
    Msg,
    /// `text`.
    Text,
    /// `body`.
    Body,
}

impl SmsTextField {
    /// The field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsTextField::Message => "message",
            SmsTextField::Msg => "msg",
            SmsTextField::Text => "text",
            SmsTextField::Body => "body",
        }
    }

    /// Reads a field name.
    pub fn parse(text: &str) -> Option<SmsTextField> {
        match text {
            "message" => Some(SmsTextField::Message),
            "msg" => Some(SmsTextField::Msg),
            "text" => Some(SmsTextField::Text),
            "body" => Some(SmsTextField::Body),
            _ => None,
        }
    }
}

/// One fault to inject: which `POST /calls` requests it hits, how often, and what
/// the server does instead of its normal answer.
///
/// The matchers are combined with "and"; a rule without any matcher hits every
/// call request. Rules are only tried on requests that would otherwise succeed
/// (valid token and body, after the rate limiter), so a fault never hides a
/// client bug that the server would report anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRule {
    /// Hit only requests whose `to` equals this string exactly.
    pub to: Option<String>,
    /// Hit only the n-th `POST /calls` request (1-based), counting every call
    /// request that got past the rate limiter, valid or not.
    pub nth: Option<u64>,
    /// Hit only requests that arrive once at least this many calls have been
    /// placed (ambiguous ones included), e.g. to run the account out of funds
    /// after N calls. Counted when a call is decided, before its latency, so that
    /// concurrent requests cannot overshoot N.
    pub after: Option<u64>,
    /// How many times the rule fires; `None` means every time it matches.
    pub times: Option<u32>,
    /// What the server does when the rule fires.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule that hits every call request, every time; narrow it with the
    /// builder methods below.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            to: None,
            nth: None,
            after: None,
            times: None,
            fault,
        }
    }

    /// Hit only requests to this number.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Hit only the n-th call request (1-based).
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    /// Hit only requests that arrive once `n` calls have been placed.
    pub fn after(mut self, n: u64) -> Self {
        self.after = Some(n);
        self
    }

    /// Fire at most `times` times.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// Whether the matchers accept a request; `times` is checked by the caller,
    /// which owns the fire counts.
    pub(crate) fn matches(&self, to: &str, nth: u64, placed_so_far: u64) -> bool {
        self.to.as_deref().is_none_or(|want| want == to)
            && self.nth.is_none_or(|want| want == nth)
            && self.after.is_none_or(|want| placed_so_far >= want)
    }
}

/// What the server does instead of its normal answer to a call request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "status")]
pub enum Fault {
    /// Answer at once with this status and the usual error body (`429` also
    /// carries `Retry-After: 1`). Only the statuses the API documents as "not
    /// placed" (400, 401, 402, 403, 404, 429, 503) leave the call unplaced; any
    /// other (500/502/504, an undocumented 408, 409, 501, 520, a 3xx …) is recorded
    /// as [`Placed::Ambiguous`](crate::Placed::Ambiguous): the real API may have
    /// placed it, and a client that retries would call twice. A 3xx also carries
    /// `Location: /redirected`, so a client that follows redirects shows up in the
    /// record. A number that is not an HTTP status is answered as `500`.
    Status(u16),
    /// Like [`Fault::Status`], but answered after the configured latency, as when
    /// the call failed while ringing.
    StatusAfterLatency(u16),
    /// Never answer; the connection stays open until the client gives up (or the
    /// server stops). Recorded as ambiguous: the client cannot know.
    Hang,
    /// Answer `201` (after the latency) with a body that is not valid JSON.
    /// Recorded as placed.
    Malformed,
    /// Drop the connection without any response. Recorded as ambiguous: the
    /// server received the whole request, so the call may have been placed.
    Close,
    /// Expire the presented token for good and answer `401`, as when a token
    /// runs out in the middle of a run; the client should authenticate again once
    /// and retry.
    ExpireToken,
}

impl Fault {
    /// Whether a call answered with `status` may nevertheless have been placed:
    /// every status but the ones the API documents as "not placed".
    pub(crate) fn is_ambiguous_status(status: u16) -> bool {
        !matches!(status, 400 | 401 | 402 | 403 | 404 | 429 | 503)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_are_combined_with_and() {
        let rule = FaultRule::new(Fault::Hang).to("13214991008").nth(2);
        assert!(rule.matches("13214991008", 2, 0));
        assert!(!rule.matches("13214991008", 3, 0));
        assert!(!rule.matches("13214991009", 2, 0));
    }

    #[test]
    fn a_rule_without_matchers_hits_everything() {
        assert!(FaultRule::new(Fault::Close).matches("911", 77, 5));
    }

    #[test]
    fn the_last_outcome_repeats() {
        let script = DispositionScript {
            to: None,
            outcomes: vec![Outcome::unanswered("NO_ANSWER"), Outcome::answered(30)],
        };
        assert_eq!(script.outcome(1), Some(&Outcome::unanswered("NO_ANSWER")));
        assert_eq!(script.outcome(2), Some(&Outcome::answered(30)));
        assert_eq!(script.outcome(9), Some(&Outcome::answered(30)));
        assert_eq!(script.outcome(u64::MAX), Some(&Outcome::answered(30)));
    }

    #[test]
    fn number_styles() {
        assert_eq!(NumberStyle::Plus.write("3214991000"), "+13214991000");
        assert_eq!(NumberStyle::Plus.write("13125550101"), "+13125550101");
        assert_eq!(NumberStyle::Plus.write("01149894567898"), "+49894567898");
        assert_eq!(NumberStyle::AsDialed.write("13125550101"), "13125550101");
    }

    #[test]
    fn after_counts_placed_calls() {
        let rule = FaultRule::new(Fault::Status(402)).after(5);
        assert!(!rule.matches("1", 9, 4));
        assert!(rule.matches("1", 9, 5));
        assert!(rule.matches("1", 9, 6));
    }
}
