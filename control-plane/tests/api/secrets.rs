//! Secrets are write-only: never in a response body, never in a log line, never in
//! plaintext in the database.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::{TestApp, agent_body, captured_logs, random_token};

#[tokio::test]
async fn secrets_never_appear_in_responses_logs_or_the_database() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;

    let token = random_token(32);
    let openai = format!("oa-{}", random_token(40));
    let signing = format!("whsec{}", random_token(40));
    let new_token = random_token(32);
    // A Make.com scenario URL is a credential: its path is the key.
    let make_key = random_token(30);
    let secrets = [token.as_str(), openai.as_str(), signing.as_str(), new_token.as_str(), make_key.as_str()];

    let mut body = agent_body("Secretive");
    body["voice"] = json!({ "provider": "openai-realtime" });
    body["secrets"] =
        json!({ "twilio_auth_token": token, "openai_api_key": openai, "webhook_signing_secret": signing });
    body["integrations"]["make_endpoint"] = json!(format!("https://hook.eu1.make.com/{make_key}"));

    let mut responses: Vec<String> = Vec::new();
    let res = app.create_agent(&tenant, &body).await;
    assert_eq!(res.status(), 201);
    let created: Value = serde_json::from_str(&{
        let text = res.text().await.unwrap();
        responses.push(text.clone());
        text
    })
    .unwrap();
    let path = format!("/v1/agents/{}", created["id"].as_str().unwrap());
    assert_eq!(
        created["secrets"],
        json!({"twilio_auth_token": "set", "openai_api_key": "set", "webhook_signing_secret": "set"})
    );

    assert_eq!(created["integrations"]["make_endpoint"], "https://hook.eu1.make.com/…");
    responses.push(app.request(Method::GET, &path, Some(&tenant.key)).send().await.unwrap().text().await.unwrap());
    responses
        .push(app.request(Method::GET, "/v1/agents", Some(&tenant.key)).send().await.unwrap().text().await.unwrap());

    // An update that replaces the token; then invalid requests carrying secrets.
    let mut update = body.clone();
    update["secrets"] = json!({ "twilio_auth_token": new_token });
    let res = app
        .request(Method::PUT, &path, Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    responses.push(res.text().await.unwrap());

    let mut invalid = body.clone();
    invalid["name"] = json!("");
    invalid["secrets"]["openai_api_key"] = json!(format!("{openai} with spaces"));
    let res = app
        .request(Method::PUT, &path, Some(&tenant.key))
        .header("If-Match", "\"2\"")
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    responses.push(res.text().await.unwrap());

    let res = app
        .request(Method::POST, "/v1/agents", Some(&tenant.key))
        .header("content-type", "application/json")
        .body(format!(r#"{{"secrets": {{"twilio_auth_token": ["{token}"]}}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    responses.push(res.text().await.unwrap());

    // `secrets` itself of the wrong type: the reason must not quote the value.
    let res = app
        .request(Method::POST, "/v1/agents", Some(&tenant.key))
        .json(&json!({ "secrets": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    responses.push(res.text().await.unwrap());

    for (i, text) in responses.iter().enumerate() {
        for secret in secrets {
            assert!(!text.contains(secret), "response {i} contains a secret: {text}");
        }
    }

    let logs = captured_logs();
    assert!(logs.contains(created["id"].as_str().unwrap()), "the test captured the app's logs");
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret was logged");
    }

    // At rest: neither the config column nor the sealed secrets hold the plaintext.
    let db = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let rows = sqlx::query("SELECT config, secrets FROM agents").fetch_all(&db).await.unwrap();
    assert_eq!(rows.len(), 1);
    for row in rows {
        let config: String = row.get(0);
        let sealed: Vec<u8> = row.get(1);
        for secret in secrets {
            assert!(!config.contains(secret));
            assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()), "plaintext secret in the database");
        }
    }
    db.close().await;
    if app.database_url.starts_with("sqlite:") {
        // The raw SQLite files (database and write-ahead log) too.
        for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for secret in secrets {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "plaintext secret on disk");
            }
        }
    }
}
