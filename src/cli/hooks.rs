//! `callbook hooks show|install|remove`: where FoneStorm sends the callbacks
//! of each caller id of the playbooks, pointing them at the listener, and
//! clearing them again.
//!
//! FoneStorm keeps one callback per event and FoneNumber, so installing
//! ours would silently cut off whatever else used it: `install` reads every
//! caller id's settings first and changes nothing if one points elsewhere,
//! unless `--replace`. `remove` clears only what points at callbook. Both
//! ask on a terminal unless `--yes`. The callback password comes from
//! `CALLBOOK_CALLBACK_SECRET` and is never printed.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use super::args::{HooksAction, HooksOptions};
use super::exit::{Exit, Failure};
use super::{Output, print_stdout, runtime};
use crate::diag::Diagnostic;
use crate::listener::{CALLBACK_SECRET_ENV, CallbackSecret};
use crate::playbook;
use crate::provider::hooks::{Callbacks, Event, HooksError, PublicUrl, foreign};
use crate::provider::limiter::RateLimiter;
use crate::provider::{self, Client, Credentials};

/// How long one settings request may take (they answer at once, unlike calls).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One FoneNumber at one provider: what the commands work on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    base_url: String,
    fonenumber: String,
}

/// Everything checked before anything is contacted.
struct Checked {
    targets: BTreeMap<Target, f64>,
    /// `CALLBOOK_CALLBACK_SECRET` when set: hidden from every message, in
    /// case the provider repeats it in an answer.
    secret: Option<CallbackSecret>,
    public: Option<PublicUrl>,
    credentials: Credentials,
    several_bases: bool,
}

/// Runs one `hooks` subcommand.
pub(super) fn hooks(action: &HooksAction, out: &mut Output<'_>) -> Result<Exit, Failure> {
    let options = match action {
        HooksAction::Show(o)
        | HooksAction::Install { options: o, .. }
        | HooksAction::Remove { options: o, .. } => o,
    };
    let checked = check(options, matches!(action, HooksAction::Install { .. }), out)?;
    let secret = match action {
        HooksAction::Install { .. } => match CallbackSecret::from_env() {
            Ok(Some(secret)) => Some(secret),
            Ok(None) => {
                return Err(Failure::Refused(format!(
                    "`{CALLBACK_SECRET_ENV}` is not set: FoneStorm must send a password with every callback; nothing was changed"
                )));
            }
            Err(e) => return Err(Failure::Refused(format!("{e}; nothing was changed"))),
        },
        _ => None,
    };
    let clients = clients(&checked)?;
    let exit = runtime()?.block_on(async {
        match action {
            HooksAction::Show(_) => show(&checked, &clients, out).await,
            HooksAction::Install { replace, yes, .. } => match (&checked.public, &secret) {
                (Some(public), Some(secret)) => {
                    install(&checked, &clients, public, secret, *replace, *yes, out).await
                }
                _ => Exit::Refused,
            },
            HooksAction::Remove { yes, .. } => remove(&checked, &clients, *yes, out).await,
        }
    });
    Ok(exit)
}

/// Loads the playbooks and checks the options (a public URL is required
/// when `needs_public`); exit 2 for anything wrong with them, 3 for missing
/// credentials.
fn check(
    options: &HooksOptions,
    needs_public: bool,
    out: &mut Output<'_>,
) -> Result<Checked, Failure> {
    let load = playbook::LoadOptions {
        include_root: options.include_root.clone(),
    };
    let mut errors = Vec::new();
    let mut targets: BTreeMap<Target, f64> = BTreeMap::new();
    for path in &options.playbooks {
        match playbook::load_with(path, out.sources, &load) {
            Ok(loaded) => {
                out.diagnostics(&loaded.warnings);
                let p = loaded.playbook;
                let base_url = options
                    .base_url
                    .clone()
                    .unwrap_or(p.provider.base_url.clone());
                let rate = options.rate_limit.unwrap_or(p.provider.rate_limit);
                let target = Target {
                    base_url,
                    fonenumber: p.caller_id.clone(),
                };
                let slot = targets.entry(target).or_insert(rate);
                *slot = slot.min(rate);
            }
            Err(mut d) => errors.append(&mut d),
        }
    }
    for target in targets.keys() {
        if let Err(e) = provider::check_base_url(&target.base_url) {
            errors.push(Diagnostic::error(None, format!("base URL: {e}")));
        }
    }
    let public = match options
        .public_url
        .as_deref()
        .map(PublicUrl::parse)
        .transpose()
    {
        Ok(None) if needs_public => {
            errors.push(Diagnostic::error(
                None,
                "`hooks install` needs --public-url (or CALLBOOK_PUBLIC_URL): the https URL at which FoneStorm reaches the listener".to_string(),
            ));
            None
        }
        Ok(public) => public,
        Err(e) => {
            errors.push(Diagnostic::error(None, e.to_string()));
            None
        }
    };
    if !errors.is_empty() {
        return Err(Failure::Invalid(errors));
    }
    let Some(credentials) = Credentials::from_env() else {
        return Err(Failure::Refused(
            "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD; nothing was changed"
                .to_string(),
        ));
    };
    let bases: std::collections::BTreeSet<_> = targets.keys().map(|t| &t.base_url).collect();
    Ok(Checked {
        secret: CallbackSecret::from_env().ok().flatten(),
        several_bases: bases.len() > 1,
        targets,
        public,
        credentials,
    })
}

