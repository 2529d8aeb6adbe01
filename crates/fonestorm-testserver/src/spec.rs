//! The text forms the binary's flags take: fault specs (`nth=3:503x2`) and
//! durations (`250ms`, `1s`). In the library so that they are unit-tested here and
//! so that test code can write a fault as its spec.
//!
//! A fault spec is `MATCHERS:FAULT`, optionally followed by `xN` (fire N times):
//!
//! - `MATCHERS` is `any`, or one or more of `to=NUMBER`, `nth=N` (the n-th call
//!   request, from 1) and `after=N` (once N calls were placed), joined by `,`;
//! - `FAULT` is a status (`400`–`599`), `late-STATUS` (the status after the
//!   latency), `hang`, `malformed`, `close` or `expire-token`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::{CallbackFault, CallbackRule, DispositionScript, Fault, FaultRule, Outcome};

/// Why a fault spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError {
    spec: String,
    reason: String,
}

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fault `{}`: {}", self.spec, self.reason)
    }
}

impl std::error::Error for FaultSpecError {}

impl FromStr for FaultRule {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_rule(spec).map_err(|reason| FaultSpecError {
            spec: spec.to_owned(),
            reason,
        })
    }
}

fn parse_rule(spec: &str) -> Result<FaultRule, String> {
    let (matchers, fault) = spec
        .split_once(':')
        .ok_or("expected `MATCHERS:FAULT`, e.g. `nth=3:503`")?;
    let (fault, times) = match fault.rsplit_once('x') {
        Some((fault, times)) if !times.is_empty() && times.bytes().all(|b| b.is_ascii_digit()) => {
            let times = times
                .parse()
                .map_err(|_| format!("`x{times}` is too many times"))?;
            (fault, Some(times))
        }
        _ => (fault, None),
    };
    let mut rule = FaultRule::new(parse_fault(fault)?);
    rule.times = times;
    if matchers != "any" {
        for matcher in matchers.split(',') {
            let (key, value) = matcher
                .split_once('=')
                .ok_or_else(|| format!("expected `to=`, `nth=` or `after=`, got `{matcher}`"))?;
            match key {
                "to" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    rule.to = Some(value.to_owned());
                }
                "to" => return Err(format!("`to` must be digits, got `{value}`")),
                "nth" => match value.parse() {
                    Ok(0) => return Err("`nth` counts from 1".to_owned()),
                    Ok(n) => rule.nth = Some(n),
                    Err(_) => return Err(format!("`nth` must be a number, got `{value}`")),
                },
                "after" => {
                    let n = value
                        .parse()
                        .map_err(|_| format!("`after` must be a number, got `{value}`"))?;
                    rule.after = Some(n);
                }
                _ => {
                    return Err(format!(
                        "unknown matcher `{key}`, expected `to`, `nth` or `after`"
                    ));
                }
            }
        }
    }
    Ok(rule)
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    match text {
        "hang" => Ok(Fault::Hang),
        "malformed" => Ok(Fault::Malformed),
        "close" => Ok(Fault::Close),
        "expire-token" => Ok(Fault::ExpireToken),
        _ => match text.strip_prefix("late-") {
            Some(status) => parse_status(status).map(Fault::StatusAfterLatency),
            None => parse_status(text).map(Fault::Status),
        },
    }
}

fn parse_status(text: &str) -> Result<u16, String> {
    match text.parse() {
        Ok(status @ 300..=599) => Ok(status),
        _ => Err(format!(
            "unknown fault `{text}`, expected a status from 300 to 599, `late-STATUS`, \
             `hang`, `malformed`, `close` or `expire-token`"
        )),
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(status) => write!(f, "{status}"),
            Fault::StatusAfterLatency(status) => write!(f, "late-{status}"),
            Fault::Hang => f.write_str("hang"),
            Fault::Malformed => f.write_str("malformed"),
            Fault::Close => f.write_str("close"),
            Fault::ExpireToken => f.write_str("expire-token"),
        }
    }
}

/// Writes the rule as a spec that parses back to it.
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut matchers = Vec::new();
        if let Some(to) = &self.to {
            matchers.push(format!("to={to}"));
        }
        if let Some(nth) = self.nth {
            matchers.push(format!("nth={nth}"));
        }
        if let Some(after) = self.after {
            matchers.push(format!("after={after}"));
        }
        if matchers.is_empty() {
            matchers.push("any".to_owned());
        }
        write!(f, "{}:{}", matchers.join(","), self.fault)?;
        if let Some(times) = self.times {
            write!(f, "x{times}")?;
        }
        Ok(())
    }
}

