//! `callbook serve`: checks the configuration and the environment once,
//! takes the state directory's serve lock, then runs the HTTP service and
//! the pager until SIGTERM or SIGINT; SIGHUP reloads the configuration.
//!
//! Everything that can refuse the start (an invalid configuration or
//! playbook, a missing token, secret or credentials, another `serve` on the
//! state directory, an unusable journal or address) is checked before the
//! first request is taken.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::args::ServeArgs;
use super::exit::{Exit, Failure};
use super::{Output, runtime, state_dir};
use crate::diag::{Printer, Sources};
use crate::listener::{self, CallbackSecret, Limits};
use crate::provider::Credentials;
use crate::serve::Pages;
use crate::serve::config::{self, Config};
use crate::serve::http::{self, Routes, Service};
use crate::serve::metrics::Metrics;
use crate::serve::ready::Readiness;
use crate::serve::token::{WEBHOOK_TOKEN_ENV, WebhookToken};
use crate::store::StoreError;

/// The serve lock's file, in the state directory (not a run lock: a cron
/// `run` of a routed playbook may use the same journal).
pub const LOCK_FILE: &str = "serve.lock";

/// Runs `callbook serve`.
pub(super) fn serve(args: &ServeArgs, out: &mut Output<'_>) -> Result<Exit, Failure> {
    let loaded = config::load(&args.config, out.sources).map_err(Failure::Invalid)?;
    out.diagnostics(&loaded.warnings);
    let config = loaded.config;
    if args.check {
        out.note(&format!(
            "{}: ok ({})",
            args.config.display(),
            super::count(config.routes.len(), "route")
        ));
        return Ok(Exit::Success);
    }
    let token = webhook_token(args, &config)?;
    let secret = match CallbackSecret::from_env() {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return Err(Failure::Refused(format!(
                "no `{}`: FoneStorm's callbacks could not be checked; set it (and `callbook hooks install`)",
                listener::CALLBACK_SECRET_ENV
            )));
        }
        Err(e) => return Err(Failure::Refused(e.to_string())),
    };
    let Some(credentials) = Credentials::from_env() else {
        return Err(Failure::Refused(
            "no FoneStorm credentials: set FONESTORM_TOKEN, or FONESTORM_USERNAME and FONESTORM_PASSWORD"
                .to_string(),
        ));
    };
    let dir = match &config.state_dir {
        Some(dir) => dir.clone(),
        None => state_dir(args.state_dir.as_deref())?,
    };
    crate::store::sqlite::journal::create_private_dir(&dir).map_err(Failure::Store)?;
    let _lock = ServeLock::acquire(&dir)?;
    let start = Start {
        args,
        config,
        token,
        secret,
        credentials,
        state_dir: dir,
    };
    runtime()?.block_on(start.run())
}

/// The webhook token, or why `serve` refuses to start without one.
fn webhook_token(args: &ServeArgs, config: &Config) -> Result<Option<WebhookToken>, Failure> {
    match WebhookToken::from_env().map_err(Failure::Refused)? {
        Some(token) => {
            if args.insecure_no_auth {
                tracing::warn!(
                    "--insecure-no-auth is ignored: `{WEBHOOK_TOKEN_ENV}` is set, and webhooks must send it"
                );
            }
            Ok(Some(token))
        }
        None if !args.insecure_no_auth => Err(Failure::Refused(format!(
            "no `{WEBHOOK_TOKEN_ENV}`: alert sources must send it as `Authorization: Bearer`; \
             set it (at least 16 characters), or give --insecure-no-auth to listen on loopback only"
        ))),
        None if !config.listen.ip().is_loopback() => Err(Failure::Refused(format!(
            "--insecure-no-auth only works on a loopback address, not `{}`: set `{WEBHOOK_TOKEN_ENV}`",
            config.listen
        ))),
        None => {
            tracing::warn!(
                "webhooks need no token (--insecure-no-auth): anyone on this machine can start pages"
            );
            Ok(None)
        }
    }
}

/// Checked values the service starts from.
struct Start<'a> {
    args: &'a ServeArgs,
    config: Config,
    token: Option<WebhookToken>,
    secret: CallbackSecret,
    credentials: Credentials,
    state_dir: PathBuf,
}

