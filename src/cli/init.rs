//! `callbook init [DIR] [--name NAME]`: a first playbook to start from.
//!
//! Writes `NAME.yaml` (a minimal, valid, commented playbook whose
//! `$schema` modeline points at `playbook.schema.json`, written beside it so
//! that an editor checks and completes the keys offline) and
//! `NAME.test.yaml` with two cases that `callbook test` passes unchanged.
//!
//! It never replaces anything: when any of the files exists, nothing is
//! written (exit 3). The one exception is a `playbook.schema.json` that is
//! byte for byte the schema it would write (from an earlier `init` in the
//! same folder): it is left as it is and shared. Files are created with
//! `O_EXCL`, so a file that appears meanwhile is not replaced either, and
//! what was written before a failure is removed again.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Output;
use super::exit::{Exit, Failure};
use crate::diag::Diagnostic;
use crate::playbook::io_reason;

/// The name used when `--name` is not given.
pub const DEFAULT_NAME: &str = "playbook";
/// The schema file the playbook's modeline points at.
pub const SCHEMA_FILE: &str = "playbook.schema.json";
/// The longest playbook name (the schema's `maxLength`: it names a lock file).
const MAX_NAME_LEN: usize = 100;
/// How much of a refused name is shown.
const SHOWN_NAME_CHARS: usize = 40;

