//! The TempoVoice control plane: a multi-tenant REST API for AI phone agents.
//!
//! Modules, and how a request flows through them:
//!
//! - [`settings`]: typed settings from the environment, with local defaults.
//! - [`telemetry`]: `tracing` set-up (text or JSON logs).
//! - [`http`]: the axum router. [`http::extract`] authenticates the tenant's API
//!   key (or the admin token) and parses JSON with field-level errors; the resource
//!   modules ([`http::agents`], [`http::admin`], [`http::health`]) call the store;
//!   [`http::error::ApiError`] turns every failure into a JSON error body.
//! - [`store`]: tenants, API keys and agents in SQL, always scoped by tenant id.
//! - [`crypto`]: AES-256-GCM sealing of agent secrets at rest.
//! - [`db`]: the sqlx pool (SQLite by default, PostgreSQL by URL) and migrations.
//! - [`cli`]: the `control-plane` command: serve, and operator commands to create
//!   tenants and issue or revoke API keys.
//!
//! [`App::build`] wires these together; tests build the same `App` on port 0.

pub mod cli;
pub mod crypto;
pub mod db;
pub mod http;
pub mod settings;
pub mod store;
pub mod telemetry;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::crypto::SecretsCipher;
use crate::db::Db;
use crate::http::AppState;
use crate::settings::Settings;
use crate::store::Store;

/// Opens the database (applying migrations) and loads the secrets key.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let db = Db::connect(settings.database_url.expose_secret(), settings.db_max_connections).await?;
    let cipher = match &settings.secrets_key {
        Some(key) => SecretsCipher::from_base64(key)?,
        None => SecretsCipher::load_or_generate(&settings.data_dir).context("load the local secrets key")?,
    };
    Ok(Store::new(db, cipher))
}

/// The running control plane: a bound listener and the service behind it.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let store = open_store(&settings).await?;
        let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("bind {}", settings.bind))?;
        let settings = Arc::new(settings);
        let router = http::service(AppState { store: store.clone(), settings: settings.clone() });
        Ok(App { listener, router, store, settings, shutdown: CancellationToken::new() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Cancelling this token stops the server as SIGTERM would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown token. Then stops accepting,
    /// lets in-flight requests finish within the grace period, and closes the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let App { listener, router, store, settings, shutdown } = self;
        tracing::info!(addr = %listener.local_addr()?, backend = ?store.db.backend, "control plane listening");
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal.cancel();
        });
        let stopping = shutdown.clone();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move { stopping.cancelled().await });
        let server = tokio::spawn(server.into_future());
        shutdown.cancelled().await;
        tracing::info!(grace_secs = settings.shutdown_grace.as_secs(), "shutting down: draining in-flight requests");
        match tokio::time::timeout(settings.shutdown_grace, server).await {
            Ok(joined) => joined.context("server task")?.context("serve")?,
            Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
        }
        store.db.pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
