//! The callback worker: places each scheduled callback when it is due, as an
//! outbound call from the agent's number that carries what the caller said on the
//! earlier call (`metadata.callback`), within the same limits as the API's calls.
//!
//! Exactly once, across replicas: a worker takes a due callback with a lease, in
//! one conditional `UPDATE` that only one replica wins ([`Store::claim_callback`]).
//! A worker that dies while placing leaves a lease that runs out; the replica that
//! takes the callback over first asks Twilio for calls to the same number made
//! since the dead attempt began, and records that call instead of placing another.
//! An attempt that fails is retried with backoff when it may succeed later (Twilio
//! unreachable, the agent's call limit reached), and fails for good otherwise.
//!
//! [`Store::claim_callback`]: crate::store::Store::claim_callback

use std::sync::Arc;
use std::time::Duration;

use agent_spec::api::Callback;
use agent_spec::values::E164;
use base64::Engine;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::db::now_ms;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::StoreError;
use crate::store::callbacks::{CallbackOutcome, StoredCallback};

/// How often an idle worker looks for due callbacks.
const POLL: Duration = Duration::from_secs(1);
/// How long a worker holds a callback it is placing.
const LEASE: Duration = Duration::from_secs(60);
/// Attempts before a callback that keeps failing is given up.
const MAX_ATTEMPTS: i64 = 5;
/// Attempts while the agent or tenant is at its limit of live calls.
const MAX_BUSY_ATTEMPTS: i64 = 20;

pub struct CallbackWorker {
    state: AppState,
    owner: Arc<str>,
}

impl CallbackWorker {
    pub fn new(state: AppState) -> Self {
        let owner = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        Self { state, owner: owner.into() }
    }

    /// Runs until `stop` is cancelled (an attempt under way is finished first).
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!("callback worker starting");
        while !stop.is_cancelled() {
            let lease_until = now_ms() + LEASE.as_millis() as i64;
            let wait = match self.state.store.claim_callback(&self.owner, lease_until).await {
                Ok(Some(callback)) => {
                    self.place(callback).await;
                    continue;
                }
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for due callbacks; trying again shortly");
                    POLL * 5
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
        }
    }

