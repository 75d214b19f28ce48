//! The platform the end-to-end tests run against: a control plane (serving the API
//! and the dashboard) on 127.0.0.1, deploying in process into the moto server that
//! `scripts/test` starts (`AWS_ENDPOINT_URL`), with its own tenants.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
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
    /// The control plane's settings, for replicas on the same database.
    vars: HashMap<String, String>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Another control plane on the platform's database.
pub struct Replica {
    pub url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

impl Platform {
    /// Starts the control plane reachable at a known URL (`TEMPOVOICE_PUBLIC_URL`,
    /// for Twilio's callbacks of outbound calls); `extra` settings override the defaults.
    pub async fn start_reachable(extra: &[(&str, &str)]) -> Platform {
        // A free port, taken again at once by the control plane.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let public = format!("http://127.0.0.1:{port}");
        let mut all = vec![("TEMPOVOICE_LISTEN", listen.as_str()), ("TEMPOVOICE_PUBLIC_URL", public.as_str())];
        all.extend_from_slice(extra);
        Self::start(&all).await
    }

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
        let (url, stop, task) = serve(&vars).await;
        Platform { url, twilio, admin, base, http: reqwest::Client::new(), vars, stop, task: Some(task), _dir: dir }
    }

    /// A second control plane on the same database (its own address and workers);
    /// `extra` settings override the platform's.
    pub async fn replica(&self, extra: &[(&str, &str)]) -> Replica {
        let mut vars = self.vars.clone();
        vars.insert("TEMPOVOICE_LISTEN".into(), "127.0.0.1:0".into());
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let (url, stop, task) = serve(&vars).await;
        Replica { url, stop, task }
    }

    /// The platform's store, opened anew (as a replica's would be).
    pub async fn store(&self) -> control_plane::store::Store {
        let settings = control_plane::settings::Settings::from_lookup(|k| self.vars.get(k).cloned()).expect("settings");
        control_plane::open_store(&settings).await.expect("store")
    }

    /// `TEMPOVOICE_PUBLIC_URL`, when the platform was started reachable.
    pub fn public_url(&self) -> Option<&str> {
        self.vars.get("TEMPOVOICE_PUBLIC_URL").map(String::as_str)
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

type Served = (String, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>);

async fn serve(vars: &HashMap<String, String>) -> Served {
    let settings = control_plane::settings::Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let app = control_plane::App::build(settings).await.expect("control plane");
    let url = format!("http://{}", app.local_addr());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    (url, stop, task)
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

/// The agent's container environment, through `scripts/agent-env` and a shell, as
/// `scripts/run-agent` loads it.
pub fn agent_environment(base: &HashMap<String, String>, agent_id: &str) -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/agent-env");
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            r#"set -euo pipefail; set -a; eval "$("$0" "$1" "$2")"; env -0"#,
            python().to_str().expect("UTF-8 path"),
            script,
            agent_id,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(base.iter().filter(|(k, _)| k.starts_with("AWS_") || k.as_str() == "TEMPOVOICE_PREFIX"))
        .output()
        .expect("run scripts/agent-env");
    assert!(out.status.success(), "agent-env: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !matches!(*k, "PATH" | "PWD" | "SHLVL" | "_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// An agent's runtime, started in this process with its task definition's
/// environment, Twilio played by `twilio_api_base`.
pub struct Runtime {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _spool: tempfile::TempDir,
}

impl Runtime {
    pub async fn start(platform: &Platform, agent_id: &str) -> Runtime {
        let mut env = agent_environment(&platform.base, agent_id);
        let spool = tempfile::tempdir().unwrap();
        env.insert("TEMPOVOICE_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("TWILIO_API_BASE".into(), platform.twilio.api_base());
        env.insert("TEMPOVOICE_SPOOL_DIR".into(), spool.path().display().to_string());
        env.insert("TEMPOVOICE_LOG_FORMAT".into(), "text".into());
        let settings = agent_runtime::settings::Settings::from_env(|k| env.get(k).cloned()).expect("runtime settings");
        let runtime = agent_runtime::server::App::build(settings).await.expect("runtime");
        let addr = runtime.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Runtime { addr, stop: Some(stop), task, _spool: spool }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}
