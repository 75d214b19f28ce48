//! Typed settings, read once at start-up from the environment through
//! `serving::Settings`, with defaults that run locally. Every missing or invalid
//! variable is reported at once, by name. `TEMPOVOICE_BIND` and
//! `TEMPOVOICE_ADMIN_BIND` were renamed `TEMPOVOICE_LISTEN` and
//! `TEMPOVOICE_ADMIN_LISTEN` (one name for a listen address in every program); an old
//! name still set is refused, naming the new one.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TEMPOVOICE_LISTEN` | `127.0.0.1:8080` | address the API listens on |
//! | `TEMPOVOICE_ADMIN_LISTEN` | unset: the admin API is on `TEMPOVOICE_LISTEN` | an address of its own for the admin API (`/v1/admin/*`, with `/health`), e.g. one only the operator's network reaches; the main address then answers 404 there |
//! | `TEMPOVOICE_HEADER_TIMEOUT_SECS` | `10` | a client must send a request's headers within this, or is disconnected (1–300) |
//! | `TEMPOVOICE_IDLE_TIMEOUT_SECS` | `4010` | how long a kept-alive connection may wait for its next request; keep it above the load balancer's idle timeout (an ALB's is at most 4000 s), or the balancer answers 502 when it reuses a connection the server has just closed (1–86400) |
//! | `TEMPOVOICE_REQUEST_TIMEOUT_SECS` | `60` | a request is answered 408 after this (1–3600) |
//! | `TEMPOVOICE_MAX_CONNECTIONS` | `10000` | open connections at most, on each address; more wait in the listen backlog |
//! | `TEMPOVOICE_DATA_DIR` | `./data` | local state: SQLite file, generated secrets key |
//! | `DATABASE_URL` | `sqlite://{data dir}/tempovoice.db` | `sqlite:` or `postgres://` URL |
//! | `TEMPOVOICE_DB_MAX_CONNECTIONS` | `8` | pool size |
//! | `TEMPOVOICE_SECRETS_KEY` | generated into the data dir (SQLite only) | base64 of 32 bytes; encrypts agent secrets at rest |
//! | `TEMPOVOICE_ADMIN_TOKEN` | unset: admin API disabled | bearer token for `/v1/admin/*` (at least 32 characters) |
//! | `TEMPOVOICE_LOG_FORMAT` | `text` | `text` or `json` |
//! | `TEMPOVOICE_SHUTDOWN_GRACE_SECS` | `20` | how long in-flight requests may take after SIGTERM (0–3600) |
//! | `TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS` | `60` | failed authentications (API key, session token or admin token) one client address may make per window before it is answered 429 with `Retry-After` (1–100000) |
//! | `TEMPOVOICE_AUTH_FAILURES_PER_KEY` | `30` | failed authentications with one API key id (`tvk_{keyId}_…`), from any address, per window (1–100000) |
//! | `TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS` | `60` | the window those limits refill over, evenly (1–86400) |
//! | `TEMPOVOICE_TRUSTED_PROXY` | `false` | `true` when every request comes through a load balancer that appends the client's address to `X-Forwarded-For` (the ALB): the rightmost entry is then the client address failed authentications are counted against; `false`: the socket peer, and `X-Forwarded-For` is ignored (a client could write anything in it) |
//! | `TEMPOVOICE_LISTENERS` | none | ALB listeners agents are placed on, one per ALB, comma-separated: `listenerArn[=capacity][@publicHost]`; capacity 1–100, default 95; the public host is the one that ALB answers Twilio on (required for each listener when there are several) |
//! | `TEMPOVOICE_TARGETS_PER_ALB` | `1000` | the account's quota of targets per Application Load Balancer; each agent counts its tasks × 2 (a rolling deploy doubles them) |
//! | `TEMPOVOICE_TARGET_GROUP_QUOTA` | `3000` | the account's quota of target groups per Region (one per agent) |
//! | `TEMPOVOICE_TENANT_MAX_AGENTS` | `100` | each tenant's quota of agents (the admin API and CLI override it per tenant) |
//! | `TEMPOVOICE_TENANT_MAX_CPU_UNITS` | `65536` | each tenant's quota of task CPU units × desired count over its agents (1024 = 1 vCPU; the default is 64 vCPU) |
//! | `TEMPOVOICE_TENANT_MAX_LISTENER_SLOTS` | `100` | each tenant's quota of listener slots (deployed agents) |
//! | `TEMPOVOICE_TENANT_MAX_KNOWLEDGE_BYTES` | `20971520` | each tenant's quota of knowledge-base bytes over its agents (20 MiB) |
//! | `TEMPOVOICE_DEPLOYER` | `in-process` | how agents are deployed: `in-process` (the deployer library, in this process), `lambda` (invoke the deployer Lambda), or `off` (store agents only) |
//! | `DEPLOYER_LAMBDA_FUNCTION` | required with `lambda` | name or ARN of the deployer Lambda |
//! | `TEMPOVOICE_TWILIO_API_BASE` | `https://api.twilio.com` | Twilio's REST API, where agents' numbers are pointed at them (a local Twilio in tests); `off`: numbers are not pointed (a local run, whose voice URLs lead nowhere), and each deployment says so |
//! | `TEMPOVOICE_PUBLIC_URL` | none | the URL Twilio reaches this control plane at (e.g. `https://tempovoice.example.com`): outbound calls report their progress to it, and are refused without it |
//! | `TEMPOVOICE_MAX_CONCURRENT_CALLS` | `200` | live outbound calls a tenant may have; one more is answered 429 (1–1000000) |
//! | `TEMPOVOICE_MAX_CONCURRENT_CALLS_PER_AGENT` | `200` | live outbound calls one agent may have (1–1000000) |
//! | `TEMPOVOICE_PUBLIC_HOST` | none | with a single listener naming no host of its own: the host (and port) of its load balancer, for each agent's Twilio voice URL `https://{host}/agent/{id}/incoming-call` |
//! | `TEMPOVOICE_DEPLOY_WORKERS` | `4` | deployments this replica runs at once (`0`: it takes none) |
//! | `TEMPOVOICE_DEPLOY_LEASE_SECS` | `120` | how long a worker holds a deployment without renewing; a crashed replica's deployments resume after it |
//! | `TEMPOVOICE_DEPLOY_MAX_ATTEMPTS` | `5` | attempts at a deployment failing with retryable errors |
//! | `TEMPOVOICE_DEPLOY_RETRY_SECS` | `10` | back-off before the second attempt, doubling after (at most 10 minutes) |
//! | `TEMPOVOICE_ROLLOUT_CHECK` | `ecs` | `ecs`: a deploy is `rolling_out` until ECS reports the service deployment COMPLETED and the target group has healthy targets; `off`: `active` as soon as AWS accepted the changes (only where no task runs, as on moto; the deployment's events say so) |
//! | `TEMPOVOICE_ROLLOUT_TIMEOUT_SECS` | `900` | a rollout not healthy by then fails |
//! | `TEMPOVOICE_ROLLOUT_POLL_SECS` | `15` | how often a rolling-out deployment is looked at |
//! | `AWS_REGION` | `us-east-1` | region of the deployer's and the transcript buckets' AWS calls |
//! | `AWS_ENDPOINT_URL` | none | AWS endpoint (a local moto server) |
//! | `AWS_ENDPOINT_URL_LAMBDA` | none | Lambda API endpoint, when it differs (a local Lambda emulator) |
//! | `TEMPOVOICE_PREFIX`, `TEMPOVOICE_CLUSTER`, … | | the deployer's settings (see deployer-lambda), needed with `in-process`; with `lambda` only `TEMPOVOICE_PREFIX` (to find transcript buckets) |
//! | `TEMPOVOICE_DASHBOARD` | `on` | `on`: the dashboard is served at `/` beside the API; `off`: the API only |
//! | `TEMPOVOICE_DASHBOARD_SESSION_KEY` | random per process | base64 of 32 bytes sealing dashboard session cookies; replicas must share one, and without it everyone is signed out at restart |
//! | `TEMPOVOICE_DASHBOARD_SESSION_HOURS` | `12` | how long a dashboard sign-in lasts (1–720) |
//! | `TEMPOVOICE_DASHBOARD_SECURE_COOKIES` | `false` | `true`: the dashboard is reached over https only (behind TLS termination), so every response carries `Strict-Transport-Security` and a post must come from an https origin. Either way the session cookie is `Secure` with the `__Host-` prefix except on plain http to a loopback host, and a request forwarded with `X-Forwarded-Proto: https` counts as https |
//! | `RUST_LOG` | `info` | log filter |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serving::logging::LogFormat;

