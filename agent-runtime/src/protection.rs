//! Task scale-in protection: while this task has a live call, ECS may not choose it
//! when the service scales in (or a deployment replaces tasks), so no call is cut by
//! scaling.
//!
//! The ECS container agent's endpoint (`PUT $ECS_AGENT_URI/task-protection/v1/state`,
//! `{"ProtectionEnabled": true, "ExpiresInMinutes": n}`) sets it for `n` minutes (1 to
//! 2,880); [`Protection`] asks for it when the first call is answered, with an expiry
//! longer than the agent's longest call, renews it while calls go on (at half its
//! expiry, or `TEMPOVOICE_PROTECTION_REFRESH_SECS`), and clears it when the last call
//! ends. Live calls are the open media streams plus the calls answered whose stream
//! has not started yet (a slot the webhook took). The call path never waits on it: it
//! only pokes a background task that counts them. A failed request is tried again (2 s, doubling to 30 s);
//! `tempovoice_task_protection_errors_total` counts failures and
//! `tempovoice_task_protected` shows the state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The longest protection ECS grants, in minutes.
pub const MAX_MINUTES: u32 = 2880;

#[derive(Default)]
pub struct ProtectionState {
    changed: Notify,
    pub protected: AtomicBool,
}

impl ProtectionState {
    /// The live calls may have changed (a call answered, a stream opened or closed).
    pub fn poke(&self) {
        self.changed.notify_one();
    }
}

/// Counts the task's live calls.
pub type LiveCalls = Arc<dyn Fn() -> usize + Send + Sync>;

pub struct Protection {
    http: reqwest::Client,
    url: String,
    /// Minutes each request protects the task for.
    minutes: u32,
    refresh: Duration,
    state: Arc<ProtectionState>,
    live: LiveCalls,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Protection {
    /// `agent_uri` is `$ECS_AGENT_URI`; `longest_call` the agent's
    /// `max_session_duration_secs`; `refresh` overrides half the expiry.
    pub fn new(
        http: reqwest::Client,
        agent_uri: &str,
        longest_call: Duration,
        refresh: Option<Duration>,
        state: Arc<ProtectionState>,
        live: LiveCalls,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        // Longer than the longest call, with ten minutes to spare.
        let minutes = (longest_call.as_secs().div_ceil(60) as u32 + 10).clamp(1, MAX_MINUTES);
        let refresh = refresh.unwrap_or(Duration::from_secs(u64::from(minutes) * 30));
        Self {
            http,
            url: format!("{}/task-protection/v1/state", agent_uri.trim_end_matches('/')),
            minutes,
            refresh,
            state,
            live,
            metrics,
        }
    }

    pub fn minutes(&self) -> u32 {
        self.minutes
    }

    /// Follows the live calls until `stop`; then clears the protection if it is set.
    pub async fn run(self, stop: CancellationToken) {
        let state = Arc::clone(&self.state);
        let mut renew_at: Option<Instant> = None;
        let mut backoff = Duration::from_secs(2);
        loop {
            let live = (self.live)() > 0;
            let protected = state.protected.load(Ordering::SeqCst);
            let due = match (live, protected) {
                (true, false) => true,
                (true, true) => renew_at.is_none_or(|at| Instant::now() >= at),
                (false, true) => true,
                (false, false) => false,
            };
            // Renewal when due; and a look every 5 s while protected, as an answered
            // call whose stream never came stops counting by itself.
            let mut wait = match (live, protected) {
                (true, true) => renew_at.map(|at| at.saturating_duration_since(Instant::now())),
                (false, true) => Some(Duration::from_secs(5)),
                _ => None,
            }
            .map(|w| w.min(Duration::from_secs(5)));
            if due {
                match self.put(live).await {
                    Ok(()) => {
                        state.protected.store(live, Ordering::SeqCst);
                        self.metrics.task_protected.store(i64::from(live), Ordering::Relaxed);
                        renew_at = live.then(|| Instant::now() + self.refresh);
                        backoff = Duration::from_secs(2);
                        tracing::info!(protected = live, minutes = self.minutes, "task scale-in protection set");
                        continue;
                    }
                    Err(e) => {
                        self.metrics.task_protection_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, protect = live, "task scale-in protection request failed; trying again");
                        wait = Some(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            let sleep = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600)));
            tokio::select! {
                () = sleep => {}
                () = state.changed.notified() => {}
                () = stop.cancelled() => break,
            }
        }
        if state.protected.load(Ordering::SeqCst) {
            match tokio::time::timeout(Duration::from_secs(5), self.put(false)).await {
                Ok(Ok(())) => {
                    state.protected.store(false, Ordering::SeqCst);
                    self.metrics.task_protected.store(0, Ordering::Relaxed);
                }
                _ => tracing::warn!("task scale-in protection not cleared at shutdown; it lapses by itself"),
            }
        }
    }

    async fn put(&self, protect: bool) -> Result<(), String> {
        let body = if protect {
            serde_json::json!({"ProtectionEnabled": true, "ExpiresInMinutes": self.minutes})
        } else {
            serde_json::json!({"ProtectionEnabled": false})
        };
        let response = self
            .http
            .put(&self.url)
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        // The agent answers `{"protection": …}`, or `{"failure": …}` / `{"error": …}`.
        if status.is_success() && answer.get("protection").is_some() {
            return Ok(());
        }
        let why = answer
            .get("error")
            .or_else(|| answer.get("failure"))
            .map(|e| {
                let code = e.get("Code").or_else(|| e.get("Reason")).and_then(|v| v.as_str()).unwrap_or("");
                let message = e.get("Message").or_else(|| e.get("Detail")).and_then(|v| v.as_str()).unwrap_or("");
                format!("{code} {message}").trim().to_owned()
            })
            .unwrap_or_default();
        Err(format!("the ECS agent answered {status} {why}").trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_outlasts_the_longest_call() {
        let state = Arc::new(ProtectionState::default());
        let live: LiveCalls = Arc::new(|| 0);
        let p = Protection::new(
            reqwest::Client::new(),
            "http://x/",
            Duration::from_secs(3600),
            None,
            state,
            live,
            Arc::default(),
        );
        assert_eq!((p.minutes(), p.refresh), (70, Duration::from_secs(2100)));
        assert_eq!(p.url, "http://x/task-protection/v1/state");
    }
}
