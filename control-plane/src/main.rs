use clap::Parser;
use control_plane::cli::{Cli, Command};
use control_plane::settings::Settings;
use control_plane::{App, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    // Operator commands print JSON on stdout; their logs go to stderr.
    telemetry::init(settings.log_format, std::io::stderr);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => App::build(settings).await?.run_until_stopped().await,
        command => control_plane::cli::run_operator_command(&settings, command).await,
    }
}
