//! What FoneStorm tells callbook after the fact: how a call ended, that
//! someone called the caller id, that an SMS arrived.
//!
//! The listener turns the fields of each HTTP callback into a [`Callback`];
//! the escalation ladder matches it to a call or a page and records it. The
//! provider documents little about these callbacks, so every guess about
//! them lives here, in one place:
//!
//! - the words of a call's ending ([`Disposition`]) are FoneStorm's exact,
//!   upper-case words; anything else is refused, so an unknown word is seen
//!   (a 400 the provider logs) instead of being read as "not answered";
//! - an SMS's text may come as `message`, `msg`, `text` or `body`
//!   ([`SMS_TEXT_KEYS`]);
//! - numbers in callbacks may come with or without `+`, `1` or `011`, and
//!   are compared as dial strings by [`number_matches`].
//!
//! Every callback keeps its raw fields ([`RawFields`]) for the journal:
//! bounded in count and size, and without any field whose key looks like a
//! password or token, so the journal never holds a secret.

use std::fmt;
use std::str::FromStr;

use super::UnknownValue;

/// The most fields one callback may carry; FoneStorm sends about ten.
pub const MAX_FIELDS: usize = 64;
/// The longest field name, in bytes.
pub const MAX_KEY_BYTES: usize = 64;
/// The longest field value, in bytes (an SMS is at most a few KiB).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// The longest phone number field (`from`, `to`), in bytes.
pub const MAX_NUMBER_BYTES: usize = 64;
/// The longest call id (`uid`), in bytes.
pub const MAX_UID_BYTES: usize = 128;
/// The longest code after `FAILED:`.
pub const MAX_FAILED_CODE: usize = 32;
/// The largest `billable_seconds` accepted: a day; a call is never longer.
pub const MAX_BILLABLE_SECONDS: u32 = 86_400;
/// **Assumed:** the keys an inbound SMS's text may come under, in order of preference.
pub const SMS_TEXT_KEYS: [&str; 4] = ["message", "msg", "text", "body"];
/// Parts of a field name that mark a credential: such fields are never kept.
const SECRET_KEY_PARTS: [&str; 6] = ["pass", "secret", "token", "auth", "key", "signature"];

/// How a call ended, in FoneStorm's words (plus callbook's own `NO_CALLBACK`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `ANSWERED`: someone (or a voicemail) picked up.
    Answered,
    /// `NO_ANSWER`: it rang out.
    NoAnswer,
    /// `BUSY`.
    Busy,
    /// `CANCEL`: the call was cancelled before it was answered.
    Cancel,
    /// `REJECTED`: the callee or the network refused it.
    Rejected,
    /// `FAILED:<code>`: the provider's failure code, printable ASCII.
    Failed(String),
    /// `NO_CALLBACK`: callbook's word for a placed call whose `END` callback
    /// never came within `ack.outcome_timeout`. FoneStorm never sends it.
    NoCallback,
}

impl Disposition {
    /// Reads a disposition sent by FoneStorm: the provider's exact words,
    /// never `NO_CALLBACK` (which only callbook assigns).
    pub fn from_provider(word: &str) -> Result<Disposition, UnknownValue> {
        match word.parse()? {
            Disposition::NoCallback => Err(unknown_disposition(word)),
            d => Ok(d),
        }
    }
}

fn unknown_disposition(word: &str) -> UnknownValue {
    UnknownValue {
        kind: "disposition",
        value: shown(word),
    }
}

impl FromStr for Disposition {
    type Err = UnknownValue;

    /// Reads a disposition as the journal and FoneStorm spell it, exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ANSWERED" => Disposition::Answered,
            "NO_ANSWER" => Disposition::NoAnswer,
            "BUSY" => Disposition::Busy,
            "CANCEL" => Disposition::Cancel,
            "REJECTED" => Disposition::Rejected,
            "NO_CALLBACK" => Disposition::NoCallback,
            _ => match s.strip_prefix("FAILED:") {
                Some(code) if valid_failed_code(code) => Disposition::Failed(code.to_string()),
                _ => return Err(unknown_disposition(s)),
            },
        })
    }
}

