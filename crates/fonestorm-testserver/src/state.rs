//! The state shared by the request handlers and the test that owns the server:
//! configuration, rate-limit window, issued tokens and the record. One mutex
//! guards all of it, so that the rate limiter, the fault counters and the record
//! agree on the order of requests. It is never held across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::callback::{self, CallJob, CallbackKind, CallbackRecord, Delivery};
use crate::config::{CallbackFault, Config, Fault, FaultRule, SmsTextField};
use crate::error::ApiError;
use crate::hooks::{self, Hooks, SmsHook};
use crate::record::{self, Placed, RequestRecord, Stats};
use crate::token;
use crate::validate::{self, AuthRequest, CallRequest, DEFAULT_EXPIRES};

/// The length of the rate limiter's sliding window.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Everything the server and its handle share.
pub(crate) struct Shared {
    started: Instant,
    addr: SocketAddr,
    inner: Mutex<Inner>,
    shutdown: watch::Sender<bool>,
    /// Delivers callbacks.
    client: reqwest::Client,
    /// The runtime the server runs on, for [`Handle`](crate::Handle) methods
    /// that deliver a callback from a thread outside it.
    runtime: OnceLock<tokio::runtime::Handle>,
}

/// The mutable part of the shared state.
struct Inner {
    config: Config,
    /// How many times each of `config.faults` fired.
    fault_fires: Vec<u32>,
    /// How many times each of `config.auth_faults` fired.
    auth_fault_fires: Vec<u32>,
    /// `POST /auth` requests let through by the rate limiter, for `nth`.
    auths_seen: u64,
    /// Arrivals of the requests the rate limiter let through within the last window.
    window: VecDeque<Instant>,
    records: Vec<RequestRecord>,
    /// Issued tokens and when they expire.
    issued: HashMap<String, Instant>,
    /// Tokens expired by [`Fault::ExpireToken`].
    revoked: HashSet<String>,
    tokens_seen: BTreeSet<String>,
    /// `POST /calls` requests let through by the rate limiter, for `nth`.
    calls_seen: u64,
    /// Calls counted as placed, for `after`.
    calls_placed: u64,
    /// The callbacks registered per FoneNumber.
    hooks: BTreeMap<String, Hooks>,
    /// Calls counted as placed per dial string, for the disposition scripts.
    attempts: HashMap<String, u64>,
    /// How many times each of `config.callback_faults` fired.
    callback_fault_fires: Vec<u32>,
    /// Every callback sent or lost, in the order they finished.
    callbacks: Vec<CallbackRecord>,
}

/// An admitted request: where its record is, and its number among call requests
/// (or, for `POST /auth`, among login requests).
pub(crate) struct Ticket {
    pub(crate) index: usize,
    pub(crate) nth_call: u64,
}

/// An inbound SMS to simulate.
#[derive(Debug, Clone)]
pub(crate) struct InboundSms {
    /// The sender, sent as given.
    pub(crate) from: String,
    /// The FoneNumber it is sent to.
    pub(crate) to: String,
    pub(crate) text: String,
    /// The field for the text; the configured one when `None`.
    pub(crate) field: Option<SmsTextField>,
    /// Leave `to` out of the callback, which clients must cope with.
    pub(crate) omit_to: bool,
}

/// Which call callback a registration sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyEvent {
    /// `POST /calls/send_notify`: outbound calls.
    Send,
    /// `POST /calls/receive_notify`: inbound calls.
    Receive,
}

/// How the server answers a call request, decided in one step under the lock.
pub(crate) enum CallPlan {
    /// Answer this error at once; the call is not placed.
    Reject(ApiError),
    /// Answer `201` with this id after the latency; the call is placed. Then
    /// send its callbacks, if any.
    Place {
        id: String,
        latency: Duration,
        callbacks: Option<CallJob>,
    },
    /// Inject this fault; the placement is already recorded. A call counted as
    /// placed may have callbacks all the same (sent at once).
    Inject {
        fault: Fault,
        latency: Duration,
        callbacks: Option<CallJob>,
    },
}

