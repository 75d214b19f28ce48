//! `dashboard`: serves the dashboard alone, as a client of a control plane reached
//! over HTTP (the control-plane binary also serves it, at `/`).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use dashboard::api::ControlPlane;
use dashboard::{Dashboard, DashboardSettings};
use secrecy::SecretString;

#[derive(Parser)]
#[command(version, about = "TempoVoice dashboard: the web UI, as a client of the control-plane API")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "TEMPOVOICE_DASHBOARD_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The control-plane API's base URL.
    #[arg(long, env = "TEMPOVOICE_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: url::Url,
    /// Base64 of 32 bytes that seals session cookies. Without it, a random key is used
    /// and everyone is signed out when the process stops; replicas must share one.
    #[arg(long, env = "TEMPOVOICE_DASHBOARD_SESSION_KEY", hide_env_values = true)]
    session_key: Option<String>,
    /// How long a sign-in lasts, in hours.
    #[arg(long, env = "TEMPOVOICE_DASHBOARD_SESSION_HOURS", default_value_t = dashboard::DEFAULT_SESSION_HOURS)]
    session_hours: i64,
    /// Users reach the dashboard over https only (behind TLS termination): HSTS on
    /// every response, posts only from an https origin, `Secure` cookies even on a
    /// loopback host. Without it a request forwarded with `X-Forwarded-Proto: https`
    /// counts as https, and cookies are `Secure` (`__Host-`) except on plain http to
    /// a loopback host.
    #[arg(long, env = "TEMPOVOICE_DASHBOARD_SECURE_COOKIES", default_value_t = false)]
    secure_cookies: bool,
    /// `text` or `json` logs.
    #[arg(long, env = "TEMPOVOICE_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_format == "json" {
        builder.json().init()
    } else {
        builder.init()
    }

    anyhow::ensure!((1..=24 * 30).contains(&args.session_hours), "TEMPOVOICE_DASHBOARD_SESSION_HOURS must be 1 to 720");
    let settings = DashboardSettings {
        session_key: args.session_key.map(SecretString::from),
        session_lifetime: time::Duration::hours(args.session_hours),
        secure_cookies: args.secure_cookies,
    };
    let dashboard = Dashboard::new(ControlPlane::http(args.api_url.clone()), &settings)
        .context("TEMPOVOICE_DASHBOARD_SESSION_KEY")?;
    let app = dashboard::router(dashboard).fallback(|| async { dashboard::not_found() });
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("bind {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, api = %args.api_url, "dashboard listening");
    // The browser's address goes with each API call, which counts failed sign-ins
    // against it.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await.context("serve")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
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
