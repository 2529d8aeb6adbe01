//! Where FoneStorm sends a FoneNumber's callbacks: reading, setting and
//! clearing them (`GET /fonenumbers/{fonenumber}`, `POST /calls/send_notify`,
//! `POST /calls/receive_notify`, `POST /messages/receive`).
//!
//! FoneStorm keeps **one** callback per event and FoneNumber, so setting
//! ours replaces whatever was there: [`foreign`] says what another tool set,
//! so that the caller can refuse to replace it. These requests change
//! settings, not calls: sending one twice is harmless, so every passing
//! failure (a 5xx, a timeout, no connection) is retried, unlike a call.
//! They go through the run's [`RateLimiter`] and login like calls do.
//!
//! **Assumed**, each in one place here: `GET /fonenumbers` may spell the
//! call settings `call_options` or `voice_options` and the SMS settings
//! `message_options` or `sms_options` (with or without a `receive` level)
//! ([`parse_fonenumber`]); a setting is cleared with `url: ""`, and the SMS
//! delivery with `type: None` ([`clear`]).

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::limiter::RateLimiter;
use super::{
    AuthError, Client, Credentials, backoff, hide_secrets, provider_message, read_body,
    retry_after, transport_reason,
};
use crate::listener::{CALLBACK_USER, CallbackSecret, PATH_CALLS, PATH_INBOUND, PATH_SMS};

/// Attempts of one settings request before a passing failure is given up.
const ATTEMPTS: u32 = 4;
/// The longest `--public-url`.
pub const MAX_PUBLIC_URL_LEN: usize = 1024;
/// How FoneStorm is told to send callbacks: a JSON body (the listener reads
/// every method; JSON keeps the SMS text out of proxy logs' query strings).
const METHOD: &str = "JSON";

/// One of the three callbacks a page needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// `send_notify`: outbound calls' `BEGIN`/`END`.
    SendNotify,
    /// `receive_notify`: someone called the FoneNumber.
    ReceiveNotify,
    /// `messages/receive`: an SMS arrived.
    Sms,
}

impl Event {
    /// All three, in the order they are shown and set.
    pub const ALL: [Event; 3] = [Event::SendNotify, Event::ReceiveNotify, Event::Sms];

