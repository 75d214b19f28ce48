use clap::Parser;
use control_plane::cli::{Cli, Command};
use control_plane::settings::Settings;
use control_plane::{App, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let settings = match command {
        Command::Serve => Settings::from_env()?,
        // Operator commands touch only the database: they need no deployer settings.
        _ => Settings::from_lookup(|k| match k {
            "TEMPOVOICE_DEPLOYER" => Some("off".into()),
            _ => std::env::var(k).ok(),
        })?,
    };
    // Operator commands print JSON on stdout; their logs go to stderr.
    telemetry::init(settings.log_format, std::io::stderr);
    match command {
        Command::Serve => App::build(settings).await?.run_until_stopped().await,
        command => control_plane::cli::run_operator_command(&settings, command).await,
    }
}
