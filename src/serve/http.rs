//! The HTTP API of `serve` (see `docs/serve.md`): webhooks, runs, health,
//! readiness and metrics, beside the FoneStorm callback routes of
//! [`crate::listener`], all served by one bounded [`crate::listener::Listener`].
//!
//! Every request is checked in the same order: the bearer token (nothing
//! of an unauthenticated request is read, and an unknown route does not
//! tell a stranger which ones exist), readiness, the route, the content
//! type, the body within its bounds, the JSON. Answers are small JSON
//! objects that never echo the request.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::config::{Route, valid_route_name};
use super::metrics::{self, Metrics};
use super::ready::Readiness;
use super::token::WebhookToken;
use super::{HandAck, Intake, Pages};
use crate::diag::{Printer, Sources};
use crate::engine::EngineError;
use crate::plan::{RunInput, Selection};

/// The largest webhook body read; a larger one gets 413.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;
/// The largest `POST /runs/{id}/ack` body read.
pub const MAX_ACK_BYTES: usize = 16 * 1024;
/// The longest `by` and `note` of a hand acknowledgement, in characters.
pub const MAX_ACK_TEXT: usize = 1000;
/// The longest Alertmanager `groupKey` kept as it is; a longer one (an
/// Alertmanager grouping by every label) is kept as its SHA-256, so that its
/// firing and its resolve still meet.
pub const MAX_GROUP_KEY: usize = 4096;
/// The deepest nesting of a webhook body accepted: the journal records the
/// body inside the page's sources, which must read back (within the JSON
/// reader's own limit of 128) for the page to resume after a restart.
pub const MAX_WEBHOOK_DEPTH: usize = 64;
/// The longest run id looked up (longer ones are unknown).
const MAX_RUN_ID: usize = 128;
/// The route label of webhooks to a route that is not configured.
const UNKNOWN_ROUTE: &str = "-";

/// The routes, swapped whole on reload.
pub type Routes = BTreeMap<String, Arc<Route>>;

/// Everything a request handler needs.
pub struct Service<P: Pages> {
    pages: Arc<P>,
    routes: RwLock<Arc<Routes>>,
    token: Option<WebhookToken>,
    metrics: Arc<Metrics>,
    ready: Arc<Readiness>,
    body_timeout: Duration,
}

impl<P: Pages> std::fmt::Debug for Service<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("routes", &self.routes().keys().collect::<Vec<_>>())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl<P: Pages> Service<P> {
    /// A service over `pages`; `token` `None` turns bearer auth off (only
    /// ever on loopback, which the CLI checks).
    pub fn new(
        pages: Arc<P>,
        token: Option<WebhookToken>,
        metrics: Arc<Metrics>,
        ready: Arc<Readiness>,
        body_timeout: Duration,
    ) -> Service<P> {
        Service {
            pages,
            routes: RwLock::new(Arc::new(Routes::new())),
            token,
            metrics,
            ready,
            body_timeout,
        }
    }

    /// Replaces the routes (a start or a reload); pages going keep theirs.
    pub fn set_routes(&self, routes: Routes) {
        for name in routes.keys() {
            self.metrics.route_known(name);
        }
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
        self.ready.set_routes_loaded(true);
    }

    /// The routes now.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn route(&self, name: &str) -> Option<Arc<Route>> {
        self.routes().get(name).cloned()
    }

    fn authorized(&self, request: &Request) -> bool {
        match &self.token {
            None => true,
            Some(token) => token.admits(
                request
                    .headers()
                    .get_all(header::AUTHORIZATION)
                    .iter()
                    .map(HeaderValue::as_bytes),
            ),
        }
    }
}

/// Which kind of webhook a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Alertmanager,
    Json,
}

/// The whole API: `callbacks` (the FoneStorm routes) mounted beside serve's own.
pub fn router<P: Pages>(service: Arc<Service<P>>, callbacks: Router) -> Router {
    let own = Router::new()
        .route(
            "/hooks/alertmanager/{route}",
            post(
                |State(s): State<Arc<Service<P>>>, Path(route): Path<String>, r: Request| {
                    webhook(s, Hook::Alertmanager, route, r)
                },
            ),
        )
        .route(
            "/hooks/json/{route}",
            post(
                |State(s): State<Arc<Service<P>>>, Path(route): Path<String>, r: Request| {
                    webhook(s, Hook::Json, route, r)
                },
            ),
        )
        .route("/runs", get(runs::<P>))
        .route("/runs/{run_id}", get(run_report::<P>))
        .route("/runs/{run_id}/ack", post(ack::<P>))
        .route("/metrics", get(metrics_text::<P>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<P>))
        .with_state(service);
    own.merge(callbacks)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such path") })
}

