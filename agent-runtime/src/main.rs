//! The agent runtime: `agent-runtime` serves one agent's calls, configured by the
//! environment the deployer gave the task.

use agent_runtime::server::App;
use agent_runtime::settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = match Settings::from_env(|name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("agent-runtime cannot start; fix these environment variables:");
            for e in errors {
                eprintln!("  {e}");
            }
            std::process::exit(2);
        }
    };
    agent_runtime::telemetry::init(settings.json_logs);
    let app = App::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "agent runtime listening");
    app.run_until_stopped(agent_runtime::telemetry::shutdown_signal()).await
}