/// A failure code: 1 to [`MAX_FAILED_CODE`] printable ASCII characters, no spaces.
fn valid_failed_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= MAX_FAILED_CODE && code.bytes().all(|b| b.is_ascii_graphic())
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disposition::Answered => f.write_str("ANSWERED"),
            Disposition::NoAnswer => f.write_str("NO_ANSWER"),
            Disposition::Busy => f.write_str("BUSY"),
            Disposition::Cancel => f.write_str("CANCEL"),
            Disposition::Rejected => f.write_str("REJECTED"),
            Disposition::Failed(code) => write!(f, "FAILED:{code}"),
            Disposition::NoCallback => f.write_str("NO_CALLBACK"),
        }
    }
}

/// One word of `escalation.retry.on`: a disposition, or `FAILED` for every
/// `FAILED:<code>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DispositionPattern {
    /// Exactly this disposition (`FAILED:17` matches only code `17`).
    Exactly(Disposition),
    /// `FAILED`: every failure, whatever its code.
    AnyFailed,
}

impl DispositionPattern {
    /// Whether a call that ended with `disposition` is matched.
    pub fn matches(&self, disposition: &Disposition) -> bool {
        match self {
            DispositionPattern::AnyFailed => matches!(disposition, Disposition::Failed(_)),
            DispositionPattern::Exactly(d) => d == disposition,
        }
    }
}

impl FromStr for DispositionPattern {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "FAILED" {
            Ok(DispositionPattern::AnyFailed)
        } else {
            s.parse().map(DispositionPattern::Exactly)
        }
    }
}

impl fmt::Display for DispositionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispositionPattern::AnyFailed => f.write_str("FAILED"),
            DispositionPattern::Exactly(d) => d.fmt(f),
        }
    }
}

/// Whether a call event says the call is going (`BEGIN`) or over (`END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// `BEGIN`: the call started.
    Begin,
    /// `END`: the call ended; a disposition comes with it.
    End,
}

impl FromStr for EventStatus {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "BEGIN" => Ok(EventStatus::Begin),
            "END" => Ok(EventStatus::End),
            _ => Err(UnknownValue {
                kind: "call status",
                value: shown(s),
            }),
        }
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventStatus::Begin => "BEGIN",
            EventStatus::End => "END",
        })
    }
}

/// Which way a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `OUTBOUND`: placed by callbook (or another user of the FoneNumber).
    Outbound,
    /// `INBOUND`: someone called the FoneNumber.
    Inbound,
}

impl FromStr for Direction {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OUTBOUND" => Ok(Direction::Outbound),
            "INBOUND" => Ok(Direction::Inbound),
            _ => Err(UnknownValue {
                kind: "call direction",
                value: shown(s),
            }),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Outbound => "OUTBOUND",
            Direction::Inbound => "INBOUND",
        })
    }
}

/// The fields of one callback as received, minus any credential, bounded in
/// count ([`MAX_FIELDS`]) and size ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]),
/// in the order they came. A key given twice keeps its last value (the JSON
/// body of FoneStorm's `POST` method repeats the query string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFields(Vec<(String, String)>);

impl RawFields {
    /// An empty set of fields.
    pub fn new() -> RawFields {
        RawFields::default()
    }

    /// Adds (or replaces) a field; a credential-like key is dropped silently.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), CallbackError> {
        // Keys are printable ASCII: FoneStorm's are, and a key is shown in
        // errors and log lines, where a bidi override or a terminal escape
        // would disguise what was received.
        if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(CallbackError::BadKey(shown(key)));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(CallbackError::TooLong(key.to_string()));
        }
        if looks_secret(key) {
            return Ok(());
        }
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.to_string();
            return Ok(());
        }
        if self.0.len() >= MAX_FIELDS {
            return Err(CallbackError::TooManyFields);
        }
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The fields in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields as one JSON object, for the journal.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

