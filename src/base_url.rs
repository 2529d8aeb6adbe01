//! The provider base URL rules, shared by `validate` and live runs: https,
//! or plain http only to this machine, and never credentials in the URL.
//!
//! A leaf module, so that the playbook checks can use it without reaching
//! into the provider client.

use url::Url;

/// Why a base URL is refused. Every variant holds the URL as it may be
/// shown: with any user name or password replaced by `…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseUrlError {
    /// It does not parse as a URL.
    NotAUrl {
        /// The URL as shown.
        shown: String,
        /// The parser's reason.
        reason: String,
    },
    /// It holds a user name or password (credentials come from the environment).
    Userinfo {
        /// The URL as shown.
        shown: String,
    },
    /// Plain http to another machine: credentials would cross the network unencrypted.
    PlainHttp {
        /// The URL as shown.
        shown: String,
    },
    /// Neither http nor https.
    Scheme {
        /// The URL as shown.
        shown: String,
        /// Its scheme.
        scheme: String,
    },
}

impl std::fmt::Display for BaseUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseUrlError::NotAUrl { shown, reason } => {
                write!(f, "{shown:?} is not a URL ({reason})")
            }
            BaseUrlError::Userinfo { shown } => write!(
                f,
                "{shown:?} holds a user name or password: put credentials in FONESTORM_USERNAME and FONESTORM_PASSWORD (or FONESTORM_TOKEN), never in the URL"
            ),
            BaseUrlError::PlainHttp { shown } => write!(
                f,
                "{shown:?} uses plain http: credentials would cross the network unencrypted (http is only allowed to 127.0.0.1, ::1 or localhost)"
            ),
            BaseUrlError::Scheme { shown, scheme } => {
                write!(f, "{shown:?} is not an http(s) URL (scheme `{scheme}`)")
            }
        }
    }
}

impl std::error::Error for BaseUrlError {}

/// Checks a base URL: https, or plain http only to this machine (a test server),
/// and no user name or password in it (credentials come from the environment).
///
/// Errors never repeat a user name or password written into the URL.
pub fn check_base_url(raw: &str) -> Result<Url, BaseUrlError> {
    let shown = without_userinfo(raw);
    let url = Url::parse(raw).map_err(|e| BaseUrlError::NotAUrl {
        shown: shown.clone(),
        reason: e.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BaseUrlError::Userinfo { shown });
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(BaseUrlError::PlainHttp { shown }),
        other => Err(BaseUrlError::Scheme {
            shown,
            scheme: other.to_string(),
        }),
    }
}

/// `raw` with anything before an `@` in its authority replaced by `…`, so
/// that a URL can be shown in a message without the credentials written into it.
/// Works on text that does not even parse as a URL: there a password holding
/// `/`, `?` or `#` ends the authority early, so everything up to the last `@`
/// is hidden.
pub fn without_userinfo(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let parses = Url::parse(raw).is_ok();
    let authority_end = if parses {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    } else {
        rest.len()
    };
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) if parses => {
            format!("{scheme}…@{}{tail}", &authority[at + 1..])
        }
        Some(at) => format!("{scheme}…@{}", &authority[at + 1..]),
        None => raw.to_string(),
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
