//! The agent runtime: `agent-runtime` serves one agent's calls, configured by the
//! environment the deployer gave the task.

use agent_runtime::server::App;
use agent_runtime::settings::Settings;
use std::time::Duration;

/// When a worker thread runs out of work it waits this long before it sleeps on
/// the next event. Every call's socket gets a media message each 20 ms, so an idle
/// thread would otherwise be woken for each message of each call on its own; after
/// this pause it finds those that arrived meanwhile together. Any event waits at most
/// this long more, and only when the thread had nothing else to do.
const IDLE_COALESCE: Duration = Duration::from_millis(2);

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(|| std::thread::sleep(IDLE_COALESCE))
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let settings = serving::settings_or_exit("agent-runtime", Settings::from_env(|name| std::env::var(name).ok()));
    let format = if settings.json_logs { serving::logging::LogFormat::Json } else { serving::logging::LogFormat::Text };
    serving::logging::init(format, std::io::stderr);
    let app = App::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "agent runtime listening");
    app.run_until_stopped(serving::shutdown_signal()).await
}
