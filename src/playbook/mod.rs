//! Loading a playbook: YAML → JSON Schema → meaning checks → a checked [`Playbook`].
//!
//! Nothing downstream ever sees unchecked data. [`load`] reports every
//! problem it can find in one pass (not only the first), each pointing at
//! the file, line and column it comes from.

mod check;
pub mod escalation;
mod include;
mod raw;
mod recipient;
pub mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Location, Sources};
use crate::phone::Country;
use crate::render::{Site, Templates};

pub use check::{check_sound_file, parse_duration};

/// Largest playbook file callbook reads; real ones are a few kilobytes.
pub const MAX_PLAYBOOK_BYTES: u64 = 8 * 1024 * 1024;

/// Largest recipient file (`from:`) callbook reads: about a million rows.
pub const MAX_INCLUDE_BYTES: u64 = 64 * 1024 * 1024;

/// A playbook that passed every static check.
#[derive(Debug)]
pub struct Playbook {
    /// The path it was loaded from, as given.
    pub path: PathBuf,
    /// `name`: identifies the playbook in reports, logs and the journal.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `caller_id` as the 10-digit FoneNumber.
    pub caller_id: String,
    /// `defaults.country`, for numbers written without a country code.
    pub country: Country,
    /// `defaults.timezone`, for recipients that name none.
    pub timezone: Tz,
    /// `provider:` settings, defaults filled in.
    pub provider: ProviderSettings,
    /// `vars:` as written.
    pub vars: Map<String, Value>,
    /// Every recipient, inline and included, in playbook order.
    ///
    /// Shared, so that templates see a recipient without copying its data.
    pub recipients: Vec<Arc<Recipient>>,
    /// Named messages.
    pub messages: Vec<Message>,
    /// Destination rules, in order.
    pub rules: Vec<Rule>,
    /// Repeat suppression for scheduled runs.
    pub dedup: Option<Dedup>,
    /// `limits.max_calls`.
    pub max_calls: Option<u64>,
    /// `limits.max_message_bytes`: the longest rendered `service_id` or dedup key, in bytes.
    pub max_message_bytes: usize,
    /// Every compiled template.
    pub templates: Templates,
    /// `escalation:`: the ladder that makes the run a page; `None` for a broadcast.
    pub escalation: Option<escalation::Escalation>,
    /// `ack:`, defaults filled in (broadcasts use `outcome_timeout` only).
    pub ack: escalation::Ack,
}

/// Connection settings for the provider; credentials are never here.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettings {
    /// API base URL.
    pub base_url: String,
    /// Requests started per second, at most.
    pub rate_limit: f64,
    /// Requests in flight, at most.
    pub concurrency: u32,
    /// How long one request may take (it lasts until the call connects).
    pub timeout: Duration,
    /// Retries of a call that was certainly not placed.
    pub retries: u32,
    /// Also retry calls whose outcome is unknown (at-least-once).
    pub retry_ambiguous: bool,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            base_url: "https://api.fonestorm.com/v2".to_string(),
            rate_limit: 10.0,
            concurrency: 32,
            timeout: Duration::from_secs(120),
            retries: 3,
            retry_ambiguous: false,
        }
    }
}

/// How a recipient is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A phone number, as its FoneStorm dial string.
    Phone(Arc<str>),
    /// A configured speed dial.
    SpeedDial(Arc<str>),
}

impl Target {
    /// The `to` field of the call request.
    pub fn dial(&self) -> &str {
        match self {
            Target::Phone(s) | Target::SpeedDial(s) => s,
        }
    }

    /// The `to` field, shared rather than copied.
    pub fn shared_dial(&self) -> Arc<str> {
        match self {
            Target::Phone(s) | Target::SpeedDial(s) => Arc::clone(s),
        }
    }
}

