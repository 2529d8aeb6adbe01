//! The FoneStorm client: authentication and `POST /calls`, nothing more.
//!
//! Every answer is sorted into what the dispatcher must do next (see
//! [`CallError`]): a call that certainly was not placed may be retried, one
//! that may have been placed must not be, by default. Only the statuses the
//! API documents as "not placed" (400, 401, 402, 403, 404, 429, 503) are
//! certain; every other answer (another 4xx or 5xx, a 3xx, a timeout after
//! sending, a 2xx without a readable call id, a body too large or too slow to
//! read) is ambiguous. Those rules live in [`classify`] so they can change in
//! one place.
//!
//! Secrets are held in [`Secret`], whose `Debug` prints nothing, and sent in
//! headers marked sensitive; no error message ever contains one. Redirects are
//! never followed (they would carry the password or token elsewhere), a plain
//! http base URL never goes through a proxy, and a base URL with a user name
//! or password in it is refused without being echoed.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

pub mod hooks;
pub mod limiter;

use crate::plan::CallRequest;
use limiter::RateLimiter;

/// Renew a login token at most this long before its `exp`; a short-lived
/// token is renewed a quarter of its lifetime before (see [`renew_margin`]).
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// Retries of a login that failed for a passing reason (429, 5xx, no connection).
const LOGIN_RETRIES: u32 = 3;
/// The largest answer body read; the API's answers are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest time spent reading one answer body once its status arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between two attempts of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Pause before the first retry (doubled for each further one).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
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
    /// Anything else: network, server error, unreadable answer, a redirect.
    Failed(String),
}

/// One login attempt's failure, before retries are decided.
enum LoginFailure {
    /// Worth another try: 429, a 5xx, no connection, a timeout.
    Passing {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Final.
    Final(AuthError),
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
    /// When to start renewing it: `expires` less a margin proportional to its lifetime.
    renew_at: Option<SystemTime>,
    /// After a renewal failed for a passing reason while this token was still
    /// valid: the next renewal is not tried before this time.
    retry_renewal_at: Option<SystemTime>,
    /// Renewals that failed in a row while this token was kept.
    failed_renewals: u32,
    generation: u64,
}

impl Token {
    /// Whether the token is still usable at `now` (by its `exp`, when it has one).
    fn valid_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|exp| now < exp)
    }
}

/// How long before its expiry a token of `lifetime` is renewed: the smaller of
/// a minute and a quarter of its lifetime, so that a short-lived token is not
/// renewed before every call.
pub fn renew_margin(lifetime: Duration) -> Duration {
    RENEW_MARGIN.min(lifetime / 4)
}

