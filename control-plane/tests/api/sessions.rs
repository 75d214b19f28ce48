//! Sessions: an API key exchanged for a session token that authenticates like the
//! key until it is ended, expires, or its key is revoked.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_of, test_store};

async fn open_session(app: &TestApp, credential: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/sessions", Some(credential)).json(&body).send().await.unwrap()
}

async fn new_session(app: &TestApp, key: &str) -> String {
    let res = open_session(app, key, json!({})).await;
    assert_eq!(res.status(), 201, "open a session");
    let body: Value = res.json().await.unwrap();
    body["session_token"].as_str().unwrap().to_owned()
}

async fn status(app: &TestApp, method: Method, path: &str, credential: &str) -> u16 {
    app.request(method, path, Some(credential)).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_session_token_works_like_its_key_until_it_is_ended() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let other = app.new_tenant("other").await;
    let agent = app.new_agent(&tenant, "A").await;
    let others_agent = app.new_agent(&other, "B").await;

    let res = open_session(&app, &tenant.key, json!({ "expires_in_secs": 3600 })).await;
    assert_eq!(res.status(), 201);
    let opened: Value = res.json().await.unwrap();
    let token = opened["session_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tvs_"), "{token}");
    assert_eq!(opened["key_id"], tenant.key_id.as_str());
    assert_eq!(opened["tenant_id"], tenant.id.as_str());
    let expires = time::OffsetDateTime::parse(
        opened["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::minutes(59) && lifetime <= time::Duration::hours(1), "{lifetime}");

    // The tenant's agents, and only the tenant's.
    let list: Value = app.request(Method::GET, "/v1/agents", Some(&token)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["agents"][0]["id"], agent["id"]);
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
    let others = format!("/v1/agents/{}", others_agent["id"].as_str().unwrap());
    assert_eq!(status(&app, Method::GET, &others, &token).await, 404);

    // A session does not open another, and an API key is not a session to end.
    let (code, ..) = error_of(open_session(&app, &token, json!({})).await).await;
    assert_eq!(code, 403);
    let (code, ..) =
        error_of(app.request(Method::DELETE, "/v1/sessions/current", Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!(code, 403);

    // Ended: the token authenticates nothing from now on; the key still works.
    assert_eq!(status(&app, Method::DELETE, "/v1/sessions/current", &token).await, 204);
    let res = app.request(Method::GET, "/v1/agents", Some(&token)).send().await.unwrap();
    let (code, kind, ..) = error_of(res).await;
    assert_eq!((code, kind.as_str()), (401, "unauthorized"), "a replayed token after sign-out");
    assert_eq!(status(&app, Method::DELETE, "/v1/sessions/current", &token).await, 401);
    assert_eq!(status(&app, Method::GET, "/v1/agents", &tenant.key).await, 200);
}

#[tokio::test]
async fn revoking_the_api_key_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let second = app.issue_key(&tenant.id).await;
    let second_key = second["api_key"].as_str().unwrap();
    let a = new_session(&app, &tenant.key).await;
    let b = new_session(&app, &tenant.key).await;
    let of_second = new_session(&app, second_key).await;

    let res =
        app.admin(Method::DELETE, &format!("/v1/admin/tenants/{}/api-keys/{}", tenant.id, tenant.key_id), None).await;
    assert_eq!(res.status(), 204);
    for token in [&a, &b] {
        assert_eq!(status(&app, Method::GET, "/v1/agents", token).await, 401, "a session of the revoked key");
    }
    assert_eq!(status(&app, Method::GET, "/v1/agents", &of_second).await, 200, "another key's session stands");
    // The revoked key cannot open a new one.
    assert_eq!(open_session(&app, &tenant.key, json!({})).await.status(), 401);
}

#[tokio::test]
async fn a_session_request_names_what_is_wrong() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    for (body, field) in [
        (json!({ "expires_in_secs": 10 }), "expires_in_secs"),
        (json!({ "expires_in_secs": 31 * 24 * 3600 }), "expires_in_secs"),
        (json!({ "expires_in_secs": "long" }), "expires_in_secs"),
        (json!({ "lifetime": 60 }), "lifetime"),
    ] {
        let (code, kind, fields, _) = error_of(open_session(&app, &tenant.key, body.clone()).await).await;
        assert_eq!((code, kind.as_str()), (422, "invalid_request"), "{body}");
        assert!(fields.iter().any(|f| f.contains(field)), "{body}: {fields:?}");
    }
    let (code, ..) =
        error_of(open_session(&app, "tvk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", json!({})).await).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn an_expired_session_is_refused_and_only_its_hash_is_stored() {
    let (store, tenant, _dir) = test_store().await;
    let key = store.issue_api_key(&tenant, "k").await.unwrap();
    let opened = store.open_session(&tenant, &key.key_id, time::Duration::minutes(5)).await.unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&opened.token).to_owned();
    let now = control_plane::db::now_ms();
    let credential = store.authenticate_at(&token, now).await.unwrap().expect("live");
    assert_eq!(credential.tenant, tenant);
    assert_eq!(credential.key_id, key.key_id);
    assert_eq!(credential.session_id.as_deref(), Some(opened.session_id.as_str()));
    assert!(store.authenticate_at(&token, now + 5 * 60 * 1000 + 1).await.unwrap().is_none(), "expired");

    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT token_hash FROM sessions").fetch_all(&store.db.pool).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, control_plane::store::api_keys::hash_key(&token), "the SHA-256, not the token");

    // Ending is scoped to the tenant: another tenant cannot end it.
    let stranger = store.create_tenant("s").await.unwrap().id;
    assert!(store.revoke_session(&stranger, &opened.session_id).await.is_err());
    assert!(store.authenticate(&token).await.unwrap().is_some());
    store.revoke_session(&tenant, &opened.session_id).await.unwrap();
    assert!(store.authenticate(&token).await.unwrap().is_none());
}
