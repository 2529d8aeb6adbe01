//! The callback password, and the one place it is compared.
//!
//! FoneStorm sends it as HTTP Basic auth (`url_username`/`url_password` of
//! the callback settings). It is compared in constant time, and as SHA-256
//! digests, so that neither its content nor its length shows in how long a
//! wrong guess takes.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The environment variable that holds the callback password.
pub const CALLBACK_SECRET_ENV: &str = "CALLBOOK_CALLBACK_SECRET";
/// The user name FoneStorm is told to send with the callback password.
pub const CALLBACK_USER: &str = "callbook";
/// The shortest callback password accepted: it guards a URL open to the internet.
pub const MIN_SECRET_LEN: usize = 16;
/// The longest callback password accepted.
pub const MAX_SECRET_LEN: usize = 256;

/// The callback password; `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct CallbackSecret {
    value: String,
    digest: [u8; 32],
}

/// Why `CALLBOOK_CALLBACK_SECRET` cannot be used; the messages never show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_LEN`].
    TooShort,
    /// Longer than [`MAX_SECRET_LEN`].
    TooLong,
    /// Holds a space, a control or a non-ASCII character, which HTTP Basic
    /// auth does not carry reliably.
    NotPrintable,
    /// Begins or ends with a space or a line break: most often the newline
    /// of a file the value was read from, named apart so it is easy to fix.
    Untrimmed,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::TooShort => write!(
                f,
                "`{CALLBACK_SECRET_ENV}` is too short: use at least {MIN_SECRET_LEN} characters"
            ),
            SecretError::TooLong => write!(
                f,
                "`{CALLBACK_SECRET_ENV}` is too long: use at most {MAX_SECRET_LEN} characters"
            ),
            SecretError::NotPrintable => write!(
                f,
                "`{CALLBACK_SECRET_ENV}` may only hold printable ASCII characters without spaces"
            ),
            SecretError::Untrimmed => write!(
                f,
                "`{CALLBACK_SECRET_ENV}` begins or ends with a space or a line break (a file's trailing newline?): remove it"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

impl CallbackSecret {
    /// Checks and wraps a callback password.
    pub fn new(value: String) -> Result<CallbackSecret, SecretError> {
        // Not trimmed silently: FoneStorm and anything else given the
        // password must send exactly this value.
        if value.trim() != value {
            return Err(SecretError::Untrimmed);
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::NotPrintable);
        }
        if value.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        if value.len() > MAX_SECRET_LEN {
            return Err(SecretError::TooLong);
        }
        let digest = Sha256::digest(value.as_bytes()).into();
        Ok(CallbackSecret { value, digest })
    }

    /// Reads [`CALLBACK_SECRET_ENV`]; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<CallbackSecret>, SecretError> {
        match std::env::var(CALLBACK_SECRET_ENV) {
            Ok(v) if !v.is_empty() => CallbackSecret::new(v).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::NotPrintable),
        }
    }

    /// The password itself, to send to FoneStorm when installing the callbacks.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether `password` is this secret, in constant time.
    fn matches(&self, password: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(password).into();
        given.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSecret(…)")
    }
}

impl fmt::Display for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What an `Authorization` header amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Auth {
    /// User `callbook` with the right password.
    Granted,
    /// No `Authorization` header, or not Basic.
    Missing,
    /// Basic auth with a wrong user name or password (or an unreadable header).
    Wrong,
}

