//! Call-slot admission: a task takes at most `TEMPOVOICE_MAX_CALLS` calls. The voice
//! webhook and the media stream of one call may reach different moments (and a caller
//! may hang up between them), so the webhook's answer holds a slot for
//! [`ANSWER_HOLDS_SLOT`] at most, until the stream starts and the slot becomes a
//! live call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::artifacts::WebhookDelivery;

/// How long a webhook's answer holds a call slot before its stream arrives.
pub const ANSWER_HOLDS_SLOT: Duration = Duration::from_secs(15);

/// When the webhook answered a call, and its pickup webhook if one was fired.
type Answered = (Instant, Option<tokio::task::JoinHandle<WebhookDelivery>>);

/// Calls the voice webhook answered whose stream has not started yet.
#[derive(Default)]
pub struct AnsweredCalls {
    calls: Mutex<HashMap<String, Answered>>,
}

impl AnsweredCalls {
    /// Holds a slot for `call_sid` unless `live` calls plus those answered reach `max`.
    pub fn reserve(&self, call_sid: &str, live: usize, max: usize) -> bool {
        let mut calls = self.calls.lock().expect("answered calls lock");
        calls.retain(|_, (at, _)| at.elapsed() < ANSWER_HOLDS_SLOT);
        if live + calls.len() >= max {
            return false;
        }
        calls.insert(call_sid.to_owned(), (Instant::now(), None));
        true
    }

    pub fn attach_pickup(&self, call_sid: &str, pickup: tokio::task::JoinHandle<WebhookDelivery>) {
        if let Some(entry) = self.calls.lock().expect("answered calls lock").get_mut(call_sid) {
            entry.1 = Some(pickup);
        }
    }

    /// The stream started: the slot is now a live call; returns the pickup webhook.
    pub fn stream_started(&self, call_sid: &str) -> Option<tokio::task::JoinHandle<WebhookDelivery>> {
        self.calls.lock().expect("answered calls lock").remove(call_sid).and_then(|(_, pickup)| pickup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_calls_hold_slots_until_their_stream_starts() {
        let a = AnsweredCalls::default();
        assert!(a.reserve("CA1", 0, 2));
        assert!(a.reserve("CA2", 0, 2));
        assert!(!a.reserve("CA3", 0, 2), "two answered calls fill two slots");
        assert!(a.stream_started("CA1").is_none());
        assert!(!a.reserve("CA3", 1, 2), "the started call is live now");
        assert!(a.reserve("CA3", 0, 2));
    }
}
