//! The playbook JSON Schema: the first check of every playbook.
//!
//! The schema (`schema/playbook.schema.json`) is the one document that both
//! editors (through the YAML language server) and callbook use, so completion
//! in an editor and the errors of `callbook validate` can never disagree.
//! This module compiles it once, without network access, and turns its
//! errors into messages a person can act on.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

/// The schema document, as committed and as printed by `callbook schema`.
pub const SCHEMA: &str = include_str!("../schema/playbook.schema.json");

static SCHEMA_VALUE: LazyLock<Result<Value, String>> =
    LazyLock::new(|| serde_json::from_str(SCHEMA).map_err(|e| e.to_string()));

static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| compile(SCHEMA_VALUE.as_ref()));

/// The `callbook serve` configuration schema, as committed and as printed by
/// `callbook schema --serve`.
pub const SERVE_SCHEMA: &str = include_str!("../schema/serve.schema.json");

static SERVE_SCHEMA_VALUE: LazyLock<Result<Value, String>> =
    LazyLock::new(|| serde_json::from_str(SERVE_SCHEMA).map_err(|e| e.to_string()));

static SERVE_VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| compile(SERVE_SCHEMA_VALUE.as_ref()));

fn compile(schema: Result<&Value, &String>) -> Result<Validator, String> {
    let schema = schema.map_err(Clone::clone)?;
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// The test file schema (`schema/test.schema.json`), as printed by
/// `callbook schema --test`: `*.test.yaml` files are checked against it
/// the way playbooks are checked against [`SCHEMA`].
pub const TEST_SCHEMA: &str = include_str!("../schema/test.schema.json");

static TEST_SCHEMA_VALUE: LazyLock<Result<Value, String>> =
    LazyLock::new(|| serde_json::from_str(TEST_SCHEMA).map_err(|e| e.to_string()));

static TEST_VALIDATOR: LazyLock<Result<Validator, String>> = LazyLock::new(|| {
    let schema = TEST_SCHEMA_VALUE.as_ref().map_err(Clone::clone)?;
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(schema)
        .map_err(|e| e.to_string())
});

/// Checks a test file's `document` against the test file schema, with the
/// same messages (and "did you mean" suggestions) as a playbook's.
///
/// # Errors
/// Only when the embedded schema itself cannot be compiled, which a test rules out.
pub fn check_test(document: &Value) -> Result<Vec<Violation>, String> {
    let validator = TEST_VALIDATOR.as_ref().map_err(Clone::clone)?;
    let schema = TEST_SCHEMA_VALUE.as_ref().map_err(Clone::clone)?;
    let mut violations = Vec::new();
    for error in validator.iter_errors(document) {
        explain(&error, schema, &mut violations);
    }
    Ok(violations)
}

/// One schema violation, located by JSON pointer into the checked document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the offending node.
    pub pointer: String,
    /// Whether the problem is the key itself (an unknown key), not its value.
    pub at_key: bool,
    /// The message: lowercase, no final period, names in backticks.
    pub message: String,
}

/// Which JSON Schema definition a document is checked against.
#[derive(Clone, Copy, Debug)]
pub enum Definition {
    /// A whole playbook.
    Playbook,
    /// One recipient (an entry of an included YAML or JSON file).
    Recipient,
    /// A `callbook serve` configuration file.
    Serve,
}

/// Checks `document` against the playbook schema and returns every violation.
///
/// # Errors
/// Only when the embedded schema itself cannot be compiled, which a test rules out.
pub fn check(document: &Value, definition: Definition) -> Result<Vec<Violation>, String> {
    if let Definition::Serve = definition {
        let validator = SERVE_VALIDATOR.as_ref().map_err(Clone::clone)?;
        let schema = SERVE_SCHEMA_VALUE.as_ref().map_err(Clone::clone)?;
        let mut violations = Vec::new();
        for error in validator.iter_errors(document) {
            explain(&error, schema, &mut violations);
        }
        return Ok(violations);
    }
    let validator = VALIDATOR.as_ref().map_err(Clone::clone)?;
    let schema = SCHEMA_VALUE.as_ref().map_err(Clone::clone)?;
    let mut violations = Vec::new();
    match definition {
        Definition::Playbook => {
            for error in validator.iter_errors(document) {
                explain(&error, schema, &mut violations);
            }
        }
        Definition::Serve => {}
        Definition::Recipient => {
            let wrapped = serde_json::json!({ "recipients": [document] });
            for error in validator.iter_errors(&wrapped) {
                if error.instance_path().as_str().starts_with("/recipients/0") {
                    explain(&error, schema, &mut violations);
                }
            }
            for v in &mut violations {
                v.pointer = v.pointer.replacen("/recipients/0", "", 1);
            }
        }
    }
    Ok(violations)
}

