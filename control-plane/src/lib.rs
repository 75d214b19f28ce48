//! The TempoVoice control plane: a multi-tenant REST API for AI phone agents.
//!
//! Modules, and how a request flows through them:
//!
//! - [`settings`]: typed settings from the environment, with local defaults.
//! - Logging, the shutdown signal and the HTTP server (timeouts, connection limit)
//!   come from the `serving` crate, as in every TempoVoice server.
//! - [`http`]: the axum router. [`http::extract`] authenticates the tenant's API
//!   key or session token (or the admin token), limiting failed attempts per client
//!   address and key id ([`http::auth_limit`]), and parses JSON with field-level
//!   errors; the resource modules ([`http::agents`], [`http::sessions`],
//!   [`http::admin`], [`http::health`]) call the store;
//!   [`http::error::ApiError`] turns every failure into a JSON error body.
//! - [`store`]: tenants, API keys, sessions and agents in SQL, always scoped by
//!   tenant id.
//! - [`crypto`]: AES-256-GCM sealing of agent secrets at rest.
//! - [`db`]: the sqlx pool (SQLite by default, PostgreSQL by URL) and migrations.
//! - [`deploy`]: the [`deploy::Deployer`] (in-process library or Lambda Invoke) and
//!   the workers that run queued deployments through it.
//! - [`cli`]: the `control-plane` command: serve, and operator commands to create
//!   tenants and issue or revoke API keys.
//! - The dashboard (the `dashboard` crate) is mounted at `/` unless turned off; it
//!   calls this API in process, through the same router.
//!
//! [`App::build`] wires these together; tests build the same `App` on port 0.

pub mod call_index;
pub mod callbacks;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod deploy;
pub mod http;
pub mod metrics;
pub mod settings;
pub mod store;
pub mod twilio;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::crypto::SecretsCipher;
use crate::db::Db;
use crate::deploy::worker::Workers;
use crate::deploy::{Deployer, InProcessDeployer, LambdaDeployer};
use crate::http::{AppState, AwsAccess};
use crate::settings::{DeployerMode, Settings};
use crate::store::Store;

/// Opens the database (applying migrations), loads the secrets key, and checks that
/// the key opens the secrets already stored.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let db = Db::connect(settings.database_url.expose_secret(), settings.db_max_connections).await?;
    let cipher = match &settings.secrets_key {
        Some(key) => SecretsCipher::from_base64(key)?,
        None => {
            let key_file = settings.data_dir.join(crypto::KEY_FILE);
            // A new key would make every stored secret unreadable: never generate one
            // for a database that already holds sealed secrets.
            if !key_file.exists() && store::agents::has_agents(&db).await? {
                anyhow::bail!(
                    "{} is missing but the database holds encrypted agent secrets: restore the key file, \
                     or set TEMPOVOICE_SECRETS_KEY to the key they were sealed with",
                    key_file.display()
                );
            }
            SecretsCipher::load_or_generate(&settings.data_dir).context("load the local secrets key")?
        }
    };
    let store = Store::new(db, cipher);
    store.verify_secrets_key().await.map_err(|e| {
        anyhow::anyhow!(
            "the secrets key does not open the agent secrets stored in the database ({e}): \
             use the key they were sealed with (TEMPOVOICE_SECRETS_KEY or {})",
            settings.data_dir.join(crypto::KEY_FILE).display()
        )
    })?;
    Ok(store)
}

