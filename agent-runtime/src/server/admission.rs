//! Call admission. A task takes at most `TEMPOVOICE_MAX_CALLS` calls, and a media
//! stream is accepted only for a call the voice webhook answered.
//!
//! - **Slots.** The voice webhook and the media stream of one call may reach
//!   different moments (and a caller may hang up between them), so the webhook's
//!   answer holds a slot for [`ANSWER_HOLDS_SLOT`] at most, until the stream starts
//!   and the slot becomes a live call. A stream whose call was answered by another
//!   task of the agent takes a slot of its own, or is refused when there is none.
//! - **Stream tokens.** The webhook's `<Stream>` carries a one-time token: an
//!   HMAC-SHA256 over the agent, the call sid and an expiry [`STREAM_TOKEN_TTL`]
//!   ahead, keyed by a key derived from the agent's Twilio auth token (so every task
//!   of the agent checks what any of them issued). The stream's `start` must present
//!   it for its own call sid, from the agent's own Twilio account, before it expires,
//!   and only once: a task remembers the calls it streamed until their tokens expire,
//!   and the call's `stream.json` claim in the bucket (written only if absent) stops
//!   a second stream that reaches another task.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::artifacts::WebhookDelivery;

/// How long a webhook's answer holds a call slot before its stream arrives.
pub const ANSWER_HOLDS_SLOT: Duration = Duration::from_secs(15);

/// How long a stream token is good for. Twilio opens the stream as soon as it has
/// the TwiML, well within this.
pub const STREAM_TOKEN_TTL: Duration = Duration::from_secs(30);

/// The `<Parameter>` that carries the stream token.
pub const STREAM_TOKEN_PARAMETER: &str = "streamToken";

/// Why a media stream was refused (the `reason` label of
/// `tempovoice_streams_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `start` carried no stream token.
    MissingToken,
    /// The token was not issued for this agent and call.
    BadToken,
    /// The token's time is over.
    Expired,
    /// `start.accountSid` is not the agent's Twilio account.
    ForeignAccount,
    /// The call already has (or had) a stream.
    Duplicate,
    /// No call slot is free.
    Full,
}

impl Refusal {
    pub const ALL: [Refusal; 6] =
        [Self::MissingToken, Self::BadToken, Self::Expired, Self::ForeignAccount, Self::Duplicate, Self::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::BadToken => "bad_token",
            Self::Expired => "expired_token",
            Self::ForeignAccount => "foreign_account",
            Self::Duplicate => "duplicate_stream",
            Self::Full => "no_free_slot",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).expect("every refusal is listed")
    }
}

/// Issues and checks stream tokens: `{expiry unix seconds}.{base64url HMAC}`.
pub struct StreamTokens {
    key: [u8; 32],
    agent_id: String,
}