    /// The name shown in tables and messages.
    pub fn name(self) -> &'static str {
        match self {
            Event::SendNotify => "send_notify",
            Event::ReceiveNotify => "receive_notify",
            Event::Sms => "sms",
        }
    }

    /// The listener path this event's callbacks go to.
    pub fn path(self) -> &'static str {
        match self {
            Event::SendNotify => PATH_CALLS,
            Event::ReceiveNotify => PATH_INBOUND,
            Event::Sms => PATH_SMS,
        }
    }

    /// The API path that sets it.
    fn api_path(self) -> &'static str {
        match self {
            Event::SendNotify => "calls/send_notify",
            Event::ReceiveNotify => "calls/receive_notify",
            Event::Sms => "messages/receive",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The https URL at which FoneStorm reaches the listener (`--public-url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(Url);

/// Why a `--public-url` is refused; never shows a user name or password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicUrlError {
    /// It does not parse, or has no host.
    NotAUrl(String),
    /// It holds a user name or password (the password is `CALLBOOK_CALLBACK_SECRET`).
    Userinfo(String),
    /// Plain http to another machine: the password would cross the internet in clear.
    PlainHttp(String),
    /// Neither http nor https.
    Scheme(String),
    /// It has a query string or a fragment, which the callback paths cannot follow.
    QueryOrFragment(String),
    /// Port 0, which nobody can reach.
    PortZero(String),
    /// Its path already ends with a callback path: the endpoints would
    /// repeat it, and every callback would be lost.
    NotABase(String),
    /// Longer than [`MAX_PUBLIC_URL_LEN`].
    TooLong,
}

impl fmt::Display for PublicUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicUrlError::NotAUrl(s) => write!(f, "--public-url: {s:?} is not a URL with a host"),
            PublicUrlError::Userinfo(s) => write!(
                f,
                "--public-url: {s:?} holds a user name or password: the password comes from `CALLBOOK_CALLBACK_SECRET`, never the URL"
            ),
            PublicUrlError::PlainHttp(s) => write!(
                f,
                "--public-url: {s:?} uses plain http: the callback password would cross the network unencrypted (http is only allowed to 127.0.0.1, ::1 or localhost)"
            ),
            PublicUrlError::Scheme(s) => write!(f, "--public-url: {s:?} is not an http(s) URL"),
            PublicUrlError::QueryOrFragment(s) => {
                write!(f, "--public-url: {s:?} has a query string or a fragment")
            }
            PublicUrlError::NotABase(s) => write!(
                f,
                "--public-url: {s:?} already ends with a callback path: give the base URL, callbook adds `/fonestorm/calls`, `/fonestorm/inbound` and `/fonestorm/sms`"
            ),
            PublicUrlError::PortZero(s) => {
                write!(
                    f,
                    "--public-url: {s:?} has port 0, which FoneStorm cannot reach"
                )
            }
            PublicUrlError::TooLong => {
                write!(f, "--public-url is longer than {MAX_PUBLIC_URL_LEN} bytes")
            }
        }
    }
}

impl std::error::Error for PublicUrlError {}

impl PublicUrl {
    /// Checks a public URL: https (http only to this machine), a host, no
    /// user name, password, query or fragment, at most [`MAX_PUBLIC_URL_LEN`].
    pub fn parse(raw: &str) -> Result<PublicUrl, PublicUrlError> {
        if raw.len() > MAX_PUBLIC_URL_LEN {
            return Err(PublicUrlError::TooLong);
        }
        let shown = crate::escape::escape_controls(&super::without_userinfo(raw)).into_owned();
        let url = Url::parse(raw).map_err(|_| PublicUrlError::NotAUrl(shown.clone()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PublicUrlError::Userinfo(shown));
        }
        if url.host().is_none() {
            return Err(PublicUrlError::NotAUrl(shown));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(PublicUrlError::PlainHttp(shown)),
            _ => return Err(PublicUrlError::Scheme(shown)),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PublicUrlError::QueryOrFragment(shown));
        }
        if url.port() == Some(0) {
            return Err(PublicUrlError::PortZero(shown));
        }
        let path = url.path().trim_end_matches('/');
        if Event::ALL.iter().any(|e| path.ends_with(e.path())) {
            return Err(PublicUrlError::NotABase(shown));
        }
        Ok(PublicUrl(url))
    }

    /// The URL of one event's path under this one
    /// (`https://cb.example.com/base` + `/fonestorm/calls`).
    pub fn endpoint(&self, event: Event) -> String {
        let base = self.0.as_str().trim_end_matches('/');
        format!("{base}{}", event.path())
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
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

/// What one event of a FoneNumber is set to, as `GET /fonenumbers` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// `URL`, `Email`, `Forward`, `None` … as the provider says (`URL` when
    /// it gave a URL and no type).
    pub kind: String,
    /// The URL (or the address or number of an SMS delivery); empty for none.
    pub target: String,
    /// `GET`, `POST` or `JSON`, when given.
    pub method: String,
}

impl Setting {
    fn none() -> Setting {
        Setting {
            kind: "None".to_string(),
            target: String::new(),
            method: String::new(),
        }
    }

    /// Whether anything is set: a URL, or an SMS sent by e-mail or forwarded.
    /// A `URL` delivery with an empty URL is cleared, whatever its type says.
    pub fn is_set(&self) -> bool {
        if self.kind.eq_ignore_ascii_case("url") {
            return !self.target.is_empty();
        }
        !self.target.is_empty() || !(self.kind.is_empty() || self.kind.eq_ignore_ascii_case("none"))
    }

    /// Whether it is a URL delivery.
    fn is_url(&self) -> bool {
        self.kind.eq_ignore_ascii_case("url") && !self.target.is_empty()
    }

    /// Whether it points at callbook: at `public`'s path for `event` when
    /// given, otherwise at any URL whose path ends with the event's path.
    pub fn is_ours(&self, event: Event, public: Option<&PublicUrl>) -> bool {
        if !self.is_url() {
            return false;
        }
        let Ok(url) = Url::parse(&self.target) else {
            return false;
        };
        match public {
            Some(public) => Url::parse(&public.endpoint(event)).is_ok_and(|ours| ours == url),
            None => url.query().is_none() && url.path().ends_with(event.path()),
        }
    }

    /// The setting as a table or a message shows it: the URL without any
    /// user name, password or query (they may hold someone's credentials),
    /// control characters escaped; `-` when nothing is set.
    pub fn shown(&self) -> String {
        if !self.is_set() {
            return "-".to_string();
        }
        let target = if self.is_url() {
            hide_query(&super::without_userinfo(&self.target))
        } else if self.target.is_empty() {
            String::new()
        } else {
            format!(" {}", self.target)
        };
        let text = if self.is_url() {
            target
        } else {
            format!("{}{target}", self.kind)
        };
        let text: String = text.chars().take(200).collect();
        crate::escape::escape_controls(&text).into_owned()
    }
}

/// `text` without any of the callback passwords `secrets` in the forms a
/// provider may repeat one in: as is, JSON-escaped, URL-encoded (as a form
/// value, upper- or lower-case escapes, or as the password of a URL), or as
/// the base64 of a Basic `Authorization` (`callbook:<password>`) or of the
/// password alone. Each becomes `***`.
fn hide_callback_secrets(mut text: String, secrets: &[&str]) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let mut forms = vec![
            secret.to_string(),
            serde_json::to_string(secret)
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            lower_escapes(&form),
            form,
        ];
        if let Ok(mut url) = Url::parse("https://callbook@h.invalid/")
            && url.set_password(Some(secret)).is_ok()
            && let Some(password) = url.password()
        {
            forms.push(password.to_string());
        }
        for plain in [format!("{CALLBACK_USER}:{secret}"), secret.to_string()] {
            for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
                forms.push(engine.encode(&plain));
            }
        }
        // Longest first, so that no form is cut by a shorter one inside it.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        for form in forms.iter().filter(|f| !f.is_empty()) {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), "***");
            }
        }
    }
    text
}

