//! The meaning checks: everything the JSON Schema cannot say.
//!
//! Message names that rules use exist, names are unique, templates and `when`
//! expressions compile, numbers are real numbers, time zones and durations
//! parse, and recipient files load. Every problem is collected, not only the
//! first, each with the place it comes from.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::Value;

use super::raw::{RawConnect, RawEntry, RawPlaybook, RawRule};
use super::recipient::{
    PointerPlaces, RecipientDefaults, check_recipient, hide_secret_values, parse_timezone,
};
use super::yaml::{Positions, escape_segment};
use super::{
    Action, ConnectKind, Dedup, Loaded, Message, MessageKind, Playbook, ProviderSettings,
    Recipient, Rule, display_path, include,
};
use crate::diag::{Diagnostic, Location, Sources};
use crate::limits;
use crate::phone::{self, Country};
use crate::render::{Escaping, Site, Templates};
use crate::schema::{self, Definition};
use crate::suggest;

/// Parses a duration such as `90s`, `30m` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|_| format!("{text:?} is not a duration (write it like `90s`, `30m` or `1h30m`)"))
}

/// The state of one playbook's meaning checks.
pub(super) struct Checker<'a> {
    path: &'a Path,
    file: Arc<str>,
    text: &'a str,
    positions: &'a Positions,
    sources: &'a mut Sources,
    /// Where `from:` includes may resolve to (canonical), or why that is unknown.
    include_root: Result<PathBuf, String>,
    /// A resumed page's recorded files: includes are read from here, not the disk.
    recorded: Option<&'a HashMap<String, String>>,
    diags: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        path: &'a Path,
        file: Arc<str>,
        text: &'a str,
        positions: &'a Positions,
        sources: &'a mut Sources,
        options: &super::LoadOptions,
        recorded: Option<&'a HashMap<String, String>>,
    ) -> Self {
        let root = match &options.include_root {
            Some(dir) => dir.clone(),
            None => match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        let include_root = root.canonicalize().map_err(|e| {
            format!(
                "cannot read the include root `{}`: {}",
                root.display(),
                super::io_reason(&e)
            )
        });
        Checker {
            path,
            file,
            text,
            positions,
            sources,
            include_root,
            recorded,
            diags: Vec::new(),
        }
    }

    fn location(&self, pointer: &str, at_key: bool) -> Location {
        let pos = if at_key {
            self.positions.key(pointer)
        } else {
            self.positions.value(pointer)
        };
        pos.at(&self.file)
    }

    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        let d = Diagnostic::error(Some(self.location(pointer, false)), message);
        self.diags.push(with_path(d, pointer));
    }

    fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        let d = Diagnostic::warning(Some(self.location(pointer, false)), message);
        self.diags.push(with_path(d, pointer));
    }

    /// Where the template at `pointer` sits, for mapping template lines back.
    fn site(&self, pointer: &str) -> Site {
        let location = self.location(pointer, false);
        let quoted = self
            .text
            .lines()
            .nth(location.line.saturating_sub(1) as usize)
            .and_then(|l| l.chars().nth(location.col.saturating_sub(1) as usize))
            .is_some_and(|c| c == '"' || c == '\'');
        Site {
            location,
            quoted,
            path: display_path(pointer),
        }
    }

    /// Runs every check on `document`.
    pub(super) fn run(mut self, document: Value) -> Result<Loaded, Vec<Diagnostic>> {
        match schema::check(&document, Definition::Playbook) {
            Ok(violations) if violations.is_empty() => {}
            Ok(violations) => {
                for v in violations {
                    let message = hide_secret_values(v.message, &document, &v.pointer);
                    let d = Diagnostic::error(Some(self.location(&v.pointer, v.at_key)), message);
                    self.diags.push(with_path(d, &v.pointer));
                }
                return Err(self.diags);
            }
            Err(e) => {
                return Err(vec![Diagnostic::error(
                    None,
                    format!("internal schema error: {e}"),
                )]);
            }
        }
        let raw: RawPlaybook = match serde_json::from_value(document) {
            Ok(raw) => raw,
            Err(e) => {
                self.error("", e.to_string());
                return Err(self.diags);
            }
        };
        let playbook = self.convert(raw);
        match playbook {
            Some(p) if !self.diags.iter().any(Diagnostic::is_error) => {
                self.release_recipient_files(&p);
                Ok(Loaded {
                    playbook: p,
                    warnings: self.diags,
                })
            }
            _ => Err(self.diags),
        }
    }

    /// Forgets the text of a broadcast's recipient files no warning points
    /// into: with the recipients loaded, nothing later shows a snippet of
    /// them, and a large CSV's text would otherwise be held for the whole run.
    fn release_recipient_files(&mut self, playbook: &Playbook) {
        // A page records the text of its files as its sources.
        if playbook.escalation.is_some() {
            return;
        }
        let shown: HashSet<&str> = self
            .diags
            .iter()
            .filter_map(|d| d.location.as_ref().map(|l| &*l.file))
            .collect();
        let mut released: HashSet<&str> = HashSet::new();
        for r in &playbook.recipients {
            let file = &*r.location.file;
            if file != &*self.file && !shown.contains(file) && released.insert(file) {
                self.sources.remove(file);
            }
        }
    }

    fn convert(&mut self, raw: RawPlaybook) -> Option<Playbook> {
        let country = super::country_or_default(raw.defaults.country.as_deref())
            .map_err(|e| self.error("/defaults/country", e.to_string()))
            .ok();
        let timezone = match raw.defaults.timezone.as_deref() {
            Some(tz) => parse_timezone(tz)
                .map_err(|m| self.error("/defaults/timezone", m))
                .ok(),
            None => Some(Tz::UTC),
        };
        let caller_id = phone::fonenumber(&raw.caller_id.into_string())
            .map_err(|e| self.error("/caller_id", e.to_string()))
            .ok();
        let provider = self.provider(raw.provider);
        for key in raw.vars.keys() {
            if schema::looks_like_secret(key) {
                self.error(
                    &format!("/vars/{}", escape_segment(key)),
                    "looks like a secret",
                );
            }
        }
        let defaults = RecipientDefaults {
            country: country.unwrap_or_default(),
            timezone: timezone.unwrap_or(Tz::UTC),
        };
        let recipients = self.recipients(raw.recipients, &defaults);
        let mut templates = Templates::new();
        let messages = self.messages(raw.messages, &mut templates);
        let rules = self.rules(
            raw.rules,
            &messages,
            &recipients,
            &mut templates,
            defaults.country,
        );
        let dedup = raw.dedup.and_then(|d| {
            let window = parse_duration(&d.window)
                .map_err(|m| self.error("/dedup/window", m))
                .ok()?;
            if !(limits::MIN_DEDUP_WINDOW..=limits::MAX_DEDUP_WINDOW).contains(&window) {
                self.error(
                    "/dedup/window",
                    format!(
                        "{:?} is out of range: a dedup window is from 1s to 90d",
                        d.window
                    ),
                );
                return None;
            }
            let key = d.key.unwrap_or_else(|| raw.name.clone());
            let site = self.site("/dedup/key");
            let key_template = templates
                .add("dedup.key", &key, site, Escaping::None)
                .map_err(|d| self.diags.push(d))
                .ok()?;
            Some(Dedup {
                key_template,
                window,
            })
        });
        let mut problems = Vec::new();
        let (escalation, ack) =
            super::escalation::check(raw.escalation, raw.ack, &recipients, &mut problems);
        for (pointer, message) in problems {
            self.error(&pointer, message);
        }
        self.warn_unknown_names(&templates, &rules, &raw.vars);
        Some(Playbook {
            path: self.path.to_path_buf(),
            name: raw.name,
            description: raw.description,
            caller_id: caller_id?,
            country: country?,
            timezone: timezone?,
            provider: provider?,
            vars: raw.vars,
            recipients,
            messages,
            rules,
            dedup,
            max_calls: raw.limits.max_calls,
            max_message_bytes: usize::try_from(
                raw.limits
                    .max_message_bytes
                    .unwrap_or(limits::DEFAULT_MAX_MESSAGE_BYTES)
                    .min(limits::MAX_MESSAGE_BYTES),
            )
            .unwrap_or(usize::MAX),
            templates,
            escalation,
            ack,
        })
    }

    /// Warns about names templates read that `vars` does not define: a typo
    /// found here is not an error at 3 a.m. (they may still come from `--var`).
    fn warn_unknown_names(
        &mut self,
        templates: &Templates,
        rules: &[Rule],
        vars: &serde_json::Map<String, Value>,
    ) {
        let known = |n: &str| vars.contains_key(n);
        let hint = |name: &str| {
            let close = suggest::closest(name, vars.keys().map(String::as_str));
            match close {
                Some(s) => format!(
                    "`{name}` is not in `vars`, did you mean `{s}`? (otherwise pass it with --var or --vars-file)"
                ),
                None => format!("`{name}` is not in `vars`: pass it with --var or --vars-file"),
            }
        };
        let mut warnings = Vec::new();
        for (name, at, path) in templates.unknown_names(&known) {
            warnings.push(Diagnostic::warning(Some(at), hint(&name)).at_path(path));
        }
        for rule in rules {
            if let Some((source, site)) = &rule.when {
                for name in templates.unknown_names_in_expression(source, &known) {
                    warnings.push(
                        Diagnostic::warning(Some(site.location.clone()), hint(&name))
                            .at_path(site.path.clone()),
                    );
                }
            }
        }
        self.diags.extend(warnings);
    }

    fn provider(&mut self, raw: super::raw::RawProvider) -> Option<ProviderSettings> {
        let mut p = ProviderSettings::default();
        if let Some(url) = raw.base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.error(
                    "/provider/base_url",
                    format!(
                        "{:?} is not an http(s) URL",
                        crate::base_url::without_userinfo(&url)
                    ),
                );
                return None;
            }
            // What a live run would refuse (a user name or password in the
            // URL, plain http to another machine) fails `validate` too.
            if let Err(e) = crate::base_url::check_base_url(&url) {
                self.error("/provider/base_url", e.to_string());
                return None;
            }
            p.base_url = url.trim_end_matches('/').to_string();
        }
        if let Some(t) = raw.timeout {
            p.timeout = parse_duration(&t)
                .map_err(|m| self.error("/provider/timeout", m))
                .ok()?;
            if !(limits::MIN_TIMEOUT..=limits::MAX_TIMEOUT).contains(&p.timeout) {
                self.error(
                    "/provider/timeout",
                    format!("{t:?} is out of range: a request may wait from 1s to 1h for the callee to pick up"),
                );
                return None;
            }
        }
        p.rate_limit = raw.rate_limit.unwrap_or(p.rate_limit);
        p.concurrency = raw.concurrency.unwrap_or(p.concurrency);
        p.retries = raw.retries.unwrap_or(p.retries);
        p.retry_ambiguous = raw.retry_ambiguous.unwrap_or(p.retry_ambiguous);
        Some(p)
    }

    fn recipients(
        &mut self,
        entries: Vec<RawEntry>,
        defaults: &RecipientDefaults,
    ) -> Vec<Arc<Recipient>> {
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            match entry {
                RawEntry::Recipient(raw) => {
                    let places = PointerPlaces {
                        file: &self.file,
                        positions: self.positions,
                        pointer: format!("/recipients/{i}"),
                    };
                    if let Some(r) = check_recipient(raw, None, defaults, &places, &mut self.diags)
                    {
                        out.push(Arc::new(r));
                    }
                }
                RawEntry::Include { from } => {
                    let pointer = format!("/recipients/{i}/from");
                    let at = self.location(&pointer, false);
                    let base = self.path.parent().unwrap_or(Path::new(""));
                    let path = base.join(&from);
                    if let Some(files) = self.recorded {
                        // Checked against the include root when it was recorded.
                        let display = path.display().to_string();
                        let Some(text) = files.get(&display) else {
                            self.error(
                                &pointer,
                                format!("`{from}` is not among the page's recorded sources"),
                            );
                            continue;
                        };
                        let text: Arc<str> = text.as_str().into();
                        include::load_text(
                            &path,
                            text,
                            at,
                            defaults,
                            self.sources,
                            &mut self.diags,
                            &mut out,
                        );
                        continue;
                    }
                    if let Err(m) = self.inside_root(&path, &from) {
                        self.error(&pointer, m);
                        continue;
                    }
                    include::load(&path, at, defaults, self.sources, &mut self.diags, &mut out);
                }
            }
        }
        // Growing by doubling leaves up to half the list unused: a large
        // list is held for the whole run.
        out.shrink_to_fit();
        let mut seen: HashMap<&str, &Location> = HashMap::with_capacity(out.len());
        let mut duplicates = Vec::new();
        for r in &out {
            if let Some(first) = seen.insert(&r.name, &r.location) {
                duplicates.push(Diagnostic::error(
                    Some(r.location.clone()),
                    format!(
                        "recipient name `{}` is already used at {}:{}:{}",
                        r.name, first.file, first.line, first.col
                    ),
                ));
            }
        }
        self.diags.extend(duplicates);
        out
    }

    /// Whether the include `path` (written `from`) resolves, symlinks followed,
    /// inside the include root: nothing else may be read, or printed in a snippet.
    fn inside_root(&self, path: &Path, from: &str) -> Result<(), String> {
        let outside = || {
            format!(
                "`{from}` is outside the playbook's directory (`--include-root DIR` allows another)"
            )
        };
        let root = self.include_root.as_ref().map_err(Clone::clone)?;
        let resolved = match path.canonicalize() {
            Ok(p) => p,
            // Missing: judge the path as written, so a missing file outside the
            // root is not told apart from an existing one.
            Err(_) => lexical_absolute(path).ok_or_else(outside)?,
        };
        if resolved.starts_with(root) {
            Ok(())
        } else {
            Err(outside())
        }
    }

    fn messages(
        &mut self,
        raw: indexmap::IndexMap<String, super::raw::RawMessage>,
        templates: &mut Templates,
    ) -> Vec<Message> {
        let mut out = Vec::with_capacity(raw.len());
        for (name, m) in raw {
            let (kind, key, source) = match (m.tts, m.ssml, m.sound_file) {
                (Some(t), None, None) => (MessageKind::Tts, "tts", t),
                (None, Some(s), None) => (MessageKind::Ssml, "ssml", s),
                (None, None, Some(u)) => (MessageKind::SoundFile, "sound_file", u),
                _ => continue,
            };
            let pointer = format!("/messages/{}/{key}", escape_segment(&name));
            if kind == MessageKind::SoundFile
                && !source.contains("{{")
                && let Err(m) = check_sound_file(&source)
            {
                self.error(&pointer, m);
            }
            let site = self.site(&pointer);
            match templates.add(
                &format!("messages.{name}"),
                &source,
                site,
                if kind == MessageKind::Ssml {
                    Escaping::Xml
                } else {
                    Escaping::None
                },
            ) {
                Ok(template) => out.push(Message {
                    name,
                    kind,
                    template,
                }),
                Err(d) => self.diags.push(d),
            }
        }
        out
    }

    fn rules(
        &mut self,
        raw: Vec<RawRule>,
        messages: &[Message],
        recipients: &[Arc<Recipient>],
        templates: &mut Templates,
        country: Country,
    ) -> Vec<Rule> {
        let count = raw.len();
        let known_tags: HashSet<&str> = recipients
            .iter()
            .flat_map(|r| r.tags.iter().map(String::as_str))
            .collect();
        let mut used = HashSet::new();
        let mut out = Vec::with_capacity(count);
        for (i, rule) in raw.into_iter().enumerate() {
            let base = format!("/rules/{i}");
            let name = rule.name.clone().unwrap_or_else(|| format!("rules[{i}]"));
            let has_conditions = rule.when.is_some() || rule.tags.is_some();
            if i + 1 == count && has_conditions {
                self.warn(
                    &base,
                    "the last rule has conditions: recipients it does not match are not called",
                );
            }
            let when = rule.when.map(|w| {
                let site = self.site(&format!("{base}/when"));
                if let Err(d) = templates.check_expression(&w, &site) {
                    self.diags.push(d);
                }
                (w, site)
            });
            let tags = rule.tags.unwrap_or_default();
            if !recipients.is_empty() {
                for (t, tag) in tags.iter().enumerate() {
                    if !known_tags.contains(tag.as_str()) {
                        self.warn(
                            &format!("{base}/tags/{t}"),
                            format!("no recipient has the tag `{tag}`"),
                        );
                    }
                }
            }
            let action = if let Some(play) = rule.play {
                match messages.iter().position(|m| m.name == play) {
                    Some(idx) => {
                        used.insert(idx);
                        Some(Action::Play(idx))
                    }
                    None => {
                        let names = messages.iter().map(|m| m.name.as_str());
                        let hint = match suggest::closest(&play, names) {
                            Some(s) => format!(", did you mean `{s}`?"),
                            None => String::new(),
                        };
                        self.error(
                            &format!("{base}/play"),
                            format!("unknown message `{play}`{hint}"),
                        );
                        None
                    }
                }
            } else if let Some(c) = rule.connect {
                self.connect(&base, i, c, templates, country)
            } else {
                rule.skip.map(Action::Skip)
            };
            if let Some(action) = action {
                out.push(Rule {
                    name: name.into(),
                    when,
                    tags,
                    action,
                });
            }
        }
        for (i, m) in messages.iter().enumerate() {
            if !used.contains(&i) {
                self.warn(
                    &format!("/messages/{}", escape_segment(&m.name)),
                    format!("message `{}` is not used by any rule", m.name),
                );
            }
        }
        out
    }

    fn connect(
        &mut self,
        base: &str,
        index: usize,
        c: RawConnect,
        templates: &mut Templates,
        country: Country,
    ) -> Option<Action> {
        let (kind, key, value) = match (c.device, c.voicemail, c.phone) {
            (Some(d), None, None) => (ConnectKind::Device, "device", d.into_string()),
            (None, Some(v), None) => (ConnectKind::Voicemail, "voicemail", v.into_string()),
            (None, None, Some(p)) => (ConnectKind::Phone, "phone", p.into_string()),
            _ => return None,
        };
        let pointer = format!("{base}/connect/{key}");
        if kind == ConnectKind::Phone
            && !value.contains("{{")
            && let Err(e) = phone::dial_string(&value, country)
        {
            self.error(&pointer, e.to_string());
        }
        let site = self.site(&pointer);
        match templates.add(
            &format!("rules[{index}].connect"),
            &value,
            site,
            Escaping::None,
        ) {
            Ok(template) => Some(Action::Connect { kind, template }),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }
}

