//! Placing the planned calls: many in flight, within the rate limit, each at most once.
//!
//! A FoneStorm request lasts until the callee picks up, so throughput comes
//! from many requests in flight (`concurrency`), paced by the [`RateLimiter`].
//! The retry rules are here:
//!
//! - certainly not placed (429, 503, no connection): retried with exponential
//!   backoff and jitter, or after `Retry-After`, up to `retries` times;
//! - refused (400, 403, 404): that call fails, the run goes on;
//! - 401: the token is renewed once and the call retried; a second 401 stops the run;
//! - 402 (out of funds): the run stops; calls not yet attempted fail;
//! - maybe placed (any other status, a redirect, a timeout after sending, an
//!   unreadable, too large or too slow answer): the call is `unknown` and is
//!   **not** retried unless `retry_ambiguous` is set.
//!
//! A token about to expire is renewed before the next call; a renewal that
//! fails for a passing reason keeps the still-valid token (see [`Client::renew`]).
//!
//! Stopping (interrupt, fatal error) starts no new request; requests in
//! flight are finished and recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use std::future::Future;

use crate::model::{Outcome, Status};
use crate::plan::CallRequest;
use crate::provider::limiter::RateLimiter;
use crate::provider::{CallError, Client, backoff};
use crate::store::StoreError;

/// How the provider is used during one run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The FoneNumber calls come from.
    pub fonenumber: String,
    /// Requests in flight, at most.
    pub concurrency: usize,
    /// Retries of a call that certainly was not placed.
    pub retries: u32,
    /// Also retry calls that may have been placed (at-least-once).
    pub retry_ambiguous: bool,
}

/// Why a run stopped placing calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Authentication failed for good.
    AuthFailed(String),
    /// Nothing more can succeed (out of funds).
    Fatal(String),
}

impl StopReason {
    fn not_attempted(&self) -> String {
        match self {
            StopReason::Interrupted => "not attempted: the run was interrupted".to_string(),
            StopReason::AuthFailed(m) | StopReason::Fatal(m) => format!("not attempted: {m}"),
        }
    }
}

/// The run's stop switch, shared by every task and the cancellation watcher.
#[derive(Debug, Default)]
pub struct Control {
    stopped: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    /// Wakes the calls waiting between retries when the run stops.
    wake: tokio::sync::Notify,
}

