//! Planning: every selected recipient's call, decided and rendered up front.
//!
//! A plan is complete before anything is called: rules are evaluated, every
//! message rendered and checked, every destination normalised and duplicate
//! numbers folded. A problem with any one recipient means no plan at all, so
//! a template error for recipient 57 can never leave recipients 1–56 called.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use minijinja::context;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use rayon::prelude::*;
use serde_json::Map;

use crate::diag::Diagnostic;
use crate::phone;
use crate::playbook::{Action, ConnectKind, MessageKind, Playbook, Recipient, VarRef};
use crate::render::to_value;
use crate::rules::CompiledRules;
use crate::ssml;
use crate::suggest;

/// How many per-recipient errors are listed before the rest are only counted.
pub const MAX_LISTED_ERRORS: usize = 20;

pub use crate::model::ServiceType;

/// One call exactly as it will be requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// Dial string or speed dial (shared with the recipient).
    pub to: Arc<str>,
    /// What the callee hears or is connected to.
    pub service_type: ServiceType,
    /// The rendered message, URL or destination.
    pub service_id: String,
    /// The rendered dedup key, when the playbook has `dedup`.
    pub dedup_key: Option<String>,
}

/// The SHA-256 of exactly what a call request sends, from `caller_id`.
///
/// `caller_id` is `None` only to check runs recorded with fingerprint format 1,
/// which did not cover it.
pub fn fingerprint(call: &CallRequest, caller_id: Option<&str>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    let parts = [
        Some(&*call.to),
        Some(call.service_type.as_str()),
        Some(call.service_id.as_str()),
        caller_id,
    ];
    for part in parts.into_iter().flatten() {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What happens to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Call them.
    Call(CallRequest),
    /// Do not call them, for this reason.
    Skip(String),
}

/// One selected recipient's line of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Index into the playbook's recipients.
    pub recipient: usize,
    /// The recipient's dial string (shared with the recipient).
    pub to: Arc<str>,
    /// The name of the rule that decided, if any matched (shared with the rule).
    pub rule: Option<Arc<str>>,
    /// Call or skip.
    pub decision: Decision,
}

/// Which recipients a run is about (`--tag`, `--recipient`); empty means all.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Recipients with any of these tags.
    pub tags: Vec<String>,
    /// Recipients with these names.
    pub names: Vec<String>,
}

/// Everything about a run that is not in the playbook.
#[derive(Clone, Debug)]
pub struct RunInput {
    /// Identifies the run in reports and logs.
    pub run_id: String,
    /// The run's time: rules and templates see this as `now`.
    pub now: DateTime<Utc>,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// Variables after `--vars-file` and `--var` are merged over the playbook's.
    pub vars: Map<String, serde_json::Value>,
    /// The `--input` document.
    pub input: Option<serde_json::Value>,
    /// Which recipients to plan.
    pub selection: Selection,
}

/// The decided, rendered calls of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// One entry per selected recipient, in playbook order.
    pub entries: Vec<Entry>,
}

impl Plan {
    /// How many calls the plan holds.
    pub fn calls(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.decision, Decision::Call(_)))
            .count()
    }

    /// Why a live run of this plan would be refused under `limit`
    /// (`--max-calls`, else `limits.max_calls`), if it would.
    pub fn over_limit(&self, limit: Option<u64>) -> Option<String> {
        let calls = self.calls();
        let max = limit?;
        (calls as u64 > max).then(|| {
            format!(
                "the plan holds {calls} calls, more than the limit of {max} (limits.max_calls or --max-calls)"
            )
        })
    }
}

