//! Templates: compiling and rendering every piece of text a call carries.
//!
//! Message text, `sound_file` URLs, `connect` values and the dedup key are
//! MiniJinja templates; `when` conditions are MiniJinja expressions. The
//! environment is strict (an undefined variable is an error, never an empty
//! string), metered with fuel (a runaway loop stops), and XML-escapes every
//! value inserted into SSML, so recipient data can never become markup.
//! Recipient data is only ever passed in as values: it is never compiled.

use std::collections::HashMap;
use std::fmt::Write as _;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

use crate::diag::{Diagnostic, Location};

/// Instructions one render may execute; real messages use a few hundred.
const FUEL: u64 = 200_000;

/// Names every template context has besides the playbook's `vars`.
///
/// `escalation` and `ack` are there in pages only (see `crate::timeline`).
pub const CONTEXT_NAMES: &[&str] = &[
    "input",
    "recipient",
    "playbook",
    "run",
    "now",
    "escalation",
    "ack",
];

/// Name prefix of templates whose output is SSML and gets XML escaping.
const SSML_PREFIX: &str = "ssml:";

/// Where a template's text sits in its file, to map template lines back.
#[derive(Clone, Debug)]
pub struct Site {
    /// Where the scalar's text starts (for a block scalar, its first line of text).
    pub location: Location,
    /// True when the scalar is quoted: its text starts one column later.
    pub quoted: bool,
    /// The key path of the scalar, e.g. `messages.page.ssml`.
    pub path: String,
}

impl Site {
    /// The file location of line `template_line` (1-based) of the template.
    fn location_of_line(&self, template_line: Option<usize>) -> Location {
        let mut loc = self.location.clone();
        if let Some(l) = template_line {
            let l = u32::try_from(l).unwrap_or(u32::MAX);
            // Block scalars (`|`) start where their text starts, and every
            // line of the text is indented at least as far.
            loc.line = loc.line.saturating_add(l.saturating_sub(1));
        }
        loc
    }
}

/// Every compiled template of a playbook, with where each came from.
///
/// How a template's values are escaped: a kind kept beside the template,
/// not read back from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// Plain text: values are written as they are.
    None,
    /// SSML: every value is XML-escaped, whatever the template says.
    Xml,
}

/// Templates live in two environments. SSML messages render in one where
/// *every* template escapes for XML, so no path into an SSML document skips
/// escaping: not `{% include %}` of a `tts` message, not `{% import %}`,
/// `{% extends %}` or macros, not `{% autoescape false %}` (the formatter
/// escapes whatever the block says), not `| safe` (it cannot make data
/// markup there) and not `| tojson`. Everything else renders in a plain one.
pub struct Templates {
    env: Environment<'static>,
    ssml_env: Environment<'static>,
    sites: HashMap<String, Site>,
    escaping: HashMap<String, Escaping>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.sites.len())
            .finish()
    }
}

/// A strict, metered environment with nothing compiled yet.
fn strict_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env
}

/// Writes `value` XML-escaped unless it is markup the template itself produced.
fn write_xml(out: &mut minijinja::Output<'_>, value: &Value) -> Result<(), Error> {
    let write_failed = |e: std::fmt::Error| Error::new(ErrorKind::WriteFailure, e.to_string());
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(write_failed);
    }
    let text = if value.is_none() {
        String::new()
    } else {
        value.to_string()
    };
    out.write_str(&xml_escape(&text)).map_err(write_failed)
}