/// The billable seconds of an `ANSWERED` outcome written without a duration.
pub const DEFAULT_BILLABLE_SECONDS: u64 = 30;

/// The most outcomes one disposition script may list.
const MAX_OUTCOMES: usize = 100;

/// Why a disposition script or callback fault spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    what: &'static str,
    spec: String,
    reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} `{}`: {}", self.what, self.spec, self.reason)
    }
}

impl std::error::Error for SpecError {}

/// Reads `to=NUMBER:OUTCOMES` or `any:OUTCOMES`, OUTCOMES being a `,`-joined list
/// of `DISPOSITION[/DURATION]`, e.g. `to=13125550101:NO_ANSWER,ANSWERED/30s`.
impl FromStr for DispositionScript {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_script(spec).map_err(|reason| SpecError {
            what: "disposition",
            spec: spec.to_owned(),
            reason,
        })
    }
}

fn parse_script(spec: &str) -> Result<DispositionScript, String> {
    let (matcher, outcomes) = spec.split_once(':').ok_or(
        "expected `to=NUMBER:OUTCOMES` or `any:OUTCOMES`, e.g. `any:NO_ANSWER,ANSWERED/30s`",
    )?;
    let to = parse_to_matcher(matcher)?;
    let outcomes = outcomes
        .split(',')
        .map(parse_outcome)
        .collect::<Result<Vec<_>, _>>()?;
    if outcomes.len() > MAX_OUTCOMES {
        return Err(format!("at most {MAX_OUTCOMES} outcomes"));
    }
    Ok(DispositionScript { to, outcomes })
}

/// `any` or `to=DIGITS`.
fn parse_to_matcher(matcher: &str) -> Result<Option<String>, String> {
    if matcher == "any" {
        return Ok(None);
    }
    match matcher.strip_prefix("to=") {
        Some(to) if !to.is_empty() && to.len() <= 32 && to.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(to.to_owned()))
        }
        Some(to) => Err(format!("`to` must be digits, got `{to}`")),
        None => Err(format!("expected `any` or `to=NUMBER`, got `{matcher}`")),
    }
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    let (disposition, billable) = match text.split_once('/') {
        Some((disposition, duration)) => {
            let seconds = parse_duration(duration)?.as_secs();
            (disposition, Some(seconds))
        }
        None => (text, None),
    };
    let known = matches!(
        disposition,
        "ANSWERED" | "NO_ANSWER" | "BUSY" | "CANCEL" | "REJECTED"
    ) || disposition.strip_prefix("FAILED:").is_some_and(|code| {
        (1..=16).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !known {
        return Err(format!(
            "unknown disposition `{disposition}`, expected ANSWERED, NO_ANSWER, BUSY, CANCEL, \
             REJECTED or FAILED:<code>"
        ));
    }
    let default = if disposition == "ANSWERED" {
        DEFAULT_BILLABLE_SECONDS
    } else {
        0
    };
    Ok(Outcome {
        disposition: disposition.to_owned(),
        billable_seconds: billable.unwrap_or(default),
    })
}

/// Writes the script as a spec that parses back to it.
impl fmt::Display for DispositionScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            Some(to) => write!(f, "to={to}:")?,
            None => f.write_str("any:")?,
        }
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|outcome| format!("{}/{}s", outcome.disposition, outcome.billable_seconds))
            .collect();
        f.write_str(&outcomes.join(","))
    }
}

/// Reads `MATCHERS:FAULT[xN]`: MATCHERS `any` or `,`-joined `to=NUMBER` and
/// `nth=N` (the n-th placed call); FAULT `lose-begin`, `lose-end`, `lose-both`
/// or `duplicate-end`.
impl FromStr for CallbackRule {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_callback_rule(spec).map_err(|reason| SpecError {
            what: "callback fault",
            spec: spec.to_owned(),
            reason,
        })
    }
}

