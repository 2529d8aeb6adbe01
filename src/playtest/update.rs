//! `--update`: the `expect` of failing cases rewritten from what they
//! actually planned, the rest of the file left as it is.
//!
//! Only the lines of each failing case's `expect` block are replaced (from
//! its `expect:` key to its last line); the other keys, the other cases,
//! comments outside those blocks and blank lines stay byte for byte. What
//! is lost: comments inside a replaced block, and its layout (the new block
//! lists every call, with strings written in double quotes). A case written
//! in flow style (`- { name: …, expect: … }`) is not rewritten.

use super::file::Case;
use super::run::Actual;
use crate::report::Status;

/// One rewritten `expect` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The case's name.
    pub case: String,
    /// The lines replaced (0-based, end exclusive).
    pub lines: std::ops::Range<usize>,
    /// Their text before.
    pub before: String,
    /// Their text after.
    pub after: String,
}

/// The new `expect` block of a case that planned `actual`, its key at
/// 0-based column `col` (the first line carries no indentation: it
/// replaces the key where it stands). `None` when there is no plan to take
/// it from (the simulation named no call).
pub fn expect_block(actual: &Actual, col: usize, newline: &str) -> Option<String> {
    let pad = " ".repeat(col + 2);
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    let mut out = String::from("expect:");
    out.push_str(newline);
    let mut line = |depth: usize, text: String| {
        out.push_str(&pad);
        out.push_str(&"  ".repeat(depth));
        out.push_str(&text);
        out.push_str(newline);
    };
    match actual {
        Actual::BadSimulation(_) => return None,
        Actual::Failed(diagnostics) => {
            let first = diagnostics.first().map_or("", |d| d.message.as_str());
            line(0, format!("error_contains: {}", q(first)));
        }
        Actual::Planned { report, page } => {
            let t = &report.totals;
            line(
                0,
                format!(
                    "totals: {{ recipients: {}, planned: {}, skipped: {} }}",
                    t.recipients, t.planned, t.skipped
                ),
            );
            if report.calls.is_empty() {
                line(0, "calls: []".to_string());
            } else {
                line(0, "calls:".to_string());
            }
            for c in &report.calls {
                line(1, format!("- recipient: {}", q(&c.recipient)));
                line(2, format!("status: {}", c.status.as_str()));
                if let Some(step) = &c.step {
                    line(2, format!("step: {}", q(step)));
                }
                if let Some(round) = c.round {
                    line(2, format!("round: {round}"));
                }
                if let Some(rule) = &c.rule {
                    line(2, format!("rule: {}", q(rule)));
                }
                line(2, format!("to: {}", q(&c.to)));
                if c.status == Status::Skipped {
                    if let Some(reason) = &c.reason {
                        line(2, format!("reason_contains: {}", q(reason)));
                    }
                } else {
                    if let Some(t) = &c.service_type {
                        line(2, format!("service_type: {}", q(t)));
                    }
                    if let Some(m) = &c.service_id {
                        line(2, format!("message_contains: {}", q(m)));
                    }
                }
            }
            line(0, "calls_exactly: true".to_string());
            if let (Some(e), Some(page)) = (&report.escalation, page) {
                line(0, "escalation:".to_string());
                if let Some(outcome) = &e.outcome {
                    line(1, format!("outcome: {outcome}"));
                }
                if let Some(ack) = &e.ack {
                    line(1, format!("ack_by: {}", q(&ack.by)));
                    line(1, format!("ack_via: {}", ack.via));
                }
                if let Some(n) = page.calls_before_ack {
                    line(1, format!("calls_before_ack: {n}"));
                }
                line(1, format!("rounds_run: {}", page.rounds_run));
            }
        }
    }
    Some(out)
}

/// Why a case's `expect` cannot be rewritten in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The case or its `expect` is written in flow style.
    FlowStyle,
    /// There is no plan to take the new `expect` from.
    NoPlan,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::FlowStyle => {
                "its `expect` is not a block of its own line (flow style): rewrite it by hand"
            }
            Refusal::NoPlan => "it planned nothing to take an `expect` from (see its failure)",
        })
    }
}

