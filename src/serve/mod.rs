//! `callbook serve`: the pager as a long-running HTTP service.
//!
//! Alert sources (Alertmanager, Grafana, a script) post alerts to webhook
//! routes; each route runs one playbook as a page (or a broadcast) through
//! the engine's pager, and a resolved alert cancels the page. FoneStorm's
//! callbacks arrive on the same listener. This module is the HTTP front
//! end only: the configuration ([`config`]), the router ([`http`]), the
//! bearer token ([`token`]), readiness ([`ready`]) and metrics
//! ([`metrics`]). Paging itself stays in the engine, behind [`Pages`], so
//! the engine knows nothing of HTTP intake; signals, the lock and the
//! process live in the CLI (`cli/serve.rs`).

pub mod config;
pub mod http;
pub mod metrics;
pub mod ready;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::engine::EngineError;
use crate::plan::RunInput;
use crate::playbook::Playbook;
use crate::report::Report;

/// What became of an alert that asked for a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// A page was planned and recorded, and runs in the background.
    Started {
        /// The new page's run id.
        run_id: String,
    },
    /// A page with the same key is going, or ended within the dedup window.
    Deduplicated {
        /// That page's run id.
        run_id: String,
    },
}

/// What a hand acknowledgement did (`200`, `404`, `409`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandAck {
    /// Recorded; the page stops.
    Acknowledged,
    /// No such run.
    Unknown,
    /// The run already ended.
    Ended,
}

/// A page still going, as `GET /runs?active=true` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivePage {
    /// Its run id.
    pub run_id: String,
    /// The route that started it.
    pub route: String,
    /// Its dedup key (`route:key`).
    pub key: String,
    /// Its short code, for SMS acknowledgements.
    pub code: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The step it is on, once it started one.
    pub step: Option<String>,
    /// The round of that step.
    pub round: Option<u32>,
}

/// The engine's side of `serve`: many pages in one process.
///
/// The HTTP layer is written against this trait so that it can be tested
/// with a fake; the engine's pager implements it.
pub trait Pages: Send + Sync + 'static {
    /// Plans, dedups and records a page for `route` (key: the playbook's
    /// rendered `dedup.key`, else `fallback_key`), then runs it in the
    /// background. Nothing is recorded when planning fails.
    fn start(
        &self,
        route: &str,
        playbook: Arc<Playbook>,
        input: RunInput,
        sources: Vec<(String, String)>,
        fallback_key: &str,
    ) -> impl Future<Output = Result<Intake, EngineError>> + Send;

    /// Cancels the page going for that key, returning its run id.
    fn resolve(
        &self,
        route: &str,
        playbook: &Playbook,
        input: &RunInput,
        fallback_key: &str,
    ) -> impl Future<Output = Result<Option<String>, EngineError>> + Send;

    /// A hand acknowledgement.
    fn ack(
        &self,
        run_id: &str,
        by: &str,
        note: Option<String>,
    ) -> impl Future<Output = Result<HandAck, EngineError>> + Send;

    /// The run's report so far; `None` when unknown.
    fn report(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<Report>, EngineError>> + Send;

    /// The pages still going.
    fn active(&self) -> impl Future<Output = Result<Vec<ActivePage>, EngineError>> + Send;
}

/// What the process around the service needs of the pager besides
/// [`Pages`]: the callback sink for `/fonestorm/*`, resuming the pages
/// going at start, and shutting down within the drain time.
pub trait Backend: Pages {
    /// Takes every FoneStorm callback and routes it to its page.
    type Sink: crate::listener::CallbackSink;

    /// The sink the callback routes feed.
    fn sink(&self) -> Arc<Self::Sink>;

    /// Resumes every page the journal shows as going; how many.
    fn resume_going(&self) -> impl Future<Output = Result<usize, EngineError>> + Send;

    /// Starts no new call, lets requests in flight finish within `within`,
    /// and records every page's state (they resume at the next start).
    fn shutdown(&self, within: std::time::Duration) -> impl Future<Output = ()> + Send;
}