/// `callbook init`.
pub(super) fn init(
    dir: Option<&Path>,
    name: Option<&str>,
    out: &Output<'_>,
) -> Result<Exit, Failure> {
    let name = name.unwrap_or(DEFAULT_NAME);
    check_name(name).map_err(|m| Failure::Invalid(vec![Diagnostic::error(None, m)]))?;
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let files = files(name);
    let mut existing = Vec::new();
    let mut to_write = Vec::new();
    for (file, text) in &files {
        let path = dir.join(file);
        match std::fs::symlink_metadata(&path) {
            Ok(_) if *file == SCHEMA_FILE && same_schema(&path, text) => {}
            Ok(_) => existing.push(path),
            Err(_) => to_write.push((path, text.as_str())),
        }
    }
    if !existing.is_empty() {
        let list: Vec<String> = existing
            .iter()
            .map(|p| format!("`{}`", shown_path(p)))
            .collect();
        return Err(Failure::Refused(format!(
            "{} already {}: nothing was written (choose another --name or folder)",
            list.join(", "),
            if existing.len() == 1 {
                "exists"
            } else {
                "exist"
            }
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| cannot_write(&dir, &e))?;
    let mut written: Vec<&Path> = Vec::new();
    for (path, text) in &to_write {
        if let Err(e) = create_new(path, text) {
            for done in &written {
                let _ = std::fs::remove_file(done);
            }
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                Failure::Refused(format!(
                    "`{}` appeared while writing: nothing was written",
                    shown_path(path)
                ))
            } else {
                cannot_write(path, &e)
            });
        }
        written.push(path);
    }
    let playbook = shown_path(&dir.join(format!("{name}.yaml")));
    let tests = shown_path(&dir.join(format!("{name}.test.yaml")));
    for path in &written {
        out.note(&format!("wrote `{}`", shown_path(path)));
    }
    out.note(&format!("next: edit `{playbook}`, then"));
    for step in [
        format!("callbook validate {playbook}"),
        format!("callbook run {playbook} --dry-run"),
        format!("callbook test {tests}"),
    ] {
        out.note(&format!("  {step}"));
    }
    Ok(Exit::Success)
}

/// Whether `name` can be a playbook's `name` and a file name: the schema's
/// pattern `[a-z0-9][a-z0-9_-]*`, at most [`MAX_NAME_LEN`] characters. That
/// leaves no `/`, `..`, NUL or control character to escape the folder.
pub fn check_name(name: &str) -> Result<(), String> {
    let shown = || {
        let cut: String = name.chars().take(SHOWN_NAME_CHARS).collect();
        let more = if name.chars().count() > SHOWN_NAME_CHARS {
            "…"
        } else {
            ""
        };
        format!("{}{more}", crate::escape::escape_controls(&cut))
    };
    if name.is_empty() {
        return Err("--name is empty: give a playbook name such as `disk-full`".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "--name `{}` is {} bytes long, more than {MAX_NAME_LEN}",
            shown(),
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !(first_ok && rest_ok) {
        return Err(format!(
            "--name `{}` is not a playbook name: lowercase letters, digits, `_` and `-`, starting with a letter or digit",
            shown()
        ));
    }
    Ok(())
}

/// The files `init` writes (name, text), in the order they are written.
fn files(name: &str) -> Vec<(String, String)> {
    vec![
        (SCHEMA_FILE.to_string(), crate::schema::SCHEMA.to_string()),
        (format!("{name}.yaml"), playbook(name)),
        (format!("{name}.test.yaml"), tests(name)),
    ]
}

/// Whether the file at `path` holds exactly `text` (read only up to its length).
fn same_schema(path: &Path, text: &str) -> bool {
    let limit = text.len() as u64 + 1;
    match crate::playbook::read_bounded(path, limit) {
        Ok(bytes) => bytes == text.as_bytes(),
        Err(_) => false,
    }
}

/// Creates `path`, which must not exist (not even as a dangling link), and writes `text`.
fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Failure {
    Failure::Invalid(vec![Diagnostic::error(
        None,
        format!(
            "cannot write `{}`: {}; nothing was written",
            shown_path(path),
            io_reason(e)
        ),
    )])
}

/// A path for one line of output: control characters made visible.
fn shown_path(path: &Path) -> String {
    crate::escape::escape_controls(&path.display().to_string()).into_owned()
}

/// The playbook: one recipient, one message, quiet hours for warnings.
fn playbook(name: &str) -> String {
    format!(
        r#"# yaml-language-server: $schema={SCHEMA_FILE}
#
# A first playbook, written by `callbook init`: who to call, what they hear,
# and which rule picks each person's destination. See every call it would
# place, without calling anyone:
#
#   callbook validate {name}.yaml
#   callbook run {name}.yaml --dry-run --var host=db-02 --var severity=critical
#   callbook test {name}.test.yaml
#
# Credentials come from the environment only (FONESTORM_TOKEN, or
# FONESTORM_USERNAME and FONESTORM_PASSWORD), never from this file.
version: 1
name: {name}
description: Call the on-call engineer when a host is down.

caller_id: "321-499-1000"            # your FoneStorm number, shown as caller ID

defaults:
  country: US                        # numbers without a country code are US numbers
  timezone: America/New_York         # for recipients that name no time zone

vars:                                # defaults; --vars-file, --input and --var override them
  host: db-01
  severity: warning                  # warning | critical

recipients:
  - name: Alice Ng
    phone: "+1 (321) 499-1008"       # any spelling; dialled as 13214991008
    tags: [primary]

messages:
  alert:
    tts: "A {{{{ severity }}}} alert: {{{{ host }}}} is down. Please check the incident channel."

rules:                               # per recipient, first match wins
  # Warnings wait for the morning in the recipient's time zone; critical
  # alerts always go through.
  - name: quiet hours
    when: >-
      severity != "critical" and
      (recipient.local_time.hour >= 22 or recipient.local_time.hour < 7)
    skip: quiet hours
  - name: everyone gets the alert
    play: alert

limits:
  max_calls: 10                      # refuse a run whose plan holds more calls
"#
    )
}

/// Two cases for `callbook test`, in its test file format.
fn tests(name: &str) -> String {
    format!(
        r#"# Tests for {name}.yaml, run with `callbook test`: each case plans the
# playbook offline at a fixed time and compares the plan with `expect`.
playbook: {name}.yaml                 # relative to this file
cases:
  - name: a warning in the daytime calls Alice Ng
    now: 2026-11-26T15:00:00Z          # 10:00 in New York
    vars: {{ host: db-02 }}
    expect:
      totals: {{ planned: 1, skipped: 0 }}
      calls:
        - recipient: Alice Ng
          status: planned
          rule: everyone gets the alert
          service_type: TTS
          to: "13214991008"
          message_contains: ["warning", "db-02 is down"]
  - name: a warning at night waits for the morning
    now: 2026-11-26T08:00:00Z          # 03:00 in New York
    expect:
      totals: {{ planned: 0, skipped: 1 }}
      calls:
        - recipient: Alice Ng
          status: skipped
          reason_contains: quiet hours
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let longest = "a".repeat(100);
        for good in ["playbook", "disk-full", "a", "0_x-1", longest.as_str()] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "../x", "x/y", "Disk", "-x", "_x", "x.yaml", "x\u{0}y", "x y", "é", ".", "..",
            "x\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let long = check_name(&"a".repeat(10 * 1024)).unwrap_err();
        assert!(long.contains("10240 bytes"), "{long}");
        assert!(long.len() < 200, "{long}");
        let nul = check_name("x\u{0}y").unwrap_err();
        assert!(!nul.contains('\u{0}'), "{nul:?}");
    }
}