/// Whether a field name looks like it holds a credential.
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Why a callback's fields were refused (the listener answers 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// More than [`MAX_FIELDS`] fields.
    TooManyFields,
    /// An empty or over-long field name, or one that is not printable ASCII.
    BadKey(String),
    /// A field's value is longer than allowed.
    TooLong(String),
    /// A required field is missing or empty.
    Missing(&'static str),
    /// A field has a value callbook does not accept.
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackError::TooManyFields => write!(f, "more than {MAX_FIELDS} fields"),
            CallbackError::BadKey(k) => {
                write!(f, "field name `{k}` is empty, too long or not printable")
            }
            CallbackError::TooLong(k) => write!(f, "field `{k}` is too long"),
            CallbackError::Missing(k) => write!(f, "field `{k}` is missing"),
            CallbackError::Invalid { field, reason } => write!(f, "field `{field}`: {reason}"),
        }
    }
}

impl std::error::Error for CallbackError {}

/// One outbound call's `BEGIN` or `END` (the `send_notify` callback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEvent {
    /// **Assumed** to be the `call.id` that `POST /calls` returned.
    pub uid: Option<String>,
    /// `OUTBOUND` or `INBOUND`, when given.
    pub direction: Option<Direction>,
    /// `BEGIN` or `END`.
    pub status: EventStatus,
    /// The caller (our FoneNumber for an outbound call).
    pub from: String,
    /// The number called, when given.
    pub to: Option<String>,
    /// How the call ended: always set for `END`, never for `BEGIN`.
    pub disposition: Option<Disposition>,
    /// Seconds billed, when given.
    pub billable_seconds: Option<u32>,
    /// Every field as received, minus credentials.
    pub raw: RawFields,
}

/// Someone called our FoneNumber (the `receive_notify` callback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundCall {
    /// The caller's number.
    pub from: String,
    /// Our FoneNumber, when given.
    pub to: Option<String>,
    /// `BEGIN` or `END`, when given (both may arrive for one call).
    pub status: Option<EventStatus>,
    /// Every field as received, minus credentials.
    pub raw: RawFields,
}

/// An SMS arrived at our FoneNumber (the `messages/receive` callback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundSms {
    /// The sender's number.
    pub from: String,
    /// Our FoneNumber, when given (**assumed**: when missing, match on the sender alone).
    pub to: Option<String>,
    /// The text, as sent.
    pub text: String,
    /// Every field as received, minus credentials.
    pub raw: RawFields,
}

/// One callback, by the path it arrived at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `/fonestorm/calls`.
    Call(CallEvent),
    /// `/fonestorm/inbound`.
    Inbound(InboundCall),
    /// `/fonestorm/sms`.
    Sms(InboundSms),
}

impl Callback {
    /// The raw fields, for the journal.
    pub fn raw(&self) -> &RawFields {
        match self {
            Callback::Call(c) => &c.raw,
            Callback::Inbound(c) => &c.raw,
            Callback::Sms(s) => &s.raw,
        }
    }

    /// Which callback this is, in a word (`call`, `inbound`, `sms`), for logs
    /// and the journal.
    pub fn kind(&self) -> &'static str {
        match self {
            Callback::Call(_) => "call",
            Callback::Inbound(_) => "inbound",
            Callback::Sms(_) => "sms",
        }
    }
}