/// `path` made absolute with `.` and `..` resolved by name, following the
/// symlinks of its longest existing ancestor.
fn lexical_absolute(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let absolute = std::path::absolute(path).ok()?;
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    Some(out)
}

fn with_path(d: Diagnostic, pointer: &str) -> Diagnostic {
    if pointer.is_empty() {
        d
    } else {
        d.at_path(display_path(pointer))
    }
}

/// A `sound_file` must be an http(s) URL of a WAV file.
pub fn check_sound_file(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    if scheme_ok && path.ends_with(".wav") && !url.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "{url:?} is not an http(s) URL of a `.wav` file (FoneStorm plays WAV only)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_messages_never_quote_a_secret_value() {
        let doc = serde_json::json!({"vars": {"db": {"api_token": "hunter2"}}, "name": "x"});
        let m = hide_secret_values(
            "\"hunter2\" is not a name".to_string(),
            &doc,
            "/vars/db/api_token",
        );
        assert_eq!(m, "a hidden value is not a name");
        let m = hide_secret_values("\"x\" is bad".to_string(), &doc, "/name");
        assert_eq!(m, "\"x\" is bad");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("30 minutes later").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn timezones() {
        assert!(parse_timezone("America/Chicago").is_ok());
        assert_eq!(
            parse_timezone("Europe/Berln").unwrap_err(),
            "unknown time zone `Europe/Berln`, did you mean `Europe/Berlin`?"
        );
    }

    #[test]
    fn sound_files() {
        assert!(check_sound_file("https://x.example/a.wav").is_ok());
        assert!(check_sound_file("https://x.example/a.WAV?v=1").is_ok());
        assert!(check_sound_file("https://x.example/a.mp3").is_err());
        assert!(check_sound_file("ftp://x.example/a.wav").is_err());
    }
}
