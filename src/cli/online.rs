//! `callbook validate --online`: the static checks, then what only the
//! account knows, read-only (`GET /fonenumbers/{caller_id}` and the login,
//! never anything that changes a setting or places a call).
//!
//! For each playbook: its `caller_id` is a FoneNumber of the account and is
//! active; for a page with SMS acks, the number can receive SMS; for a
//! page, its callbacks point at `--public-url`. Each problem is a
//! diagnostic at the playbook's `caller_id`, and the exit code is
//! `validate`'s (2 when any is an error). An account that cannot be
//! reached, or credentials it refuses, exit 3: nothing could be checked.
//! The published API has no listing of devices or voicemail boxes, so
//! `connect` ids are not checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Output;
use super::exit::{Exit, Failure};
use crate::diag::{Diagnostic, Location};
use crate::playbook::{self, Playbook};
use crate::provider::account::FoneNumberStatus;
use crate::provider::hooks::{HooksError, PublicUrl, problems};
use crate::provider::limiter::RateLimiter;
use crate::provider::{self, Client, Credentials};

/// How long one request may take (they answer at once, unlike calls).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What `validate --online` takes besides the playbooks.
pub(super) struct OnlineOptions<'a> {
    /// `--include-root`.
    pub include_root: Option<PathBuf>,
    /// `--base-url` / `FONESTORM_BASE_URL`.
    pub base_url: Option<&'a str>,
    /// `--public-url` / `CALLBOOK_PUBLIC_URL`.
    pub public_url: Option<&'a str>,
}

/// One FoneNumber at one provider: what is read once, however many
/// playbooks share it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    base_url: String,
    fonenumber: String,
}

/// A playbook that passed the static checks, and where its `caller_id` is.
struct Checked {
    playbook: Playbook,
    target: Target,
    at: Option<Location>,
}

/// Runs `validate --online` on `paths`.
pub(super) fn validate(
    paths: &[PathBuf],
    options: &OnlineOptions<'_>,
    out: &mut Output<'_>,
) -> Result<Exit, Failure> {
    let public = match options.public_url.map(PublicUrl::parse).transpose() {
        Ok(public) => public,
        Err(e) => {
            return Err(Failure::Invalid(vec![Diagnostic::error(
                None,
                e.to_string(),
            )]));
        }
    };
    let checked = static_checks(paths, options, out)?;
    let Some(credentials) = Credentials::from_env() else {
        return Err(Failure::Refused(
            "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD, to check online"
                .to_string(),
        ));
    };
    let mut rates: BTreeMap<Target, f64> = BTreeMap::new();
    for c in &checked {
        let rate = rates
            .entry(c.target.clone())
            .or_insert(c.playbook.provider.rate_limit);
        *rate = rate.min(c.playbook.provider.rate_limit);
    }
    let statuses = super::runtime()?.block_on(read_all(&rates, &credentials))?;
    let mut failed = 0;
    for c in &checked {
        let Some(status) = statuses.get(&c.target) else {
            continue;
        };
        let diagnostics = judge(c, status, public.as_ref());
        out.diagnostics(&diagnostics);
        if diagnostics.iter().any(Diagnostic::is_error) {
            failed += 1;
        } else {
            out.note(&format!(
                "{}: ok online ({})",
                c.playbook.path.display(),
                summary(c, public.as_ref())
            ));
        }
    }
    if failed > 0 {
        out.note(&super::have_errors(failed));
        return Ok(Exit::Invalid);
    }
    Ok(Exit::Success)
}

/// The static checks of `validate`, for every playbook; exit 2 (nothing
/// contacted) when any fails.
fn static_checks(
    paths: &[PathBuf],
    options: &OnlineOptions<'_>,
    out: &mut Output<'_>,
) -> Result<Vec<Checked>, Failure> {
    let load = playbook::LoadOptions {
        include_root: options.include_root.clone(),
    };
    let mut checked = Vec::new();
    let mut failed = 0;
    for path in paths {
        // A test file beside the playbooks is checked offline, as `validate` does.
        if crate::playtest::is_test_file(path) {
            if !super::validate_test_file(path, out) {
                failed += 1;
            }
            continue;
        }
        match playbook::load_with(path, out.sources, &load) {
            Ok(loaded) => {
                out.diagnostics(&loaded.warnings);
                let p = loaded.playbook;
                let base_url = options
                    .base_url
                    .map_or_else(|| p.provider.base_url.clone(), str::to_string);
                if let Err(e) = provider::check_base_url(&base_url) {
                    failed += 1;
                    out.diagnostics(&[Diagnostic::error(None, format!("base URL: {e}"))]);
                    continue;
                }
                let at = caller_id_location(path, out);
                checked.push(Checked {
                    target: Target {
                        base_url,
                        fonenumber: p.caller_id.clone(),
                    },
                    playbook: p,
                    at,
                });
            }
            Err(diagnostics) => {
                failed += 1;
                out.diagnostics(&diagnostics);
            }
        }
    }
    if failed > 0 {
        out.note(&format!(
            "{}; nothing was checked online",
            super::have_errors(failed)
        ));
        return Err(Failure::Invalid(Vec::new()));
    }
    Ok(checked)
}

