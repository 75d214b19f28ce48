use clap::Parser;
use control_plane::App;
use control_plane::cli::{Cli, Command};
use control_plane::settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let read = match command {
        Command::Serve => Settings::from_env(),
        // Operator commands touch only the database: they need no deployer settings.
        _ => Settings::from_lookup(|k| match k {
            "TEMPOVOICE_DEPLOYER" => Some("off".into()),
            _ => std::env::var(k).ok(),
        }),
    };
    let settings = serving::settings_or_exit("control-plane", read.map_err(|e| e.0));
    // Operator commands print JSON on stdout; their logs go to stderr.
    serving::logging::init(settings.log_format, std::io::stderr);
    match command {
        Command::Serve => App::build(settings).await?.run_until_stopped(serving::shutdown_signal()).await,
        command => control_plane::cli::run_operator_command(&settings, command).await,
    }
}
