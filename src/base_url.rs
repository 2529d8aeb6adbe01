//! The provider base URL rules, shared by `validate` and live runs: https,
//! or plain http only to this machine, and never credentials in the URL.
//!
//! A leaf module, so that the playbook checks can use it without reaching
//! into the provider client.

use url::Url;

/// Checks a base URL: https, or plain http only to this machine (a test server),
/// and no user name or password in it (credentials come from the environment).
///
/// Messages never repeat a user name or password written into the URL.
pub fn check_base_url(raw: &str) -> Result<Url, String> {
    let shown = without_userinfo(raw);
    let url = Url::parse(raw).map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{shown:?} holds a user name or password: put credentials in FONESTORM_USERNAME and FONESTORM_PASSWORD (or FONESTORM_TOKEN), never in the URL"
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{shown:?} uses plain http: credentials would cross the network unencrypted (http is only allowed to 127.0.0.1, ::1 or localhost)"
        )),
        other => Err(format!(
            "{shown:?} is not an http(s) URL (scheme `{other}`)"
        )),
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
