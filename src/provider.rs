//! The FoneStorm client: authentication and `POST /calls`, nothing more.
//!
//! Every answer is sorted into what the dispatcher must do next (see
//! [`CallError`]): a call that certainly was not placed may be retried, one
//! that may have been placed (a timeout after sending, 500/502/504, a 2xx
//! without a readable call id) must not be, by default. Those rules live in
//! [`classify`] so they can change in one place.
//!
//! Secrets are held in [`Secret`], whose `Debug` prints nothing, and sent in
//! headers marked sensitive; no error message ever contains one.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use crate::limiter::RateLimiter;
use crate::plan::CallRequest;

/// Renew a login token this long before its `exp`.
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime asked for on login (the API's maximum is one day).
const TOKEN_LIFETIME_SECS: u64 = 3600;
/// The longest `Retry-After` honoured; a longer one is waited this long, then retried.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long to wait for a TCP/TLS connection before giving up on an attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A credential; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential read from the environment.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where credentials come from: `FONESTORM_TOKEN`, or a user name and password.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A ready token; it cannot be renewed.
    Token(Secret),
    /// A login, exchanged for tokens that callbook renews itself.
    Login {
        /// `FONESTORM_USERNAME`.
        username: String,
        /// `FONESTORM_PASSWORD`.
        password: Secret,
    },
}

impl Credentials {
    /// Reads credentials from the environment; `None` when none are set.
    pub fn from_env() -> Option<Credentials> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("FONESTORM_TOKEN") {
            return Some(Credentials::Token(Secret::new(token)));
        }
        match (var("FONESTORM_USERNAME"), var("FONESTORM_PASSWORD")) {
            (Some(username), Some(password)) => Some(Credentials::Login {
                username,
                password: Secret::new(password),
            }),
            _ => None,
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The provider refused the user name or password (401).
    Rejected(String),
    /// The token given cannot be renewed (it came from `FONESTORM_TOKEN`).
    NotRenewable,
    /// Anything else: network, server error, unreadable answer.
    Failed(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Rejected(m) => write!(f, "FoneStorm refused the login (HTTP 401): {m}"),
            AuthError::NotRenewable => f.write_str(
                "FoneStorm refused the token (HTTP 401) and FONESTORM_TOKEN cannot be renewed",
            ),
            AuthError::Failed(m) => write!(f, "login failed: {m}"),
        }
    }
}

/// What went wrong with one call request, sorted by what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Certainly not placed; worth another try after `retry_after` or a backoff.
    Retryable {
        /// Why.
        reason: String,
        /// The provider's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// The token was refused; renew it once and try again.
    Unauthorized(String),
    /// The provider refused this call (400, 403, 404); others may still succeed.
    Rejected(String),
    /// Nothing more can succeed (402: the account is out of funds).
    Fatal(String),
    /// The call may or may not have been placed.
    Ambiguous(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Retryable { reason, .. }
            | CallError::Unauthorized(reason)
            | CallError::Rejected(reason)
            | CallError::Fatal(reason)
            | CallError::Ambiguous(reason) => f.write_str(reason),
        }
    }
}

/// A token and when it stops working.
#[derive(Clone)]
struct Token {
    value: Secret,
    expires: Option<SystemTime>,
    generation: u64,
}

/// A FoneStorm API client for one run.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    token: Mutex<Option<Token>>,
    /// Held while logging in, so that many calls seeing a 401 renew the token once.
    login_lock: tokio::sync::Mutex<()>,
}