impl StreamTokens {
    /// Tokens for `agent_id`, keyed by a key derived from the agent's Twilio auth
    /// token (never the auth token itself, which signs Twilio's requests).
    pub fn new(auth_token: &str, agent_id: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"tempovoice media-stream token v1");
        Self { key: mac.finalize().into_bytes().into(), agent_id: agent_id.to_owned() }
    }

    /// A token for `call_sid`, good for [`STREAM_TOKEN_TTL`].
    pub fn issue(&self, call_sid: &str) -> String {
        self.issue_expiring(call_sid, unix_now() + STREAM_TOKEN_TTL.as_secs())
    }

    /// A token for `call_sid` that expires at `expires` (unix seconds).
    pub fn issue_expiring(&self, call_sid: &str, expires: u64) -> String {
        format!("{expires}.{}", BASE64URL.encode(self.mac(call_sid, expires).finalize().into_bytes()))
    }

    fn mac(&self, call_sid: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("{}\n{call_sid}\n{expires}", self.agent_id).as_bytes());
        mac
    }

    /// The token's expiry (unix seconds) if it was issued for `call_sid` and is still
    /// good at `now`. The MAC is compared in constant time.
    pub fn check(&self, call_sid: &str, token: &str, now: u64) -> Result<u64, Refusal> {
        let (expires, tag) = token.split_once('.').ok_or(Refusal::BadToken)?;
        let expires: u64 = expires.parse().map_err(|_| Refusal::BadToken)?;
        let tag = BASE64URL.decode(tag).map_err(|_| Refusal::BadToken)?;
        self.mac(call_sid, expires).verify_slice(&tag).map_err(|_| Refusal::BadToken)?;
        if expires < now {
            return Err(Refusal::Expired);
        }
        Ok(expires)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// When the webhook answered a call, and its pickup webhook if one was fired.
type Answered = (Instant, Option<tokio::task::JoinHandle<WebhookDelivery>>);

#[derive(Default)]
struct Calls {
    /// Answered here, stream not started yet.
    answered: HashMap<String, Answered>,
    /// Streamed here, with the expiry of the token they presented: a second stream
    /// for one of these is refused; once the token has expired it is refused anyway.
    streamed: HashMap<String, u64>,
}

/// The calls of this task between the webhook's answer and the stream's start.
#[derive(Default)]
pub struct AnsweredCalls {
    calls: Mutex<Calls>,
}

impl AnsweredCalls {
    /// Holds a slot for `call_sid` unless `live` calls plus those answered reach `max`.
    pub fn reserve(&self, call_sid: &str, live: usize, max: usize) -> bool {
        let mut calls = self.calls.lock().expect("answered calls lock");
        calls.answered.retain(|_, (at, _)| at.elapsed() < ANSWER_HOLDS_SLOT);
        if live + calls.answered.len() >= max {
            return false;
        }
        calls.answered.insert(call_sid.to_owned(), (Instant::now(), None));
        true
    }

    /// Calls answered here whose stream has not started (and still hold a slot).
    pub fn pending(&self) -> usize {
        let mut calls = self.calls.lock().expect("answered calls lock");
        calls.answered.retain(|_, (at, _)| at.elapsed() < ANSWER_HOLDS_SLOT);
        calls.answered.len()
    }

    pub fn attach_pickup(&self, call_sid: &str, pickup: tokio::task::JoinHandle<WebhookDelivery>) {
        if let Some(entry) = self.calls.lock().expect("answered calls lock").answered.get_mut(call_sid) {
            entry.1 = Some(pickup);
        }
    }

    /// A stream with a good token (expiring at `expires`) started for `call_sid`:
    /// its answered slot becomes a live call, or, answered by another task, it takes
    /// a free slot (`live` counts the open streams, this one included). Returns the
    /// pickup webhook fired when the call was answered here.
    pub fn stream_started(
        &self,
        call_sid: &str,
        expires: u64,
        live: usize,
        max: usize,
    ) -> Result<Option<tokio::task::JoinHandle<WebhookDelivery>>, Refusal> {
        let mut calls = self.calls.lock().expect("answered calls lock");
        let now = unix_now();
        calls.streamed.retain(|_, until| *until >= now);
        calls.answered.retain(|_, (at, _)| at.elapsed() < ANSWER_HOLDS_SLOT);
        if calls.streamed.contains_key(call_sid) {
            return Err(Refusal::Duplicate);
        }
        let pickup = match calls.answered.remove(call_sid) {
            Some((_, pickup)) => pickup,
            None if live + calls.answered.len() > max => return Err(Refusal::Full),
            None => None,
        };
        calls.streamed.insert(call_sid.to_owned(), expires);
        Ok(pickup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_calls_hold_slots_until_their_stream_starts() {
        let a = AnsweredCalls::default();
        let later = unix_now() + 30;
        assert!(a.reserve("CA1", 0, 2));
        assert!(a.reserve("CA2", 0, 2));
        assert!(!a.reserve("CA3", 0, 2), "two answered calls fill two slots");
        assert!(a.stream_started("CA1", later, 1, 2).unwrap().is_none());
        assert!(!a.reserve("CA3", 1, 2), "the started call is live now");
        assert!(a.reserve("CA3", 0, 2));
    }

    #[test]
    fn a_call_streams_once_and_a_stream_answered_elsewhere_needs_a_free_slot() {
        let a = AnsweredCalls::default();
        let later = unix_now() + 30;
        assert!(a.reserve("CA1", 0, 2));
        assert!(a.stream_started("CA1", later, 1, 2).is_ok());
        assert_eq!(a.stream_started("CA1", later, 2, 2).unwrap_err(), Refusal::Duplicate);
        // Answered by another task: one slot is left for it.
        assert!(a.stream_started("CA2", later, 2, 2).is_ok());
        assert_eq!(a.stream_started("CA3", later, 3, 2).unwrap_err(), Refusal::Full);
        // A slot held for an answered call here is not given away.
        let b = AnsweredCalls::default();
        assert!(b.reserve("CA9", 0, 2));
        assert_eq!(b.stream_started("CA8", later, 2, 2).unwrap_err(), Refusal::Full);
        assert!(b.stream_started("CA8", later, 1, 2).is_ok());
    }

    #[test]
    fn stream_tokens_bind_the_agent_the_call_and_the_time() {
        let tokens = StreamTokens::new("auth-token", "agent-a");
        let now = unix_now();
        let token = tokens.issue("CA1");
        assert!(tokens.check("CA1", &token, now).unwrap() >= now + STREAM_TOKEN_TTL.as_secs());
        assert_eq!(tokens.check("CA2", &token, now), Err(Refusal::BadToken), "another call");
        let other_agent = StreamTokens::new("auth-token", "agent-b");
        assert_eq!(other_agent.check("CA1", &token, now), Err(Refusal::BadToken), "another agent");
        let other_key = StreamTokens::new("another-auth-token", "agent-a");
        assert_eq!(other_key.check("CA1", &token, now), Err(Refusal::BadToken), "another account's key");
        assert_eq!(
            tokens.check("CA1", &token, now + STREAM_TOKEN_TTL.as_secs() + 1),
            Err(Refusal::Expired),
            "too late"
        );
        // The expiry is covered by the MAC: moving it on breaks the token.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", now + 3600);
        assert_eq!(tokens.check("CA1", &forged, now), Err(Refusal::BadToken));
        for junk in ["", ".", "x.y", "123", "123.", "123.!!!", "99999999999999999999999.AAAA"] {
            assert_eq!(tokens.check("CA1", junk, now), Err(Refusal::BadToken), "{junk:?}");
        }
        let expired = tokens.issue_expiring("CA1", now - 1);
        assert_eq!(tokens.check("CA1", &expired, now), Err(Refusal::Expired));
    }
}
