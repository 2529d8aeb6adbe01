//! The test's side of a running server: what it recorded, and knobs to change its
//! behaviour mid-run. Cheap to clone, and usable from any thread.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, FaultRule};
use crate::hooks::Hooks;
use crate::record::{self, RequestRecord, Stats};
use crate::state::Shared;

/// A handle on a running server, shared with its request handlers.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("addr", &self.addr())
            .finish()
    }
}

impl Handle {
    /// The base URL to give the client, `http://127.0.0.1:PORT` (the API is served
    /// at the root).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr()
    }

    /// Every request so far, in arrival order, including those answered `429`.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.with_records(<[RequestRecord]>::to_vec)
    }

    /// The `to` of every call counted as placed, in arrival order: answered `201`
    /// (also with a malformed body), and the ambiguous ones (`500`/`502`/`504`,
    /// hung, dropped).
    pub fn placed_calls(&self) -> Vec<String> {
        self.shared.with_records(record::placed_calls)
    }

    /// How many times each `to` was placed, to prove that nobody was called twice.
    pub fn placed_counts(&self) -> HashMap<String, usize> {
        self.shared.with_records(record::placed_counts)
    }

    /// How many requests were answered `429`, by the rate limiter or by a fault.
    pub fn count_429(&self) -> usize {
        self.shared
            .with_records(|records| record::count_status(records, 429))
    }

    /// The most requests that got past the rate limiter within any window of this
    /// length (half-open, like the limiter's). With the limiter off, this shows
    /// whether the client paces itself: `max_requests_in_any_window(1s) <= 10`.
    pub fn max_requests_in_any_window(&self, window: Duration) -> usize {
        self.shared
            .with_records(|records| record::max_in_any_window(records, window))
    }

    /// How many `POST /auth` requests got past the rate limiter, right or wrong.
    pub fn auth_count(&self) -> usize {
        self.shared.with_records(record::auth_count)
    }

    /// Every token presented on `POST /calls`, valid or not.
    pub fn tokens_seen(&self) -> BTreeSet<String> {
        self.shared.tokens_seen()
    }

    /// How many times each fault rule fired, in the order of the rules; lets a
    /// test check that the fault it set up was actually exercised.
    pub fn fault_fires(&self) -> Vec<u32> {
        self.shared.fault_fires()
    }

    /// All of the above at once, as `GET /_stats` serves it.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The callbacks registered now, per FoneNumber (FoneNumbers that never had
    /// one are absent). Includes the Basic-auth passwords, for tests to check.
    pub fn hooks(&self) -> BTreeMap<String, Hooks> {
        self.shared.hooks()
    }

    /// The callbacks registered now for one FoneNumber (all `None` if none).
    pub fn hooks_of(&self, fonenumber: &str) -> Hooks {
        self.shared.hooks().remove(fonenumber).unwrap_or_default()
    }

    /// Replaces every callback of one FoneNumber, as if a client (or somebody
    /// else's tool) had registered them.
    pub fn set_hooks(&self, fonenumber: &str, hooks: Hooks) {
        self.shared.set_hooks(fonenumber, hooks);
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> Config {
        self.shared.config()
    }

    /// Changes the configuration; requests that arrive afterwards see the change.
    /// Fault fire counts start again from zero if the fault rules changed.
    pub fn update_config(&self, change: impl FnOnce(&mut Config)) {
        self.shared.update_config(change);
    }

    /// Replaces the fault rules, and starts their fire counts from zero.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.shared.set_faults(faults);
    }

    /// Changes how long a successful call takes to answer.
    pub fn set_latency(&self, latency: Duration) {
        self.update_config(|config| config.latency = latency);
    }

    /// Changes the rate limit; `None` turns it off.
    pub fn set_rate_limit(&self, rate_limit: Option<u32>) {
        self.update_config(|config| config.rate_limit = rate_limit);
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, token_ttl: Option<Duration>) {
        self.update_config(|config| config.token_ttl = token_ttl);
    }

    /// Stops the server: it accepts no more connections and drops open ones
    /// (hung requests included). The future from [`serve`](crate::serve) ends.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}
