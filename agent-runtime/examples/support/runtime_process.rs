//! What the runtime benchmarks share: an S3 stand-in in the benchmark's process, and
//! the environment a runtime process under test starts with.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stands in for S3: takes every request's body, answers 200, and counts the calls'
/// metadata objects, the last artifact a call stores.
pub struct S3StandIn {
    pub endpoint: String,
    metadata_objects: Arc<AtomicU64>,
}

impl S3StandIn {
    pub async fn start() -> anyhow::Result<Self> {
        use axum::http::{Method, Uri, header};
        let metadata_objects = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&metadata_objects);
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, _body: axum::body::Bytes| {
            let count = Arc::clone(&count);
            async move {
                if method == Method::PUT && uri.path().ends_with("/metadata.json") {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                ([(header::ETAG, "\"d41d8cd98f00b204e9800998ecf8427e\"")], "")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { endpoint, metadata_objects })
    }

    /// Calls whose artifacts are all stored.
    #[allow(dead_code, reason = "not every benchmark counts them")]
    pub fn stored(&self) -> u64 {
        self.metadata_objects.load(Ordering::Relaxed)
    }
}

/// A runtime process for the agent `vars` (its variables, secrets included), on
/// 127.0.0.1:`port`, storing to the S3 stand-in, calling Twilio at `sim_api`, with
/// recognition off: `program` and its `args` (the runtime, or `taskset` running it).
/// The caller adds what its benchmark needs and spawns it.
pub fn runtime_command(
    program: &str,
    args: &[&str],
    vars: &BTreeMap<String, String>,
    s3_endpoint: &str,
    sim_api: &str,
    spool: &Path,
    port: u16,
) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(vars)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("S3_BUCKET_NAME", "tv-load")
        .env("S3_BUCKET_REGION", "us-east-1")
        .env("TEMPOVOICE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TEMPOVOICE_PUBLIC_HOST", format!("127.0.0.1:{port}"))
        .env("TWILIO_API_BASE", sim_api)
        .env("TEMPOVOICE_SPOOL_DIR", spool)
        .env("TEMPOVOICE_ASR", "off");
    command
}
