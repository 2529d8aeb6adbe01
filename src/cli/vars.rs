//! Run-time data from the command line: `--var`, `--vars-file`, `--input`, `--now`.
//!
//! Precedence, lowest first: playbook `vars`, `--vars-file`, `--input`
//! (under `input`), `--var`. Problems name the flag or the file and place.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Sources};
use crate::playbook::{MAX_INCLUDE_BYTES, ReadError, io_reason, read_bounded, yaml};

/// Reads `--var KEY=VALUE`; VALUE is read as a YAML scalar.
///
/// Messages name the key only, never the value: it may be a secret typed on
/// the wrong command line, and a key that looks like a secret is refused as
/// in a playbook (credentials come only from the environment).
pub fn parse_var(arg: &str) -> Result<(String, Value), Diagnostic> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(Diagnostic::error(
            None,
            "--var: expected KEY=VALUE (the argument has no `=`)",
        ));
    };
    let key = key.trim();
    let shown = crate::escape::escape_controls(key);
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(Diagnostic::error(
            None,
            format!("--var `{shown}`: not a variable name (letters, digits and `_`)"),
        ));
    }
    if crate::schema::looks_like_secret(key) {
        return Err(Diagnostic::error(None, secret_key("--var", key)));
    }
    let value = if raw.is_empty() {
        Value::String(String::new())
    } else {
        match yaml::parse(raw) {
            Ok((v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)), _)) => v,
            _ => Value::String(raw.to_string()),
        }
    };
    Ok((key.to_string(), value))
}

/// Reads `--now`.
pub fn parse_now(arg: &str) -> Result<DateTime<Utc>, Diagnostic> {
    DateTime::parse_from_rfc3339(arg)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Diagnostic::error(
                None,
                format!("--now {arg:?} is not an RFC 3339 time like 2026-11-26T22:00:00Z ({e})"),
            )
        })
}

/// Reads a YAML or JSON document from `path` (`-`: standard input).
pub fn read_document(path: &Path, flag: &str, sources: &mut Sources) -> Result<Value, Diagnostic> {
    let display: Arc<str> = if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string().into()
    };
    let fail = |m: String| Diagnostic::error(None, format!("{flag}: {m}"));
    let limit = MAX_INCLUDE_BYTES;
    let too_large = || {
        fail(format!(
            "`{display}` is larger than {} MiB",
            limit / (1024 * 1024)
        ))
    };
    let bytes = if path == Path::new("-") {
        // Standard input stays a stream (a pipe), but only `limit + 1` bytes are read.
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read `{display}`: {}", io_reason(&e))))?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        bytes
    } else {
        read_bounded(path, limit).map_err(|e| match e {
            ReadError::Unreadable(reason) => fail(format!("cannot read `{display}`: {reason}")),
            ReadError::TooLarge(_) => too_large(),
        })?
    };
    let text =
        String::from_utf8(bytes).map_err(|_| fail(format!("`{display}` is not valid UTF-8")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if is_empty_document(text) {
        return Err(fail(format!(
            "`{display}` is empty (empty input): it holds no document"
        )));
    }
    sources.insert(display.clone(), text.into());
    let (value, positions) =
        yaml::parse(text).map_err(|e| e.into_diagnostic(&display).at_path(flag))?;
    if flag == "--vars-file" {
        let mut found = Vec::new();
        secret_keys(&value, &mut String::new(), 0, &mut found);
        if let Some(pointer) = found.first() {
            let key = pointer.rsplit('/').next().unwrap_or_default();
            let key = key.replace("~1", "/").replace("~0", "~");
            return Err(Diagnostic::error(
                Some(positions.key(pointer).at(&display)),
                secret_key(flag, &key),
            )
            .at_path(crate::playbook::display_path(pointer)));
        }
    }
    Ok(value)
}

/// Deepest nesting searched for secret-looking keys (the parser allows less).
const MAX_SECRET_DEPTH: usize = 64;

/// JSON pointers of every key in `value` that looks like a secret, at any depth.
fn secret_keys(value: &Value, pointer: &mut String, depth: usize, found: &mut Vec<String>) {
    if depth > MAX_SECRET_DEPTH {
        return;
    }
    let len = pointer.len();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointer.push('/');
                pointer.push_str(&yaml::escape_segment(k));
                if crate::schema::looks_like_secret(k) {
                    found.push(pointer.clone());
                }
                secret_keys(v, pointer, depth + 1, found);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                secret_keys(v, pointer, depth + 1, found);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// The refusal of a secret-looking variable name given on the command line.
fn secret_key(flag: &str, key: &str) -> String {
    format!(
        "{flag}: `{}` looks like a secret: variables never hold credentials, set \
         FONESTORM_TOKEN or FONESTORM_USERNAME and FONESTORM_PASSWORD in the environment",
        crate::escape::escape_controls(key)
    )
}

/// Whether `text` holds no YAML or JSON document at all: only blank lines,
/// comments and document markers (`---`, `...`).
///
/// Such a document reads as null, and a run would silently plan with every
/// default; an explicit `null` or `~` is still a document.
fn is_empty_document(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        let body = match (line.get(..3), line.get(3..)) {
            (Some("---" | "..."), Some(rest))
                if rest.is_empty() || rest.starts_with([' ', '\t']) =>
            {
                rest.trim_start()
            }
            _ => line,
        };
        body.is_empty() || body.starts_with('#')
    })
}

