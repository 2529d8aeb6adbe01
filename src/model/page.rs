//! What a store keeps of a page: its short code, dedup key and sources,
//! where each call sits on the ladder, the rounds as they start, and who
//! acknowledged it.

use std::fmt;
use std::str::FromStr;

use super::{Timestamp, UnknownValue};

/// A page as recorded when it starts, beside its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRecord {
    /// The run's id.
    pub run_id: String,
    /// The page's short code (unique among pages going).
    pub code: String,
    /// The rendered dedup key (the playbook's name when it has no `dedup`).
    pub dedup_key: String,
    /// What the page was planned from, as JSON: the playbook text, the text
    /// of its included files, the variables and the input; never a secret.
    pub sources: String,
    /// The webhook route of a page a pager (`serve`) runs; `None` for `run`.
    pub route: Option<String>,
}

/// A page a pager (`serve`) started that has not ended: what `active`
/// lists and what a restarted pager resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedPage {
    /// Its run.
    pub run_id: String,
    /// The name of its playbook.
    pub playbook: String,
    /// The path its playbook was loaded from (as recorded).
    pub path: String,
    /// The webhook route that started it.
    pub route: String,
    /// Its key (`{route}:{rendered dedup.key}`).
    pub key: String,
    /// Its short code.
    pub code: String,
    /// When it started.
    pub started_at: Timestamp,
    /// Its run's state (`running`, or `interrupted` after a shutdown).
    pub state: super::RunState,
}

/// Where one recorded call sits on the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSlot {
    /// The step's name.
    pub step: String,
    /// The round within the step, from 1.
    pub round: u32,
    /// When it is planned, in seconds from the page's start.
    pub at_offset: u64,
}

/// How a page was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckVia {
    /// An SMS to the caller id.
    Sms,
    /// A call back to the caller id.
    CallBack,
    /// An answered call long enough (`ack.answered`).
    Answered,
    /// `callbook ack`.
    Manual,
}

impl AckVia {
    /// As the report and the journal write it.
    pub fn as_str(self) -> &'static str {
        match self {
            AckVia::Sms => "sms",
            AckVia::CallBack => "call_back",
            AckVia::Answered => "answered",
            AckVia::Manual => "manual",
        }
    }

    /// For the table's last line: `by SMS`, `by calling back`.
    pub fn words(self) -> &'static str {
        match self {
            AckVia::Sms => "by SMS",
            AckVia::CallBack => "by calling back",
            AckVia::Answered => "by answering",
            AckVia::Manual => "by hand",
        }
    }
}

impl fmt::Display for AckVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AckVia {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "sms" => AckVia::Sms,
            "call_back" => AckVia::CallBack,
            "answered" => AckVia::Answered,
            "manual" => AckVia::Manual,
            other => {
                return Err(UnknownValue {
                    kind: "acknowledgement",
                    value: other.to_string(),
                });
            }
        })
    }
}

/// An acknowledgement as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRecord {
    /// Who: a recipient's name, or free text given to `callbook ack --by`.
    pub by: String,
    /// How.
    pub via: AckVia,
    /// When it was recorded.
    pub at: Timestamp,
    /// The SMS text, or the note given to `callbook ack --note`.
    pub text: Option<String>,
}

/// What became of an acknowledgement a store was asked to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckResult {
    /// Recorded; the page (if still going) stops at its next look.
    Recorded,
    /// No such run.
    NoSuchRun,
    /// The run is not a page.
    NotAPage,
    /// The page already ended, with this outcome (or run state).
    Ended(String),
}

/// A page that ended recently, for dedup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageEnd {
    /// Its run.
    pub run_id: String,
    /// `acknowledged` or `exhausted`.
    pub outcome: String,
    /// When it ended.
    pub ended_at: Timestamp,
}

/// How a call of a page ended, as its `END` callback (or the lack of one) said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEnding {
    /// The call's index in its run.
    pub idx: usize,
    /// `ANSWERED`, `NO_ANSWER`, …, or `NO_CALLBACK`.
    pub disposition: String,
    /// Billable seconds, from the callback.
    pub billable_seconds: Option<u32>,
    /// When the ending was recorded.
    pub ended_at: Option<Timestamp>,
}

/// A round of a page as recorded when it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundRecord {
    /// The step's name.
    pub step: String,
    /// The round within the step, from 1.
    pub round: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When the next round was due (its start when it placed no call).
    pub due_at: Timestamp,
}