/// Where the value of `caller_id` is in the playbook at `path`, as read.
fn caller_id_location(path: &Path, out: &Output<'_>) -> Option<Location> {
    let display: Arc<str> = path.display().to_string().into();
    let text = out.sources.text(&display)?;
    let (_, positions) = playbook::yaml::parse(text).ok()?;
    Some(positions.value("/caller_id").at(&display))
}

/// Reads every target once. A FoneNumber the account does not have is an
/// answer (checked per playbook); anything that keeps the account from
/// answering is a refusal (exit 3).
async fn read_all(
    rates: &BTreeMap<Target, f64>,
    credentials: &Credentials,
) -> Result<BTreeMap<Target, Result<FoneNumberStatus, HooksError>>, Failure> {
    let several_bases = rates
        .keys()
        .map(|t| &t.base_url)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let mut all = BTreeMap::new();
    for (target, rate) in rates {
        let base = provider::check_base_url(&target.base_url).map_err(|e| {
            Failure::Invalid(vec![Diagnostic::error(None, format!("base URL: {e}"))])
        })?;
        let client = Client::new(base, credentials.clone(), REQUEST_TIMEOUT)
            .map_err(|e| Failure::Refused(e.to_string()))?;
        let limiter = RateLimiter::new(*rate);
        let answer = client.fonenumber_status(&limiter, &target.fonenumber).await;
        if let Err(e) = &answer
            && !is_unknown_number(e)
        {
            let at = if several_bases {
                format!(" at {}", provider::without_userinfo(&target.base_url))
            } else {
                String::new()
            };
            return Err(Failure::Refused(format!(
                "cannot check `caller_id` {}{at} online: {e}",
                target.fonenumber
            )));
        }
        all.insert(target.clone(), answer);
    }
    Ok(all)
}

/// Whether the account answered that it has no such FoneNumber (or that
/// the number is not one it can show): 400, 403 or 404.
fn is_unknown_number(e: &HooksError) -> bool {
    matches!(
        e,
        HooksError::Status {
            status: 400 | 403 | 404,
            ..
        }
    )
}

/// The problems of one playbook, given what the account said about its caller id.
fn judge(
    c: &Checked,
    status: &Result<FoneNumberStatus, HooksError>,
    public: Option<&PublicUrl>,
) -> Vec<Diagnostic> {
    let fonenumber = &c.target.fonenumber;
    let error = |m: String| Diagnostic::error(c.at.clone(), m).at_path("caller_id");
    let warning = |m: String| Diagnostic::warning(c.at.clone(), m).at_path("caller_id");
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return vec![error(format!(
                "the account has no FoneNumber {fonenumber}: {e}"
            ))];
        }
    };
    let mut found = Vec::new();
    match status.is_active {
        Some(true) => {}
        Some(false) => found.push(error(format!(
            "{fonenumber} is not active on the account: calls from it would fail"
        ))),
        None => found.push(warning(format!(
            "the account does not say whether {fonenumber} is active (no `is_active`)"
        ))),
    }
    if c.playbook.escalation.is_none() {
        return found;
    }
    if !c.playbook.ack.sms.is_empty() {
        match status.sms_enabled {
            Some(true) => {}
            Some(false) => found.push(error(format!(
                "{fonenumber} cannot receive SMS (not enabled on the account), but `ack.sms` lets people acknowledge by SMS"
            ))),
            None => found.push(warning(format!(
                "the account does not say whether {fonenumber} can receive SMS (no `sms_enabled`), which `ack.sms` needs"
            ))),
        }
    }
    match (public, &status.callbacks) {
        (None, _) => found.push(warning(
            "give --public-url (or CALLBOOK_PUBLIC_URL) to check where this page's callbacks point"
                .to_string(),
        )),
        (Some(_), None) => found.push(warning(format!(
            "the account's answer does not show the callbacks of {fonenumber}"
        ))),
        (Some(public), Some(callbacks)) => {
            for problem in problems(fonenumber, callbacks, public) {
                found.push(error(problem));
            }
        }
    }
    found
}

/// What was checked, for the `ok online` line.
fn summary(c: &Checked, public: Option<&PublicUrl>) -> String {
    let mut parts = vec![format!("caller_id {} is active", c.target.fonenumber)];
    if c.playbook.escalation.is_some() {
        if !c.playbook.ack.sms.is_empty() {
            parts.push("receives SMS".to_string());
        }
        if let Some(public) = public {
            parts.push(format!("callbacks point at {public}"));
        }
    }
    parts.join(", ")
}
