//! Outgoing webhooks: pickup (call answered), transcript (call ended), and callback
//! requests (Make.com). JSON bodies, signed with HMAC-SHA256 over
//! `{timestamp}.{body}` in `X-TempoVoice-Signature: t={timestamp},v1={hex}`, retried
//! with back-off. They run beside the call, so a slow or dead endpoint never holds
//! the call up; the outcome is recorded in the call's metadata: delivered or not, the
//! attempts, and the runtime's own reason when it refused to send (never what the
//! receiver answered; that is logged). A response's body is never read. The client must come
//! from [`crate::outbound::client`]: webhook URLs are the tenant's, and may not reach
//! inward (no private addresses, no redirects).

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
    /// Literal private addresses are allowed (the client's resolver checks names).
    allow_private: bool,
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
        Self {
            http,
            secret,
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }

    /// Lets webhooks go to literal private addresses too (the client must allow them
    /// as well: see [`crate::outbound::client`]).
    pub fn allowing_private_addresses(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
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
        // A webhook URL's path and query can be its credential (Make.com's are): logs
        // and metadata show only its scheme and host.
        let shown = agent_spec::net::redact_url(url);
        let outcome = |delivered: bool, attempts: u32, refused: Option<String>| WebhookDelivery {
            kind: kind.to_owned(),
            url: shown.clone(),
            delivered,
            attempts,
            error: refused,
        };
        if let Err(refused) = crate::outbound::check_url(url, self.allow_private) {
            tracing::warn!(kind, url = %shown, %refused, "webhook refused");
            return outcome(false, 0, Some(format!("refused: {refused}")));
        }
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
                Ok(r) if r.status().is_success() => return outcome(true, attempt, None),
                Ok(r) if r.status().is_redirection() => {
                    // Redirects are not followed: they could point inward.
                    tracing::warn!(kind, url = %shown, status = %r.status(), "webhook answered with a redirect; not followed");
                    return outcome(false, attempt, Some("refused: a redirect is not followed".into()));
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    tracing::warn!(kind, url = %shown, status = %r.status(), "webhook refused by its receiver; not retried");
                    return outcome(false, attempt, None);
                }
                Ok(r) => last_error = Some(format!("HTTP {}", r.status())),
                Err(e) => last_error = Some(e.without_url().to_string()),
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        // What the far side answered stays in the logs: in the tenant's metadata it
        // would tell a status code or a connection error of any address it names.
        tracing::warn!(kind, url = %shown, error = ?last_error, "webhook not delivered");
        outcome(false, self.attempts, None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A receiver on 127.0.0.1 that counts what reaches it; `redirect_to` makes it
    /// answer 302 there instead of 200.
    async fn receiver(redirect_to: Option<String>) -> (String, Arc<AtomicU32>) {
        let hits = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new().fallback(move || {
            let (counted, redirect_to) = (Arc::clone(&counted), redirect_to.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                match redirect_to {
                    Some(to) => (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response(),
                    None => axum::http::StatusCode::OK.into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("127.0.0.1:{port}"), hits)
    }

    fn sender(allow_private: bool) -> WebhookSender {
        let http = crate::outbound::client(reqwest::Client::builder(), allow_private).unwrap();
        let mut sender = WebhookSender::new(http, None).allowing_private_addresses(allow_private);
        sender.attempts = 2;
        sender.first_backoff = Duration::from_millis(10);
        sender
    }

    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_redirect_inward_is_not_followed() {
        let (inside, inside_hits) = receiver(None).await;
        let (outside, outside_hits) = receiver(Some(format!("http://{inside}/v2/credentials"))).await;
        // Private addresses allowed, so the first receiver is reachable at all.
        let result =
            sender(true).deliver("transcript", &format!("http://{outside}/hook"), &serde_json::json!({})).await;
        assert!(!result.delivered);
        assert_eq!(result.attempts, 1, "a redirect is final, not retried");
        assert_eq!(outside_hits.load(Ordering::SeqCst), 1);
        assert_eq!(inside_hits.load(Ordering::SeqCst), 0, "the redirect's target was never requested");
        let direct = sender(true).deliver("transcript", &format!("http://{inside}/hook"), &serde_json::json!({})).await;
        assert!(direct.delivered, "the target itself answers");
    }

    #[tokio::test]
    async fn a_name_resolving_inward_or_a_mapped_loopback_address_is_refused() {
        let (inside, hits) = receiver(None).await;
        let port = inside.rsplit_once(':').unwrap().1;
        for url in [format!("http://localhost:{port}/hook"), format!("http://[::ffff:127.0.0.1]:{port}/hook")] {
            let result = sender(false).deliver("pickup", &url, &serde_json::json!({})).await;
            assert!(!result.delivered, "{url}");
        }
        let literal = sender(false)
            .deliver("pickup", &format!("http://[::ffff:127.0.0.1]:{port}/h"), &serde_json::json!({}))
            .await;
        assert_eq!(literal.attempts, 0, "a literal inward address is refused before any request");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the receiver on 127.0.0.1");
        let allowed =
            sender(true).deliver("pickup", &format!("http://localhost:{port}/hook"), &serde_json::json!({})).await;
        assert!(allowed.delivered, "the same receiver is reachable where private addresses are allowed");
    }
}