impl Shared {
    pub(crate) fn new(config: Config, addr: SocketAddr) -> io::Result<Self> {
        let client = callback::client().map_err(io::Error::other)?;
        let callback_fault_fires = vec![0; config.callback_faults.len()];
        let fault_fires = vec![0; config.faults.len()];
        let auth_fault_fires = vec![0; config.auth_faults.len()];
        let hooks = config.hooks.clone();
        Ok(Shared {
            started: Instant::now(),
            addr,
            inner: Mutex::new(Inner {
                config,
                fault_fires,
                auth_fault_fires,
                auths_seen: 0,
                window: VecDeque::new(),
                records: Vec::new(),
                issued: HashMap::new(),
                revoked: HashSet::new(),
                tokens_seen: BTreeSet::new(),
                calls_seen: 0,
                calls_placed: 0,
                hooks,
                attempts: HashMap::new(),
                callback_fault_fires,
                callbacks: Vec::new(),
            }),
            shutdown: watch::channel(false).0,
            client,
            runtime: OnceLock::new(),
        })
    }

    /// The state; a handler that panicked cannot leave it half-updated in a way
    /// that matters to a test server, so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves once [`Shared::shutdown`] was called.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.shutdown.subscribe();
        // The sender lives in `self`, so waiting cannot fail before it is dropped.
        let _ = stop.wait_for(|stop| *stop).await;
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Records a request and runs it past the rate limiter: `Err` is the `429`
    /// answer, already recorded.
    pub(crate) fn admit(&self, method: &str, path: &str) -> Result<Ticket, ApiError> {
        let mut inner = self.lock();
        let now = Instant::now();
        while inner
            .window
            .front()
            .is_some_and(|&first| now.saturating_duration_since(first) >= RATE_WINDOW)
        {
            inner.window.pop_front();
        }
        let mut record = RequestRecord::new(now, self.started, method, path);
        let limit = inner.config.rate_limit;
        if limit.is_some_and(|limit| inner.window.len() >= limit as usize) {
            record.rate_limited = true;
            record.status = Some(429);
            if inner.config.log {
                eprintln!("{}", record.log_line("429 (rate limited)"));
            }
            inner.records.push(record);
            return Err(ApiError::rate_limited());
        }
        inner.window.push_back(now);
        let nth_call = match path {
            "/calls" => {
                inner.calls_seen += 1;
                inner.calls_seen
            }
            "/auth" => {
                inner.auths_seen += 1;
                inner.auths_seen
            }
            _ => 0,
        };
        inner.records.push(record);
        Ok(Ticket {
            index: inner.records.len() - 1,
            nth_call,
        })
    }

