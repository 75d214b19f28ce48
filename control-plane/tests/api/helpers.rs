//! Test harness: each test spawns the real `App` on 127.0.0.1:0 with a fresh
//! database — a new SQLite file, or a new PostgreSQL database on the server named by
//! `TEMPOVOICE_TEST_DATABASE_URL` (the CI Postgres leg). Every log line the process
//! writes, at debug level, is captured so tests can check what was logged.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use control_plane::App;
use control_plane::settings::Settings;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// All log output of this test process.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static LOGS: OnceLock<CapturedLogs> = OnceLock::new();

fn logs() -> &'static CapturedLogs {
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let filter = tracing_subscriber::EnvFilter::new("debug,hyper=info,h2=info,reqwest=info");
        serving::logging::init_with_filter(serving::logging::LogFormat::Json, filter, logs.clone());
        logs
    })
}

/// Everything logged so far by this process.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&logs().0.lock().expect("log buffer lock")).into_owned()
}

pub use test_support::random_token;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin API's own address, when the settings give it one.
    pub admin_addr: Option<SocketAddr>,
    pub client: Client,
    pub admin_token: String,
    /// The database URL the app uses (SQLite file or fresh Postgres database).
    pub database_url: String,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub data_dir: tempfile::TempDir,
    pub auth_limiter: Arc<control_plane::http::auth_limit::FailedAuthLimiter>,
}

/// A tenant and one of its API keys.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: String,
    pub key: String,
    pub key_id: String,
}

/// A fresh database URL: a new Postgres database when the Postgres leg is on.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("TEMPOVOICE_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to the test PostgreSQL server");
            let name = format!("tv_test_{}", random_token(12));
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
            admin.close().await.ok();
            let (prefix, last) = base.rsplit_once('/').expect("TEMPOVOICE_TEST_DATABASE_URL ends in /dbname");
            // Keep the options (`?sslmode=require`): the leg runs over TLS, as on RDS.
            let options = last.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            format!("{prefix}/{name}{options}")
        }
        _ => format!("sqlite://{}", dir.join("tempovoice.db").display()),
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with extra or changed settings variables.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        Self::spawn_full(adjust, None).await
    }

    /// Spawns with changed settings and, if given, this deployer instead of the
    /// one the settings name.
    pub async fn spawn_full(
        adjust: impl FnOnce(&mut HashMap<String, String>),
        deployer: Option<Arc<dyn control_plane::deploy::Deployer>>,
    ) -> TestApp {
        logs();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(data_dir.path()).await;
        let admin_token = random_token(40);
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let mut vars: HashMap<String, String> = [
            ("TEMPOVOICE_LISTEN", "127.0.0.1:0".to_owned()),
            ("TEMPOVOICE_DATA_DIR", data_dir.path().display().to_string()),
            ("DATABASE_URL", database_url.clone()),
            ("TEMPOVOICE_ADMIN_TOKEN", admin_token.clone()),
            ("TEMPOVOICE_SECRETS_KEY", key),
            ("TEMPOVOICE_SHUTDOWN_GRACE_SECS", "5".to_owned()),
            // Deployments have their own tests (deployments.rs), on moto.
            ("TEMPOVOICE_DEPLOYER", "off".to_owned()),
            // Twilio numbers have their own tests (tests/e2e/numbers.rs), against the
            // call simulator's Twilio.
            ("TEMPOVOICE_TWILIO_API_BASE", "off".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        adjust(&mut vars);
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid");
        let app = App::build_with_deployer(settings, deployer).await.expect("app builds");
        let addr = app.local_addr();
        let admin_addr = app.admin_addr();
        let auth_limiter = app.auth_limiter();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone().cancelled_owned()));
        TestApp {
            addr,
            admin_addr,
            client: Client::new(),
            admin_token,
            database_url,
            shutdown,
            server,
            data_dir,
            auth_limiter,
        }
    }

    /// Stops the app as SIGTERM would, and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        (&mut self.server).await.expect("server task").expect("clean stop");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request with the given bearer token (or none).
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.request(method, path, Some(&self.admin_token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("admin request")
    }

    /// Creates a tenant with one API key, through the admin API.
    pub async fn new_tenant(&self, name: &str) -> TestTenant {
        let res = self.admin(Method::POST, "/v1/admin/tenants", Some(json!({ "name": name }))).await;
        assert_eq!(res.status(), 201, "create tenant");
        let tenant: Value = res.json().await.unwrap();
        let id = tenant["id"].as_str().unwrap().to_owned();
        let key = self.issue_key(&id).await;
        TestTenant {
            id,
            key: key["api_key"].as_str().unwrap().to_owned(),
            key_id: key["key_id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn issue_key(&self, tenant: &str) -> Value {
        let res = self
            .admin(Method::POST, &format!("/v1/admin/tenants/{tenant}/api-keys"), Some(json!({ "label": "test" })))
            .await;
        assert_eq!(res.status(), 201, "issue key");
        res.json().await.unwrap()
    }

    pub async fn create_agent(&self, tenant: &TestTenant, body: &Value) -> Response {
        self.request(Method::POST, "/v1/agents", Some(&tenant.key)).json(body).send().await.expect("create agent")
    }

    /// Creates a valid agent and returns its JSON.
    pub async fn new_agent(&self, tenant: &TestTenant, name: &str) -> Value {
        let res = self.create_agent(tenant, &agent_body(name)).await;
        assert_eq!(res.status(), 201, "create agent: {}", res.text().await.unwrap_or_default());
        res.json().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A valid create body, with secrets unique to this call.
pub fn agent_body(name: &str) -> Value {
    json!({
        "name": name,
        "system_prompt": "You answer the phone for Rosa's Bakery. Be brief and friendly.",
        "knowledge_base": [{ "title": "Hours", "text": "Open 7am to 3pm, Tuesday to Sunday." }],
        "telephony": {
            "call_phone_number": "+14155550100",
            "transfer_phone_number": "+14155550199",
            "twilio_account_sid": "AC0123456789abcdef0123456789abcdef",
            // No Twilio here: pointing numbers is tested end to end, against the
            // call simulator's Twilio (tests/e2e/numbers.rs).
            "configure_number": false
        },
        "integrations": { "transcript_webhook_url": "https://hooks.example.com/transcripts" },
        "secrets": {
            "twilio_auth_token": random_token(32),
            "webhook_signing_secret": format!("whsec{}", random_token(40))
        }
    })
}

/// The error body's `code`, and the `field` names it lists.
pub async fn error_of(res: Response) -> (u16, String, Vec<String>, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
    let fields = body["error"]["fields"]
        .as_array()
        .map(|f| f.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    (status, code, fields, body)
}

/// A store on a fresh database (no server) and one tenant in it.
pub async fn test_store() -> (control_plane::store::Store, agent_spec::TenantId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("TEMPOVOICE_DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", url),
        ("TEMPOVOICE_SECRETS_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=".to_owned()),
        ("TEMPOVOICE_DB_MAX_CONNECTIONS", "16".to_owned()),
        ("TEMPOVOICE_DEPLOYER", "off".to_owned()),
    ]);
    let store = control_plane::open_store(&Settings::from_lookup(|k| vars.get(k).cloned()).unwrap()).await.unwrap();
    let tenant = store.create_tenant("t").await.unwrap().id;
    (store, tenant, dir)
}
