//! Recipients from files: `from: oncall.csv`, `from: team.yaml`.
//!
//! A recipient file may hold many thousands of rows, so CSV rows are read
//! straight into recipients without an intermediate document. Problems name
//! the file, the line and the column (or key) of the offending field.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::raw::{RawRecipient, Scalar};
use super::recipient::{CsvRow, FieldPlaces, PointerPlaces, RecipientDefaults, check_recipient};
use super::yaml;
use super::{MAX_INCLUDE_BYTES, Recipient, RecipientVars, display_path, read_text};
use crate::diag::{Diagnostic, Location, Sources};
use crate::schema::{self, Definition};

/// CSV columns with a meaning; every other column becomes a `recipient.vars` entry.
/// How many distinct tag lists of one file are shared between rows; rows
/// with further lists hold their own (a list per row would only add a key).
const MAX_SHARED_TAG_LISTS: usize = 1024;

const CSV_COLUMNS: &[&str] = &["name", "phone", "speed_dial", "timezone", "tags"];

/// Most columns a recipient file may have: real ones have a dozen.
pub const MAX_CSV_COLUMNS: usize = 256;

/// Longest field of a recipient file, in bytes: a name, a number, a note.
pub const MAX_CSV_FIELD_BYTES: usize = 4096;

/// Loads the recipients of `path` into `out`; `at` is the `from:` that names it.
pub(super) fn load(
    path: &Path,
    at: Location,
    defaults: &RecipientDefaults,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
    out: &mut Vec<Arc<Recipient>>,
) {
    let display: Arc<str> = path.display().to_string().into();
    let text = match read_text(path, &display, MAX_INCLUDE_BYTES) {
        Ok(t) => t,
        Err(mut d) => {
            if d.location.is_none() {
                d.location = Some(at);
                d.path = Some("from".to_string());
            }
            diags.push(d);
            return;
        }
    };
    load_text(path, text, at, defaults, sources, diags, out);
}

/// As [`load`], with the file's `text` at hand (a resumed page's recorded copy).
pub(super) fn load_text(
    path: &Path,
    text: Arc<str>,
    at: Location,
    defaults: &RecipientDefaults,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
    out: &mut Vec<Arc<Recipient>>,
) {
    let display: Arc<str> = path.display().to_string().into();
    sources.insert(display.clone(), text.clone());
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => load_csv(&text, &display, defaults, diags, out),
        Some("yaml" | "yml" | "json") => load_yaml(&text, &display, defaults, diags, out),
        _ => diags.push(
            Diagnostic::error(
                Some(at),
                format!("`{display}` is not a recipient file (use .csv, .yaml, .yml or .json)"),
            )
            .at_path("from"),
        ),
    }
}

/// Field places of one CSV row: the row's line and each column's offset.
struct CsvPlaces<'a> {
    file: &'a Arc<str>,
    line: u32,
    record: &'a csv::StringRecord,
    headers: &'a csv::StringRecord,
}

impl FieldPlaces for CsvPlaces<'_> {
    fn place(&self, field: Option<&str>) -> (Location, Option<String>) {
        let col = field
            .and_then(|f| self.headers.iter().position(|h| h == f))
            .and_then(|i| self.record.range(i))
            .map_or(1, |r| u32::try_from(r.start + 1).unwrap_or(1));
        // Field ranges count bytes without separators: add one per preceding comma.
        let idx = field.and_then(|f| self.headers.iter().position(|h| h == f));
        let col = col + idx.map_or(0, |i| u32::try_from(i).unwrap_or(0));
        let loc = Location {
            file: self.file.clone(),
            line: self.line,
            col,
        };
        (loc, field.map(str::to_string))
    }
}

