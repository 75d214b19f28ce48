//! Runtime settings, from the environment the deployer gives the task: the agent
//! ([`AgentSpec::from_env`], secrets included), the transcript bucket, and the
//! runtime's own knobs, all with defaults that run locally. Every missing or invalid
//! variable is reported at once.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | agent variables (`AGENT_ID`, …, `TWILIO_AUTH_TOKEN`) | — | see `agent_spec::env` |
//! | `S3_BUCKET_NAME` | required | the agent's transcript bucket |
//! | `S3_BUCKET_REGION` | `AWS_REGION` | its region |
//! | `TEMPOVOICE_LISTEN` | `0.0.0.0:8080` | address to listen on |
//! | `TEMPOVOICE_HEADER_TIMEOUT_SECS` | `10` | a client must send a request's headers within this, or is disconnected |
//! | `TEMPOVOICE_IDLE_TIMEOUT_SECS` | `4010` | how long a kept-alive connection may wait for its next request; keep it above the load balancer's idle timeout (an ALB's is at most 4000 s), or the balancer answers 502 when it reuses a connection the server has just closed (1–86400) |
//! | `TEMPOVOICE_REQUEST_TIMEOUT_SECS` | `60` | a request (not a WebSocket once upgraded) is answered 408 after this |
//! | `TEMPOVOICE_MAX_CONNECTIONS` | `10000` | open connections at most; more wait in the listen backlog |
//! | `TEMPOVOICE_PUBLIC_HOST` | required | the host Twilio calls (its load balancer's, set by the deployer): Twilio's signatures are checked over URLs with this host, never the request's `Host` or `X-Forwarded-Host`, and the stream URL uses it |
//! | `TWILIO_API_BASE` | `https://api.twilio.com` | Twilio REST base URL |
//! | `ECS_AGENT_URI` | set by ECS | the container agent's endpoint: while the task has live calls it holds scale-in protection there; unset, none is asked for |
//! | `TEMPOVOICE_PROTECTION_REFRESH_SECS` | half the protection's expiry | how often protection is renewed while calls go on (1–86400) |
//! | `TEMPOVOICE_EMF_SECS` | `60` | how often the task's metrics go to stdout in CloudWatch's embedded metric format (0: never; 1–3600) |
//! | `TEMPOVOICE_CONTROL_PLANE_URL` | none (set by the deployer) | the control plane, which schedules the callbacks callers ask for; without it `schedule_callback` only notifies the agent's scheduling webhook |
//! | `TEMPOVOICE_MAX_CALLS` | the agent's `sizing.calls_per_task` | concurrent calls per task |
//! | `TEMPOVOICE_DRAIN_SECS` | `20` | on SIGTERM, how long live calls may go on (keep under the ECS stop timeout, 30 s by default) |
//! | `TEMPOVOICE_SPOOL_DIR` | `{tmp}/tempovoice-spool` | recordings during calls, and artifacts S3 did not take |
//! | `TEMPOVOICE_SPOOL_MAX_MB` | `12288` | what the spool may hold (MiB): at the cap a call's recording stops and the call goes on; its transcript and metadata are always kept. The default fits Fargate's 20 GiB of ephemeral storage with the image |
//! | `TEMPOVOICE_ASR` | `on` | `off`: the local pipeline does not recognize speech |
//! | `POCKETSPHINX_MODEL_DIR` | `/usr/share/pocketsphinx/model/en-us` | recognizer model |
//! | `ESPEAK_NG` | `espeak-ng` | synthesizer program |
//! | `TEMPOVOICE_END_OF_TURN_MS` | `700` | caller silence that ends a turn (the runtime's own detector, which runs for every provider) |
//! | `TEMPOVOICE_LOG_FORMAT` | `json` | `json` or `text` |
//! | `TEMPOVOICE_EXTRA_CA_FILE` | none | PEM certificates trusted besides the public roots (webhooks on a private CA, a local speech provider) |
//! | `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` | the SDK's | Bedrock Runtime's endpoint (the SDK's standard variable) |
//! | `TEMPOVOICE_NOVA_ROTATE_SECS` | `360` | a Nova Sonic stream is replaced after this long (Nova ends one at 8 minutes) |
//! | `OPENAI_REALTIME_URL` | `wss://api.openai.com/v1/realtime?model={voice.model}` | OpenAI Realtime's WebSocket (`ws://` or `wss://`) |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agent_spec::AgentSpec;

