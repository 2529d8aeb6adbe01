//! The tokens and call ids the server hands out. The tokens are shaped like the
//! real API's JWTs (a client may read the `exp` claim) but are signed with random
//! bytes: the server recognises them by remembering them, not by checking a
//! signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// The claims of an issued token.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// A JWT for `username`, issued at `iat` and expiring at `exp` (Unix seconds).
pub(crate) fn jwt(username: &str, iat: u64, exp: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = Claims {
        sub: username,
        iat,
        exp,
    };
    // Serializing three plain fields cannot fail; an empty payload would only make
    // the token unreadable, not the server wrong.
    let claims = serde_json::to_vec(&claims).unwrap_or_default();
    let mut signature = [0u8; 32];
    fastrand::fill(&mut signature);
    format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A random id in the shape of a version-4 UUID, like the real API's call ids.
pub(crate) fn call_id() -> String {
    let bits = fastrand::u128(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (bits >> 96) as u32,
        (bits >> 80) as u16,
        (bits >> 68) as u16 & 0x0fff,
        ((bits >> 52) as u16 & 0x3fff) | 0x8000,
        bits as u64 & 0xffff_ffff_ffff,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_has_three_base64url_parts_with_the_claims() {
        let token = jwt("callbook", 100, 160);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        assert_eq!(header, br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"sub": "callbook", "iat": 100, "exp": 160})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 32);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(jwt("a", 1, 2), jwt("a", 1, 2));
    }

    #[test]
    fn call_id_looks_like_a_uuid() {
        let id = call_id();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&id[14..15], "4");
    }
}
