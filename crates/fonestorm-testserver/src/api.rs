//! The HTTP side of the server: the routes, and turning a [`CallPlan`] into an
//! answer (or into no answer at all, for the faults that hang or drop).

use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::Path;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::callback::CallbackRecord;
use crate::config::Fault;
use crate::error::ApiError;
use crate::state::{CallPlan, NotifyEvent, Shared};
use crate::validate;

/// The largest request body read; the API's bodies are a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

/// The body answered by [`Fault::Malformed`]: a `201` cut off mid-way.
const MALFORMED_BODY: &str = r#"{"call": {"id": "#;

/// Lets a handler drop its own connection ([`Fault::Close`]): the task serving the
/// connection waits on it and, when notified, drops the connection unanswered.
#[derive(Clone)]
pub(crate) struct ConnControl(pub(crate) Arc<Notify>);

/// The API's routes, at the root, plus `GET /_stats`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/auth", post(auth).fallback(other))
        .route("/calls", post(calls).fallback(other))
        .route("/calls/send_notify", post(send_notify).fallback(other))
        .route(
            "/calls/receive_notify",
            post(receive_notify).fallback(other),
        )
        .route("/messages/receive", post(messages_receive).fallback(other))
        .route("/fonenumbers", get(list_fonenumbers).fallback(other))
        .route(
            "/fonenumbers/{fonenumber}",
            get(get_fonenumber).fallback(other),
        )
        .route("/_stats", any(stats))
        .route("/_simulate/sms", any(simulate_sms))
        .route("/_simulate/inbound_call", any(simulate_inbound_call))
        .fallback(other)
        .with_state(shared)
}

