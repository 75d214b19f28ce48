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
//! | `TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN` | required | managed policy every agent's own task role is created under (its permission boundary) |
//! | `TEMPOVOICE_RUNTIME_REPOSITORY` | `tempovoice-agent-runtime` | ECR repository of the runtime image |
//! | `TEMPOVOICE_RUNTIME_IMAGE_TAG` | `latest` | image tag used when a deploy names none |
//! | `TEMPOVOICE_CONTAINER_PORT` | `8080` | port the runtime listens on |
//! | `TEMPOVOICE_LOG_GROUP` | `/ecs/tempovoice-agents` | CloudWatch log group |
//! | `TEMPOVOICE_TRANSCRIPTS_IA_DAYS` | 30 | transcripts move to Standard-IA after this many days (≥ 30) |
//! | `TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS` | 90 | … then to Glacier (≥ IA + 30) |
//! | `TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS` | 365 | … and expire (> Glacier) |
//! | `TEMPOVOICE_TRANSCRIPTS_NONCURRENT_DAYS` | 30 | how long an expired, deleted or overwritten version stays recoverable before S3 deletes it |
//! | `TEMPOVOICE_RETIRED_BUCKET_DAYS` | 90 | how long a deleted agent's retained bucket is kept before `sweep` with `delete` removes it |
//! | `TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS` | 60 | how long a deploy waits for a deleted service of the same name to finish draining before it fails (retryably) |
//! | `TEMPOVOICE_TRANSCRIPTS_TLS_ONLY` | `true` | put the bucket policy that denies non-TLS requests. Set `false` only on moto: it evaluates a policy's Deny statements without their conditions, so this policy would deny every request there |

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub infrequent_access_days: i32,
    pub glacier_days: i32,
    pub expire_days: i32,
    /// Days a noncurrent version (an expired, deleted or overwritten object) is kept.
    pub noncurrent_days: i32,
}

/// S3 keeps an object in Standard-IA at least this long before a transition to Glacier.
pub const IA_MIN_DAYS_BEFORE_GLACIER: i32 = 30;

/// The AWS partition of a region: ARNs and service domains differ per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    China,
    GovCloud,
    Iso,
    IsoB,
}

impl Partition {
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::China
        } else if region.starts_with("us-gov-") {
            Self::GovCloud
        } else if region.starts_with("us-isob-") {
            Self::IsoB
        } else if region.starts_with("us-iso-") {
            Self::Iso
        } else {
            Self::Aws
        }
    }

    /// The partition in ARNs: `arn:{id}:…`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::China => "aws-cn",
            Self::GovCloud => "aws-us-gov",
            Self::Iso => "aws-iso",
            Self::IsoB => "aws-iso-b",
        }
    }

    /// The domain of service endpoints (ECR registries: `{account}.dkr.ecr.{region}.{domain}`).
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Self::Aws | Self::GovCloud => "amazonaws.com",
            Self::China => "amazonaws.com.cn",
            Self::Iso => "c2s.ic.gov",
            Self::IsoB => "sc2s.sgov.gov",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeployerSettings {
    pub prefix: String,
    pub cluster: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub execution_role_arn: String,
    /// The permission boundary of every agent's task role.
    pub task_role_boundary_arn: String,
    /// The AWS account, from the execution role's ARN.
    pub account: String,
    pub runtime_repository: String,
    pub default_image_tag: String,
    pub container_port: i32,
    pub log_group: String,
    pub lifecycle: Lifecycle,
    /// Whether transcript buckets get the policy denying non-TLS requests.
    pub tls_only_policy: bool,
    /// AWS region the deployer runs in (from the SDK config), and its partition.
    pub region: String,
    pub partition: Partition,
    /// Days a retired transcript bucket is kept before a deleting sweep removes it.
    pub retired_bucket_days: u32,
    /// Longest wait for a deleted service of the same name to finish draining.
    pub service_drain_wait: std::time::Duration,
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

/// Bucket name beginnings S3 reserves (`xn--` is Punycode; the others are AWS's).
pub const RESERVED_BUCKET_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];

