use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_of};

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    for key in [None, Some("wrong-token-wrong-token-wrong-token-00"), Some(tenant.key.as_str())] {
        let res = app.request(Method::POST, "/v1/admin/tenants", key).json(&json!({"name": "x"})).send().await.unwrap();
        let (status, code, ..) = error_of(res).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{key:?}");
    }
}

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let app = TestApp::spawn_with(|vars| {
        vars.remove("TEMPOVOICE_ADMIN_TOKEN");
    })
    .await;
    let res = app
        .request(Method::POST, "/v1/admin/tenants", Some("anything"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let (status, code, ..) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "admin_disabled"));
}

#[tokio::test]
async fn tenants_and_keys_lifecycle() {
    let app = TestApp::spawn().await;
    let (status, _, fields, _) =
        error_of(app.admin(Method::POST, "/v1/admin/tenants", Some(json!({"name": " "}))).await).await;
    assert_eq!((status, fields), (422, vec!["name".to_owned()]));
    let (status, _, fields, _) =
        error_of(app.admin(Method::POST, "/v1/admin/tenants", Some(json!({"name": "x", "plan": "gold"}))).await).await;
    assert_eq!((status, fields), (422, vec!["plan".to_owned()]));

    let tenant = app.new_tenant("Rosa's Bakery").await;
    let second = app.issue_key(&tenant.id).await;
    assert_ne!(second["api_key"], tenant.key.as_str());

    let res = app.admin(Method::GET, &format!("/v1/admin/tenants/{}/api-keys", tenant.id), None).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&tenant.key), "listing shows a key");
    let keys: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["revoked_at"].is_null()));

    let revoke = format!("/v1/admin/tenants/{}/api-keys/{}", tenant.id, tenant.key_id);
    assert_eq!(app.admin(Method::DELETE, &revoke, None).await.status(), 204);
    assert_eq!(app.admin(Method::DELETE, &revoke, None).await.status(), 204, "revoking twice is fine");
    let keys: Vec<Value> =
        app.admin(Method::GET, &format!("/v1/admin/tenants/{}/api-keys", tenant.id), None).await.json().await.unwrap();
    assert_eq!(keys.iter().filter(|k| !k["revoked_at"].is_null()).count(), 1);

    // The other key still works; unknown tenants and keys are 404.
    let res = app.request(Method::GET, "/v1/agents", Some(second["api_key"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let unknown = "aaaaaaaaaaaaaaaa";
    for (method, path) in [
        (Method::POST, format!("/v1/admin/tenants/{unknown}/api-keys")),
        (Method::GET, format!("/v1/admin/tenants/{unknown}/api-keys")),
        (Method::DELETE, format!("/v1/admin/tenants/{}/api-keys/nosuchkey", tenant.id)),
        (Method::GET, "/v1/admin/tenants/not-an-id/api-keys".to_owned()),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let (status, code, ..) = error_of(app.admin(method.clone(), &path, body).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{method} {path}");
    }
    // A key of one tenant cannot be revoked through another tenant's path.
    let other = app.new_tenant("other").await;
    let res = app
        .admin(
            Method::DELETE,
            &format!("/v1/admin/tenants/{}/api-keys/{}", other.id, second["key_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_admin_api_can_have_an_address_of_its_own() {
    let app = TestApp::spawn_with(|vars| {
        vars.insert("TEMPOVOICE_ADMIN_LISTEN".into(), "127.0.0.1:0".into());
    })
    .await;
    let admin = app.admin_addr.expect("the admin API's own address");
    let on = |addr: std::net::SocketAddr, method: Method, path: &str, token: &str| {
        app.client.request(method, format!("http://{addr}{path}")).bearer_auth(token.to_owned())
    };
    // There: tenants are created; the tenant API is not served.
    let res = on(admin, Method::POST, "/v1/admin/tenants", &app.admin_token).json(&json!({"name": "t"})).send().await;
    let created: Value = res.unwrap().json().await.unwrap();
    let tenant = created["id"].as_str().unwrap();
    let res = on(admin, Method::POST, &format!("/v1/admin/tenants/{tenant}/api-keys"), &app.admin_token)
        .json(&json!({"label": "k"}))
        .send()
        .await
        .unwrap();
    let key: Value = res.json().await.unwrap();
    let key = key["api_key"].as_str().unwrap();
    let (status, code, ..) = error_of(on(admin, Method::GET, "/v1/agents", key).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "route_not_found"));
    assert_eq!(on(admin, Method::GET, "/health", "").send().await.unwrap().status(), 200);
    // The main address: the tenant API, and no admin routes, even with the admin token.
    assert_eq!(on(app.addr, Method::GET, "/v1/agents", key).send().await.unwrap().status(), 200);
    let res = on(app.addr, Method::POST, "/v1/admin/tenants", &app.admin_token).json(&json!({"name": "x"})).send();
    let (status, code, ..) = error_of(res.await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "route_not_found"));
}

#[tokio::test]
async fn the_control_planes_metrics_are_for_the_admin_token_and_count_what_happened() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    app.new_agent(&tenant, "A").await;
    let missing = app.request(Method::GET, "/v1/agents/aaaaaaaaaaaaaaaa", Some(&tenant.key)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let (status, code, ..) =
        error_of(app.request(Method::GET, "/v1/admin/metrics", Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));

    let res = app.admin(Method::GET, "/v1/admin/metrics", None).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let value = |sample: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(sample)).unwrap_or_else(|| panic!("{sample}: {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("tempovoice_cp_http_responses_total{class=\"4xx\"}") >= 2, "the 404 and the 401: {text}");
    assert!(value("tempovoice_cp_http_responses_total{class=\"2xx\"}") >= 3, "{text}");
    assert_eq!(value("tempovoice_cp_agents "), 1);
    assert_eq!(value("tempovoice_cp_tenants "), 1);
    assert_eq!(value("tempovoice_cp_outbound_calls_live "), 0);
    // Every family is typed and described, as Prometheus's text format has it.
    for name in ["tempovoice_cp_deployments", "tempovoice_cp_callbacks", "tempovoice_cp_uptime_seconds"] {
        assert!(text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")), "{text}");
    }
}