/// Merges the variable sources in precedence order.
pub fn merge(
    playbook_vars: &Map<String, Value>,
    vars_file: Option<Value>,
    cli_vars: Vec<(String, Value)>,
) -> Result<Map<String, Value>, Diagnostic> {
    let mut vars = playbook_vars.clone();
    match vars_file {
        None => {}
        Some(Value::Object(map)) => vars.extend(map),
        Some(_) => {
            return Err(Diagnostic::error(
                None,
                "--vars-file: the file must hold a mapping of variables",
            ));
        }
    }
    vars.extend(cli_vars);
    Ok(vars)
}

/// The flags a run's input is made of, as `run` and `preview` both take them.
pub struct InputFlags<'a> {
    /// `--now`.
    pub now: Option<&'a str>,
    /// `--vars-file`.
    pub vars_file: Option<&'a Path>,
    /// `--input`.
    pub input: Option<&'a Path>,
    /// Every `--var`.
    pub vars: &'a [String],
    /// `--tag` and `--recipient`.
    pub selection: crate::plan::Selection,
    /// `--dry-run`.
    pub dry_run: bool,
}

/// The run's input from its flags (precedence, lowest first: playbook
/// `vars`, `--vars-file`, `--input`, `--var`), or every problem found.
///
/// # Errors
/// Every flag or file that cannot be read, all of them.
pub fn run_input(
    flags: InputFlags<'_>,
    playbook: &crate::playbook::Playbook,
    sources: &mut Sources,
) -> Result<crate::plan::RunInput, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let now = match flags.now.map(parse_now).transpose() {
        Ok(now) => now.unwrap_or_else(Utc::now),
        Err(d) => {
            errors.push(d);
            Utc::now()
        }
    };
    let mut read = |path: Option<&Path>, flag: &str| {
        path.and_then(|p| {
            read_document(p, flag, sources)
                .map_err(|d| errors.push(d))
                .ok()
        })
    };
    let vars_file = read(flags.vars_file, "--vars-file");
    let input = read(flags.input, "--input");
    let mut cli_vars = Vec::new();
    for v in flags.vars {
        match parse_var(v) {
            Ok(kv) => cli_vars.push(kv),
            Err(d) => errors.push(d),
        }
    }
    match merge(&playbook.vars, vars_file, cli_vars) {
        Ok(vars) if errors.is_empty() => Ok(crate::plan::RunInput {
            run_id: crate::plan::new_run_id(now),
            now,
            dry_run: flags.dry_run,
            vars,
            input,
            selection: flags.selection,
        }),
        Ok(_) => Err(errors),
        Err(d) => {
            errors.push(d);
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_values_are_yaml_scalars() {
        assert_eq!(
            parse_var("usage=93").unwrap(),
            ("usage".into(), Value::from(93))
        );
        assert_eq!(parse_var("ok=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_var("host=db-01").unwrap().1, Value::from("db-01"));
        assert_eq!(parse_var("v=\"93\"").unwrap().1, Value::from("93"));
        assert_eq!(parse_var("e=").unwrap().1, Value::from(""));
        assert_eq!(parse_var("l=[1, 2]").unwrap().1, Value::from("[1, 2]"));
        assert_eq!(parse_var("msg=a=b").unwrap().1, Value::from("a=b"));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("bad-key=1").is_err());
    }

    #[test]
    fn var_errors_never_echo_the_value() {
        for arg in [
            "db-password=hunter2",
            "hunter2",
            "api_token=hunter2",
            "PASSWORD=hunter2",
        ] {
            let d = parse_var(arg).unwrap_err();
            assert!(!d.message.contains("hunter2"), "{arg}: {}", d.message);
        }
        assert!(
            parse_var("api_token=x")
                .unwrap_err()
                .message
                .contains("`api_token` looks like a secret")
        );
    }

    #[test]
    fn later_sources_win() {
        let mut pb = Map::new();
        pb.insert("a".into(), Value::from(1));
        pb.insert("b".into(), Value::from(1));
        let file = serde_json::json!({"b": 2, "c": 2});
        let merged = merge(&pb, Some(file), vec![("c".into(), Value::from(3))]).unwrap();
        assert_eq!(
            Value::Object(merged),
            serde_json::json!({"a": 1, "b": 2, "c": 3})
        );
    }

    #[test]
    fn empty_documents() {
        for text in [
            "",
            "  \n\t\n",
            "# only a comment\n",
            "---\n",
            "--- # c\n...\n",
            "\r\n",
        ] {
            assert!(is_empty_document(text), "{text:?}");
        }
        for text in ["null", "~", "{}", "a: 1", "---x", "--- 1", "- 1", "#c\nx"] {
            assert!(!is_empty_document(text), "{text:?}");
        }
    }

    #[test]
    fn now_is_rfc3339() {
        assert!(parse_now("2026-11-26T22:00:00Z").is_ok());
        assert!(parse_now("2026-11-26T23:00:00+01:00").is_ok());
        assert!(parse_now("yesterday").is_err());
    }
}