impl CallEvent {
    /// Reads a `send_notify` callback's fields.
    pub fn from_fields(raw: RawFields) -> Result<CallEvent, CallbackError> {
        let status: EventStatus = parse_required(&raw, "status")?;
        let direction = parse_optional::<Direction>(&raw, "direction")?;
        let from = number(&raw, "from")?.ok_or(CallbackError::Missing("from"))?;
        let to = number(&raw, "to")?;
        let uid = match present(&raw, "uid") {
            Some(uid)
                if uid.len() > MAX_UID_BYTES || !uid.chars().all(|c| c.is_ascii_graphic()) =>
            {
                return Err(invalid("uid", "not a call id"));
            }
            other => other.map(str::to_string),
        };
        let disposition = match present(&raw, "disposition") {
            Some(word) => Some(
                Disposition::from_provider(word)
                    .map_err(|e| invalid("disposition", e.to_string()))?,
            ),
            None => None,
        };
        match (status, &disposition) {
            (EventStatus::End, None) => return Err(CallbackError::Missing("disposition")),
            (EventStatus::Begin, Some(_)) => {
                return Err(invalid("disposition", "given with status `BEGIN`"));
            }
            _ => {}
        }
        let billable_seconds = match present(&raw, "billable_seconds") {
            Some(s) => Some(parse_seconds(s)?),
            None => None,
        };
        Ok(CallEvent {
            uid,
            direction,
            status,
            from,
            to,
            disposition,
            billable_seconds,
            raw,
        })
    }
}

impl InboundCall {
    /// Reads a `receive_notify` callback's fields.
    pub fn from_fields(raw: RawFields) -> Result<InboundCall, CallbackError> {
        let status = parse_optional::<EventStatus>(&raw, "status")?;
        if let Some(Direction::Outbound) = parse_optional::<Direction>(&raw, "direction")? {
            return Err(invalid("direction", "an inbound call cannot be `OUTBOUND`"));
        }
        let from = number(&raw, "from")?.ok_or(CallbackError::Missing("from"))?;
        let to = number(&raw, "to")?;
        Ok(InboundCall {
            from,
            to,
            status,
            raw,
        })
    }
}

impl InboundSms {
    /// Reads an inbound SMS's fields; the text comes from the first of
    /// [`SMS_TEXT_KEYS`] given.
    pub fn from_fields(raw: RawFields) -> Result<InboundSms, CallbackError> {
        let from = number(&raw, "from")?.ok_or(CallbackError::Missing("from"))?;
        let to = number(&raw, "to")?;
        let text = SMS_TEXT_KEYS
            .iter()
            .find_map(|k| raw.get(k))
            .ok_or(CallbackError::Missing("message"))?
            .to_string();
        Ok(InboundSms {
            from,
            to,
            text,
            raw,
        })
    }
}