use crate::speech::local::LocalSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub spec: AgentSpec,
    pub bucket: String,
    pub bucket_region: String,
    pub listen: SocketAddr,
    /// Header-read and request timeouts, and the connection limit.
    pub limits: serving::Limits,
    pub public_host: String,
    pub twilio_api_base: String,
    /// `TEMPOVOICE_CONTROL_PLANE_URL`, without a trailing slash.
    pub control_plane_url: Option<String>,
    /// `ECS_AGENT_URI`: where the task's scale-in protection is set.
    pub ecs_agent_uri: Option<String>,
    /// `TEMPOVOICE_PROTECTION_REFRESH_SECS`.
    pub protection_refresh: Option<Duration>,
    /// `TEMPOVOICE_EMF_SECS` (`None`: 0, no EMF lines).
    pub emf_every: Option<Duration>,
    pub max_calls: usize,
    pub drain: Duration,
    pub spool_dir: PathBuf,
    /// `TEMPOVOICE_SPOOL_MAX_MB`, in bytes.
    pub spool_max_bytes: u64,
    pub local: LocalSettings,
    /// Caller silence that ends a turn.
    pub end_of_turn: Duration,
    pub json_logs: bool,
    /// Extra trusted root certificates (PEM) for outgoing HTTPS.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// OpenAI Realtime's WebSocket URL, when not the official one.
    pub openai_realtime_url: Option<String>,
    /// Bedrock Runtime's endpoint, when not the SDK's.
    pub bedrock_endpoint: Option<String>,
    /// When a Nova Sonic stream is replaced.
    pub nova_rotate_after: Duration,
    /// Webhooks may go to private, loopback and link-local addresses
    /// (`TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES=allow`); by default only to public ones.
    pub webhooks_to_private: bool,
}

