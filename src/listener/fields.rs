//! Turning a callback request's query string and body into fields.
//!
//! FoneStorm's `GET` method sends the data as a query string, `POST` as a
//! query string and a JSON body, `JSON` as a JSON body; a form body is
//! accepted too. Decoding is strict: a bad percent-escape or bytes that are
//! not UTF-8 refuse the request instead of being guessed at, because a
//! callback read wrongly could acknowledge a page nobody took.
//!
//! A key given twice in one source (the query string, or the body) with two
//! different values is refused too: which one was meant cannot be known, and
//! taking either would let text spliced into a request (an SMS whose
//! `&from=…` reached a query string unescaped) replace the sender. Between
//! the two sources the body wins, as FoneStorm's `POST` sends the full data
//! there.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::model::callback::{CallbackError, RawFields};

/// Why the fields could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FieldsError {
    /// Malformed data (400).
    Malformed(String),
    /// A body of a type callbook does not read (415).
    UnsupportedType,
}

impl From<CallbackError> for FieldsError {
    fn from(e: CallbackError) -> Self {
        FieldsError::Malformed(e.to_string())
    }
}

/// The fields of a request: the query string first, then the body's (a key
/// in both keeps the body's value; a key twice in one of them with
/// different values is refused).
pub(super) fn decode(
    query: Option<&str>,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<RawFields, FieldsError> {
    let mut raw = RawFields::new();
    if let Some(query) = query {
        decode_form(query.as_bytes(), &mut raw)?;
    }
    if body.trim_ascii().is_empty() {
        return Ok(raw);
    }
    let media = content_type.map(|ct| {
        let end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
        ct[..end].trim_ascii().to_ascii_lowercase()
    });
    match media.as_deref() {
        Some(b"application/json") => decode_json(body, &mut raw)?,
        Some(m) if m.starts_with(b"application/") && m.ends_with(b"+json") => {
            decode_json(body, &mut raw)?;
        }
        Some(b"application/x-www-form-urlencoded") => decode_form(body, &mut raw)?,
        Some(_) => return Err(FieldsError::UnsupportedType),
        None if body.trim_ascii_start().starts_with(b"{") => decode_json(body, &mut raw)?,
        None => decode_form(body, &mut raw)?,
    }
    Ok(raw)
}

/// The fields of one source (the query string or the body) as they are
/// added to the request's: a key seen again must bring the same value.
struct Source<'a> {
    raw: &'a mut RawFields,
    /// Every key of this source with its value; bounded by the source's
    /// size (the body's 64 KiB, the header's 16 KiB), looked up by hash so
    /// that thousands of tiny fields cost little.
    seen: HashMap<String, String>,
}

impl<'a> Source<'a> {
    fn new(raw: &'a mut RawFields) -> Source<'a> {
        Source {
            raw,
            seen: HashMap::new(),
        }
    }

    fn add(&mut self, key: String, value: String) -> Result<(), FieldsError> {
        match self.seen.get(&key) {
            Some(first) if *first == value => Ok(()),
            Some(_) => Err(FieldsError::Malformed(format!(
                "field `{key}` is given twice with different values"
            ))),
            None => {
                // Checks the key (printable, bounded) before it is ever shown.
                self.raw.insert(&key, &value)?;
                self.seen.insert(key, value);
                Ok(())
            }
        }
    }
}

/// `a=1&b=2`, `+` for a space, `%XX` escapes; the result must be UTF-8.
fn decode_form(input: &[u8], raw: &mut RawFields) -> Result<(), FieldsError> {
    let mut source = Source::new(raw);
    for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        source.add(percent_decode(key)?, percent_decode(value)?)?;
    }
    Ok(())
}

fn percent_decode(input: &[u8]) -> Result<String, FieldsError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = input
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| FieldsError::Malformed("a bad percent-escape".to_string()))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FieldsError::Malformed("a field is not UTF-8".to_string()))
}

/// A JSON object; strings are kept as they are, numbers and booleans as
/// written, `null` as absent, and nested values as compact JSON text.
fn decode_json(body: &[u8], raw: &mut RawFields) -> Result<(), FieldsError> {
    let Members(members) = serde_json::from_slice(body).map_err(|e| {
        FieldsError::Malformed(match e.classify() {
            // Only the top level is typed: anything but an object.
            serde_json::error::Category::Data => "the body is not a JSON object".to_string(),
            _ => format!("the body is not JSON ({})", e.classify_word()),
        })
    })?;
    let mut source = Source::new(raw);
    for (key, value) in members {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        source.add(key, text)?;
    }
    Ok(())
}

/// A JSON object's members in order, a key given twice included (a map
/// would keep only one of them, silently).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A few words for a JSON error, without echoing the body.
trait ClassifyWord {
    fn classify_word(&self) -> &'static str;
}