/// `POST /auth`: credentials in, token out.
async fn auth(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let ticket = match shared.admit("POST", "/auth") {
        Ok(ticket) => ticket,
        Err(err) => return err.into_response(),
    };
    let control = request.extensions().get::<ConnControl>().cloned();
    if let Some(fault) = shared.plan_auth(&ticket) {
        let latency = shared.config().latency;
        return inject(&shared, ticket.index, fault, latency, control).await;
    }
    let token = read_json(request)
        .await
        .and_then(validate::auth_request)
        .and_then(|auth| shared.authenticate(&auth));
    match token {
        Ok(token) => {
            shared.answered(ticket.index, 201, None);
            let body = json!({"authorization": {"token": token}});
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(err) => reply(&shared, ticket.index, err),
    }
}

/// `POST /calls`: place a call, or inject a fault.
async fn calls(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let ticket = match shared.admit("POST", "/calls") {
        Ok(ticket) => ticket,
        Err(err) => return err.into_response(),
    };
    let control = request.extensions().get::<ConnControl>().cloned();
    let token = request
        .headers()
        .get("token")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = read_json(request).await;
    let to = body
        .as_ref()
        .ok()
        .and_then(|body| body.get("to"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    shared.update(ticket.index, |record| {
        record.to = to;
        record.token = token.clone();
    });
    match shared.plan_call(&ticket, token.as_deref(), body) {
        CallPlan::Reject(err) => reply(&shared, ticket.index, err),
        CallPlan::Place {
            id,
            latency,
            callbacks,
        } => {
            tokio::time::sleep(latency).await;
            shared.answered(ticket.index, 201, Some(id.clone()));
            shared.spawn_call_callbacks(callbacks);
            (StatusCode::CREATED, Json(json!({"call": {"id": id}}))).into_response()
        }
        CallPlan::Inject {
            fault,
            latency,
            callbacks,
        } => {
            shared.spawn_call_callbacks(callbacks);
            inject(&shared, ticket.index, fault, latency, control).await
        }
    }
}

/// Runs a request other than `POST /auth` and `POST /calls` past the rate limiter
/// and the token check, recording it, and hands `serve` the body (read as JSON
/// when `with_body`); its answer, `Ok` a `200` JSON body, is recorded too.
async fn authorized(
    shared: &Shared,
    method: &str,
    path: &str,
    request: Request,
    with_body: bool,
    serve: impl FnOnce(Value) -> Result<Value, ApiError>,
) -> Response {
    let ticket = match shared.admit(method, path) {
        Ok(ticket) => ticket,
        Err(err) => return err.into_response(),
    };
    let token = request
        .headers()
        .get("token")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    shared.update(ticket.index, |record| record.token = token.clone());
    if let Err(err) = shared.check_token(token.as_deref()) {
        return reply(shared, ticket.index, err);
    }
    let body = if with_body {
        match read_json(request).await {
            Ok(body) => body,
            Err(err) => return reply(shared, ticket.index, err),
        }
    } else {
        Value::Null
    };
    match serve(body) {
        Ok(answer) => {
            shared.answered(ticket.index, 200, None);
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(err) => reply(shared, ticket.index, err),
    }
}

/// `POST /calls/send_notify`: the callback for outbound calls' `BEGIN`/`END`.
async fn send_notify(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    authorized(
        &shared,
        "POST",
        "/calls/send_notify",
        request,
        true,
        |body| shared.register_notify(body, NotifyEvent::Send),
    )
    .await
}

/// `POST /calls/receive_notify`: the callback for inbound calls.
async fn receive_notify(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    authorized(
        &shared,
        "POST",
        "/calls/receive_notify",
        request,
        true,
        |body| shared.register_notify(body, NotifyEvent::Receive),
    )
    .await
}

/// `POST /messages/receive`: where inbound SMS go.
async fn messages_receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    authorized(
        &shared,
        "POST",
        "/messages/receive",
        request,
        true,
        |body| shared.register_sms(body),
    )
    .await
}

/// `GET /fonenumbers`: the account's FoneNumbers and their callbacks.
async fn list_fonenumbers(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    authorized(
        &shared,
        method.as_str(),
        "/fonenumbers",
        request,
        false,
        |_| Ok(shared.fonenumbers()),
    )
    .await
}

/// `GET /fonenumbers/{fonenumber}`: one FoneNumber and its callbacks.
async fn get_fonenumber(
    State(shared): State<Arc<Shared>>,
    Path(fonenumber): Path<String>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    authorized(&shared, method.as_str(), &path, request, false, |_| {
        shared.fonenumber(&fonenumber)
    })
    .await
}

/// Carries out an injected fault.
async fn inject(
    shared: &Shared,
    index: usize,
    fault: Fault,
    latency: Duration,
    control: Option<ConnControl>,
) -> Response {
    match fault {
        Fault::Status(status) => reply(shared, index, ApiError::injected(status)),
        Fault::StatusAfterLatency(status) => {
            tokio::time::sleep(latency).await;
            reply(shared, index, ApiError::injected(status))
        }
        Fault::ExpireToken => reply(
            shared,
            index,
            ApiError::unauthorized("the token has expired"),
        ),
        Fault::Malformed => {
            tokio::time::sleep(latency).await;
            shared.answered(index, 201, None);
            let headers = [(CONTENT_TYPE, "application/json")];
            (StatusCode::CREATED, headers, MALFORMED_BODY).into_response()
        }
        Fault::Hang => {
            shared.unanswered(index, "no answer (hang)");
            std::future::pending().await
        }
        Fault::Close => {
            shared.unanswered(index, "connection dropped");
            // Without a control (not served by our accept loop) this degrades to a hang.
            if let Some(ConnControl(kill)) = control {
                kill.notify_one();
            }
            std::future::pending().await
        }
    }
}

/// `GET /_stats`: the record and its figures, for people poking at the server.
/// Neither rate-limited nor recorded, so that looking does not change the figures.
async fn stats(State(shared): State<Arc<Shared>>, method: Method) -> Response {
    if method == Method::GET {
        Json(shared.stats()).into_response()
    } else {
        ApiError::new(405, format!("`{method}` is not allowed on `/_stats`")).into_response()
    }
}

/// `POST /_simulate/sms`: an inbound SMS, delivered to the FoneNumber's
/// `messages/receive` URL. A control endpoint: no token, not rate-limited, not
/// recorded as a request (the delivery is recorded as a callback).
async fn simulate_sms(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.method() != Method::POST {
        return not_allowed(request.method(), "/_simulate/sms");
    }
    let sms = match read_json(request).await.and_then(validate::simulate_sms) {
        Ok(sms) => sms,
        Err(err) => return err.into_response(),
    };
    delivered(shared.simulate_sms(sms).await)
}

/// `POST /_simulate/inbound_call`: someone calls a FoneNumber; delivered to its
/// `receive_notify` URL. A control endpoint like `/_simulate/sms`.
async fn simulate_inbound_call(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.method() != Method::POST {
        return not_allowed(request.method(), "/_simulate/inbound_call");
    }
    let (from, to) = match read_json(request).await.and_then(validate::simulate_call) {
        Ok(call) => call,
        Err(err) => return err.into_response(),
    };
    delivered(shared.simulate_inbound_call(from, to).await)
}

/// A simulation's answer: `200` with the receiver's status (`null` when the
/// delivery failed, with the reason in `error`) and the callback record.
fn delivered(result: Result<CallbackRecord, ApiError>) -> Response {
    match result {
        Ok(record) => Json(json!({
            "receiver_status": record.receiver_status,
            "error": record.error,
            "callback": record,
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

fn not_allowed(method: &Method, path: &str) -> Response {
    ApiError::new(405, format!("`{method}` is not allowed on `{path}`")).into_response()
}

/// Any other method or path: recorded and rate-limited like the API's requests.
async fn other(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let ticket = match shared.admit(method.as_str(), path) {
        Ok(ticket) => ticket,
        Err(err) => return err.into_response(),
    };
    let known = matches!(
        path,
        "/auth"
            | "/calls"
            | "/calls/send_notify"
            | "/calls/receive_notify"
            | "/messages/receive"
            | "/fonenumbers"
    ) || path
        .strip_prefix("/fonenumbers/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    let err = if known {
        ApiError::new(405, format!("`{method}` is not allowed on `{path}`"))
    } else {
        ApiError::not_found(format!("no such path `{path}`"))
    };
    reply(&shared, ticket.index, err)
}

/// Records an error answer and builds it.
fn reply(shared: &Shared, index: usize, err: ApiError) -> Response {
    shared.answered(index, err.status.as_u16(), None);
    err.into_response()
}

/// Reads a body that must be a JSON object sent as `application/json`.
async fn read_json(request: Request) -> Result<Value, ApiError> {
    let is_json = validate::is_json_content_type(
        request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
    );
    let body = to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|err| ApiError::bad_request(format!("could not read the body: {err}")))?;
    if !is_json {
        return Err(ApiError::bad_request(
            "expected `Content-Type: application/json`",
        ));
    }
    validate::json_object(&body)
}
