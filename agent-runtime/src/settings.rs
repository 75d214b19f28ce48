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
//! | `TEMPOVOICE_PUBLIC_HOST` | required | the host Twilio calls (its load balancer's, set by the deployer): Twilio's signatures are checked over URLs with this host, never the request's `Host` or `X-Forwarded-Host`, and the stream URL uses it |
//! | `TWILIO_API_BASE` | `https://api.twilio.com` | Twilio REST base URL |
//! | `TEMPOVOICE_MAX_CALLS` | `50` | concurrent calls per task |
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
    pub public_host: String,
    pub twilio_api_base: String,
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
        let mut errors = Vec::new();
        let spec = match AgentSpec::from_env(&lookup) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.extend(e.0.iter().map(|e| format!("{}: {}", e.var, e.reason)));
                None
            }
        };
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let bucket = get("S3_BUCKET_NAME");
        if bucket.is_none() {
            errors.push("S3_BUCKET_NAME: missing (the agent's transcript bucket)".into());
        }
        let bucket_region = get("S3_BUCKET_REGION").or_else(|| get("AWS_REGION")).unwrap_or_else(|| "us-east-1".into());
        let listen_raw = get("TEMPOVOICE_LISTEN").unwrap_or_else(|| "0.0.0.0:8080".to_owned());
        let listen = match listen_raw.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.push(format!("TEMPOVOICE_LISTEN: {listen_raw:?} is not an address like 0.0.0.0:8080"));
                None
            }
        };
        let mut number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> u64 {
            match get(name) {
                None => default,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if range.contains(&n) => n,
                    _ => {
                        errors.push(format!("{name}: {v:?} is not a number in {}..={}", range.start(), range.end()));
                        default
                    }
                },
            }
        };
        let max_calls = number("TEMPOVOICE_MAX_CALLS", 50, 1..=100_000) as usize;
        let drain = Duration::from_secs(number("TEMPOVOICE_DRAIN_SECS", 20, 0..=3_600));
        let nova_rotate_after = Duration::from_secs(number("TEMPOVOICE_NOVA_ROTATE_SECS", 360, 5..=450));
        let end_of_turn = Duration::from_millis(number("TEMPOVOICE_END_OF_TURN_MS", 700, 100..=5_000));
        let spool_max_bytes = number("TEMPOVOICE_SPOOL_MAX_MB", 12_288, 1..=1_048_576) * 1024 * 1024;
        // A setting with two words: `yes` (true) or `no` (false), `default` when unset.
        let mut switch = |name: &str, yes: &str, no: &str, default: bool| match get(name) {
            None => default,
            Some(v) if v == yes => true,
            Some(v) if v == no => false,
            Some(v) => {
                errors.push(format!("{name}: {v:?} is not {yes} or {no}"));
                default
            }
        };
        let recognition = switch("TEMPOVOICE_ASR", "on", "off", true);
        let json_logs = switch("TEMPOVOICE_LOG_FORMAT", "json", "text", true);
        let webhooks_to_private = switch("TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES", "allow", "deny", false);
        let twilio_api_base = get("TWILIO_API_BASE").unwrap_or_else(|| "https://api.twilio.com".into());
        if url::Url::parse(&twilio_api_base).is_err() {
            errors.push(format!("TWILIO_API_BASE: {twilio_api_base:?} is not a URL"));
        }
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
        match (spec, bucket, listen) {
            (Some(spec), Some(bucket), Some(listen)) if errors.is_empty() => Ok(Self {
                spec,
                bucket,
                bucket_region,
                listen,
                public_host,
                twilio_api_base,
                max_calls,
                drain,
                spool_dir,
                spool_max_bytes,
                local,
                end_of_turn,
                json_logs,
                extra_ca_pem,
                openai_realtime_url: get("OPENAI_REALTIME_URL"),
                bedrock_endpoint: get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
                nova_rotate_after,
                webhooks_to_private,
            }),
            _ => Err(errors),
        }
    }
}
