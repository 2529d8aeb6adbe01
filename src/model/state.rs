//! States as enums: what a call or a run is, and what a report says of a call.
//!
//! Each has one spelling (the one the journal and the JSON report use) and a
//! parser that refuses any other, so an unknown value is an error, never a
//! silent `unknown`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A recorded value this build does not know (a newer or damaged store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// What kind of value it should have been (`call state`, `run state` …).
    pub kind: &'static str,
    /// The value found.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`", self.kind, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// Defines an enum's one spelling, its `Display` and a strict `FromStr`.
macro_rules! spelled {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The one spelling of this value (journal, report, logs).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_string() }),
                }
            }
        }
    };
}

/// What happened to one recipient, as a report says it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Would be called (dry run), or not attempted yet.
    Planned,
    /// Called: the provider accepted the call.
    Placed,
    /// Not called: the request failed.
    Failed,
    /// The request may have reached the provider; the outcome is not known.
    Unknown,
    /// Not called on purpose.
    Skipped,
}

spelled!(Status, "status", {
    Planned => "planned",
    Placed => "placed",
    Failed => "failed",
    Unknown => "unknown",
    Skipped => "skipped",
});

/// Where one planned call stands in a store.
///
/// `Sending` is written before a request goes out and replaced by the
/// outcome when the answer comes, so after a crash it means "maybe placed".
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// To be called; certainly not placed yet.
    Pending,
    /// A request is (or was, before a crash) on its way.
    Sending,
    /// The provider accepted the call.
    Placed,
    /// Certainly not placed.
    Failed,
    /// May have been placed.
    Unknown,
    /// Not called on purpose.
    Skipped,
}

spelled!(CallState, "call state", {
    Pending => "pending",
    Sending => "sending",
    Placed => "placed",
    Failed => "failed",
    Unknown => "unknown",
    Skipped => "skipped",
});

impl CallState {
    /// The report status this state stands for: a `sending` call may have
    /// been placed, so it is `unknown`; a `pending` one is still `planned`.
    pub fn status(self) -> Status {
        match self {
            CallState::Pending => Status::Planned,
            CallState::Placed => Status::Placed,
            CallState::Failed => Status::Failed,
            CallState::Skipped => Status::Skipped,
            CallState::Sending | CallState::Unknown => Status::Unknown,
        }
    }

    /// The state that records a call's final status.
    pub fn of_status(status: Status) -> CallState {
        match status {
            Status::Planned => CallState::Pending,
            Status::Placed => CallState::Placed,
            Status::Failed => CallState::Failed,
            Status::Unknown => CallState::Unknown,
            Status::Skipped => CallState::Skipped,
        }
    }
}

/// Where a run stands in a store.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Placing calls (or its process died while it was).
    Running,
    /// Every call settled.
    Finished,
    /// Stopped by an interrupt; resumable.
    Interrupted,
    /// Stopped by an error (out of funds, failed login); resumable.
    Stopped,
    /// Refused before any call.
    Refused,
}

spelled!(RunState, "run state", {
    Running => "running",
    Finished => "finished",
    Interrupted => "interrupted",
    Stopped => "stopped",
    Refused => "refused",
});

impl RunState {
    /// Whether `--resume` may continue a run in this state.
    pub fn is_resumable(self) -> bool {
        matches!(
            self,
            RunState::Running | RunState::Interrupted | RunState::Stopped
        )
    }
}

/// FoneStorm's `service_type`: what the callee is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    /// Text or SSML spoken by text-to-speech.
    #[serde(rename = "TTS")]
    Tts,
    /// A WAV file played from a URL.
    SoundFile,
    /// A registered device.
    Device,
    /// A voicemail box.
    VoiceMail,
    /// Another phone number.
    Phonenumber,
}

spelled!(ServiceType, "service type", {
    Tts => "TTS",
    SoundFile => "SoundFile",
    Device => "Device",
    VoiceMail => "VoiceMail",
    Phonenumber => "Phonenumber",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_its_own_spelling() {
        for s in [
            CallState::Pending,
            CallState::Sending,
            CallState::Placed,
            CallState::Failed,
            CallState::Unknown,
            CallState::Skipped,
        ] {
            assert_eq!(s.as_str().parse::<CallState>(), Ok(s));
        }
        for s in [
            RunState::Running,
            RunState::Finished,
            RunState::Interrupted,
            RunState::Stopped,
            RunState::Refused,
        ] {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(s));
        }
    }

    #[test]
    fn an_unknown_spelling_is_an_error_not_a_catch_all() {
        let e = "Placed".parse::<CallState>().unwrap_err();
        assert_eq!(e.to_string(), "unknown call state `Placed`");
        assert!("".parse::<RunState>().is_err());
        assert!("tts".parse::<ServiceType>().is_err());
    }

    #[test]
    fn a_call_being_sent_reports_as_unknown() {
        assert_eq!(CallState::Sending.status(), Status::Unknown);
        assert_eq!(CallState::Pending.status(), Status::Planned);
    }
}
