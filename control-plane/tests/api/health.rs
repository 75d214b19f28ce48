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
