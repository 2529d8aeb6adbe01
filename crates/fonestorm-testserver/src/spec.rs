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

use crate::config::{Fault, FaultRule};

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
