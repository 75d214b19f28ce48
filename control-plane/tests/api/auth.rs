//! Every tenant-scoped route: another tenant's agent is 404; a missing, malformed,
//! unknown or revoked key is 401.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, TestTenant, agent_body, error_of};

/// Every tenant-scoped operation, aimed at `agent_id`.
fn tenant_routes(agent_id: &str) -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/v1/agents/{agent_id}");
    vec![
        (Method::GET, "/v1/agents".into(), None),
        (Method::POST, "/v1/agents".into(), Some(agent_body("x"))),
        (Method::GET, one.clone(), None),
        (Method::PUT, one.clone(), Some(agent_body("x"))),
        (Method::DELETE, one, None),
    ]
}

async fn send(app: &TestApp, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut req = app.request(method, path, key).header("If-Match", "\"1\"");
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn another_tenants_agent_is_not_found_on_every_route() {
    let app = TestApp::spawn().await;
    let owner = app.new_tenant("owner").await;
    let other = app.new_tenant("other").await;
    let agent = app.new_agent(&owner, "Owner's agent").await;
    let id = agent["id"].as_str().unwrap();
    let path = format!("/v1/agents/{id}");

    for (method, p) in [(Method::GET, &path), (Method::PUT, &path), (Method::DELETE, &path)] {
        let res = send(&app, method.clone(), p, Some(&other.key), Some(agent_body("hijack"))).await;
        let (status, code, ..) = error_of(res).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{method} {p}");
    }
    // Even a malformed body does not reveal that the agent exists.
    let res = app
        .request(Method::PUT, &path, Some(&other.key))
        .header("If-Match", "\"1\"")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let listed: Value =
        app.request(Method::GET, "/v1/agents", Some(&other.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 0);

    // The owner's agent is untouched.
    let now: Value = app.request(Method::GET, &path, Some(&owner.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(now, agent);
}

#[tokio::test]
async fn missing_bad_and_revoked_keys_are_unauthorized_on_every_route() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let id = agent["id"].as_str().unwrap();

    let unknown_key = format!("tvk_{}_{}", "a".repeat(12), "b".repeat(32));
    for (method, path, body) in tenant_routes(id) {
        for key in [None, Some("not-a-key"), Some(unknown_key.as_str()), Some(app.admin_token.as_str())] {
            let res = send(&app, method.clone(), &path, key, body.clone()).await;
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let (status, code, ..) = error_of(res).await;
            assert_eq!((status, code.as_str()), (401, "unauthorized"), "{method} {path} with {key:?}");
        }
        // Another scheme is refused the same way.
        let res = app
            .request(method.clone(), &path, None)
            .header("Authorization", format!("Basic {}", tenant.key))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }

    // Revoke the key: every route refuses it from the next request on.
    let res =
        app.admin(Method::DELETE, &format!("/v1/admin/tenants/{}/api-keys/{}", tenant.id, tenant.key_id), None).await;
    assert_eq!(res.status(), 204);
    for (method, path, body) in tenant_routes(id) {
        let (status, ..) = error_of(send(&app, method.clone(), &path, Some(&tenant.key), body).await).await;
        assert_eq!(status, 401, "{method} {path} with a revoked key");
    }
}

#[tokio::test]
async fn a_second_key_of_the_same_tenant_sees_the_same_agents() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let second = app.issue_key(&tenant.id).await;
    let second = TestTenant { key: second["api_key"].as_str().unwrap().into(), ..tenant.clone() };
    let res = app
        .request(Method::GET, &format!("/v1/agents/{}", agent["id"].as_str().unwrap()), Some(&second.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Scheme names are case-insensitive.
    let res = app
        .request(Method::GET, "/v1/agents", None)
        .header("Authorization", format!("bearer {}", tenant.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