/// `%2F` → `%2f`: the same escapes in lower case.
fn lower_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut left = 0;
    for c in encoded.chars() {
        if left > 0 {
            out.push(c.to_ascii_lowercase());
            left -= 1;
        } else {
            out.push(c);
            if c == '%' {
                left = 2;
            }
        }
    }
    out
}

/// `url` with its query string and fragment replaced by `?…`.
fn hide_query(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(i) => format!("{}?…", &url[..i]),
        None => url.to_string(),
    }
}

/// The three callbacks of one FoneNumber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callbacks {
    /// `send_notify`.
    pub send_notify: Setting,
    /// `receive_notify`.
    pub receive_notify: Setting,
    /// The SMS delivery.
    pub sms: Setting,
}

impl Callbacks {
    /// One event's setting.
    pub fn get(&self, event: Event) -> &Setting {
        match event {
            Event::SendNotify => &self.send_notify,
            Event::ReceiveNotify => &self.receive_notify,
            Event::Sms => &self.sms,
        }
    }
}

/// The events that point somewhere other than `public` (nothing set is fine).
pub fn foreign(callbacks: &Callbacks, public: &PublicUrl) -> Vec<Event> {
    Event::ALL
        .into_iter()
        .filter(|&e| {
            let s = callbacks.get(e);
            s.is_set() && !s.is_ours(e, Some(public))
        })
        .collect()
}

/// What is wrong with a FoneNumber's callbacks for a page listening at
/// `public`: one line per event that does not point there (empty when all
/// do). The check `run` of a page makes before its first call.
pub fn problems(fonenumber: &str, callbacks: &Callbacks, public: &PublicUrl) -> Vec<String> {
    Event::ALL
        .into_iter()
        .filter(|&e| !callbacks.get(e).is_ours(e, Some(public)))
        .map(|e| {
            let s = callbacks.get(e);
            let now = if s.is_set() {
                format!("points at {}", s.shown())
            } else {
                "is not set".to_string()
            };
            format!(
                "`{e}` of {fonenumber} {now}, not {} (run `callbook hooks install`)",
                public.endpoint(e)
            )
        })
        .collect()
}

