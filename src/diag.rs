//! Diagnostics: errors and warnings that point into a user's files.
//!
//! Every layer that reads a file reports problems as [`Diagnostic`]s carrying
//! a [`Location`]. One renderer draws all of them the same way:
//!
//! ```text
//! playbooks/disk.yaml:14:9: error: recipients[2].phone: "12345" is not a phone number
//!    |
//! 14 |     phone: "12345"
//!    |            ^^^^^^^
//! ```
//!
//! The first line is stable and greppable; the snippet under it is for people.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

mod redact;

/// How serious a diagnostic is; only errors change the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Nothing is called when any error is reported.
    Error,
    /// Worth a look; does not stop anything.
    Warning,
}

/// A place in a file: the display path, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The path as the user gave it (or relative to the playbook for includes).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// One problem found in the user's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the problem is, when it comes from a file.
    pub location: Option<Location>,
    /// The key path of the offending node (`recipients[2].phone`), when known.
    pub path: Option<String>,
    /// What is wrong: lowercase, no final period, names in backticks.
    pub message: String,
}

impl Diagnostic {
    /// An error at `location`.
    pub fn error(location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location,
            path: None,
            message: message.into(),
        }
    }

    /// A warning at `location`.
    pub fn warning(location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(location, message)
        }
    }

    /// The same diagnostic, naming the key path of the offending node.
    #[must_use]
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Whether this diagnostic stops the run.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// The one-line form: `file:line:col: error: path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{}:{}:{}: ", loc.file, loc.line, loc.col)?;
        }
        f.write_str(match self.severity {
            Severity::Error => "error: ",
            Severity::Warning => "warning: ",
        })?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The text of every file diagnostics may point into, by display path.
#[derive(Default, Debug)]
pub struct Sources {
    files: HashMap<Arc<str>, Source>,
}

/// One file's text and the parts of its lines a snippet must never show.
#[derive(Debug)]
struct Source {
    text: Arc<str>,
    /// Byte ranges to hide, by 1-based line: values of secret-looking keys.
    masks: HashMap<u32, Vec<Range<usize>>>,
}

impl Sources {
    /// Remembers `text` as the content of `file`.
    ///
    /// The values of keys that look like secrets (`password`, `api_token`,
    /// `client_secret` …) are found here, once, so that no snippet ever shows
    /// them: not on the key's line, not on the lines a multi-line value spans.
    pub fn insert(&mut self, file: Arc<str>, text: Arc<str>) {
        let masks = redact::secret_values(&text);
        self.files.insert(file, Source { text, masks });
    }

    /// The text of `file` as it was read, for a later check that must point
    /// into it (`validate --online` finds its `caller_id` there).
    pub fn text(&self, file: &str) -> Option<&str> {
        self.files.get(file).map(|s| &*s.text)
    }

    /// Forgets the text of `file`: its diagnostics show no snippet afterwards.
    pub fn remove(&mut self, file: &str) {
        self.files.remove(file);
    }

    /// Every file's text, by display path, sorted, with the values of
    /// secret-looking keys replaced by `[hidden]`: what a page records as
    /// its sources, so that nothing secret reaches the journal.
    pub fn redacted_texts(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .files
            .iter()
            .map(|(file, source)| {
                let mut text = String::with_capacity(source.text.len());
                for (i, line) in source.text.split_inclusive('\n').enumerate() {
                    let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    match source.masks.get(&number) {
                        Some(ranges) => {
                            let mut at = 0;
                            for r in ranges {
                                if r.start < at || r.end > line.len() {
                                    continue;
                                }
                                text.push_str(line.get(at..r.start).unwrap_or_default());
                                text.push_str("[hidden]");
                                at = r.end;
                            }
                            text.push_str(line.get(at..).unwrap_or_default());
                        }
                        None => text.push_str(line),
                    }
                }
                (file.to_string(), text)
            })
            .collect();
        out.sort();
        out
    }

    /// The line `line` (1-based) of `file`, if known, with the ranges to hide.
    fn line(&self, file: &str, line: u32) -> Option<(&str, &[Range<usize>])> {
        let source = self.files.get(file)?;
        let text = source
            .text
            .lines()
            .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let masks = source.masks.get(&line).map_or(&[][..], Vec::as_slice);
        Some((text, masks))
    }
}

/// Draws diagnostics as text, with or without colour.
pub struct Printer<'a> {
    sources: &'a Sources,
    renderer: Renderer,
    styled: bool,
}

impl<'a> Printer<'a> {
    /// A printer that draws snippets from `sources`; `styled` adds ANSI colour.
    pub fn new(sources: &'a Sources, styled: bool) -> Self {
        let renderer = if styled {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        Printer {
            sources,
            renderer,
            styled,
        }
    }

    /// The diagnostic's header line and, when its file is known, the source line with a caret.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let mut out = String::new();
        let header = crate::escape::escape_controls(&diagnostic.to_string()).into_owned();
        if self.styled {
            let style = match diagnostic.severity {
                Severity::Error => anstyle::AnsiColor::Red.on_default().bold(),
                Severity::Warning => anstyle::AnsiColor::Yellow.on_default().bold(),
            };
            let _ = write!(out, "{style}{header}{style:#}");
        } else {
            out.push_str(&header);
        }
        out.push('\n');
        if let Some(snippet) = self.snippet(diagnostic) {
            out.push_str(&snippet);
            out.push('\n');
        }
        out
    }

