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

/// SIGTERM (ECS stopping the task) or Ctrl-C. The handlers are installed when this
/// is called, not when the future is first polled: a signal that arrives while the
/// server is still starting (before it awaits the future) is not lost, and does not
/// kill the process with the default disposition. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
