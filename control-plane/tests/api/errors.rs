//! Bad input: always a JSON error body naming the problem, never axum's plain text.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, agent_body, error_of};

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_are_named() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let post_raw = |body: &'static str| {
        app.request(Method::POST, "/v1/agents", Some(&tenant.key))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, code, fields, body) = error_of(post_raw("{\"name\": ").await.unwrap()).await;
    assert_eq!((status, code.as_str(), fields), (422, "invalid_request", vec!["body".to_owned()]));
    assert!(body["error"]["fields"][0]["reason"].as_str().unwrap().contains("not valid JSON"));

    let (status, _, fields, _) = error_of(post_raw("[1, 2]").await.unwrap()).await;
    assert_eq!((status, fields), (422, vec!["body".to_owned()]));

    let (status, _, fields, body) =
        error_of(post_raw(r#"{"guardrails": {"max_conversation_turns": "fifty"}}"#).await.unwrap()).await;
    assert_eq!((status, fields), (422, vec!["guardrails.max_conversation_turns".to_owned()]));
    assert!(body["error"]["fields"][0]["reason"].as_str().unwrap().contains("expected u32"), "{body}");

    let (status, _, fields, body) =
        error_of(post_raw(r#"{"telephony": {"phone": "+14155550100"}}"#).await.unwrap()).await;
    assert_eq!(status, 422);
    assert_eq!(fields, ["telephony.phone"]);
    assert!(body["error"]["fields"][0]["reason"].as_str().unwrap().contains("unknown field `phone`"));

    let (status, _, fields, _) = error_of(post_raw(r#"{"voice": {"provider": "siri"}}"#).await.unwrap()).await;
    assert_eq!((status, fields), (422, vec!["voice.provider".to_owned()]));

    let (status, _, fields, _) = error_of(post_raw(r#"{"name": "a"} {"name": "b"}"#).await.unwrap()).await;
    assert_eq!((status, fields), (422, vec!["body".to_owned()]));
}

#[tokio::test]
async fn validation_reports_every_field_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let mut body = agent_body("");
    body["telephony"]["call_phone_number"] = json!("4155550100");
    body["telephony"]["twilio_account_sid"] = json!("AC123");
    body["integrations"]["webhook_endpoint"] = json!("http://hooks.example.com");
    body["knowledge_base"] = json!([{ "title": "", "text": "x" }]);
    body["sizing"] = json!({ "cpu": 100 });
    let (status, code, fields, body) = error_of(app.create_agent(&tenant, &body).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_request"));
    assert_eq!(
        fields,
        [
            "name",
            "knowledge_base[0].title",
            "telephony.call_phone_number",
            "telephony.twilio_account_sid",
            "integrations.webhook_endpoint",
            "sizing.cpu"
        ]
    );
    assert_eq!(body["error"]["message"], "6 fields are invalid");
    // Nothing was stored.
    let listed: serde_json::Value =
        app.request(Method::GET, "/v1/agents", Some(&tenant.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn wrong_media_type_huge_bodies_and_unknown_routes_get_json_errors() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;

    let res = app
        .request(Method::POST, "/v1/agents", Some(&tenant.key))
        .body("name=x")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    let (status, code, ..) = error_of(res).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
    let res = app.request(Method::POST, "/v1/agents", Some(&tenant.key)).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 415, "no content type");

    let mut big = agent_body("big");
    big["system_prompt"] = json!("x".repeat(300 * 1024));
    let (status, code, ..) = error_of(app.create_agent(&tenant, &big).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));

    let (status, code, ..) = error_of(app.request(Method::GET, "/v1/nope", None).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "route_not_found"));
    let (status, code, ..) =
        error_of(app.request(Method::PATCH, "/v1/agents", Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));

    // An id that cannot exist is simply not found.
    let (status, code, ..) =
        error_of(app.request(Method::GET, "/v1/agents/..%2F..%2Fetc", Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

#[tokio::test]
async fn a_knowledge_base_too_large_to_deploy_is_refused_by_name() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let mut body = agent_body("kb");
    body["knowledge_base"] = json!([
        { "title": "Menu", "text": "Croissant, pain au chocolat. ".repeat(700) },
        { "title": "FAQ", "text": "We bake daily. ".repeat(1000) }
    ]);
    let (status, _, fields, body) = error_of(app.create_agent(&tenant, &body).await).await;
    assert_eq!((status, fields), (422, vec!["knowledge_base".to_owned()]));
    assert!(body["error"]["message"].as_str().unwrap().contains("too large to deploy"));
}

#[tokio::test]
async fn webhook_urls_naming_inward_hosts_are_refused_when_an_agent_is_saved() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let fields = [
        ("webhook_endpoint", "https://169.254.170.2/v2/credentials"),
        ("transcript_webhook_url", "https://[::ffff:127.0.0.1]:8443/hook"),
        ("pickup_webhook_url", "https://10.0.0.5/hook"),
        ("make_endpoint", "https://localhost/hook"),
    ];
    let mut body = agent_body("Front desk");
    for (field, url) in fields {
        body["integrations"][field] = json!(url);
    }
    let (status, code, named, error) = error_of(app.create_agent(&tenant, &body).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_request"), "{error}");
    assert_eq!(named, fields.map(|(f, _)| format!("integrations.{f}")));
    assert!(error.to_string().contains("must not point at 169.254.170.2"), "{error}");

    // Saved with public hosts, then changed to an inward one: refused, and the stored
    // agent is unchanged.
    let mut body = agent_body("Front desk");
    body["integrations"]["transcript_webhook_url"] = json!("https://hooks.example.com/t");
    let created: serde_json::Value = app.create_agent(&tenant, &body).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    body["integrations"]["transcript_webhook_url"] = json!("https://127.0.0.1/t");
    let res = app
        .request(Method::PUT, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, _, named, _) = error_of(res).await;
    assert_eq!((status, named), (422, vec!["integrations.transcript_webhook_url".to_owned()]));
    let stored: serde_json::Value = app
        .request(Method::GET, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["integrations"]["transcript_webhook_url"], "https://hooks.example.com/t");
}
