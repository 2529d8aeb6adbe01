//! The webhook token (`CALLBOOK_WEBHOOK_TOKEN`) and the one place it is
//! compared: as SHA-256 digests, in constant time, so that neither its
//! content nor its length shows in how long a wrong guess takes.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The environment variable that holds the webhook token.
pub const WEBHOOK_TOKEN_ENV: &str = "CALLBOOK_WEBHOOK_TOKEN";
/// The shortest token accepted: it guards an endpoint that places calls.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest token accepted.
pub const MAX_TOKEN_LEN: usize = 256;

/// The webhook token; `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct WebhookToken {
    digest: [u8; 32],
}

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookToken(…)")
    }
}

impl WebhookToken {
    /// Checks and wraps a token; the error never shows it.
    ///
    /// # Errors
    /// A message saying what is wrong with it.
    pub fn new(value: &str) -> Result<WebhookToken, String> {
        if value.trim() != value {
            return Err(format!(
                "`{WEBHOOK_TOKEN_ENV}` begins or ends with a space or a line break (a file's trailing newline?): remove it"
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "`{WEBHOOK_TOKEN_ENV}` may only hold printable ASCII characters without spaces"
            ));
        }
        if value.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "`{WEBHOOK_TOKEN_ENV}` is too short: use at least {MIN_TOKEN_LEN} characters"
            ));
        }
        if value.len() > MAX_TOKEN_LEN {
            return Err(format!(
                "`{WEBHOOK_TOKEN_ENV}` is too long: use at most {MAX_TOKEN_LEN} characters"
            ));
        }
        Ok(WebhookToken {
            digest: Sha256::digest(value.as_bytes()).into(),
        })
    }

    /// Reads [`WEBHOOK_TOKEN_ENV`]; `None` when unset or empty.
    ///
    /// # Errors
    /// As [`WebhookToken::new`].
    pub fn from_env() -> Result<Option<WebhookToken>, String> {
        match std::env::var(WEBHOOK_TOKEN_ENV) {
            Ok(v) if !v.is_empty() => WebhookToken::new(&v).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "`{WEBHOOK_TOKEN_ENV}` may only hold printable ASCII characters without spaces"
            )),
        }
    }

    /// Whether the `Authorization` header values grant access: exactly one,
    /// `Bearer <token>` (scheme in any case), with this token.
    pub fn admits<'a>(&self, mut headers: impl Iterator<Item = &'a [u8]>) -> bool {
        let (Some(header), None) = (headers.next(), headers.next()) else {
            return false;
        };
        let Some(given) = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| header.get(7..))
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.trim_ascii()).into();
        given.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef-token";

    fn admits(token: &WebhookToken, headers: &[&str]) -> bool {
        token.admits(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn only_the_one_right_bearer_token_passes() {
        let t = WebhookToken::new(T).unwrap();
        assert!(admits(&t, &[&format!("Bearer {T}")]));
        assert!(admits(&t, &[&format!("bearer {T}")]));
        assert!(!admits(&t, &[]));
        assert!(!admits(&t, &[&format!("Bearer {T}x")]));
        assert!(!admits(&t, &[&format!("Basic {T}")]));
        assert!(!admits(&t, &["Bearer"]));
        assert!(!admits(&t, &["Bearer "]));
        assert!(!admits(
            &t,
            &[&format!("Bearer {T}"), &format!("Bearer {T}")]
        ));
    }

    #[test]
    fn weak_or_odd_tokens_are_refused_without_showing_them() {
        for bad in ["hunter2", "hunter2 with a space!", "hunter2-hunter2-xx\n"] {
            let e = WebhookToken::new(bad).unwrap_err();
            assert!(!e.contains(bad.trim()), "{e}");
        }
        assert!(WebhookToken::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(!format!("{:?}", WebhookToken::new(T).unwrap()).contains(T));
    }
}
