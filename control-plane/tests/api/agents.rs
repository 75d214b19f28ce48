use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, agent_body, error_of};

#[tokio::test]
async fn create_get_update_delete() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("Rosa's Bakery").await;

    let res = app.create_agent(&tenant, &agent_body("Front desk")).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert_eq!(created["tenant_id"], tenant.id.as_str());
    assert_eq!(created["version"], 1);
    assert_eq!(created["name"], "Front desk");
    assert_eq!(created["voice"]["provider"], "nova-sonic");
    assert_eq!(created["voice"]["voice_id"], "tiffany", "provider default voice filled in");
    assert_eq!(created["telephony"]["transfer_phone_number"], "+14155550199");
    assert_eq!(
        created["secrets"],
        json!({"twilio_auth_token": "set", "openai_api_key": "not_set", "webhook_signing_secret": "set"})
    );

    // Location points at the agent, and GET returns what create returned.
    let res = app.request(Method::GET, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let fetched: Value = res.json().await.unwrap();
    assert_eq!(fetched, created);

    // Update: change fields, keep secrets (omitted), remove the signing secret (null).
    let mut body = agent_body("Front desk (evenings)");
    body["secrets"] = json!({ "webhook_signing_secret": null });
    body["voice"] = json!({ "provider": "local" });
    body["sizing"] = json!({ "cpu": 512, "memory_mib": 2048, "desired_count": 2 });
    let res = app
        .request(Method::PUT, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "Front desk (evenings)");
    assert_eq!(updated["voice"]["voice_id"], "en-us");
    assert_eq!(updated["sizing"]["memory_mib"], 2048);
    // `desired_count`, from before scaling, is a fixed size: minimum and maximum both.
    assert_eq!(
        updated["sizing"],
        json!({ "cpu": 512, "memory_mib": 2048, "min_tasks": 2, "max_tasks": 2, "calls_per_task": 50,
                "target_calls_per_task": 35, "cpu_architecture": "x86_64" })
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_eq!(updated["secrets"]["twilio_auth_token"], "set", "omitted secret kept");
    assert_eq!(updated["secrets"]["webhook_signing_secret"], "not_set", "null removed it");

    let listed: Value =
        app.request(Method::GET, "/v1/agents", Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 1);
    assert_eq!(listed["agents"][0], updated);
    assert!(listed["next_cursor"].is_null());

    let res = app
        .request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .header("If-Match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, code, ..) =
        error_of(app.request(Method::GET, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let res = app.request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn stale_update_is_a_conflict_and_nothing_is_lost() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());

    let put = |name: &str, if_match: Option<&str>| {
        let mut req = app.request(Method::PUT, &path, Some(&tenant.key)).json(&agent_body(name));
        if let Some(v) = if_match {
            req = req.header("If-Match", v);
        }
        req.send()
    };

    // Without If-Match: 428, and the agent is unchanged.
    let (status, code, ..) = error_of(put("no precondition", None).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (428, "precondition_required"));

    assert_eq!(put("first", Some("\"1\"")).await.unwrap().status(), 200);
    // A second writer that also read version 1 is refused and told the current version.
    let (status, code, _, body) = error_of(put("second", Some("\"1\"")).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (409, "version_conflict"));
    assert!(body["error"]["message"].as_str().unwrap().contains("current version is 2"));
    let now: Value = app.request(Method::GET, &path, Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["name"], "first");

    // Weak and bare forms of the ETag are accepted; a garbage one is a named 422.
    assert_eq!(put("third", Some("W/\"2\"")).await.unwrap().status(), 200);
    assert_eq!(put("fourth", Some("3")).await.unwrap().status(), 200);
    let (status, _, fields, _) = error_of(put("x", Some("\"abc\"")).await.unwrap()).await;
    assert_eq!((status, fields), (422, vec!["If-Match".to_owned()]));

    // A stale delete is refused too.
    let res = app.request(Method::DELETE, &path, Some(&tenant.key)).header("If-Match", "\"1\"").send().await.unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn concurrent_updates_of_one_version_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());

    let attempts = (0..8).map(|i| {
        app.request(Method::PUT, &path, Some(&tenant.key))
            .header("If-Match", "\"1\"")
            .json(&agent_body(&format!("writer {i}")))
            .send()
    });
    let results = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = results.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    let now: Value = app.request(Method::GET, &path, Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["version"], 2);
}

#[tokio::test]
async fn update_with_invalid_fields_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    let mut body = agent_body("B");
    body["telephony"]["call_phone_number"] = json!("555-0100");
    body["sizing"] = json!({ "cpu": 256, "memory_mib": 4096 });
    let res = app
        .request(Method::PUT, &path, Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, _, fields, _) = error_of(res).await;
    assert_eq!(status, 422);
    assert_eq!(fields, ["telephony.call_phone_number", "sizing.memory_mib"]);
    let now: Value = app.request(Method::GET, &path, Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(now, agent);
}
