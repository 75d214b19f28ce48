//! Typed settings, read once at start-up from the environment, with defaults that
//! run locally. Every missing or invalid variable is reported at once, by name.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TEMPOVOICE_BIND` | `127.0.0.1:8080` | address the API listens on |
//! | `TEMPOVOICE_ADMIN_BIND` | unset: the admin API is on `TEMPOVOICE_BIND` | an address of its own for the admin API (`/v1/admin/*`, with `/health`), e.g. one only the operator's network reaches; the main address then answers 404 there |
//! | `TEMPOVOICE_DATA_DIR` | `./data` | local state: SQLite file, generated secrets key |
//! | `DATABASE_URL` | `sqlite://{data dir}/tempovoice.db` | `sqlite:` or `postgres://` URL |
//! | `TEMPOVOICE_DB_MAX_CONNECTIONS` | `8` | pool size |
//! | `TEMPOVOICE_SECRETS_KEY` | generated into the data dir (SQLite only) | base64 of 32 bytes; encrypts agent secrets at rest |
//! | `TEMPOVOICE_ADMIN_TOKEN` | unset: admin API disabled | bearer token for `/v1/admin/*` (at least 32 characters) |
//! | `TEMPOVOICE_LOG_FORMAT` | `text` | `text` or `json` |
//! | `TEMPOVOICE_SHUTDOWN_GRACE_SECS` | `20` | how long in-flight requests may take after SIGTERM |
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// `TEMPOVOICE_ADMIN_BIND`: the admin API on an address of its own.
    pub admin_bind: Option<SocketAddr>,
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
        let host = self.public_host_of(listener_arn?)?;
        Some(format!("https://{host}/agent/{agent}/incoming-call"))
    }
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
        let get = |k: &str| lookup(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut errors = Vec::new();

        let bind = get("TEMPOVOICE_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!("TEMPOVOICE_BIND must be an address like 127.0.0.1:8080, got {bind:?}"));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let admin_bind = get("TEMPOVOICE_ADMIN_BIND").and_then(|raw| match raw.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!("TEMPOVOICE_ADMIN_BIND must be an address like 10.0.0.5:8081, got {raw:?}"));
                None
            }
        });
        let data_dir = PathBuf::from(get("TEMPOVOICE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tempovoice.db").display()));
        let backend = Backend::of_url(&database_url).map_err(|e| errors.push(e.to_string())).ok();

        let db_max_connections = match get("TEMPOVOICE_DB_MAX_CONNECTIONS").map(|v| v.parse::<u32>()) {
            None => 8,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => {
                errors.push("TEMPOVOICE_DB_MAX_CONNECTIONS must be a number from 1 to 1000".into());
                8
            }
        };
        let secrets_key = get("TEMPOVOICE_SECRETS_KEY").map(SecretString::from);
        if secrets_key.is_none() && backend == Some(Backend::Postgres) {
            errors.push(
                "TEMPOVOICE_SECRETS_KEY is required with PostgreSQL (every replica must share one key); \
                 generate one with: openssl rand -base64 32"
                    .into(),
            );
        }
        let admin_token = get("TEMPOVOICE_ADMIN_TOKEN").map(SecretString::from);
        if admin_token.as_ref().is_some_and(|t| t.expose_secret().len() < 32) {
            errors.push("TEMPOVOICE_ADMIN_TOKEN must be at least 32 characters".into());
        }
        let log_format = match get("TEMPOVOICE_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                errors.push("TEMPOVOICE_LOG_FORMAT must be text or json".into());
                LogFormat::Text
            }
        };
        let shutdown_grace = match get("TEMPOVOICE_SHUTDOWN_GRACE_SECS").map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(20),
            Some(Ok(n)) if n <= 3600 => Duration::from_secs(n),
            Some(_) => {
                errors.push("TEMPOVOICE_SHUTDOWN_GRACE_SECS must be a number of seconds up to 3600".into());
                Duration::from_secs(20)
            }
        };

        let listeners = parse_listeners(&get("TEMPOVOICE_LISTENERS").unwrap_or_default()).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });

        let aws_region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let aws_endpoint_url = get("AWS_ENDPOINT_URL");
        let lambda_endpoint_url = get("AWS_ENDPOINT_URL_LAMBDA");
        let resource_prefix = get("TEMPOVOICE_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into());
        let deployer = match get("TEMPOVOICE_DEPLOYER").as_deref() {
            None | Some("in-process") => match DeployerSettings::from_lookup(&aws_region, &lookup) {
                Ok(d) => DeployerMode::InProcess(Box::new(d)),
                Err(e) => {
                    errors.extend(e.0.into_iter().map(|m| {
                        format!("{m} (TEMPOVOICE_DEPLOYER=in-process; set TEMPOVOICE_DEPLOYER=off to run without AWS)")
                    }));
                    DeployerMode::Off
                }
            },
            Some("lambda") => match get("DEPLOYER_LAMBDA_FUNCTION") {
                Some(function) => {
                    if let Err(e) = check_prefix(&resource_prefix) {
                        errors.push(e);
                    }
                    DeployerMode::Lambda { function }
                }
                None => {
                    errors.push("DEPLOYER_LAMBDA_FUNCTION is required with TEMPOVOICE_DEPLOYER=lambda".into());
                    DeployerMode::Off
                }
            },
            Some("off") => DeployerMode::Off,
            Some(other) => {
                errors.push(format!("TEMPOVOICE_DEPLOYER must be in-process, lambda or off; got {other:?}"));
                DeployerMode::Off
            }
        };
        let rollout_check = match get("TEMPOVOICE_ROLLOUT_CHECK").as_deref() {
            None | Some("ecs") => true,
            Some("off") => false,
            Some(other) => {
                errors.push(format!("TEMPOVOICE_ROLLOUT_CHECK must be ecs or off; got {other:?}"));
                true
            }
        };
        let trusted_proxy = match get("TEMPOVOICE_TRUSTED_PROXY").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                errors.push(format!("TEMPOVOICE_TRUSTED_PROXY must be true or false; got {other:?}"));
                false
            }
        };
        let mut number = |k: &str, default: u64, range: std::ops::RangeInclusive<u64>| match get(k) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    errors.push(format!("{k} must be a number from {} to {}", range.start(), range.end()));
                    default
                }
            },
        };
        let deploy = DeploySettings {
            workers: number("TEMPOVOICE_DEPLOY_WORKERS", 4, 0..=64) as usize,
            lease: Duration::from_secs(number("TEMPOVOICE_DEPLOY_LEASE_SECS", 120, 5..=3600)),
            max_attempts: number("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS", 5, 1..=100) as i64,
            retry_base: Duration::from_secs(number("TEMPOVOICE_DEPLOY_RETRY_SECS", 10, 0..=600)),
            rollout_check,
            rollout_timeout: Duration::from_secs(number("TEMPOVOICE_ROLLOUT_TIMEOUT_SECS", 900, 10..=86_400)),
            rollout_poll: Duration::from_secs(number("TEMPOVOICE_ROLLOUT_POLL_SECS", 15, 1..=300)),
        };
        let quotas = crate::store::placements::Quotas {
            targets_per_alb: number("TEMPOVOICE_TARGETS_PER_ALB", 1_000, 2..=100_000) as u32,
            target_groups: number("TEMPOVOICE_TARGET_GROUP_QUOTA", 3_000, 1..=1_000_000) as u32,
        };
        let tenant_quotas = crate::store::quotas::QuotaLimits {
            agents: number("TEMPOVOICE_TENANT_MAX_AGENTS", 100, 0..=1_000_000),
            cpu_units: number("TEMPOVOICE_TENANT_MAX_CPU_UNITS", 65_536, 0..=1_000_000_000),
            listener_slots: number("TEMPOVOICE_TENANT_MAX_LISTENER_SLOTS", 100, 0..=1_000_000),
            knowledge_bytes: number("TEMPOVOICE_TENANT_MAX_KNOWLEDGE_BYTES", 20 * 1024 * 1024, 0..=1 << 40),
        };
        let auth_limits = AuthLimits {
            per_address: number("TEMPOVOICE_AUTH_FAILURES_PER_ADDRESS", 60, 1..=100_000) as u32,
            per_key: number("TEMPOVOICE_AUTH_FAILURES_PER_KEY", 30, 1..=100_000) as u32,
            window: Duration::from_secs(number("TEMPOVOICE_AUTH_FAILURE_WINDOW_SECS", 60, 1..=86_400)),
            trusted_proxy,
        };
        let session_hours =
            number("TEMPOVOICE_DASHBOARD_SESSION_HOURS", dashboard::DEFAULT_SESSION_HOURS as u64, 1..=720);
        let public_host = get("TEMPOVOICE_PUBLIC_HOST");
        if let Some(Err(e)) = public_host.as_deref().map(check_public_host) {
            errors.push(e);
        }
        // Each ALB answers on its own host. One listener may take the global one;
        // with several, a listener without its own host would give its agents
        // another ALB's voice URL, so each must name its own.
        let mut listeners = listeners;
        match listeners.as_mut_slice() {
            [only] if only.public_host.is_none() => only.public_host = public_host.clone(),
            several => {
                for l in several.iter().filter(|l| l.public_host.is_none()) {
                    errors.push(format!(
                        "TEMPOVOICE_LISTENERS: {} names no public host; with several listeners (one per ALB) each \
                         must name the host its ALB answers on, as listenerArn=capacity@host",
                        l.listener_arn
                    ));
                }
            }
        }

        let dashboard = match get("TEMPOVOICE_DASHBOARD").as_deref() {
            None | Some("on") => {
                let session_key = get("TEMPOVOICE_DASHBOARD_SESSION_KEY").map(SecretString::from);
                if let Some(Err(e)) = session_key.as_ref().map(dashboard::session::SessionKey::from_base64) {
                    errors.push(format!(
                        "TEMPOVOICE_DASHBOARD_SESSION_KEY: {e}; generate one with: openssl rand -base64 32"
                    ));
                }
                let secure_cookies = match get("TEMPOVOICE_DASHBOARD_SECURE_COOKIES").as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => {
                        errors.push("TEMPOVOICE_DASHBOARD_SECURE_COOKIES must be true or false".into());
                        false
                    }
                };
                Some(dashboard::DashboardSettings {
                    session_key,
                    session_lifetime: time::Duration::hours(session_hours as i64),
                    secure_cookies,
                })
            }
            Some("off") => None,
            Some(other) => {
                errors.push(format!("TEMPOVOICE_DASHBOARD must be on or off; got {other:?}"));
                None
            }
        };

        if !errors.is_empty() {
            return Err(SettingsError(errors));
        }
        Ok(Settings {
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
            bind,
            admin_bind,
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
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.expose_secret(), "sqlite://./data/tempovoice.db");
        assert!(s.admin_token.is_none());
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let err = from(&[
            ("TEMPOVOICE_BIND", "localhost"),
            ("DATABASE_URL", "postgres://u:hunter2@db/tv"),
            ("TEMPOVOICE_ADMIN_TOKEN", "short"),
            ("TEMPOVOICE_LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for name in ["TEMPOVOICE_BIND", "TEMPOVOICE_SECRETS_KEY", "TEMPOVOICE_ADMIN_TOKEN", "TEMPOVOICE_LOG_FORMAT"] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(!text.contains("hunter2"));
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