use deployer_lambda::DeployerSettings;
use deployer_lambda::settings::{DEFAULT_PREFIX, check_prefix};

use crate::db::Backend;
use crate::http::auth_limit::AuthLimits;
use crate::store::placements::{DEFAULT_CAPACITY, ListenerCapacity};

/// Parses `TEMPOVOICE_LISTENERS`: `arn[=capacity][@host]`, comma-separated.
fn parse_listeners(raw: &str) -> Result<Vec<ListenerCapacity>, String> {
    let mut out: Vec<ListenerCapacity> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (entry, public_host) = match entry.rsplit_once('@') {
            Some((rest, host)) => {
                let host = host.trim();
                check_public_host(host).map_err(|_| {
                    format!(
                        "TEMPOVOICE_LISTENERS: the public host of {rest} must be a host name with an optional \
                         port, like voice.example.com; got {host:?}"
                    )
                })?;
                (rest.trim(), Some(host.to_owned()))
            }
            None => (entry, None),
        };
        let (arn, capacity) = match entry.rsplit_once('=') {
            Some((arn, cap)) => {
                let cap = cap.trim().parse::<u32>().ok().filter(|c| (1..=100).contains(c)).ok_or_else(|| {
                    format!("TEMPOVOICE_LISTENERS: capacity of {arn} must be a number from 1 to 100 (an ALB takes 100 target groups)")
                })?;
                (arn.trim(), cap)
            }
            None => (entry, DEFAULT_CAPACITY),
        };
        if !(arn.starts_with("arn:") && arn.contains(":listener/")) {
            return Err(format!("TEMPOVOICE_LISTENERS: {arn:?} is not a listener ARN"));
        }
        if out.iter().any(|l| l.listener_arn == arn) {
            return Err(format!("TEMPOVOICE_LISTENERS: {arn} is listed twice"));
        }
        out.push(ListenerCapacity { listener_arn: arn.to_owned(), capacity, public_host });
    }
    Ok(out)
}

