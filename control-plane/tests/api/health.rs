use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use control_plane::http::{AppState, service};
use control_plane::settings::Settings;
use tower::ServiceExt;

use crate::helpers::TestApp;

#[tokio::test]
async fn liveness_and_readiness() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/v1/health"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    }
    // A request id sent by the caller is kept.
    let res = app.client.get(app.url("/health")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone_and_liveness_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let settings = Settings::from_lookup(|k| match k {
        "TEMPOVOICE_DATA_DIR" => Some(data.clone()),
        "TEMPOVOICE_DEPLOYER" => Some("off".into()),
        _ => None,
    })
    .unwrap();
    let store = control_plane::open_store(&settings).await.unwrap();
    let router = service(AppState::new(store.clone(), Arc::new(settings), None), None);
    store.db.pool.close().await;

    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let ready = router.clone().oneshot(get("/v1/health")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let live = router.oneshot(get("/health")).await.unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_cleanly() {
    let mut app = TestApp::spawn().await;
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    app.shutdown.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), &mut app.server)
        .await
        .expect("the server stops within the grace period")
        .expect("the server task does not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(reqwest::Client::new().get(app.url("/health")).send().await.is_err(), "still accepting");
}

/// Both addresses are served through `serving::serve`: a client that has not sent a
/// request's headers within `TEMPOVOICE_HEADER_TIMEOUT_SECS` is disconnected, and
/// cannot hold the connection.
#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected_on_both_addresses() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|vars| {
        vars.insert("TEMPOVOICE_HEADER_TIMEOUT_SECS".into(), "1".into());
        vars.insert("TEMPOVOICE_ADMIN_LISTEN".into(), "127.0.0.1:0".into());
    })
    .await;
    for addr in [app.addr, app.admin_addr.expect("the admin API's own address")] {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        // Closed by the server (perhaps after a 408), well within this test's bound.
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read_to_end(&mut answer))
            .await
            .expect("the slow client is disconnected");
        let answer = String::from_utf8_lossy(&answer);
        assert!(read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{addr}: {answer}");
        // A prompt client is served.
        let res = app.client.get(format!("http://{addr}/health")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{addr}");
    }
}
