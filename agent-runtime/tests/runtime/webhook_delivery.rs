//! Outgoing webhooks against a local HTTP endpoint: signature, retries with back-off,
//! and the outcome recorded rather than raised.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agent_runtime::webhooks::{SIGNATURE_HEADER, WebhookSender, signature_header};
use axum::http::{HeaderMap, StatusCode};
use secrecy::SecretString;

const SECRET: &str = "a-webhook-signing-secret-of-32-chars!";

async fn endpoint(
    fail_first: u32,
    status: StatusCode,
) -> (String, Arc<AtomicU32>, Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>) {
    let hits = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, s) = (Arc::clone(&hits), Arc::clone(&seen));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (h, s) = (Arc::clone(&h), Arc::clone(&s));
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push((headers, body));
                if n < fail_first { status } else { StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), hits, seen)
}

fn sender() -> WebhookSender {
    // The receivers listen on 127.0.0.1.
    let http = agent_runtime::outbound::client(reqwest::Client::builder(), true).unwrap();
    let mut s = WebhookSender::new(http, Some(SecretString::from(SECRET))).allowing_private_addresses(true);
    s.first_backoff = Duration::from_millis(20);
    s.timeout = Duration::from_millis(500);
    s
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_and_every_attempt_is_signed() {
    let (url, hits, seen) = endpoint(2, StatusCode::SERVICE_UNAVAILABLE).await;
    let body = serde_json::json!({"event": "call_ended", "call_sid": "CA1"});
    let result = sender().deliver("transcript", &url, &body).await;
    assert!(result.delivered);
    assert_eq!(result.attempts, 3);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    for (headers, received) in seen.lock().unwrap().iter() {
        assert_eq!(serde_json::from_str::<serde_json::Value>(received).unwrap(), body);
        let header = headers[SIGNATURE_HEADER].to_str().unwrap();
        let ts: i64 = header.strip_prefix("t=").unwrap().split(',').next().unwrap().parse().unwrap();
        assert!((time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 60);
        assert_eq!(header, signature_header(SECRET, ts, received.as_bytes()), "the receiver can verify it");
        assert_eq!(headers["x-tempovoice-event"], "transcript");
    }
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_a_dead_endpoint_is_recorded() {
    let (url, hits, _) = endpoint(10, StatusCode::BAD_REQUEST).await;
    let result = sender().deliver("pickup", &url, &serde_json::json!({})).await;
    assert!(!result.delivered);
    assert_eq!((result.attempts, hits.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(result.error, None, "the receiver's answer is not recorded");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let result = sender().deliver("pickup", &format!("http://{closed}/hook"), &serde_json::json!({})).await;
    assert!(!result.delivered);
    assert_eq!(result.attempts, 4);
    assert_eq!(result.error, None, "nor is a connection error");
}