/// How deployments reach AWS.
#[derive(Debug, Clone)]
pub enum DeployerMode {
    /// Agents are stored, never deployed; transcripts are unavailable.
    Off,
    /// The deployer library runs in this process.
    InProcess(Box<DeployerSettings>),
    /// The deployer Lambda is invoked (`aws-sdk-lambda` Invoke).
    Lambda { function: String },
}

/// Deployment workers and their retry policy.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub workers: usize,
    pub lease: Duration,
    pub max_attempts: i64,
    pub retry_base: Duration,
    /// Whether a deploy waits for ECS to report the rollout healthy.
    pub rollout_check: bool,
    pub rollout_timeout: Duration,
    pub rollout_poll: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `TEMPOVOICE_ADMIN_LISTEN`: the admin API on an address of its own.
    pub admin_listen: Option<SocketAddr>,
    /// Header-read and request timeouts and the connection limit, of each address.
    pub limits: serving::Limits,
    pub data_dir: PathBuf,
    /// May hold a password: kept secret, never logged.
    pub database_url: SecretString,
    pub db_max_connections: u32,
    pub secrets_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// Failed-authentication limits and where the client address comes from.
    pub auth_limits: AuthLimits,
    pub listeners: Vec<ListenerCapacity>,
    /// The AWS quotas placements are checked against.
    pub quotas: crate::store::placements::Quotas,
    /// Each tenant's quotas, unless the operator set others for it.
    pub tenant_quotas: crate::store::quotas::QuotaLimits,
    pub deployer: DeployerMode,
    pub deploy: DeploySettings,
    /// Host (and port) in each agent's voice URL.
    pub public_host: Option<String>,
    pub aws_region: String,
    pub aws_endpoint_url: Option<String>,
    /// The Lambda API's endpoint when it differs (a local Lambda emulator).
    pub lambda_endpoint_url: Option<String>,
    /// Resource name prefix (finds each agent's transcript bucket).
    pub resource_prefix: String,
    /// `TEMPOVOICE_TWILIO_API_BASE`: where Twilio's REST API is (a local one in
    /// tests); `None` (`off`): agents' numbers are not pointed at them.
    pub twilio_api_base: Option<String>,
    /// `TEMPOVOICE_PUBLIC_URL`: where Twilio reaches this control plane (outbound
    /// calls' status callbacks), without a trailing slash.
    pub public_url: Option<String>,
    /// `TEMPOVOICE_MAX_CONCURRENT_CALLS` (per tenant) and `…_PER_AGENT`.
    pub call_limits: crate::store::outbound::CallLimits,
    /// `TEMPOVOICE_CALLBACK_ASAP_SECS`: how long after the request a callback asked
    /// for "as soon as possible" is placed (the call asking for it is still going on).
    pub callback_asap: Duration,
    /// The dashboard served beside the API, unless turned off.
    pub dashboard: Option<dashboard::DashboardSettings>,
}