    fn snippet(&self, diagnostic: &Diagnostic) -> Option<String> {
        let loc = diagnostic.location.as_ref()?;
        let (raw, masks) = self.sources.line(&loc.file, loc.line)?;
        let raw_start = raw
            .char_indices()
            .nth(usize::try_from(loc.col).ok()?.saturating_sub(1))
            .map_or(raw.len(), |(i, _)| i);
        let (masked, start) = redact::apply(raw, masks, raw_start);
        // Control characters become visible pictures, one character for one,
        // so the caret stays under the same character.
        let start_char = masked[..start].chars().count();
        let line = crate::escape::escape_controls(&masked);
        let start = line
            .char_indices()
            .nth(start_char)
            .map_or(line.len(), |(i, _)| i);
        let end = start + token_len(&line[start..]);
        let level = match diagnostic.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let line_start = usize::try_from(loc.line).ok()?;
        let group = Group::with_level(level).element(
            Snippet::source(line.as_ref())
                .line_start(line_start)
                .annotation(AnnotationKind::Primary.span(start..end.max(start))),
        );
        Some(self.renderer.render(&[group]))
    }
}

/// How many bytes the YAML token starting `rest` spans, for the caret.
///
/// A quoted scalar runs to its closing quote; anything else to the end of the
/// plain scalar or key (before `: `, ` #`, `,`, `]` or `}`).
fn token_len(rest: &str) -> usize {
    let mut chars = rest.char_indices();
    match chars.next() {
        None => 0,
        Some((_, q @ ('"' | '\''))) => {
            let mut escaped = false;
            for (i, c) in chars {
                if c == q && !escaped {
                    return i + 1;
                }
                escaped = q == '"' && c == '\\' && !escaped;
            }
            rest.len()
        }
        Some((_, '[' | '{' | '|' | '>' | '-')) => 1,
        Some(_) => {
            let bytes = rest.as_bytes();
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                let next = bytes.get(i + 1).copied();
                let stops = matches!(c, ',' | ']' | '}')
                    || (c == ':' && matches!(next, None | Some(b' ' | b'\t')))
                    || (c == '#' && i > 0 && bytes[i - 1] == b' ');
                if stops {
                    end = i;
                    break;
                }
            }
            match rest[..end].trim_end() {
                // Nothing visible (say, a lone U+2028): mark the first character.
                "" => rest.chars().next().map_or(0, char::len_utf8),
                token => token.len(),
            }
        }
    }
}

/// The words that make a key name look like a credential's.
pub const SECRET_WORDS: [&str; 7] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "credential",
];

/// Key names that suggest a credential was put into a playbook.
pub fn looks_like_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|s| k.contains(s))
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_segment(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains(['~', '/']) {
        segment.replace('~', "~0").replace('/', "~1").into()
    } else {
        segment.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.insert(
            "p.yaml".into(),
            "name: x\nrecipients:\n  - phone: \"12345\"\n".into(),
        );
        s
    }

    fn at(line: u32, col: u32) -> Option<Location> {
        Some(Location {
            file: "p.yaml".into(),
            line,
            col,
        })
    }

    #[test]
    fn header_line_names_file_line_column_and_path() {
        let d = Diagnostic::error(at(3, 12), "\"12345\" is not a phone number")
            .at_path("recipients[0].phone");
        assert_eq!(
            d.to_string(),
            "p.yaml:3:12: error: recipients[0].phone: \"12345\" is not a phone number"
        );
    }

    #[test]
    fn plain_rendering_draws_caret_under_token() {
        let d = Diagnostic::error(at(3, 12), "bad");
        let out = Printer::new(&sources(), false).render(&d);
        insta::assert_snapshot!(out, @r#"
        p.yaml:3:12: error: bad
          |
        3 |   - phone: "12345"
          |            ^^^^^^^
        "#);
    }

    #[test]
    fn styled_rendering_adds_colour_only_when_asked() {
        let d = Diagnostic::warning(at(1, 7), "careful");
        assert!(!Printer::new(&sources(), false).render(&d).contains('\x1b'));
        assert!(Printer::new(&sources(), true).render(&d).contains('\x1b'));
    }

    #[test]
    fn carets_never_split_a_character() {
        let mut s = Sources::default();
        s.insert("u.yaml".into(), "\u{2028}\n".into());
        let d = Diagnostic::error(
            Some(Location {
                file: "u.yaml".into(),
                line: 1,
                col: 1,
            }),
            "odd",
        );
        assert!(
            Printer::new(&s, false)
                .render(&d)
                .starts_with("u.yaml:1:1: error: odd")
        );
    }

    #[test]
    fn unknown_file_gives_header_only() {
        let d = Diagnostic::error(None, "no file");
        assert_eq!(
            Printer::new(&sources(), false).render(&d),
            "error: no file\n"
        );
    }

    #[test]
    fn token_lengths() {
        assert_eq!(token_len("\"a\\\"b\" # c"), 6);
        assert_eq!(token_len("'a b' # c"), 5);
        assert_eq!(token_len("plain words # c"), 11);
        assert_eq!(token_len("key: value"), 3);
        assert_eq!(token_len("http://x:80/a, b"), 13);
        assert_eq!(token_len("[1, 2]"), 1);
        assert_eq!(token_len(""), 0);
        assert_eq!(token_len("\u{2028}"), 3);
        assert_eq!(token_len("\u{a0}x"), 3);
    }
}