impl Templates {
    /// Empty, strict, metered environments.
    pub fn new() -> Self {
        let mut env = strict_env();
        env.set_auto_escape_callback(|name| {
            if name.starts_with(SSML_PREFIX) {
                AutoEscape::Custom("xml".into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Custom(n) if n == "xml") {
                write_xml(out, value)
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let mut ssml_env = strict_env();
        ssml_env.set_auto_escape_callback(|_| AutoEscape::Custom("xml".into()));
        // Whatever the scope says (`{% autoescape false %}`): data is escaped.
        ssml_env.set_formatter(|out, _state, value| write_xml(out, value));
        // `| safe` cannot turn data into markup; what is already markup stays.
        ssml_env.add_filter("safe", |value: Value| value);
        // `| tojson` marks its output safe, but a JSON string's `"` would end an attribute.
        ssml_env.add_filter("tojson", |value: Value| -> Result<String, Error> {
            serde_json::to_string(&value)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
        });
        Templates {
            env,
            ssml_env,
            sites: HashMap::new(),
            escaping: HashMap::new(),
        }
    }

    /// Compiles `source` under `name`, its values escaped as `escaping` says.
    ///
    /// Returns the name to render it by.
    pub fn add(
        &mut self,
        name: &str,
        source: &str,
        site: Site,
        escaping: Escaping,
    ) -> Result<String, Diagnostic> {
        // SSML templates live under their own names, so that an `include`
        // from a plain template still escapes them (the environment's
        // auto-escape callback sees only a name).
        let name = if escaping == Escaping::Xml {
            format!("{SSML_PREFIX}{name}")
        } else {
            name.to_string()
        };
        let added = self
            .env
            .add_template_owned(name.clone(), source.to_string())
            .and_then(|()| {
                self.ssml_env
                    .add_template_owned(name.clone(), source.to_string())
            });
        match added {
            Ok(()) => {
                self.sites.insert(name.clone(), site);
                self.escaping.insert(name.clone(), escaping);
                Ok(name)
            }
            Err(e) => Err(template_error(&site, &e, None)),
        }
    }

    /// Checks that `source` compiles as an expression.
    pub fn check_expression(&self, source: &str, site: &Site) -> Result<(), Diagnostic> {
        self.env
            .compile_expression(source)
            .map(drop)
            .map_err(|e| template_error(site, &e, None))
    }

    /// Compiles expressions for evaluation during one planning pass.
    pub fn expression<'a>(
        &'a self,
        source: &'a str,
        site: &Site,
    ) -> Result<minijinja::Expression<'a, 'a>, Diagnostic> {
        self.env
            .compile_expression(source)
            .map_err(|e| template_error(site, &e, None))
    }

    /// Renders template `name` for `recipient` with `ctx`.
    pub fn render(&self, name: &str, ctx: &Value, recipient: &str) -> Result<String, Diagnostic> {
        let site = self.sites.get(name);
        let env = match self.escaping.get(name) {
            Some(Escaping::Xml) => &self.ssml_env,
            Some(Escaping::None) | None => &self.env,
        };
        let result = env.get_template(name).and_then(|t| t.render(ctx));
        result.map_err(|e| match site {
            Some(site) => template_error(site, &e, Some(recipient)),
            None => Diagnostic::error(None, e.to_string()),
        })
    }

    /// The top-level names each template reads that neither a built-in
    /// (`recipient`, `input`, …, `range`, …) nor `known` provides: the name,
    /// the line where it first appears, and the template's key path. Typos in
    /// variable names show up here at validation time.
    pub fn unknown_names(&self, known: &dyn Fn(&str) -> bool) -> Vec<(String, Location, String)> {
        let mut found = Vec::new();
        for (name, site) in &self.sites {
            if let Ok(template) = self.env.get_template(name) {
                for n in self.unknown(template.undeclared_variables(false), known) {
                    let first = first_use(template.source(), &n);
                    let mut at = site.location_of_line(first.map(|(line, _)| line));
                    if let Some((_, col)) = first {
                        let col = u32::try_from(col).unwrap_or(0) + u32::from(site.quoted);
                        at.col = at.col.saturating_add(col);
                    }
                    found.push((n, at, site.path.clone()));
                }
            }
        }
        found.sort_by(|a, b| (a.1.line, a.1.col, &a.0).cmp(&(b.1.line, b.1.col, &b.0)));
        found
    }

    /// As [`Templates::unknown_names`], for one `when` expression.
    pub fn unknown_names_in_expression(
        &self,
        source: &str,
        known: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        match self.env.compile_expression(source) {
            Ok(expr) => self.unknown(expr.undeclared_variables(false), known),
            Err(_) => Vec::new(),
        }
    }

    fn unknown(
        &self,
        names: std::collections::HashSet<String>,
        known: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| !CONTEXT_NAMES.contains(&n.as_str()) && !known(n))
            .filter(|n| self.env.globals().all(|(g, _)| g != n))
            .collect();
        names.sort();
        names
    }

    /// Where template `name` came from.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.get(name)
    }
}

/// The 1-based line of `source` where `name` first appears as a word, and
/// its 0-based character offset in that line.
fn first_use(source: &str, name: &str) -> Option<(usize, usize)> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    source.lines().enumerate().find_map(|(n, line)| {
        line.match_indices(name)
            .find(|(i, _)| {
                let before = line[..*i].chars().next_back();
                let after = line[i + name.len()..].chars().next();
                !before.is_some_and(is_word) && !after.is_some_and(is_word)
            })
            .map(|(i, _)| (n + 1, line[..i].chars().count()))
    })
}