/// A field that is given and not empty.
fn present<'a>(raw: &'a RawFields, key: &str) -> Option<&'a str> {
    raw.get(key).filter(|v| !v.is_empty())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CallbackError {
    CallbackError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn parse_required<T: FromStr<Err = UnknownValue>>(
    raw: &RawFields,
    key: &'static str,
) -> Result<T, CallbackError> {
    parse_optional(raw, key)?.ok_or(CallbackError::Missing(key))
}

fn parse_optional<T: FromStr<Err = UnknownValue>>(
    raw: &RawFields,
    key: &'static str,
) -> Result<Option<T>, CallbackError> {
    present(raw, key)
        .map(|v| {
            v.parse()
                .map_err(|e: UnknownValue| invalid(key, e.to_string()))
        })
        .transpose()
}

/// A phone number field: at most [`MAX_NUMBER_BYTES`] of printable ASCII
/// (spaces allowed), with a digit. A number is shown to people as the one who
/// acknowledged; an invisible or bidi character in it could make it look
/// like another.
fn number(raw: &RawFields, key: &'static str) -> Result<Option<String>, CallbackError> {
    match present(raw, key) {
        None => Ok(None),
        Some(n)
            if n.len() > MAX_NUMBER_BYTES
                || !n.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
                || !n.bytes().any(|b| b.is_ascii_digit()) =>
        {
            Err(invalid(key, "not a phone number"))
        }
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// `billable_seconds`: a whole number of seconds up to [`MAX_BILLABLE_SECONDS`].
fn parse_seconds(s: &str) -> Result<u32, CallbackError> {
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_BILLABLE_SECONDS && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(invalid("billable_seconds", "not a whole number of seconds")),
    }
}

/// A value from a callback as an error shows it: at most 80 bytes, control
/// characters escaped (it goes to a log or a terminal).
fn shown(s: &str) -> String {
    crate::escape::escape_controls(&truncate(s, 80)).into_owned()
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Whether a number from a callback is a recipient's dial string: every
/// non-digit is stripped from `callback_number`, which then matches when
/// equal to `dial_string`, or when `dial_string` is `1` + it (a US number
/// sent as 10 digits) or `011` + it (an international number sent with its
/// country code). A number without digits matches nothing.
pub fn number_matches(callback_number: &str, dial_string: &str) -> bool {
    let digits: String = callback_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return false;
    }
    dial_string == digits
        || dial_string
            .strip_prefix('1')
            .is_some_and(|rest| rest == digits)
        || dial_string
            .strip_prefix("011")
            .is_some_and(|rest| rest == digits)
}

/// An SMS that acknowledges: the word, and the page's short code when one followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckText {
    /// The page's short code, upper-cased (`K7F`), when the text named one.
    pub code: Option<String>,
}

/// The length of a page's short code.
pub const ACK_CODE_LEN: usize = 3;

/// Reads an SMS as an acknowledgement: its text, trimmed, is one of `words`
/// (case-insensitively), optionally followed by whitespace and a short code
/// of [`ACK_CODE_LEN`] ASCII letters or digits (`"1 k7f"` gives code `K7F`).
/// Anything else (`"ack later"`, a longer code, an empty text) is not an ack.
pub fn parse_ack_text(text: &str, words: &[String]) -> Option<AckText> {
    let text = text.trim();
    // A text far longer than any word and code cannot be one: no work on it.
    if text.len() > 256 {
        return None;
    }
    let is_word = |w: &str| {
        words.iter().any(|word| {
            let word = word.trim();
            !word.is_empty() && word.to_lowercase() == w.to_lowercase()
        })
    };
    if is_word(text) {
        return Some(AckText { code: None });
    }
    let (word, code) = text.rsplit_once(char::is_whitespace)?;
    let word = word.trim_end();
    let code_ok = code.len() == ACK_CODE_LEN && code.bytes().all(|b| b.is_ascii_alphanumeric());
    (code_ok && is_word(word)).then(|| AckText {
        code: Some(code.to_ascii_uppercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> RawFields {
        let mut raw = RawFields::new();
        for (k, v) in pairs {
            raw.insert(k, v).unwrap();
        }
        raw
    }

    fn words() -> Vec<String> {
        ["1", "ack", "ok"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_names_must_be_printable_ascii() {
        let mut raw = RawFields::new();
        for key in ["fr\u{202e}om", "from\u{200b}", "\u{9b}2J", "a b", "é"] {
            let e = raw.insert(key, "1").unwrap_err();
            assert!(matches!(e, CallbackError::BadKey(_)), "{key:?}");
            let shown = e.to_string();
            assert!(
                !shown.contains(['\u{202e}', '\u{9b}']),
                "{shown:?} shows a control"
            );
        }
        assert!(raw.is_empty());
        raw.insert("billable_seconds", "1").unwrap();
    }

    #[test]
    fn numbers_with_invisible_or_bidi_characters_are_refused() {
        for from in [
            "+1321499\u{202e}1008",
            "13214991008\u{200b}",
            "\u{2066}13214991008",
            "1321499\u{9b}1008",
            "\u{ff11}3214991008",
        ] {
            let raw = fields(&[("from", from), ("message", "1")]);
            assert!(InboundSms::from_fields(raw).is_err(), "{from:?}");
        }
        let raw = fields(&[("from", "+1 (321) 499-1008"), ("message", "1")]);
        assert_eq!(
            InboundSms::from_fields(raw).unwrap().from,
            "+1 (321) 499-1008"
        );
    }

    #[test]
    fn dispositions_round_trip() {
        for word in [
            "ANSWERED",
            "NO_ANSWER",
            "BUSY",
            "CANCEL",
            "REJECTED",
            "FAILED:503",
            "FAILED:X-1",
            "NO_CALLBACK",
        ] {
            let d: Disposition = word.parse().unwrap();
            assert_eq!(d.to_string(), word);
        }
    }

    #[test]
    fn provider_never_sends_no_callback() {
        assert!(Disposition::from_provider("NO_CALLBACK").is_err());
        assert_eq!(Disposition::from_provider("BUSY"), Ok(Disposition::Busy));
    }

    #[test]
    fn unknown_dispositions_are_refused() {
        let long_code = format!("FAILED:{}", "9".repeat(MAX_FAILED_CODE + 1));
        for word in [
            "",
            "answered",
            "ANSWERED ",
            " BUSY",
            "FAILED",
            "FAILED:",
            "FAILED: 1",
            "FAILED:1\n",
            "FAILED:é",
            "FAILED:\u{7f}",
            "NOANSWER",
            &long_code,
        ] {
            assert!(word.parse::<Disposition>().is_err(), "{word:?}");
        }
    }

    #[test]
    fn unknown_disposition_error_is_bounded_and_escaped() {
        let hostile = format!("\u{1b}[31m{}", "X".repeat(100_000));
        let message = hostile.parse::<Disposition>().unwrap_err().to_string();
        assert!(message.len() < 200, "{}", message.len());
        assert!(!message.contains('\u{1b}'));
    }

    #[test]
    fn failed_matches_every_failure_code() {
        let any: DispositionPattern = "FAILED".parse().unwrap();
        assert!(any.matches(&Disposition::Failed("1".into())));
        assert!(any.matches(&Disposition::Failed("ABC".into())));
        assert!(!any.matches(&Disposition::Busy));
        assert!(!any.matches(&Disposition::NoCallback));
        let one: DispositionPattern = "FAILED:17".parse().unwrap();
        assert!(one.matches(&Disposition::Failed("17".into())));
        assert!(!one.matches(&Disposition::Failed("18".into())));
        let busy: DispositionPattern = "BUSY".parse().unwrap();
        assert!(busy.matches(&Disposition::Busy));
        assert!(!busy.matches(&Disposition::NoAnswer));
        assert!("busy".parse::<DispositionPattern>().is_err());
        assert_eq!(any.to_string(), "FAILED");
    }

    #[test]
    fn an_end_event_is_read() {
        let e = CallEvent::from_fields(fields(&[
            ("uid", "ce20fe86-b5ce-11e7"),
            ("account_code", "42"),
            ("direction", "OUTBOUND"),
            ("status", "END"),
            ("from", "3214991000"),
            ("to", "13214991008"),
            ("type", "VOICE"),
            ("disposition", "FAILED:486"),
            ("billable_seconds", "0"),
        ]))
        .unwrap();
        assert_eq!(e.uid.as_deref(), Some("ce20fe86-b5ce-11e7"));
        assert_eq!(e.status, EventStatus::End);
        assert_eq!(e.direction, Some(Direction::Outbound));
        assert_eq!(e.disposition, Some(Disposition::Failed("486".into())));
        assert_eq!(e.billable_seconds, Some(0));
        assert_eq!(e.raw.get("account_code"), Some("42"));
        assert_eq!(e.raw.len(), 9);
    }

    #[test]
    fn a_begin_event_needs_no_disposition() {
        let e =
            CallEvent::from_fields(fields(&[("status", "BEGIN"), ("from", "3214991000")])).unwrap();
        assert_eq!(e.disposition, None);
        assert_eq!(e.uid, None);
    }

    #[test]
    fn malformed_events_are_refused() {
        let cases: &[&[(&str, &str)]] = &[
            &[("from", "3214991000")],
            &[("status", "END"), ("disposition", "BUSY")],
            &[("status", "END"), ("from", "3214991000")],
            &[
                ("status", "BEGIN"),
                ("from", "3214991000"),
                ("disposition", "BUSY"),
            ],
            &[("status", "DONE"), ("from", "3214991000")],
            &[
                ("status", "END"),
                ("from", "3214991000"),
                ("disposition", "MAYBE"),
            ],
            &[
                ("status", "END"),
                ("from", "3214991000"),
                ("disposition", "BUSY"),
                ("billable_seconds", "ten"),
            ],
            &[
                ("status", "END"),
                ("from", "3214991000"),
                ("disposition", "BUSY"),
                ("billable_seconds", "-1"),
            ],
            &[
                ("status", "END"),
                ("from", "3214991000"),
                ("disposition", "BUSY"),
                ("billable_seconds", "+1"),
            ],
            &[
                ("status", "END"),
                ("from", "3214991000"),
                ("disposition", "BUSY"),
                ("billable_seconds", "99999999999"),
            ],
            &[("status", "BEGIN"), ("from", "anonymous")],
            &[("status", "BEGIN"), ("from", "321\n4991000")],
            &[
                ("status", "BEGIN"),
                ("from", "3214991000"),
                ("direction", "SIDEWAYS"),
            ],
            &[("status", "BEGIN"), ("from", "3214991000"), ("uid", "a b")],
        ];
        for case in cases {
            assert!(CallEvent::from_fields(fields(case)).is_err(), "{case:?}");
        }
    }

    #[test]
    fn huge_numbers_and_ids_are_refused() {
        let long = "1".repeat(MAX_NUMBER_BYTES + 1);
        let e = CallEvent::from_fields(fields(&[("status", "BEGIN"), ("from", &long)]));
        assert!(e.is_err());
        let uid = "u".repeat(MAX_UID_BYTES + 1);
        let e = CallEvent::from_fields(fields(&[
            ("status", "BEGIN"),
            ("from", "3214991000"),
            ("uid", &uid),
        ]));
        assert!(e.is_err());
    }

    #[test]
    fn credential_fields_are_never_kept() {
        let raw = fields(&[
            ("from", "1"),
            ("url_password", "hunter2"),
            ("Token", "t"),
            ("AUTHORIZATION", "Basic x"),
            ("api_key", "k"),
            ("client_secret", "s"),
        ]);
        assert_eq!(raw.len(), 1);
        assert!(!raw.to_json().to_string().contains("hunter2"));
    }

    #[test]
    fn fields_are_bounded() {
        let mut raw = RawFields::new();
        for i in 0..MAX_FIELDS {
            raw.insert(&format!("f{i}"), "v").unwrap();
        }
        assert_eq!(
            raw.insert("one_more", "v"),
            Err(CallbackError::TooManyFields)
        );
        // Replacing a field that is there is not one more.
        raw.insert("f0", "w").unwrap();
        assert_eq!(raw.get("f0"), Some("w"));
        let mut raw = RawFields::new();
        assert!(raw.insert(&"k".repeat(MAX_KEY_BYTES + 1), "v").is_err());
        assert!(raw.insert("", "v").is_err());
        assert!(raw.insert("a\u{0}b", "v").is_err());
        assert!(raw.insert("k", &"v".repeat(MAX_VALUE_BYTES + 1)).is_err());
        assert!(raw.insert("k", &"é".repeat(MAX_VALUE_BYTES / 2)).is_ok());
    }

    #[test]
    fn an_sms_takes_its_text_from_any_documented_key() {
        for key in SMS_TEXT_KEYS {
            let sms = InboundSms::from_fields(fields(&[("from", "+1 321 499 1008"), (key, "ACK")]))
                .unwrap();
            assert_eq!(sms.text, "ACK", "{key}");
            assert_eq!(sms.to, None);
        }
        let sms = InboundSms::from_fields(fields(&[
            ("from", "13214991008"),
            ("body", "b"),
            ("message", "m"),
        ]))
        .unwrap();
        assert_eq!(sms.text, "m");
        assert!(InboundSms::from_fields(fields(&[("from", "13214991008")])).is_err());
        assert!(InboundSms::from_fields(fields(&[("message", "1")])).is_err());
    }

    #[test]
    fn an_inbound_call_is_read() {
        let c = InboundCall::from_fields(fields(&[
            ("from", "3214991008"),
            ("to", "3214991000"),
            ("direction", "INBOUND"),
            ("status", "BEGIN"),
        ]))
        .unwrap();
        assert_eq!(c.from, "3214991008");
        assert_eq!(c.status, Some(EventStatus::Begin));
        assert!(
            InboundCall::from_fields(fields(&[("from", "1"), ("direction", "OUTBOUND")])).is_err()
        );
        assert!(InboundCall::from_fields(fields(&[("to", "1")])).is_err());
    }

    #[test]
    fn numbers_match_as_dial_strings() {
        assert!(number_matches("13214991008", "13214991008"));
        assert!(number_matches("+1 (321) 499-1008", "13214991008"));
        assert!(number_matches("3214991008", "13214991008"));
        assert!(number_matches("+49 89 4567898", "01149894567898"));
        assert!(number_matches("49894567898", "01149894567898"));
        assert!(!number_matches("3214991009", "13214991008"));
        assert!(!number_matches("214991008", "13214991008"));
        assert!(!number_matches("", "13214991008"));
        assert!(!number_matches("anonymous", "1"));
        assert!(!number_matches("13214991008", "3214991008"));
        assert!(
            !number_matches("١٣٢١", "1321"),
            "non-ASCII digits are not digits"
        );
    }

    #[test]
    fn ack_words_are_trimmed_and_case_insensitive() {
        assert_eq!(
            parse_ack_text("ACK ", &words()),
            Some(AckText { code: None })
        );
        assert_eq!(
            parse_ack_text("\n Ok\t", &words()),
            Some(AckText { code: None })
        );
        assert_eq!(parse_ack_text("1", &words()), Some(AckText { code: None }));
    }

    #[test]
    fn an_ack_may_name_the_page() {
        assert_eq!(
            parse_ack_text("1 k7f", &words()),
            Some(AckText {
                code: Some("K7F".into())
            })
        );
        assert_eq!(
            parse_ack_text("  ACK   Z9Z ", &words()),
            Some(AckText {
                code: Some("Z9Z".into())
            })
        );
    }

    #[test]
    fn other_texts_are_not_acks() {
        for text in [
            "",
            " ",
            "ack later",
            "1 k7",
            "1 k7f9",
            "1 k7!",
            "okay",
            "1k7f",
            "no",
            "11",
            "1 é7f",
            "ack\u{0}",
            "k7f",
        ] {
            assert_eq!(parse_ack_text(text, &words()), None, "{text:?}");
        }
        assert_eq!(parse_ack_text("1", &[]), None);
        assert_eq!(parse_ack_text(" ", &["".to_string()]), None);
    }

    #[test]
    fn hostile_ack_texts_are_refused_quickly() {
        let huge = format!("ack {}", " ".repeat(1_000_000));
        assert_eq!(
            parse_ack_text(&huge, &words()),
            Some(AckText { code: None })
        );
        let huge = "a".repeat(1_000_000);
        assert_eq!(parse_ack_text(&huge, &words()), None);
        assert_eq!(parse_ack_text("ACK\u{202e} k7f", &words()), None);
        assert_eq!(parse_ack_text("ＡＣＫ", &words()), None);
    }
}
