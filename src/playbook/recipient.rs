//! Checking one recipient, wherever it was written: in the playbook or in an
//! included CSV, YAML or JSON file.
//!
//! The playbook's checks and the include loader both use this, so neither
//! needs the other's internals.

use std::sync::Arc;

use chrono_tz::Tz;
use serde_json::Value;

use super::raw::RawRecipient;
use super::yaml::{Positions, escape_segment};
use super::{Recipient, RecipientVars, Target, display_path};
use crate::diag::{Diagnostic, Location};
use crate::phone::{self, Country};
use crate::schema;
use crate::suggest;

/// Parses an IANA time zone name, suggesting the nearest one on a typo.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        match suggest::closest(name, names) {
            Some(s) => format!("unknown time zone `{name}`, did you mean `{s}`?"),
            None => {
                format!("unknown time zone `{name}` (use an IANA name such as `Europe/Berlin`)")
            }
        }
    })
}

/// What a recipient falls back on when it names no time zone.
pub(super) struct RecipientDefaults {
    pub country: Country,
    pub timezone: Tz,
}

/// Where each field of one recipient was written.
pub(super) trait FieldPlaces {
    /// Location and key path of `field` (`None`: the recipient itself).
    fn place(&self, field: Option<&str>) -> (Location, Option<String>);
}

/// What a CSV row has beside its raw recipient: the extra fields (their
/// names were checked once, at the header) and the tags, shared by every row
/// that lists the same ones.
pub(super) struct CsvRow {
    pub vars: RecipientVars,
    pub tags: Arc<[String]>,
}

/// Checks one recipient and converts it; problems go to `diags`.
///
/// `row` holds the vars and tags of a CSV row; `raw.vars` and `raw.tags`
/// are used otherwise.
pub(super) fn check_recipient(
    raw: RawRecipient,
    row: Option<CsvRow>,
    defaults: &RecipientDefaults,
    places: &dyn FieldPlaces,
    diags: &mut Vec<Diagnostic>,
) -> Option<Recipient> {
    let mut fail = |field: &str, message: String| {
        let (loc, path) = places.place(Some(field));
        let d = Diagnostic::error(Some(loc), message);
        diags.push(match path {
            Some(p) => d.at_path(p),
            None => d,
        });
    };
    let target = match (raw.phone, raw.speed_dial) {
        (Some(p), None) => phone::dial_string(&p.into_string(), defaults.country)
            .map(|s| Target::Phone(s.into()))
            .map_err(|e| fail("phone", e.to_string())),
        (None, Some(s)) => phone::speed_dial(&s.into_string(), defaults.country)
            .map(|s| Target::SpeedDial(s.into()))
            .map_err(|e| fail("speed_dial", e.to_string())),
        _ => {
            fail(
                "phone",
                "exactly one of `phone` or `speed_dial` is required".to_string(),
            );
            Err(())
        }
    };
    let timezone = match &raw.timezone {
        Some(tz) if !tz.is_empty() => parse_timezone(tz).map_err(|m| fail("timezone", m)),
        _ => Ok(defaults.timezone),
    };
    for key in raw.vars.keys() {
        if schema::looks_like_secret(key) {
            fail(
                key,
                format!("`{key}` looks like a secret: recipient data never holds credentials"),
            );
            return None;
        }
    }
    let (target, timezone) = (target.ok()?, timezone.ok()?);
    let (vars, tags) = match row {
        Some(row) => (row.vars, row.tags),
        None => (RecipientVars::Map(Box::new(raw.vars)), raw.tags.into()),
    };
    Some(Recipient {
        location: places.place(None).0,
        name: raw.name,
        target,
        timezone,
        tags,
        vars,
    })
}

/// Field places of a recipient in a YAML document: the playbook or an included file.
pub(super) struct PointerPlaces<'a> {
    pub file: &'a Arc<str>,
    pub positions: &'a Positions,
    /// The JSON pointer of the recipient.
    pub pointer: String,
}

impl FieldPlaces for PointerPlaces<'_> {
    fn place(&self, field: Option<&str>) -> (Location, Option<String>) {
        let pointer = match field {
            Some(f) => format!("{}/{}", self.pointer, escape_segment(f)),
            None => self.pointer.clone(),
        };
        let loc = self.positions.value(&pointer).at(self.file);
        (loc, Some(display_path(&pointer)))
    }
}

/// `message` without any value found under a secret-looking key anywhere in
/// `document`: a schema message quotes the value it rejects, and that value
/// may be a password, reached on the way to `pointer` or through an alias.
pub(super) fn hide_secret_values(message: String, document: &Value, pointer: &str) -> String {
    let _ = pointer;
    let mut scalars = Vec::new();
    // (value, whether it is under a secret-looking key)
    let mut stack = vec![(document, false)];
    let mut visited = 0usize;
    while let Some((v, secret)) = stack.pop() {
        visited += 1;
        if scalars.len() > 1000 || visited > 100_000 {
            break;
        }
        match v {
            Value::Object(m) => stack.extend(
                m.iter()
                    .map(|(k, v)| (v, secret || schema::looks_like_secret(k))),
            ),
            Value::Array(a) => stack.extend(a.iter().map(|v| (v, secret))),
            Value::Null => {}
            scalar if secret => scalars.push(schema::describe(scalar)),
            _ => {}
        }
    }
    scalars.iter().fold(message, |m, shown| {
        m.replace(shown.as_str(), "a hidden value")
    })
}
