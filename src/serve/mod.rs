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

use crate::engine::{EngineError, Pager};
use crate::plan::RunInput;
use crate::playbook::Playbook;
use crate::report::Report;
use crate::store::Store;

pub use crate::engine::{ActivePage, HandAck, Intake};

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

impl<S: Store> Pages for Pager<S> {
    async fn start(
        &self,
        route: &str,
        playbook: Arc<Playbook>,
        input: RunInput,
        sources: Vec<(String, String)>,
        fallback_key: &str,
    ) -> Result<Intake, EngineError> {
        Pager::start(self, route, playbook, input, sources, fallback_key).await
    }

    async fn resolve(
        &self,
        route: &str,
        playbook: &Playbook,
        input: &RunInput,
        fallback_key: &str,
    ) -> Result<Option<String>, EngineError> {
        Pager::resolve(self, route, playbook, input, fallback_key).await
    }

    async fn ack(
        &self,
        run_id: &str,
        by: &str,
        note: Option<String>,
    ) -> Result<HandAck, EngineError> {
        Pager::ack(self, run_id, by, note).await
    }

    async fn report(&self, run_id: &str) -> Result<Option<Report>, EngineError> {
        Pager::report(self, run_id).await
    }

    async fn active(&self) -> Result<Vec<ActivePage>, EngineError> {
        Pager::active(self).await
    }
}
