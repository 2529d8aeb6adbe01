//! The checks on request bodies. The test server is stricter than the real API is
//! known to be (no unknown fields, digits only), so that a client bug shows up as a
//! `400` in a test instead of as a surprise in production.

use serde::Deserialize;
use serde_json::Value;

use crate::config::SmsTextField;
use crate::error::ApiError;
use crate::hooks::{HookMethod, MAX_CREDENTIAL_LEN, MAX_URL_LEN, SmsHook, UrlHook};
use crate::state::InboundSms;

/// The service types the API knows.
pub(crate) const SERVICE_TYPES: [&str; 5] =
    ["TTS", "SoundFile", "Device", "VoiceMail", "Phonenumber"];

/// The longest token lifetime `POST /auth` grants, in seconds.
pub(crate) const MAX_EXPIRES: u64 = 86_400;

/// The token lifetime when `POST /auth` names none, in seconds.
pub(crate) const DEFAULT_EXPIRES: u64 = 3_600;

/// A checked `POST /calls` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallRequest {
    pub(crate) fonenumber: String,
    pub(crate) to: String,
    pub(crate) service_type: String,
    pub(crate) service_id: String,
}

/// A checked `POST /auth` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthRequest {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) expires: Option<u64>,
}

/// Whether a `Content-Type` header value names JSON.
pub(crate) fn is_json_content_type(value: Option<&str>) -> bool {
    value
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses a body that must be one JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("the body is not valid JSON: {err}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::bad_request("the body must be a JSON object"))
    }
}

/// Checks a call request's fields; `fonenumbers` are the account's FoneNumbers.
pub(crate) fn call_request(body: Value, fonenumbers: &[String]) -> Result<CallRequest, ApiError> {
    let call: CallRequest = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid call request: {err}")))?;
    if !is_fonenumber(&call.fonenumber) {
        return Err(ApiError::bad_request(format!(
            "`fonenumber` must be exactly 10 digits, got `{}`",
            call.fonenumber
        )));
    }
    if !is_dialable(&call.to) {
        return Err(ApiError::bad_request(format!(
            "`to` must be 7 to 15 digits, `011` and up to 15 digits, or a speed dial of 1 to 6 digits, got `{}`",
            call.to
        )));
    }
    if !SERVICE_TYPES.contains(&call.service_type.as_str()) {
        return Err(ApiError::bad_request(format!(
            "`service_type` must be one of {}, got `{}`",
            SERVICE_TYPES.join(", "),
            call.service_type
        )));
    }
    if call.service_id.trim().is_empty() {
        return Err(ApiError::bad_request("`service_id` must not be empty"));
    }
    if !fonenumbers.contains(&call.fonenumber) {
        return Err(ApiError::not_found(format!(
            "`{}` is not a FoneNumber of this account",
            call.fonenumber
        )));
    }
    Ok(call)
}

/// Checks an auth request's fields (not the credentials).
pub(crate) fn auth_request(body: Value) -> Result<AuthRequest, ApiError> {
    let auth: AuthRequest = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid auth request: {err}")))?;
    if let Some(expires) = auth.expires
        && !(1..=MAX_EXPIRES).contains(&expires)
    {
        return Err(ApiError::bad_request(format!(
            "`expires` must be between 1 and {MAX_EXPIRES} seconds, got {expires}"
        )));
    }
    Ok(auth)
}

/// A `POST /calls/send_notify` or `POST /calls/receive_notify` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyRequest {
    fonenumber: String,
    url: String,
    method: Option<String>,
    url_username: Option<String>,
    url_password: Option<String>,
}

/// A `POST /messages/receive` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageReceiveRequest {
    fonenumber: String,
    #[serde(rename = "type")]
    kind: String,
    value: Option<String>,
    url_method: Option<String>,
    url_username: Option<String>,
    url_password: Option<String>,
}

/// Checks a `send_notify`/`receive_notify` body: the FoneNumber and what to
/// register, `None` when `url` is `""` (which clears the callback).
pub(crate) fn notify_request(
    body: Value,
    fonenumbers: &[String],
) -> Result<(String, Option<UrlHook>), ApiError> {
    let request: NotifyRequest = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid callback request: {err}")))?;
    account_fonenumber(&request.fonenumber, fonenumbers)?;
    if request.url.is_empty() {
        if let Some(method) = &request.method {
            hook_method("method", method)?;
        }
        return Ok((request.fonenumber, None));
    }
    let method = match &request.method {
        Some(method) => hook_method("method", method)?,
        None => return Err(ApiError::bad_request("`method` is required with a `url`")),
    };
    callback_url("url", &request.url)?;
    let (username, password) = credentials(request.url_username, request.url_password)?;
    let hook = UrlHook {
        url: request.url,
        method,
        username,
        password,
    };
    Ok((request.fonenumber, Some(hook)))
}