/// Reads the answer of `GET /fonenumbers/{fonenumber}` in either documented
/// spelling; `None` when the call or SMS settings cannot be found in it.
pub fn parse_fonenumber(body: &str) -> Option<Callbacks> {
    let v: Value = serde_json::from_str(body).ok()?;
    let root = match v.get("fonenumber") {
        Some(inner) if inner.is_object() => inner,
        _ => &v,
    };
    let either = |a: &str, b: &str| {
        root.get(a)
            .filter(|o| o.is_object())
            .or_else(|| root.get(b).filter(|o| o.is_object()))
    };
    let calls = either("call_options", "voice_options")?;
    let messages = either("message_options", "sms_options")?;
    let sms = messages
        .get("receive")
        .filter(|o| o.is_object())
        .unwrap_or(messages);
    Some(Callbacks {
        send_notify: setting(calls.get("send_notify"), "url"),
        receive_notify: setting(calls.get("receive_notify"), "url"),
        sms: setting(Some(sms), "value"),
    })
}

/// One setting; the target is under `key` (or the other of `url`/`value`).
fn setting(v: Option<&Value>, key: &str) -> Setting {
    let Some(v) = v.filter(|v| v.is_object()) else {
        return Setting::none();
    };
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let target = match text(key) {
        t if t.is_empty() => text(if key == "url" { "value" } else { "url" }),
        t => t,
    };
    let kind = match text("type") {
        k if k.is_empty() && !target.is_empty() => "URL".to_string(),
        k if k.is_empty() => "None".to_string(),
        k => k,
    };
    let method = match text("method") {
        m if m.is_empty() => text("url_method"),
        m => m,
    };
    Setting {
        kind,
        target,
        method,
    }
}

/// Why a settings request failed; the messages never hold a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HooksError {
    /// The login failed.
    Auth(AuthError),
    /// The provider refused the request.
    Status {
        /// `GET /fonenumbers/3214991000` …
        request: String,
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// No answer after every attempt (no connection, timeouts).
    Unreachable {
        /// The request.
        request: String,
        /// Why, in a few words.
        reason: String,
    },
    /// A 2xx whose body does not show the callbacks.
    Unreadable {
        /// The request.
        request: String,
    },
}

impl fmt::Display for HooksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HooksError::Auth(e) => e.fmt(f),
            HooksError::Status {
                request,
                status,
                message,
            } => write!(
                f,
                "FoneStorm answered `{request}` with HTTP {status}: {message}"
            ),
            HooksError::Unreachable { request, reason } => {
                write!(f, "`{request}` failed: {reason}")
            }
            HooksError::Unreadable { request } => write!(
                f,
                "FoneStorm's answer to `{request}` does not show the callbacks (no `call_options`/`voice_options` and `message_options`/`sms_options`)"
            ),
        }
    }
}

impl std::error::Error for HooksError {}

impl Client {
    /// The callbacks of `fonenumber` (`GET /fonenumbers/{fonenumber}`).
    pub async fn callbacks(
        &self,
        limiter: &RateLimiter,
        fonenumber: &str,
    ) -> Result<Callbacks, HooksError> {
        let path = format!("fonenumbers/{fonenumber}");
        let body = self
            .settings_request(limiter, Method::GET, &path, None, None)
            .await?;
        parse_fonenumber(&body).ok_or(HooksError::Unreadable {
            request: format!("GET /{path}"),
        })
    }

    /// What is wrong with the callbacks of `fonenumber` for a page whose
    /// listener FoneStorm reaches at `public` ([`problems`]; empty when every
    /// event points there): the one request `run` of a page makes to check.
    pub async fn callback_problems(
        &self,
        limiter: &RateLimiter,
        fonenumber: &str,
        public: &PublicUrl,
    ) -> Result<Vec<String>, HooksError> {
        let callbacks = self.callbacks(limiter, fonenumber).await?;
        Ok(problems(fonenumber, &callbacks, public))
    }

