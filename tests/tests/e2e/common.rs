//! The platform the end-to-end tests run against: a control plane (serving the API
//! and the dashboard) on 127.0.0.1, deploying in process into the moto server that
//! `scripts/test` starts (`AWS_ENDPOINT_URL`), with its own tenants.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use agent_runtime::callsim::TwilioSim;
use base64::Engine;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

pub use test_support::python;

/// Eight random lowercase letters and digits (unique names in the shared moto).
pub fn token() -> String {
    test_support::random_token(8)
}

/// The shared AWS base in moto, as `scripts/bootstrap-local` makes it.
pub fn aws_base() -> HashMap<String, String> {
    test_support::aws_base('e', &test_support::BaseOptions::default())
}

/// Where the Twilio number of [`agent_body`] routed before TempoVoice took it.
pub const DEMO_VOICE_URL: &str = "https://demo.twilio.com/welcome/voice/";
/// The number [`agent_body`] agents usually have, in [`ACCOUNT_SID`].
pub const NUMBER: &str = "+14155550100";

/// A running control plane and what the tests need to reach it.
pub struct Platform {
    pub url: String,
    /// Twilio, as the control plane reaches it: account [`ACCOUNT_SID`] owns [`NUMBER`].
    pub twilio: TwilioSim,
    pub admin: String,
    pub base: HashMap<String, String>,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Platform {
    /// Starts the control plane; `extra` settings override the defaults.
    pub async fn start(extra: &[(&str, &str)]) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let base = aws_base();
        let twilio = TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("Twilio simulator");
        twilio.add_number(ACCOUNT_SID, NUMBER, DEMO_VOICE_URL);
        let admin = format!("admin-{}{}", token(), "x".repeat(32));
        let mut vars: HashMap<String, String> = base.clone();
        for (k, v) in [
            ("TEMPOVOICE_LISTEN", "127.0.0.1:0".to_owned()),
            ("TEMPOVOICE_DATA_DIR", dir.path().display().to_string()),
            ("DATABASE_URL", format!("sqlite://{}/tv.db", dir.path().display())),
            ("TEMPOVOICE_ADMIN_TOKEN", admin.clone()),
            ("TEMPOVOICE_SECRETS_KEY", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())),
            ("TEMPOVOICE_DEPLOYER", "in-process".to_owned()),
            ("TEMPOVOICE_DEPLOY_RETRY_SECS", "0".to_owned()),
            ("TEMPOVOICE_TWILIO_API_BASE", twilio.api_base()),
        ] {
            vars.insert(k.to_owned(), v);
        }
        test_support::with_public_host(&mut vars, "voice.example.com");
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let settings = control_plane::settings::Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
        let app = control_plane::App::build(settings).await.expect("control plane");
        let url = format!("http://{}", app.local_addr());
        let stop = CancellationToken::new();
        let task = Some(tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned())));
        Platform { url, twilio, admin, base, http: reqwest::Client::new(), stop, task, _dir: dir }
    }

    /// A new tenant; returns its id and API key.
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let tenant: Value = self
            .http
            .post(format!("{}/v1/admin/tenants", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = tenant["id"].as_str().unwrap().to_owned();
        let key: Value = self
            .http
            .post(format!("{}/v1/admin/tenants/{id}/api-keys", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({ "label": "e2e" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (id, key["api_key"].as_str().unwrap().to_owned())
    }

    /// `GET` an API path with `key`, as JSON (any status).
    pub async fn api_get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(key).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates an agent through the API (deployment starts); returns it.
    pub async fn create_agent(&self, key: &str, body: Value) -> Value {
        let response =
            self.http.post(format!("{}/v1/agents", self.url)).bearer_auth(key).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "create agent: {}", response.status());
        response.json().await.unwrap()
    }

    /// Waits until the agent's latest deployment has ended; returns its status.
    pub async fn wait_deployed(&self, key: &str, agent_id: &str) -> String {
        let mut status = String::new();
        for _ in 0..300 {
            let (_, agent) = self.api_get(&format!("/v1/agents/{agent_id}"), key).await;
            status = agent["deployment"]["status"].as_str().unwrap_or_default().to_owned();
            if status == "active" || status == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        status
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A small valid agent for the API.
pub fn agent_body(name: &str, phone: &str) -> Value {
    json!({
        "name": name,
        "system_prompt": "You answer the phone for Rosa's Bakery.",
        "greeting": "Hello, Rosa's Bakery, how can I help?",
        "knowledge_base": [{"title": "Opening hours", "text": "We are open Tuesday to Sunday from seven in the morning to three in the afternoon."}],
        "voice": {"provider": "local"},
        "enable_recording": true,
        "telephony": {"call_phone_number": phone, "twilio_account_sid": ACCOUNT_SID},
        "secrets": {"twilio_auth_token": AUTH_TOKEN}
    })
}
