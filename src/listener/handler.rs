//! One callback request: auth, body, fields, the sink, the answer.
//!
//! The order matters: nothing of a request is read before its password is
//! checked, and nothing reaches the sink unless every field was read
//! cleanly. The answers are short plain text, never an echo of the request.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::fields::{self, FieldsError};
use super::secret::Auth;
use super::{App, MAX_BODY_BYTES, PATH_CALLS, PATH_INBOUND, PATH_SMS, Peer};
use crate::model::callback::{CallEvent, Callback, InboundCall, InboundSms, RawFields};

/// Which path a callback arrived at.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Calls,
    Inbound,
    Sms,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Calls => PATH_CALLS,
            Kind::Inbound => PATH_INBOUND,
            Kind::Sms => PATH_SMS,
        }
    }

    fn read(self, raw: RawFields) -> Result<Callback, String> {
        match self {
            Kind::Calls => CallEvent::from_fields(raw).map(Callback::Call),
            Kind::Inbound => InboundCall::from_fields(raw).map(Callback::Inbound),
            Kind::Sms => InboundSms::from_fields(raw).map(Callback::Sms),
        }
        .map_err(|e| e.to_string())
    }
}

/// The three paths, each answering `GET` and `POST` (others get 405, other
/// paths 404). `HEAD` is refused explicitly: axum would otherwise run the
/// `GET` handler for it, and record a callback whose answer nobody reads.
pub(super) fn router(app: Arc<App>) -> Router {
    let route = |kind: Kind| {
        let handler =
            move |State(app): State<Arc<App>>, request: Request| handle(app, kind, request);
        get(handler).post(handler).head(not_allowed)
    };
    Router::new()
        .route(PATH_CALLS, route(Kind::Calls))
        .route(PATH_INBOUND, route(Kind::Inbound))
        .route(PATH_SMS, route(Kind::Sms))
        .with_state(app)
}

async fn handle(app: Arc<App>, kind: Kind, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "an unknown peer".to_string(), |p| p.0.to_string());
    let path = kind.path();
    let mut authorizations = request.headers().get_all(header::AUTHORIZATION).iter();
    let authorization = authorizations.next().map(HeaderValue::as_bytes);
    // Two credentials are ambiguous (a proxy may read the other one): refused.
    let auth = if authorizations.next().is_some() {
        Auth::Wrong
    } else {
        Auth::check(authorization, &app.secret)
    };
    match auth {
        Auth::Granted => {}
        refused => {
            let why = if refused == Auth::Missing {
                "no credentials"
            } else {
                "wrong user name or password"
            };
            tracing::warn!("refused a callback to `{path}` from {peer}: {why}");
            return unauthorized();
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    // A compressed body would only fail to parse as "not JSON"; say what it is.
    let encoded = request
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if encoded {
        let why = "the body is compressed (Content-Encoding), which callbook does not read";
        tracing::warn!("refused a callback to `{path}` from {peer}: {why}");
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, why);
    }
    let query = request.uri().query().map(str::to_string);
    let body = match read_body(request.into_body(), &app).await {
        Ok(body) => body,
        Err((status, why)) => {
            tracing::warn!("refused a callback to `{path}` from {peer}: {why}");
            return plain(status, why);
        }
    };
    let callback = fields::decode(query.as_deref(), content_type.as_deref(), &body)
        .map_err(|e| match e {
            FieldsError::Malformed(why) => (StatusCode::BAD_REQUEST, why),
            FieldsError::UnsupportedType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body is neither JSON nor a form".to_string(),
            ),
        })
        .and_then(|raw| kind.read(raw).map_err(|why| (StatusCode::BAD_REQUEST, why)));
    let callback = match callback {
        Ok(c) => c,
        Err((status, why)) => {
            tracing::warn!("refused a callback to `{path}` from {peer}: {why}");
            return plain(status, &why);
        }
    };
    // JSON escapes C0 controls but not C1 ones nor bidi overrides, which a
    // terminal showing the log would obey.
    let fields = crate::escape::escape_controls(&callback.raw().to_json().to_string()).into_owned();
    tracing::debug!(fields = %fields, "a `{}` callback from {peer}", callback.kind());
    match (app.sink)(callback).await {
        Ok(()) => plain(StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!("could not record a callback to `{path}`: {e}");
            plain(StatusCode::SERVICE_UNAVAILABLE, "not recorded, try again")
        }
    }
}

/// Reads the body within its size and time bounds.
async fn read_body(body: Body, app: &App) -> Result<Vec<u8>, (StatusCode, &'static str)> {
    const TOO_LARGE: (StatusCode, &str) =
        (StatusCode::PAYLOAD_TOO_LARGE, "the body is over 64 KiB");
    let limited = Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(app.body_timeout, limited.collect()).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "the body took too long to arrive",
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(TOO_LARGE),
        Ok(Err(_)) => Err((StatusCode::BAD_REQUEST, "the body could not be read")),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
    }
}

async fn not_allowed() -> Response {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,POST"));
    response
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

fn unauthorized() -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"callbook\""),
    );
    response
}