    /// Milliseconds since the server started, for the callback records.
    fn ms_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Remembers the runtime the server runs on; the first call wins.
    pub(crate) fn set_runtime(&self, runtime: tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime);
    }

    /// The runtime the server runs on, once it runs.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.get().cloned()
    }

    /// Sends one callback, once, and records how it went.
    async fn deliver(&self, delivery: &Delivery) -> CallbackRecord {
        let timeout = self.lock().config.callback_timeout;
        let mut record = delivery.record(self.ms_since_start());
        match callback::send(&self.client, delivery, timeout).await {
            Ok(status) => record.receiver_status = Some(status),
            Err(err) => record.error = Some(err),
        }
        self.keep_callback(record.clone());
        record
    }

    /// Records a callback lost on purpose.
    fn lose(&self, delivery: &Delivery) {
        let mut record = delivery.record(self.ms_since_start());
        record.lost = true;
        self.keep_callback(record);
    }

    fn keep_callback(&self, record: CallbackRecord) {
        let mut inner = self.lock();
        if inner.config.log {
            eprintln!("{}", callback::log_line(&record));
        }
        inner.callbacks.push(record);
    }

    /// Sends a placed call's `BEGIN`, waits the callback delay, sends its `END`,
    /// each as its callback fault says.
    async fn run_call_job(self: Arc<Self>, job: CallJob) {
        let fault = job.fault;
        if matches!(
            fault,
            Some(CallbackFault::LoseBegin | CallbackFault::LoseBoth)
        ) {
            self.lose(&job.begin);
        } else {
            self.deliver(&job.begin).await;
        }
        let delay = self.lock().config.callback_delay;
        tokio::time::sleep(delay).await;
        let end = job.end();
        if matches!(
            fault,
            Some(CallbackFault::LoseEnd | CallbackFault::LoseBoth)
        ) {
            self.lose(&end);
        } else {
            self.deliver(&end).await;
            if fault == Some(CallbackFault::DuplicateEnd) {
                self.deliver(&end).await;
            }
        }
    }

    /// Sends a call's callbacks in the background, so that they never hold up an
    /// answer. Must be called on the server's runtime.
    pub(crate) fn spawn_call_callbacks(self: &Arc<Self>, job: Option<CallJob>) {
        if let Some(job) = job {
            tokio::spawn(self.clone().run_call_job(job));
        }
    }

    /// Delivers an inbound SMS to the FoneNumber's `messages/receive` URL.
    pub(crate) async fn simulate_sms(&self, sms: InboundSms) -> Result<CallbackRecord, ApiError> {
        let delivery = {
            let inner = self.lock();
            validate::account_fonenumber(&sms.to, &inner.config.fonenumbers)?;
            let hook = match inner.hooks.get(&sms.to).and_then(|hooks| hooks.sms.clone()) {
                Some(SmsHook::Url(hook)) => hook,
                Some(other) => {
                    return Err(ApiError::new(
                        409,
                        format!(
                            "SMS to `{}` are delivered by `{}`, not to a URL",
                            sms.to,
                            other.kind()
                        ),
                    ));
                }
                None => {
                    return Err(ApiError::new(
                        409,
                        format!("no `messages/receive` URL is registered for `{}`", sms.to),
                    ));
                }
            };
            let field = sms.field.unwrap_or(inner.config.sms_text_field);
            let mut fields = BTreeMap::from([
                ("from".to_owned(), json!(sms.from)),
                (field.as_str().to_owned(), json!(sms.text)),
            ]);
            if !sms.omit_to {
                let to = inner.config.number_style.write(&sms.to);
                fields.insert("to".to_owned(), json!(to));
            }
            Delivery {
                kind: CallbackKind::Sms,
                fonenumber: sms.to,
                hook,
                fields,
            }
        };
        Ok(self.deliver(&delivery).await)
    }

    /// Delivers an inbound call's callback (`BEGIN`) to the FoneNumber's
    /// `receive_notify` URL.
    pub(crate) async fn simulate_inbound_call(
        &self,
        from: String,
        to: String,
    ) -> Result<CallbackRecord, ApiError> {
        let delivery = {
            let inner = self.lock();
            validate::account_fonenumber(&to, &inner.config.fonenumbers)?;
            let Some(hook) = inner
                .hooks
                .get(&to)
                .and_then(|hooks| hooks.receive_notify.clone())
            else {
                return Err(ApiError::new(
                    409,
                    format!("no `receive_notify` URL is registered for `{to}`"),
                ));
            };
            let fields = BTreeMap::from([
                ("uid".to_owned(), json!(token::call_id())),
                ("account_code".to_owned(), json!(inner.config.account_code)),
                ("direction".to_owned(), json!("INBOUND")),
                ("status".to_owned(), json!("BEGIN")),
                ("from".to_owned(), json!(from)),
                ("to".to_owned(), json!(inner.config.number_style.write(&to))),
                ("type".to_owned(), json!("VOICE")),
            ]);
            Delivery {
                kind: CallbackKind::InboundCall,
                fonenumber: to,
                hook,
                fields,
            }
        };
        Ok(self.deliver(&delivery).await)
    }

    pub(crate) fn callbacks(&self) -> Vec<CallbackRecord> {
        self.lock().callbacks.clone()
    }

    pub(crate) fn callback_fault_fires(&self) -> Vec<u32> {
        self.lock().callback_fault_fires.clone()
    }

    /// Changes an admitted request's record.
    pub(crate) fn update(&self, index: usize, change: impl FnOnce(&mut RequestRecord)) {
        if let Some(record) = self.lock().records.get_mut(index) {
            change(record);
        }
    }

    /// Records the status a request was answered with, and logs it.
    pub(crate) fn answered(&self, index: usize, status: u16, call_id: Option<String>) {
        let mut inner = self.lock();
        let log = inner.config.log;
        if let Some(record) = inner.records.get_mut(index) {
            record.status = Some(status);
            let outcome = match &call_id {
                Some(id) => format!("{status} (call {id})"),
                None => status.to_string(),
            };
            record.call_id = call_id;
            if log {
                eprintln!("{}", record.log_line(&outcome));
            }
        }
    }

    /// Logs a request that gets no answer (hang, dropped connection).
    pub(crate) fn unanswered(&self, index: usize, outcome: &str) {
        let inner = self.lock();
        if let Some(record) = inner.records.get(index).filter(|_| inner.config.log) {
            eprintln!("{}", record.log_line(outcome));
        }
    }

    /// Checks credentials and issues a token.
    pub(crate) fn authenticate(&self, auth: &AuthRequest) -> Result<String, ApiError> {
        let mut inner = self.lock();
        if auth.username != inner.config.username || auth.password != inner.config.password {
            return Err(ApiError::unauthorized("wrong user name or password"));
        }
        let lifetime = inner
            .config
            .token_ttl
            .unwrap_or(Duration::from_secs(auth.expires.unwrap_or(DEFAULT_EXPIRES)));
        let now = SystemTime::now();
        let unix = |time: SystemTime| {
            time.duration_since(UNIX_EPOCH)
                .map(|since| since.as_secs())
                .unwrap_or(0)
        };
        // `exp` is rounded down, so a client that trusts it renews in time.
        let token = token::jwt(&auth.username, unix(now), unix(now + lifetime));
        inner
            .issued
            .insert(token.clone(), Instant::now() + lifetime);
        Ok(token)
    }

    /// The fault to inject into a login request, if an auth fault rule hits it.
    pub(crate) fn plan_auth(&self, ticket: &Ticket) -> Option<Fault> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let rule = inner
            .config
            .auth_faults
            .iter()
            .zip(&inner.auth_fault_fires)
            .position(|(rule, &fired)| {
                rule.to.is_none()
                    && rule.times.is_none_or(|times| fired < times)
                    && rule.matches("", ticket.nth_call, inner.calls_placed)
            })?;
        inner.auth_fault_fires[rule] += 1;
        let fault = inner.config.auth_faults[rule].fault;
        if let Some(record) = inner.records.get_mut(ticket.index) {
            record.fault = Some(fault);
        }
        Some(fault)
    }

    /// Decides the answer to a call request: token, body, faults, placement.
    pub(crate) fn plan_call(
        &self,
        ticket: &Ticket,
        token: Option<&str>,
        body: Result<Value, ApiError>,
    ) -> CallPlan {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Err(err) = inner.check_token(token) {
            return CallPlan::Reject(err);
        }
        let call =
            match body.and_then(|body| validate::call_request(body, &inner.config.fonenumbers)) {
                Ok(call) => call,
                Err(err) => return CallPlan::Reject(err),
            };
        let latency = inner.config.latency;
        let rule = inner
            .config
            .faults
            .iter()
            .zip(&inner.fault_fires)
            .position(|(rule, &fired)| {
                rule.times.is_none_or(|times| fired < times)
                    && rule.matches(&call.to, ticket.nth_call, inner.calls_placed)
            });
        let Some(rule) = rule else {
            inner.place(ticket.index, Placed::Yes, None);
            let id = token::call_id();
            let callbacks = inner.call_callbacks(ticket.index, &call, &id);
            return CallPlan::Place {
                id,
                latency,
                callbacks,
            };
        };
        inner.fault_fires[rule] += 1;
        let fault = inner.config.faults[rule].fault;
        let placed = match fault {
            Fault::Status(status) | Fault::StatusAfterLatency(status)
                if Fault::is_ambiguous_status(status) =>
            {
                Placed::Ambiguous
            }
            Fault::Status(_) | Fault::StatusAfterLatency(_) | Fault::ExpireToken => Placed::No,
            Fault::Malformed => Placed::Yes,
            Fault::Hang | Fault::Close => Placed::Ambiguous,
        };
        if fault == Fault::ExpireToken
            && let Some(token) = token
        {
            inner.revoked.insert(token.to_owned());
        }
        inner.place(ticket.index, placed, Some(fault));
        let callbacks = if placed.counts() {
            inner.call_callbacks(ticket.index, &call, &token::call_id())
        } else {
            None
        };
        CallPlan::Inject {
            fault,
            latency,
            callbacks,
        }
    }

    /// Records the presented token and checks it, for the requests other than
    /// `POST /calls` (which checks it inside [`Shared::plan_call`]).
    pub(crate) fn check_token(&self, token: Option<&str>) -> Result<(), ApiError> {
        self.lock().check_token(token)
    }

    /// Registers (or, with `None`, clears) a call callback, after checking the
    /// FoneNumber; answers the FoneNumber's view.
    pub(crate) fn register_notify(
        &self,
        body: Value,
        event: NotifyEvent,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let (fonenumber, hook) = validate::notify_request(body, &inner.config.fonenumbers)?;
        let entry = inner.hooks.entry(fonenumber.clone()).or_default();
        match event {
            NotifyEvent::Send => entry.send_notify = hook,
            NotifyEvent::Receive => entry.receive_notify = hook,
        }
        Ok(inner.view(&fonenumber))
    }

    /// Registers (or, with `type: None`, clears) the SMS delivery.
    pub(crate) fn register_sms(&self, body: Value) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let (fonenumber, hook) =
            validate::message_receive_request(body, &inner.config.fonenumbers)?;
        inner.hooks.entry(fonenumber.clone()).or_default().sms = hook;
        Ok(inner.view(&fonenumber))
    }

    /// `GET /fonenumbers/{fonenumber}`'s answer.
    pub(crate) fn fonenumber(&self, fonenumber: &str) -> Result<Value, ApiError> {
        let inner = self.lock();
        if !inner
            .config
            .fonenumbers
            .iter()
            .any(|known| known == fonenumber)
        {
            // In a path, anything that is not one of the account's is unknown.
            return Err(ApiError::not_found(format!(
                "`{}` is not a FoneNumber of this account",
                fonenumber.chars().take(80).collect::<String>()
            )));
        }
        Ok(serde_json::json!({ "fonenumber": inner.view(fonenumber) }))
    }

    /// `GET /fonenumbers`'s answer: every FoneNumber of the account.
    pub(crate) fn fonenumbers(&self) -> Value {
        let inner = self.lock();
        let list: Vec<Value> = inner
            .config
            .fonenumbers
            .iter()
            .map(|fonenumber| inner.view(fonenumber))
            .collect();
        serde_json::json!({ "fonenumbers": list })
    }

    pub(crate) fn hooks(&self) -> BTreeMap<String, Hooks> {
        self.lock().hooks.clone()
    }

    pub(crate) fn set_hooks(&self, fonenumber: &str, hooks: Hooks) {
        self.lock().hooks.insert(fonenumber.to_owned(), hooks);
    }

    pub(crate) fn config(&self) -> Config {
        self.lock().config.clone()
    }

    pub(crate) fn update_config(&self, change: impl FnOnce(&mut Config)) {
        let mut inner = self.lock();
        let before = inner.config.faults.clone();
        let auth_before = inner.config.auth_faults.clone();
        let callback_before = inner.config.callback_faults.clone();
        change(&mut inner.config);
        if inner.config.callback_faults != callback_before {
            inner.callback_fault_fires = vec![0; inner.config.callback_faults.len()];
        }
        if inner.config.faults != before {
            inner.fault_fires = vec![0; inner.config.faults.len()];
        }
        if inner.config.auth_faults != auth_before {
            inner.auth_fault_fires = vec![0; inner.config.auth_faults.len()];
        }
    }

    pub(crate) fn set_faults(&self, faults: Vec<FaultRule>) {
        let mut inner = self.lock();
        inner.fault_fires = vec![0; faults.len()];
        inner.config.faults = faults;
    }

    pub(crate) fn with_records<T>(&self, read: impl FnOnce(&[RequestRecord]) -> T) -> T {
        read(&self.lock().records)
    }

    pub(crate) fn tokens_seen(&self) -> BTreeSet<String> {
        self.lock().tokens_seen.clone()
    }

    pub(crate) fn fault_fires(&self) -> Vec<u32> {
        self.lock().fault_fires.clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        let records = &inner.records;
        Stats {
            requests: records.clone(),
            placed_calls: record::placed_calls(records),
            placed_counts: record::placed_counts(records).into_iter().collect(),
            count_429: record::count_status(records, 429),
            auth_count: record::auth_count(records),
            tokens_seen: inner.tokens_seen.clone(),
            max_requests_in_one_second: record::max_in_any_window(records, RATE_WINDOW),
            fault_fires: inner.fault_fires.clone(),
            callbacks: inner.callbacks.clone(),
        }
    }
}