/// Why the client could not be built; nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// `FONESTORM_TOKEN` holds a character no HTTP header can carry (a line
    /// break, say, when it was read from a file with CRLF endings).
    UnsendableToken,
    /// The HTTP client could not be set up (TLS roots, for example).
    Setup(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::UnsendableToken => f.write_str(
                "FONESTORM_TOKEN holds a line break or another character a token cannot have; nothing was called",
            ),
            ClientError::Setup(reason) => write!(f, "cannot set up HTTP: {reason}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A FoneStorm API client for one run.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    token: Mutex<Option<Token>>,
    /// Held while logging in, so that many calls seeing a 401 renew the token once.
    login_lock: tokio::sync::Mutex<()>,
    /// Told of every request's endpoint and HTTP status (0: no answer), for metrics.
    hook: Option<RequestHook>,
}

/// Hears of each request a [`Client`] makes: the endpoint (`auth`, `calls`,
/// `fonenumbers`) and the HTTP status, 0 when no answer came. A server counts
/// them for its metrics; it must not block.
pub type RequestHook = std::sync::Arc<dyn Fn(&str, u16) + Send + Sync>;

pub use crate::base_url::{BaseUrlError, check_base_url, without_userinfo};

impl Client {
    /// A client for `base` with requests bounded by `timeout`.
    pub fn new(
        base: Url,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        if let Credentials::Token(t) = &credentials
            && HeaderValue::from_str(t.expose()).is_err()
        {
            // Found now, not at the first call: nothing is sent with it.
            return Err(ClientError::UnsendableToken);
        }
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("callbook/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            // A redirect would carry the password or the token wherever it points.
            .redirect(reqwest::redirect::Policy::none());
        if base.scheme() == "http" {
            // Plain http is only allowed to this machine; a proxy would see the
            // password and the token in clear.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let token = match &credentials {
            Credentials::Token(t) => Some(Token {
                value: t.clone(),
                expires: None,
                renew_at: None,
                retry_renewal_at: None,
                failed_renewals: 0,
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
            hook: None,
        })
    }

    /// The same client, telling `hook` of every request it makes.
    #[must_use]
    pub fn with_request_hook(mut self, hook: RequestHook) -> Client {
        self.hook = Some(hook);
        self
    }

    /// Tells the hook, if any, how a request to `endpoint` was answered.
    pub(crate) fn heard(&self, endpoint: &str, code: u16) {
        if let Some(hook) = &self.hook {
            hook(endpoint, code);
        }
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// Whether a login is needed before the next call: none yet, the token
    /// has expired, or it is about to and no failed renewal asked to wait.
    pub fn needs_login(&self) -> bool {
        if !matches!(self.credentials, Credentials::Login { .. }) {
            return false;
        }
        let now = SystemTime::now();
        match &*self.lock_token() {
            None => true,
            Some(t) if !t.valid_at(now) => true,
            Some(t) => {
                t.renew_at.is_some_and(|at| now >= at)
                    && t.retry_renewal_at.is_none_or(|at| now >= at)
            }
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

    /// Renews the token ahead of its expiry, when [`Client::needs_login`] says so.
    ///
    /// A login that fails for a passing reason (429, a 5xx, no connection) is
    /// retried with backoff like a call; while the current token is still
    /// valid, it is kept and the renewal is tried again later instead, so one
    /// bad answer from `/auth` does not stop a run.
    pub async fn renew(&self, limiter: &RateLimiter) -> Result<(), AuthError> {
        let _single_flight = self.login_lock.lock().await;
        if !self.needs_login() {
            return Ok(());
        }
        self.login_with_retries(limiter, true).await
    }

    /// Logs in (`POST /auth`) and keeps the token, unless `seen_generation`
    /// is already stale (another task renewed it meanwhile). Used when there is
    /// no token yet or the provider refused the current one: passing failures
    /// are retried with backoff (honouring `Retry-After`), then given up.
    /// Every login request takes a slot of `limiter`, like every request.
    pub async fn login(
        &self,
        seen_generation: u64,
        limiter: &RateLimiter,
    ) -> Result<(), AuthError> {
        if !matches!(self.credentials, Credentials::Login { .. }) {
            return Err(AuthError::NotRenewable);
        }
        let _single_flight = self.login_lock.lock().await;
        if self.token_generation() != seen_generation && !self.needs_login() {
            return Ok(());
        }
        self.login_with_retries(limiter, false).await
    }

    /// Logs in, retrying passing failures; with `keep_valid`, a failure while
    /// the current token is still valid keeps that token and schedules the
    /// next renewal after the pause instead of waiting here.
    async fn login_with_retries(
        &self,
        limiter: &RateLimiter,
        keep_valid: bool,
    ) -> Result<(), AuthError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (reason, retry_after) = match self.login_once(limiter).await {
                Ok(()) => return Ok(()),
                Err(LoginFailure::Final(e)) => return Err(e),
                Err(LoginFailure::Passing {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            if keep_valid && let Some(pause) = self.keep_token(retry_after) {
                tracing::warn!(
                    "renewing the login token failed ({reason}); the current token is still valid and is kept, renewal is tried again in {}s",
                    pause.as_secs_f64().ceil()
                );
                return Ok(());
            }
            if attempts > LOGIN_RETRIES {
                return Err(AuthError::Failed(format!(
                    "{reason} (gave up after {attempts} attempts)"
                )));
            }
            let pause = retry_after.unwrap_or_else(|| backoff(attempts));
            tracing::debug!(attempt = attempts, ?pause, "retrying the login: {reason}");
            tokio::time::sleep(pause).await;
        }
    }

    /// When the current token is still valid, keeps it and postpones its
    /// renewal by `retry_after` or a backoff that grows with each failed
    /// renewal; returns that pause.
    fn keep_token(&self, retry_after: Option<Duration>) -> Option<Duration> {
        let now = SystemTime::now();
        let mut slot = self.lock_token();
        let token = slot.as_mut().filter(|t| t.valid_at(now))?;
        token.failed_renewals = token.failed_renewals.saturating_add(1);
        let pause = retry_after.unwrap_or_else(|| backoff(token.failed_renewals));
        token.retry_renewal_at = Some(now + pause);
        Some(pause)
    }

    /// One `POST /auth`.
    async fn login_once(&self, limiter: &RateLimiter) -> Result<(), LoginFailure> {
        let Credentials::Login { username, password } = &self.credentials else {
            return Err(LoginFailure::Final(AuthError::NotRenewable));
        };
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
            .map_err(|e| {
                self.heard("auth", 0);
                LoginFailure::Passing {
                    reason: transport_reason(&e),
                    retry_after: None,
                }
            })?;
        let status = response.status();
        self.heard("auth", status.as_u16());
        let code = status.as_u16();
        if status.is_redirection() {
            return Err(LoginFailure::Final(AuthError::Failed(format!(
                "FoneStorm answered with a redirect (HTTP {code}), which callbook never follows (it would send the password elsewhere): check the base URL"
            ))));
        }
        let retry_after = retry_after(response.headers());
        let text = read_body(response)
            .await
            .map_err(|e| LoginFailure::Final(AuthError::Failed(format!("HTTP {code}, but {e}"))))?;
        // Only an error's message is shown; the token of a success stays whole.
        let text = if status.is_success() {
            text
        } else {
            hide_secrets(text, &[password.expose()])
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(LoginFailure::Final(AuthError::Rejected(provider_message(
                &text,
            ))));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(LoginFailure::Passing {
                reason: format!("HTTP {code}: {}", provider_message(&text)),
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(LoginFailure::Final(AuthError::Failed(format!(
                "HTTP {code}: {}",
                provider_message(&text)
            ))));
        }
        let value = parse_token(&text).ok_or_else(|| {
            LoginFailure::Final(AuthError::Failed(format!(
                "unreadable answer to login (HTTP {code})"
            )))
        })?;
        let now = SystemTime::now();
        let expires = jwt_expiry(&value);
        let renew_at = expires.and_then(|exp| {
            let lifetime = exp.duration_since(now).unwrap_or_default();
            if lifetime.is_zero() {
                // Already expired by this machine's clock (a skewed clock):
                // renewing before every call would not help; a 401 will tell.
                tracing::warn!("the new login token has already expired by this machine's clock");
                return None;
            }
            Some(exp - renew_margin(lifetime))
        });
        let expires = expires.filter(|_| renew_at.is_some());
        let mut slot = self.lock_token();
        let generation = slot.as_ref().map_or(0, |t| t.generation) + 1;
        *slot = Some(Token {
            value: Secret::new(value),
            expires,
            renew_at,
            retry_renewal_at: None,
            failed_renewals: 0,
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
            "to": &*call.to,
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
        self.heard("calls", sent.as_ref().map_or(0, |r| r.status().as_u16()));
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
        let retry_after = retry_after(response.headers());
        let text = match read_body(response).await {
            Ok(t) => t,
            Err(e) => {
                return Err(CallError::Ambiguous(format!(
                    "HTTP {}, but {e}: the call may have been placed",
                    status.as_u16(),
                )));
            }
        };
        let password = match &self.credentials {
            Credentials::Login { password, .. } => password.expose(),
            Credentials::Token(_) => "",
        };
        // Only an error's message is shown; the call id of a success stays whole.
        let text = if status.is_success() {
            text
        } else {
            hide_secrets(text, &[token.expose(), password])
        };
        classify(status, &text, retry_after)
    }
}

/// `body` with every `secret` (as written, or escaped inside a JSON string)
/// replaced by `***`: a provider that echoes the token or the password in its
/// error message must not put it in the report, the journal or a log.
fn hide_secrets(mut body: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [*secret, escaped] {
            if !form.is_empty() && body.contains(form) {
                body = body.replace(form, "***");
            }
        }
    }
    body
}

/// The `Retry-After` of an answer in seconds, capped at [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Reads an answer body of at most [`MAX_BODY_BYTES`] within [`BODY_TIMEOUT`]:
/// an endless or dribbling answer must not eat the machine's memory or hold a
/// call (and the run) forever.
async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    let too_large = || format!("the answer is larger than {} KiB", MAX_BODY_BYTES / 1024);
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the answer could not be read ({})", transport_reason(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| format!("the answer took over {}s to read", BODY_TIMEOUT.as_secs()))?
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s, … (capped), times 0.5–1.
pub fn backoff(attempt: u32) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    exp.min(MAX_BACKOFF).mul_f64(0.5 + fastrand::f64() / 2.0)
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
    if status.is_redirection() {
        return Err(CallError::Ambiguous(format!(
            "HTTP {code}: a redirect, which callbook never follows: the call may have been placed"
        )));
    }
    let message = format!("HTTP {code}: {}", provider_message(body));
    // Only what the API documents as "not placed" is certain; anything else
    // (an undocumented 4xx or 5xx, a 1xx) may have placed the call.
    Err(match code {
        400 | 403 | 404 => CallError::Rejected(message),
        401 => CallError::Unauthorized(message),
        402 => CallError::Fatal(format!("{message} (the account is out of funds)")),
        429 | 503 => CallError::Retryable {
            reason: message,
            retry_after,
        },
        _ => CallError::Ambiguous(format!("{message}: the call may have been placed")),
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
        assert!(matches!(
            check_base_url("http://api.fonestorm.com/v2"),
            Err(BaseUrlError::PlainHttp { .. })
        ));
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let b = backoff(attempt);
            assert!(b <= MAX_BACKOFF, "{b:?}");
            assert!(b >= FIRST_BACKOFF / 2, "{b:?}");
        }
        assert!(backoff(1) <= FIRST_BACKOFF);
    }

    #[test]
    fn undocumented_statuses_are_ambiguous() {
        for code in [
            100, 301, 302, 303, 307, 308, 405, 408, 409, 410, 418, 422, 451, 501, 505, 520, 524,
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(classify(status, "{}", None), Err(CallError::Ambiguous(_))),
                "{code}"
            );
        }
    }

    #[test]
    fn renewal_margin_is_proportional_to_short_lifetimes() {
        assert_eq!(renew_margin(Duration::from_secs(3600)), RENEW_MARGIN);
        assert_eq!(
            renew_margin(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(renew_margin(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(renew_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn userinfo_is_refused_and_never_shown() {
        for raw in [
            "http://ops:hunter2@127.0.0.1:8088/v2",
            "https://ops:hunter2@api.fonestorm.com/v2",
            "https://hunter2@api.fonestorm.com",
            "https://ops:hunter2@api.fonestorm.com:99999/v2",
            "http://ops:hunter2@fonestorm.example.com",
            "ftp://ops:hunter2@x",
        ] {
            let m = check_base_url(raw).unwrap_err().to_string();
            assert!(!m.contains("hunter2"), "{m}");
        }
        assert!(
            check_base_url("https://ops:pw@api.fonestorm.com")
                .unwrap_err()
                .to_string()
                .contains("user name or password")
        );
        assert_eq!(
            without_userinfo("https://a:b@c@host/x?y@z"),
            "https://…@host/x?y@z"
        );
        assert_eq!(without_userinfo("https://host/a@b"), "https://host/a@b");
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