/// Checks a `messages/receive` body: the FoneNumber and what to register,
/// `None` for `type: None` (which clears the delivery).
pub(crate) fn message_receive_request(
    body: Value,
    fonenumbers: &[String],
) -> Result<(String, Option<SmsHook>), ApiError> {
    let request: MessageReceiveRequest = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid message request: {err}")))?;
    account_fonenumber(&request.fonenumber, fonenumbers)?;
    let value = request.value.unwrap_or_default();
    let method = match &request.url_method {
        Some(method) => hook_method("url_method", method)?,
        None => HookMethod::Post,
    };
    let hook = match request.kind.as_str() {
        "None" => None,
        "URL" => {
            callback_url("value", &value)?;
            let (username, password) = credentials(request.url_username, request.url_password)?;
            Some(SmsHook::Url(UrlHook {
                url: value,
                method,
                username,
                password,
            }))
        }
        "Email" => {
            let plausible = value.len() <= MAX_URL_LEN
                && value
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !value.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plausible {
                return Err(ApiError::bad_request(format!(
                    "`value` must be an e-mail address for `type` `Email`, got `{}`",
                    shorten(&value)
                )));
            }
            Some(SmsHook::Email(value))
        }
        "Forward" => {
            if !is_dialable(&value) {
                return Err(ApiError::bad_request(format!(
                    "`value` must be a phone number for `type` `Forward`, got `{}`",
                    shorten(&value)
                )));
            }
            Some(SmsHook::Forward(value))
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "`type` must be one of URL, Email, Forward, None, got `{}`",
                shorten(other)
            )));
        }
    };
    Ok((request.fonenumber, hook))
}

/// The longest `from` a simulation accepts.
const MAX_FROM_LEN: usize = 64;

/// The longest SMS text a simulation accepts (ten concatenated SMS).
const MAX_SMS_LEN: usize = 1600;

/// A `POST /_simulate/sms` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateSms {
    from: String,
    to: String,
    text: String,
    field: Option<String>,
    #[serde(default)]
    omit_to: bool,
}

/// A `POST /_simulate/inbound_call` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateCall {
    from: String,
    to: String,
}

/// Checks a `POST /_simulate/sms` body.
pub(crate) fn simulate_sms(body: Value) -> Result<InboundSms, ApiError> {
    let sms: SimulateSms = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid simulated SMS: {err}")))?;
    sender(&sms.from)?;
    if sms.text.chars().count() > MAX_SMS_LEN {
        return Err(ApiError::bad_request(format!(
            "`text` is longer than {MAX_SMS_LEN} characters"
        )));
    }
    let field = match &sms.field {
        Some(name) => Some(SmsTextField::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`field` must be one of message, msg, text, body, got `{}`",
                shorten(name)
            ))
        })?),
        None => None,
    };
    Ok(InboundSms {
        from: sms.from,
        to: sms.to,
        text: sms.text,
        field,
        omit_to: sms.omit_to,
    })
}

/// Checks a `POST /_simulate/inbound_call` body: the caller and the FoneNumber.
pub(crate) fn simulate_call(body: Value) -> Result<(String, String), ApiError> {
    let call: SimulateCall = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("invalid simulated call: {err}")))?;
    sender(&call.from)?;
    Ok((call.from, call.to))
}

/// A sender is sent as given (so that clients' normalising can be tested), but
/// bounded and printable.
pub(crate) fn sender(from: &str) -> Result<(), ApiError> {
    if from.is_empty() || from.chars().count() > MAX_FROM_LEN || from.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "`from` must be 1 to {MAX_FROM_LEN} printable characters"
        )));
    }
    Ok(())
}

/// Checks a FoneNumber's form (`400`) and that the account has it (`404`).
pub(crate) fn account_fonenumber(fonenumber: &str, fonenumbers: &[String]) -> Result<(), ApiError> {
    if !is_fonenumber(fonenumber) {
        return Err(ApiError::bad_request(format!(
            "`fonenumber` must be exactly 10 digits, got `{}`",
            shorten(fonenumber)
        )));
    }
    if !fonenumbers.iter().any(|known| known == fonenumber) {
        return Err(ApiError::not_found(format!(
            "`{fonenumber}` is not a FoneNumber of this account"
        )));
    }
    Ok(())
}