/// One client and rate limiter per target.
fn clients(checked: &Checked) -> Result<Vec<(Target, Client, RateLimiter)>, Failure> {
    let mut all = Vec::new();
    for (target, rate) in &checked.targets {
        let base = provider::check_base_url(&target.base_url).map_err(|e| {
            Failure::Invalid(vec![Diagnostic::error(None, format!("base URL: {e}"))])
        })?;
        let client = Client::new(base, checked.credentials.clone(), REQUEST_TIMEOUT)
            .map_err(|e| Failure::Refused(format!("{e}; nothing was changed")))?;
        all.push((target.clone(), client, RateLimiter::new(*rate)));
    }
    Ok(all)
}

/// An error as shown: without the callback password, should the provider
/// have repeated it.
fn said(e: &HooksError, checked: &Checked) -> String {
    let text = e.to_string();
    match &checked.secret {
        Some(secret) => text.replace(secret.expose(), "***"),
        None => text,
    }
}

/// How a target is named in messages and table titles.
fn name(target: &Target, checked: &Checked) -> String {
    if checked.several_bases {
        format!(
            "{} at {}",
            target.fonenumber,
            provider::without_userinfo(&target.base_url)
        )
    } else {
        target.fonenumber.clone()
    }
}

/// Reads every target's callbacks; `None` (after saying why) if one cannot be read.
async fn read_all(
    checked: &Checked,
    clients: &[(Target, Client, RateLimiter)],
    out: &Output<'_>,
) -> Option<Vec<Callbacks>> {
    let mut all = Vec::new();
    for (target, client, limiter) in clients {
        match client.callbacks(limiter, &target.fonenumber).await {
            Ok(c) => all.push(c),
            Err(e) => {
                out.error(format!(
                    "cannot read the callbacks of {}: {}; nothing was changed",
                    name(target, checked),
                    said(&e, checked)
                ));
                return None;
            }
        }
    }
    Some(all)
}

async fn show(
    checked: &Checked,
    clients: &[(Target, Client, RateLimiter)],
    out: &Output<'_>,
) -> Exit {
    let mut exit = Exit::Success;
    let mut text = String::new();
    for (target, client, limiter) in clients {
        match client.callbacks(limiter, &target.fonenumber).await {
            Ok(callbacks) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&table(
                    &name(target, checked),
                    &callbacks,
                    checked.public.as_ref(),
                ));
            }
            Err(e) => {
                out.error(format!(
                    "cannot read the callbacks of {}: {}",
                    name(target, checked),
                    said(&e, checked)
                ));
                exit = Exit::Refused;
            }
        }
    }
    print_stdout(&text);
    exit
}

