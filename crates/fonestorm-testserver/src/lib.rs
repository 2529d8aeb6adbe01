//! A FoneStorm-compatible test server for callbook's integration tests and
//! benchmarks, and for trying callbook by hand.
//!
//! It serves `POST /auth` and `POST /calls` at the root as the real API does
//! (as FracTEL's FoneStorm API reference describes them), checks requests more
//! strictly than the real API is known to, enforces a sliding one-second rate
//! limit, and injects faults into calls and logins: error statuses (redirects
//! included), hangs, malformed answers, dropped connections and expired
//! tokens. It records every request so that tests can assert what the client did:
//! which calls were placed (and whether any number was called twice), how many
//! requests hit the rate limit, and the peak request rate.
//!
//! For pages it also keeps FoneStorm's callbacks: it accepts
//! `POST /calls/send_notify`, `POST /calls/receive_notify` and
//! `POST /messages/receive`, shows them in `GET /fonenumbers[/{fonenumber}]`,
//! ends each placed call with a scripted disposition ([`DispositionScript`]) and
//! sends its `BEGIN` and `END` callbacks to the registered URL (delayed, lost or
//! duplicated on request, [`CallbackRule`]), and simulates inbound SMS and calls
//! (`POST /_simulate/sms`, `POST /_simulate/inbound_call`,
//! [`Handle::simulate_sms`]). Every callback is recorded ([`Handle::callbacks`]).
//!
//! ```no_run
//! use fonestorm_testserver::{Config, Fault, FaultRule, TestServer};
//!
//! let server = TestServer::start(Config {
//!     faults: vec![FaultRule::new(Fault::Status(503)).nth(2).times(1)],
//!     ..Config::default()
//! })?;
//! // ... run callbook against server.url() ...
//! assert!(server.placed_counts().values().all(|&count| count == 1));
//! # Ok::<(), std::io::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod api;
mod callback;
mod config;
mod error;
mod handle;
mod hooks;
mod record;
mod server;
mod spec;
mod state;
mod token;
mod validate;

pub use callback::{CallbackKind, CallbackRecord};
pub use config::{
    CallbackFault, CallbackRule, Config, DispositionScript, Fault, FaultRule, NumberStyle, Outcome,
    SmsTextField,
};
pub use handle::Handle;
pub use hooks::{HookMethod, Hooks, OptionsSpelling, SmsHook, UrlHook};
pub use record::{Placed, RequestRecord, Stats};
pub use server::{TestServer, serve};
pub use spec::{DEFAULT_BILLABLE_SECONDS, FaultSpecError, SpecError, parse_duration};