impl Settings {
    /// The public host of the ALB behind `listener_arn`, if the settings name it.
    pub fn public_host_of(&self, listener_arn: &str) -> Option<&str> {
        self.listeners.iter().find(|l| l.listener_arn == listener_arn).and_then(|l| l.public_host.as_deref())
    }

    /// The Twilio voice URL of `agent` placed on `listener_arn`: known once it is
    /// placed, on a listener whose public host is configured.
    pub fn voice_url(&self, agent: &agent_spec::AgentId, listener_arn: Option<&str>) -> Option<String> {
        self.agent_urls(agent, listener_arn).map(|urls| urls.voice)
    }

    /// The URLs Twilio reaches `agent` at (known as its voice URL is).
    pub fn agent_urls(&self, agent: &agent_spec::AgentId, listener_arn: Option<&str>) -> Option<AgentUrls> {
        let host = self.public_host_of(listener_arn?)?;
        let url = |path: &str| format!("https://{host}/agent/{agent}/{path}");
        Some(AgentUrls { voice: url("incoming-call"), call_status: url("call-status"), amd_status: url("amd-status") })
    }

    /// The agent a voice URL belongs to, when it is one of this control plane's
    /// (`https://{a listener's public host}/agent/{id}/incoming-call`).
    pub fn agent_of_voice_url(&self, voice_url: &str) -> Option<agent_spec::AgentId> {
        let url = url::Url::parse(voice_url).ok()?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        if !self.listeners.iter().any(|l| l.public_host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&host))) {
            return None;
        }
        let mut segments = url.path_segments()?;
        match (segments.next(), segments.next(), segments.next(), segments.next()) {
            (Some("agent"), Some(id), Some("incoming-call"), None) => agent_spec::AgentId::parse(id).ok(),
            _ => None,
        }
    }
}

/// Where Twilio reaches an agent's runtime, through its load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUrls {
    /// The voice webhook (`…/incoming-call`).
    pub voice: String,
    /// Calls' status callbacks (`…/call-status`).
    pub call_status: String,
    /// Answering machine detection results of outbound calls (`…/amd-status`).
    pub amd_status: String,
}

/// A host name or IP with an optional port: what goes between `https://` and the path.
fn check_public_host(raw: &str) -> Result<(), String> {
    let parsed = url::Url::parse(&format!("https://{raw}/")).ok();
    let ok = parsed
        .as_ref()
        .is_some_and(|u| u.host_str().is_some() && u.path() == "/" && u.username().is_empty() && u.query().is_none())
        && !raw.contains(['/', '@', '?', '#']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "TEMPOVOICE_PUBLIC_HOST must be a host name with an optional port, like voice.example.com; got {raw:?}"
        ))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {}", .0.join("; "))]