/// One person to call.
#[derive(Debug)]
pub struct Recipient {
    /// Unique within the playbook.
    pub name: String,
    /// Phone number or speed dial.
    pub target: Target,
    /// For `recipient.local_time` and quiet hours.
    pub timezone: Tz,
    /// For rules and `--tag`; the rows of a file with the same tags share them.
    pub tags: Arc<[String]>,
    /// `recipient.vars` (for includes: the extra CSV columns).
    pub vars: RecipientVars,
    /// Where the recipient is defined.
    pub location: Location,
}

/// `recipient.vars`: a mapping as written in YAML or JSON, or the extra
/// columns of one CSV row.
///
/// A CSV row is kept as its fields' text in one string plus where each field
/// ends, with the column names shared by every row: memory stays within a few
/// times the file's size however many (empty) columns it has, where a mapping
/// per row would cost a hundred bytes for every one-byte empty field.
#[derive(Debug, Clone)]
pub enum RecipientVars {
    /// Written as a mapping (boxed: most recipients come from CSV rows).
    Map(Box<Map<String, Value>>),
    /// Extra columns of a CSV row; every value is a string.
    Columns {
        /// The column names, shared by every row of the file.
        names: Arc<[String]>,
        /// The fields' text, one after the other.
        text: Box<str>,
        /// Where each field but the last ends in `text` (the last ends with
        /// it, so a file with one extra column allocates nothing here).
        ends: Box<[u32]>,
    },
}

/// One variable of a recipient, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum VarRef<'a> {
    /// A value written in YAML or JSON.
    Json(&'a Value),
    /// A CSV field.
    Text(&'a str),
}

impl Default for RecipientVars {
    fn default() -> Self {
        RecipientVars::Map(Box::default())
    }
}

impl RecipientVars {
    /// Every variable, in the order written.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&str, Value)> + '_> {
        match self {
            RecipientVars::Map(m) => Box::new(m.iter().map(|(k, v)| (k.as_str(), v.clone()))),
            RecipientVars::Columns { .. } => Box::new(
                self.fields()
                    .map(|(name, value)| (name, Value::String(value.to_string()))),
            ),
        }
    }

    /// The variable `key`, if the recipient has it.
    pub fn get(&self, key: &str) -> Option<VarRef<'_>> {
        match self {
            RecipientVars::Map(m) => m.get(key).map(VarRef::Json),
            RecipientVars::Columns { .. } => self
                .fields()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| VarRef::Text(value)),
        }
    }

    /// The names of the variables, in the order written.
    pub fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            RecipientVars::Map(m) => Box::new(m.keys().map(String::as_str)),
            RecipientVars::Columns { names, .. } => Box::new(names.iter().map(String::as_str)),
        }
    }

    /// The fields of a CSV row with their column names (nothing for a mapping).
    fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        let (names, text, ends): (&[String], &str, &[u32]) = match self {
            RecipientVars::Map(_) => (&[], "", &[]),
            RecipientVars::Columns { names, text, ends } => (names, text, ends),
        };
        let mut start = 0usize;
        let ends = ends
            .iter()
            .map(|&end| usize::try_from(end).unwrap_or(text.len()))
            .chain(std::iter::once(text.len()));
        names.iter().zip(ends).map(move |(name, end)| {
            let end = end.clamp(start, text.len());
            let value = text.get(start..end).unwrap_or_default();
            start = end;
            (name.as_str(), value)
        })
    }
}

impl serde::Serialize for RecipientVars {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            RecipientVars::Map(m) => m.serialize(serializer),
            RecipientVars::Columns { names, .. } => {
                let mut map = serializer.serialize_map(Some(names.len()))?;
                for (k, v) in self.iter() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
        }
    }
}

/// What a message sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Plain text, spoken.
    Tts,
    /// An SSML document, spoken.
    Ssml,
    /// A WAV file played from a URL.
    SoundFile,
}

/// A named message with its compiled template.
#[derive(Debug)]
pub struct Message {
    /// The key under `messages:`.
    pub name: String,
    /// Which of `tts`, `ssml`, `sound_file`.
    pub kind: MessageKind,
    /// The template to render it by.
    pub template: String,
}

