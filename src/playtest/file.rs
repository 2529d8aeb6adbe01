//! Reading a test file: YAML → the test file schema → references checked
//! against its playbook → a checked [`TestFile`].
//!
//! As for playbooks, every problem is reported in one pass, each at the
//! file, line and column it comes from; a test file whose playbook is
//! missing or invalid, or whose cases name a recipient, step or round the
//! playbook does not have, is invalid as a whole (exit 2), never a silent pass.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Sources};
use crate::playbook::yaml::{self, Positions};
use crate::playbook::{self, Playbook, display_path};

/// Largest test file read: far beyond a thousand cases with their input.
pub const MAX_TEST_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Most bytes of `input_file`s one test file reads, all cases together
/// (a file named by several cases is read once): a thousand cases naming
/// a large file each must not fill the memory.
pub const MAX_INPUT_FILE_BYTES: u64 = playbook::MAX_INCLUDE_BYTES;

/// A test file that passed every check, with its playbook loaded.
#[derive(Debug)]
pub struct TestFile {
    /// The path it was read from, as given or found.
    pub path: PathBuf,
    /// The path as diagnostics and the output show it.
    pub display: Arc<str>,
    /// Its text, as read (for `--update`).
    pub text: Arc<str>,
    /// The playbook under test.
    pub playbook: Playbook,
    /// Warnings found while loading the playbook.
    pub warnings: Vec<Diagnostic>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One test case, checked.
#[derive(Debug, Clone)]
pub struct Case {
    /// `name`, unique within the file.
    pub name: String,
    /// The run's clock.
    pub now: DateTime<Utc>,
    /// `vars`, merged over the playbook's at run time.
    pub vars: Map<String, Value>,
    /// `input` or the document of `input_file`.
    pub input: Option<Value>,
    /// `tags`: the selection, as `--tag`.
    pub tags: Vec<String>,
    /// `history`: recipient and how long ago they were called.
    pub history: Vec<(String, Duration)>,
    /// `simulate`, in file order.
    pub simulate: Vec<Event>,
    /// `expect`.
    pub expect: Expect,
    /// Where the `expect` key of the case is (for `--update`).
    pub expect_at: yaml::Pos,
}

/// One simulated event on a page's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, from the page's start.
    pub at: Duration,
    /// What happens.
    pub kind: EventKind,
}

/// What happens at an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A call ended (FoneStorm's `END` callback).
    Disposition {
        /// Whose call.
        recipient: String,
        /// Its step, if named.
        step: Option<String>,
        /// Its round, if named.
        round: Option<u32>,
        /// The disposition, as FoneStorm spells it.
        value: String,
    },
    /// Someone acknowledged.
    Ack {
        /// Who.
        by: String,
        /// `sms`, `call_back`, `answered` or `manual`.
        via: String,
    },
    /// The alert resolved.
    Resolve,
}

/// What a case expects; only what is given is compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// `totals`: key and count, in file order.
    pub totals: Vec<(String, usize)>,
    /// `calls`.
    pub calls: Vec<CallExpect>,
    /// `calls_exactly`.
    pub calls_exactly: bool,
    /// `error_contains`.
    pub error_contains: Option<String>,
    /// `escalation`.
    pub escalation: Option<EscalationExpect>,
}

/// One entry of `expect.calls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallExpect {
    /// The recipient's name.
    pub recipient: String,
    /// `planned` or `skipped`.
    pub status: Option<String>,
    /// The rule that decided.
    pub rule: Option<String>,
    /// FoneStorm `service_type`.
    pub service_type: Option<String>,
    /// The dial string.
    pub to: Option<String>,
    /// Substrings of the call's `service_id`.
    pub message_contains: Vec<String>,
    /// A substring of the reason of a skip.
    pub reason_contains: Option<String>,
    /// Narrows the match to calls of this step.
    pub step: Option<String>,
    /// Narrows the match to calls of this round.
    pub round: Option<u32>,
}

/// `expect.escalation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationExpect {
    /// `acknowledged`, `exhausted`, `cancelled` or `deduplicated`.
    pub outcome: Option<String>,
    /// Who acknowledged.
    pub ack_by: Option<String>,
    /// How.
    pub ack_via: Option<String>,
    /// Calls placed up to the acknowledgement.
    pub calls_before_ack: Option<usize>,
    /// Rounds started.
    pub rounds_run: Option<usize>,
}