    /// Points `event` of `fonenumber` at `public`, with Basic auth
    /// `callbook` / `secret`.
    pub async fn install(
        &self,
        limiter: &RateLimiter,
        fonenumber: &str,
        event: Event,
        public: &PublicUrl,
        secret: &CallbackSecret,
    ) -> Result<(), HooksError> {
        let url = public.endpoint(event);
        let body = match event {
            Event::SendNotify | Event::ReceiveNotify => json!({
                "fonenumber": fonenumber,
                "method": METHOD,
                "url": url,
                "url_username": CALLBACK_USER,
                "url_password": secret.expose(),
            }),
            Event::Sms => json!({
                "fonenumber": fonenumber,
                "type": "URL",
                "value": url,
                "url_method": METHOD,
                "url_username": CALLBACK_USER,
                "url_password": secret.expose(),
            }),
        };
        self.settings_request(
            limiter,
            Method::POST,
            event.api_path(),
            Some(&body),
            Some(secret),
        )
        .await
        .map(drop)
    }

    /// Clears `event` of `fonenumber` (**assumed**: `url: ""`, or `type: None`
    /// for the SMS delivery).
    pub async fn clear(
        &self,
        limiter: &RateLimiter,
        fonenumber: &str,
        event: Event,
    ) -> Result<(), HooksError> {
        let body = match event {
            Event::SendNotify | Event::ReceiveNotify => {
                json!({"fonenumber": fonenumber, "url": ""})
            }
            Event::Sms => json!({"fonenumber": fonenumber, "type": "None"}),
        };
        self.settings_request(limiter, Method::POST, event.api_path(), Some(&body), None)
            .await
            .map(drop)
    }

    /// Sends one settings request, logging in first when needed, renewing a
    /// refused token once, and retrying passing failures; returns the body
    /// of the 2xx answer.
    async fn settings_request(
        &self,
        limiter: &RateLimiter,
        method: Method,
        path: &str,
        body: Option<&Value>,
        secret: Option<&CallbackSecret>,
    ) -> Result<String, HooksError> {
        let request = format!("{method} /{path}");
        // The password of the callbacks is hidden from every answer, not only
        // the ones to `install`: a provider may repeat the current settings
        // (its password included) in an error to a read or a clear, and the
        // retry lines are logged. The environment is where it comes from.
        let from_env = CallbackSecret::from_env().ok().flatten();
        let callback_secrets: Vec<&str> = [secret, from_env.as_ref()]
            .into_iter()
            .flatten()
            .map(CallbackSecret::expose)
            .collect();
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.needs_login() {
                self.renew(limiter).await.map_err(HooksError::Auth)?;
            }
            let token = self
                .lock_token()
                .as_ref()
                .map(|t| t.value.clone())
                .ok_or(HooksError::Auth(AuthError::NotRenewable))?;
            let mut header = HeaderValue::from_str(token.expose()).map_err(|_| {
                HooksError::Auth(AuthError::Failed(
                    "the token is not a valid HTTP header value".into(),
                ))
            })?;
            header.set_sensitive(true);
            limiter.acquire().await;
            let mut builder = self
                .http
                .request(method.clone(), self.endpoint(path))
                .header("token", header);
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let sent = builder.send().await;
            self.heard(
                "fonenumbers",
                sent.as_ref().map_or(0, |r| r.status().as_u16()),
            );
            let (reason, pause) = match sent {
                Err(e) => (transport_reason(&e), None),
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(response.headers());
                    match read_body(response).await {
                        Err(e) => (e, None),
                        Ok(text) if status.is_success() => return Ok(text),
                        Ok(text) => {
                            let password = match &self.credentials {
                                Credentials::Login { password, .. } => password.expose(),
                                Credentials::Token(_) => "",
                            };
                            let hidden = |text: String| {
                                let text = hide_secrets(text, &[token.expose(), password]);
                                hide_callback_secrets(text, &callback_secrets)
                            };
                            // Hidden again once read: JSON escapes (`\u0068…`)
                            // spell a secret differently until decoded.
                            let message = hidden(provider_message(&hidden(text)));
                            let code = status.as_u16();
                            if status == StatusCode::UNAUTHORIZED
                                && !renewed
                                && matches!(self.credentials, Credentials::Login { .. })
                            {
                                renewed = true;
                                let seen = self.token_generation();
                                self.login(seen, limiter).await.map_err(HooksError::Auth)?;
                                continue;
                            }
                            if !(code == 429 || status.is_server_error()) {
                                return Err(HooksError::Status {
                                    request,
                                    status: code,
                                    message,
                                });
                            }
                            if attempt >= ATTEMPTS {
                                return Err(HooksError::Status {
                                    request,
                                    status: code,
                                    message: format!(
                                        "{message} (gave up after {attempt} attempts)"
                                    ),
                                });
                            }
                            (format!("HTTP {code}: {message}"), wait)
                        }
                    }
                }
            };
            if attempt >= ATTEMPTS {
                return Err(HooksError::Unreachable {
                    request,
                    reason: format!("{reason} (gave up after {attempt} attempts)"),
                });
            }
            let pause = pause.unwrap_or_else(|| backoff(attempt));
            tracing::debug!(attempt, ?pause, "retrying `{request}`: {reason}");
            tokio::time::sleep(pause.min(Duration::from_secs(60))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> PublicUrl {
        PublicUrl::parse("https://cb.example.com/hooks/").unwrap()
    }

    #[test]
    fn the_callback_secret_is_hidden_in_every_spelling() {
        use base64::Engine as _;
        let secret = "hooks/test+secret=8b2e71&x:y\\q";
        let b64 = base64::engine::general_purpose::STANDARD;
        for form in [
            secret.to_string(),
            r"hooks/test+secret=8b2e71&x:y\\q".to_string(),
            "hooks%2Ftest%2Bsecret%3D8b2e71%26x%3Ay%5Cq".to_string(),
            "hooks%2ftest%2bsecret%3d8b2e71%26x%3ay%5cq".to_string(),
            b64.encode(format!("callbook:{secret}")),
            b64.encode(secret),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("callbook:{secret}")),
        ] {
            let text = format!("before {form} after");
            assert_eq!(
                hide_callback_secrets(text.clone(), &[secret]),
                "before *** after",
                "{form}"
            );
        }
        let userinfo = Url::parse(&format!(
            "https://callbook:{}@h/",
            "hooks%2Ftest+secret%3D8b2e71&x%3Ay%5Cq"
        ))
        .unwrap();
        let shown = hide_callback_secrets(userinfo.to_string(), &[secret]);
        assert!(!shown.contains("8b2e71"), "{shown}");
        assert_eq!(
            hide_callback_secrets("nothing".into(), &[secret]),
            "nothing"
        );
        assert_eq!(hide_callback_secrets("x".into(), &[""]), "x");
    }