/// The running control plane: a bound listener and the service behind it (and the
/// admin API's own, when it has one).
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    admin: Option<(TcpListener, axum::Router)>,
    store: Store,
    settings: Arc<Settings>,
    workers: Option<Workers>,
    /// Places scheduled callbacks (with Twilio and a public URL).
    callbacks: Option<callbacks::CallbackWorker>,
    auth_limiter: Arc<http::auth_limit::FailedAuthLimiter>,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        Self::build_with_deployer(settings, None).await
    }

    /// Builds with `deployer` instead of the one the settings name (tests count and
    /// fail AWS calls through their own clients). Ignored when the deployer is off.
    pub async fn build_with_deployer(settings: Settings, deployer: Option<Arc<dyn Deployer>>) -> anyhow::Result<App> {
        let store = open_store(&settings).await?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listen on {} (TEMPOVOICE_LISTEN)", settings.listen))?;
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr).await.with_context(|| format!("listen on {addr} (TEMPOVOICE_ADMIN_LISTEN)"))?,
            ),
            None => None,
        };
        let settings = Arc::new(settings);
        let (aws, workers) = match &settings.deployer {
            DeployerMode::Off => {
                tracing::warn!("TEMPOVOICE_DEPLOYER=off: agents are stored but not deployed, and calls cannot be read");
                (None, None)
            }
            mode => {
                let sdk = deploy::sdk_config(&settings.aws_region, settings.aws_endpoint_url.as_deref()).await;
                let deployer: Arc<dyn Deployer> = match (deployer, mode) {
                    (Some(d), _) => d,
                    (None, DeployerMode::InProcess(d)) => Arc::new(InProcessDeployer::new(&sdk, (**d).clone())),
                    (None, DeployerMode::Lambda { function }) => {
                        Arc::new(LambdaDeployer::new(&sdk, function.clone(), settings.lambda_endpoint_url.as_deref()))
                    }
                    (None, DeployerMode::Off) => unreachable!("matched above"),
                };
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&sdk).force_path_style(sdk.endpoint_url().is_some()).build(),
                );
                let wake = Arc::new(tokio::sync::Notify::new());
                let workers = Workers::new(store.clone(), deployer.clone(), settings.clone(), wake.clone());
                (Some(AwsAccess { wake_workers: wake, s3, deployer }), Some(workers))
            }
        };
        if aws.is_some() {
            for l in settings.listeners.iter().filter(|l| l.public_host.is_none()) {
                tracing::warn!(
                    listener = %l.listener_arn,
                    "this listener names no public host (TEMPOVOICE_LISTENERS …@host, or TEMPOVOICE_PUBLIC_HOST): \
                     agents placed on it cannot be deployed"
                );
            }
        }
        let state = AppState::new(store.clone(), settings.clone(), aws);
        // Callbacks are placed where calls can be: with Twilio and a public URL.
        let callbacks = (state.twilio.is_some() && settings.public_url.is_some())
            .then(|| callbacks::CallbackWorker::new(state.clone()));
        let auth_limiter = state.auth_limiter.clone();
        let router = match &settings.dashboard {
            Some(dashboard_settings) => {
                // The dashboard calls the API through the API's own router: the same
                // authentication and validation as over HTTP, without a network hop.
                let api = dashboard::api::ControlPlane::in_process(http::service(state.clone(), None));
                let dashboard =
                    dashboard::Dashboard::new(api, dashboard_settings).context("TEMPOVOICE_DASHBOARD_SESSION_KEY")?;
                http::service(state, Some(dashboard::router(dashboard)))
            }
            None => http::service(state, None),
        };
        // With an address of its own, the admin API is served there alone, and the
        // main address answers as if it had no admin routes.
        let (router, admin) = match admin_listener {
            Some(admin_listener) => {
                let admin_router = router.clone().layer(axum::middleware::from_fn(only_admin_routes));
                (router.layer(axum::middleware::from_fn(no_admin_routes)), Some((admin_listener, admin_router)))
            }
            None => (router, None),
        };
        Ok(App { listener, router, admin, store, settings, workers, callbacks, auth_limiter })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The admin API's own address, when `TEMPOVOICE_ADMIN_LISTEN` gives it one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(l, _)| l.local_addr().expect("a bound listener has an address"))
    }

    /// The failed-authentication limiter (tests move its clock).
    pub fn auth_limiter(&self) -> Arc<http::auth_limit::FailedAuthLimiter> {
        self.auth_limiter.clone()
    }

    /// Serves until `shutdown` resolves (in the binary, `serving::shutdown_signal()`:
    /// SIGTERM or Ctrl-C). Then stops accepting, lets in-flight requests finish within
    /// the grace period (aborting what is left after it), stops the deployment
    /// workers, and closes the pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let App { listener, router, admin, store, settings, workers, callbacks, auth_limiter: _ } = self;
        tracing::info!(addr = %listener.local_addr()?, backend = ?store.db.backend, "control plane listening");
        let stop = CancellationToken::new();
        let mut workers = workers.map(|w| w.spawn(stop.clone(), settings.shutdown_grace));
        if let Some(callbacks) = callbacks {
            workers.get_or_insert_with(tokio::task::JoinSet::new).spawn(callbacks.run(stop.clone()));
        }
        // `serve` gives each request its peer's address (`ConnectInfo`): failed
        // authentications are counted against it (`http::auth_limit`), unless a
        // trusted proxy names the client.
        let limits = settings.limits;
        let serve = serving::serve(listener, router, limits, stop.clone().cancelled_owned());
        let admin_serve = admin.map(|(admin_listener, admin_router)| {
            tracing::info!(addr = ?admin_listener.local_addr(), "admin API listening on its own address");
            serving::serve(admin_listener, admin_router, limits, stop.clone().cancelled_owned())
        });
        let mut server = tokio::spawn(async move {
            match admin_serve {
                // Either failing ends both.
                Some(admin_serve) => tokio::try_join!(serve, admin_serve).map(|((), ())| ()),
                None => serve.await,
            }
        });
        tokio::select! {
            () = shutdown => stop.cancel(),
            ended = &mut server => {
                // Only `stop` ends the servers: this is their task failing.
                stop.cancel();
                store.db.pool.close().await;
                return ended.context("server task")?.context("serve");
            }
        }
        tracing::info!(grace_secs = settings.shutdown_grace.as_secs(), "shutting down: draining in-flight requests");
        let drain_workers = async {
            if let Some(set) = workers.as_mut() {
                while set.join_next().await.is_some() {}
            }
        };
        let (served, ()) = tokio::join!(tokio::time::timeout(settings.shutdown_grace, &mut server), async {
            // Workers finish or hand back their deployments within the grace period.
            if tokio::time::timeout(settings.shutdown_grace + Duration::from_secs(5), drain_workers).await.is_err() {
                tracing::warn!("deployment workers did not stop in time");
            }
        });
        match served {
            Ok(joined) => joined.context("server task")?.context("serve")?,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within the grace period; aborting them");
                server.abort();
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), store.db.pool.close()).await.is_err() {
            tracing::warn!("database connections did not close within 5 s");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

fn is_admin_path(path: &str) -> bool {
    path == "/v1/admin" || path.starts_with("/v1/admin/")
}

/// The main address when the admin API has its own: no admin routes here.
async fn no_admin_routes(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_admin_path(request.uri().path()) {
        return http::error::ApiError::RouteNotFound.into_response();
    }
    next.run(request).await
}

/// The admin address: the admin routes and the liveness check, nothing else.
async fn only_admin_routes(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    if !(is_admin_path(path) || path == "/health") {
        return http::error::ApiError::RouteNotFound.into_response();
    }
    next.run(request).await
}