impl Start<'_> {
    /// Serves until SIGTERM or SIGINT, then drains within `--drain-timeout`.
    async fn run(self) -> Result<Exit, Failure> {
        let mut signals = Signals::new();
        let store = Arc::new(crate::store::sqlite::SqliteStore::writable(
            self.state_dir.clone(),
        ));
        crate::store::Store::ready(store.as_ref())
            .await
            .map_err(Failure::Store)?;
        let metrics = Arc::new(Metrics::new());
        let pager = Arc::new(
            pager::build(store, &self, self.credentials.clone(), metrics.clone())
                .map_err(Failure::Engine)?,
        );
        let ready = Arc::new(Readiness::new(self.state_dir.clone()));
        let limits = Limits::default();
        let service = Arc::new(Service::new(
            pager.clone(),
            self.token.clone(),
            metrics,
            ready.clone(),
            limits.body_timeout,
        ));
        service.set_routes(routes_of(&self.config));
        let bound = listener::bind(self.config.listen).await.map_err(|e| {
            Failure::Refused(format!(
                "cannot listen on `{}`: {}",
                self.config.listen,
                crate::playbook::io_reason(&e)
            ))
        })?;
        let addr = bound.local_addr();
        let callbacks = listener::callback_router(self.secret.clone(), pager.sink(), &limits);
        let app = http::router(service.clone(), callbacks);
        let resumed = pager.resume_going().await.map_err(Failure::Engine)?;
        if resumed > 0 {
            tracing::info!("resumed {resumed} page(s) going when serve last stopped");
        }
        let stop = CancellationToken::new();
        let watcher = {
            let ready = ready.clone();
            let stop = stop.clone();
            tokio::spawn(async move { ready.watch(stop).await })
        };
        ready.probe().await;
        let drain = self.args.drain_timeout;
        // Requests in flight get what the pages leave of the drain time.
        let grace = drain / 4;
        let server = tokio::spawn(bound.with_grace(grace).serve_router(app, stop.clone()));
        tracing::info!(
            "serving on {addr}: {} route(s), journal in `{}`",
            service.routes().len(),
            self.state_dir.display()
        );
        while let Signal::Hangup = signals.next().await {
            self.reload(&service);
        }
        let started = Instant::now();
        tracing::info!(
            "stopping: no new requests; draining within {}",
            humantime::format_duration(drain)
        );
        ready.start_draining();
        // A second signal while draining: exit at once.
        tokio::spawn(async move {
            signals.until_stop().await;
            eprintln!("interrupted again: exiting now; pages resume at the next start");
            std::process::exit(Exit::Interrupted as i32);
        });
        let for_pages = drain
            .saturating_sub(grace)
            .saturating_sub(Duration::from_millis(500));
        pager.shutdown(for_pages).await;
        stop.cancel();
        let left = drain.saturating_sub(started.elapsed());
        if tokio::time::timeout(left, server).await.is_err() {
            tracing::warn!("requests still in flight after the drain timeout were cut off");
        }
        watcher.abort();
        tracing::info!("stopped; pages still going resume at the next start");
        Ok(Exit::Success)
    }

    /// SIGHUP: loads the configuration again; keeps the old one when
    /// anything is invalid. Pages going keep the playbook they started with.
    fn reload<P: Pages>(&self, service: &Service<P>) {
        let mut sources = Sources::default();
        match config::load(&self.args.config, &mut sources) {
            Ok(loaded) => {
                let config = loaded.config;
                if config.listen != self.config.listen {
                    tracing::warn!(
                        "`listen` changed to `{}`: it takes effect at the next start",
                        config.listen
                    );
                }
                if config.state_dir.is_some() && config.state_dir != self.config.state_dir {
                    tracing::warn!("`state_dir` changed: it takes effect at the next start");
                }
                service.set_routes(routes_of(&config));
                tracing::info!(
                    "reloaded `{}`: {} route(s)",
                    self.args.config.display(),
                    config.routes.len()
                );
            }
            Err(diagnostics) => {
                let printer = Printer::new(&sources, false);
                let why: String = diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| printer.render(d))
                    .collect();
                tracing::error!(
                    "reload refused, keeping the previous configuration and playbooks:\n{}",
                    why.trim_end()
                );
            }
        }
    }
}

fn routes_of(config: &Config) -> Routes {
    config
        .routes
        .iter()
        .map(|(name, route)| (name.clone(), route.clone()))
        .collect()
}

/// What a signal asks of the service.
enum Signal {
    Hangup,
    Stop,
}

/// SIGHUP, SIGTERM and SIGINT, registered before anything is served.
struct Signals {
    hangup: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            hangup: signal(SignalKind::hangup()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            () = next_of(&mut self.hangup) => Signal::Hangup,
            () = next_of(&mut self.terminate) => Signal::Stop,
            () = next_of(&mut self.interrupt) => Signal::Stop,
        }
    }

    async fn until_stop(mut self) {
        while let Signal::Hangup = self.next().await {}
    }
}

/// The next delivery of a signal; never, if it could not be registered.
async fn next_of(signal: &mut Option<tokio::signal::unix::Signal>) {
    let delivered = match signal {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !delivered {
        std::future::pending::<()>().await;
    }
}

/// One `serve` per state directory: an OS file lock on [`LOCK_FILE`],
/// released by the kernel however the process ends.
struct ServeLock {
    _file: File,
}

impl ServeLock {
    fn acquire(state_dir: &Path) -> Result<ServeLock, Failure> {
        let path = state_dir.join(LOCK_FILE);
        let io = |e: std::io::Error| {
            Failure::Store(StoreError::Io {
                what: "serve lock",
                path: path.clone(),
                reason: crate::playbook::io_reason(&e),
            })
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut note = String::new();
                let _ = file.read_to_string(&mut note);
                let note = note.trim();
                let holder = if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::escape::escape_controls(note))
                };
                return Err(Failure::Refused(format!(
                    "another `callbook serve` uses the state directory `{}`{holder}",
                    state_dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let note = format!(
            "pid {}, started {}\n",
            std::process::id(),
            crate::model::timestamp(chrono::Utc::now())
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(ServeLock { _file: file })
    }
}

/// The engine's pager, as `serve` builds and drives it.
mod pager {
    use std::sync::Arc;

    use crate::engine::{EngineError, Pager, PagerOptions};
    use crate::serve::metrics::Metrics;
    use crate::store::sqlite::SqliteStore;

    /// One pager for the account: one login, one rate limiter, one sink.
    pub(super) fn build(
        store: Arc<SqliteStore>,
        start: &super::Start<'_>,
        credentials: crate::provider::Credentials,
        metrics: Arc<Metrics>,
    ) -> Result<Pager<SqliteStore>, EngineError> {
        let options = PagerOptions {
            credentials: Some(credentials),
            base_url: start.args.base_url.clone(),
            callback_secret: start.secret.clone(),
            journal_messages: start.args.journal_messages,
            rate_limit: start.args.rate_limit,
        };
        Pager::new(store, options, metrics)
    }
}
