//! `dashboard`: serves the dashboard alone, as a client of a control plane reached
//! over HTTP (the control-plane binary also serves it, at `/`). Its settings are
//! listed in `dashboard::standalone`.

use clap::Parser;
use dashboard::standalone::{App, Settings};

#[derive(Parser)]
#[command(
    version,
    about = "TempoVoice dashboard: the web UI, as a client of the control-plane API",
    after_help = "Other settings come from the environment: TEMPOVOICE_DASHBOARD_SESSION_KEY, \
                  TEMPOVOICE_DASHBOARD_SESSION_HOURS, TEMPOVOICE_DASHBOARD_SECURE_COOKIES, \
                  TEMPOVOICE_HEADER_TIMEOUT_SECS, TEMPOVOICE_IDLE_TIMEOUT_SECS, TEMPOVOICE_REQUEST_TIMEOUT_SECS, \
                  TEMPOVOICE_MAX_CONNECTIONS, \
                  TEMPOVOICE_SHUTDOWN_GRACE_SECS, TEMPOVOICE_LOG_FORMAT (docs/dashboard.md)."
)]
struct Args {
    /// Address to listen on [env: TEMPOVOICE_LISTEN; default 127.0.0.1:3000]
    #[arg(long)]
    listen: Option<String>,
    /// The control-plane API's base URL [env: TEMPOVOICE_API_URL; default http://127.0.0.1:8080]
    #[arg(long)]
    api_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A flag stands in for its variable.
    let flag = |name: &str| match name {
        "TEMPOVOICE_LISTEN" => args.listen.clone(),
        "TEMPOVOICE_API_URL" => args.api_url.clone(),
        _ => None,
    };
    let settings = serving::settings_or_exit(
        "dashboard",
        Settings::from_lookup(|name| flag(name).or_else(|| std::env::var(name).ok())),
    );
    serving::logging::init(settings.log_format, std::io::stderr);
    App::build(settings).await?.run_until_stopped(serving::shutdown_signal()).await
}