/// A JSON answer.
fn answer(status: StatusCode, body: &Value) -> Response {
    let mut text = body.to_string();
    text.push('\n');
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"error": "..."}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    let mut response = answer(status, &json!({ "error": message }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"callbook\""),
        );
    }
    response
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized: send `Authorization: Bearer` with the webhook token",
    )
}

fn peer(request: &Request) -> String {
    crate::listener::peer_of(request)
        .map_or_else(|| "an unknown peer".to_string(), |p| p.to_string())
}

/// `POST /hooks/alertmanager/{route}` and `POST /hooks/json/{route}`.
async fn webhook<P: Pages>(
    service: Arc<Service<P>>,
    hook: Hook,
    route_name: String,
    request: Request,
) -> Response {
    let found = valid_route_name(&route_name)
        .then(|| service.route(&route_name))
        .flatten();
    let label = found
        .as_ref()
        .map_or(UNKNOWN_ROUTE, |r| r.name.as_str())
        .to_string();
    let response = webhook_inner(&service, hook, &route_name, found, request).await;
    service.metrics.webhook(&label, response.status().as_u16());
    response
}

async fn webhook_inner<P: Pages>(
    service: &Service<P>,
    hook: Hook,
    route_name: &str,
    found: Option<Arc<Route>>,
    request: Request,
) -> Response {
    let from = peer(&request);
    if !service.authorized(&request) {
        tracing::warn!("refused a webhook from {from}: wrong or missing token");
        return unauthorized();
    }
    if let Some(why) = service.ready.not_ready() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not taking alerts: {why}"),
        );
    }
    let Some(route) = found else {
        let shown = crate::escape::escape_controls(route_name);
        let shown: String = shown.chars().take(80).collect();
        return error(StatusCode::NOT_FOUND, &format!("no route `{shown}`"));
    };
    if let Some(response) = check_content(&request) {
        return response;
    }
    let body = match read_body(request.into_body(), MAX_WEBHOOK_BYTES, service.body_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    if depth(&payload) > MAX_WEBHOOK_DEPTH {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("the body is nested deeper than {MAX_WEBHOOK_DEPTH} levels"),
        );
    }
    let (resolved, fallback_key) = match hook {
        Hook::Alertmanager => match read_alertmanager(&payload) {
            Ok(alert) => alert,
            Err(why) => return error(StatusCode::BAD_REQUEST, &why),
        },
        Hook::Json => {
            let resolved = payload.get("status").and_then(Value::as_str) == Some("resolved");
            (resolved, hex(&Sha256::digest(&body)))
        }
    };
    let now = chrono::Utc::now();
    let playbook = route.playbook.clone();
    let input = RunInput {
        run_id: crate::plan::new_run_id(now),
        now,
        dry_run: false,
        vars: playbook.vars.clone(),
        input: Some(payload),
        selection: Selection::default(),
    };
    let group_key = (hook == Hook::Alertmanager).then_some(fallback_key.as_str());
    if resolved {
        return match service
            .pages
            .resolve(&route.name, &playbook, &input, &fallback_key)
            .await
        {
            Ok(cancelled) => {
                tracing::info!(
                    route = %route.name,
                    run_id = cancelled.as_deref().unwrap_or_default(),
                    group_key,
                    "alert resolved: {}",
                    if cancelled.is_some() { "page cancelled" } else { "no page going" }
                );
                answer(StatusCode::OK, &json!({ "cancelled": cancelled }))
            }
            Err(e) => engine_error(&route, &e),
        };
    }
    match service
        .pages
        .start(
            &route.name,
            playbook,
            input,
            route.sources.clone(),
            &fallback_key,
        )
        .await
    {
        Ok(Intake::Started { run_id }) => {
            tracing::info!(route = %route.name, run_id = %run_id, group_key, "page started");
            answer(StatusCode::ACCEPTED, &json!({ "run_id": run_id }))
        }
        Ok(Intake::Deduplicated { run_id }) => {
            tracing::info!(route = %route.name, run_id = %run_id, group_key, "deduplicated: a page with this key is going or ended within the window");
            answer(StatusCode::OK, &json!({ "deduplicated": run_id }))
        }
        Err(e) => engine_error(&route, &e),
    }
}