impl Inner {
    /// Decides how a call counted as placed ends and, when `send_notify` is
    /// registered for its caller id, the callbacks to send for it.
    fn call_callbacks(&mut self, index: usize, call: &CallRequest, uid: &str) -> Option<CallJob> {
        let attempt = {
            let count = self.attempts.entry(call.to.clone()).or_insert(0);
            *count += 1;
            *count
        };
        let outcome = self
            .config
            .dispositions
            .iter()
            .find(|script| script.to.as_deref().is_none_or(|to| to == call.to))
            .and_then(|script| script.outcome(attempt))
            .unwrap_or(&self.config.default_outcome)
            .clone();
        if let Some(record) = self.records.get_mut(index) {
            record.outcome = Some(outcome.clone());
            record.uid = Some(uid.to_owned());
        }
        let hook = self
            .hooks
            .get(&call.fonenumber)
            .and_then(|hooks| hooks.send_notify.clone())?;
        let nth_placed = self.calls_placed;
        let rule = self
            .config
            .callback_faults
            .iter()
            .zip(&self.callback_fault_fires)
            .position(|(rule, &fired)| {
                rule.times.is_none_or(|times| fired < times) && rule.matches(&call.to, nth_placed)
            });
        let fault = rule.map(|rule| {
            self.callback_fault_fires[rule] += 1;
            self.config.callback_faults[rule].fault
        });
        let style = self.config.number_style;
        let begin = BTreeMap::from([
            ("uid".to_owned(), json!(uid)),
            ("account_code".to_owned(), json!(self.config.account_code)),
            ("direction".to_owned(), json!("OUTBOUND")),
            ("status".to_owned(), json!("BEGIN")),
            ("from".to_owned(), json!(style.write(&call.fonenumber))),
            ("to".to_owned(), json!(style.write(&call.to))),
            ("type".to_owned(), json!("VOICE")),
        ]);
        let end_fields = BTreeMap::from([
            ("status".to_owned(), json!("END")),
            ("disposition".to_owned(), json!(outcome.disposition)),
            (
                "billable_seconds".to_owned(),
                json!(outcome.billable_seconds),
            ),
        ]);
        Some(CallJob {
            begin: Delivery {
                kind: CallbackKind::Call,
                fonenumber: call.fonenumber.clone(),
                hook,
                fields: begin,
            },
            end_fields,
            fault,
        })
    }

