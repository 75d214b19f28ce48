//! Answering machine detection of outbound calls.
//!
//! The control plane places an outbound call with Twilio's asynchronous AMD
//! (`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`): the call connects at once,
//! and Twilio reports who answered later, to `/agent/{id}/amd-status`. Until then the
//! call *screens*: it records, but neither greets nor lets the speech session hear
//! (a machine's greeting is not the caller's first turn). Then:
//! - `human`, `unknown`, or no answer within [`WAIT`]: the greeting, and the
//!   conversation;
//! - `machine_end_beep`, `machine_end_silence`, `machine_end_other` (the greeting
//!   has ended): the agent's voicemail message in the runtime's own voice, then a
//!   hang-up (`answering_machine`);
//! - `fax`: a hang-up.
//!
//! The callback reaches whichever of the agent's tasks the load balancer picks, not
//! always the one holding the call: each waiting call also asks Twilio for the
//! call's `answered_by` every [`POLL_EVERY`], so the result arrives either way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::telephony::TelephonyControl;

/// How long a call screens before it goes on as if a person answered. Twilio's AMD
/// gives up after `MachineDetectionTimeout` (the control plane sets 30 s), and a
/// machine's result comes only once its greeting has ended.
pub const WAIT: Duration = Duration::from_secs(35);
/// How often a screening call asks Twilio for the result itself.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How long a result nobody waited for is kept (it may arrive before the stream).
const KEEP: Duration = Duration::from_secs(120);

/// Who answered, as Twilio's `AnsweredBy` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    Human,
    Machine,
    Fax,
    Unknown,
}

impl AnsweredBy {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "human" => Self::Human,
            "machine_end_beep" | "machine_end_silence" | "machine_end_other" => Self::Machine,
            "fax" => Self::Fax,
            _ => Self::Unknown,
        }
    }
}

enum Slot {
    Waiting(oneshot::Sender<String>),
    Arrived(String, Instant),
}

/// Results by call sid, between the callback and the call that waits for it.
#[derive(Default)]
pub struct AmdResults {
    slots: Mutex<HashMap<String, Slot>>,
}

impl AmdResults {
    /// Hands `answered_by` to the call waiting for it, or keeps it for the call
    /// that will. Returns whether a call of this task was waiting.
    pub fn deliver(&self, call_sid: &str, answered_by: &str) -> bool {
        let mut slots = self.slots.lock().expect("amd lock");
        slots.retain(|_, slot| !matches!(slot, Slot::Arrived(_, at) if at.elapsed() > KEEP));
        match slots.remove(call_sid) {
            Some(Slot::Waiting(tx)) => tx.send(answered_by.to_owned()).is_ok(),
            Some(arrived @ Slot::Arrived(..)) => {
                // The first result stands.
                slots.insert(call_sid.to_owned(), arrived);
                false
            }
            None => {
                slots.insert(call_sid.to_owned(), Slot::Arrived(answered_by.to_owned(), Instant::now()));
                false
            }
        }
    }

    /// The result for `call_sid`: at once if it already arrived.
    pub fn wait(&self, call_sid: &str) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        let mut slots = self.slots.lock().expect("amd lock");
        match slots.remove(call_sid) {
            Some(Slot::Arrived(answered_by, _)) => {
                let _ = tx.send(answered_by);
            }
            _ => {
                slots.insert(call_sid.to_owned(), Slot::Waiting(tx));
            }
        }
        rx
    }

    /// The call no longer waits.
    pub fn forget(&self, call_sid: &str) {
        self.slots.lock().expect("amd lock").remove(call_sid);
    }
}

/// A screening call's wait: the result, the deadline, and the task that asks
/// Twilio meanwhile (stopped when the wait is dropped).
pub struct Screening {
    pub result: oneshot::Receiver<String>,
    pub until: Instant,
    poller: tokio::task::JoinHandle<()>,
    results: Arc<AmdResults>,
    call_sid: String,
}

impl Screening {
    pub fn start(results: &Arc<AmdResults>, telephony: &Arc<dyn TelephonyControl>, call_sid: &str) -> Self {
        let result = results.wait(call_sid);
        let poller = {
            let (results, telephony, call_sid) = (Arc::clone(results), Arc::clone(telephony), call_sid.to_owned());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(POLL_EVERY).await;
                    match tokio::time::timeout(POLL_EVERY, telephony.answered_by(&call_sid)).await {
                        Ok(Ok(Some(answered_by))) => {
                            results.deliver(&call_sid, &answered_by);
                            return;
                        }
                        Ok(Ok(None)) => {}
                        Ok(Err(e)) => tracing::debug!(error = %e, "could not ask Twilio who answered"),
                        Err(_) => tracing::debug!("Twilio did not say who answered in time"),
                    }
                }
            })
        };
        Self {
            result,
            until: Instant::now() + WAIT,
            poller,
            results: Arc::clone(results),
            call_sid: call_sid.to_owned(),
        }
    }
}

impl Drop for Screening {
    fn drop(&mut self) {
        self.poller.abort();
        self.results.forget(&self.call_sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_result_reaches_its_call_whether_it_comes_before_or_after_the_wait() {
        let results = AmdResults::default();
        let early = "CA0000000000000000000000000000000a";
        assert!(!results.deliver(early, "human"));
        assert_eq!(results.wait(early).await.unwrap(), "human");

        let late = "CA0000000000000000000000000000000b";
        let rx = results.wait(late);
        assert!(results.deliver(late, "machine_end_beep"));
        assert_eq!(rx.await.unwrap(), "machine_end_beep");
        assert_eq!(AnsweredBy::parse("machine_end_beep"), AnsweredBy::Machine);
        assert_eq!(AnsweredBy::parse("machine_start"), AnsweredBy::Unknown);
    }
}
