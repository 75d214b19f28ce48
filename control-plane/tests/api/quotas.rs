//! Per-tenant quotas: a tenant over each one is refused with 422 `quota_exceeded`
//! naming the quota and the current use; the operator's defaults come from
//! settings and the admin API overrides them per tenant; other tenants are not
//! touched; concurrent requests cannot together go over.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, agent_body, error_of};

async fn quotas(app: &TestApp, tenant: &str) -> Value {
    let res = app.admin(Method::GET, &format!("/v1/admin/tenants/{tenant}/quotas"), None).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_tenant_over_its_agent_quota_is_refused_until_the_operator_raises_it() {
    let app = TestApp::spawn_with(|v| {
        v.insert("TEMPOVOICE_TENANT_MAX_AGENTS".into(), "2".into());
    })
    .await;
    let tenant = app.new_tenant("t").await;
    let other = app.new_tenant("u").await;
    app.new_agent(&tenant, "One").await;
    app.new_agent(&tenant, "Two").await;
    let (status, code, fields, body) = error_of(app.create_agent(&tenant, &agent_body("Three")).await).await;
    assert_eq!((status, code.as_str()), (422, "quota_exceeded"), "{body}");
    assert_eq!(fields, ["name"]);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("agents quota") && message.contains("2 of 2 agents in use"), "{message}");
    // Another tenant has quotas of its own.
    app.new_agent(&other, "Elsewhere").await;

    let shown = quotas(&app, &tenant.id).await;
    assert_eq!(shown["limits"]["agents"], 2);
    assert_eq!(shown["overrides"]["agents"], Value::Null);
    assert_eq!(shown["use"]["agents"], 2);
    assert_eq!(shown["use"]["cpu_units"], 1024, "two agents of 256 CPU units × up to 2 tasks (the default maximum)");

    let path = format!("/v1/admin/tenants/{}/quotas", tenant.id);
    let res = app.admin(Method::PUT, &path, Some(json!({"agents": 3}))).await;
    assert_eq!(res.status(), 200);
    let set: Value = res.json().await.unwrap();
    assert_eq!((set["limits"]["agents"].clone(), set["overrides"]["agents"].clone()), (json!(3), json!(3)));
    app.new_agent(&tenant, "Three").await;
    // Bad overrides are named; an unknown tenant is 404; a tenant's key is not the admin's.
    let (status, _, fields, _) = error_of(app.admin(Method::PUT, &path, Some(json!({"agents": -1}))).await).await;
    assert_eq!((status, fields), (422, vec!["agents".to_owned()]));
    let res = app.admin(Method::PUT, "/v1/admin/tenants/aaaaaaaaaaaaaaaa/quotas", Some(json!({}))).await;
    assert_eq!(res.status(), 404);
    let res = app.request(Method::GET, &path, Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn cpu_and_knowledge_quotas_count_every_agent_of_the_tenant_but_the_one_changed() {
    let app = TestApp::spawn_with(|v| {
        v.insert("TEMPOVOICE_TENANT_MAX_CPU_UNITS".into(), "2048".into());
        v.insert("TEMPOVOICE_TENANT_MAX_KNOWLEDGE_BYTES".into(), "200".into());
    })
    .await;
    let tenant = app.new_tenant("t").await;
    let mut big = agent_body("Big");
    big["sizing"] = json!({"cpu": 512, "memory_mib": 1024, "min_tasks": 3, "max_tasks": 3});
    let created: Value = app.create_agent(&tenant, &big).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    // 1536 of 2048 used: another 1024 × 1 does not fit.
    let mut more = agent_body("More");
    // What a client written before scaling sends: `desired_count` is the minimum.
    more["sizing"] = json!({"cpu": 1024, "memory_mib": 2048, "desired_count": 1, "max_tasks": 1});
    let (status, code, fields, body) = error_of(app.create_agent(&tenant, &more).await).await;
    assert_eq!((status, code.as_str(), fields), (422, "quota_exceeded", vec!["sizing".to_owned()]), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("use 1536 of 2048"), "{body}");

    // The agent itself may grow up to the quota, not past it.
    let put = |body: Value, version: &'static str| {
        app.request(Method::PUT, &format!("/v1/agents/{id}"), Some(&tenant.key))
            .header("If-Match", version)
            .json(&body)
            .send()
    };
    big["sizing"]["max_tasks"] = json!(4);
    assert_eq!(put(big.clone(), "\"1\"").await.unwrap().status(), 200);
    big["sizing"]["max_tasks"] = json!(5);
    let (status, code, ..) = error_of(put(big.clone(), "\"2\"").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (422, "quota_exceeded"));

    // Knowledge-base bytes: the agent body carries 44; 200 in all.
    let mut long = agent_body("Long");
    long["sizing"] = json!({"cpu": 256, "memory_mib": 512, "min_tasks": 0});
    long["knowledge_base"] = json!([{ "title": "Menu", "text": "x".repeat(200) }]);
    let (status, code, fields, body) = error_of(app.create_agent(&tenant, &long).await).await;
    assert_eq!((status, code.as_str(), fields), (422, "quota_exceeded", vec!["knowledge_base".to_owned()]), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("knowledge_bytes quota"), "{body}");
    let listed: Value =
        app.request(Method::GET, "/v1/agents", Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 1, "nothing refused was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_cannot_together_go_over_the_quota() {
    let app = TestApp::spawn_with(|v| {
        v.insert("TEMPOVOICE_TENANT_MAX_AGENTS".into(), "3".into());
    })
    .await;
    let tenant = app.new_tenant("t").await;
    let answers = futures::future::join_all((0..12).map(|i| {
        let (app, tenant) = (&app, &tenant);
        async move { app.create_agent(tenant, &agent_body(&format!("A{i}"))).await.status().as_u16() }
    }))
    .await;
    assert_eq!(answers.iter().filter(|s| **s == 201).count(), 3, "{answers:?}");
    assert!(answers.iter().all(|s| matches!(s, 201 | 422)), "{answers:?}");
    assert_eq!(quotas(&app, &tenant.id).await["use"]["agents"], 3);
}
