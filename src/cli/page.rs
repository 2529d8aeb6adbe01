//! What a page takes from the command line and the environment besides a
//! broadcast's options: the callback secret, where to listen, the public
//! URL, and the files it was planned from (recorded as its sources).

use super::args::RunArgs;
use super::exit::Failure;
use crate::diag::{Diagnostic, Sources};
use crate::engine::RunOptions;
use crate::listener::CallbackSecret;
use crate::playbook::Playbook;
use crate::provider::hooks::PublicUrl;

/// Where a page listens when neither `--listen` nor `CALLBOOK_LISTEN` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The page's part of the engine's options (a broadcast gets none of it).
///
/// # Errors
/// [`Failure::Invalid`] for a `--public-url` that is not a usable https URL.
pub(super) fn page_options(
    args: &RunArgs,
    playbook: &Playbook,
    sources: &Sources,
) -> Result<RunOptions, Failure> {
    if playbook.escalation.is_none() {
        if args.listen.is_some() || args.public_url.is_some() {
            tracing::warn!(
                "--listen and --public-url are for pages: a broadcast does not listen for callbacks in this version"
            );
        }
        return Ok(RunOptions::default());
    }
    let public_url = args
        .public_url
        .as_deref()
        .map(PublicUrl::parse)
        .transpose()
        .map_err(|e| {
            Failure::Invalid(vec![Diagnostic::error(None, format!("--public-url: {e}"))])
        })?;
    let listen = args.listen.or_else(|| DEFAULT_LISTEN.parse().ok());
    Ok(RunOptions {
        callback_secret: CallbackSecret::from_env().transpose(),
        listen,
        public_url,
        sources: sources.redacted_texts(),
        ..RunOptions::default()
    })
}