/// Turns one schema error into violations with human messages.
fn explain(error: &ValidationError<'_>, schema: &Value, out: &mut Vec<Violation>) {
    let pointer = error.instance_path().as_str().to_string();
    let instance = error.instance();
    let keyword_at = keyword_location(error);
    let parent_schema = keyword_at
        .rsplit_once('/')
        .and_then(|(parent, _)| schema.pointer(parent));
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let known: Vec<&str> = parent_schema
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            for key in unexpected {
                out.push(Violation {
                    pointer: format!("{pointer}/{}", crate::diag::escape_segment(key)),
                    at_key: true,
                    message: unknown_key(key, &known),
                });
            }
            return;
        }
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance();
            let key = key.as_str().unwrap_or_default();
            out.push(Violation {
                pointer: format!("{pointer}/{}", crate::diag::escape_segment(key)),
                at_key: true,
                message: if looks_like_secret(key) {
                    secret_key(key)
                } else {
                    format!("`{key}` is not an allowed name")
                },
            });
            return;
        }
        ValidationErrorKind::Required { property } => {
            format!(
                "missing required key `{}`",
                property.as_str().unwrap_or("?")
            )
        }
        ValidationErrorKind::Type { kind } => {
            format!(
                "expected {}, found {}",
                type_names(kind),
                describe(instance)
            )
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("expected `{expected_value}`, found {}", describe(instance))
        }
        ValidationErrorKind::Enum { options } => {
            format!("expected one of {options}, found {}", describe(instance))
        }
        ValidationErrorKind::Pattern { pattern } => {
            let hint = parent_schema
                .and_then(|s| s.get("x-expected"))
                .and_then(Value::as_str);
            match hint {
                Some(hint) => format!("{} is not {hint}", describe(instance)),
                None => format!("{} does not match `{pattern}`", describe(instance)),
            }
        }
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            let keys = parent_schema
                .and_then(|s| s.get("oneOf"))
                .and_then(required_alternatives);
            match (keys, error.kind()) {
                (Some(keys), ValidationErrorKind::OneOfNotValid { .. }) => {
                    format!("exactly one of {keys} is required")
                }
                (Some(keys), _) => format!("only one of {keys} may be given"),
                (None, _) => format!("{} is not any of the allowed forms", describe(instance)),
            }
        }
        ValidationErrorKind::MinItems { limit } => match limit {
            1 => "must not be empty".to_string(),
            n => format!("needs at least {n} entries"),
        },
        ValidationErrorKind::MinLength { .. } => "must not be empty".to_string(),
        // Never the value itself: it is too large to show.
        ValidationErrorKind::MaxItems { limit } => format!("has more than {limit} entries"),
        ValidationErrorKind::MaxLength { limit } => {
            format!("is longer than {limit} characters")
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{} is less than the minimum {limit}", describe(instance))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("{} must be greater than {limit}", describe(instance))
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{} is greater than the maximum {limit}", describe(instance))
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("has more than {limit} entries")
        }
        ValidationErrorKind::MinProperties { .. } => "must not be empty".to_string(),
        _ => error.to_string(),
    };
    out.push(Violation {
        pointer,
        at_key: false,
        message,
    });
}

/// The schema pointer of the failing keyword (through `$ref`s).
fn keyword_location(error: &ValidationError<'_>) -> String {
    error
        .absolute_keyword_location()
        .and_then(|uri| uri.fragment().map(|f| f.as_str().to_string()))
        .map(|f| percent_decode(&f))
        .unwrap_or_else(|| error.schema_path().as_str().to_string())
}

