//! Outgoing webhooks: pickup (call answered), transcript (call ended), and callback
//! requests (Make.com). JSON bodies, signed with HMAC-SHA256 over
//! `{timestamp}.{body}` in `X-TempoVoice-Signature: t={timestamp},v1={hex}`, retried
//! with back-off. They run beside the call, so a slow or dead endpoint never holds
//! the call up; the outcome is recorded in the call's metadata.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::artifacts::WebhookDelivery;

pub const SIGNATURE_HEADER: &str = "X-TempoVoice-Signature";

#[derive(Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    secret: Option<SecretString>,
    pub attempts: u32,
    pub first_backoff: Duration,
    pub timeout: Duration,
}

/// `t={timestamp},v1={hex hmac}` for `body` sent at `timestamp` (Unix seconds).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

impl WebhookSender {
    pub fn new(http: reqwest::Client, secret: Option<SecretString>) -> Self {
        Self { http, secret, attempts: 4, first_backoff: Duration::from_millis(500), timeout: Duration::from_secs(5) }
    }

    /// Delivers in the background, as a task of `tasks` (so shutdown waits for it);
    /// a delivery that fails in the end is counted in `metrics`.
    pub fn spawn(
        &self,
        tasks: &tokio_util::task::TaskTracker,
        metrics: &std::sync::Arc<crate::metrics::Metrics>,
        kind: &'static str,
        url: String,
        body: serde_json::Value,
    ) -> tokio::task::JoinHandle<WebhookDelivery> {
        let sender = self.clone();
        let metrics = std::sync::Arc::clone(metrics);
        tasks.spawn(async move {
            let result = sender.deliver(kind, &url, &body).await;
            if !result.delivered {
                metrics.webhook_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            result
        })
    }

    /// Delivers `body` to `url`, retrying server errors and network failures.
    pub async fn deliver(&self, kind: &str, url: &str, body: &serde_json::Value) -> WebhookDelivery {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        let mut backoff = self.first_backoff;
        let mut last_error = None;
        for attempt in 1..=self.attempts {
            let mut request = self
                .http
                .post(url)
                .timeout(self.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-TempoVoice-Event", kind);
            if let Some(secret) = &self.secret {
                let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                request = request.header(SIGNATURE_HEADER, signature_header(secret.expose_secret(), ts, &bytes));
            }
            match request.body(bytes.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    return WebhookDelivery {
                        kind: kind.to_owned(),
                        url: url.to_owned(),
                        delivered: true,
                        attempts: attempt,
                        error: None,
                    };
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    last_error = Some(format!("HTTP {}", r.status()));
                    return WebhookDelivery {
                        kind: kind.to_owned(),
                        url: url.to_owned(),
                        delivered: false,
                        attempts: attempt,
                        error: last_error,
                    };
                }
                Ok(r) => last_error = Some(format!("HTTP {}", r.status())),
                Err(e) => last_error = Some(e.to_string()),
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(kind, url, error = ?last_error, "webhook not delivered");
        WebhookDelivery {
            kind: kind.to_owned(),
            url: url.to_owned(),
            delivered: false,
            attempts: self.attempts,
            error: last_error,
        }
    }
}