/// Where `connect:` sends the callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    /// A registered device.
    Device,
    /// A voicemail box.
    Voicemail,
    /// Another phone number.
    Phone,
}

/// What a rule does with the recipients it matches.
#[derive(Debug)]
pub enum Action {
    /// Call and play `messages[index]`.
    Play(usize),
    /// Call and connect to the rendered template.
    Connect {
        /// Device, voicemail or phone.
        kind: ConnectKind,
        /// The template of the destination.
        template: String,
    },
    /// Do not call, for this reason.
    Skip(String),
}

/// One destination rule.
#[derive(Debug)]
pub struct Rule {
    /// `name`, or `rules[N]` when it has none; every entry of a plan that
    /// the rule decided shares it.
    pub name: Arc<str>,
    /// The `when` expression and where it is.
    pub when: Option<(String, Site)>,
    /// The recipient needs at least one of these tags.
    pub tags: Vec<String>,
    /// What happens on a match.
    pub action: Action,
}

/// `dedup:`, checked.
#[derive(Debug)]
pub struct Dedup {
    /// Template of the key.
    pub key_template: String,
    /// How long a call suppresses repeats.
    pub window: Duration,
}

/// A playbook with the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The checked playbook.
    pub playbook: Playbook,
    /// Problems that do not stop anything.
    pub warnings: Vec<Diagnostic>,
}

/// How a playbook is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The directory `from:` includes must resolve into (symlinks followed);
    /// `None`: the playbook's own directory. A playbook read from a pull request
    /// must not make `validate` print lines of any other file on the machine.
    pub include_root: Option<PathBuf>,
}

/// Loads and checks the playbook at `path`.
///
/// Every file read is added to `sources`, so diagnostics can show their lines.
///
/// # Errors
/// Every problem found, errors and warnings alike, when there is at least one error.
pub fn load(path: &Path, sources: &mut Sources) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(path, sources, &LoadOptions::default())
}

/// As [`load`], with `options`.
///
/// # Errors
/// As [`load`].
pub fn load_with(
    path: &Path,
    sources: &mut Sources,
    options: &LoadOptions,
) -> Result<Loaded, Vec<Diagnostic>> {
    let display: Arc<str> = path.display().to_string().into();
    let text = read_text(path, &display, MAX_PLAYBOOK_BYTES).map_err(|d| vec![d])?;
    sources.insert(display, text.clone());
    load_text_with(path, &text, sources, options, None)
}

/// Loads the playbook recorded at `path` from `files` (display path to
/// text), as a resumed page does: the playbook and every `from:` include
/// come from `files`, never from the disk, so a page resumes exactly as it
/// started even when its files changed or were deleted since.
///
/// # Errors
/// As [`load`]; a file missing from `files` is an error naming it.
pub fn load_recorded(
    path: &Path,
    files: &HashMap<String, String>,
    sources: &mut Sources,
) -> Result<Loaded, Vec<Diagnostic>> {
    let display: Arc<str> = path.display().to_string().into();
    let Some(text) = files.get(&*display) else {
        return Err(vec![Diagnostic::error(
            None,
            format!("`{display}` is not among the recorded sources"),
        )]);
    };
    sources.insert(display, text.as_str().into());
    load_text_with(path, text, sources, &LoadOptions::default(), Some(files))
}

/// Checks playbook `text` as if it had been read from `path`.
///
/// `from:` includes are still read relative to `path`.
///
/// # Errors
/// As [`load`].
pub fn load_text(
    path: &Path,
    text: &str,
    sources: &mut Sources,
) -> Result<Loaded, Vec<Diagnostic>> {
    load_text_with(path, text, sources, &LoadOptions::default(), None)
}

