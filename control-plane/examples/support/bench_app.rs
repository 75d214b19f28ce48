//! What the benchmarks against a control plane share: a control plane on 127.0.0.1
//! that reads calls from S3 (moto, `AWS_ENDPOINT_URL`) but deploys nothing, and a
//! tenant with an API key.

use serde_json::{Value, json};

pub struct BenchApp {
    pub base: String,
    pub admin: String,
    /// The resource prefix: agents' buckets are named with it.
    pub prefix: String,
    stop: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl BenchApp {
    /// `extra` settings are added to the defaults.
    pub async fn start(extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        anyhow::ensure!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "set AWS_ENDPOINT_URL to a moto server");
        let dir = tempfile::tempdir()?;
        let prefix = format!("bench{}", rand::random::<u16>());
        let admin = "bench-admin-token-0123456789abcdef0123456789".to_owned();
        let mut vars: Vec<(String, String)> = vec![
            ("TEMPOVOICE_LISTEN".into(), "127.0.0.1:0".into()),
            ("TEMPOVOICE_DATA_DIR".into(), dir.path().display().to_string()),
            ("TEMPOVOICE_ADMIN_TOKEN".into(), admin.clone()),
            ("TEMPOVOICE_PUBLIC_HOST".into(), "voice.example.com".into()),
            // Calls are read from S3, but nothing is deployed: no worker takes deployments.
            ("TEMPOVOICE_DEPLOYER".into(), "lambda".into()),
            ("DEPLOYER_LAMBDA_FUNCTION".into(), "unused".into()),
            ("TEMPOVOICE_DEPLOY_WORKERS".into(), "0".into()),
            ("TEMPOVOICE_PREFIX".into(), prefix.clone()),
            ("TEMPOVOICE_LOG_FORMAT".into(), "text".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let lookup =
            |k: &str| vars.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok());
        let settings = control_plane::settings::Settings::from_lookup(lookup)?;
        let app = control_plane::App::build(settings).await?;
        let base = format!("http://{}", app.local_addr());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        Ok(Self { base, admin, prefix, stop, server, _dir: dir })
    }

    /// A new tenant; its id and an API key.
    pub async fn tenant(&self, http: &reqwest::Client, name: &str) -> anyhow::Result<(String, String)> {
        let base = &self.base;
        let tenant: Value = http
            .post(format!("{base}/v1/admin/tenants"))
            .bearer_auth(&self.admin)
            .json(&json!({"name": name}))
            .send()
            .await?
            .json()
            .await?;
        let id = tenant["id"].as_str().unwrap().to_owned();
        let key: Value = http
            .post(format!("{base}/v1/admin/tenants/{id}/api-keys"))
            .bearer_auth(&self.admin)
            .json(&json!({"label": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        Ok((id, key["api_key"].as_str().unwrap().to_owned()))
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.server.await?
    }
}