/// Checks a base URL: https, or plain http only to this machine (a test server).
pub fn check_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{raw:?} uses plain http: credentials would cross the network unencrypted (http is only allowed to 127.0.0.1, ::1 or localhost)"
        )),
        other => Err(format!("{raw:?} is not an http(s) URL (scheme `{other}`)")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Client {
    /// A client for `base` with requests bounded by `timeout`.
    pub fn new(base: Url, credentials: Credentials, timeout: Duration) -> Result<Client, String> {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("callbook/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        let token = match &credentials {
            Credentials::Token(t) => Some(Token {
                value: t.clone(),
                expires: None,
                generation: 0,
            }),
            Credentials::Login { .. } => None,
        };
        Ok(Client {
            http,
            base,
            credentials,
            token: Mutex::new(token),
            login_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// Whether a login is needed before the next call (none yet, or about to expire).
    pub fn needs_login(&self) -> bool {
        if !matches!(self.credentials, Credentials::Login { .. }) {
            return false;
        }
        match &*self.lock_token() {
            None => true,
            Some(t) => t
                .expires
                .is_some_and(|exp| SystemTime::now() + RENEW_MARGIN >= exp),
        }
    }

    /// The generation of the current token, to renew it only once when many calls see a 401.
    pub fn token_generation(&self) -> u64 {
        self.lock_token().as_ref().map_or(0, |t| t.generation)
    }

    fn lock_token(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        // A panic while holding the lock cannot leave a half-written token.
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs in (`POST /auth`) and keeps the token, unless `seen_generation`
    /// is already stale (another task renewed it meanwhile).
    /// The login request takes a slot of `limiter`, like every request.
    pub async fn login(
        &self,
        seen_generation: u64,
        limiter: &RateLimiter,
    ) -> Result<(), AuthError> {
        let Credentials::Login { username, password } = &self.credentials else {
            return Err(AuthError::NotRenewable);
        };
        let _single_flight = self.login_lock.lock().await;
        if self.token_generation() != seen_generation && !self.needs_login() {
            return Ok(());
        }
        limiter.acquire().await;
        let body = json!({
            "username": username,
            "password": password.expose(),
            "expires": TOKEN_LIFETIME_SECS,
        });
        let response = self
            .http
            .post(self.endpoint("auth"))
            .json(&body)
            .send()
            .await
            .map_err(|e| AuthError::Failed(transport_reason(&e)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED {
            return Err(AuthError::Rejected(provider_message(&text)));
        }
        if !status.is_success() {
            return Err(AuthError::Failed(format!(
                "HTTP {}: {}",
                status.as_u16(),
                provider_message(&text)
            )));
        }
        let value = parse_token(&text).ok_or_else(|| {
            AuthError::Failed(format!(
                "unreadable answer to login (HTTP {})",
                status.as_u16()
            ))
        })?;
        let expires = jwt_expiry(&value);
        let mut slot = self.lock_token();
        let generation = slot.as_ref().map_or(0, |t| t.generation) + 1;
        *slot = Some(Token {
            value: Secret::new(value),
            expires,
            generation,
        });
        Ok(())
    }

    /// Sends one call request (`POST /calls`) and returns the provider's call id.
    pub async fn place_call(
        &self,
        fonenumber: &str,
        call: &CallRequest,
    ) -> Result<String, CallError> {
        let token = self
            .lock_token()
            .as_ref()
            .map(|t| t.value.clone())
            .ok_or_else(|| CallError::Unauthorized("no token".to_string()))?;
        let mut header = HeaderValue::from_str(token.expose()).map_err(|_| {
            CallError::Fatal("the token is not a valid HTTP header value".to_string())
        })?;
        header.set_sensitive(true);
        let body = json!({
            "fonenumber": fonenumber,
            "to": call.to,
            "service_type": call.service_type.as_str(),
            "service_id": call.service_id,
        });
        let sent = self
            .http
            .post(self.endpoint("calls"))
            .header("token", header)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(CallError::Retryable {
                    reason: transport_reason(&e),
                    retry_after: None,
                });
            }
            Err(e) => {
                return Err(CallError::Ambiguous(format!(
                    "{} after the request was sent: the call may have been placed",
                    transport_reason(&e)
                )));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                return Err(CallError::Ambiguous(format!(
                    "HTTP {}, then {} while reading the answer: the call may have been placed",
                    status.as_u16(),
                    transport_reason(&e)
                )));
            }
        };
        classify(status, &text, retry_after)
    }
}

/// Sorts one answer to `POST /calls` into a call id or what to do next.
pub fn classify(
    status: StatusCode,
    body: &str,
    retry_after: Option<Duration>,
) -> Result<String, CallError> {
    let code = status.as_u16();
    if status.is_success() {
        return parse_call_id(body).ok_or_else(|| {
            CallError::Ambiguous(format!(
                "HTTP {code} with an unreadable body: the call was probably placed but has no id"
            ))
        });
    }
    let message = format!("HTTP {code}: {}", provider_message(body));
    Err(match code {
        401 => CallError::Unauthorized(message),
        402 => CallError::Fatal(format!("{message} (the account is out of funds)")),
        429 | 503 => CallError::Retryable {
            reason: message,
            retry_after,
        },
        500 | 502 | 504 => {
            CallError::Ambiguous(format!("{message}: the call may have been placed"))
        }
        _ => CallError::Rejected(message),
    })
}

/// The provider's `message` (or `error`), or a short excerpt of the body.
fn provider_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        error: Option<String>,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(m), ..
        }) if !m.is_empty() => m,
        Ok(ErrorBody { error: Some(e), .. }) if !e.is_empty() => e,
        _ => {
            let excerpt: String = body.chars().take(120).collect();
            if excerpt.trim().is_empty() {
                "no message".to_string()
            } else {
                excerpt.trim().to_string()
            }
        }
    }
}

fn parse_call_id(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = v.get("call")?.get("id")?;
    match id {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The token in a login answer: `authorization.token` (2.11) or `auth.token` (2.4.0).
fn parse_token(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    ["authorization", "auth"]
        .iter()
        .find_map(|k| v.get(k)?.get("token")?.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The `exp` claim of a JWT, when it has one.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

/// A transport error in a few words, without URLs (they could carry secrets).
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke".to_string()
    } else {
        "the connection failed".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let ok = classify(StatusCode::CREATED, r#"{"call": {"id": "abc"}}"#, None);
        assert_eq!(ok, Ok("abc".to_string()));
        let err = |code: u16| {
            classify(
                StatusCode::from_u16(code).unwrap(),
                r#"{"error": "x", "message": "nope", "status_code": 0}"#,
                None,
            )
            .unwrap_err()
        };
        assert!(matches!(err(400), CallError::Rejected(m) if m == "HTTP 400: nope"));
        assert!(matches!(err(403), CallError::Rejected(_)));
        assert!(matches!(err(404), CallError::Rejected(_)));
        assert!(matches!(err(401), CallError::Unauthorized(_)));
        assert!(matches!(err(402), CallError::Fatal(_)));
        assert!(matches!(err(429), CallError::Retryable { .. }));
        assert!(matches!(err(503), CallError::Retryable { .. }));
        for code in [500, 502, 504] {
            assert!(matches!(err(code), CallError::Ambiguous(_)), "{code}");
        }
        assert!(matches!(
            classify(StatusCode::CREATED, "{\"call\": {\"id\": ", None),
            Err(CallError::Ambiguous(_))
        ));
    }

    #[test]
    fn tokens_and_expiry_are_read() {
        assert_eq!(
            parse_token(r#"{"authorization": {"token": "t1"}}"#).as_deref(),
            Some("t1")
        );
        assert_eq!(
            parse_token(r#"{"auth": {"token": "t2"}}"#).as_deref(),
            Some("t2")
        );
        assert_eq!(parse_token(r#"{"auth": {}}"#), None);
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp": 2000000000}"#);
        let exp = jwt_expiry(&format!("h.{payload}.s")).unwrap();
        assert_eq!(exp, UNIX_EPOCH + Duration::from_secs(2_000_000_000));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://api.fonestorm.com/v2").is_ok());
        assert!(check_base_url("http://127.0.0.1:8088").is_ok());
        assert!(check_base_url("http://localhost:8088/v2").is_ok());
        assert!(check_base_url("http://[::1]:8088").is_ok());
        assert!(
            check_base_url("http://api.fonestorm.com/v2")
                .unwrap_err()
                .contains("plain http")
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let c = Credentials::Login {
            username: "ops".into(),
            password: Secret::new("hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