/// Whether `path` names a test file (`*.test.yaml`).
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.yaml") && n.len() > ".test.yaml".len())
}

/// Reads and checks the test file at `path` and loads its playbook.
///
/// Every file read is added to `sources`, so diagnostics can show their lines.
///
/// # Errors
/// Every problem found (the playbook's own included), when there is at least one error.
pub fn load(path: &Path, sources: &mut Sources) -> Result<TestFile, Vec<Diagnostic>> {
    let display: Arc<str> = path.display().to_string().into();
    let text = read_text(path, &display, MAX_TEST_FILE_BYTES, None).map_err(|d| vec![d])?;
    sources.insert(display.clone(), text.clone());
    let (document, positions) =
        yaml::parse(&text).map_err(|e| vec![e.into_diagnostic(&display)])?;
    let at = |pointer: &str, key: bool| {
        let pos = if key {
            positions.key(pointer)
        } else {
            positions.value(pointer)
        };
        pos.at(&display)
    };
    let error = |pointer: &str, key: bool, message: String| {
        let d = Diagnostic::error(Some(at(pointer, key)), message);
        if pointer.is_empty() {
            d
        } else {
            d.at_path(display_path(pointer))
        }
    };
    let violations = crate::schema::check_test(&document).map_err(|e| {
        vec![Diagnostic::error(
            None,
            format!("internal schema error: {e}"),
        )]
    })?;
    if !violations.is_empty() {
        return Err(violations
            .into_iter()
            .map(|v| error(&v.pointer, v.at_key, v.message))
            .collect());
    }
    let raw: RawFile = serde_json::from_value(document)
        .map_err(|e| vec![error("", false, format!("not a test file: {e}"))])?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut errors = Vec::new();
    // The playbook first: the cases are checked against it.
    let playbook_path = normalise(&dir.join(&raw.playbook));
    let loaded = match playbook::load(&playbook_path, sources) {
        Ok(loaded) => Some(loaded),
        Err(diagnostics) => {
            let unplaced = diagnostics.iter().all(|d| d.location.is_none());
            if unplaced {
                for d in diagnostics {
                    errors.push(error(
                        "/playbook",
                        false,
                        format!("playbook: {}", d.message),
                    ));
                }
            } else {
                errors.extend(diagnostics);
                errors.push(error(
                    "/playbook",
                    false,
                    format!(
                        "the playbook `{}` is invalid (see above)",
                        playbook_path.display()
                    ),
                ));
            }
            None
        }
    };
    let mut names = HashSet::new();
    let mut inputs = Inputs::default();
    let mut cases = Vec::with_capacity(raw.cases.len());
    for (i, case) in raw.cases.into_iter().enumerate() {
        let base = format!("/cases/{i}");
        if !names.insert(case.name.clone()) {
            errors.push(error(
                &format!("{base}/name"),
                false,
                format!("a case named `{}` comes earlier in the file", case.name),
            ));
        }
        match check_case(case, &base, dir, &positions, &display, sources, &mut inputs) {
            Ok(c) => cases.push(c),
            Err(mut d) => errors.append(&mut d),
        }
    }
    let Some(loaded) = loaded else {
        return Err(errors);
    };
    for (i, case) in cases.iter().enumerate() {
        for (pointer, message) in references(&loaded.playbook, case, i) {
            errors.push(error(&pointer, false, message));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(TestFile {
        path: path.to_path_buf(),
        display,
        text,
        playbook: loaded.playbook,
        warnings: loaded.warnings,
        cases,
    })
}

/// Reads a UTF-8 text file of at most `limit` bytes, as a playbook's files
/// are read; `what` names it in the message of a file too large.
fn read_text(
    path: &Path,
    display: &Arc<str>,
    limit: u64,
    what: Option<&str>,
) -> Result<Arc<str>, Diagnostic> {
    crate::playbook::read_text(path, display, limit).map_err(|mut d| {
        if let Some(what) = what
            && d.location.is_some()
        {
            d.message = format!("{what}: {}", d.message);
        }
        d
    })
}

/// `a/b/../c` → `a/c`, without touching the file system (a path that goes
/// above its start keeps its `..`).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Checks one case on its own (no playbook needed).
fn check_case(
    raw: RawCase,
    base: &str,
    dir: &Path,
    positions: &Positions,
    display: &Arc<str>,
    sources: &mut Sources,
    inputs: &mut Inputs,
) -> Result<Case, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let error = |pointer: String, message: String| {
        Diagnostic::error(Some(positions.value(&pointer).at(display)), message)
            .at_path(display_path(&pointer))
    };
    let now = match DateTime::parse_from_rfc3339(raw.now.trim()) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => {
            errors.push(error(
                format!("{base}/now"),
                format!(
                    "{} is not an RFC 3339 time like 2026-11-26T22:00:00Z ({e})",
                    crate::schema::describe(&Value::String(raw.now.clone()))
                ),
            ));
            DateTime::<Utc>::MIN_UTC
        }
    };
    let input = match (raw.input, raw.input_file) {
        (Some(_), Some(_)) => {
            errors.push(error(
                format!("{base}/input_file"),
                "give `input` or `input_file`, not both".to_string(),
            ));
            None
        }
        (Some(v), None) => Some(v),
        (None, Some(file)) => match inputs.read(&dir.join(&file), sources) {
            Ok(v) => Some(v),
            Err(d) => {
                if d.location.is_none() {
                    errors.push(error(format!("{base}/input_file"), d.message));
                } else {
                    errors.push(d);
                }
                None
            }
        },
        (None, None) => None,
    };
    let mut duration = |pointer: String, text: &str| match playbook::parse_duration(text) {
        Ok(d) => d,
        Err(m) => {
            errors.push(error(pointer, m));
            Duration::ZERO
        }
    };
    let history = raw
        .history
        .into_iter()
        .enumerate()
        .map(|(j, h)| {
            let ago = duration(format!("{base}/history/{j}/ago"), &h.ago);
            (h.recipient, ago)
        })
        .collect();
    let simulate = raw
        .simulate
        .into_iter()
        .enumerate()
        .map(|(j, e)| {
            let at = duration(format!("{base}/simulate/{j}/at"), &e.at);
            let kind = match (e.disposition, e.ack) {
                (Some(d), _) => EventKind::Disposition {
                    recipient: d.recipient,
                    step: d.step,
                    round: d.round,
                    value: d.value,
                },
                (None, Some(a)) => EventKind::Ack {
                    by: a.by,
                    via: a.via.unwrap_or_else(|| "sms".to_string()),
                },
                _ => EventKind::Resolve,
            };
            Event { at, kind }
        })
        .collect();
    let expect = raw.expect.into();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Case {
        name: raw.name,
        now,
        vars: raw.vars,
        input,
        tags: raw.tags,
        history,
        simulate,
        expect,
        expect_at: positions.key(&format!("{base}/expect")),
    })
}

