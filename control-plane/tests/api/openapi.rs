//! The OpenAPI document matches the server: every documented operation is served
//! and answers only with statuses the document lists; every documented path refuses
//! undocumented methods; paths outside the document are not routed.
//!
//! Routes are registered only through utoipa-axum's `routes!` (see `http/mod.rs`),
//! which takes the path and method from the handler's own annotation; this test
//! checks the result from the outside.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_of};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_and_the_router_agree() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let doc: Value = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 27, "documented paths: {:?}", paths.keys().collect::<Vec<_>>());

    // Opened first: an operation below revokes the tenant's key, and its sessions with it.
    let session = session_token(&app, &tenant.key).await;
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{id}", agent["id"].as_str().unwrap())
            .replace("{tenantId}", &tenant.id)
            .replace("{keyId}", &tenant.key_id)
            .replace("{deploymentId}", "abcdefghijklmnop")
            .replace("{callSid}", "CA0123456789abcdef0123456789abcdef")
            .replace("{callbackId}", "cb0123456789abcdef");
        for method in METHODS {
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let Some(op) = item.get(method) else {
                let (status, code, ..) =
                    error_of(app.request(http_method, &path, Some(&tenant.key)).send().await.unwrap()).await;
                assert_eq!(
                    (status, code.as_str()),
                    (405, "method_not_allowed"),
                    "undocumented {method} {template} is routed"
                );
                continue;
            };
            operations += 1;
            let documented: Vec<u16> =
                op["responses"].as_object().unwrap().keys().map(|s| s.parse().unwrap()).collect();
            let security = op["security"].as_array().and_then(|s| s.first()).and_then(|s| s.as_object());
            let scheme = security.and_then(|s| s.keys().next()).map(String::as_str);

            // Unauthenticated, if the operation is secured: 401 (or 403 when disabled), documented.
            if scheme.is_some() {
                let res = app.request(http_method.clone(), &path, None).send().await.unwrap();
                let status = res.status().as_u16();
                assert!(
                    documented.contains(&status),
                    "{method} {template}: unauthenticated {status} not in {documented:?}"
                );
                assert_eq!(status, 401);
            }
            // Authenticated, with no body: whatever the answer, it is documented.
            let key = match scheme {
                Some("admin_token") => Some(app.admin_token.as_str()),
                Some("api_key") => Some(tenant.key.as_str()),
                Some("session_token") => Some(session.as_str()),
                Some(other) => panic!("unknown security scheme {other}"),
                None => None,
            };
            let res = app.request(http_method.clone(), &path, key).send().await.unwrap();
            let status = res.status().as_u16();
            if status >= 400 {
                let (_, code, ..) = error_of(res).await;
                assert!(code != "route_not_found" && code != "method_not_allowed", "{method} {template} not routed");
            }
            assert!(documented.contains(&status), "{method} {template}: {status} not in {documented:?}");

            // Operations that read If-Match: a malformed one is answered as documented.
            let takes_if_match = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-Match" && p["in"] == "header"));
            if takes_if_match {
                let res = app.request(http_method.clone(), &path, key).header("If-Match", "*").send().await.unwrap();
                let status = res.status().as_u16();
                assert!(
                    documented.contains(&status),
                    "{method} {template} with If-Match *: {status} not in {documented:?}"
                );
            }
        }
    }
    assert_eq!(operations, 34);
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("api_key") && schemes.contains_key("admin_token"));
    assert!(schemes.contains_key("session_token"));

    // `/` and the page paths are the dashboard's; everything else is the API's.
    let dashboard = app.request(Method::GET, "/", None).send().await.unwrap();
    assert_eq!(dashboard.url().path(), "/sign-in", "the dashboard asks to sign in");
    assert!(dashboard.text().await.unwrap().contains("<form action=\"/api/sign_in\""));
    for path in ["/v1", "/v1/agents/x/y", "/v1/tenants", "/v1/admin", "/openapi.json", "/v2/agents", "/agents"] {
        let (status, code, ..) =
            error_of(app.request(Method::GET, path, Some(&tenant.key)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (404, "route_not_found"), "{path} is routed but undocumented");
    }
}