fn parse_callback_rule(spec: &str) -> Result<CallbackRule, String> {
    let (matchers, fault) = spec
        .split_once(':')
        .ok_or("expected `MATCHERS:FAULT`, e.g. `nth=2:lose-end`")?;
    let (fault, times) = match fault.rsplit_once('x') {
        Some((fault, times)) if !times.is_empty() && times.bytes().all(|b| b.is_ascii_digit()) => {
            let times = times
                .parse()
                .map_err(|_| format!("`x{times}` is too many times"))?;
            (fault, Some(times))
        }
        _ => (fault, None),
    };
    let fault = match fault {
        "lose-begin" => CallbackFault::LoseBegin,
        "lose-end" => CallbackFault::LoseEnd,
        "lose-both" => CallbackFault::LoseBoth,
        "duplicate-end" => CallbackFault::DuplicateEnd,
        _ => {
            return Err(format!(
                "unknown callback fault `{fault}`, expected `lose-begin`, `lose-end`, \
                 `lose-both` or `duplicate-end`"
            ));
        }
    };
    let mut rule = CallbackRule::new(fault);
    rule.times = times;
    if matchers != "any" {
        for matcher in matchers.split(',') {
            match matcher.split_once('=') {
                Some(("to", _)) => rule.to = parse_to_matcher(matcher)?,
                Some(("nth", value)) => match value.parse() {
                    Ok(0) => return Err("`nth` counts from 1".to_owned()),
                    Ok(n) => rule.nth = Some(n),
                    Err(_) => return Err(format!("`nth` must be a number, got `{value}`")),
                },
                _ => return Err(format!("expected `to=` or `nth=`, got `{matcher}`")),
            }
        }
    }
    Ok(rule)
}

impl fmt::Display for CallbackFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallbackFault::LoseBegin => "lose-begin",
            CallbackFault::LoseEnd => "lose-end",
            CallbackFault::LoseBoth => "lose-both",
            CallbackFault::DuplicateEnd => "duplicate-end",
        })
    }
}

/// Writes the rule as a spec that parses back to it.
impl fmt::Display for CallbackRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut matchers = Vec::new();
        if let Some(to) = &self.to {
            matchers.push(format!("to={to}"));
        }
        if let Some(nth) = self.nth {
            matchers.push(format!("nth={nth}"));
        }
        if matchers.is_empty() {
            matchers.push("any".to_owned());
        }
        write!(f, "{}:{}", matchers.join(","), self.fault)?;
        if let Some(times) = self.times {
            write!(f, "x{times}")?;
        }
        Ok(())
    }
}