/// The `input_file`s of one test file: each read once, all within
/// [`MAX_INPUT_FILE_BYTES`].
#[derive(Default)]
struct Inputs {
    read: std::collections::HashMap<PathBuf, Value>,
    bytes: u64,
}

impl Inputs {
    /// The document of `path` (YAML or JSON).
    fn read(&mut self, path: &Path, sources: &mut Sources) -> Result<Value, Diagnostic> {
        let path = normalise(path);
        if let Some(value) = self.read.get(&path) {
            return Ok(value.clone());
        }
        let display: Arc<str> = path.display().to_string().into();
        let left = MAX_INPUT_FILE_BYTES.saturating_sub(self.bytes);
        let text = read_text(&path, &display, left, Some("input_file")).map_err(|d| {
            if self.bytes > 0 && d.message.contains("too large") {
                Diagnostic::error(
                    None,
                    format!(
                        "the input files of one test file hold at most {} MiB in all",
                        MAX_INPUT_FILE_BYTES / (1024 * 1024)
                    ),
                )
            } else {
                d
            }
        })?;
        self.bytes += text.len() as u64;
        sources.insert(display.clone(), text.clone());
        let value = yaml::parse(&text)
            .map(|(v, _)| v)
            .map_err(|e| e.into_diagnostic(&display))?;
        self.read.insert(path, value.clone());
        Ok(value)
    }
}

