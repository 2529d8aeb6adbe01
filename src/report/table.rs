//! The report as a table for people: who, which number, which rule, what they hear.
//!
//! ```text
//! RECIPIENT    TO              RULE           TYPE  STATUS   MESSAGE / REASON
//! Alice Ng     13214991008     primary page   TTS   planned  Hello Alice Ng. Volume /var/lib/…
//! Jonas Weber  01149894567898  quiet hours    -     skipped  quiet hours
//!
//! 2 recipients: 1 planned, 1 skipped (dry run: nothing was called)
//! ```

use std::fmt::Write as _;

use super::{Report, Status};
use crate::escape::escape_controls;

/// Longest excerpt of a message shown in a table cell.
const EXCERPT_CHARS: usize = 60;
/// Longest recipient or rule name shown before it is cut.
const NAME_CHARS: usize = 28;

/// Renders `report` as an aligned text table followed by a totals line.
pub fn render(report: &Report) -> String {
    if report.escalation.is_some() {
        return super::ladder::render(report);
    }
    let header = [
        "RECIPIENT",
        "TO",
        "RULE",
        "TYPE",
        "STATUS",
        "MESSAGE / REASON",
    ];
    let rows: Vec<[String; 6]> = report
        .calls
        .iter()
        .map(|c| {
            let detail = match c.status {
                Status::Skipped => c.reason.clone().unwrap_or_default(),
                Status::Failed | Status::Unknown => c.error.clone().unwrap_or_default(),
                _ => c.service_id.as_deref().map(excerpt).unwrap_or_default(),
            };
            // Names, rules and CSV fields are data: never let them drive the terminal.
            [
                cut(&escape_controls(&c.recipient), NAME_CHARS),
                escape_controls(&c.to).into_owned(),
                cut(
                    &escape_controls(c.rule.as_deref().unwrap_or("-")),
                    NAME_CHARS,
                ),
                c.service_type.clone().unwrap_or_else(|| "-".to_string()),
                c.status.as_str().to_string(),
                escape_controls(&detail).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    write_row(&mut out, &header.map(str::to_string), &widths);
    for row in &rows {
        write_row(&mut out, row, &widths);
    }
    out.push('\n');
    out.push_str(&summary(report));
    out.push('\n');
    out
}

fn write_row(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let _ = write!(line, "{cell:<w$}  ");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The list of `callbook runs`: one line per run, newest first.
pub fn runs(list: &[crate::model::RunSummary]) -> String {
    if list.is_empty() {
        return "no runs in the journal\n".to_string();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<29}  {:<24}  {:<20}  {:<11}  {:>6}  {:>6}  {:>7}  {:>7}  {:>7}",
        "RUN", "PLAYBOOK", "STARTED", "STATE", "PLACED", "FAILED", "UNKNOWN", "PENDING", "SKIPPED"
    );
    for r in list {
        let _ = writeln!(
            out,
            "{:<29}  {:<24}  {:<20}  {:<11}  {:>6}  {:>6}  {:>7}  {:>7}  {:>7}",
            escape_controls(&r.run_id),
            cut(&escape_controls(&r.playbook), 24),
            r.started_at,
            r.state,
            r.placed,
            r.failed,
            r.unknown,
            r.pending,
            r.skipped
        );
    }
    out
}

/// `4 recipients: 2 planned, 2 skipped (dry run: nothing was called)`.
pub fn summary(report: &Report) -> String {
    let t = &report.totals;
    let mut parts = Vec::new();
    let counts = [
        (t.planned, "planned", report.dry_run),
        (t.placed, "placed", true),
        (t.failed, "failed", true),
        (t.unknown, "unknown", true),
        (t.skipped, "skipped", true),
    ];
    for (n, word, show) in counts {
        if show && (n > 0 || word == "planned") {
            parts.push(format!("{n} {word}"));
        }
    }
    let noun = if t.recipients == 1 {
        "recipient"
    } else {
        "recipients"
    };
    let mut s = format!("{} {noun}: {}", t.recipients, parts.join(", "));
    if report.dry_run {
        s.push_str(" (dry run: nothing was called)");
    }
    s
}

/// What a person hears, in one line: markup dropped, whitespace folded, cut short.
pub fn excerpt(service_id: &str) -> String {
    let mut text = String::with_capacity(service_id.len());
    let mut in_tag = false;
    for c in service_id.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&escape_controls(&folded), EXCERPT_CHARS)
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_show_control_characters_as_pictures() {
        assert_eq!(excerpt("a\u{1b}]0;x\u{7}b"), "a\u{241b}]0;x\u{2407}b");
    }

    #[test]
    fn excerpts_drop_markup_and_fold_whitespace() {
        assert_eq!(
            excerpt(
                "<speak>\n  Hello Alice.\n  <break time=\"400ms\"/>\n  CPU &gt; 90% &amp; rising\n</speak>"
            ),
            "Hello Alice. CPU > 90% & rising"
        );
        let long = "word ".repeat(40);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), 60);
        assert!(e.ends_with('…'));
    }
}
