//! `speechsim`: a fake speech provider on 127.0.0.1, speaking the real wire protocol.
//!
//! ```text
//! speechsim openai --listen 127.0.0.1:9100 --api-key sk-local --agent agent.json
//! speechsim nova --listen 127.0.0.1:9200 --agent agent.json --ca-out nova-ca.pem
//! ```
//!
//! `--agent` is an agent as the control plane's API takes it when creating one
//! (`POST /v1/agents`); its knowledge base is what the fake answers from. Point the runtime at it with
//! `OPENAI_REALTIME_URL=ws://127.0.0.1:9100/v1/realtime?model=gpt-realtime`, or for
//! Nova with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=https://127.0.0.1:9200` and
//! `TEMPOVOICE_EXTRA_CA_FILE=nova-ca.pem` (the fake's self-signed certificate); the
//! runtime signs with its usual AWS credentials, whose access key id the fake checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use agent_runtime::speech::local::LocalSettings;
use agent_runtime::speechsim::nova::{NovaFake, NovaFakeOptions};
use agent_runtime::speechsim::openai::{OpenAiFake, OpenAiFakeOptions};
use agent_spec::AgentConfig;
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
    /// Amazon Nova Sonic (Bedrock Runtime's bidirectional stream, HTTP/2 over TLS).
    Nova {
        #[arg(long, default_value = "127.0.0.1:9200")]
        listen: SocketAddr,
        /// The access key id requests must be signed with.
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key_id: String,
        /// The agent (JSON, as the API takes it) whose knowledge base answers; its
        /// `integrations.aws_region` is the region requests must be signed for.
        #[arg(long)]
        agent: PathBuf,
        /// Where to write the fake's certificate, for `TEMPOVOICE_EXTRA_CA_FILE`.
        #[arg(long)]
        ca_out: PathBuf,
        /// End each stream after this many seconds (Nova: 480).
        #[arg(long, default_value_t = 480)]
        stream_limit_secs: u64,
    },
}

fn agent_config(path: &Path) -> anyhow::Result<AgentConfig> {
    let raw = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let draft: AgentDraft = serde_json::from_slice(&raw).context("--agent is not an agent's JSON")?;
    match draft.validate(None) {
        Ok((config, _)) => Ok(config),
        Err(errors) => {
            let lines: Vec<String> = errors.fields().iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
            anyhow::bail!("--agent {} is not a valid agent:\n{}", path.display(), lines.join("\n"))
        }
    }
}

fn local_settings() -> LocalSettings {
    LocalSettings {
        recognition: true,
        model_dir: std::env::var_os("POCKETSPHINX_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(agent_runtime::speech::recognizer::DEFAULT_MODEL_DIR)),
        espeak: std::env::var_os("ESPEAK_NG").map(PathBuf::from).unwrap_or_else(|| "espeak-ng".into()),
        work_dir: std::env::temp_dir().join(format!("speechsim-{}", std::process::id())),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    serving::logging::init(serving::logging::LogFormat::Text, std::io::stderr);
    match args.provider {
        Provider::Openai { listen, api_key, agent, late_transcripts } => {
            let config = agent_config(&agent)?;
            let brain = agent_runtime::speechsim::brain(&config, &local_settings())?;
            let fake = OpenAiFake::start(
                listen,
                OpenAiFakeOptions {
                    api_key,
                    brain,
                    late_transcripts,
                    drop_after_responses: None,
                    hearing: Default::default(),
                },
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
        Provider::Nova { listen, access_key_id, agent, ca_out, stream_limit_secs } => {
            let config = agent_config(&agent)?;
            let brain = agent_runtime::speechsim::brain(&config, &local_settings())?;
            let options = NovaFakeOptions {
                access_key_id,
                region: config.integrations.aws_region.as_str().to_owned(),
                brain,
                stream_limit: Some(std::time::Duration::from_secs(stream_limit_secs)),
                hearing: Default::default(),
            };
            let fake = NovaFake::start(listen, options).await?;
            std::fs::write(&ca_out, fake.ca_pem()).with_context(|| format!("write {}", ca_out.display()))?;
            println!(
                "speechsim nova listening: AWS_ENDPOINT_URL_BEDROCK_RUNTIME={} TEMPOVOICE_EXTRA_CA_FILE={}",
                fake.endpoint(),
                ca_out.display()
            );
            tokio::signal::ctrl_c().await?;
            let log = fake.log();
            println!("streams: {}, protocol violations: {}", log.streams, log.violations.len());
            for v in &log.violations {
                println!("  violation: {v}");
            }
        }
    }
    Ok(())
}
