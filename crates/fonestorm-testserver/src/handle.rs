//! The test's side of a running server: what it recorded, and knobs to change its
//! behaviour mid-run. Cheap to clone, and usable from any thread.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::callback::CallbackRecord;
use crate::config::{CallbackRule, Config, DispositionScript, FaultRule};
use crate::error::ApiError;
use crate::hooks::Hooks;
use crate::record::{self, RequestRecord, Stats};
use crate::state::InboundSms;
use crate::state::Shared;
use crate::validate;

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

    /// Every callback sent (with the receiver's status) or lost on purpose, in
    /// the order they finished.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.shared.callbacks()
    }

    /// Waits until at least `count` callbacks were recorded, or `timeout`
    /// passed, and returns them all; a test then asserts on what it got, so that
    /// a missing callback fails instead of hanging. Polls: do not call it on a
    /// single-threaded runtime that also runs the receiver.
    pub fn wait_for_callbacks(&self, count: usize, timeout: Duration) -> Vec<CallbackRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let callbacks = self.callbacks();
            if callbacks.len() >= count || Instant::now() >= deadline {
                return callbacks;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many times each callback fault rule fired, in the order of the rules.
    pub fn callback_fault_fires(&self) -> Vec<u32> {
        self.shared.callback_fault_fires()
    }

    /// Replaces the disposition scripts (attempt counts go on).
    pub fn set_dispositions(&self, dispositions: Vec<DispositionScript>) {
        self.update_config(|config| config.dispositions = dispositions);
    }

    /// Replaces the callback fault rules, and starts their fire counts from zero.
    pub fn set_callback_faults(&self, faults: Vec<CallbackRule>) {
        self.update_config(|config| config.callback_faults = faults);
    }

    /// Changes the delay between a call's `BEGIN` and `END` callbacks.
    pub fn set_callback_delay(&self, delay: Duration) {
        self.update_config(|config| config.callback_delay = delay);
    }

    /// Simulates an inbound SMS `from` a number `to` one of the account's
    /// FoneNumbers, as `POST /_simulate/sms` does, and waits for its delivery.
    /// Blocks: from async code use [`Handle::simulate_sms_async`].
    pub fn simulate_sms(&self, from: &str, to: &str, text: &str) -> Result<CallbackRecord, String> {
        validate::sender(from).map_err(|err| err.message)?;
        let sms = InboundSms {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            field: None,
            omit_to: false,
        };
        let shared = self.shared.clone();
        self.block_on(async move { shared.simulate_sms(sms).await })
    }

    /// [`Handle::simulate_sms`] for async code. `Err` is the error message when
    /// nothing could be delivered (no URL registered, unknown FoneNumber); a
    /// failed delivery is `Ok` with the reason in the record.
    pub async fn simulate_sms_async(
        &self,
        from: &str,
        to: &str,
        text: &str,
    ) -> Result<CallbackRecord, String> {
        let sms = InboundSms {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            field: None,
            omit_to: false,
        };
        validate::sender(from).map_err(|err| err.message)?;
        self.shared
            .simulate_sms(sms)
            .await
            .map_err(|err| err.message)
    }

    /// Simulates an inbound call `from` a number `to` one of the account's
    /// FoneNumbers, as `POST /_simulate/inbound_call` does, and waits for its
    /// delivery. Blocks: from async code use
    /// [`Handle::simulate_inbound_call_async`].
    pub fn simulate_inbound_call(&self, from: &str, to: &str) -> Result<CallbackRecord, String> {
        validate::sender(from).map_err(|err| err.message)?;
        let shared = self.shared.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        self.block_on(async move { shared.simulate_inbound_call(from, to).await })
    }

    /// [`Handle::simulate_inbound_call`] for async code.
    pub async fn simulate_inbound_call_async(
        &self,
        from: &str,
        to: &str,
    ) -> Result<CallbackRecord, String> {
        validate::sender(from).map_err(|err| err.message)?;
        self.shared
            .simulate_inbound_call(from.to_owned(), to.to_owned())
            .await
            .map_err(|err| err.message)
    }

    /// Runs a delivery on the server's runtime and waits for it, bounded by the
    /// callback timeout (plus slack), so that a sync test never hangs.
    fn block_on(
        &self,
        delivery: impl Future<Output = Result<CallbackRecord, ApiError>> + Send + 'static,
    ) -> Result<CallbackRecord, String> {
        let runtime = self.shared.runtime().ok_or("the server is not running")?;
        let timeout = self.config().callback_timeout + Duration::from_secs(5);
        let (sender, receiver) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = sender.send(delivery.await);
        });
        receiver
            .recv_timeout(timeout)
            .map_err(|_| format!("the delivery did not finish within {timeout:?}"))?
            .map_err(|err| err.message)
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