/// Checks playbook `text`; with `recorded`, its includes come from there.
fn load_text_with(
    path: &Path,
    text: &str,
    sources: &mut Sources,
    options: &LoadOptions,
    recorded: Option<&HashMap<String, String>>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let display: Arc<str> = path.display().to_string().into();
    let (document, positions) = yaml::parse(text).map_err(|e| vec![e.into_diagnostic(&display)])?;
    let checker = check::Checker::new(path, display, text, &positions, sources, options, recorded);
    checker.run(document)
}

/// Why [`read_bounded`] refused a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// It could not be opened or read, or it is not a regular file: a short lowercase reason.
    Unreadable(String),
    /// It holds more than the limit: the reason says how much.
    TooLarge(String),
}

/// Reads the bytes of a regular file of at most `limit` bytes.
///
/// The size is bounded by what is actually read, not by what the file system
/// claims: a symlink to `/dev/zero` or a FIFO is refused before it is opened
/// (a FIFO would block the open), and a file that grows past `limit` while it
/// is read stops at `limit + 1` bytes.
///
/// # Errors
/// [`ReadError`], with a reason such as `no such file` or `not a regular file (a FIFO)`.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| ReadError::Unreadable(io_reason(&e));
    let special = |meta: &std::fs::Metadata| {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        let what = if t.is_file() {
            return None;
        } else if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        Some(ReadError::Unreadable(format!(
            "not a regular file ({what})"
        )))
    };
    let mib = |n: u64| n / (1024 * 1024);
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if let Some(e) = special(&meta) {
        return Err(e);
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(format!(
            "{} MiB; the limit is {} MiB",
            mib(meta.len()),
            mib(limit)
        )));
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The file may have been swapped between the two looks: check what was opened.
    if let Some(e) = special(&file.metadata().map_err(unreadable)?) {
        return Err(e);
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(format!(
            "more than {} MiB; the limit is {} MiB",
            mib(limit),
            mib(limit)
        )));
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file of at most `limit` bytes.
pub(crate) fn read_text(
    path: &Path,
    display: &Arc<str>,
    limit: u64,
) -> Result<Arc<str>, Diagnostic> {
    let bytes = read_bounded(path, limit).map_err(|e| match e {
        ReadError::Unreadable(reason) => {
            Diagnostic::error(None, format!("cannot read `{display}`: {reason}"))
        }
        ReadError::TooLarge(size) => Diagnostic::error(
            Some(Location {
                file: display.clone(),
                line: 1,
                col: 1,
            }),
            format!("file is too large ({size})"),
        ),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let col = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(Diagnostic::error(
                Some(Location {
                    file: display.clone(),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    col: u32::try_from(col).unwrap_or(u32::MAX),
                }),
                "file is not valid UTF-8",
            ));
        }
    };
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).into())
}

/// An I/O error as a short lowercase reason.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// `recipients[2].phone` for the JSON pointer `/recipients/2/phone`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// Converts a country code once checked by the schema.
pub(crate) fn country_or_default(code: Option<&str>) -> Result<Country, crate::phone::PhoneError> {
    code.map_or(Ok(Country::default()), Country::parse)
}

#[cfg(test)]
mod tests {
    use super::{RecipientVars, display_path};
    use std::sync::Arc;

    #[test]
    fn csv_columns_read_like_a_mapping() {
        let names: Arc<[String]> =
            vec!["team".to_string(), "note".to_string(), "x".to_string()].into();
        let vars = RecipientVars::Columns {
            names,
            text: "storageon call".into(),
            ends: vec![7, 14].into(),
        };
        assert_eq!(
            serde_json::to_value(&vars).unwrap(),
            serde_json::json!({"team": "storage", "note": "on call", "x": ""})
        );
    }

    #[test]
    fn display_paths() {
        assert_eq!(display_path("/recipients/2/phone"), "recipients[2].phone");
        assert_eq!(display_path("/vars/a~1b"), "vars.a/b");
        assert_eq!(display_path(""), "");
    }
}
