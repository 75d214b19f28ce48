//! The dashboard served alone, in front of a control plane reached over HTTP: the
//! `dashboard` binary. (The control plane serves the same dashboard at `/`.) Settings
//! come from the environment, read once at start-up with every error reported at
//! once. `TEMPOVOICE_DASHBOARD_LISTEN` was renamed `TEMPOVOICE_LISTEN` (one name for a
//! listen address in every program); the old name still set is refused, naming the
//! new one.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TEMPOVOICE_LISTEN` | `127.0.0.1:3000` | address to listen on |
//! | `TEMPOVOICE_API_URL` | `http://127.0.0.1:8080` | the control-plane API's base URL |
//! | `TEMPOVOICE_DASHBOARD_SESSION_KEY` | random per process | base64 of 32 bytes sealing session cookies; replicas must share one, and without it everyone is signed out at restart |
//! | `TEMPOVOICE_DASHBOARD_SESSION_HOURS` | `12` | how long a sign-in lasts (1–720) |
//! | `TEMPOVOICE_DASHBOARD_SECURE_COOKIES` | `false` | `true`: users reach the dashboard over https only (see [`DashboardSettings`]) |
//! | `TEMPOVOICE_HEADER_TIMEOUT_SECS` | `10` | a client must send a request's headers within this, or is disconnected (1–300) |
//! | `TEMPOVOICE_IDLE_TIMEOUT_SECS` | `4010` | how long a kept-alive connection may wait for its next request; keep it above the load balancer's idle timeout (an ALB's is at most 4000 s), or the balancer answers 502 when it reuses a connection the server has just closed (1–86400) |
//! | `TEMPOVOICE_REQUEST_TIMEOUT_SECS` | `60` | a request is answered 408 after this (1–3600) |
//! | `TEMPOVOICE_MAX_CONNECTIONS` | `10000` | open connections at most; more wait in the listen backlog |
//! | `TEMPOVOICE_SHUTDOWN_GRACE_SECS` | `20` | how long in-flight requests may take after SIGTERM (0–3600) |
//! | `TEMPOVOICE_LOG_FORMAT` | `text` | `text` or `json` |
//! | `RUST_LOG` | `info` | log filter |

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use serving::logging::LogFormat;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::ControlPlane;
use crate::{Dashboard, DashboardSettings};

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub api_url: url::Url,
    pub dashboard: DashboardSettings,
    /// Header-read and request timeouts, and the connection limit.
    pub limits: serving::Limits,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
}

impl Settings {
    /// Reads settings through `lookup` (the environment, or a map in tests); on
    /// failure, every error.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut reader = serving::Settings::new(lookup);
        reader.renamed("TEMPOVOICE_DASHBOARD_LISTEN", "TEMPOVOICE_LISTEN");
        let listen = reader.address("TEMPOVOICE_LISTEN", SocketAddr::from(([127, 0, 0, 1], 3000)));
        let default_api_url = url::Url::parse("http://127.0.0.1:8080").expect("a valid URL");
        let api_url = match reader.get("TEMPOVOICE_API_URL") {
            None => default_api_url,
            Some(raw) => match url::Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => url,
                _ => {
                    reader.error(format!("TEMPOVOICE_API_URL: {raw:?} is not an http or https URL"));
                    default_api_url
                }
            },
        };
        let dashboard = DashboardSettings::read(&mut reader);
        let limits = reader.limits(serving::Limits::default());
        let shutdown_grace = Duration::from_secs(reader.number("TEMPOVOICE_SHUTDOWN_GRACE_SECS", 20, 0..=3600));
        let log_format = reader.log_format(LogFormat::Text);
        reader.finish()?;
        Ok(Self { listen, api_url, dashboard, limits, shutdown_grace, log_format })
    }
}

/// The standalone dashboard: a bound listener and the routes behind it.
pub struct App {
    listener: TcpListener,
    router: Router,
    settings: Settings,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let api = ControlPlane::http(settings.api_url.clone());
        let dashboard = Dashboard::new(api, &settings.dashboard).context("TEMPOVOICE_DASHBOARD_SESSION_KEY")?;
        let router = crate::router(dashboard).fallback(|| async { crate::not_found() });
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listen on {} (TEMPOVOICE_LISTEN)", settings.listen))?;
        Ok(App { listener, router, settings })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves (`serving::shutdown_signal()` in the binary),
    /// then stops accepting and lets in-flight requests finish within the grace
    /// period, aborting what is left after it.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let App { listener, router, settings } = self;
        tracing::info!(addr = %listener.local_addr()?, api = %settings.api_url, "dashboard listening");
        let stop = CancellationToken::new();
        // `serve` gives each request the browser's address (`ConnectInfo`), which goes
        // with each API call: the API counts failed sign-ins against it.
        let mut server =
            tokio::spawn(serving::serve(listener, router, settings.limits, stop.clone().cancelled_owned()));
        tokio::select! {
            () = shutdown => stop.cancel(),
            // Only `stop` ends the server: this is its task failing.
            ended = &mut server => return ended.context("server task")?.context("serve"),
        }
        tracing::info!(grace_secs = settings.shutdown_grace.as_secs(), "shutting down: draining in-flight requests");
        match tokio::time::timeout(settings.shutdown_grace, &mut server).await {
            Ok(joined) => joined.context("server task")?.context("serve")?,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within the grace period; aborting them");
                server.abort();
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Settings, Vec<String>> {
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_run_locally() {
        let s = from(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.api_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.limits, serving::Limits::default());
        assert_eq!(s.shutdown_grace, Duration::from_secs(20));
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.dashboard.session_lifetime, time::Duration::hours(crate::DEFAULT_SESSION_HOURS));
    }

    #[test]
    fn every_bad_variable_is_named_and_the_old_listen_name_is_refused() {
        let errors = from(&[
            ("TEMPOVOICE_DASHBOARD_LISTEN", "0.0.0.0:3000"),
            ("TEMPOVOICE_LISTEN", "localhost"),
            ("TEMPOVOICE_API_URL", "ftp://api"),
            ("TEMPOVOICE_DASHBOARD_SESSION_KEY", "short"),
            ("TEMPOVOICE_DASHBOARD_SESSION_HOURS", "0"),
            ("TEMPOVOICE_DASHBOARD_SECURE_COOKIES", "yes"),
            ("TEMPOVOICE_MAX_CONNECTIONS", "0"),
            ("TEMPOVOICE_SHUTDOWN_GRACE_SECS", "forever"),
            ("TEMPOVOICE_LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 9, "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("TEMPOVOICE_DASHBOARD_LISTEN was renamed TEMPOVOICE_LISTEN")));
        for name in [
            "TEMPOVOICE_LISTEN:",
            "TEMPOVOICE_API_URL",
            "TEMPOVOICE_DASHBOARD_SESSION_KEY",
            "TEMPOVOICE_DASHBOARD_SESSION_HOURS",
            "TEMPOVOICE_DASHBOARD_SECURE_COOKIES",
            "TEMPOVOICE_MAX_CONNECTIONS",
            "TEMPOVOICE_SHUTDOWN_GRACE_SECS",
            "TEMPOVOICE_LOG_FORMAT",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(name)), "{name}: {errors:#?}");
        }
    }
}
