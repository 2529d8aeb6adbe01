//! What a page takes from the command line and the environment besides a
//! broadcast's options: the callback secret, where to listen, the public
//! URL, and the files it was planned from (recorded as its sources).

use std::path::Path;

use super::args::RunArgs;
use super::exit::Failure;
use crate::diag::{Diagnostic, Sources};
use crate::engine::RunOptions;
use crate::engine::recorded::RecordedSources;
use crate::listener::CallbackSecret;
use crate::plan::{RunInput, Selection};
use crate::playbook::Playbook;
use crate::provider::hooks::PublicUrl;
use crate::store::sqlite::SqliteStore;
use crate::store::{RunQuery, Store as _};

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
        if args.public_url.is_some() {
            tracing::warn!(
                "--public-url is for pages: a broadcast does not check where its callbacks point"
            );
        }
        // With `--listen` a broadcast records how its calls ended.
        return Ok(match args.listen {
            Some(listen) => RunOptions {
                callback_secret: CallbackSecret::from_env().transpose(),
                listen: Some(listen),
                ..RunOptions::default()
            },
            None => RunOptions::default(),
        });
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

/// A page to resume, loaded from what it recorded when it started.
pub(super) struct RecordedPage {
    /// The playbook, loaded from the recorded texts.
    pub loaded: crate::playbook::Loaded,
    /// The recorded variables, input and selection (clock and id come from the run).
    pub input: RunInput,
    /// The run to resume.
    pub run_id: String,
}

/// For `run --resume` of a page: the playbook and input it recorded when it
/// started, so that it resumes exactly as it started even when its files
/// changed or were deleted since. `None` when the run to resume is not a
/// recorded page (a broadcast, or no such run: the engine says which).
///
/// # Errors
/// [`Failure::Invalid`] when the recorded sources cannot be read or loaded.
pub(super) fn recorded_page(
    args: &RunArgs,
    sources: &mut Sources,
) -> Result<Option<RecordedPage>, Failure> {
    let Some(which) = &args.resume else {
        return Ok(None);
    };
    let store = SqliteStore::read_only(super::state_dir(args.state_dir.as_deref())?);
    let query = match which {
        Some(id) => RunQuery::Id(id.clone()),
        None => RunQuery::LatestUnfinishedFrom(args.playbook.display().to_string()),
    };
    let found = super::runtime()?.block_on(async {
        let Some(run) = store.find_run(query).await? else {
            return Ok(None);
        };
        Ok(store
            .page_sources(&run.id)
            .await?
            .map(|recorded| (run, recorded)))
    });
    let Some((run, recorded)) = found.map_err(Failure::Store)? else {
        return Ok(None);
    };
    // `--resume RUN_ID` with another playbook than the page's is a mistake.
    if run.path != args.playbook.display().to_string()
        && let Ok(other) = crate::playbook::load(&args.playbook, &mut Sources::default())
        && other.playbook.name != run.playbook
    {
        return Err(Failure::Engine(crate::engine::EngineError::OtherPlaybook {
            run: run.id,
            belongs: run.playbook,
            playbook: other.playbook.name,
        }));
    }
    let invalid = |why: String| {
        Failure::Invalid(vec![Diagnostic::error(
            None,
            format!(
                "the recorded sources of page `{}` {why}; nothing was called",
                run.id
            ),
        )])
    };
    let recorded =
        RecordedSources::parse(&recorded).map_err(|e| invalid(format!("cannot be read: {e}")))?;
    let loaded = crate::playbook::load_recorded(Path::new(&run.path), &recorded.files, sources)
        .map_err(|mut diags| {
            diags.insert(
                0,
                Diagnostic::error(
                    None,
                    format!(
                        "page `{}` cannot be planned again from its recorded sources; nothing was called",
                        run.id
                    ),
                ),
            );
            Failure::Invalid(diags)
        })?;
    let given = !args.vars.is_empty() || args.vars_file.is_some() || args.input.is_some();
    if given {
        tracing::warn!(
            "`--var`, `--vars-file` and `--input` are not used: page `{}` resumes with the variables and input it recorded",
            run.id
        );
    }
    let selection = match recorded.selection() {
        Some(s) => s,
        // Recorded before the selection was: as given now (the plan is checked).
        None => Selection {
            tags: args.tags.clone(),
            names: args.recipients.clone(),
        },
    };
    Ok(Some(RecordedPage {
        loaded,
        input: RunInput {
            run_id: run.id.clone(),
            now: run.now.0,
            dry_run: false,
            vars: recorded.vars,
            input: recorded.input,
            selection,
        },
        run_id: run.id,
    }))
}
