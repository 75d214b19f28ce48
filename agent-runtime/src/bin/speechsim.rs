//! `speechsim`: a fake speech provider on 127.0.0.1, speaking the real wire protocol.
//!
//! ```text
//! speechsim openai --listen 127.0.0.1:9100 --api-key sk-local --agent agent.json
//! ```
//!
//! `--agent` is an agent as the control plane's API takes it when creating one
//! (`POST /v1/agents`); its knowledge base is what the fake answers from. Point the runtime at it with
//! `OPENAI_REALTIME_URL=ws://127.0.0.1:9100/v1/realtime?model=gpt-realtime`.

use std::net::SocketAddr;
use std::path::PathBuf;

use agent_runtime::speech::local::LocalSettings;
use agent_runtime::speechsim::openai::{OpenAiFake, OpenAiFakeOptions};
use agent_spec::draft::AgentDraft;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "Fake cloud speech providers that speak their real wire protocols")]
struct Args {
    #[command(subcommand)]
    provider: Provider,
}

#[derive(Subcommand, Debug)]
enum Provider {
    /// OpenAI Realtime (GA) over WebSocket.
    Openai {
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// The bearer key clients must send.
        #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
        api_key: String,
        /// The agent (JSON, as the API takes it) whose knowledge base answers.
        #[arg(long)]
        agent: PathBuf,
        /// Send caller transcripts after the reply's first audio.
        #[arg(long)]
        late_transcripts: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    agent_runtime::telemetry::init(false);
    match args.provider {
        Provider::Openai { listen, api_key, agent, late_transcripts } => {
            let raw = std::fs::read(&agent).with_context(|| format!("read {}", agent.display()))?;
            let draft: AgentDraft = serde_json::from_slice(&raw).context("--agent is not an agent's JSON")?;
            let config = match draft.validate(None) {
                Ok((config, _)) => config,
                Err(errors) => {
                    let lines: Vec<String> =
                        errors.fields().iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
                    anyhow::bail!("--agent {} is not a valid agent:\n{}", agent.display(), lines.join("\n"));
                }
            };
            let work = std::env::temp_dir().join(format!("speechsim-{}", std::process::id()));
            let settings = LocalSettings {
                recognition: true,
                model_dir: std::env::var_os("POCKETSPHINX_MODEL_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(agent_runtime::speech::recognizer::DEFAULT_MODEL_DIR)),
                espeak: std::env::var_os("ESPEAK_NG").map(PathBuf::from).unwrap_or_else(|| "espeak-ng".into()),
                work_dir: work,
            };
            let brain = agent_runtime::speechsim::brain(&config, &settings)?;
            let fake = OpenAiFake::start(
                listen,
                OpenAiFakeOptions { api_key, brain, late_transcripts, drop_after_responses: None },
            )
            .await?;
            println!("speechsim openai listening: OPENAI_REALTIME_URL={}", fake.url());
            tokio::signal::ctrl_c().await?;
            let log = fake.log();
            println!("sessions: {}, protocol violations: {}", log.sessions, log.violations.len());
            for v in &log.violations {
                println!("  violation: {v}");
            }
        }
    }
    Ok(())
}
