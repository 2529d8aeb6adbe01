//! `escalation:` and `ack:`, checked: what turns a broadcast into a page.
//!
//! A page calls the people of its first step, waits for an acknowledgement,
//! calls again and moves up its ladder until someone takes it. This module
//! holds the checked form of those keys and the checks `validate` makes on
//! them (names unique, tags and recipients that exist, at least one way to
//! acknowledge, durations and counts in range, known dispositions), so that
//! a page can never start with a ladder that calls nobody or that nobody
//! can stop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::Recipient;
use super::check::parse_duration;
use super::raw::{RawAck, RawEscalation, RawRetry, RawStep};
use crate::limits;
use crate::suggest;

/// The ladder of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Calling one person again inside a round, after some endings.
    pub retry: Option<Retry>,
}

impl Escalation {
    /// The number of rounds of the whole ladder.
    pub fn rounds(&self) -> usize {
        self.steps.iter().map(|s| s.repeat as usize).sum()
    }
}

/// One step of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique within the ladder; templates see it as `escalation.step`.
    pub name: String,
    /// Who this step calls.
    pub who: Who,
    /// Rounds in this step, at least 1.
    pub repeat: u32,
    /// The wait after each round for an acknowledgement.
    pub every: Duration,
}

impl Step {
    /// Whether this step calls `recipient` (before `--tag`/`--recipient`).
    pub fn selects(&self, recipient: &Recipient) -> bool {
        match &self.who {
            Who::Everyone => true,
            Who::Tags(tags) => recipient.tags.iter().any(|t| tags.contains(t)),
            Who::Recipients(names) => names.contains(&recipient.name),
        }
    }
}

/// Who a step calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Every selected recipient.
    Everyone,
    /// Recipients with any of these tags.
    Tags(Vec<String>),
    /// These recipients, by name.
    Recipients(Vec<String>),
}

/// `escalation.retry`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The endings that trigger a retry.
    pub on: Vec<DispositionMatch>,
    /// The wait from the ending to the retry.
    pub after: Duration,
    /// Extra calls per person per round.
    pub max: u32,
}

/// A disposition a playbook names (`retry.on`); `FAILED` alone matches
/// every `FAILED:<code>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispositionMatch {
    /// `ANSWERED`.
    Answered,
    /// `NO_ANSWER`.
    NoAnswer,
    /// `BUSY`.
    Busy,
    /// `CANCEL`.
    Cancel,
    /// `REJECTED`.
    Rejected,
    /// `NO_CALLBACK`: no `END` callback within `ack.outcome_timeout`.
    NoCallback,
    /// `FAILED` (any code, `None`) or `FAILED:<code>` (that code).
    Failed(Option<String>),
}

impl DispositionMatch {
    /// Reads a disposition as written in a playbook or a callback.
    ///
    /// # Errors
    /// When it is not a known word: the message suggests the nearest one.
    pub fn parse(text: &str) -> Result<DispositionMatch, String> {
        const WORDS: [&str; 7] = [
            "ANSWERED",
            "NO_ANSWER",
            "BUSY",
            "CANCEL",
            "REJECTED",
            "NO_CALLBACK",
            "FAILED",
        ];
        Ok(match text {
            "ANSWERED" => DispositionMatch::Answered,
            "NO_ANSWER" => DispositionMatch::NoAnswer,
            "BUSY" => DispositionMatch::Busy,
            "CANCEL" => DispositionMatch::Cancel,
            "REJECTED" => DispositionMatch::Rejected,
            "NO_CALLBACK" => DispositionMatch::NoCallback,
            "FAILED" => DispositionMatch::Failed(None),
            other => match other.strip_prefix("FAILED:") {
                Some(code) if !code.is_empty() => DispositionMatch::Failed(Some(code.to_string())),
                _ => {
                    let hint = suggest::closest(other, WORDS)
                        .map(|s| format!(", did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(format!("unknown disposition `{other}`{hint}"));
                }
            },
        })
    }

    /// Whether a call that ended with `disposition` (as FoneStorm spells it) matches.
    pub fn matches(&self, disposition: &str) -> bool {
        match self {
            DispositionMatch::Failed(None) => {
                disposition == "FAILED" || disposition.starts_with("FAILED:")
            }
            other => DispositionMatch::parse(disposition).is_ok_and(|d| &d == other),
        }
    }
}

/// `ack:`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Texts that acknowledge, as written (compared trimmed and case-insensitive).
    pub sms: Vec<String>,
    /// A call from a recipient's number to the caller id acknowledges.
    pub call_back: bool,
    /// An answered call of at least `answered_min` acknowledges.
    pub answered: bool,
    /// See `answered`.
    pub answered_min: Duration,
    /// A placed call with no `END` callback by then is `NO_CALLBACK`.
    pub outcome_timeout: Duration,
}

impl Default for Ack {
    fn default() -> Self {
        Ack {
            sms: vec!["1".to_string(), "ack".to_string(), "ok".to_string()],
            call_back: true,
            answered: false,
            answered_min: Duration::from_secs(20),
            outcome_timeout: Duration::from_secs(300),
        }
    }
}

impl Ack {
    /// Whether any way to acknowledge is on.
    pub fn any_way(&self) -> bool {
        !self.sms.is_empty() || self.call_back || self.answered
    }