/// A template error as a diagnostic at the template's place in the playbook.
pub fn template_error(site: &Site, e: &Error, recipient: Option<&str>) -> Diagnostic {
    let mut message = String::new();
    if let Some(r) = recipient {
        let _ = write!(message, "for recipient `{r}`: ");
    }
    let detail = e.detail().map(str::to_string).unwrap_or_default();
    match e.kind() {
        // MiniJinja's detail already names the variable: "`x` is undefined".
        ErrorKind::UndefinedError if !detail.is_empty() => message.push_str(&detail),
        ErrorKind::UndefinedError => match undefined_expression(e) {
            Some(expr) => {
                let _ = write!(message, "undefined value in `{expr}`");
            }
            None => message.push_str("undefined value"),
        },
        kind => {
            let label = match kind {
                ErrorKind::SyntaxError => "template syntax error".to_string(),
                ErrorKind::OutOfFuel => "template ran too long (out of fuel)".to_string(),
                other => other.to_string(),
            };
            message.push_str(&label);
            if !detail.is_empty() {
                let _ = write!(message, ": {detail}");
            }
        }
    }
    Diagnostic::error(Some(site.location_of_line(e.line())), message).at_path(site.path.clone())
}

/// The source text of the failing expression, when MiniJinja knows it.
fn undefined_expression(e: &Error) -> Option<String> {
    let source = e.template_source()?;
    let range = e.range()?;
    source.get(range).map(str::to_string)
}

/// Any serializable data as a template value.
pub fn to_value<T: serde::Serialize>(data: &T) -> Value {
    Value::from(minijinja::value::Serde(data))
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn site() -> Site {
        Site {
            location: Location {
                file: "p.yaml".into(),
                line: 10,
                col: 5,
            },
            quoted: false,
            path: "messages.page.ssml".into(),
        }
    }

    #[test]
    fn ssml_values_are_escaped() {
        let mut t = Templates::new();
        let name = t
            .add("m", "<speak>{{ s }}</speak>", site(), Escaping::Xml)
            .unwrap();
        let out = t
            .render(&name, &context! { s => "CPU > 90% & <b>rising</b>" }, "A")
            .unwrap();
        assert_eq!(
            out,
            "<speak>CPU &gt; 90% &amp; &lt;b&gt;rising&lt;/b&gt;</speak>"
        );
    }

    #[test]
    fn plain_text_is_not_escaped() {
        let mut t = Templates::new();
        let name = t.add("m", "{{ s }}", site(), Escaping::None).unwrap();
        let out = t.render(&name, &context! { s => "a & b" }, "A").unwrap();
        assert_eq!(out, "a & b");
    }

    #[test]
    fn undefined_variable_names_recipient_and_line() {
        let mut t = Templates::new();
        let name = t
            .add(
                "m",
                "<speak>\nHi {{ nope }}\n</speak>",
                site(),
                Escaping::Xml,
            )
            .unwrap();
        let d = t.render(&name, &context! {}, "Bob").unwrap_err();
        let loc = d.location.clone().unwrap();
        assert_eq!((loc.line, loc.col), (11, 5));
        assert_eq!(d.message, "for recipient `Bob`: `nope` is undefined");
    }

    #[test]
    fn runaway_template_runs_out_of_fuel() {
        let mut t = Templates::new();
        let name = t
            .add(
                "m",
                "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
                site(),
                Escaping::None,
            )
            .unwrap();
        let d = t.render(&name, &context! {}, "A").unwrap_err();
        assert!(d.message.contains("out of fuel"), "{}", d.message);
    }

    #[test]
    fn first_uses_are_whole_words() {
        assert_eq!(
            first_use("a {{ hostname }}\nb {{ host }}", "host"),
            Some((2, 5))
        );
        assert_eq!(first_use("{{ x }}", "y"), None);
    }

    #[test]
    fn syntax_error_is_reported_at_compile_time() {
        let mut t = Templates::new();
        let d = t
            .add("m", "Hello {{ name", site(), Escaping::None)
            .unwrap_err();
        assert!(
            d.message.starts_with("template syntax error"),
            "{}",
            d.message
        );
    }
}
