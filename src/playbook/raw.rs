//! The playbook as written: serde structs that mirror the YAML one to one.
//!
//! These are only deserialized after the JSON Schema accepted the document,
//! so their shape errors never reach a user; [`super::load`] turns them into
//! the checked [`super::Playbook`] that the rest of callbook uses.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A value that YAML may give as a string or as a bare number (`phone: 3214991008`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Written as text.
    Text(String),
    /// Written as a bare integer.
    Int(i64),
    /// Written as a number JSON Schema counts as an integer (`12.0`, `3.2149910e9`).
    Float(f64),
}

impl Scalar {
    /// The value as text, as the user meant it.
    pub fn into_string(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Int(i) => i.to_string(),
            // Whole numbers read as the integer they are; anything else fails
            // the number's own check with the value as written.
            Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

/// The top level of a playbook file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    /// The schema already holds it to `1`; kept so the key is accepted.
    #[serde(rename = "version", deserialize_with = "whole")]
    pub _version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub caller_id: Scalar,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub provider: RawProvider,
    #[serde(default)]
    pub vars: Map<String, Value>,
    pub recipients: Vec<RawEntry>,
    #[serde(default)]
    pub messages: IndexMap<String, RawMessage>,
    pub rules: Vec<RawRule>,
    pub dedup: Option<RawDedup>,
    #[serde(default)]
    pub limits: RawLimits,
    pub escalation: Option<RawEscalation>,
    pub ack: Option<RawAck>,
}

/// `defaults:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub country: Option<String>,
    pub timezone: Option<String>,
}

/// `provider:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub base_url: Option<String>,
    pub rate_limit: Option<f64>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub concurrency: Option<u32>,
    pub timeout: Option<String>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub retries: Option<u32>,
    pub retry_ambiguous: Option<bool>,
}

/// An entry of `recipients:`: a recipient, or a `from:` include.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawEntry {
    /// `- from: oncall.csv`
    Include {
        /// Path relative to the playbook.
        from: String,
    },
    /// `- name: …`
    Recipient(RawRecipient),
}

/// One recipient as written in YAML or JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipient {
    pub name: String,
    pub phone: Option<Scalar>,
    pub speed_dial: Option<Scalar>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub vars: Map<String, Value>,
}

/// A named message: exactly one of the three kinds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub tts: Option<String>,
    pub ssml: Option<String>,
    pub sound_file: Option<String>,
}

/// One destination rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Option<String>,
    pub when: Option<String>,
    pub tags: Option<Vec<String>>,
    pub play: Option<String>,
    pub connect: Option<RawConnect>,
    pub skip: Option<String>,
}

/// `connect:` — exactly one destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnect {
    pub device: Option<Scalar>,
    pub voicemail: Option<Scalar>,
    pub phone: Option<Scalar>,
}

/// `dedup:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedup {
    pub key: Option<String>,
    pub window: String,
}

/// `limits:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default, deserialize_with = "whole_opt")]
    pub max_calls: Option<u64>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub max_message_bytes: Option<u64>,
}

/// `escalation:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    pub steps: Vec<RawStep>,
    pub retry: Option<RawRetry>,
}

/// One entry of `escalation.steps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: String,
    pub tags: Option<Vec<String>>,
    pub recipients: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub repeat: Option<u32>,
    pub every: Option<String>,
}

/// `escalation.retry:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub on: Vec<String>,
    pub after: Option<String>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub max: Option<u32>,
}

/// `ack:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAck {
    pub sms: Option<Vec<String>>,
    pub call_back: Option<bool>,
    pub answered: Option<bool>,
    pub answered_min: Option<String>,
    pub outcome_timeout: Option<String>,
}

/// An integer key, also when YAML wrote it as a float (`1e3`, `8.0`).
///
/// JSON Schema counts `1000.0` as an integer, so the schema (which holds the
/// range) accepts it; reading it must not then fail without a location.
fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    // The schema bounds every such key far below 2^53, where f64 is exact.
    let n = f64::deserialize(deserializer)?;
    let whole = (n.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&n)).then_some(n as u64);
    whole
        .and_then(|w| T::try_from(w).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("`{n}` is not a whole number in range")))
}

/// [`whole`] for an optional key.
fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    whole(deserializer).map(Some)
}
