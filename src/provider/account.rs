//! What the account says about one FoneNumber (`GET /fonenumbers/{fonenumber}`):
//! whether it is active, whether it can receive SMS, and where its callbacks
//! point. Read only: `validate --online` uses it to find, before 3 a.m.,
//! a `caller_id` that cannot place the calls or receive the acks.
//!
//! **Assumed**, in one place here ([`flag`]): the Swagger file types
//! `is_active` and `sms_options.sms_enabled` as strings without listing
//! their values, so JSON booleans, numbers `0`/`1` and the strings
//! `true`/`false`, `1`/`0`, `yes`/`no`, `y`/`n`, `active`/`inactive`,
//! `enabled`/`disabled` (any case) are read; anything else, or nothing, is
//! unknown. `sms_enabled` is read under `sms_options` or `message_options`.

use reqwest::Method;
use serde_json::Value;

use super::Client;
use super::hooks::{Callbacks, HooksError, parse_fonenumber};
use super::limiter::RateLimiter;

/// One FoneNumber as the account shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoneNumberStatus {
    /// `is_active`; `None` when the answer does not say.
    pub is_active: Option<bool>,
    /// `sms_enabled`; `None` when the answer does not say.
    pub sms_enabled: Option<bool>,
    /// The callbacks, when the answer shows them.
    pub callbacks: Option<Callbacks>,
}

/// Reads the answer of `GET /fonenumbers/{fonenumber}`; `None` when it is
/// not a JSON object.
pub fn parse_status(body: &str) -> Option<FoneNumberStatus> {
    let v: Value = serde_json::from_str(body).ok()?;
    let root = match v.get("fonenumber") {
        Some(inner) if inner.is_object() => inner,
        _ if v.is_object() => &v,
        _ => return None,
    };
    let sms_enabled = ["sms_options", "message_options"]
        .iter()
        .filter_map(|k| root.get(*k))
        .find_map(|o| o.get("sms_enabled").and_then(flag));
    Some(FoneNumberStatus {
        is_active: root.get("is_active").and_then(flag),
        sms_enabled,
        callbacks: parse_fonenumber(body),
    })
}

/// A yes/no field in any of the spellings the module doc lists.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "active" | "enabled" => Some(true),
            "false" | "0" | "no" | "n" | "inactive" | "disabled" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl Client {
    /// `fonenumber` as the account shows it (one `GET /fonenumbers/{fonenumber}`,
    /// retried on passing failures like every settings request).
    pub async fn fonenumber_status(
        &self,
        limiter: &RateLimiter,
        fonenumber: &str,
    ) -> Result<FoneNumberStatus, HooksError> {
        let path = format!("fonenumbers/{fonenumber}");
        let body = self
            .settings_request(limiter, Method::GET, &path, None, None)
            .await?;
        parse_status(&body).ok_or(HooksError::Unreadable {
            request: format!("GET /{path}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_in_every_spelling() {
        for (text, want) in [
            (r#"true"#, Some(true)),
            (r#"false"#, Some(false)),
            (r#"1"#, Some(true)),
            (r#"0"#, Some(false)),
            (r#""Y""#, Some(true)),
            (r#"" inactive ""#, Some(false)),
            (r#""Enabled""#, Some(true)),
            (r#""maybe""#, None),
            (r#"2"#, None),
            (r#"null"#, None),
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(flag(&v), want, "{text}");
        }
    }

    #[test]
    fn status_is_read_in_both_spellings() {
        let s = parse_status(
            r#"{"fonenumber": {"is_active": "1", "sms_options": {"sms_enabled": "0"},
                "voice_options": {}}}"#,
        )
        .unwrap();
        assert_eq!(s.is_active, Some(true));
        assert_eq!(s.sms_enabled, Some(false));
        assert!(!s.callbacks.unwrap().send_notify.is_set());
        let s = parse_status(r#"{"is_active": false, "message_options": {"sms_enabled": true}}"#)
            .unwrap();
        assert_eq!(s.is_active, Some(false));
        assert_eq!(s.sms_enabled, Some(true));
        let s = parse_status(r#"{"fonenumber": {}}"#).unwrap();
        assert_eq!((s.is_active, s.sms_enabled), (None, None));
        assert!(s.callbacks.is_none());
        assert!(parse_status("[1]").is_none());
        assert!(parse_status("nope").is_none());
    }
}