fn percent_decode(s: &str) -> String {
    s.replace("%24", "$").replace("%25", "%")
}

/// `` `phone` or `speed_dial` `` when every `oneOf` branch only requires one key.
fn required_alternatives(one_of: &Value) -> Option<String> {
    let names: Vec<String> = one_of
        .as_array()?
        .iter()
        .map(|branch| {
            let req = branch.get("required")?.as_array()?;
            match req.as_slice() {
                [name] => Some(format!("`{}`", name.as_str()?)),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    Some(join_or(&names))
}

fn join_or(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

pub use crate::diag::looks_like_secret;

fn secret_key(key: &str) -> String {
    format!(
        "`{key}` looks like a secret: playbooks never hold credentials, set \
         FONESTORM_TOKEN or FONESTORM_USERNAME and FONESTORM_PASSWORD in the environment"
    )
}

fn unknown_key(key: &str, known: &[&str]) -> String {
    if looks_like_secret(key) {
        return secret_key(key);
    }
    match crate::suggest::closest(key, known.iter().copied()) {
        Some(s) => format!("unknown key `{key}`, did you mean `{s}`?"),
        None if known.is_empty() => format!("unknown key `{key}`"),
        None => {
            let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!("unknown key `{key}` (expected {})", join_or(&list))
        }
    }
}

fn type_names(kind: &TypeKind) -> String {
    let names: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
    };
    let articled: Vec<String> = names.iter().map(|n| article(n)).collect();
    join_or(&articled)
}

fn article(type_name: &str) -> String {
    match type_name {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "null" => "nothing".to_string(),
        "integer" => "an integer".to_string(),
        other => format!("a {other}"),
    }
}

/// A short description of a value for messages: the scalar itself, or its kind.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(_) | Value::Number(_) => format!("`{value}`"),
        Value::String(s) if s.chars().count() <= 60 => format!("{s:?}"),
        Value::String(_) => "a long string".to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "version": 1,
            "name": "t",
            "caller_id": "321-555-1111",
            "recipients": [{"name": "A", "phone": "+1 321 499 1008"}],
            "messages": {"m": {"tts": "hi"}},
            "rules": [{"play": "m"}]
        })
    }

    fn messages(doc: &Value) -> Vec<(String, String)> {
        check(doc, Definition::Playbook)
            .unwrap()
            .into_iter()
            .map(|v| (v.pointer, v.message))
            .collect()
    }

    #[test]
    fn schema_compiles_and_accepts_minimal_playbook() {
        assert_eq!(messages(&minimal()), vec![]);
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let mut doc = minimal();
        doc["messsages"] = json!({});
        let got = messages(&doc);
        assert_eq!(
            got,
            vec![(
                "/messsages".to_string(),
                "unknown key `messsages`, did you mean `messages`?".to_string()
            )]
        );
    }

    #[test]
    fn secret_keys_are_rejected() {
        let mut doc = minimal();
        doc["vars"] = json!({"api_token": "x"});
        let got = messages(&doc);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "/vars/api_token");
        assert!(got[0].1.contains("looks like a secret"));
    }

    #[test]
    fn phone_or_speed_dial_is_explained() {
        let mut doc = minimal();
        doc["recipients"][0] = json!({"name": "A"});
        let got = messages(&doc);
        assert_eq!(
            got,
            vec![(
                "/recipients/0".to_string(),
                "exactly one of `phone` or `speed_dial` is required".to_string()
            )]
        );
    }

    #[test]
    fn wrong_type_names_both_sides() {
        let mut doc = minimal();
        doc["rules"] = json!(5);
        assert_eq!(
            messages(&doc),
            vec![(
                "/rules".to_string(),
                "expected a list, found `5`".to_string()
            )]
        );
    }

    #[test]
    fn a_recipient_alone_is_checked_by_its_definition() {
        let got = check(
            &json!({"name": "A", "phone": "1", "colour": "red"}),
            Definition::Recipient,
        )
        .unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].pointer, "/colour");
    }
}
