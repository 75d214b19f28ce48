//! Reporting the callbacks callers ask for to the control plane, which schedules
//! and places them (`POST {TEMPOVOICE_CONTROL_PLANE_URL}/v1/runtime/agents/{id}/callbacks`).
//!
//! The request is a form signed as Twilio signs its webhooks (HMAC-SHA1 over the URL
//! and the sorted form, in `X-TempoVoice-Signature`), keyed by the agent's Twilio auth
//! token: the secret the runtime and the control plane already share. `SentAt`
//! bounds a replay to 5 minutes, and a replay only reschedules the same call's
//! callback. A report the control plane could not take (unreachable, 5xx) is tried
//! three times within about 5 s; the caller is told the outcome either way.

use std::time::Duration;

/// The most of what the caller said that a callback carries (as the control plane keeps it).
pub const CONTEXT_MAX_CHARS: usize = 600;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A callback the caller asked for.
#[derive(Debug, Clone)]
pub struct CallbackRequest {
    pub call_sid: String,
    /// The number to call back.
    pub to: String,
    /// When, in the caller's words.
    pub requested_time: String,
    /// When, as an RFC 3339 timestamp, if the speech model gave one.
    pub at: Option<String>,
    /// What the caller said, for the callback to carry.
    pub context: String,
}

/// The control plane scheduled the callback.
#[derive(Debug, Clone, Deserialize)]
pub struct Scheduled {
    pub id: String,
    #[serde(with = "agent_spec::api::timestamp")]
    pub due_at: time::OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The control plane refused the request; the reason is for the caller to hear.
    #[error("{0}")]
    Refused(String),
    #[error("the control plane could not be reached: {0}")]
    Unreachable(String),
}

pub struct ControlPlane {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl ControlPlane {
    /// `base` is the control plane's public URL (no trailing slash).
    pub fn new(http: reqwest::Client, base: &str, agent_id: &str, token: SecretString) -> Self {
        Self { http, url: format!("{base}/v1/runtime/agents/{agent_id}/callbacks"), token }
    }

    pub async fn schedule(&self, request: &CallbackRequest) -> Result<Scheduled, CallbackError> {
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
            }
            match self.send(request).await {
                Ok(scheduled) => return Ok(scheduled),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Again(e)) => {
                    tracing::warn!(attempt, error = %e, "reporting a callback failed");
                    last = e;
                }
            }
        }
        Err(CallbackError::Unreachable(last))
    }

    async fn send(&self, request: &CallbackRequest) -> Result<Scheduled, Attempt> {
        let mut form = vec![
            ("CallSid".to_owned(), request.call_sid.clone()),
            ("To".to_owned(), request.to.clone()),
            ("RequestedTime".to_owned(), request.requested_time.clone()),
            ("Context".to_owned(), request.context.clone()),
            ("SentAt".to_owned(), time::OffsetDateTime::now_utc().unix_timestamp().to_string()),
        ];
        if let Some(at) = &request.at {
            form.push(("At".to_owned(), at.clone()));
        }
        let signature = agent_spec::twilio::signature(self.token.expose_secret(), &self.url, &form);
        let response = self
            .http
            .post(&self.url)
            .header("X-TempoVoice-Signature", signature)
            .form(&form)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| Attempt::Again(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Attempt::Again(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| Attempt::Final(CallbackError::Refused(format!("the control plane's answer: {e}"))));
        }
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let reason = error["error"]["fields"]
            .as_array()
            .and_then(|f| f.first())
            .and_then(|f| f["reason"].as_str())
            .or_else(|| error["error"]["message"].as_str())
            .map_or_else(|| format!("the control plane answered {status}"), str::to_owned);
        if status.is_server_error() && status.as_u16() != 503 {
            Err(Attempt::Again(reason))
        } else {
            Err(Attempt::Final(CallbackError::Refused(reason)))
        }
    }
}

enum Attempt {
    Again(String),
    Final(CallbackError),
}
