//! Error answers. Every non-2xx response of the API has the same body,
//! `{"error", "message", "status_code"}`, built here and nowhere else.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Where an injected 3xx points: a path of this server that no API request
/// uses, so that a client following the redirect shows up in the record.
pub(crate) const REDIRECT_TARGET: &str = "/redirected";

/// An error answer: the status and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

/// The error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    message: &'a str,
    status_code: u16,
}

impl ApiError {
    /// An error with any status; a number that is not a valid status becomes `500`.
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(401, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, message)
    }

    pub(crate) fn rate_limited() -> Self {
        ApiError::new(429, "rate limit exceeded, retry after 1 second")
    }

    /// The error injected by a status fault.
    pub(crate) fn injected(status: u16) -> Self {
        ApiError::new(status, format!("injected fault: status {status}"))
    }
}

/// The short name of a status, e.g. `payment_required`.
fn short_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
        .replace('\'', "")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: short_name(self.status),
            message: &self.message,
            status_code: self.status.as_u16(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status.is_redirection() {
            // Somewhere a client that follows redirects would go, and be recorded.
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(REDIRECT_TARGET));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name(StatusCode::PAYMENT_REQUIRED), "payment_required");
        assert_eq!(
            short_name(StatusCode::TOO_MANY_REQUESTS),
            "too_many_requests"
        );
        assert_eq!(short_name(StatusCode::IM_A_TEAPOT), "im_a_teapot");
    }

    #[test]
    fn unknown_status_becomes_500() {
        assert_eq!(
            ApiError::new(1000, "x").status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
