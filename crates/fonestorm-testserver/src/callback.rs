//! Delivering callbacks to the URLs clients registered: call `BEGIN`/`END`,
//! inbound calls and inbound SMS. Like FoneStorm, the server sends each callback
//! once (no retry), with the registered method and HTTP Basic auth, and does not
//! follow redirects. Every delivery is bounded by a timeout and recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde::Serialize;
use serde_json::Value;

use crate::config::CallbackFault;
use crate::hooks::{HookMethod, UrlHook};

/// Which event a callback reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// An outbound call's `BEGIN` or `END` (`send_notify`).
    Call,
    /// An inbound call (`receive_notify`).
    InboundCall,
    /// An inbound SMS (`messages/receive`).
    Sms,
}

/// One callback the server sent (or deliberately lost), for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackRecord {
    /// When it was sent or lost, in milliseconds since the server started.
    pub at_ms: u64,
    /// Which event it reports.
    pub kind: CallbackKind,
    /// The FoneNumber whose registration it went to.
    pub fonenumber: String,
    /// The URL it went to.
    pub url: String,
    /// How the fields were sent.
    pub method: HookMethod,
    /// Whether HTTP Basic auth was sent (the credentials themselves are never
    /// recorded).
    pub basic_auth: bool,
    /// The fields sent, e.g. `uid`, `status`, `disposition`.
    pub fields: BTreeMap<String, Value>,
    /// The receiver's HTTP status; `None` when it was lost or the delivery failed.
    pub receiver_status: Option<u16>,
    /// Why the delivery failed (connection refused, timeout), if it did.
    pub error: Option<String>,
    /// Whether a callback fault lost it on purpose: then it was never sent.
    pub lost: bool,
}

impl CallbackRecord {
    /// A field's value as text (numbers written out), e.g. `field("status")`.
    pub fn field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// A callback to send: where, how, and what.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) kind: CallbackKind,
    pub(crate) fonenumber: String,
    pub(crate) hook: UrlHook,
    pub(crate) fields: BTreeMap<String, Value>,
}

impl Delivery {
    /// The record of this delivery, before it is sent.
    pub(crate) fn record(&self, at_ms: u64) -> CallbackRecord {
        CallbackRecord {
            at_ms,
            kind: self.kind,
            fonenumber: self.fonenumber.clone(),
            url: self.hook.url.clone(),
            method: self.hook.method,
            basic_auth: self.hook.username.is_some() || self.hook.password.is_some(),
            fields: self.fields.clone(),
            receiver_status: None,
            error: None,
            lost: false,
        }
    }
}

/// The callbacks of one placed call, sent in order by one task.
#[derive(Debug, Clone)]
pub(crate) struct CallJob {
    /// The `BEGIN` callback; the `END` one is the same with `end_fields` added.
    pub(crate) begin: Delivery,
    pub(crate) end_fields: BTreeMap<String, Value>,
    pub(crate) fault: Option<CallbackFault>,
}

impl CallJob {
    /// The `END` callback.
    pub(crate) fn end(&self) -> Delivery {
        let mut end = self.begin.clone();
        end.fields.extend(self.end_fields.clone());
        end
    }
}

/// The client that delivers callbacks: no redirects, no proxy from the
/// environment (callbacks go to local listeners), nothing kept between tests.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
}

/// Sends one callback; the receiver's status, or why there is none. The error
/// never holds the URL (which might carry credentials) nor the password.
pub(crate) async fn send(
    client: &reqwest::Client,
    delivery: &Delivery,
    timeout: Duration,
) -> Result<u16, String> {
    let hook = &delivery.hook;
    let mut url = reqwest::Url::parse(&hook.url).map_err(|err| format!("bad url: {err}"))?;
    let as_text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if matches!(hook.method, HookMethod::Get | HookMethod::Post) {
        let mut query = url.query_pairs_mut();
        for (name, value) in &delivery.fields {
            query.append_pair(name, &as_text(value));
        }
    }
    let mut request = match hook.method {
        HookMethod::Get => client.get(url),
        HookMethod::Post | HookMethod::Json => client.post(url).json(&delivery.fields),
    };
    if hook.username.is_some() || hook.password.is_some() {
        request = request.basic_auth(
            hook.username.clone().unwrap_or_default(),
            hook.password.clone(),
        );
    }
    let no_answer = || format!("no answer within {timeout:?}");
    let response = tokio::time::timeout(timeout, request.timeout(timeout).send())
        .await
        .map_err(|_| no_answer())?
        .map_err(|err| {
            if err.is_timeout() {
                no_answer()
            } else {
                describe(&err.without_url())
            }
        })?;
    Ok(response.status().as_u16())
}

/// A delivery error with its causes, on one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One line for the log: when, which event, where, and how it went; never a
/// password (the URL is shown without any user info).
pub(crate) fn log_line(record: &CallbackRecord) -> String {
    let url = match reqwest::Url::parse(&record.url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "<bad url>".to_owned(),
    };
    let field = |name: &str| record.field(name).unwrap_or_default();
    let outcome = match (record.lost, record.receiver_status, &record.error) {
        (true, _, _) => "lost on purpose".to_owned(),
        (false, Some(status), _) => status.to_string(),
        (false, None, Some(error)) => format!("failed: {error}"),
        (false, None, None) => "failed".to_owned(),
    };
    let secs = Duration::from_millis(record.at_ms).as_secs_f64();
    format!(
        "{secs:>9.3}s callback {:?} {} {} from={} to={} -> {url} -> {outcome}",
        record.kind,
        field("status"),
        field("disposition"),
        field("from"),
        field("to"),
    )
}
