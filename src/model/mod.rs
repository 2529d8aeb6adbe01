//! The vocabulary every layer shares: call and run states, report statuses,
//! FoneStorm service types, timestamps, the records a store keeps and the
//! callbacks FoneStorm sends ([`callback`]).
//!
//! These are plain data with serde, free of storage, terminal and network
//! code, so the engine, the stores and the front ends all speak the same
//! types and no state ever travels as a string.

pub mod callback;
mod page;
mod record;
mod state;
mod time;

pub use page::{
    AckRecord, AckResult, AckVia, CallEnding, CallSlot, PageEnd, PageRecord, RoundRecord,
    ServedPage,
};
pub use record::{CallRecord, FINGERPRINT_VERSION, Outcome, RunRecord, RunSummary};
pub use state::{CallState, RunState, ServiceType, Status, UnknownValue};
pub use time::{Timestamp, timestamp};
