//! The callbacks registered per FoneNumber (`POST /calls/send_notify`,
//! `POST /calls/receive_notify`, `POST /messages/receive`), and how
//! `GET /fonenumbers/{fonenumber}` shows them. FoneStorm keeps one callback per
//! event and FoneNumber, and setting one replaces the previous: so does this.

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

/// The longest callback URL accepted; FoneStorm documents none, this bounds what a
/// client can make the server store and call.
pub(crate) const MAX_URL_LEN: usize = 2048;

/// The longest `url_username`/`url_password` accepted.
pub(crate) const MAX_CREDENTIAL_LEN: usize = 256;

/// How a callback's data is sent to its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookMethod {
    /// The fields as query-string parameters of a `GET`.
    #[serde(rename = "GET")]
    Get,
    /// A `POST` with the fields in the query string and as a JSON body.
    #[serde(rename = "POST")]
    Post,
    /// A `POST` with the fields as a JSON body only.
    #[serde(rename = "JSON")]
    Json,
}

impl HookMethod {
    /// The API's spelling: `GET`, `POST` or `JSON`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookMethod::Get => "GET",
            HookMethod::Post => "POST",
            HookMethod::Json => "JSON",
        }
    }

    /// Reads the API's spelling (exactly, as the API documents it).
    pub fn parse(text: &str) -> Option<HookMethod> {
        match text {
            "GET" => Some(HookMethod::Get),
            "POST" => Some(HookMethod::Post),
            "JSON" => Some(HookMethod::Json),
            _ => None,
        }
    }
}

impl fmt::Display for HookMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A callback URL for a call event (`send_notify` or `receive_notify`).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlHook {
    /// Where the callback goes, an `http` or `https` URL.
    pub url: String,
    /// How the data is sent.
    pub method: HookMethod,
    /// The HTTP Basic user name, if one was given.
    pub username: Option<String>,
    /// The HTTP Basic password, if one was given. Never shown by the API.
    pub password: Option<String>,
}

impl UrlHook {
    /// A hook sending `method` to `url`, without Basic auth.
    pub fn new(url: impl Into<String>, method: HookMethod) -> Self {
        UrlHook {
            url: url.into(),
            method,
            username: None,
            password: None,
        }
    }

    /// The same hook with HTTP Basic auth.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }
}

/// Keeps the password out of test output and logs.
impl fmt::Debug for UrlHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlHook")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where an inbound SMS goes (`POST /messages/receive`'s `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsHook {
    /// Delivered to a URL (`type: URL`).
    Url(UrlHook),
    /// Sent to an e-mail address (`type: Email`); never delivered by this server.
    Email(String),
    /// Forwarded to a phone number (`type: Forward`); never delivered by this server.
    Forward(String),
}

impl SmsHook {
    /// The API's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SmsHook::Url(_) => "URL",
            SmsHook::Email(_) => "Email",
            SmsHook::Forward(_) => "Forward",
        }
    }
}

/// Every callback registered for one FoneNumber; `None` is nothing registered
/// (FoneStorm's `type: None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Outbound calls from the FoneNumber: `BEGIN` and `END`.
    pub send_notify: Option<UrlHook>,
    /// Inbound calls to the FoneNumber.
    pub receive_notify: Option<UrlHook>,
    /// Inbound SMS to the FoneNumber.
    pub sms: Option<SmsHook>,
}

/// Which keys `GET /fonenumbers` uses for the callback settings: the FoneStorm
/// documentation shows both, and clients are asked to read both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OptionsSpelling {
    /// `call_options` and `message_options`.
    #[default]
    Call,
    /// `voice_options` and `sms_options`.
    Voice,
}

/// One call event's setting as `GET /fonenumbers` shows it (no password).
fn url_hook_view(hook: Option<&UrlHook>) -> Value {
    match hook {
        Some(hook) => json!({"type": "URL", "url": hook.url, "method": hook.method.as_str()}),
        None => json!({"type": "None", "url": "", "method": ""}),
    }
}

/// The SMS setting as `GET /fonenumbers` shows it (no password).
fn sms_view(hook: Option<&SmsHook>) -> Value {
    match hook {
        Some(SmsHook::Url(hook)) => {
            json!({"type": "URL", "value": hook.url, "method": hook.method.as_str()})
        }
        Some(SmsHook::Email(address)) => json!({"type": "Email", "value": address, "method": ""}),
        Some(SmsHook::Forward(number)) => {
            json!({"type": "Forward", "value": number, "method": ""})
        }
        None => json!({"type": "None", "value": "", "method": ""}),
    }
}

/// One FoneNumber as `GET /fonenumbers` shows it: never a password.
pub(crate) fn fonenumber_view(fonenumber: &str, hooks: &Hooks, spelling: OptionsSpelling) -> Value {
    let (calls_key, messages_key) = match spelling {
        OptionsSpelling::Call => ("call_options", "message_options"),
        OptionsSpelling::Voice => ("voice_options", "sms_options"),
    };
    let mut view = serde_json::Map::new();
    view.insert("fonenumber".to_owned(), json!(fonenumber));
    view.insert("is_active".to_owned(), json!(true));
    view.insert(
        calls_key.to_owned(),
        json!({
            "send_notify": url_hook_view(hooks.send_notify.as_ref()),
            "receive_notify": url_hook_view(hooks.receive_notify.as_ref()),
        }),
    );
    view.insert(
        messages_key.to_owned(),
        json!({"receive": sms_view(hooks.sms.as_ref())}),
    );
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_never_show_passwords() {
        let hooks = Hooks {
            send_notify: Some(
                UrlHook::new("http://a.example/x", HookMethod::Json).basic_auth("u", "pw-123"),
            ),
            receive_notify: None,
            sms: Some(SmsHook::Url(
                UrlHook::new("http://a.example/s", HookMethod::Post).basic_auth("u", "pw-456"),
            )),
        };
        for spelling in [OptionsSpelling::Call, OptionsSpelling::Voice] {
            let text = fonenumber_view("3214991000", &hooks, spelling).to_string();
            assert!(!text.contains("pw-"), "{text}");
        }
        assert!(!format!("{hooks:?}").contains("pw-"));
    }

    #[test]
    fn spellings() {
        let call = fonenumber_view("3214991000", &Hooks::default(), OptionsSpelling::Call);
        assert_eq!(call["call_options"]["send_notify"]["type"], "None");
        assert_eq!(call["message_options"]["receive"]["type"], "None");
        let voice = fonenumber_view("3214991000", &Hooks::default(), OptionsSpelling::Voice);
        assert_eq!(voice["voice_options"]["receive_notify"]["url"], "");
        assert_eq!(voice["sms_options"]["receive"]["type"], "None");
        assert!(voice.get("call_options").is_none());
    }
}