impl Settings {
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut reader = serving::Settings::new(&lookup);
        let spec = match AgentSpec::from_env(&lookup) {
            Ok(s) => Some(s),
            Err(e) => {
                for e in e.0.iter() {
                    reader.error(format!("{}: {}", e.var, e.reason));
                }
                None
            }
        };
        let bucket = reader.get("S3_BUCKET_NAME");
        if bucket.is_none() {
            reader.error("S3_BUCKET_NAME: missing (the agent's transcript bucket)");
        }
        let bucket_region =
            reader.get("S3_BUCKET_REGION").or_else(|| reader.get("AWS_REGION")).unwrap_or_else(|| "us-east-1".into());
        let listen = reader.address("TEMPOVOICE_LISTEN", SocketAddr::from(([0, 0, 0, 0], 8080)));
        let limits = reader.limits(serving::Limits::default());
        // The agent's own per-task limit, which its autoscaling target is set from;
        // the variable overrides it (load tests).
        let agent_limit = spec
            .as_ref()
            .map_or(agent_spec::config::Sizing::DEFAULT_CALLS_PER_TASK, |s| s.config.sizing.calls_per_task);
        let max_calls = reader.number("TEMPOVOICE_MAX_CALLS", agent_limit.into(), 1..=100_000) as usize;
        let drain = Duration::from_secs(reader.number("TEMPOVOICE_DRAIN_SECS", 20, 0..=3_600));
        let nova_rotate_after = Duration::from_secs(reader.number("TEMPOVOICE_NOVA_ROTATE_SECS", 360, 5..=450));
        let end_of_turn = Duration::from_millis(reader.number("TEMPOVOICE_END_OF_TURN_MS", 700, 100..=5_000));
        let spool_max_bytes = reader.number("TEMPOVOICE_SPOOL_MAX_MB", 12_288, 1..=1_048_576) * 1024 * 1024;
        let recognition = reader.switch("TEMPOVOICE_ASR", "on", "off", true);
        let json_logs = reader.log_format(serving::logging::LogFormat::Json) == serving::logging::LogFormat::Json;
        let webhooks_to_private = reader.switch("TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES", "allow", "deny", false);
        let get = |name: &str| reader.get(name);
        let mut errors = Vec::new();
        let twilio_api_base = get("TWILIO_API_BASE").unwrap_or_else(|| "https://api.twilio.com".into());
        if url::Url::parse(&twilio_api_base).is_err() {
            errors.push(format!("TWILIO_API_BASE: {twilio_api_base:?} is not a URL"));
        }
        let control_plane_url =
            get("TEMPOVOICE_CONTROL_PLANE_URL").map(|u| u.trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        if let Some(u) = &control_plane_url
            && !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.query().is_none())
        {
            errors.push(format!("TEMPOVOICE_CONTROL_PLANE_URL: {u:?} is not an http(s) URL without a query"));
        }
        let ecs_agent_uri = get("ECS_AGENT_URI").filter(|u| !u.is_empty());
        if let Some(u) = &ecs_agent_uri
            && url::Url::parse(u).is_err()
        {
            errors.push(format!("ECS_AGENT_URI: {u:?} is not a URL"));
        }
        let protection_refresh = match get("TEMPOVOICE_PROTECTION_REFRESH_SECS") {
            None => None,
            Some(raw) => {
                match raw.parse::<u64>() {
                    Ok(n) if (1..=86_400).contains(&n) => Some(Duration::from_secs(n)),
                    _ => {
                        errors.push(format!("TEMPOVOICE_PROTECTION_REFRESH_SECS: {raw:?} is not a whole number of seconds from 1 to 86400"));
                        None
                    }
                }
            }
        };
        let emf_every = match get("TEMPOVOICE_EMF_SECS").as_deref().map(str::parse::<u64>) {
            None => Some(Duration::from_secs(60)),
            Some(Ok(0)) => None,
            Some(Ok(n)) if n <= 3600 => Some(Duration::from_secs(n)),
            Some(_) => {
                errors.push("TEMPOVOICE_EMF_SECS must be a whole number of seconds from 0 (off) to 3600".to_owned());
                None
            }
        };
        let public_host = get("TEMPOVOICE_PUBLIC_HOST").unwrap_or_default();
        if public_host.is_empty() {
            errors.push(
                "TEMPOVOICE_PUBLIC_HOST is required: the host Twilio calls, which its signatures are checked \
                 against"
                    .to_owned(),
            );
        } else if public_host.contains(['/', ' ', '@', '?', '#']) {
            errors.push(format!(
                "TEMPOVOICE_PUBLIC_HOST: {public_host:?} must be a host name (with an optional port), no scheme or path"
            ));
        }
        let extra_ca_pem = match get("TEMPOVOICE_EXTRA_CA_FILE") {
            None => None,
            Some(path) => match std::fs::read(&path) {
                Ok(pem) if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) => Some(pem),
                Ok(_) => {
                    errors.push(format!("TEMPOVOICE_EXTRA_CA_FILE: {path} holds no PEM certificate"));
                    None
                }
                Err(e) => {
                    errors.push(format!("TEMPOVOICE_EXTRA_CA_FILE: cannot read {path}: {e}"));
                    None
                }
            },
        };
        let spool_dir = get("TEMPOVOICE_SPOOL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("tempovoice-spool"));
        let local = LocalSettings {
            recognition,
            model_dir: get("POCKETSPHINX_MODEL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::speech::recognizer::DEFAULT_MODEL_DIR)),
            espeak: get("ESPEAK_NG").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("espeak-ng")),
            work_dir: spool_dir.join("model"),
        };
        let openai_realtime_url = get("OPENAI_REALTIME_URL");
        let bedrock_endpoint = get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME");
        for e in errors {
            reader.error(e);
        }
        let finished = reader.finish();
        match (spec, bucket, finished) {
            (Some(spec), Some(bucket), Ok(())) => Ok(Self {
                spec,
                bucket,
                bucket_region,
                listen,
                limits,
                public_host,
                twilio_api_base,
                control_plane_url,
                ecs_agent_uri,
                protection_refresh,
                emf_every,
                max_calls,
                drain,
                spool_dir,
                spool_max_bytes,
                local,
                end_of_turn,
                json_logs,
                extra_ca_pem,
                openai_realtime_url,
                bedrock_endpoint,
                nova_rotate_after,
                webhooks_to_private,
            }),
            (_, _, finished) => Err(finished.err().unwrap_or_default()),
        }
    }
}