/// Plans every selected recipient of `playbook` for `run`.
///
/// # Errors
/// Every problem found (up to [`MAX_LISTED_ERRORS`], then a count); nothing is planned then.
pub fn plan(playbook: &Playbook, run: &RunInput) -> Result<Plan, Vec<Diagnostic>> {
    let selected = select(playbook, &run.selection)?;
    let rules = CompiledRules::new(&playbook.rules, &playbook.templates).map_err(|d| vec![d])?;
    let base = base_context(playbook, run);
    let local_times = LocalTimes::new(playbook, &selected, run.now);
    // Each recipient's decision depends on nothing but the recipient, so they
    // are made on every core; `collect` keeps playbook order, and the pass
    // below (duplicates, errors) runs in that order, so the plan and the
    // errors listed are the same as one core would give.
    let decided: Vec<Result<Entry, Box<Diagnostic>>> = selected
        .par_iter()
        .map(|&index| {
            let recipient = &playbook.recipients[index];
            let view = recipient_value(recipient, local_times.get(recipient.timezone));
            let ctx = context! { recipient => view, ..base.clone() };
            let (rule, decision) = decide(playbook, &rules, recipient, &ctx).map_err(Box::new)?;
            Ok(Entry {
                recipient: index,
                to: recipient.target.shared_dial(),
                rule,
                decision,
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut error_count = 0usize;
    for d in decided.iter().filter_map(|r| r.as_ref().err()) {
        error_count += 1;
        if errors.len() < MAX_LISTED_ERRORS {
            errors.push(Diagnostic::clone(d));
        }
    }
    if error_count > 0 {
        if error_count > errors.len() {
            errors.push(Diagnostic::error(
                None,
                format!(
                    "{} more recipients have errors like these",
                    error_count - errors.len()
                ),
            ));
        }
        return Err(errors);
    }
    let mut entries: Vec<Entry> = decided.into_iter().filter_map(Result::ok).collect();
    let mut called: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for entry in &mut entries {
        if let Decision::Call(call) = &entry.decision {
            let dial = playbook.recipients[entry.recipient].target.dial();
            if let Some(&first) = called.get(&*call.to) {
                let name = &playbook.recipients[first].name;
                entry.decision = Decision::Skip(format!("duplicate of {name}"));
            } else {
                called.insert(dial, entry.recipient);
            }
        }
    }
    Ok(Plan { entries })
}

/// Indices of the selected recipients, in playbook order.
pub(crate) fn select(
    playbook: &Playbook,
    selection: &Selection,
) -> Result<Vec<usize>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    for name in &selection.names {
        if !playbook.recipients.iter().any(|r| &r.name == name) {
            let names = playbook.recipients.iter().map(|r| r.name.as_str());
            let hint = match suggest::closest(name, names) {
                Some(s) => format!(", did you mean `{s}`?"),
                None => String::new(),
            };
            errors.push(Diagnostic::error(
                None,
                format!("--recipient: no recipient is named `{name}`{hint}"),
            ));
        }
    }
    for tag in unknown_tags(playbook, &selection.tags) {
        let tags = playbook
            .recipients
            .iter()
            .flat_map(|r| r.tags.iter().map(String::as_str));
        let hint = match suggest::closest(tag, tags) {
            Some(s) => format!(", did you mean `{s}`?"),
            None => String::new(),
        };
        errors.push(Diagnostic::error(
            None,
            format!("--tag: no recipient has the tag `{tag}`{hint}"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(playbook
        .recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| selection.names.is_empty() || selection.names.contains(&r.name))
        .filter(|(_, r)| {
            selection.tags.is_empty() || r.tags.iter().any(|t| selection.tags.contains(t))
        })
        .map(|(i, _)| i)
        .collect())
}

/// The `--tag` values no recipient has: a typo there would select nobody
/// and page nobody, so each one is an error.
fn unknown_tags<'a>(playbook: &Playbook, tags: &'a [String]) -> Vec<&'a str> {
    if tags.is_empty() {
        return Vec::new();
    }
    let known: HashSet<&str> = playbook
        .recipients
        .iter()
        .flat_map(|r| r.tags.iter().map(String::as_str))
        .collect();
    let mut unknown: Vec<&str> = Vec::new();
    for tag in tags {
        if !known.contains(tag.as_str()) && !unknown.contains(&tag.as_str()) {
            unknown.push(tag);
        }
    }
    unknown
}

/// The context every recipient shares: vars, `input`, `playbook`, `run`, `now`.
pub(crate) fn base_context(playbook: &Playbook, run: &RunInput) -> Value {
    let now = run.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let fixed = context! {
        input => run.input.as_ref().map(to_value),
        playbook => context! { name => &playbook.name, description => &playbook.description },
        run => context! { id => &run.run_id, started_at => &now, dry_run => run.dry_run },
        now => &now,
    };
    context! { ..fixed, ..to_value(&run.vars) }
}

/// `recipient.local_time` of one instant in each time zone of a plan.
///
/// Every recipient in a zone shares one value: computing and formatting
/// the local time per recipient cost more than the rules that read it.
struct LocalTimes {
    by_zone: HashMap<Tz, Value>,
}

impl LocalTimes {
    /// The local times of `now` in the zones of the `selected` recipients.
    fn new(playbook: &Playbook, selected: &[usize], now: DateTime<Utc>) -> LocalTimes {
        let mut by_zone = HashMap::new();
        for &index in selected {
            let zone = playbook.recipients[index].timezone;
            by_zone
                .entry(zone)
                .or_insert_with(|| local_time(now.with_timezone(&zone)));
        }
        LocalTimes { by_zone }
    }

    /// The local time in `zone`, which was among the selected recipients' zones.
    fn get(&self, zone: Tz) -> Value {
        self.by_zone.get(&zone).cloned().unwrap_or_default()
    }
}

/// `recipient.local_time` for one local instant.
fn local_time(local: DateTime<Tz>) -> Value {
    context! {
        hour => local.hour(),
        minute => local.minute(),
        weekday => weekday_name(local.weekday()),
        date => local.date_naive().to_string(),
        time => format!("{:02}:{:02}", local.hour(), local.minute()),
        iso => local.to_rfc3339_opts(SecondsFormat::Secs, false),
    }
}

/// `recipient` for templates, with `local_time` in their zone.
fn recipient_value(recipient: &Arc<Recipient>, local_time: Value) -> Value {
    Value::from_object(RecipientView {
        recipient: Arc::clone(recipient),
        local_time,
    })
}

/// `recipient` for templates at `now`, for a plan of a few recipients at
/// many times (a page's rounds).
pub(crate) fn recipient_at(recipient: &Arc<Recipient>, now: DateTime<Utc>) -> Value {
    recipient_value(
        recipient,
        local_time(now.with_timezone(&recipient.timezone)),
    )
}

/// The English name of a weekday, as `recipient.local_time.weekday`.
fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The rule and decision for one recipient.
pub(crate) fn decide(
    playbook: &Playbook,
    rules: &CompiledRules<'_>,
    recipient: &Recipient,
    ctx: &Value,
) -> Result<(Option<Arc<str>>, Decision), Diagnostic> {
    let Some(rule) = rules.first_match(recipient, ctx)? else {
        return Ok((None, Decision::Skip("no rule matched".to_string())));
    };
    let templates = &playbook.templates;
    let name = &recipient.name;
    let (service_type, service_id, template) = match &rule.action {
        Action::Skip(reason) => {
            return Ok((Some(Arc::clone(&rule.name)), Decision::Skip(reason.clone())));
        }
        Action::Play(index) => {
            let message = &playbook.messages[*index];
            let text = templates.render(&message.template, ctx, name)?;
            if let Some(problem) = too_long(text.trim(), "message", playbook.max_message_bytes) {
                return Err(rendered_error(playbook, &message.template, name, problem));
            }
            let problem = match message.kind {
                MessageKind::Ssml => ssml::check(&text)
                    .err()
                    .map(|m| format!("rendered SSML: {m}")),
                MessageKind::SoundFile => crate::playbook::check_sound_file(text.trim()).err(),
                MessageKind::Tts => text
                    .trim()
                    .is_empty()
                    .then(|| "the message renders to nothing".to_string()),
            };
            if let Some(problem) = problem {
                return Err(rendered_error(playbook, &message.template, name, problem));
            }
            let service_type = match message.kind {
                MessageKind::Tts | MessageKind::Ssml => ServiceType::Tts,
                MessageKind::SoundFile => ServiceType::SoundFile,
            };
            (service_type, text.trim().to_string(), &message.template)
        }
        Action::Connect { kind, template } => {
            let value = templates.render(template, ctx, name)?;
            let value = value.trim();
            let fail = |problem: String| rendered_error(playbook, template, name, problem);
            if let Some(problem) = too_long(value, "destination", playbook.max_message_bytes) {
                return Err(fail(problem));
            }
            let (service_type, service_id) = match kind {
                ConnectKind::Phone => (
                    ServiceType::Phonenumber,
                    phone::dial_string(value, playbook.country).map_err(|e| fail(e.to_string()))?,
                ),
                ConnectKind::Device | ConnectKind::Voicemail if value.is_empty() => {
                    return Err(fail("the destination renders to nothing".to_string()));
                }
                ConnectKind::Device => (ServiceType::Device, value.to_string()),
                ConnectKind::Voicemail => (ServiceType::VoiceMail, value.to_string()),
            };
            (service_type, service_id, template)
        }
    };
    if let Some(problem) = too_long(&service_id, "message", playbook.max_message_bytes) {
        return Err(rendered_error(playbook, template, name, problem));
    }
    let dedup_key = match &playbook.dedup {
        Some(d) => {
            let key = templates.render(&d.key_template, ctx, name)?;
            // The key is recorded with every call: it is bounded like a message.
            if let Some(problem) = too_long(&key, "dedup key", playbook.max_message_bytes) {
                return Err(rendered_error(playbook, &d.key_template, name, problem));
            }
            Some(key)
        }
        None => None,
    };
    Ok((
        Some(Arc::clone(&rule.name)),
        Decision::Call(CallRequest {
            to: recipient.target.shared_dial(),
            service_type,
            service_id,
            dedup_key,
        }),
    ))
}

/// Why a rendered `service_id` is too long for `limits.max_message_bytes`, if it is.
fn too_long(value: &str, what: &str, max: usize) -> Option<String> {
    (value.len() > max).then(|| {
        format!(
            "the {what} renders to {} bytes, more than `limits.max_message_bytes` ({max})",
            value.len()
        )
    })
}

/// A problem with a rendered value, shown at the template it came from.
fn rendered_error(
    playbook: &Playbook,
    template: &str,
    recipient: &str,
    problem: String,
) -> Diagnostic {
    let site = playbook.templates.site(template);
    let d = Diagnostic::error(
        site.map(|s| s.location.clone()),
        format!("for recipient `{recipient}`: {problem}"),
    );
    match site {
        Some(s) => d.at_path(s.path.clone()),
        None => d,
    }
}

/// A random suffix so runs started in the same second differ.
///
/// 32 bits: with 16, runs started together (a cron line and the runs its
/// lock refuses, which are recorded too) shared an id often enough that the
/// run holding the lock was refused, unable to record its plan.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        fastrand::u32(..)
    )
}

/// `recipient` as templates see it: the recipient plus the local time of
/// this run.
///
/// Fields become template values only when a template reads them: building
/// every field of every recipient up front cost more than the rules.
#[derive(Debug)]
struct RecipientView {
    /// The recipient.
    recipient: Arc<Recipient>,
    /// `local_time` for this run, shared by everyone in the zone.
    local_time: Value,
}

/// The fields of `recipient`, in the order templates enumerate them.
const RECIPIENT_FIELDS: &[&str] = &["name", "phone", "tags", "vars", "timezone", "local_time"];

impl Object for RecipientView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let r = &self.recipient;
        Some(match key.as_str()? {
            "name" => Value::from(r.name.as_str()),
            "phone" => Value::from(r.target.dial()),
            "tags" => r.tags.iter().map(|t| Value::from(t.as_str())).collect(),
            "vars" => Value::from_object(VarsView(Arc::clone(r))),
            "timezone" => Value::from(r.timezone.name()),
            "local_time" => self.local_time.clone(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(RECIPIENT_FIELDS)
    }
}

/// `recipient.vars`, read one variable at a time.
#[derive(Debug)]
struct VarsView(Arc<Recipient>);

impl Object for VarsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match self.0.vars.get(key.as_str()?)? {
            VarRef::Json(value) => to_value(value),
            VarRef::Text(text) => Value::from(text),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.vars.names().map(Value::from).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.vars.names().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> CallRequest {
        CallRequest {
            to: "13214991008".into(),
            service_type: ServiceType::Tts,
            service_id: id.into(),
            dedup_key: None,
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let from = Some("13214991000");
        assert_eq!(fingerprint(&call("a"), from), fingerprint(&call("a"), from));
        assert_ne!(fingerprint(&call("a"), from), fingerprint(&call("b"), from));
        assert_eq!(fingerprint(&call("a"), from).len(), 64);
    }

    #[test]
    fn fingerprints_cover_the_caller_id() {
        let a = fingerprint(&call("a"), Some("13214991000"));
        assert_ne!(a, fingerprint(&call("a"), Some("13214991999")));
        assert_ne!(a, fingerprint(&call("a"), None));
    }
}