/// A fresh session of the tenant holding `key`.
async fn session_token(app: &TestApp, key: &str) -> String {
    let res = app.request(Method::POST, "/v1/sessions", Some(key)).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["session_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_authenticated_operation_documents_the_failed_attempt_limit() {
    let app = TestApp::spawn().await;
    let doc: Value = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut secured = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                secured += 1;
                assert!(responses["429"]["headers"]["Retry-After"].is_object(), "{method} {template}: {responses}");
            } else {
                assert!(responses.get("429").is_none(), "{method} {template} is not authenticated");
            }
        }
    }
    assert!(secured >= 18, "{secured}");
}

#[tokio::test]
async fn request_and_response_schemas_are_in_the_document() {
    let app = TestApp::spawn().await;
    let doc: Value = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in
        ["AgentDraft", "AgentResponse", "AgentPage", "ErrorBody", "FieldError", "TenantResponse", "IssuedApiKey"]
    {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    // A new agent's body names the secrets it needs; an update's keeps stored ones.
    let body = |path: &str, method: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(body("/v1/agents", "post"), "#/components/schemas/NewAgentDraft");
    assert_eq!(body("/v1/agents/{id}", "put"), "#/components/schemas/AgentDraft");
    assert_eq!(schemas["NewAgentDraft"]["properties"]["secrets"]["required"], json!(["twilio_auth_token"]));
    // The draft documents its write-only secrets.
    let field = serde_json::to_string(&schemas["SecretsDraft"]["properties"]["twilio_auth_token"]).unwrap();
    assert!(field.contains("#/components/schemas/SecretPatch"), "{field}");
    assert_eq!(schemas["SecretPatch"]["writeOnly"], true);
    // Validation's rules are in it: required fields, limits, patterns, each
    // provider's own settings, the Fargate sizes.
    let draft = &schemas["AgentDraft"];
    assert_eq!(draft["required"], json!(["name", "system_prompt", "telephony"]));
    assert_eq!(draft["properties"]["name"]["maxLength"], 100);
    assert!(
        schemas["TelephonyDraft"]["properties"]["call_phone_number"]["pattern"]
            .as_str()
            .unwrap()
            .contains(r"\+[1-9][0-9]{6,14}")
    );
    assert_eq!(schemas["VoiceDraft"]["oneOf"].as_array().unwrap().len(), 5);
    assert_eq!(schemas["SizingDraft"]["oneOf"].as_array().unwrap().len(), 7);
}

/// What the API answers is what the document describes: an agent is one object with
/// its config's fields and its own (no `allOf` whose parts refuse each other's
/// fields), and enums list the values as they are sent.
#[tokio::test]
async fn responses_match_the_documented_schemas() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    let doc: Value = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    let response = &schemas["AgentResponse"];
    assert!(response.get("allOf").is_none(), "{response:#}");
    assert_eq!(response["additionalProperties"], false);
    let properties = response["properties"].as_object().unwrap();
    for key in agent.as_object().unwrap().keys() {
        assert!(properties.contains_key(key), "{key} is answered but not documented");
    }
    for required in response["required"].as_array().unwrap() {
        assert!(agent.get(required.as_str().unwrap()).is_some(), "{required} is documented as always there");
    }
    let values = |name: &str| schemas[name]["enum"].as_array().cloned().unwrap_or_default();
    assert!(values("SpeechProvider").contains(&agent["voice"]["provider"]), "{}", schemas["SpeechProvider"]);
    assert!(values("CpuArchitecture").contains(&agent["sizing"]["cpu_architecture"]));
    assert!(values("SpeechProvider").contains(&Value::from("openai-realtime")));
}