    /// The sentence templates see as `ack.hint`: how to acknowledge this
    /// page (short code `code`), naming only the ways that are on, with the
    /// caller id spelt out digit by digit so text-to-speech reads it well.
    ///
    /// `To acknowledge, text 1 K7F to 3 2 1, 5 5 5, 1 1 1 1, or call this number back.`
    pub fn hint(&self, code: &str, caller_id: &str) -> String {
        let mut ways = Vec::new();
        if let Some(word) = self.sms.first() {
            ways.push(format!(
                "text {word} {code} to {}",
                spoken_number(caller_id)
            ));
        }
        if self.call_back {
            ways.push("call this number back".to_string());
        }
        if self.answered {
            ways.push(format!(
                "stay on the line for at least {}",
                spoken_duration(self.answered_min)
            ));
        }
        let joined = match ways.as_slice() {
            [] => return String::new(),
            [one] => one.clone(),
            [init @ .., last] => format!("{}, or {last}", init.join(", ")),
        };
        format!("To acknowledge, {joined}.")
    }
}

/// `3 2 1, 5 5 5, 1 1 1 1` for `3215551111`: digits apart, in the groups
/// people say a North American number in.
pub fn spoken_number(digits: &str) -> String {
    let digits: Vec<char> = digits.chars().filter(char::is_ascii_digit).collect();
    let spaced = |d: &[char]| d.iter().map(char::to_string).collect::<Vec<_>>().join(" ");
    if digits.len() == 10 {
        format!(
            "{}, {}, {}",
            spaced(&digits[..3]),
            spaced(&digits[3..6]),
            spaced(&digits[6..])
        )
    } else {
        spaced(&digits)
    }
}

/// `0m`, `45s`, `5m`, `1h30m`, `20d`: a duration as playbooks write it.
pub fn compact_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0m".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// `20 seconds`, `1 minute`, `90 seconds`.
fn spoken_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A problem found in `escalation` or `ack`: the JSON pointer of the node and the message.
pub(super) type Problem = (String, String);

/// Checks `escalation` and `ack` against the playbook's `recipients`.
///
/// Returns the checked ladder (when there is one and it is sound) and the
/// `ack` settings; every problem is pushed to `problems`.
pub(super) fn check(
    escalation: Option<RawEscalation>,
    ack: Option<RawAck>,
    recipients: &[Arc<Recipient>],
    problems: &mut Vec<Problem>,
) -> (Option<Escalation>, Ack) {
    let has_ack_key = ack.is_some();
    let ack = check_ack(ack.unwrap_or_default(), problems);
    let Some(raw) = escalation else {
        return (None, ack);
    };
    if !ack.any_way() {
        let pointer = if has_ack_key { "/ack" } else { "/escalation" };
        problems.push((
            pointer.to_string(),
            "a page needs a way to acknowledge it: set `ack.sms` words, `ack.call_back: true` or `ack.answered: true`".to_string(),
        ));
    }
    let steps = check_steps(raw.steps, recipients, problems);
    let retry = raw.retry.and_then(|r| check_retry(r, problems));
    let Some(steps) = steps else {
        return (None, ack);
    };
    let total: Duration = steps.iter().map(|s| s.every * s.repeat).sum();
    if total > limits::MAX_LADDER {
        problems.push((
            "/escalation/steps".to_string(),
            format!(
                "the ladder waits {} in all, more than the limit of 7d: fewer rounds or shorter waits",
                compact_duration(total)
            ),
        ));
        return (None, ack);
    }
    (Some(Escalation { steps, retry }), ack)
}

/// A duration at `pointer`, in `range`, or a problem saying what is allowed.
fn duration_in(
    text: &str,
    pointer: &str,
    range: std::ops::RangeInclusive<Duration>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<Duration> {
    match parse_duration(text) {
        Ok(d) if range.contains(&d) => Some(d),
        Ok(_) => {
            problems.push((
                pointer.to_string(),
                format!("{text:?} is out of range: {what}"),
            ));
            None
        }
        Err(m) => {
            problems.push((pointer.to_string(), m));
            None
        }
    }
}

fn check_ack(raw: RawAck, problems: &mut Vec<Problem>) -> Ack {
    let defaults = Ack::default();
    let mut seen = HashSet::new();
    let sms = match raw.sms {
        Some(words) => {
            for (i, w) in words.iter().enumerate() {
                if !seen.insert(w.to_lowercase()) {
                    problems.push((
                        format!("/ack/sms/{i}"),
                        format!("the word `{w}` is listed twice"),
                    ));
                }
            }
            words
        }
        None => defaults.sms.clone(),
    };
    let answered_min = raw.answered_min.and_then(|t| {
        duration_in(
            &t,
            "/ack/answered_min",
            limits::MIN_ANSWERED_MIN..=limits::MAX_ANSWERED_MIN,
            "`answered_min` is from 1s to 10m",
            problems,
        )
    });
    let outcome_timeout = raw.outcome_timeout.and_then(|t| {
        duration_in(
            &t,
            "/ack/outcome_timeout",
            limits::MIN_OUTCOME_TIMEOUT..=limits::MAX_OUTCOME_TIMEOUT,
            "`outcome_timeout` is from 10s to 1h",
            problems,
        )
    });
    Ack {
        sms,
        call_back: raw.call_back.unwrap_or(defaults.call_back),
        answered: raw.answered.unwrap_or(defaults.answered),
        answered_min: answered_min.unwrap_or(defaults.answered_min),
        outcome_timeout: outcome_timeout.unwrap_or(defaults.outcome_timeout),
    }
}

fn check_steps(
    raw: Vec<RawStep>,
    recipients: &[Arc<Recipient>],
    problems: &mut Vec<Problem>,
) -> Option<Vec<Step>> {
    let before = problems.len();
    let known_tags: HashSet<&str> = recipients
        .iter()
        .flat_map(|r| r.tags.iter().map(String::as_str))
        .collect();
    let names: HashSet<&str> = recipients.iter().map(|r| r.name.as_str()).collect();
    let mut step_names: HashMap<String, usize> = HashMap::new();
    let mut steps = Vec::with_capacity(raw.len());
    for (i, step) in raw.into_iter().enumerate() {
        let base = format!("/escalation/steps/{i}");
        if let Some(first) = step_names.insert(step.name.clone(), i) {
            step_names.insert(step.name.clone(), first);
            problems.push((
                format!("{base}/name"),
                format!(
                    "step name `{}` is already used by `escalation.steps[{first}]`",
                    step.name
                ),
            ));
        }
        let named_problems = problems.len();
        let who = match (step.tags, step.recipients) {
            (Some(_), Some(_)) => {
                problems.push((
                    base.clone(),
                    "a step names `tags` or `recipients`, not both".to_string(),
                ));
                continue;
            }
            (Some(tags), None) => {
                for (t, tag) in tags.iter().enumerate() {
                    if !known_tags.contains(tag.as_str()) {
                        let hint = suggest::closest(tag, known_tags.iter().copied())
                            .map(|s| format!(", did you mean `{s}`?"))
                            .unwrap_or_default();
                        problems.push((
                            format!("{base}/tags/{t}"),
                            format!("no recipient has the tag `{tag}`{hint}"),
                        ));
                    }
                }
                Who::Tags(tags)
            }
            (None, Some(list)) => {
                for (n, name) in list.iter().enumerate() {
                    if !names.contains(name.as_str()) {
                        let hint = suggest::closest(name, names.iter().copied())
                            .map(|s| format!(", did you mean `{s}`?"))
                            .unwrap_or_default();
                        problems.push((
                            format!("{base}/recipients/{n}"),
                            format!("no recipient is named `{name}`{hint}"),
                        ));
                    }
                }
                Who::Recipients(list)
            }
            (None, None) => Who::Everyone,
        };
        let every = match step.every {
            Some(t) => duration_in(
                &t,
                &format!("{base}/every"),
                limits::MIN_EVERY..=limits::MAX_EVERY,
                "a step waits from 1s to 24h after each round",
                problems,
            ),
            None => Some(Duration::from_secs(300)),
        };
        let step = Step {
            name: step.name,
            who,
            repeat: step.repeat.unwrap_or(1),
            every: every.unwrap_or_default(),
        };
        if problems.len() == named_problems
            && !recipients.is_empty()
            && !recipients.iter().any(|r| step.selects(r))
        {
            problems.push((
                base.clone(),
                format!("step `{}` selects no recipient", step.name),
            ));
        }
        steps.push(step);
    }
    (problems.len() == before).then_some(steps)
}

fn check_retry(raw: RawRetry, problems: &mut Vec<Problem>) -> Option<Retry> {
    let mut on = Vec::with_capacity(raw.on.len());
    let mut ok = true;
    for (i, word) in raw.on.iter().enumerate() {
        match DispositionMatch::parse(word) {
            Ok(d) => on.push(d),
            Err(m) => {
                ok = false;
                problems.push((format!("/escalation/retry/on/{i}"), m));
            }
        }
    }
    let after = match raw.after {
        Some(t) => duration_in(
            &t,
            "/escalation/retry/after",
            limits::MIN_RETRY_AFTER..=limits::MAX_RETRY_AFTER,
            "a retry waits from 1s to 1h",
            problems,
        )?,
        None => Duration::from_secs(60),
    };
    ok.then_some(Retry {
        on,
        after,
        max: raw.max.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_only_the_ways_that_are_on() {
        let ack = Ack::default();
        assert_eq!(
            ack.hint("K7F", "3215551111"),
            "To acknowledge, text 1 K7F to 3 2 1, 5 5 5, 1 1 1 1, or call this number back."
        );
        let call_only = Ack {
            sms: vec![],
            ..Ack::default()
        };
        assert_eq!(
            call_only.hint("K7F", "3215551111"),
            "To acknowledge, call this number back."
        );
        let all = Ack {
            answered: true,
            ..Ack::default()
        };
        assert_eq!(
            all.hint("K7F", "3215551111"),
            "To acknowledge, text 1 K7F to 3 2 1, 5 5 5, 1 1 1 1, call this number back, or stay on the line for at least 20 seconds."
        );
        let none = Ack {
            sms: vec![],
            call_back: false,
            ..Ack::default()
        };
        assert_eq!(none.hint("K7F", "3215551111"), "");
    }

    #[test]
    fn dispositions_parse_and_match() {
        assert_eq!(DispositionMatch::parse("BUSY"), Ok(DispositionMatch::Busy));
        assert!(DispositionMatch::Failed(None).matches("FAILED:486"));
        assert!(DispositionMatch::Failed(None).matches("FAILED"));
        assert!(!DispositionMatch::Failed(Some("486".into())).matches("FAILED:503"));
        assert!(DispositionMatch::Failed(Some("486".into())).matches("FAILED:486"));
        assert!(DispositionMatch::NoAnswer.matches("NO_ANSWER"));
        assert!(!DispositionMatch::NoAnswer.matches("BUSY"));
        assert_eq!(
            DispositionMatch::parse("NO_ANSWR").unwrap_err(),
            "unknown disposition `NO_ANSWR`, did you mean `NO_ANSWER`?"
        );
        assert!(DispositionMatch::parse("FAILED:").is_err());
    }

    #[test]
    fn spoken_numbers_and_durations() {
        assert_eq!(spoken_number("3214991000"), "3 2 1, 4 9 9, 1 0 0 0");
        assert_eq!(spoken_number("12"), "1 2");
        assert_eq!(spoken_duration(Duration::from_secs(20)), "20 seconds");
        assert_eq!(spoken_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(spoken_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(compact_duration(Duration::ZERO), "0m");
        assert_eq!(compact_duration(Duration::from_secs(45)), "45s");
        assert_eq!(compact_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(compact_duration(Duration::from_secs(20 * 86_400)), "20d");
    }
}