impl ClassifyWord for serde_json::Error {
    fn classify_word(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "it ends too early",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &RawFields) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_strings_are_decoded() {
        let raw = decode(Some("status=END&from=%2B1+321&to=&flag"), None, b"").unwrap();
        assert_eq!(
            pairs(&raw),
            [
                ("status".into(), "END".into()),
                ("from".into(), "+1 321".into()),
                ("to".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
    }

    #[test]
    fn the_body_wins_over_the_query() {
        let raw = decode(
            Some("status=BEGIN"),
            Some(b"application/json; charset=utf-8"),
            br#"{"status": "END", "billable_seconds": 12, "x": null, "n": {"a": [1]}}"#,
        )
        .unwrap();
        assert_eq!(raw.get("status"), Some("END"));
        assert_eq!(raw.get("billable_seconds"), Some("12"));
        assert_eq!(raw.get("x"), None);
        assert_eq!(raw.get("n"), Some(r#"{"a":[1]}"#));
    }

    #[test]
    fn forms_and_untyped_bodies_are_read() {
        let raw = decode(
            None,
            Some(b"application/x-www-form-urlencoded"),
            b"a=%C3%A9",
        )
        .unwrap();
        assert_eq!(raw.get("a"), Some("é"));
        let raw = decode(None, None, br#" {"a": "b"}"#).unwrap();
        assert_eq!(raw.get("a"), Some("b"));
        let raw = decode(None, None, b"a=b").unwrap();
        assert_eq!(raw.get("a"), Some("b"));
    }

    #[test]
    fn malformed_data_is_refused() {
        let malformed = |q: Option<&str>, ct: Option<&[u8]>, body: &[u8]| {
            matches!(decode(q, ct, body), Err(FieldsError::Malformed(_)))
        };
        assert!(malformed(Some("a=%ZZ"), None, b""));
        assert!(malformed(Some("a=%4"), None, b""));
        assert!(malformed(Some("a=%FF"), None, b""));
        assert!(malformed(Some("=x"), None, b""));
        assert!(malformed(None, Some(b"application/json"), b"{\"a\": "));
        assert!(malformed(None, Some(b"application/json"), b"[1, 2]"));
        assert!(malformed(None, Some(b"application/json"), b"\"str\""));
        assert!(malformed(
            None,
            Some(b"application/json"),
            b"{\"a\": \"\xff\"}"
        ));
        assert!(malformed(
            None,
            Some(b"application/x-www-form-urlencoded"),
            b"a=\xff"
        ));
        let many: String = (0..100).map(|i| format!("k{i}=v&")).collect();
        assert!(malformed(Some(&many), None, b""));
    }

    #[test]
    fn a_key_twice_in_one_source_must_keep_its_value() {
        let twice = |q: Option<&str>, ct: Option<&[u8]>, body: &[u8]| match decode(q, ct, body) {
            Err(FieldsError::Malformed(m)) => m,
            other => panic!("{other:?}"),
        };
        let expected = "field `from` is given twice with different values";
        assert_eq!(twice(Some("from=1&from=2"), None, b""), expected);
        assert_eq!(twice(Some("from=1&from"), None, b""), expected);
        assert_eq!(
            twice(None, None, br#"{"from": "1", "from": "2"}"#),
            expected
        );
        assert_eq!(
            twice(None, None, br#"{"from": "1", "from": 2}"#).len(),
            expected.len()
        );
        assert_eq!(twice(None, None, b"from=1&from=%32"), expected);
        // The same value again is no ambiguity, nor is `null` (absent).
        let raw = decode(Some("from=1&from=1"), None, br#"{"a": "b", "a": "b"}"#).unwrap();
        assert_eq!((raw.get("from"), raw.get("a")), (Some("1"), Some("b")));
        let raw = decode(None, None, br#"{"from": "1", "from": null}"#).unwrap();
        assert_eq!(raw.get("from"), Some("1"));
        // Nested objects are kept as text, whatever they repeat.
        let raw = decode(None, None, br#"{"n": {"a": 1, "a": 2}}"#).unwrap();
        assert!(raw.get("n").is_some());
    }

    #[test]
    fn thousands_of_tiny_fields_are_cheap_and_bounded() {
        let same: String = "a=1&".repeat(16_000);
        assert!(decode(None, None, same.as_bytes()).is_ok());
        let secretish: String = (0..6_000).map(|i| format!("pass{i}=&")).collect();
        assert!(decode(None, None, secretish.as_bytes()).is_ok());
        let distinct: String = (0..6_000).map(|i| format!("k{i}=&")).collect();
        assert!(matches!(
            decode(None, None, distinct.as_bytes()),
            Err(FieldsError::Malformed(_))
        ));
    }

    #[test]
    fn other_body_types_are_unsupported() {
        assert_eq!(
            decode(None, Some(b"text/plain"), b"status=END"),
            Err(FieldsError::UnsupportedType)
        );
        assert!(decode(None, Some(b"text/plain"), b"  ").is_ok());
    }

    #[test]
    fn errors_never_echo_the_body() {
        let Err(FieldsError::Malformed(m)) =
            decode(None, Some(b"application/json"), b"{\"secret-ish-value\" 1}")
        else {
            panic!("accepted");
        };
        assert!(!m.contains("secret-ish"), "{m}");
    }
}