/// The answer to an engine error: 422 for a payload that cannot be
/// planned, 503 when the journal fails, 500 otherwise.
fn engine_error(route: &Route, e: &EngineError) -> Response {
    match e {
        EngineError::Plan(diagnostics) => {
            let mut sources = Sources::default();
            for (file, text) in &route.sources {
                sources.insert(file.as_str().into(), text.as_str().into());
            }
            let printer = Printer::new(&sources, false);
            let text: String = diagnostics.iter().map(|d| printer.render(d)).collect();
            tracing::warn!(route = %route.name, "a payload could not be planned; nothing was started");
            error(StatusCode::UNPROCESSABLE_ENTITY, text.trim_end())
        }
        EngineError::TooManyCalls(why) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{why}; nothing was started"),
        ),
        EngineError::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        EngineError::PageNotLive(_) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{e}; nothing was started"),
        ),
        EngineError::Store(_) | EngineError::Read(_) | EngineError::Lock(_) => {
            tracing::error!(route = %route.name, "the journal failed: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not recorded, try again: {e}"),
            )
        }
        other => {
            tracing::error!(route = %route.name, "{other}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string())
        }
    }
}

/// Reads an Alertmanager (version 4) payload: whether it is resolved, and its `groupKey`.
///
/// # Errors
/// What is missing or wrong, naming the field.
pub fn read_alertmanager(payload: &Value) -> Result<(bool, String), String> {
    let Some(doc) = payload.as_object() else {
        return Err(format!(
            "an Alertmanager payload is a JSON object, found {}",
            crate::schema::describe(payload)
        ));
    };
    match doc.get("version") {
        None => {}
        Some(Value::String(v)) if v == "4" => {}
        Some(other) => {
            return Err(format!(
                "`version` is {}: only version \"4\" payloads are read",
                crate::schema::describe(other)
            ));
        }
    }
    let group_key = match doc.get("groupKey") {
        None => return Err("missing `groupKey`".to_string()),
        Some(Value::String(k)) if k.is_empty() => {
            return Err("`groupKey` must not be empty".to_string());
        }
        Some(Value::String(k)) if k.len() > MAX_GROUP_KEY => {
            format!("sha256:{}", hex(&Sha256::digest(k.as_bytes())))
        }
        Some(Value::String(k)) => k.clone(),
        Some(other) => {
            return Err(format!(
                "`groupKey` must be a string, found {}",
                crate::schema::describe(other)
            ));
        }
    };
    let resolved = match doc.get("status") {
        None => return Err("missing `status`".to_string()),
        Some(Value::String(s)) if s == "firing" => false,
        Some(Value::String(s)) if s == "resolved" => true,
        Some(other) => {
            return Err(format!(
                "`status` must be \"firing\" or \"resolved\", found {}",
                crate::schema::describe(other)
            ));
        }
    };
    if let Some(alerts) = doc.get("alerts")
        && !alerts.is_array()
    {
        return Err(format!(
            "`alerts` must be a list, found {}",
            crate::schema::describe(alerts)
        ));
    }
    Ok((resolved, group_key))
}

/// The 415 answer for a body that is not (uncompressed) JSON, if it is not.
fn check_content(request: &Request) -> Option<Response> {
    let encoded = request
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body is compressed (Content-Encoding), which callbook does not read",
        ));
    }
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let media = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" && !media.ends_with("+json") {
            return Some(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (`Content-Type: application/json`)",
            ));
        }
    }
    None
}

/// Reads a body within `limit` bytes and `timeout`.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Vec<u8>, Response> {
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the body took too long to arrive",
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over {} KiB", limit / 1024),
        )),
        Ok(Err(_)) => Err(error(StatusCode::BAD_REQUEST, "the body could not be read")),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
    }
}

/// How deeply `value` nests (a scalar is 0); the JSON reader bounds the recursion.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether `id` can be a run id (bounded, printable, no path characters).
fn plausible_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_RUN_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.' | b'_' | b'+'))
}