/// The change that rewrites `case`'s `expect` in `text` from `actual`.
///
/// # Errors
/// When the block cannot be found or rewritten in place.
pub fn change(text: &str, case: &Case, actual: &Actual) -> Result<Change, Refusal> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = (case.expect_at.line as usize)
        .checked_sub(1)
        .ok_or(Refusal::FlowStyle)?;
    let col = (case.expect_at.col as usize)
        .checked_sub(1)
        .ok_or(Refusal::FlowStyle)?;
    let key_line = lines.get(first).ok_or(Refusal::FlowStyle)?;
    let prefix: String = key_line.chars().take(col).collect();
    let rest: String = key_line.chars().skip(col).collect();
    // Only `expect:` at the start of its line (after spaces and list dashes),
    // followed by a block: a flow mapping on the same line ends there too.
    if !prefix.chars().all(|c| c == ' ' || c == '-') || !rest.starts_with("expect") {
        return Err(Refusal::FlowStyle);
    }
    let after_key = rest.trim_start_matches("expect").trim_start();
    let after_key = after_key.strip_prefix(':').ok_or(Refusal::FlowStyle)?;
    let inline = after_key.trim();
    if inline.starts_with('{') && !balanced(inline) {
        return Err(Refusal::FlowStyle);
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let content = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let mut last = first;
    for (i, l) in lines.iter().enumerate().skip(first + 1) {
        if content(l) {
            if indent(l) <= col {
                break;
            }
            last = i;
        }
    }
    let block = expect_block(actual, col, newline).ok_or(Refusal::NoPlan)?;
    let before: String = lines[first..=last].concat();
    let after = format!("{prefix}{block}");
    Ok(Change {
        case: case.name.clone(),
        lines: first..last + 1,
        before,
        after,
    })
}

/// Whether a flow mapping's braces close on its line.
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    depth == 0
}

/// `text` with every change applied (changes must not overlap).
pub fn apply(text: &str, changes: &[Change]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| c.lines.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for c in sorted {
        if c.lines.start < at {
            continue;
        }
        for l in lines.get(at..c.lines.start).unwrap_or_default() {
            out.push_str(l);
        }
        out.push_str(&c.after);
        // The replaced block's last line may have had no newline (end of file).
        if !c.after.ends_with('\n') {
            out.push('\n');
        }
        at = c.lines.end;
    }
    for l in lines.get(at..).unwrap_or_default() {
        out.push_str(l);
    }
    if !text.ends_with('\n') && out.ends_with('\n') && at >= lines.len() {
        out.pop();
        if out.ends_with('\r') {
            out.pop();
        }
    }
    out
}

/// Writes `text` to `path` in place of its content: a new file beside it,
/// with the same permissions, renamed over it, so a failure leaves the old
/// one whole. Refused first when the file cannot be opened for writing
/// (read-only file system, an immutable file, no permission).
///
/// # Errors
/// A short lowercase reason.
pub fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let reason = |e: std::io::Error| crate::playbook::io_reason(&e);
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(reason)?;
    let permissions = std::fs::metadata(path).map_err(reason)?.permissions();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(reason)?;
    tmp.write_all(text.as_bytes()).map_err(reason)?;
    tmp.as_file().sync_all().map_err(reason)?;
    std::fs::set_permissions(tmp.path(), permissions).map_err(reason)?;
    tmp.persist(path).map_err(|e| reason(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::yaml::Pos;

    fn case(line: u32, col: u32) -> Case {
        Case {
            name: "c".to_string(),
            now: chrono::Utc::now(),
            vars: serde_json::Map::new(),
            input: None,
            tags: Vec::new(),
            history: Vec::new(),
            simulate: Vec::new(),
            expect: Default::default(),
            expect_at: Pos { line, col },
        }
    }

    fn failed(message: &str) -> Actual {
        Actual::Failed(vec![crate::diag::Diagnostic::error(None, message)])
    }

    #[test]
    fn only_the_expect_block_is_replaced() {
        let text = "# top\ncases:\n  - name: c\n    expect:\n      # gone\n      totals: { planned: 9 }\n    # kept\n  - name: d\n";
        let c = change(text, &case(4, 5), &failed("boom")).unwrap();
        assert_eq!(c.lines, 3..6);
        let new = apply(text, &[c]);
        assert_eq!(
            new,
            "# top\ncases:\n  - name: c\n    expect:\n      error_contains: \"boom\"\n    # kept\n  - name: d\n"
        );
    }

    #[test]
    fn an_expect_first_in_its_case_keeps_the_dash() {
        let text = "cases:\n  - expect: { totals: { planned: 1 } }\n    name: c\n";
        let c = change(text, &case(2, 5), &failed("x")).unwrap();
        assert_eq!(
            apply(text, &[c]),
            "cases:\n  - expect:\n      error_contains: \"x\"\n    name: c\n"
        );
    }

    #[test]
    fn flow_style_cases_are_refused() {
        let text = "cases:\n  - { name: c, expect: { totals: { planned: 1 } } }\n";
        assert_eq!(
            change(text, &case(2, 17), &failed("x")),
            Err(Refusal::FlowStyle)
        );
    }
}