fn load_csv(
    text: &str,
    file: &Arc<str>,
    defaults: &RecipientDefaults,
    diags: &mut Vec<Diagnostic>,
    out: &mut Vec<Arc<Recipient>>,
) {
    let at_line = |line: u64, col: u32| {
        Some(Location {
            file: file.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col,
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diags.push(Diagnostic::error(at_line(1, 1), csv_message(&e)));
            return;
        }
    };
    let mut problems = Vec::new();
    if headers.len() > MAX_CSV_COLUMNS {
        diags.push(Diagnostic::error(
            at_line(1, 1),
            format!(
                "the header row has {} columns; the limit is {MAX_CSV_COLUMNS}",
                headers.len()
            ),
        ));
        return;
    }
    if let Some(h) = headers.iter().find(|h| h.len() > MAX_CSV_FIELD_BYTES) {
        diags.push(Diagnostic::error(
            at_line(1, 1),
            format!(
                "a column name is {} bytes long; the limit is {MAX_CSV_FIELD_BYTES}",
                h.len()
            ),
        ));
        return;
    }
    if !headers.iter().any(|h| h == "name") {
        problems.push("the header row has no `name` column".to_string());
    }
    if !headers.iter().any(|h| h == "phone" || h == "speed_dial") {
        problems.push("the header row has no `phone` or `speed_dial` column".to_string());
    }
    // A column twice makes a row ambiguous (which `phone` is called?).
    let mut seen = std::collections::HashSet::new();
    if let Some(h) = headers.iter().find(|h| !seen.insert(*h)) {
        problems.push(format!("the header row has column `{h}` twice"));
    }
    for h in headers.iter() {
        if schema::looks_like_secret(h) {
            problems.push(format!(
                "column `{h}` looks like a secret: recipient files never hold credentials"
            ));
        }
    }
    if !problems.is_empty() {
        diags.extend(
            problems
                .into_iter()
                .map(|m| Diagnostic::error(at_line(1, 1), m)),
        );
        return;
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (c_name, c_phone, c_speed, c_tz, c_tags) = (
        column("name"),
        column("phone"),
        column("speed_dial"),
        column("timezone"),
        column("tags"),
    );
    let extra: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| !CSV_COLUMNS.contains(h))
        .map(|(i, _)| i)
        .collect();
    let names: Arc<[String]> = extra.iter().map(|&i| headers[i].to_string()).collect();
    // One row per line, at most (a quoted field may span lines).
    out.reserve(text.bytes().filter(|&b| b == b'\n').count());
    // Rows mostly repeat a few tag lists: each distinct list is kept once.
    let mut tag_sets: HashMap<String, Arc<[String]>> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                diags.push(Diagnostic::error(at_line(line, 1), csv_message(&e)));
                if matches!(
                    e.kind(),
                    csv::ErrorKind::Io(_) | csv::ErrorKind::Utf8 { .. }
                ) {
                    return;
                }
                continue;
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if let Some(i) = record.iter().position(|f| f.len() > MAX_CSV_FIELD_BYTES) {
            let column = headers.get(i).unwrap_or("?");
            let col = record
                .range(i)
                .map_or(1, |r| u32::try_from(r.start + i + 1).unwrap_or(1));
            diags.push(
                Diagnostic::error(
                    at_line(line, col),
                    format!(
                        "this field is {} bytes long; the limit is {MAX_CSV_FIELD_BYTES}",
                        record.get(i).map_or(0, str::len)
                    ),
                )
                .at_path(column.to_string()),
            );
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|s| !s.is_empty());
        let places = CsvPlaces {
            file,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            record: &record,
            headers: &headers,
        };
        let Some(name) = get(c_name) else {
            let (loc, _) = places.place(Some("name"));
            diags.push(Diagnostic::error(Some(loc), "missing `name`").at_path("name"));
            continue;
        };
        let mut text = String::new();
        let mut ends = Vec::with_capacity(extra.len().saturating_sub(1));
        for (n, &i) in extra.iter().enumerate() {
            if n > 0 {
                // A row is at most the file's 64 MiB: its offsets fit in 32 bits.
                ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            }
            text.push_str(record.get(i).unwrap_or_default());
        }
        let columns = RecipientVars::Columns {
            names: names.clone(),
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        };
        let raw = RawRecipient {
            name: name.to_string(),
            phone: get(c_phone).map(|s| Scalar::Text(s.to_string())),
            speed_dial: get(c_speed).map(|s| Scalar::Text(s.to_string())),
            timezone: get(c_tz).map(str::to_string),
            tags: Vec::new(),
            vars: Map::new(),
        };
        let field = get(c_tags).unwrap_or_default();
        let tags = match tag_sets.get(field) {
            Some(tags) => Arc::clone(tags),
            None => {
                let tags: Arc<[String]> = field
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if tag_sets.len() < MAX_SHARED_TAG_LISTS {
                    tag_sets.insert(field.to_string(), Arc::clone(&tags));
                }
                tags
            }
        };
        let row = CsvRow {
            vars: columns,
            tags,
        };
        if let Some(r) = check_recipient(raw, Some(row), defaults, &places, diags) {
            out.push(Arc::new(r));
        }
    }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this row has {len} fields, the header row has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "file is not valid UTF-8".to_string(),
        _ => {
            let s = e.to_string();
            s.split(": ").last().unwrap_or(&s).to_string()
        }
    }
}

fn load_yaml(
    text: &str,
    file: &Arc<str>,
    defaults: &RecipientDefaults,
    diags: &mut Vec<Diagnostic>,
    out: &mut Vec<Arc<Recipient>>,
) {
    let (document, positions) = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            diags.push(e.into_diagnostic(file));
            return;
        }
    };
    let Value::Array(items) = document else {
        diags.push(Diagnostic::error(
            Some(Location {
                file: file.clone(),
                line: 1,
                col: 1,
            }),
            "a recipient file must hold a list of recipients",
        ));
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let places = PointerPlaces {
            file,
            positions: &positions,
            pointer: format!("/{i}"),
        };
        let violations = match schema::check(&item, Definition::Recipient) {
            Ok(v) => v,
            Err(e) => {
                diags.push(Diagnostic::error(
                    None,
                    format!("internal schema error: {e}"),
                ));
                return;
            }
        };
        if !violations.is_empty() {
            for v in violations {
                let pointer = format!("/{i}{}", v.pointer);
                let pos = if v.at_key {
                    positions.key(&pointer)
                } else {
                    positions.value(&pointer)
                };
                let message = super::recipient::hide_secret_values(v.message, &item, &v.pointer);
                diags.push(
                    Diagnostic::error(Some(pos.at(file)), message).at_path(display_path(&pointer)),
                );
            }
            continue;
        }
        match serde_json::from_value::<RawRecipient>(item) {
            Ok(raw) => {
                if let Some(r) = check_recipient(raw, None, defaults, &places, diags) {
                    out.push(Arc::new(r));
                }
            }
            Err(e) => {
                let (loc, path) = places.place(None);
                let d = Diagnostic::error(Some(loc), e.to_string());
                diags.push(match path {
                    Some(p) => d.at_path(p),
                    None => d,
                });
            }
        }
    }
}
