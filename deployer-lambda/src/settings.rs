//! What the deployer needs to know about the shared AWS base (made by Terraform, or
//! by the control plane's local bootstrap on moto): cluster, network, roles, the
//! runtime image repository, and naming and retention choices. Read from the
//! environment once at cold start; every missing or invalid variable is named.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `TEMPOVOICE_PREFIX` | `tv` | name prefix for every resource (≤ 15 lowercase letters, digits, `-`) |
//! | `TEMPOVOICE_CLUSTER` | required | ECS cluster name or ARN |
//! | `TEMPOVOICE_VPC_ID` | required | VPC of the target groups |
//! | `TEMPOVOICE_SUBNETS` | required | private subnets for tasks, comma-separated |
//! | `TEMPOVOICE_SECURITY_GROUPS` | required | security groups for tasks, comma-separated |
//! | `TEMPOVOICE_EXECUTION_ROLE_ARN` | required | ECS task execution role (pulls the image, reads the secret) |
//! | `TEMPOVOICE_TASK_ROLE_ARN` | required | the runtime's own role (S3, Bedrock) |
//! | `TEMPOVOICE_RUNTIME_REPOSITORY` | `tempovoice-agent-runtime` | ECR repository of the runtime image |
//! | `TEMPOVOICE_RUNTIME_IMAGE_TAG` | `latest` | image tag used when a deploy names none |
//! | `TEMPOVOICE_CONTAINER_PORT` | `8080` | port the runtime listens on |
//! | `TEMPOVOICE_LOG_GROUP` | `/ecs/tempovoice-agents` | CloudWatch log group |
//! | `TEMPOVOICE_TRANSCRIPTS_IA_DAYS` / `_GLACIER_DAYS` / `_EXPIRE_DAYS` | 30 / 90 / 365 | transcript lifecycle |
//! | `TEMPOVOICE_TRANSCRIPTS_TLS_ONLY` | `true` | put the bucket policy that denies non-TLS requests. Set `false` only on moto: it evaluates a policy's Deny statements without their conditions, so this policy would deny every request there |

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub infrequent_access_days: i32,
    pub glacier_days: i32,
    pub expire_days: i32,
}

#[derive(Debug, Clone)]
pub struct DeployerSettings {
    pub prefix: String,
    pub cluster: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub runtime_repository: String,
    pub default_image_tag: String,
    pub container_port: i32,
    pub log_group: String,
    pub lifecycle: Lifecycle,
    /// Whether transcript buckets get the policy denying non-TLS requests.
    pub tls_only_policy: bool,
    /// AWS region the deployer runs in (from the SDK config).
    pub region: String,
    /// Run every provisioning step one after another instead of independent steps
    /// concurrently. Only for measuring what concurrency saves (the provisioning
    /// benchmark); never set from the environment.
    pub sequential_steps: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid deployer settings: {}", .0.join("; "))]
pub struct SettingsError(pub Vec<String>);

/// Longest prefix that keeps `{prefix}-{agentId}` within the 32-character
/// target group name limit.
pub const PREFIX_MAX: usize = 32 - 1 - agent_spec::ids::ID_LEN;

pub const DEFAULT_PREFIX: &str = "tv";

/// `TEMPOVOICE_PREFIX`: 1 to [`PREFIX_MAX`] lowercase letters, digits or hyphens,
/// starting with a letter (it begins S3 bucket and target group names).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = (1..=PREFIX_MAX).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && !prefix.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "TEMPOVOICE_PREFIX must be 1 to {PREFIX_MAX} lowercase letters, digits or hyphens, starting with a letter"
        ))
    }
}

impl DeployerSettings {
    pub fn from_lookup(region: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut errors = Vec::new();
        let mut required = |k: &str| {
            get(k).unwrap_or_else(|| {
                errors.push(format!("{k} is required"));
                String::new()
            })
        };
        let cluster = required("TEMPOVOICE_CLUSTER");
        let vpc_id = required("TEMPOVOICE_VPC_ID");
        let subnets = required("TEMPOVOICE_SUBNETS");
        let security_groups = required("TEMPOVOICE_SECURITY_GROUPS");
        let execution_role_arn = required("TEMPOVOICE_EXECUTION_ROLE_ARN");
        let task_role_arn = required("TEMPOVOICE_TASK_ROLE_ARN");
        let list = |v: String| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();

        let prefix = get("TEMPOVOICE_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into());
        if let Err(e) = check_prefix(&prefix) {
            errors.push(e);
        }
        let mut number = |k: &str, default: i32, range: std::ops::RangeInclusive<i32>| match get(k) {
            None => default,
            Some(v) => match v.parse::<i32>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    errors.push(format!("{k} must be a number from {} to {}", range.start(), range.end()));
                    default
                }
            },
        };
        let container_port = number("TEMPOVOICE_CONTAINER_PORT", 8080, 1..=65535);
        let lifecycle = Lifecycle {
            infrequent_access_days: number("TEMPOVOICE_TRANSCRIPTS_IA_DAYS", 30, 30..=3650),
            glacier_days: number("TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS", 90, 1..=3650),
            expire_days: number("TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS", 365, 1..=36500),
        };
        if lifecycle.glacier_days <= lifecycle.infrequent_access_days || lifecycle.expire_days <= lifecycle.glacier_days
        {
            errors.push("transcript lifecycle days must increase: infrequent access < Glacier < expiry".into());
        }
        let tls_only_policy = match get("TEMPOVOICE_TRANSCRIPTS_TLS_ONLY").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                errors.push("TEMPOVOICE_TRANSCRIPTS_TLS_ONLY must be true or false".into());
                true
            }
        };
        if !errors.is_empty() {
            return Err(SettingsError(errors));
        }
        Ok(Self {
            tls_only_policy,
            prefix,
            cluster,
            vpc_id,
            subnets: list(subnets),
            security_groups: list(security_groups),
            execution_role_arn,
            task_role_arn,
            runtime_repository: get("TEMPOVOICE_RUNTIME_REPOSITORY")
                .unwrap_or_else(|| "tempovoice-agent-runtime".into()),
            default_image_tag: get("TEMPOVOICE_RUNTIME_IMAGE_TAG").unwrap_or_else(|| "latest".into()),
            container_port,
            log_group: get("TEMPOVOICE_LOG_GROUP").unwrap_or_else(|| "/ecs/tempovoice-agents".into()),
            lifecycle,
            region: region.to_owned(),
            sequential_steps: false,
        })
    }

    pub fn from_map(region: &str, map: &HashMap<String, String>) -> Result<Self, SettingsError> {
        Self::from_lookup(region, |k| map.get(k).cloned())
    }
}