/// Every name in `case` that the playbook does not have, as (JSON pointer, message).
fn references(playbook: &Playbook, case: &Case, i: usize) -> Vec<(String, String)> {
    let base = format!("/cases/{i}");
    let mut out = Vec::new();
    let names: Vec<&str> = playbook
        .recipients
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let steps: Vec<&str> = playbook
        .escalation
        .as_ref()
        .map(|e| e.steps.iter().map(|s| s.name.as_str()).collect())
        .unwrap_or_default();
    let max_round = playbook
        .escalation
        .as_ref()
        .and_then(|e| e.steps.iter().map(|s| s.repeat).max())
        .unwrap_or(0);
    let is_page = playbook.escalation.is_some();
    let recipient = |pointer: String, name: &str, out: &mut Vec<(String, String)>| {
        if !names.contains(&name) {
            out.push((pointer, unknown("recipient", name, &playbook.name, &names)));
        }
    };
    let step_round = |pointer: String,
                      step: Option<&str>,
                      round: Option<u32>,
                      out: &mut Vec<(String, String)>| {
        if !is_page && (step.is_some() || round.is_some()) {
            out.push((
                pointer,
                format!(
                    "`step` and `round` are for pages: `{}` has no `escalation`",
                    playbook.name
                ),
            ));
            return;
        }
        if let Some(step) = step
            && !steps.contains(&step)
        {
            out.push((
                format!("{pointer}/step"),
                unknown("step", step, &playbook.name, &steps),
            ));
        }
        if let Some(round) = round
            && round > max_round
        {
            out.push((
                format!("{pointer}/round"),
                format!("no step of `{}` has a round {round}", playbook.name),
            ));
        }
    };
    for (j, (name, _)) in case.history.iter().enumerate() {
        recipient(format!("{base}/history/{j}/recipient"), name, &mut out);
    }
    if !case.simulate.is_empty() && !is_page {
        out.push((
            format!("{base}/simulate"),
            format!(
                "`simulate` is for pages: `{}` has no `escalation`, so there is no timeline to simulate",
                playbook.name
            ),
        ));
    }
    for (j, event) in case.simulate.iter().enumerate() {
        let pointer = format!("{base}/simulate/{j}");
        match &event.kind {
            EventKind::Disposition {
                recipient: who,
                step,
                round,
                value,
            } => {
                recipient(format!("{pointer}/disposition/recipient"), who, &mut out);
                if is_page {
                    step_round(
                        format!("{pointer}/disposition"),
                        step.as_deref(),
                        *round,
                        &mut out,
                    );
                }
                if let Err(m) = playbook::escalation::DispositionMatch::parse(value) {
                    out.push((format!("{pointer}/disposition/value"), m));
                }
            }
            EventKind::Ack { by, via } => {
                if via != "manual" {
                    recipient(format!("{pointer}/ack/by"), by, &mut out);
                }
                let ack = &playbook.ack;
                let off = match via.as_str() {
                    "sms" if ack.sms.is_empty() => Some("`ack.sms` is empty"),
                    "call_back" if !ack.call_back => Some("`ack.call_back` is false"),
                    "answered" if !ack.answered => Some("`ack.answered` is false"),
                    _ => None,
                };
                if let Some(why) = off {
                    out.push((
                        format!("{pointer}/ack/via"),
                        format!(
                            "`{}` does not take acknowledgements by `{via}`: {why}",
                            playbook.name
                        ),
                    ));
                }
            }
            EventKind::Resolve => {}
        }
    }
    let expect = &case.expect;
    for (j, call) in expect.calls.iter().enumerate() {
        let pointer = format!("{base}/expect/calls/{j}");
        recipient(format!("{pointer}/recipient"), &call.recipient, &mut out);
        step_round(pointer, call.step.as_deref(), call.round, &mut out);
    }
    if let Some(e) = &expect.escalation {
        let pointer = format!("{base}/expect/escalation");
        if !is_page {
            out.push((
                pointer.clone(),
                format!(
                    "`escalation` is for pages: `{}` has no `escalation`",
                    playbook.name
                ),
            ));
        }
        if let Some(by) = &e.ack_by {
            let simulated = case
                .simulate
                .iter()
                .any(|ev| matches!(&ev.kind, EventKind::Ack { by: b, .. } if b == by));
            if !simulated {
                recipient(format!("{pointer}/ack_by"), by, &mut out);
            }
        }
    }
    out
}