    async fn place(&self, stored: StoredCallback) {
        let callback = &stored.callback;
        let attempt = self.attempt(&stored).await;
        let metrics = &self.state.metrics;
        // The outcome, how the log says it, and the counter it feeds once recorded.
        let (outcome, what, counter) = match &attempt {
            Ok(sid) => (CallbackOutcome::Placed(sid), "placed", Some(&metrics.callbacks_placed)),
            Err(Attempt::Retry { after, error }) => {
                (CallbackOutcome::Retry { at: now_ms() + after.as_millis() as i64, error }, "to be retried", None)
            }
            Err(Attempt::Failed(error)) => (CallbackOutcome::Failed(error), "failed", Some(&metrics.callbacks_failed)),
        };
        let error = match &attempt {
            Err(Attempt::Retry { error, .. } | Attempt::Failed(error)) => error.as_str(),
            Ok(_) => "",
        };
        match self.state.store.finish_callback_attempt(&callback.id, &self.owner, outcome).await {
            Ok(true) => {
                if let Some(counter) = counter {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::info!(
                    agent_id = %callback.agent_id, callback_id = %callback.id, attempt = callback.attempts, error,
                    "callback {what}"
                );
            }
            Ok(false) => tracing::warn!(
                callback_id = %callback.id,
                "the callback's lease ran out while placing it; the worker that took it over records it"
            ),
            Err(e) => tracing::warn!(
                callback_id = %callback.id, error = %e,
                "could not record the callback's attempt; it is taken over when its lease runs out"
            ),
        }
    }

    async fn attempt(&self, stored: &StoredCallback) -> Result<agent_spec::CallSid, Attempt> {
        let callback = &stored.callback;
        let state = &self.state;
        let (agent, secrets) = match state.store.get_agent_with_secrets(&stored.tenant_id, &callback.agent_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Err(Attempt::Failed("the agent was deleted".into())),
            Err(e) => return Err(self.retry_or_fail(callback, format!("the database failed: {e}"))),
        };
        let twilio = state.twilio().map_err(|e| Attempt::Failed(e.to_string()))?;
        let from = agent.config.telephony.call_phone_number.as_str();

        // Taken over from a worker that died midway: did its call go out?
        let updated_ms = (callback.updated_at.unix_timestamp_nanos() / 1_000_000) as i64;
        if let Some(started) = stored.attempt_started_at.filter(|s| *s < updated_ms) {
            let since = crate::db::from_ms(started);
            let account = agent.config.telephony.twilio_account_sid.as_str();
            match twilio.calls_since(account, &secrets.twilio_auth_token, &callback.to, from, since).await {
                Ok(calls) => {
                    if let Some(made) = calls.into_iter().find_map(|c| agent_spec::CallSid::parse(&c.sid).ok()) {
                        tracing::info!(callback_id = %callback.id, call_sid = %made, "the callback was placed by an attempt that did not finish");
                        return Ok(made);
                    }
                }
                Err(e) => {
                    return Err(self.retry_or_fail(
                        callback,
                        format!("could not ask Twilio whether an interrupted attempt placed the call: {e}"),
                    ));
                }
            }
        }

        let to = E164::parse(&callback.to).map_err(|e| Attempt::Failed(format!("the number to call: {e}")))?;
        let metadata = metadata(callback, &stored.context);
        match crate::http::outbound::dial(
            state,
            &stored.tenant_id,
            &callback.agent_id,
            &agent.config,
            &secrets,
            &to,
            Some(&metadata),
        )
        .await
        {
            Ok(placed) => Ok(placed.call_sid),
            Err(ApiError::TooManyCalls(message)) if callback.attempts < MAX_BUSY_ATTEMPTS => {
                Err(Attempt::Retry { after: Duration::from_secs(30), error: message })
            }
            Err(e @ (ApiError::Dependency { .. } | ApiError::Unavailable(_) | ApiError::Internal(_))) => {
                Err(self.retry_or_fail(callback, describe(&e)))
            }
            Err(e) => Err(Attempt::Failed(describe(&e))),
        }
    }

    fn retry_or_fail(&self, callback: &Callback, error: String) -> Attempt {
        if callback.attempts >= MAX_ATTEMPTS {
            return Attempt::Failed(format!("{error} (gave up after {} attempts)", callback.attempts));
        }
        // 30 s, 1 min, 2 min, 4 min.
        let after = Duration::from_secs(30 << (callback.attempts - 1).clamp(0, 4));
        Attempt::Retry { after, error }
    }
}

enum Attempt {
    Retry { after: Duration, error: String },
    Failed(String),
}

/// The API error as one line for the callback's `error`.
fn describe(e: &ApiError) -> String {
    match e {
        ApiError::Invalid(fields) => {
            fields.iter().map(|f| format!("{} {}", f.field, f.reason)).collect::<Vec<_>>().join("; ")
        }
        ApiError::Unavailable(source) | ApiError::Internal(source) | ApiError::Upstream(source) => {
            format!("{e}: {source:#}")
        }
        e => e.to_string(),
    }
}

/// The base64url JSON the callback call carries: `{"callback": {…}}`, within the
/// 1 KiB a call's metadata may hold (the context is shortened to fit).
fn metadata(callback: &Callback, context: &str) -> String {
    let mut context: String = context.to_owned();
    loop {
        let json = json!({"callback": {
            "id": callback.id,
            "call_sid": callback.call_sid,
            "requested_time": callback.requested_time,
            "context": context,
        }});
        let bytes = serde_json::to_vec(&json).expect("JSON values serialize");
        if bytes.len() <= crate::http::outbound::METADATA_MAX_BYTES || context.is_empty() {
            return base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        }
        let keep = context.chars().count().saturating_sub(40);
        context = context.chars().take(keep).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_fits_a_call() {
        let callback = Callback {
            id: "cb0123456789abcdef".into(),
            agent_id: agent_spec::AgentId::parse("abcdefgh234567ab").unwrap(),
            status: agent_spec::api::CallbackStatus::Placing,
            to: "+15550002222".into(),
            due_at: time::OffsetDateTime::UNIX_EPOCH,
            requested_time: "x".repeat(200),
            call_sid: agent_spec::CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap(),
            placed_call_sid: None,
            attempts: 1,
            error: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let raw = metadata(&callback, &"\"quoted\" ".repeat(60));
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).unwrap();
        assert!(json.len() <= crate::http::outbound::METADATA_MAX_BYTES, "{}", json.len());
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(value["callback"]["context"].as_str().unwrap().starts_with("\"quoted\""));
    }
}