/// One caller id's callbacks as a table: EVENT, URL, METHOD, OURS.
fn table(title: &str, callbacks: &Callbacks, public: Option<&PublicUrl>) -> String {
    let mut rows = vec![[
        "EVENT".to_string(),
        "URL".to_string(),
        "METHOD".to_string(),
        "OURS".to_string(),
    ]];
    for event in Event::ALL {
        let s = callbacks.get(event);
        let method = if s.method.is_empty() || !s.is_set() {
            "-".to_string()
        } else {
            crate::escape::escape_controls(&s.method.chars().take(10).collect::<String>())
                .into_owned()
        };
        let ours = if s.is_ours(event, public) {
            "yes"
        } else {
            "no"
        };
        rows.push([
            event.name().to_string(),
            s.shown(),
            method,
            ours.to_string(),
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = format!("{title}\n");
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

async fn install(
    checked: &Checked,
    clients: &[(Target, Client, RateLimiter)],
    public: &PublicUrl,
    secret: &CallbackSecret,
    replace: bool,
    yes: bool,
    out: &Output<'_>,
) -> Exit {
    let Some(current) = read_all(checked, clients, out).await else {
        return Exit::Refused;
    };
    let mut elsewhere = Vec::new();
    for ((target, _, _), callbacks) in clients.iter().zip(&current) {
        for event in foreign(callbacks, public) {
            elsewhere.push(format!(
                "`{event}` of {} points at {}",
                name(target, checked),
                callbacks.get(event).shown()
            ));
        }
    }
    if !elsewhere.is_empty() {
        if !replace {
            for what in &elsewhere {
                out.error(format!("{what}, not at callbook"));
            }
            out.note("nothing was changed: FoneStorm keeps one callback per event; use --replace to replace these");
            return Exit::Refused;
        }
        for what in &elsewhere {
            out.diagnostics(&[Diagnostic::warning(None, format!("{what}: replacing it"))]);
        }
    }
    let numbers: Vec<String> = clients.iter().map(|(t, _, _)| name(t, checked)).collect();
    if !yes
        && !confirm(&format!(
            "Point the callbacks of {} at {public}?",
            numbers.join(", ")
        ))
    {
        out.error("not confirmed; nothing was changed".to_string());
        return Exit::Refused;
    }
    let mut done = 0;
    for (target, client, limiter) in clients {
        for event in Event::ALL {
            if let Err(e) = client
                .install(limiter, &target.fonenumber, event, public, secret)
                .await
            {
                out.error(format!(
                    "cannot set `{event}` of {}: {}",
                    name(target, checked),
                    said(&e, checked)
                ));
                out.note(&format!(
                    "{done} of {} callbacks were set; run the command again",
                    clients.len() * Event::ALL.len()
                ));
                return Exit::Refused;
            }
            done += 1;
            out.note(&format!(
                "{}: `{event}` → {}",
                name(target, checked),
                public.endpoint(event)
            ));
        }
    }
    read_back(checked, clients, public, out).await
}

/// Reads the callbacks again after `install` set them: FoneStorm replaces a
/// callback without asking, so another install running at the same time
/// (another deployment) may have replaced ours between our read and our
/// writes, and only a second read shows it. An event shown as unset is not
/// counted (the provider may show a change late); one pointing elsewhere is.
async fn read_back(
    checked: &Checked,
    clients: &[(Target, Client, RateLimiter)],
    public: &PublicUrl,
    out: &Output<'_>,
) -> Exit {
    let mut exit = Exit::Success;
    for (target, client, limiter) in clients {
        let callbacks = match client.callbacks(limiter, &target.fonenumber).await {
            Ok(c) => c,
            Err(e) => {
                out.error(format!(
                    "the callbacks of {} were set but cannot be read back: {}",
                    name(target, checked),
                    said(&e, checked)
                ));
                exit = Exit::Refused;
                continue;
            }
        };
        for event in foreign(&callbacks, public) {
            out.error(format!(
                "`{event}` of {} points at {} right after it was set: another install may have replaced it",
                name(target, checked),
                callbacks.get(event).shown()
            ));
            exit = Exit::Refused;
        }
    }
    if exit != Exit::Success {
        out.note("check with `callbook hooks show` before a page relies on these callbacks");
    }
    exit
}

async fn remove(
    checked: &Checked,
    clients: &[(Target, Client, RateLimiter)],
    yes: bool,
    out: &Output<'_>,
) -> Exit {
    let Some(current) = read_all(checked, clients, out).await else {
        return Exit::Refused;
    };
    let public = checked.public.as_ref();
    let mut ours = Vec::new();
    for ((target, client, limiter), callbacks) in clients.iter().zip(&current) {
        for event in Event::ALL {
            let s = callbacks.get(event);
            if s.is_ours(event, public) {
                ours.push((target, client, limiter, event));
            } else if s.is_set() {
                out.note(&format!(
                    "`{event}` of {} points at {}, not at callbook: left alone",
                    name(target, checked),
                    s.shown()
                ));
            }
        }
    }
    if ours.is_empty() {
        out.note("no callback points at callbook; nothing was changed");
        return Exit::Success;
    }
    if !yes
        && !confirm(&format!(
            "Clear {} callbacks that point at callbook?",
            ours.len()
        ))
    {
        out.error("not confirmed; nothing was changed".to_string());
        return Exit::Refused;
    }
    for (done, (target, client, limiter, event)) in ours.iter().enumerate() {
        if let Err(e) = client.clear(limiter, &target.fonenumber, *event).await {
            out.error(format!(
                "cannot clear `{event}` of {}: {}",
                name(target, checked),
                said(&e, checked)
            ));
            out.note(&format!(
                "{done} of {} callbacks were cleared; run the command again",
                ours.len()
            ));
            return Exit::Refused;
        }
        out.note(&format!("{}: `{event}` cleared", name(target, checked)));
    }
    Exit::Success
}

/// Asks on a terminal; without one (cron, CI) it never asks and goes on,
/// as `run` does.
fn confirm(question: &str) -> bool {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}