/// `no recipient `Alcie Ng` in `disk-full`, did you mean `Alice Ng`?`
fn unknown(what: &str, name: &str, playbook: &str, known: &[&str]) -> String {
    let name = crate::escape::escape_controls(name);
    let hint = crate::suggest::closest(&name, known.iter().copied())
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default();
    format!("the playbook `{playbook}` has no {what} `{name}`{hint}")
}

/// The file as the schema checked it.
#[derive(Deserialize)]
struct RawFile {
    playbook: String,
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
struct RawCase {
    name: String,
    now: String,
    #[serde(default)]
    vars: Map<String, Value>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    input_file: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    history: Vec<RawHistory>,
    #[serde(default)]
    simulate: Vec<RawEvent>,
    expect: RawExpect,
}

#[derive(Deserialize)]
struct RawHistory {
    recipient: String,
    ago: String,
}

#[derive(Deserialize)]
struct RawEvent {
    at: String,
    disposition: Option<RawDisposition>,
    ack: Option<RawAck>,
}

#[derive(Deserialize)]
struct RawDisposition {
    recipient: String,
    step: Option<String>,
    round: Option<u32>,
    value: String,
}

#[derive(Deserialize)]
struct RawAck {
    by: String,
    via: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawExpect {
    #[serde(default)]
    totals: Map<String, Value>,
    #[serde(default)]
    calls: Vec<RawCall>,
    #[serde(default)]
    calls_exactly: bool,
    error_contains: Option<String>,
    escalation: Option<RawEscalation>,
}

#[derive(Deserialize)]
struct RawCall {
    recipient: String,
    status: Option<String>,
    rule: Option<String>,
    service_type: Option<String>,
    to: Option<Value>,
    message_contains: Option<Texts>,
    reason_contains: Option<String>,
    step: Option<String>,
    round: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Texts {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawEscalation {
    outcome: Option<String>,
    ack_by: Option<String>,
    ack_via: Option<String>,
    calls_before_ack: Option<usize>,
    rounds_run: Option<usize>,
}

impl From<RawExpect> for Expect {
    fn from(raw: RawExpect) -> Self {
        Expect {
            totals: raw
                .totals
                .into_iter()
                .filter_map(|(k, v)| Some((k, usize::try_from(v.as_u64()?).ok()?)))
                .collect(),
            calls: raw
                .calls
                .into_iter()
                .map(|c| CallExpect {
                    recipient: c.recipient,
                    status: c.status,
                    rule: c.rule,
                    service_type: c.service_type,
                    to: c.to.map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }),
                    message_contains: match c.message_contains {
                        None => Vec::new(),
                        Some(Texts::One(s)) => vec![s],
                        Some(Texts::Many(v)) => v,
                    },
                    reason_contains: c.reason_contains,
                    step: c.step,
                    round: c.round,
                })
                .collect(),
            calls_exactly: raw.calls_exactly,
            error_contains: raw.error_contains,
            escalation: raw.escalation.map(|e| EscalationExpect {
                outcome: e.outcome,
                ack_by: e.ack_by,
                ack_via: e.ack_via,
                calls_before_ack: e.calls_before_ack,
                rounds_run: e.rounds_run,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_are_named_dot_test_dot_yaml() {
        assert!(is_test_file(Path::new("playbooks/disk-full.test.yaml")));
        assert!(!is_test_file(Path::new("playbooks/disk-full.yaml")));
        assert!(!is_test_file(Path::new(".test.yaml")));
        assert!(!is_test_file(Path::new("a.test.yml")));
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(
            normalise(Path::new("playbooks/../playbooks/a.yaml")),
            PathBuf::from("playbooks/a.yaml")
        );
        assert_eq!(normalise(Path::new("./a.yaml")), PathBuf::from("a.yaml"));
        assert_eq!(
            normalise(Path::new("../a.yaml")),
            PathBuf::from("../a.yaml")
        );
        assert_eq!(normalise(Path::new("a/../../b")), PathBuf::from("../b"));
    }
}
