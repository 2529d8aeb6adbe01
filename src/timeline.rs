//! The timeline of a page: every round of its ladder, planned and rendered
//! when the page starts.
//!
//! A page must not find out in round 4, at 3 a.m., that its message fails to
//! render for the manager it escalates to. So, as for a broadcast, every call
//! the ladder would place if nobody acknowledged is decided and rendered up
//! front, each round at the time it is due (the page's start plus the waits
//! before it), so quiet hours and `recipient.local_time` apply at the hour
//! the round is due. A problem in any round means no timeline at all.
//! Retries are not in the timeline: they depend on how calls end.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::context;

use crate::diag::Diagnostic;
use crate::limits;
use crate::plan::{self, Decision, Entry, MAX_LISTED_ERRORS, RunInput};
use crate::playbook::Playbook;
use crate::playbook::escalation::Escalation;
use crate::rules::CompiledRules;

/// Letters and digits of short codes: no `0`/`O`, `1`/`I`/`L`, `2`/`Z`,
/// `5`/`S`, `8`/`B`, which people misread or mistype on a phone.
const CODE_ALPHABET: &[u8] = b"ACDEFGHJKMNPQRTUVWXY34679";

/// Length of a page's short code.
pub const CODE_LEN: usize = 3;

/// One round of the ladder, planned.
#[derive(Clone, Debug)]
pub struct Round {
    /// Index of the step in `escalation.steps`.
    pub step: usize,
    /// The round within its step, from 1.
    pub round: u32,
    /// When the round is due, counted from the page's start (if nobody acknowledges).
    pub offset: Duration,
    /// The step's people (among the selected ones), in playbook order, with
    /// what the rules decided for each at the round's time.
    pub entries: Vec<Entry>,
}

impl Round {
    /// How many calls the round places.
    pub fn calls(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.decision, Decision::Call(_)))
            .count()
    }
}

/// The whole ladder of a page as it would unfold if nobody acknowledged.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The page's short code (`escalation.code`).
    pub code: String,
    /// Every round of every step, in order.
    pub rounds: Vec<Round>,
    /// When the page ends exhausted if nobody acknowledges, from its start.
    pub end: Duration,
}

impl Timeline {
    /// How many calls the whole timeline places (retries not included).
    pub fn calls(&self) -> usize {
        self.rounds.iter().map(Round::calls).sum()
    }

    /// Why a live run of this page would be refused under `limit`
    /// (`--max-calls`, else `limits.max_calls`), if it would.
    pub fn over_limit(&self, limit: Option<u64>) -> Option<String> {
        let calls = self.calls();
        let max = limit?;
        (calls as u64 > max).then(|| {
            format!(
                "the page's ladder holds {calls} calls, more than the limit of {max} (limits.max_calls or --max-calls)"
            )
        })
    }
}

/// A fresh short code: three letters and digits, none of them in `taken`
/// (the codes of pages still going), so an SMS `1 K7F` names one page.
pub fn new_code(taken: &[String]) -> String {
    let free = |code: &str| !taken.iter().any(|t| t.eq_ignore_ascii_case(code));
    let pick = |n: usize| char::from(CODE_ALPHABET[n % CODE_ALPHABET.len()]);
    for _ in 0..1000 {
        let code: String = (0..CODE_LEN)
            .map(|_| pick(fastrand::usize(..CODE_ALPHABET.len())))
            .collect();
        if free(&code) {
            return code;
        }
    }
    // Nearly every code is taken: look at each in turn (bounded, 25^3).
    let n = CODE_ALPHABET.len();
    (0..n * n * n)
        .map(|i| {
            [pick(i / (n * n)), pick(i / n), pick(i)]
                .iter()
                .collect::<String>()
        })
        .find(|c| free(c))
        .unwrap_or_else(|| "AAA".to_string())
}

/// `+0m`, `+5m`, `+1h30m`, `+45s`: an offset from the page's start.
pub fn offset_label(offset: Duration) -> String {
    format!("+{}", crate::playbook::escalation::compact_duration(offset))
}

