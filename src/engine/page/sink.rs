//! The callback sink of a running page: every callback is recorded in the
//! journal first, then acted on.
//!
//! - an `END` of one of the page's calls gives it its disposition (matched
//!   by `uid`, else by the called number and the caller id, **assumed**),
//!   once: duplicates change nothing; an event for a call recorded
//!   `unknown` says it was placed; with `ack.answered`, an answered call
//!   long enough acknowledges;
//! - an SMS from one of the page's people that is an `ack.sms` word (with
//!   this page's short code, or bare once the page has called them)
//!   acknowledges; an SMS from anyone else is logged and ignored;
//! - with `ack.call_back`, a call from one of the page's people that the page
//!   has called acknowledges.
//!
//! Once an acknowledgement is recorded the sink wakes the ladder, which
//! acts on it at once (an acknowledgement by `callbook ack`, from another
//! process, is seen at the ladder's next look, at least once a second); the
//! first one recorded wins.

use std::sync::{Arc, Mutex, PoisonError};

use super::PageState;
use crate::escape::escape_controls;
use crate::listener::{CallbackSink, SinkError};
use crate::model::callback::{
    CallEvent, Callback, Disposition, EventStatus, InboundCall, InboundSms, number_matches,
    parse_ack_text,
};
use crate::model::{AckRecord, AckResult, AckVia, Outcome, Status, Timestamp};
use crate::playbook::Playbook;
use crate::playbook::escalation::{Ack, Retry};
use crate::store::Store;

/// **Assumed:** how far back a callback without a known `uid` is matched
/// by its numbers to a call of the page.
const FALLBACK_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Takes the callbacks of one running page; see the module documentation.
pub struct PageSink<S: Store> {
    store: Arc<S>,
    state: Arc<Mutex<PageState>>,
    ack: Ack,
    retry: Option<Retry>,
    /// A page takes acknowledgements; a broadcast only records dispositions.
    acks: bool,
}

/// Asks for a retry of call `idx`, which ended with `disposition`, when
/// `escalation.retry` says so: it belongs to the round going, its person
/// has retries left in that round, and none is waiting already.
pub(crate) fn schedule_retry(
    state: &mut PageState,
    idx: usize,
    disposition: &str,
    playbook: &Playbook,
) {
    if let Some(retry) = playbook.escalation.as_ref().and_then(|e| e.retry.as_ref()) {
        schedule(state, idx, disposition, retry);
    }
}

/// [`schedule_retry`] with the retry settings at hand.
fn schedule(state: &mut PageState, idx: usize, disposition: &str, retry: &Retry) {
    let Some(call) = state.calls.get(idx) else {
        return;
    };
    let current = state.current.as_ref();
    if current != Some(&call.slot) || !retry.on.iter().any(|d| d.matches(disposition)) {
        return;
    }
    let made = state
        .calls
        .iter()
        .filter(|c| c.recipient == call.recipient && c.slot == call.slot)
        .map(|c| c.retry)
        .max()
        .unwrap_or(0);
    let waiting = state.retries_due.iter().any(|(i, _)| {
        state
            .calls
            .get(*i)
            .is_some_and(|c| c.recipient == call.recipient && c.slot == call.slot)
    });
    if made < retry.max && !waiting {
        let at = tokio::time::Instant::now() + retry.after;
        state.retries_due.push((idx, at));
        // A waiting ladder sleeps until its next deadline: this is a new one.
        state.wake.notify_one();
    }
}

/// The call of a page a call callback is about, as [`PageSink::match_call`] found it.
#[derive(Clone, Debug)]
pub(crate) struct CallMatch {
    idx: usize,
    recipient: String,
    status: Status,
    known: bool,
    /// Found by the callback's `uid` (else by its numbers).
    pub by_uid: bool,
    /// When the request of the call found was answered.
    pub answered_at: Option<Timestamp>,
}

/// What one page makes of an inbound SMS (see [`PageSink::sms_verdict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SmsVerdict {
    /// Sent to another number than the page's caller id.
    NotForUs,
    /// From a number that is none of the page's people.
    Stranger,
    /// From one of its people, but no acknowledgement word.
    NotAck(String),
    /// An acknowledgement with another page's short code.
    OtherPage(String),
    /// A bare acknowledgement from someone the page has not called yet.
    NotCalled(String),
    /// An acknowledgement of this page by this person, with the text sent.
    Ack(String, String),
}

