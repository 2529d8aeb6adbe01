//! The `callbook serve` configuration file: read, checked against its JSON
//! Schema (`schema/serve.schema.json`), then for meaning, with every routed
//! playbook loaded and validated.
//!
//! It is checked like a playbook: every problem is listed, each at the
//! file, line and column it comes from, and unknown keys get a suggestion.
//! A configuration with any error is refused as a whole: `serve` never
//! starts (or reloads) with some routes working and others not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::diag::{Diagnostic, Location, Sources};
use crate::playbook::{self, Playbook, yaml};
use crate::provider::hooks::PublicUrl;
use crate::schema::{self, Definition};

/// The largest configuration file read: real ones are a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The most routes a configuration may name (also in the schema).
pub const MAX_ROUTES: usize = 256;
/// The longest route name (also in the schema).
pub const MAX_ROUTE_NAME: usize = 64;

/// A checked configuration, its playbooks loaded.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// How FoneStorm reaches `/fonestorm/*`, when given.
    pub public_url: Option<PublicUrl>,
    /// The journal's directory, resolved against the file's directory;
    /// `None`: the command line's default.
    pub state_dir: Option<PathBuf>,
    /// Route name -> its playbook.
    pub routes: BTreeMap<String, Arc<Route>>,
}

/// One webhook route and the playbook it runs.
#[derive(Debug)]
pub struct Route {
    /// The route's name, as in `/hooks/json/{name}`.
    pub name: String,
    /// The playbook file, as resolved against the configuration's directory.
    pub path: PathBuf,
    /// The checked playbook.
    pub playbook: Arc<Playbook>,
    /// The files it was loaded from (path, text; secret values hidden), which
    /// a page records so that it resumes from them, not from the disk.
    pub sources: Vec<(String, String)>,
}

/// A configuration with the warnings found while loading it.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// Problems that do not stop anything.
    pub warnings: Vec<Diagnostic>,
}