/// Plans every round of `playbook`'s ladder for `run`, the page's short code being `code`.
///
/// # Errors
/// When the playbook has no ladder, a selected name or tag is unknown, the
/// timeline is too large, no step calls anyone selected, or a rule or
/// template fails for anyone in any round (up to [`MAX_LISTED_ERRORS`]).
pub fn plan(playbook: &Playbook, run: &RunInput, code: &str) -> Result<Timeline, Vec<Diagnostic>> {
    let Some(escalation) = &playbook.escalation else {
        return Err(vec![Diagnostic::error(
            None,
            format!("`{}` has no `escalation`: it is not a page", playbook.name),
        )]);
    };
    let selected = plan::select(playbook, &run.selection)?;
    let members = members(playbook, escalation, &selected)?;
    let rules = CompiledRules::new(&playbook.rules, &playbook.templates).map_err(|d| vec![d])?;
    let hint = playbook.ack.hint(code, &playbook.caller_id);
    let base = plan::base_context(playbook, run);
    let mut rounds = Vec::with_capacity(escalation.rounds());
    let mut errors = Vec::new();
    let mut error_count = 0usize;
    let mut offset = Duration::ZERO;
    for (s, step) in escalation.steps.iter().enumerate() {
        for round in 1..=step.repeat {
            let at = run.now + chrono::Duration::from_std(offset).unwrap_or_default();
            let ctx = context! {
                now => at.to_rfc3339_opts(SecondsFormat::Secs, true),
                escalation => context! { step => &step.name, round => round, code => code },
                ack => context! { hint => &hint },
                ..base.clone()
            };
            let mut entries = Vec::with_capacity(members[s].len());
            let mut called: HashMap<&str, usize> = HashMap::new();
            for &index in &members[s] {
                let recipient = &playbook.recipients[index];
                let ctx =
                    context! { recipient => plan::recipient_at(recipient, at), ..ctx.clone() };
                match plan::decide(playbook, &rules, recipient, &ctx) {
                    Ok((rule, mut decision)) => {
                        if let Decision::Call(call) = &decision {
                            if let Some(&first) = called.get(&*call.to) {
                                let name = &playbook.recipients[first].name;
                                decision = Decision::Skip(format!("duplicate of {name}"));
                            } else {
                                called.insert(recipient.target.dial(), index);
                            }
                        }
                        entries.push(Entry {
                            recipient: index,
                            to: recipient.target.shared_dial(),
                            rule,
                            decision,
                        });
                    }
                    Err(mut d) => {
                        error_count += 1;
                        d.message = format!("step `{}`, round {round}: {}", step.name, d.message);
                        if errors.len() < MAX_LISTED_ERRORS {
                            errors.push(d);
                        }
                    }
                }
            }
            let planned = Round {
                step: s,
                round,
                offset,
                entries,
            };
            // A round that calls nobody does not wait: the ladder moves on at once.
            if planned.calls() > 0 {
                offset += step.every;
            }
            rounds.push(planned);
        }
    }
    if error_count > 0 {
        if error_count > errors.len() {
            errors.push(Diagnostic::error(
                None,
                format!(
                    "{} more calls of the ladder have errors like these",
                    error_count - errors.len()
                ),
            ));
        }
        return Err(errors);
    }
    Ok(Timeline {
        code: code.to_string(),
        rounds,
        end: offset,
    })
}

/// The selected people of each step, checked against the timeline's bounds.
fn members(
    playbook: &Playbook,
    escalation: &Escalation,
    selected: &[usize],
) -> Result<Vec<Vec<usize>>, Vec<Diagnostic>> {
    let members: Vec<Vec<usize>> = escalation
        .steps
        .iter()
        .map(|step| {
            selected
                .iter()
                .copied()
                .filter(|&i| step.selects(&playbook.recipients[i]))
                .collect()
        })
        .collect();
    let entries: usize = members
        .iter()
        .zip(&escalation.steps)
        .map(|(m, s)| m.len().saturating_mul(s.repeat as usize))
        .fold(0usize, usize::saturating_add);
    if entries > limits::MAX_TIMELINE_ENTRIES {
        return Err(vec![Diagnostic::error(
            None,
            format!(
                "the page's ladder would call people {entries} times, more than the limit of {}: fewer steps, rounds or recipients (nothing was called)",
                limits::MAX_TIMELINE_ENTRIES
            ),
        )]);
    }
    if entries == 0 {
        return Err(vec![Diagnostic::error(
            None,
            "no step of the ladder calls any selected recipient (--tag, --recipient): nothing was called",
        )]);
    }
    Ok(members)
}

/// The time a round at `offset` is due, for a page started at `start`.
pub fn due(start: DateTime<Utc>, offset: Duration) -> DateTime<Utc> {
    start + chrono::Duration::from_std(offset).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_avoid_taken_ones() {
        let taken: Vec<String> = Vec::new();
        for _ in 0..200 {
            let code = new_code(&taken);
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
        // With all but one code taken, the one left is found.
        let all: Vec<String> = CODE_ALPHABET
            .iter()
            .flat_map(|&a| {
                CODE_ALPHABET.iter().flat_map(move |&b| {
                    CODE_ALPHABET
                        .iter()
                        .map(move |&c| String::from_utf8(vec![a, b, c]).unwrap_or_default())
                })
            })
            .filter(|c| c != "K7F")
            .collect();
        assert_eq!(new_code(&all), "K7F");
    }

    #[test]
    fn offsets_are_labelled_like_durations() {
        assert_eq!(offset_label(Duration::ZERO), "+0m");
        assert_eq!(offset_label(Duration::from_secs(300)), "+5m");
        assert_eq!(offset_label(Duration::from_secs(5430)), "+1h30m30s");
    }
}