impl<S: Store> PageSink<S> {
    /// A sink recording into `store` and acting on the page `state` describes.
    pub(crate) fn new(
        store: Arc<S>,
        state: Arc<Mutex<PageState>>,
        playbook: &Playbook,
    ) -> PageSink<S> {
        PageSink {
            store,
            state,
            ack: playbook.ack.clone(),
            retry: playbook.escalation.as_ref().and_then(|e| e.retry.clone()),
            acks: playbook.escalation.is_some(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PageState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an acknowledgement of the page by `by`, then wakes its ladder.
    pub(crate) async fn record_ack(&self, by: String, via: AckVia, text: Option<String>) {
        let run_id = self.state().run_id.clone();
        let ack = AckRecord {
            by: by.clone(),
            via,
            at: Timestamp::now(),
            text,
        };
        match self.store.record_ack(&run_id, ack).await {
            Ok(AckResult::Recorded) => {
                tracing::info!(by = by.as_str(), via = via.as_str(), "acknowledged");
                // Recorded first, then the ladder is woken to act on it now.
                self.state().acked.cancel();
            }
            Ok(other) => tracing::info!("acknowledgement by {by} not recorded: {other:?}"),
            Err(e) => tracing::error!("{e}"),
        }
    }

    async fn call_event(&self, event: CallEvent) -> Result<(), SinkError> {
        match self.match_call(&event, Timestamp::now()) {
            Some(found) => self.apply_call(event, found).await.map(drop),
            None => {
                unmatched(&event);
                Ok(())
            }
        }
    }

    /// The call of this page `event` is about: by its `uid`, else
    /// (**assumed**) by the called number and the caller id, the most recent
    /// call of that pair with no disposition yet placed in the last 10 minutes.
    pub(crate) fn match_call(&self, event: &CallEvent, now: Timestamp) -> Option<CallMatch> {
        {
            let state = self.state();
            if !same_number(event.from.as_str(), &state.caller_id) {
                None
            } else {
                let by_uid = event.uid.as_deref().and_then(|uid| {
                    state
                        .calls
                        .iter()
                        .find(|c| c.call_id.as_deref() == Some(uid))
                });
                by_uid
                    .or_else(|| {
                        let to = event.to.as_deref()?;
                        state
                            .calls
                            .iter()
                            .filter(|c| c.disposition.is_none())
                            .filter(|c| matches!(c.status, Status::Placed | Status::Unknown))
                            .filter(|c| number_matches(to, &c.to))
                            .filter(|c| {
                                c.answered_at
                                    .is_some_and(|at| now.0 - at.0 <= FALLBACK_WINDOW)
                            })
                            .max_by_key(|c| c.answered_at)
                    })
                    .map(|c| CallMatch {
                        idx: c.idx,
                        recipient: c.recipient.clone(),
                        status: c.status,
                        known: c.disposition.is_some(),
                        by_uid: event.uid.is_some() && c.call_id == event.uid,
                        answered_at: c.answered_at,
                    })
            }
        }
    }

    /// Acts on call callback `event` for the call `found`; returns the
    /// disposition it recorded, if it recorded one (a duplicate records none).
    pub(crate) async fn apply_call(
        &self,
        event: CallEvent,
        found: CallMatch,
    ) -> Result<Option<String>, SinkError> {
        let now = Timestamp::now();
        let CallMatch {
            idx,
            recipient,
            status,
            known,
            ..
        } = found;
        let run_id = self.state().run_id.clone();
        if status == Status::Unknown {
            // Its request's answer was lost, but FoneStorm says it exists:
            // it was placed (and is never dialled again either way).
            let outcome = Outcome {
                status: Status::Placed,
                call_id: event.uid.clone(),
                attempts: 1,
                error: None,
            };
            self.store
                .finished(&run_id, idx, &outcome)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            let mut state = self.state();
            if let Some(c) = state.calls.get_mut(idx) {
                c.status = Status::Placed;
                c.call_id = c.call_id.clone().or(event.uid.clone());
            }
        }
        if event.status != EventStatus::End || known {
            return Ok(None);
        }
        let Some(disposition) = event.disposition.clone() else {
            return Ok(None);
        };
        let word = disposition.to_string();
        {
            let mut state = self.state();
            if let Some(c) = state.calls.get_mut(idx) {
                if c.disposition.is_some() {
                    return Ok(None);
                }
                c.disposition = Some(word.clone());
                c.billable_seconds = event.billable_seconds;
                c.ended_at = Some(now);
            }
            if let Some(retry) = &self.retry {
                schedule(&mut state, idx, &word, retry);
            }
        }
        self.store
            .set_disposition(&run_id, idx, &word, event.billable_seconds, now)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        tracing::info!(
            recipient = recipient.as_str(),
            disposition = word.as_str(),
            "call ended"
        );
        let long_enough = event
            .billable_seconds
            .is_some_and(|s| u64::from(s) >= self.ack.answered_min.as_secs());
        if self.acks && self.ack.answered && disposition == Disposition::Answered && long_enough {
            self.record_ack(recipient, AckVia::Answered, None).await;
        }
        Ok(Some(word))
    }

    /// The page's person whose number `from` is, if the page called them.
    fn called_person(&self, from: &str) -> Option<String> {
        let state = self.state();
        let (name, _) = state
            .people
            .iter()
            .find(|(_, dial)| number_matches(from, dial))?;
        state
            .calls
            .iter()
            .any(|c| &c.recipient == name && matches!(c.status, Status::Placed | Status::Unknown))
            .then(|| name.clone())
    }

    fn is_person(&self, from: &str) -> Option<String> {
        let state = self.state();
        state
            .people
            .iter()
            .find(|(_, dial)| number_matches(from, dial))
            .map(|(name, _)| name.clone())
    }

    fn for_us(&self, to: Option<&str>) -> bool {
        to.is_none_or(|to| same_number(to, &self.state().caller_id))
    }

    /// What this page makes of `sms`: an acknowledgement (with its short
    /// code, or bare from someone it called), or why not.
    pub(crate) fn sms_verdict(&self, sms: &InboundSms) -> SmsVerdict {
        if !self.for_us(sms.to.as_deref()) {
            return SmsVerdict::NotForUs;
        }
        let Some(person) = self.is_person(&sms.from) else {
            return SmsVerdict::Stranger;
        };
        let Some(text) = parse_ack_text(&sms.text, &self.ack.sms) else {
            return SmsVerdict::NotAck(person);
        };
        let code = self.state().code.clone();
        match text.code {
            Some(c) if !c.eq_ignore_ascii_case(&code) => SmsVerdict::OtherPage(person),
            Some(_) => SmsVerdict::Ack(person, sms.text.trim().to_string()),
            None if self.called_person(&sms.from).is_some() => {
                SmsVerdict::Ack(person, sms.text.trim().to_string())
            }
            None => SmsVerdict::NotCalled(person),
        }
    }

    async fn sms(&self, sms: InboundSms) {
        match self.sms_verdict(&sms) {
            SmsVerdict::NotForUs => tracing::debug!("an SMS to another number: ignored"),
            SmsVerdict::Stranger => tracing::warn!(
                from = escape_controls(&sms.from).as_ref(),
                "an SMS from a number that is not a recipient of this page: ignored"
            ),
            SmsVerdict::NotAck(person) => tracing::info!(
                from = person.as_str(),
                "an SMS that is not an acknowledgement: ignored"
            ),
            SmsVerdict::OtherPage(person) => tracing::info!(
                from = person.as_str(),
                "an acknowledgement of another page: ignored"
            ),
            SmsVerdict::NotCalled(person) => tracing::info!(
                from = person.as_str(),
                "a bare acknowledgement from someone this page has not called yet: ignored"
            ),
            SmsVerdict::Ack(person, text) => {
                self.record_ack(person, AckVia::Sms, Some(text)).await;
            }
        }
    }

    /// Who of this page's people calls back with `call`, when a call-back
    /// acknowledges it: `ack.call_back` is on, the call is to its caller id
    /// and the page has called them.
    pub(crate) fn call_back_person(&self, call: &InboundCall) -> Option<String> {
        if !self.acks || !self.ack.call_back || !self.for_us(call.to.as_deref()) {
            return None;
        }
        self.called_person(&call.from)
    }

    async fn inbound(&self, call: InboundCall) {
        if !self.ack.call_back || !self.for_us(call.to.as_deref()) {
            return;
        }
        // A call ringing and ending reports twice: the first counts, the
        // store keeps only the first ack as the one that wins anyway.
        match self.call_back_person(&call) {
            Some(person) => self.record_ack(person, AckVia::CallBack, None).await,
            None => tracing::warn!(
                from = escape_controls(&call.from).as_ref(),
                "a call back from a number this page has not called: ignored"
            ),
        }
    }
}

impl<S: Store> CallbackSink for PageSink<S> {
    async fn receive(&self, callback: Callback) -> Result<(), SinkError> {
        record(self.store.as_ref(), &callback).await?;
        match callback {
            Callback::Call(event) => self.call_event(event).await?,
            Callback::Inbound(call) if self.acks => self.inbound(call).await,
            Callback::Sms(sms) if self.acks => self.sms(sms).await,
            Callback::Inbound(_) | Callback::Sms(_) => {
                tracing::debug!("a broadcast takes no acknowledgement: recorded only");
            }
        }
        Ok(())
    }
}

/// Records `callback` as received (its raw fields, no secret), before anything acts on it.
pub(crate) async fn record<S: Store>(store: &S, callback: &Callback) -> Result<(), SinkError> {
    let fields = callback.raw().to_json().to_string();
    store
        .record_callback(callback.kind(), fields)
        .await
        .map_err(|e| SinkError(e.to_string()))
}

/// Logs a call callback that matches no call (at debug level: **assumed**
/// to be another user's call on the same FoneNumber).
pub(crate) fn unmatched(event: &CallEvent) {
    let uid = event.uid.as_deref().map(escape_controls);
    tracing::debug!(
        uid = uid.as_deref().unwrap_or(""),
        "a call callback matches no call going: ignored"
    );
}

/// Whether a number from a callback is our 10-digit caller id (sent with or
/// without the leading `1`, with any punctuation).
fn same_number(number: &str, caller_id: &str) -> bool {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let digits = if digits.len() == 11 {
        digits.strip_prefix('1').unwrap_or(&digits).to_string()
    } else {
        digits
    };
    digits == caller_id
}

#[cfg(test)]
mod tests {
    use super::same_number;

    #[test]
    fn the_caller_id_matches_with_or_without_its_country_code() {
        assert!(same_number("3215551111", "3215551111"));
        assert!(same_number("+1 (321) 555-1111", "3215551111"));
        assert!(same_number("13215551111", "3215551111"));
        assert!(!same_number("3215551112", "3215551111"));
        assert!(!same_number("", "3215551111"));
    }
}