impl Auth {
    /// Checks an `Authorization` header's value against `secret`.
    pub(super) fn check(header: Option<&[u8]>, secret: &CallbackSecret) -> Auth {
        let Some(header) = header else {
            return Auth::Missing;
        };
        let Some(encoded) = header
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
            .and_then(|_| header.get(6..))
        else {
            return Auth::Missing;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii())
        else {
            return Auth::Wrong;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Auth::Wrong;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user == CALLBACK_USER.as_bytes();
        // Compared whatever the user name, so the time taken does not tell which was wrong.
        let password_ok = secret.matches(password);
        if user_ok && password_ok {
            Auth::Granted
        } else {
            Auth::Wrong
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "correct-horse-battery";

    fn secret() -> CallbackSecret {
        CallbackSecret::new(PW.to_string()).unwrap()
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn the_secret_never_shows() {
        let s = secret();
        assert!(!format!("{s:?}").contains(PW));
        assert!(!format!("{s}").contains(PW));
    }

    #[test]
    fn weak_or_odd_secrets_are_refused() {
        assert_eq!(
            CallbackSecret::new("short".into()).unwrap_err(),
            SecretError::TooShort
        );
        assert_eq!(
            CallbackSecret::new("x".repeat(MAX_SECRET_LEN + 1)).unwrap_err(),
            SecretError::TooLong
        );
        for odd in [
            "with a space in it!",
            "line\nbreak-in-the-middle",
            "ünïcödé-password-long",
        ] {
            assert_eq!(
                CallbackSecret::new(odd.into()).unwrap_err(),
                SecretError::NotPrintable
            );
        }
    }

    #[test]
    fn a_secret_with_a_trailing_newline_or_space_is_named_as_such() {
        for untrimmed in [
            format!("{PW}\n"),
            format!("{PW}\r\n"),
            format!(" {PW}"),
            format!("{PW}\t"),
        ] {
            let e = CallbackSecret::new(untrimmed).unwrap_err();
            assert_eq!(e, SecretError::Untrimmed);
            assert!(e.to_string().contains("line break"), "{e}");
        }
    }

    #[test]
    fn a_password_with_colons_is_split_at_the_first_one() {
        let s = CallbackSecret::new("a:b:c-d-e-f-g-h-i-j".to_string()).unwrap();
        assert_eq!(
            Auth::check(Some(&basic("callbook", "a:b:c-d-e-f-g-h-i-j")), &s),
            Auth::Granted
        );
        assert_eq!(
            Auth::check(Some(&basic("callbook:a", "b:c-d-e-f-g-h-i-j")), &s),
            Auth::Granted,
            "the same bytes on the wire"
        );
        assert_eq!(
            Auth::check(Some(&basic("callbook", "a:b")), &s),
            Auth::Wrong
        );
        assert_eq!(Auth::check(Some(b"Basic Y2FsbGJvb2s6"), &s), Auth::Wrong);
    }

    #[test]
    fn only_the_right_user_and_password_pass() {
        let s = secret();
        assert_eq!(Auth::check(Some(&basic("callbook", PW)), &s), Auth::Granted);
        assert_eq!(
            Auth::check(Some(&basic("callbook", "nope")), &s),
            Auth::Wrong
        );
        assert_eq!(Auth::check(Some(&basic("admin", PW)), &s), Auth::Wrong);
        assert_eq!(
            Auth::check(Some(&basic("callbook", &format!("{PW}x"))), &s),
            Auth::Wrong
        );
        assert_eq!(Auth::check(Some(&basic("callbook", "")), &s), Auth::Wrong);
        assert_eq!(Auth::check(None, &s), Auth::Missing);
        assert_eq!(Auth::check(Some(b"Bearer abc"), &s), Auth::Missing);
        assert_eq!(Auth::check(Some(b"Basic"), &s), Auth::Missing);
        assert_eq!(Auth::check(Some(b"Basic !!!"), &s), Auth::Wrong);
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(PW)
        );
        assert_eq!(Auth::check(Some(no_colon.as_bytes()), &s), Auth::Wrong);
        let lower = basic("callbook", PW).to_ascii_lowercase();
        assert_eq!(Auth::check(Some(&lower), &s), Auth::Wrong);
        let mut scheme_lower = basic("callbook", PW);
        scheme_lower[0] = b'b';
        assert_eq!(Auth::check(Some(&scheme_lower), &s), Auth::Granted);
    }
}