pub struct SettingsError(pub Vec<String>);

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut reader = serving::Settings::new(&lookup);

        // Every server's listen address has one name; an old name still set would
        // otherwise be ignored, leaving the server on the default address.
        reader.renamed("TEMPOVOICE_BIND", "TEMPOVOICE_LISTEN");
        reader.renamed("TEMPOVOICE_ADMIN_BIND", "TEMPOVOICE_ADMIN_LISTEN");
        let listen = reader.address("TEMPOVOICE_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)));
        let admin_listen = reader.get("TEMPOVOICE_ADMIN_LISTEN").and_then(|raw| match raw.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                reader.error(format!("TEMPOVOICE_ADMIN_LISTEN: {raw:?} is not an address like 10.0.0.5:8081"));
                None
            }
        });
        let limits = reader.limits(serving::Limits::default());
        let data_dir = PathBuf::from(reader.get("TEMPOVOICE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = reader
            .get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tempovoice.db").display()));
        let backend = Backend::of_url(&database_url).map_err(|e| reader.error(e.to_string())).ok();

        let db_max_connections = reader.number("TEMPOVOICE_DB_MAX_CONNECTIONS", 8, 1..=1000) as u32;
        let secrets_key = reader.get("TEMPOVOICE_SECRETS_KEY").map(SecretString::from);
        if secrets_key.is_none() && backend == Some(Backend::Postgres) {
            reader.error(
                "TEMPOVOICE_SECRETS_KEY is required with PostgreSQL (every replica must share one key); \
                 generate one with: openssl rand -base64 32",
            );
        }
        let admin_token = reader.get("TEMPOVOICE_ADMIN_TOKEN").map(SecretString::from);
        if admin_token.as_ref().is_some_and(|t| t.expose_secret().len() < 32) {
            reader.error("TEMPOVOICE_ADMIN_TOKEN must be at least 32 characters");
        }
        let log_format = reader.log_format(LogFormat::Text);
        let shutdown_grace = Duration::from_secs(reader.number("TEMPOVOICE_SHUTDOWN_GRACE_SECS", 20, 0..=3600));

        let listeners = parse_listeners(&reader.get("TEMPOVOICE_LISTENERS").unwrap_or_default()).unwrap_or_else(|e| {
            reader.error(e);
            Vec::new()
        });

        let aws_region =
            reader.get("AWS_REGION").or_else(|| reader.get("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let aws_endpoint_url = reader.get("AWS_ENDPOINT_URL");
        let lambda_endpoint_url = reader.get("AWS_ENDPOINT_URL_LAMBDA");
        let resource_prefix = reader.get("TEMPOVOICE_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into());
        let deployer = match reader.get("TEMPOVOICE_DEPLOYER").as_deref() {
            None | Some("in-process") => match DeployerSettings::from_lookup(&aws_region, &lookup) {
                Ok(d) => DeployerMode::InProcess(Box::new(d)),
                Err(e) => {
                    for m in e.0 {
                        reader.error(format!(
                            "{m} (TEMPOVOICE_DEPLOYER=in-process; set TEMPOVOICE_DEPLOYER=off to run without AWS)"
                        ));
                    }
                    DeployerMode::Off
                }
            },
            Some("lambda") => match reader.get("DEPLOYER_LAMBDA_FUNCTION") {
                Some(function) => {
                    if let Err(e) = check_prefix(&resource_prefix) {
                        reader.error(e);
                    }
                    DeployerMode::Lambda { function }
                }
                None => {
                    reader.error("DEPLOYER_LAMBDA_FUNCTION is required with TEMPOVOICE_DEPLOYER=lambda");
                    DeployerMode::Off
                }
            },
            Some("off") => DeployerMode::Off,
            Some(other) => {
                reader.error(format!("TEMPOVOICE_DEPLOYER must be in-process, lambda or off; got {other:?}"));
                DeployerMode::Off
            }
        };
        let deploy = DeploySettings {
            workers: reader.number("TEMPOVOICE_DEPLOY_WORKERS", 4, 0..=64) as usize,
            lease: Duration::from_secs(reader.number("TEMPOVOICE_DEPLOY_LEASE_SECS", 120, 5..=3600)),
            max_attempts: reader.number("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS", 5, 1..=100) as i64,
            retry_base: Duration::from_secs(reader.number("TEMPOVOICE_DEPLOY_RETRY_SECS", 10, 0..=600)),
            rollout_check: reader.switch("TEMPOVOICE_ROLLOUT_CHECK", "ecs", "off", true),
            rollout_timeout: Duration::from_secs(reader.number("TEMPOVOICE_ROLLOUT_TIMEOUT_SECS", 900, 10..=86_400)),
            rollout_poll: Duration::from_secs(reader.number("TEMPOVOICE_ROLLOUT_POLL_SECS", 15, 1..=300)),
        };
        let quotas = crate::store::placements::Quotas {
            targets_per_alb: reader.number("TEMPOVOICE_TARGETS_PER_ALB", 1_000, 2..=100_000) as u32,
            target_groups: reader.number("TEMPOVOICE_TARGET_GROUP_QUOTA", 3_000, 1..=1_000_000) as u32,
        };
        let tenant_quotas = crate::store::quotas::QuotaLimits {
            agents: reader.number("TEMPOVOICE_TENANT_MAX_AGENTS", 100, 0..=1_000_000),
            cpu_units: reader.number("TEMPOVOICE_TENANT_MAX_CPU_UNITS", 65_536, 0..=1_000_000_000),
            listener_slots: reader.number("TEMPOVOICE_TENANT_MAX_LISTENER_SLOTS", 100, 0..=1_000_000),
            knowledge_bytes: reader.number("TEMPOVOICE_TENANT_MAX_KNOWLEDGE_BYTES", 20 * 1024 * 1024, 0..=1 << 40),
        };
        let auth_limits = AuthLimits {
            per_address: reader.number("TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS", 60, 1..=100_000) as u32,
            per_key: reader.number("TEMPOVOICE_AUTH_FAILURES_PER_KEY", 30, 1..=100_000) as u32,
            window: Duration::from_secs(reader.number("TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS", 60, 1..=86_400)),
            trusted_proxy: reader.switch("TEMPOVOICE_TRUSTED_PROXY", "true", "false", false),
        };
        let twilio_api_base = match reader
            .get("TEMPOVOICE_TWILIO_API_BASE")
            .unwrap_or_else(|| crate::twilio::DEFAULT_API_BASE.into())
        {
            off if off == "off" => None,
            base => {
                match url::Url::parse(&base) {
                    Ok(u)
                        if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() && u.query().is_none() => {}
                    _ => reader.error(format!(
                        "TEMPOVOICE_TWILIO_API_BASE must be an http(s) URL like https://api.twilio.com, or off; \
                             got {base:?}"
                    )),
                }
                Some(base)
            }
        };
        let public_url = reader.get("TEMPOVOICE_PUBLIC_URL").map(|raw| raw.trim_end_matches('/').to_owned());
        if let Some(raw) = &public_url {
            match url::Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() && u.query().is_none() => {}
                _ => reader.error(format!(
                    "TEMPOVOICE_PUBLIC_URL must be the http(s) URL this control plane is reached at, like \
                     https://tempovoice.example.com; got {raw:?}"
                )),
            }
        }
        let call_limits = crate::store::outbound::CallLimits {
            per_tenant: reader.number("TEMPOVOICE_MAX_CONCURRENT_CALLS", 200, 1..=1_000_000) as i64,
            per_agent: reader.number("TEMPOVOICE_MAX_CONCURRENT_CALLS_PER_AGENT", 200, 1..=1_000_000) as i64,
        };
        let callback_asap = Duration::from_secs(reader.number("TEMPOVOICE_CALLBACK_ASAP_SECS", 120, 0..=3600));
        let public_host = reader.get("TEMPOVOICE_PUBLIC_HOST");
        if let Some(Err(e)) = public_host.as_deref().map(check_public_host) {
            reader.error(e);
        }
        // Each ALB answers on its own host. One listener may take the global one;
        // with several, a listener without its own host would give its agents
        // another ALB's voice URL, so each must name its own.
        let mut listeners = listeners;
        match listeners.as_mut_slice() {
            [only] if only.public_host.is_none() => only.public_host = public_host.clone(),
            several => {
                for l in several.iter().filter(|l| l.public_host.is_none()) {
                    reader.error(format!(
                        "TEMPOVOICE_LISTENERS: {} names no public host; with several listeners (one per ALB) each \
                         must name the host its ALB answers on, as listenerArn=capacity@host",
                        l.listener_arn
                    ));
                }
            }
        }

        let dashboard = reader
            .switch("TEMPOVOICE_DASHBOARD", "on", "off", true)
            .then(|| dashboard::DashboardSettings::read(&mut reader));

        reader.finish().map_err(SettingsError)?;
        Ok(Settings {
            twilio_api_base,
            public_url,
            call_limits,
            callback_asap,
            dashboard,
            deployer,
            deploy,
            public_host,
            aws_region,
            aws_endpoint_url,
            lambda_endpoint_url,
            resource_prefix,
            listeners,
            quotas,
            tenant_quotas,
            listen,
            admin_listen,
            limits,
            data_dir,
            database_url: SecretString::from(database_url),
            db_max_connections,
            secrets_key,
            admin_token,
            log_format,
            shutdown_grace,
            auth_limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        map.entry("TEMPOVOICE_DEPLOYER".into()).or_insert_with(|| "off".into());
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_dashboard_is_on_by_default_and_its_settings_are_checked() {
        let s = from(&[]).unwrap();
        let dashboard = s.dashboard.expect("on by default");
        assert_eq!(dashboard.session_lifetime, time::Duration::hours(12));
        assert!(dashboard.session_key.is_none() && !dashboard.secure_cookies);
        assert!(from(&[("TEMPOVOICE_DASHBOARD", "off")]).unwrap().dashboard.is_none());
        let err = from(&[
            ("TEMPOVOICE_DASHBOARD_SESSION_KEY", "short"),
            ("TEMPOVOICE_DASHBOARD_SESSION_HOURS", "0"),
            ("TEMPOVOICE_DASHBOARD_SECURE_COOKIES", "yes"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "TEMPOVOICE_DASHBOARD_SESSION_KEY",
            "TEMPOVOICE_DASHBOARD_SESSION_HOURS",
            "TEMPOVOICE_DASHBOARD_SECURE_COOKIES",
        ] {
            assert!(err.contains(name), "{name} in {err}");
        }
        assert!(from(&[("TEMPOVOICE_DASHBOARD", "maybe")]).unwrap_err().to_string().contains("on or off"));
    }

    #[test]
    fn failed_authentication_limits_are_read_and_a_bad_value_is_named() {
        let s = from(&[]).unwrap();
        assert_eq!(s.auth_limits, AuthLimits::default());
        assert!(!s.auth_limits.trusted_proxy, "X-Forwarded-For is not trusted by default");
        let s = from(&[
            ("TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS", "5"),
            ("TEMPOVOICE_AUTH_FAILURES_PER_KEY", "3"),
            ("TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS", "2"),
            ("TEMPOVOICE_TRUSTED_PROXY", "true"),
        ])
        .unwrap();
        assert_eq!(
            s.auth_limits,
            AuthLimits { per_address: 5, per_key: 3, window: Duration::from_secs(2), trusted_proxy: true }
        );
        let err = from(&[
            ("TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS", "0"),
            ("TEMPOVOICE_AUTH_FAILURES_PER_KEY", "many"),
            ("TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS", "0"),
            ("TEMPOVOICE_TRUSTED_PROXY", "yes"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS",
            "TEMPOVOICE_AUTH_FAILURES_PER_KEY",
            "TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS",
            "TEMPOVOICE_TRUSTED_PROXY",
        ] {
            assert!(err.contains(name), "{name} in {err}");
        }
    }

    #[test]
    fn defaults_run_locally() {
        let s = from(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.admin_listen.is_none());
        assert_eq!(s.limits, serving::Limits::default());
        assert_eq!(s.database_url.expose_secret(), "sqlite://./data/tempovoice.db");
        assert!(s.admin_token.is_none());
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let err = from(&[
            ("TEMPOVOICE_LISTEN", "localhost"),
            ("TEMPOVOICE_ADMIN_LISTEN", "admin"),
            ("DATABASE_URL", "postgres://u:hunter2@db/tv"),
            ("TEMPOVOICE_ADMIN_TOKEN", "short"),
            ("TEMPOVOICE_LOG_FORMAT", "xml"),
            ("TEMPOVOICE_HEADER_TIMEOUT_SECS", "0"),
            ("TEMPOVOICE_SHUTDOWN_GRACE_SECS", "forever"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "TEMPOVOICE_LISTEN",
            "TEMPOVOICE_ADMIN_LISTEN",
            "TEMPOVOICE_SECRETS_KEY",
            "TEMPOVOICE_ADMIN_TOKEN",
            "TEMPOVOICE_LOG_FORMAT",
            "TEMPOVOICE_HEADER_TIMEOUT_SECS",
            "TEMPOVOICE_SHUTDOWN_GRACE_SECS",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn listen_addresses_and_connection_limits_are_read() {
        let s = from(&[
            ("TEMPOVOICE_LISTEN", "0.0.0.0:9000"),
            ("TEMPOVOICE_ADMIN_LISTEN", "10.0.0.5:8081"),
            ("TEMPOVOICE_HEADER_TIMEOUT_SECS", "3"),
            ("TEMPOVOICE_IDLE_TIMEOUT_SECS", "3700"),
            ("TEMPOVOICE_REQUEST_TIMEOUT_SECS", "30"),
            ("TEMPOVOICE_MAX_CONNECTIONS", "500"),
        ])
        .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.admin_listen.map(|a| a.to_string()).as_deref(), Some("10.0.0.5:8081"));
        assert_eq!(
            s.limits,
            serving::Limits {
                header_read_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(3700),
                request_timeout: Duration::from_secs(30),
                max_connections: 500,
            }
        );
    }

    #[test]
    fn the_old_names_of_the_listen_addresses_are_refused_naming_the_new_ones() {
        // Set alone, or beside the new name: either way the deployment still says the old one.
        for both in [false, true] {
            let mut vars = vec![("TEMPOVOICE_BIND", "0.0.0.0:8080"), ("TEMPOVOICE_ADMIN_BIND", "10.0.0.5:8081")];
            if both {
                vars.extend([("TEMPOVOICE_LISTEN", "0.0.0.0:8080"), ("TEMPOVOICE_ADMIN_LISTEN", "10.0.0.5:8081")]);
            }
            let err = from(&vars).unwrap_err();
            assert_eq!(err.0.len(), 2, "{err}");
            assert!(
                err.0.iter().any(|e| e.contains("TEMPOVOICE_BIND") && e.contains("set TEMPOVOICE_LISTEN")),
                "{err}"
            );
            assert!(
                err.0.iter().any(|e| e.contains("TEMPOVOICE_ADMIN_BIND") && e.contains("set TEMPOVOICE_ADMIN_LISTEN")),
                "{err}"
            );
        }
    }

    #[test]
    fn listeners_parse_with_capacities() {
        let a = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/1/2";
        let b = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/b/3/4";
        let s = from(&[("TEMPOVOICE_LISTENERS", &format!("{a}=2@voice-a.example.com, {b}@voice-b.example.com:8443"))])
            .unwrap();
        assert_eq!(s.listeners.len(), 2);
        assert_eq!((s.listeners[0].capacity, s.listeners[1].capacity), (2, DEFAULT_CAPACITY));
        assert_eq!(s.public_host_of(a), Some("voice-a.example.com"));
        assert_eq!(s.public_host_of(b), Some("voice-b.example.com:8443"));
        for bad in [
            format!("{a}=0"),
            format!("{a}=101"),
            "not-an-arn".to_owned(),
            format!("{a},{a}"),
            format!("{a}@https://x.example.com"),
            // Several ALBs: each names its own host.
            format!("{a}@voice-a.example.com,{b}"),
        ] {
            let err = from(&[("TEMPOVOICE_LISTENERS", &bad)]).unwrap_err().to_string();
            assert!(err.contains("TEMPOVOICE_LISTENERS"), "{bad}: {err}");
        }
    }

    #[test]
    fn deployer_modes_name_what_is_missing() {
        let err = from(&[("TEMPOVOICE_DEPLOYER", "in-process")]).unwrap_err().to_string();
        for name in ["TEMPOVOICE_CLUSTER", "TEMPOVOICE_SUBNETS", "TEMPOVOICE_DEPLOYER=off"] {
            assert!(err.contains(name), "{name} missing from {err}");
        }
        let err = from(&[("TEMPOVOICE_DEPLOYER", "lambda")]).unwrap_err().to_string();
        assert!(err.contains("DEPLOYER_LAMBDA_FUNCTION"), "{err}");
        let s = from(&[("TEMPOVOICE_DEPLOYER", "lambda"), ("DEPLOYER_LAMBDA_FUNCTION", "tv-deployer")]).unwrap();
        assert!(matches!(s.deployer, DeployerMode::Lambda { ref function } if function == "tv-deployer"));
        let err = from(&[("TEMPOVOICE_DEPLOYER", "docker")]).unwrap_err().to_string();
        assert!(err.contains("in-process, lambda or off"), "{err}");
    }

    #[test]
    fn rollout_check_and_quotas_are_read_and_a_bad_value_is_named() {
        let s = from(&[("TEMPOVOICE_ROLLOUT_CHECK", "off"), ("TEMPOVOICE_TARGETS_PER_ALB", "2000")]).unwrap();
        assert!(!s.deploy.rollout_check);
        assert_eq!(s.quotas.targets_per_alb, 2000);
        assert!(from(&[]).unwrap().deploy.rollout_check, "checked by default");
        let err = from(&[("TEMPOVOICE_ROLLOUT_CHECK", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("TEMPOVOICE_ROLLOUT_CHECK"), "{err}");
    }

    #[test]
    fn voice_url_from_public_host() {
        // One listener without a host of its own takes the global one.
        let a = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/1/2";
        let s = from(&[("TEMPOVOICE_PUBLIC_HOST", "voice.example.com"), ("TEMPOVOICE_LISTENERS", a)]).unwrap();
        let id = agent_spec::AgentId::parse("abcdefghijklmnop").unwrap();
        assert_eq!(
            s.voice_url(&id, Some(a)).unwrap(),
            "https://voice.example.com/agent/abcdefghijklmnop/incoming-call"
        );
        assert!(s.voice_url(&id, None).is_none(), "not placed yet");
        assert!(s.voice_url(&id, Some("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/gone/1/2")).is_none());
        assert!(from(&[("TEMPOVOICE_LISTENERS", a)]).unwrap().voice_url(&id, Some(a)).is_none());
        assert!(from(&[("TEMPOVOICE_PUBLIC_HOST", "localhost:8443")]).is_ok());
        for bad in ["https://voice.example.com", "voice.example.com/x", "a b", "user@host"] {
            let err = from(&[("TEMPOVOICE_PUBLIC_HOST", bad)]).unwrap_err().to_string();
            assert!(err.contains("TEMPOVOICE_PUBLIC_HOST"), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = from(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/tv"),
            ("TEMPOVOICE_SECRETS_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
            ("TEMPOVOICE_ADMIN_TOKEN", "admin-token-admin-token-admin-token-42"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("c2VjcmV0") && !debug.contains("admin-token"));
    }
}