/// Reads a duration such as `250ms`, `1s`, `1.5s` or `2m`; `0` needs no unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "" => return Err(format!("`{text}` needs a unit: `ms`, `s` or `m`")),
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`, expected `ms`, `s` or `m`"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `250ms` or `1s`"))?;
    if unit == "ms" && number.fract() == 0.0 && number < u64::MAX as f64 {
        return Ok(Duration::from_millis(number as u64));
    }
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(spec: &str) -> FaultRule {
        spec.parse().unwrap()
    }

    #[test]
    fn specs_from_the_help() {
        assert_eq!(
            rule("to=13214991008:500"),
            FaultRule::new(Fault::Status(500)).to("13214991008")
        );
        assert_eq!(
            rule("nth=3:503x2"),
            FaultRule::new(Fault::Status(503)).nth(3).times(2)
        );
        assert_eq!(
            rule("after=5:402"),
            FaultRule::new(Fault::Status(402)).after(5)
        );
        assert_eq!(
            rule("to=13214991008:hang"),
            FaultRule::new(Fault::Hang).to("13214991008")
        );
        assert_eq!(
            rule("nth=1:malformed"),
            FaultRule::new(Fault::Malformed).nth(1)
        );
        assert_eq!(rule("nth=2:close"), FaultRule::new(Fault::Close).nth(2));
        assert_eq!(
            rule("nth=4:expire-token"),
            FaultRule::new(Fault::ExpireToken).nth(4)
        );
    }

    #[test]
    fn other_forms() {
        assert_eq!(rule("any:429"), FaultRule::new(Fault::Status(429)));
        assert_eq!(
            rule("any:late-504x1"),
            FaultRule::new(Fault::StatusAfterLatency(504)).times(1)
        );
        assert_eq!(
            rule("to=911,nth=2,after=1:expire-tokenx3"),
            FaultRule::new(Fault::ExpireToken)
                .to("911")
                .nth(2)
                .after(1)
                .times(3)
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "any:503",
            "to=13214991008:500",
            "nth=3:503x2",
            "to=1,nth=2,after=3:late-502x4",
            "after=5:expire-token",
            "nth=2:close",
            "any:hangx1",
            "any:malformed",
        ] {
            assert_eq!(rule(spec).to_string(), spec);
        }
    }

    #[test]
    fn bad_specs() {
        for (spec, reason) in [
            ("503", "expected `MATCHERS:FAULT`"),
            ("nth=0:503", "counts from 1"),
            ("nth=x:503", "`nth` must be a number"),
            ("to=+1:503", "`to` must be digits"),
            ("when=1:503", "unknown matcher `when`"),
            ("nth:503", "expected `to=`, `nth=` or `after=`"),
            ("any:200", "unknown fault `200`"),
            ("any:boom", "unknown fault `boom`"),
            ("any:late-hang", "unknown fault `hang`"),
            ("any:503x99999999999", "too many times"),
        ] {
            let err = spec.parse::<FaultRule>().unwrap_err().to_string();
            assert!(err.contains(reason), "{spec}: {err}");
            assert!(err.starts_with(&format!("invalid fault `{spec}`")), "{err}");
        }
    }

    #[test]
    fn disposition_scripts() {
        let script: DispositionScript = "to=13125550101:NO_ANSWER,ANSWERED/30s".parse().unwrap();
        assert_eq!(
            script,
            DispositionScript {
                to: Some("13125550101".to_owned()),
                outcomes: vec![Outcome::unanswered("NO_ANSWER"), Outcome::answered(30)],
            }
        );
        let script: DispositionScript = "any:FAILED:503,BUSY/2s,ANSWERED".parse().unwrap();
        assert_eq!(script.to, None);
        assert_eq!(
            script.outcomes,
            [
                Outcome::unanswered("FAILED:503"),
                Outcome {
                    disposition: "BUSY".to_owned(),
                    billable_seconds: 2
                },
                Outcome::answered(DEFAULT_BILLABLE_SECONDS),
            ]
        );
        assert_eq!(
            script.to_string().parse::<DispositionScript>().unwrap(),
            script
        );
    }

    #[test]
    fn bad_disposition_scripts() {
        let too_many = format!("any:{}", vec!["BUSY"; 101].join(","));
        for (spec, reason) in [
            ("NO_ANSWER", "expected `to=NUMBER:OUTCOMES`"),
            ("to=+1:BUSY", "`to` must be digits"),
            ("nth=1:BUSY", "expected `any` or `to=NUMBER`"),
            ("any:answered", "unknown disposition `answered`"),
            ("any:", "unknown disposition ``"),
            ("any:BUSY,,ANSWERED", "unknown disposition ``"),
            ("any:FAILED:", "unknown disposition `FAILED:`"),
            ("any:FAILED:a b", "unknown disposition"),
            ("any:ANSWERED/30", "needs a unit"),
            (too_many.as_str(), "at most 100 outcomes"),
        ] {
            let err = spec.parse::<DispositionScript>().unwrap_err().to_string();
            assert!(err.contains(reason), "{spec}: {err}");
            assert!(err.starts_with("invalid disposition `"), "{err}");
        }
    }

    #[test]
    fn callback_rules() {
        assert_eq!(
            "nth=2:lose-end".parse::<CallbackRule>().unwrap(),
            CallbackRule::new(CallbackFault::LoseEnd).nth(2)
        );
        assert_eq!(
            "to=13125550101:duplicate-endx1"
                .parse::<CallbackRule>()
                .unwrap(),
            CallbackRule::new(CallbackFault::DuplicateEnd)
                .to("13125550101")
                .times(1)
        );
        for spec in [
            "any:lose-both",
            "to=1,nth=3:lose-beginx2",
            "any:duplicate-end",
        ] {
            assert_eq!(spec.parse::<CallbackRule>().unwrap().to_string(), spec);
        }
        for spec in [
            "lose-end",
            "nth=0:lose-end",
            "any:drop",
            "after=1:lose-end",
            "to=x:lose-end",
        ] {
            let err = spec.parse::<CallbackRule>().unwrap_err().to_string();
            assert!(err.starts_with("invalid callback fault"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        for bad in ["", "1", "s", "1h", "-1s", "1.2.3s", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