impl Control {
    /// Stops starting new requests; the first reason given is kept.
    pub fn stop(&self, reason: StopReason) {
        let mut slot = self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Waits `pause` before a retry, or less once the run stops: a
    /// `Retry-After` of a minute must not hold an interrupted run that long.
    pub async fn pause(&self, pause: std::time::Duration) {
        let stopped = self.wake.notified();
        tokio::pin!(stopped);
        // Registered before the flag is read, so a stop in between still wakes it.
        stopped.as_mut().enable();
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stopped => {}
        }
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        if !self.stopped.load(Ordering::SeqCst) {
            return None;
        }
        self.reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Records each call as it goes, durably, before and after each request.
///
/// An error from [`Recorder::sending`] prevents the request; any error stops
/// the run, since a call whose outcome cannot be recorded could be repeated.
pub trait Recorder: Send + Sync + 'static {
    /// Called just before a request for call `index` is sent. An error
    /// prevents the request: the call fails with it and the run stops.
    fn sending(
        &self,
        index: usize,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Called when an attempt of call `index` certainly did not place it
    /// (429, 503, no connection, 401), before the pause and the next try.
    fn not_placed(&self, index: usize) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Called once per call with its final outcome. An error (the outcome
    /// could not be recorded) stops the run.
    fn finished(
        &self,
        index: usize,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Places `calls` (plan index, request) and returns their outcomes in the same order.
///
/// `limiter` is shared with any request made before (the first login).
pub async fn dispatch<R: Recorder>(
    client: Arc<Client>,
    calls: Vec<(usize, CallRequest)>,
    settings: Settings,
    limiter: Arc<RateLimiter>,
    control: Arc<Control>,
    recorder: Arc<R>,
) -> Vec<Outcome> {
    let semaphore = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let settings = Arc::new(settings);
    let mut tasks = Vec::with_capacity(calls.len());
    for (index, call) in calls {
        let job = Job {
            client: client.clone(),
            limiter: limiter.clone(),
            settings: settings.clone(),
            control: control.clone(),
            recorder: recorder.clone(),
            index,
        };
        let semaphore = semaphore.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = match semaphore.acquire_owned().await {
                Ok(_permit) => job.run(&call).await,
                Err(_) => failed(0, "not attempted: the run was shut down".to_string()),
            };
            if let Err(e) = job.recorder.finished(job.index, &outcome).await {
                tracing::error!("{e}");
                job.control.stop(StopReason::Fatal(e.to_string()));
            }
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(
            task.await.unwrap_or_else(|e| {
                failed(0, format!("internal error while placing the call: {e}"))
            }),
        );
    }
    outcomes
}

fn failed(attempts: u32, error: String) -> Outcome {
    Outcome {
        status: Status::Failed,
        call_id: None,
        attempts,
        error: Some(error),
    }
}

/// One call's worth of shared state.
struct Job<R> {
    client: Arc<Client>,
    limiter: Arc<RateLimiter>,
    settings: Arc<Settings>,
    control: Arc<Control>,
    recorder: Arc<R>,
    index: usize,
}

impl<R: Recorder> Job<R> {
    /// A call whose progress cannot be recorded fails, and the run stops:
    /// going on could call someone twice after a crash.
    fn unrecorded(&self, attempts: u32, e: &StoreError) -> Outcome {
        let m = e.to_string();
        self.control.stop(StopReason::Fatal(m.clone()));
        failed(attempts, m)
    }

    async fn run(&self, call: &CallRequest) -> Outcome {
        let mut attempts = 0u32;
        let mut renewed = false;
        loop {
            if let Some(reason) = self.control.reason() {
                return failed(attempts, reason.not_attempted());
            }
            if self.client.needs_login()
                && let Err(e) = self.client.renew(&self.limiter).await
            {
                let m = e.to_string();
                self.control.stop(StopReason::AuthFailed(m.clone()));
                return failed(attempts, m);
            }
            let slot = self.limiter.take().await;
            if let Some(reason) = self.control.reason() {
                return failed(attempts, reason.not_attempted());
            }
            if let Err(e) = self.recorder.sending(self.index, attempts + 1).await {
                return self.unrecorded(attempts, &e);
            }
            // The window counts from when the request leaves, after its record.
            self.limiter.leaving(slot).await;
            attempts += 1;
            tracing::debug!(call = self.index, to = %call.to, attempt = attempts, "sending");
            let generation = self.client.token_generation();
            let error = match self
                .client
                .place_call(&self.settings.fonenumber, call)
                .await
            {
                Ok(id) => {
                    return Outcome {
                        status: Status::Placed,
                        call_id: Some(id),
                        attempts,
                        error: None,
                    };
                }
                Err(e) => e,
            };
            let retries_left = attempts <= self.settings.retries;
            if matches!(
                error,
                CallError::Retryable { .. } | CallError::Unauthorized(_)
            ) && let Err(e) = self.recorder.not_placed(self.index).await
            {
                return self.unrecorded(attempts, &e);
            }
            match error {
                CallError::Retryable {
                    reason,
                    retry_after,
                } => {
                    if !retries_left {
                        return failed(
                            attempts,
                            format!("{reason} (gave up after {attempts} attempts)"),
                        );
                    }
                    let pause = retry_after.unwrap_or_else(|| backoff(attempts));
                    tracing::debug!(to = %call.to, attempt = attempts, ?pause, "retrying: {reason}");
                    self.control.pause(pause).await;
                }
                CallError::Unauthorized(m) => {
                    if renewed {
                        let m = format!("authentication failed after renewing the token: {m}");
                        self.control.stop(StopReason::AuthFailed(m.clone()));
                        return failed(attempts, m);
                    }
                    renewed = true;
                    tracing::debug!(to = %call.to, "token refused, renewing it: {m}");
                    if let Err(e) = self.client.login(generation, &self.limiter).await {
                        let m = e.to_string();
                        self.control.stop(StopReason::AuthFailed(m.clone()));
                        return failed(attempts, m);
                    }
                }
                CallError::Rejected(m) => return failed(attempts, m),
                CallError::Fatal(m) => {
                    self.control.stop(StopReason::Fatal(m.clone()));
                    return failed(attempts, m);
                }
                CallError::Ambiguous(m) => {
                    if !(self.settings.retry_ambiguous && retries_left) {
                        return Outcome {
                            status: Status::Unknown,
                            call_id: None,
                            attempts,
                            error: Some(m),
                        };
                    }
                    tracing::debug!(to = %call.to, attempt = attempts, "retrying (at-least-once): {m}");
                    self.control.pause(backoff(attempts)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_reason_wins() {
        let c = Control::default();
        assert_eq!(c.reason(), None);
        c.stop(StopReason::Fatal("402".into()));
        c.stop(StopReason::Interrupted);
        assert_eq!(c.reason(), Some(StopReason::Fatal("402".into())));
    }
}
