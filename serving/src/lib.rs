//! How every TempoVoice server starts and stops, written once:
//!
//! - [`logging`]: `tracing` with `RUST_LOG` (default `info`), as text or as JSON lines
//!   of one shape everywhere (the event's fields at the top level, the current span's
//!   fields under `span`);
//! - [`shutdown_signal`]: SIGTERM (ECS stopping a task) or Ctrl-C;
//! - [`Settings`]: reads variables and collects every error before failing, so a
//!   misconfigured process names all its problems at once ([`settings_or_exit`]);
//! - [`serve`]: an HTTP/1.1 server with a header-read timeout (a client that sends
//!   its headers slowly is dropped), a request timeout, a connection limit,
//!   `TCP_NODELAY`, upgrades (WebSockets), the peer address for axum's `ConnectInfo`,
//!   and a graceful stop.

pub mod logging;
#[cfg(feature = "http")]
mod serve;
mod settings;

#[cfg(feature = "http")]
pub use serve::{Limits, serve};
pub use settings::Settings;

/// The settings read, or the process ends: every error on stderr, one a line, and
/// exit status 2.
pub fn settings_or_exit<T>(program: &str, read: Result<T, Vec<String>>) -> T {
    read.unwrap_or_else(|errors| {
        eprintln!("{program} cannot start; fix these settings:");
        for e in errors {
            eprintln!("  {e}");
        }
        std::process::exit(2);
    })
}

/// SIGTERM (ECS stopping the task) or Ctrl-C.
pub async fn shutdown_signal() {
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
        () = ctrl_c => {}
        () = term => {}
    }
}