    #[test]
    fn public_urls_are_checked() {
        assert_eq!(
            public().endpoint(Event::SendNotify),
            "https://cb.example.com/hooks/fonestorm/calls"
        );
        assert_eq!(
            PublicUrl::parse("https://cb.example.com")
                .unwrap()
                .endpoint(Event::Sms),
            "https://cb.example.com/fonestorm/sms"
        );
        assert!(PublicUrl::parse("http://127.0.0.1:8080").is_ok());
        assert!(PublicUrl::parse("http://localhost:8080").is_ok());
        assert!(matches!(
            PublicUrl::parse("http://cb.example.com"),
            Err(PublicUrlError::PlainHttp(_))
        ));
        assert!(matches!(
            PublicUrl::parse("ftp://cb.example.com"),
            Err(PublicUrlError::Scheme(_))
        ));
        assert!(matches!(
            PublicUrl::parse("https://cb.example.com/?a=1"),
            Err(PublicUrlError::QueryOrFragment(_))
        ));
        assert!(matches!(
            PublicUrl::parse("https://cb.example.com/#x"),
            Err(PublicUrlError::QueryOrFragment(_))
        ));
        assert!(matches!(
            PublicUrl::parse("cb.example.com"),
            Err(PublicUrlError::NotAUrl(_))
        ));
        assert!(matches!(
            PublicUrl::parse(&format!("https://cb.example.com/{}", "a".repeat(2000))),
            Err(PublicUrlError::TooLong)
        ));
        for zero in ["https://cb.example.com:0/x", "http://[::1]:0"] {
            assert!(
                matches!(PublicUrl::parse(zero), Err(PublicUrlError::PortZero(_))),
                "{zero}"
            );
        }
        // The default port is dropped; another is kept.
        assert_eq!(
            PublicUrl::parse("https://cb.example.com:443/")
                .unwrap()
                .endpoint(Event::Sms),
            "https://cb.example.com/fonestorm/sms"
        );
        assert!(PublicUrl::parse("https://cb.example.com:65535").is_ok());
        let e = PublicUrl::parse("https://ops:hunter2@cb.example.com").unwrap_err();
        assert!(matches!(e, PublicUrlError::Userinfo(_)));
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn both_spellings_are_read() {
        let call = r#"{"fonenumber": {"fonenumber": "3214991000",
            "call_options": {"send_notify": {"type": "URL", "url": "https://a/fonestorm/calls", "method": "JSON"},
                             "receive_notify": {"type": "None", "url": "", "method": ""}},
            "message_options": {"receive": {"type": "Email", "value": "ops@example.com", "method": ""}}}}"#;
        let c = parse_fonenumber(call).unwrap();
        assert_eq!(c.send_notify.target, "https://a/fonestorm/calls");
        assert_eq!(c.send_notify.method, "JSON");
        assert!(!c.receive_notify.is_set());
        assert_eq!(c.sms.kind, "Email");
        assert!(c.sms.is_set());
        let voice = r#"{"fonenumber": {"voice_options": {"send_notify": {"url": "https://b/x"}},
            "sms_options": {"type": "URL", "value": "https://b/fonestorm/sms"}}}"#;
        let v = parse_fonenumber(voice).unwrap();
        assert_eq!(v.send_notify.kind, "URL");
        assert!(!v.receive_notify.is_set());
        assert_eq!(v.sms.target, "https://b/fonestorm/sms");
        assert!(v.sms.is_ours(Event::Sms, None));
        assert!(parse_fonenumber(r#"{"fonenumber": {}}"#).is_none());
        let cleared = r#"{"call_options": {"send_notify": {"type": "URL", "url": ""}},
            "message_options": {"receive": {"type": "Forward", "value": ""}}}"#;
        let c = parse_fonenumber(cleared).unwrap();
        assert!(
            !c.send_notify.is_set(),
            "a URL type with an empty URL is cleared"
        );
        assert!(c.sms.is_set(), "a forward is a delivery elsewhere");
        assert!(parse_fonenumber("not json").is_none());
        assert!(parse_fonenumber(r#"{"fonenumber": {"call_options": {}}}"#).is_none());
    }

    fn url(target: &str) -> Setting {
        Setting {
            kind: "URL".into(),
            target: target.into(),
            method: "JSON".into(),
        }
    }

    #[test]
    fn ours_is_exactly_the_public_url() {
        let p = public();
        let s = url("https://cb.example.com/hooks/fonestorm/calls");
        assert!(s.is_ours(Event::SendNotify, Some(&p)));
        assert!(!s.is_ours(Event::ReceiveNotify, Some(&p)));
        assert!(
            !url("https://other.example.com/fonestorm/calls").is_ours(Event::SendNotify, Some(&p))
        );
        assert!(url("https://other.example.com/fonestorm/calls").is_ours(Event::SendNotify, None));
        assert!(!url("https://other.example.com/calls").is_ours(Event::SendNotify, None));
        let email = Setting {
            kind: "Email".into(),
            target: "ops@example.com".into(),
            method: String::new(),
        };
        assert!(!email.is_ours(Event::Sms, None));
    }

    #[test]
    fn foreign_settings_are_named() {
        let c = Callbacks {
            send_notify: url("https://cb.example.com/hooks/fonestorm/calls"),
            receive_notify: Setting::none(),
            sms: url("https://else.example.com/sms"),
        };
        assert_eq!(foreign(&c, &public()), [Event::Sms]);
        let p = problems("3214991000", &c, &public());
        assert_eq!(p.len(), 2);
        assert!(
            p[0].contains("`receive_notify` of 3214991000 is not set"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("points at https://else.example.com/sms"),
            "{}",
            p[1]
        );
    }

    #[test]
    fn shown_urls_hide_credentials_and_queries() {
        assert_eq!(
            url("https://u:pw@h.example.com/x?token=abc").shown(),
            "https://…@h.example.com/x?…"
        );
        assert_eq!(Setting::none().shown(), "-");
        let email = Setting {
            kind: "Forward".into(),
            target: "13214991008".into(),
            method: String::new(),
        };
        assert_eq!(email.shown(), "Forward 13214991008");
        assert!(!url("https://h/\u{1b}[2J").shown().contains('\u{1b}'));
    }
}