/// The refusal of a request with a wrong token or while shutting down, if any.
fn gate<P: Pages>(service: &Service<P>, request: &Request) -> Option<Response> {
    if !service.authorized(request) {
        tracing::warn!(
            "refused a request from {}: wrong or missing token",
            peer(request)
        );
        return Some(unauthorized());
    }
    if service.ready.draining() {
        return Some(error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    None
}

/// `GET /runs?active=true`.
async fn runs<P: Pages>(State(service): State<Arc<Service<P>>>, request: Request) -> Response {
    if let Some(response) = gate(&service, &request) {
        return response;
    }
    if request.uri().query() != Some("active=true") {
        return error(
            StatusCode::BAD_REQUEST,
            "only `GET /runs?active=true` is served (`callbook runs` lists the journal)",
        );
    }
    match service.pages.active().await {
        Ok(pages) => answer(StatusCode::OK, &json!(pages)),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `GET /runs/{run_id}`.
async fn run_report<P: Pages>(
    State(service): State<Arc<Service<P>>>,
    Path(run_id): Path<String>,
    request: Request,
) -> Response {
    if let Some(response) = gate(&service, &request) {
        return response;
    }
    if !plausible_run_id(&run_id) {
        return error(StatusCode::NOT_FOUND, "no such run");
    }
    match service.pages.report(&run_id).await {
        Ok(Some(report)) => {
            let mut out = Vec::new();
            match crate::report::json::write(&report, &mut out) {
                Ok(()) => {
                    let mut response = (StatusCode::OK, out).into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no run `{run_id}`")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The body of `POST /runs/{run_id}/ack`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /runs/{run_id}/ack`.
async fn ack<P: Pages>(
    State(service): State<Arc<Service<P>>>,
    Path(run_id): Path<String>,
    request: Request,
) -> Response {
    if let Some(response) = gate(&service, &request) {
        return response;
    }
    if let Some(response) = check_content(&request) {
        return response;
    }
    let body = match read_body(request.into_body(), MAX_ACK_BYTES, service.body_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parsed: AckBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body must be {{\"by\": \"...\", \"note\": \"...\"}}: {e}"),
            );
        }
    };
    let by = parsed.by.trim();
    if by.is_empty() || by.chars().count() > MAX_ACK_TEXT {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("`by` must hold 1 to {MAX_ACK_TEXT} characters"),
        );
    }
    if parsed
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_ACK_TEXT)
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("`note` must hold at most {MAX_ACK_TEXT} characters"),
        );
    }
    if !plausible_run_id(&run_id) {
        return error(StatusCode::NOT_FOUND, "no such run");
    }
    match service.pages.ack(&run_id, by, parsed.note).await {
        Ok(HandAck::Acknowledged) => {
            tracing::info!(run_id = %run_id, "acknowledged by hand by {}", crate::escape::escape_controls(by));
            answer(StatusCode::OK, &json!({ "acknowledged": run_id }))
        }
        Ok(HandAck::Unknown) => error(StatusCode::NOT_FOUND, &format!("no page `{run_id}`")),
        Ok(HandAck::Ended) => error(
            StatusCode::CONFLICT,
            &format!("page `{run_id}` already ended"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `GET /metrics`.
async fn metrics_text<P: Pages>(State(service): State<Arc<Service<P>>>) -> Response {
    let mut response = (StatusCode::OK, service.metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// `GET /healthz`: the process runs.
async fn healthz() -> Response {
    answer(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /readyz`: the journal is writable (probed now) and the routes are loaded.
async fn readyz<P: Pages>(State(service): State<Arc<Service<P>>>) -> Response {
    service.ready.probe().await;
    match service.ready.not_ready() {
        None => answer(StatusCode::OK, &json!({ "status": "ready" })),
        Some(why) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not ready", "error": why }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_payloads_name_what_is_missing() {
        let ok =
            json!({"version": "4", "groupKey": "{}:{a=\"b\"}", "status": "firing", "alerts": []});
        assert_eq!(
            read_alertmanager(&ok),
            Ok((false, "{}:{a=\"b\"}".to_string()))
        );
        let mut resolved = ok.clone();
        resolved["status"] = json!("resolved");
        assert_eq!(read_alertmanager(&resolved).map(|a| a.0), Ok(true));
        for (field, want) in [
            ("groupKey", "missing `groupKey`"),
            ("status", "missing `status`"),
        ] {
            let mut doc = ok.clone();
            doc.as_object_mut().unwrap().remove(field);
            assert_eq!(read_alertmanager(&doc), Err(want.to_string()));
        }
        let mut v3 = ok.clone();
        v3["version"] = json!("3");
        assert!(read_alertmanager(&v3).unwrap_err().contains("`version`"));
        let mut odd = ok.clone();
        odd["status"] = json!("pending");
        assert!(read_alertmanager(&odd).unwrap_err().contains("`status`"));
        let mut long = ok;
        long["groupKey"] = json!("k".repeat(MAX_GROUP_KEY + 1));
        let (_, key) = read_alertmanager(&long).unwrap();
        assert!(key.starts_with("sha256:") && key.len() == 7 + 64, "{key}");
        assert!(read_alertmanager(&json!([1])).is_err());
    }

    #[test]
    fn run_ids_are_bounded() {
        assert!(plausible_run_id("2026-11-26T22:00:00Z-4f3a9c07"));
        assert!(!plausible_run_id(""));
        assert!(!plausible_run_id("../../etc/passwd"));
        assert!(!plausible_run_id(&"a".repeat(MAX_RUN_ID + 1)));
    }
}