fn hook_method(field: &str, text: &str) -> Result<HookMethod, ApiError> {
    HookMethod::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{field}` must be one of GET, POST, JSON, got `{}`",
            shorten(text)
        ))
    })
}

/// Checks a callback URL: absolute `http`/`https` with a host, bounded length.
pub(crate) fn callback_url(field: &str, url: &str) -> Result<(), ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(format!(
            "`{field}` is longer than {MAX_URL_LEN} bytes"
        )));
    }
    let parsed = reqwest::Url::parse(url).map_err(|err| {
        ApiError::bad_request(format!(
            "`{field}` is not a URL ({err}): `{}`",
            shorten(url)
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::bad_request(format!(
            "`{field}` must be an http or https URL, got `{}`",
            shorten(url)
        )));
    }
    // Credentials in the URL would be shown back by `GET /fonenumbers`; they
    // belong in `url_username`/`url_password`, which are never shown.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::bad_request(format!(
            "`{field}` must not hold credentials, use `url_username` and `url_password`"
        )));
    }
    Ok(())
}

/// Checks the Basic-auth credentials; empty strings mean none.
fn credentials(
    username: Option<String>,
    password: Option<String>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let username = username.filter(|name| !name.is_empty());
    let password = password.filter(|password| !password.is_empty());
    if username
        .as_ref()
        .is_some_and(|name| name.len() > MAX_CREDENTIAL_LEN)
        || password
            .as_ref()
            .is_some_and(|password| password.len() > MAX_CREDENTIAL_LEN)
    {
        return Err(ApiError::bad_request(format!(
            "`url_username` and `url_password` must be at most {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    if username.as_ref().is_some_and(|name| name.contains(':')) {
        return Err(ApiError::bad_request(
            "`url_username` must not contain `:` (HTTP Basic auth cannot carry it)",
        ));
    }
    Ok((username, password))
}

/// Bounds how much of a client's text an error message repeats.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A FoneNumber: exactly ten digits.
pub(crate) fn is_fonenumber(number: &str) -> bool {
    number.len() == 10 && all_digits(number)
}

/// A number the API dials: 1–6 digits (speed dial), 7–15 digits, or `011` followed
/// by up to 15 digits (the E.164 limit applied without the international prefix).
pub(crate) fn is_dialable(to: &str) -> bool {
    all_digits(to) && (matches!(to.len(), 1..=15) || (to.starts_with("011") && to.len() <= 18))
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dialable_numbers() {
        for to in [
            "1",
            "123456",
            "3214991",
            "13214991008",
            "123456789012345",
            "011123456789012345",
        ] {
            assert!(is_dialable(to), "{to}");
        }
        for to in [
            "",
            "1234567890123456",
            "0111234567890123456",
            "(321) 499-1008",
            "+13214991008",
            "1321499100a",
        ] {
            assert!(!is_dialable(to), "{to}");
        }
    }

    #[test]
    fn fonenumbers_are_ten_digits() {
        assert!(is_fonenumber("3214991000"));
        assert!(!is_fonenumber("321499100"));
        assert!(!is_fonenumber("13214991000"));
        assert!(!is_fonenumber("321499100x"));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(Some("application/json")));
        assert!(is_json_content_type(Some(
            "Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(None));
    }

    fn call(body: Value) -> Result<CallRequest, u16> {
        call_request(body, &["3214991000".to_owned()]).map_err(|err| err.status.as_u16())
    }

    #[test]
    fn call_checks() {
        let good = json!({"fonenumber": "3214991000", "to": "13214991008", "service_type": "TTS", "service_id": "hi"});
        assert!(call(good.clone()).is_ok());
        let with = |key: &str, value: Value| {
            let mut body = good.clone();
            body[key] = value;
            call(body)
        };
        assert_eq!(with("extra", json!("x")), Err(400));
        assert_eq!(with("to", json!(13214991008u64)), Err(400));
        assert_eq!(with("to", json!("+13214991008")), Err(400));
        assert_eq!(with("service_type", json!("tts")), Err(400));
        assert_eq!(with("service_id", json!(" ")), Err(400));
        assert_eq!(with("fonenumber", json!("321499100")), Err(400));
        assert_eq!(with("fonenumber", json!("3214991001")), Err(404));
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("service_id");
        assert_eq!(call(missing), Err(400));
    }

    #[test]
    fn auth_checks() {
        assert!(auth_request(json!({"username": "u", "password": "p"})).is_ok());
        assert!(auth_request(json!({"username": "u", "password": "p", "expires": 86400})).is_ok());
        assert!(auth_request(json!({"username": "u", "password": "p", "expires": 86401})).is_err());
        assert!(auth_request(json!({"username": "u", "password": "p", "expires": 0})).is_err());
        assert!(auth_request(json!({"username": "u", "password": "p", "extra": 1})).is_err());
        assert!(auth_request(json!({"username": "u"})).is_err());
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"{").is_err());
        assert!(json_object(b"{}").is_ok());
    }
}