/// Whether `name` may name a route: letters, digits, `_` and `-`, starting
/// with a letter or digit, at most [`MAX_ROUTE_NAME`] characters (it is a
/// URL path segment and a metrics label).
pub fn valid_route_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && name.len() <= MAX_ROUTE_NAME
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads and checks the configuration at `path` and every playbook it routes.
///
/// Every file read is added to `sources`, so diagnostics can show their lines.
///
/// # Errors
/// Every problem found (errors and warnings) when there is at least one error.
pub fn load(path: &Path, sources: &mut Sources) -> Result<LoadedConfig, Vec<Diagnostic>> {
    let display: Arc<str> = path.display().to_string().into();
    let text = read(path, &display)?;
    sources.insert(display.clone(), text.clone());
    let (document, positions) =
        yaml::parse(&text).map_err(|e| vec![e.into_diagnostic(&display)])?;
    let at = |pointer: &str, key: bool| -> Location {
        let pos = if key {
            positions.key(pointer)
        } else {
            positions.value(pointer)
        };
        pos.at(&display)
    };
    let mut diags = Vec::new();
    let violations = schema::check(&document, Definition::Serve).map_err(|e| {
        vec![Diagnostic::error(
            None,
            format!("internal schema error: {e}"),
        )]
    })?;
    // The meaning checks go on after schema errors, on the parts the schema
    // let through, so that one pass lists every problem.
    let mut refused: Vec<String> = Vec::new();
    for v in violations {
        let message = if v.at_key && v.pointer.starts_with("/routes/") {
            route_name_message(&v.pointer)
        } else {
            v.message
        };
        diags.push(
            Diagnostic::error(Some(at(&v.pointer, v.at_key)), message)
                .at_path(playbook::display_path(&v.pointer)),
        );
        refused.push(v.pointer);
    }
    let schema_ok = |pointer: &str| {
        !refused
            .iter()
            .any(|r| r == pointer || r.is_empty() || pointer.starts_with(&format!("{r}/")))
    };
    let str_at = |key: &str| {
        document
            .get(key)
            .filter(|_| schema_ok(&format!("/{key}")))
            .and_then(Value::as_str)
    };
    let listen = match str_at("listen").map(str::parse::<SocketAddr>) {
        Some(Ok(addr)) => Some(addr),
        None => None,
        Some(Err(_)) => {
            diags.push(
                Diagnostic::error(
                    Some(at("/listen", false)),
                    format!(
                        "{} is not an address and port such as `0.0.0.0:8080` or `[::1]:8080`",
                        schema::describe(document.get("listen").unwrap_or(&Value::Null))
                    ),
                )
                .at_path("listen"),
            );
            None
        }
    };
    let public_url = match str_at("public_url").map(PublicUrl::parse) {
        None if document.get("public_url").is_some() => None,
        None => {
            diags.push(Diagnostic::warning(
                Some(at("", false)),
                "no `public_url`: callbook cannot tell FoneStorm's callbacks where to go \
                 (`callbook hooks install --public-url`) nor check them",
            ));
            None
        }
        Some(Ok(url)) => Some(url),
        Some(Err(e)) => {
            let message = e.to_string();
            let message = message.strip_prefix("--public-url: ").unwrap_or(&message);
            diags.push(
                Diagnostic::error(Some(at("/public_url", false)), message.to_string())
                    .at_path("public_url"),
            );
            None
        }
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let state_dir = str_at("state_dir").map(|d| base.join(d));
    let mut routes = BTreeMap::new();
    if let Some(map) = document.get("routes").and_then(Value::as_object) {
        for (name, file) in map {
            let pointer = format!("/routes/{}", crate::diag::escape_segment(name));
            let Some(file) = file.as_str().filter(|_| schema_ok(&pointer)) else {
                continue;
            };
            let playbook_path = base.join(file);
            match load_route(name, &playbook_path, sources) {
                Ok((route, warnings)) => {
                    diags.extend(warnings);
                    routes.insert(name.clone(), Arc::new(route));
                }
                Err(errors) if errors.len() == 1 && errors[0].location.is_none() => {
                    // The file cannot be read: say so where the route names it.
                    diags.push(
                        Diagnostic::error(
                            Some(at(&pointer, false)),
                            format!("route `{name}`: {}", errors[0].message),
                        )
                        .at_path(format!("routes.{name}")),
                    );
                }
                Err(mut errors) => {
                    diags.push(
                        Diagnostic::error(
                            Some(at(&pointer, false)),
                            format!(
                                "route `{name}`: playbook `{}` is not valid (below)",
                                playbook_path.display()
                            ),
                        )
                        .at_path(format!("routes.{name}")),
                    );
                    diags.append(&mut errors);
                }
            }
        }
    }
    match listen {
        Some(listen) if !diags.iter().any(Diagnostic::is_error) => Ok(LoadedConfig {
            config: Config {
                path: path.to_path_buf(),
                listen,
                public_url,
                state_dir,
                routes,
            },
            warnings: diags,
        }),
        _ => Err(diags),
    }
}

/// Loads one routed playbook with its own sources (what its pages record),
/// and copies those texts into `sources` for diagnostics.
fn load_route(
    name: &str,
    path: &Path,
    sources: &mut Sources,
) -> Result<(Route, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut own = Sources::default();
    let loaded = playbook::load(path, &mut own);
    for (file, text) in own.redacted_texts() {
        sources.insert(file.into(), text.into());
    }
    let loaded = loaded?;
    Ok((
        Route {
            name: name.to_string(),
            path: path.to_path_buf(),
            playbook: Arc::new(loaded.playbook),
            sources: own.redacted_texts(),
        },
        loaded.warnings,
    ))
}

/// The message for a route name the schema refused.
fn route_name_message(pointer: &str) -> String {
    let name = pointer
        .trim_start_matches("/routes/")
        .replace("~1", "/")
        .replace("~0", "~");
    let shown = crate::escape::escape_controls(&name);
    format!(
        "route name `{shown}` is not allowed: use letters, digits, `_` and `-` (starting with a \
         letter or digit), at most {MAX_ROUTE_NAME} characters"
    )
}

/// Reads the file within [`MAX_CONFIG_BYTES`], as UTF-8.
fn read(path: &Path, display: &Arc<str>) -> Result<Arc<str>, Vec<Diagnostic>> {
    let bytes = playbook::read_bounded(path, MAX_CONFIG_BYTES).map_err(|e| {
        vec![match e {
            playbook::ReadError::Unreadable(reason) => {
                Diagnostic::error(None, format!("cannot read `{display}`: {reason}"))
            }
            playbook::ReadError::TooLarge(_) => Diagnostic::error(
                Some(Location {
                    file: display.clone(),
                    line: 1,
                    col: 1,
                }),
                format!(
                    "file is too large: the limit is {} KiB",
                    MAX_CONFIG_BYTES / 1024
                ),
            ),
        }]
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).into()),
        Err(_) => Err(vec![Diagnostic::error(
            Some(Location {
                file: display.clone(),
                line: 1,
                col: 1,
            }),
            "file is not valid UTF-8",
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_route_name;

    #[test]
    fn route_names() {
        for ok in [
            "disk",
            "a",
            "critical-page",
            "db_down",
            "A1",
            &"x".repeat(64),
        ] {
            assert!(valid_route_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "_x",
            "a/b",
            "a b",
            "a.b",
            "é",
            "a%2F",
            &"x".repeat(65),
        ] {
            assert!(!valid_route_name(bad), "{bad}");
        }
    }
}