    /// One FoneNumber as the API shows it.
    fn view(&self, fonenumber: &str) -> Value {
        let empty = Hooks::default();
        let hooks = self.hooks.get(fonenumber).unwrap_or(&empty);
        let mut view = hooks::fonenumber_view(fonenumber, hooks, self.config.options_spelling);
        let listed = |list: &[String]| list.iter().any(|known| known == fonenumber);
        if let Some(fields) = view.as_object_mut() {
            let active = !listed(&self.config.inactive_fonenumbers);
            fields.insert("is_active".to_owned(), Value::Bool(active));
            let sms = !listed(&self.config.sms_disabled_fonenumbers);
            for key in ["message_options", "sms_options"] {
                if let Some(Value::Object(options)) = fields.get_mut(key) {
                    options.insert("sms_enabled".to_owned(), Value::Bool(sms));
                }
            }
        }
        view
    }

    /// Records the presented token and checks it.
    fn check_token(&mut self, token: Option<&str>) -> Result<(), ApiError> {
        let Some(token) = token else {
            return Err(ApiError::unauthorized("missing `token` header"));
        };
        self.tokens_seen.insert(token.to_owned());
        if self.revoked.contains(token) {
            return Err(ApiError::unauthorized("the token has expired"));
        }
        match self.issued.get(token) {
            Some(&expires) if Instant::now() >= expires => {
                Err(ApiError::unauthorized("the token has expired"))
            }
            Some(_) => Ok(()),
            None if self.config.static_tokens.iter().any(|known| known == token) => Ok(()),
            None => Err(ApiError::unauthorized("invalid token")),
        }
    }

    /// Records whether a call counts as placed, and which fault decided it.
    fn place(&mut self, index: usize, placed: Placed, fault: Option<Fault>) {
        if placed.counts() {
            self.calls_placed += 1;
        }
        if let Some(record) = self.records.get_mut(index) {
            record.placed = placed;
            record.fault = fault;
        }
    }
}