/// `TEMPOVOICE_PREFIX`: 1 to [`PREFIX_MAX`] lowercase letters, digits or hyphens,
/// starting with a letter and not ending with a hyphen (it begins S3 bucket and
/// target group names), with no two hyphens in a row (ELB names and the S3 reserved
/// beginnings) and none of the beginnings S3 reserves.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = (1..=PREFIX_MAX).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && !prefix.ends_with('-')
        && !prefix.contains("--");
    if !ok {
        return Err(format!(
            "TEMPOVOICE_PREFIX must be 1 to {PREFIX_MAX} lowercase letters, digits or single hyphens, \
             starting with a letter and not ending with a hyphen"
        ));
    }
    // Bucket names are `{prefix}-transcripts-…`: the prefix plus the hyphen may not
    // begin with a reserved beginning either.
    let bucket_start = format!("{prefix}-");
    if let Some(reserved) = RESERVED_BUCKET_PREFIXES.iter().find(|r| bucket_start.starts_with(**r)) {
        return Err(format!("TEMPOVOICE_PREFIX must not begin with {reserved:?}: S3 reserves it for bucket names"));
    }
    Ok(())
}

impl DeployerSettings {
    pub fn from_lookup(region: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut reader = serving::Settings::new(lookup);
        let mut required = |k: &str| {
            reader.get(k).unwrap_or_else(|| {
                reader.error(format!("{k} is required"));
                String::new()
            })
        };
        let cluster = required("TEMPOVOICE_CLUSTER");
        let vpc_id = required("TEMPOVOICE_VPC_ID");
        let subnets = required("TEMPOVOICE_SUBNETS");
        let security_groups = required("TEMPOVOICE_SECURITY_GROUPS");
        let execution_role_arn = required("TEMPOVOICE_EXECUTION_ROLE_ARN");
        let task_role_boundary_arn = required("TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN");
        // arn:{partition}:iam::{account}:role/{name}
        let account = execution_role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        if !execution_role_arn.is_empty()
            && (!execution_role_arn.starts_with("arn:")
                || account.len() != 12
                || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            reader.error("TEMPOVOICE_EXECUTION_ROLE_ARN must be an IAM role ARN (arn:aws:iam::123456789012:role/…)");
        }
        let list = |v: String| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();

        let prefix = reader.get("TEMPOVOICE_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into());
        if let Err(e) = check_prefix(&prefix) {
            reader.error(e);
        }
        // Every range below fits an i32.
        let mut number =
            |k: &str, default: u64, range: std::ops::RangeInclusive<u64>| reader.number(k, default, range) as i32;
        let container_port = number("TEMPOVOICE_CONTAINER_PORT", 8080, 1..=65535);
        let lifecycle = Lifecycle {
            infrequent_access_days: number("TEMPOVOICE_TRANSCRIPTS_IA_DAYS", 30, 30..=3650),
            glacier_days: number("TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS", 90, 1..=3650),
            expire_days: number("TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS", 365, 1..=36500),
            noncurrent_days: number("TEMPOVOICE_TRANSCRIPTS_NONCURRENT_DAYS", 30, 1..=3650),
        };
        let retired_bucket_days = number("TEMPOVOICE_RETIRED_BUCKET_DAYS", 90, 1..=36500) as u32;
        let drain_wait = number("TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS", 60, 0..=840) as u64;
        if lifecycle.glacier_days < lifecycle.infrequent_access_days + IA_MIN_DAYS_BEFORE_GLACIER {
            reader.error(format!(
                "TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS ({}) must be at least TEMPOVOICE_TRANSCRIPTS_IA_DAYS + \
                 {IA_MIN_DAYS_BEFORE_GLACIER} ({}): S3 keeps objects in Standard-IA {IA_MIN_DAYS_BEFORE_GLACIER} days \
                 before a transition to Glacier",
                lifecycle.glacier_days,
                lifecycle.infrequent_access_days + IA_MIN_DAYS_BEFORE_GLACIER
            ));
        }
        if lifecycle.expire_days <= lifecycle.glacier_days {
            reader.error(format!(
                "TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS ({}) must be more than TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS ({})",
                lifecycle.expire_days, lifecycle.glacier_days
            ));
        }

        let tls_only_policy = reader.switch("TEMPOVOICE_TRANSCRIPTS_TLS_ONLY", "true", "false", true);
        let runtime_repository =
            reader.get("TEMPOVOICE_RUNTIME_REPOSITORY").unwrap_or_else(|| "tempovoice-agent-runtime".into());
        let default_image_tag = reader.get("TEMPOVOICE_RUNTIME_IMAGE_TAG").unwrap_or_else(|| "latest".into());
        let log_group = reader.get("TEMPOVOICE_LOG_GROUP").unwrap_or_else(|| "/ecs/tempovoice-agents".into());
        reader.finish().map_err(SettingsError)?;
        Ok(Self {
            tls_only_policy,
            prefix,
            cluster,
            vpc_id,
            subnets: list(subnets),
            security_groups: list(security_groups),
            execution_role_arn,
            task_role_boundary_arn,
            account,
            runtime_repository,
            default_image_tag,
            container_port,
            log_group,
            lifecycle,
            region: region.to_owned(),
            partition: Partition::of_region(region),
            retired_bucket_days,
            service_drain_wait: std::time::Duration::from_secs(drain_wait),
            sequential_steps: false,
        })
    }

    pub fn from_map(region: &str, map: &HashMap<String, String>) -> Result<Self, SettingsError> {
        Self::from_lookup(region, |k| map.get(k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> HashMap<String, String> {
        [
            ("TEMPOVOICE_CLUSTER", "c"),
            ("TEMPOVOICE_VPC_ID", "vpc-1"),
            ("TEMPOVOICE_SUBNETS", "subnet-1,subnet-2"),
            ("TEMPOVOICE_SECURITY_GROUPS", "sg-1"),
            ("TEMPOVOICE_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/exec"),
            ("TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN", "arn:aws:iam::123456789012:policy/boundary"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(extra: &[(&str, &str)]) -> Result<DeployerSettings, SettingsError> {
        let mut map = required();
        map.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        DeployerSettings::from_map("us-east-1", &map)
    }

    #[test]
    fn prefixes_s3_reserves_or_elb_refuses_are_refused_by_name() {
        // `xn--` cannot begin a bucket name: no prefix may hold two hyphens in a row.
        for bad in ["xn--a", "sthree", "amzn-s3-demo", "a--b", "-a", "a-", "A", "1a", ""] {
            assert!(check_prefix(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_prefix("sthree").unwrap_err().contains("sthree-"));
        assert!(check_prefix("amzn-s3-demo").unwrap_err().contains("amzn-s3-demo-"));
        for good in ["tv", "acme-prod", "x1", "xn", "sthreea", "amzn-s3"] {
            assert_eq!(check_prefix(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn glacier_must_follow_infrequent_access_by_thirty_days() {
        let err = with(&[("TEMPOVOICE_TRANSCRIPTS_IA_DAYS", "30"), ("TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS", "59")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS (59)") && err.contains("(60)"), "{err}");
        let ok = with(&[("TEMPOVOICE_TRANSCRIPTS_IA_DAYS", "30"), ("TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS", "60")]);
        assert_eq!(ok.unwrap().lifecycle.glacier_days, 60);
        let err = with(&[("TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS", "90")]).unwrap_err().to_string();
        assert!(err.contains("TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS (90)"), "{err}");
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(Partition::of_region("us-east-1").id(), "aws");
        assert_eq!(Partition::of_region("cn-north-1").id(), "aws-cn");
        assert_eq!(Partition::of_region("cn-north-1").dns_suffix(), "amazonaws.com.cn");
        assert_eq!(Partition::of_region("us-gov-west-1").id(), "aws-us-gov");
        assert_eq!(Partition::of_region("us-isob-east-1").id(), "aws-iso-b");
        assert_eq!(Partition::of_region("us-iso-east-1").id(), "aws-iso");
        assert_eq!(with(&[]).unwrap().partition, Partition::Aws);
    }
}
