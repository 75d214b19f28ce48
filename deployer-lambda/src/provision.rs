//! Deploy and delete one agent. Every step reads before it writes, so a second
//! `deploy` of the same agent makes no mutating call, a changed config touches only
//! the task definition and the service, and a deploy or delete that failed half-way
//! is finished by the next one.
//!
//! Deploy first observes, then applies:
//!
//! 1. one round of reads, all concurrent: the runtime image tag (ECR) and the current
//!    state of every resource. Nothing is written for a request that cannot succeed
//!    (an invalid config or a missing image);
//! 2. the writes, each as soon as what it needs exists: bucket; secret → task
//!    definition (needs the secret ARN); target group → listener rule (needs the
//!    target group ARN) and its attributes; then the service (needs the task
//!    definition, and a target group the rule attaches to the load balancer).
//!
//! A fresh agent takes four sequential AWS round trips: read, create the secret and
//! target group, register the task definition and create the rule, create the
//! service. A deploy with nothing to change makes only reads.

use std::collections::BTreeMap;

use agent_spec::draft::{AgentDraft, SecretsDraft};
use agent_spec::{AgentConfig, AgentId, AgentSpec, TenantId};
use aws_sdk_ecr::types::ImageIdentifier;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::{DeployError, Step, code_of};
use crate::naming::AgentNames;
use crate::report::ResourceReport;
use crate::resources::{bucket, listener_rule, scaling, secret, service, target_group, task_definition, task_role};
use crate::settings::DeployerSettings;

/// Where the agent's listener rule goes: assigned by the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub listener_arn: String,
    /// 1 to 50,000, unique on the listener.
    pub priority: u32,
    /// The host that listener's ALB answers Twilio on: the runtime's
    /// `TEMPOVOICE_PUBLIC_HOST`, which its Twilio signature checks and stream URLs
    /// use. Required: without it the runtime cannot check a signature.
    #[serde(default)]
    pub public_host: Option<String>,
    /// Where the runtime reaches the control plane (its `TEMPOVOICE_PUBLIC_URL`),
    /// to report the callbacks callers ask for. Without it the agent schedules none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_url: Option<String>,
}

/// Create or converge one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub config: AgentConfig,
    /// The agent's secrets (all of them: a deploy writes the whole secret).
    pub secrets: SecretsDraft,
    pub placement: Placement,
    /// Runtime image tag; the deployer's default when absent.
    #[serde(default)]
    pub image_tag: Option<String>,
}

/// Tear down one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    /// The listener its rule is on (from its placement). Absent when the agent never
    /// had a placement, so it cannot have a rule.
    #[serde(default)]
    pub listener_arn: Option<String>,
    /// Empty and delete the transcript bucket (all versions). Default: keep it, tagged retired.
    #[serde(default)]
    pub purge_transcripts: bool,
}

/// What a deploy or delete did, resource by resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    pub agent_id: AgentId,
    pub resources: Vec<ResourceReport>,
    /// The runtime image the agent's task definition runs (`…@sha256:…`), on deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Environment variables the deployer adds to the agent's own.
pub mod deployment_vars {
    pub const S3_BUCKET_NAME: &str = "S3_BUCKET_NAME";
    pub const S3_BUCKET_REGION: &str = "S3_BUCKET_REGION";
    pub const PUBLIC_HOST: &str = "TEMPOVOICE_PUBLIC_HOST";
    pub const CONTROL_PLANE_URL: &str = "TEMPOVOICE_CONTROL_PLANE_URL";
}

fn check_image_tag(tag: &str) -> Result<(), DeployError> {
    let ok = (1..=128).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-']);
    if ok { Ok(()) } else { Err(DeployError::invalid(format!("image_tag {tag:?} is not a valid image tag"))) }
}

/// Validates the request as the API would: the agent must be deployable as is.
fn validate(req: &DeployRequest) -> Result<AgentSpec, DeployError> {
    let draft = AgentDraft { secrets: req.secrets.clone(), ..AgentDraft::from_config(&req.config) };
    let (config, secrets) =
        draft.validate(None).map_err(|e| DeployError::invalid(format!("the agent's configuration is invalid: {e}")))?;
    if !(1..=50_000).contains(&req.placement.priority) {
        return Err(DeployError::invalid("placement.priority must be from 1 to 50000"));
    }
    if !req.placement.listener_arn.starts_with("arn:") {
        return Err(DeployError::invalid("placement.listener_arn must be a listener ARN"));
    }
    match req.placement.public_host.as_deref() {
        None => {
            return Err(DeployError::invalid(
                "placement.public_host is required: the host the listener's load balancer answers Twilio on",
            ));
        }
        Some(h) if h.is_empty() || h.contains(['/', '@', '?', '#', ' ']) => {
            return Err(DeployError::invalid(format!(
                "placement.public_host must be a host name with an optional port; got {h:?}"
            )));
        }
        Some(_) => {}
    }
    if let Some(raw) = &req.placement.control_plane_url {
        let ok = url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.host_str().is_some()
                && u.query().is_none()
                && !raw.ends_with('/')
        });
        if !ok {
            return Err(DeployError::invalid(format!(
                "placement.control_plane_url must be an http(s) URL without a query or trailing slash; got {raw:?}"
            )));
        }
    }
    Ok(AgentSpec { agent_id: req.agent_id.clone(), tenant_id: req.tenant_id.clone(), config, secrets })
}

/// A runtime image, pinned: the tag it was found by and the digest it had then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeImage {
    /// `{registry}.dkr.ecr.{region}.{domain}/{repository}@sha256:…`: what task
    /// definitions run, so a tag moved later changes nothing until a rollout.
    pub uri: String,
    pub tag: Option<String>,
    pub digest: String,
}

impl RuntimeImage {
    /// The digest of a pinned image URI (`…@sha256:…`), if it is one.
    pub fn digest_of(uri: &str) -> Option<&str> {
        uri.rsplit_once('@').map(|(_, d)| d).filter(|d| d.starts_with("sha256:"))
    }
}

/// What a caller names an image by: a tag, or a digest `sha256:{64 hex}` (what a
/// release pipeline gets back from its push, so it rolls out exactly what it built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRef<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

impl<'a> ImageRef<'a> {
    /// Reads `raw` as a digest when it starts with `sha256:` (a tag cannot hold
    /// `:`), else as a tag; `field` names the request field in the error.
    pub fn parse(field: &str, raw: &'a str) -> Result<Self, DeployError> {
        match raw.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
                Ok(Self::Digest(raw))
            }
            Some(_) => Err(DeployError::invalid(format!(
                "{field} {raw:?} is not an image digest: sha256: and 64 lowercase hex digits"
            ))),
            None => check_image_tag(raw).map(|()| Self::Tag(raw)),
        }
    }

    fn as_str(self) -> &'a str {
        match self {
            Self::Tag(s) | Self::Digest(s) => s,
        }
    }
}

/// Finds the image in ECR by tag or digest (one DescribeImages call, whose answer
/// also names the registry) and pins it by digest.
pub async fn resolve_image(
    clients: &AwsClients,
    settings: &DeployerSettings,
    image: ImageRef<'_>,
) -> Result<RuntimeImage, DeployError> {
    const STEP: Step = Step::RuntimeImage;
    let repository = &settings.runtime_repository;
    let id = match image {
        ImageRef::Tag(tag) => ImageIdentifier::builder().image_tag(tag),
        ImageRef::Digest(digest) => ImageIdentifier::builder().image_digest(digest),
    };
    let shown = image.as_str();
    let found = clients.ecr.describe_images().repository_name(repository).image_ids(id.build()).send().await;
    match found {
        Ok(out) => {
            let details = out.image_details().first().ok_or_else(|| image_missing(repository, shown))?;
            let registry = details.registry_id().unwrap_or_default();
            let digest = details
                .image_digest()
                .filter(|d| d.starts_with("sha256:"))
                .ok_or_else(|| {
                    DeployError::new(STEP, None, format!("ECR gave no digest for {repository}:{shown}"), true)
                })?
                .to_owned();
            let (region, domain) = (&settings.region, settings.partition.dns_suffix());
            let tag = match image {
                ImageRef::Tag(tag) => Some(tag.to_owned()),
                ImageRef::Digest(_) => details.image_tags().first().cloned(),
            };
            Ok(RuntimeImage { uri: format!("{registry}.dkr.ecr.{region}.{domain}/{repository}@{digest}"), tag, digest })
        }
        Err(e) if code_of(&e) == Some("ImageNotFoundException") => Err(image_missing(repository, shown)),
        Err(e) if code_of(&e) == Some("RepositoryNotFoundException") => Err(DeployError::new(
            STEP,
            Some("RepositoryNotFoundException"),
            format!("ECR repository {repository} does not exist (TEMPOVOICE_RUNTIME_REPOSITORY)"),
            false,
        )),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

fn image_missing(repository: &str, image: &str) -> DeployError {
    let shown =
        if image.starts_with("sha256:") { format!("{repository}@{image}") } else { format!("{repository}:{image}") };
    DeployError::new(
        Step::RuntimeImage,
        Some("ImageNotFoundException"),
        format!("runtime image {shown} does not exist in ECR: push it first"),
        false,
    )
}

pub async fn deploy(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: DeployRequest,
) -> Result<AgentReport, DeployError> {
    let spec = validate(&req)?;
    if let Some(tag) = &req.image_tag {
        check_image_tag(tag)?;
    }
    // Without a tag, an agent already deployed keeps the image it runs; a new one
    // gets the default tag's image.
    let tag = req.image_tag.clone().unwrap_or_else(|| settings.default_image_tag.clone());
    let names = AgentNames::new(&settings.prefix, &spec.agent_id);
    let tags = names.tags(&spec.tenant_id);
    let env = spec.to_env();
    let secret_value = secret::secret_json(&env.secrets);

    let tg_desired = target_group::Desired {
        name: &names.target_group,
        vpc_id: &settings.vpc_id,
        port: settings.container_port,
        deregistration_delay_secs: target_group::deregistration_delay_secs(
            spec.config.guardrails.max_session_duration_secs,
        ),
        tags: &tags,
    };
    let seq = settings.sequential_steps;

    // Observe: every read that needs nothing from another step, in one round trip.
    // The image check is among them, and nothing is written before it passed.
    let rule_listener = &req.placement.listener_arn;
    let scaling_id = scaling::resource_id(&settings.cluster, &names.service);
    let (
        ((image, bucket_existed), scaling_found),
        ((secret_found, tg_found), (td_found, (rules_found, (service_found, role_found)))),
    ) = Box::pin(both(
        seq,
        both(
            seq,
            both(
                seq,
                resolve_image(clients, settings, ImageRef::Tag(&tag)),
                bucket::exists(&clients.s3, &names.bucket),
            ),
            scaling::observe(&clients.autoscaling, &scaling_id),
        ),
        both(
            seq,
            both(
                seq,
                secret::describe(&clients.secrets, &names.secret),
                target_group::find(&clients.elb, &names.target_group),
            ),
            both(
                seq,
                task_definition::latest(&clients.ecs, &names.family),
                both(
                    seq,
                    listener_rule::rules(&clients.elb, rule_listener),
                    both(
                        seq,
                        service::find(&clients.ecs, &settings.cluster, &names.service),
                        task_role::observe(&clients.iam, &names.task_role),
                    ),
                ),
            ),
        ),
    ))
    .await;
    let (bucket_existed, secret_found, tg_found, scaling_found) =
        (bucket_existed?, secret_found?, tg_found?, scaling_found?);
    let (td_found, rules_found, service_found, role_found) = (td_found?, rules_found?, service_found?, role_found?);
    let current_image = td_found
        .as_ref()
        .and_then(task_definition::image_of)
        .filter(|uri| RuntimeImage::digest_of(uri).is_some())
        .map(str::to_owned);
    let image = match (&req.image_tag, current_image) {
        (None, Some(current)) => current,
        _ => image?.uri,
    };

    // Apply, each step as soon as what it needs exists: the secret's ARN for the task
    // definition, the target group's ARN for the rule; both for the service. Every
    // branch runs to its end before the first error is reported, so one failing step
    // does not cut another off mid-way.
    let bucket_desired = bucket::Desired {
        bucket: &names.bucket,
        region: &settings.region,
        partition: settings.partition,
        lifecycle: &settings.lifecycle,
        tls_only: settings.tls_only_policy,
        tags: &tags,
    };
    let bucket = bucket::converge(&clients.s3, &bucket_desired, bucket_existed);
    let model = (spec.config.voice.provider == agent_spec::config::SpeechProvider::NovaSonic).then(|| {
        task_role::BedrockModel {
            region: spec.config.integrations.aws_region.as_str().to_owned(),
            model_id: spec.config.voice.model.as_str().to_owned(),
        }
    });
    let role_desired = task_role::Desired {
        name: &names.task_role,
        path: task_role::path(&settings.prefix),
        trust: task_role::trust_policy(&settings.account),
        policy: task_role::permissions_policy(
            settings.partition,
            &names.bucket,
            &task_role::ClusterTasks {
                region: settings.region.clone(),
                account: settings.account.clone(),
                cluster: settings.cluster.clone(),
            },
            model.as_ref(),
        ),
        boundary_arn: &settings.task_role_boundary_arn,
        tags: &tags,
    };
    // The secret's version and the role's ARN, then the task definition beside the
    // role's policy.
    let secret_and_role_then_task_definition = async {
        let (secret, role) = both(
            seq,
            secret::converge(&clients.secrets, &names.secret, &secret_value, &tags, secret_found),
            task_role::ensure(&clients.iam, &role_desired, &role_found),
        )
        .await;
        let ((secret, version), role) = (secret?, role?);
        let secret_arn =
            secret.arn.clone().ok_or_else(|| DeployError::new(Step::Secret, None, "secret has no ARN", true))?;
        let mut environment: BTreeMap<String, String> =
            env.vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        environment.insert(deployment_vars::S3_BUCKET_NAME.to_owned(), names.bucket.clone());
        environment.insert(deployment_vars::S3_BUCKET_REGION.to_owned(), settings.region.clone());
        if let Some(host) = &req.placement.public_host {
            environment.insert(deployment_vars::PUBLIC_HOST.to_owned(), host.clone());
        }
        if let Some(url) = &req.placement.control_plane_url {
            environment.insert(deployment_vars::CONTROL_PLANE_URL.to_owned(), url.clone());
        }
        let td_desired = task_definition::Desired {
            family: names.family.clone(),
            image: image.clone(),
            environment,
            // Pinned to the version just written: a rollback to an older revision
            // runs with the secrets it was deployed with.
            secrets: env
                .secrets
                .keys()
                .map(|k| ((*k).to_owned(), secret::value_from(&secret_arn, k, &version)))
                .collect(),
            cpu: spec.config.sizing.cpu,
            memory_mib: spec.config.sizing.memory_mib,
            cpu_architecture: spec.config.sizing.cpu_architecture.ecs_name(),
            execution_role_arn: settings.execution_role_arn.clone(),
            task_role_arn: role.arn.clone(),
            port: settings.container_port,
            log_group: settings.log_group.clone(),
            region: settings.region.clone(),
            stream_prefix: spec.agent_id.to_string(),
        };
        let (task_definition, role) = both(
            seq,
            task_definition::converge(&clients.ecs, &td_desired, &tags, td_found),
            task_role::put_policy(&clients.iam, &role_desired, &role_found, role),
        )
        .await;
        Ok::<_, DeployError>((secret, role?, task_definition?))
    };
    // An agent moved to another load balancer: its target group is still attached to
    // the old one, whose rule goes first.
    let attached: Vec<String> = tg_found.as_ref().map(|tg| tg.load_balancer_arns().to_vec()).unwrap_or_default();
    let target_group_then_rule = async {
        let (ensured, moved_from) = both(
            seq,
            target_group::ensure(&clients.elb, &tg_desired, tg_found),
            listener_rule::remove_elsewhere(&clients.elb, &attached, Some(rule_listener), &names.path_pattern),
        )
        .await;
        let (ensured, moved_from) = (ensured?, moved_from?);
        if !moved_from.is_empty() {
            tracing::info!(agent_id = %spec.agent_id, rules = ?moved_from, "agent moved: its rule on the old load balancer was removed");
        }
        let tg_arn = ensured.arn().to_owned();
        let rule_desired = listener_rule::Desired {
            listener_arn: rule_listener,
            priority: req.placement.priority,
            path_pattern: &names.path_pattern,
            target_group_arn: &tg_arn,
            tags: &tags,
        };
        let (target_group, rule) = both(
            seq,
            target_group::configure(&clients.elb, &tg_desired, ensured),
            listener_rule::converge(&clients.elb, &rule_desired, &rules_found),
        )
        .await;
        Ok::<_, DeployError>((target_group?, rule?, tg_arn))
    };
    let (bucket, (secret_td, tg_rule)) =
        both(seq, bucket, both(seq, secret_and_role_then_task_definition, target_group_then_rule)).await;
    let (bucket, (secret, role, task_definition), (target_group, rule, tg_arn)) = (bucket?, secret_td?, tg_rule?);
    let image_uri = image;
    let td_arn = task_definition
        .arn
        .clone()
        .ok_or_else(|| DeployError::new(Step::TaskDefinition, None, "task definition has no ARN", true))?;

    // Autoscaling goes after the service it scales (Application Auto Scaling checks
    // that it exists), and before a service it no longer scales is set to its fixed
    // count (paused, or max_tasks = min_tasks), so no scaling activity undoes that.
    let sizing = &spec.config.sizing;
    let scaling_desired = sizing.scales().then(|| scaling::Desired {
        resource_id: scaling_id.clone(),
        agent_id: spec.agent_id.as_str(),
        min_tasks: sizing.min_tasks,
        max_tasks: sizing.max_tasks,
        target_calls_per_task: sizing.target_calls_per_task,
        tags: &tags,
    });
    let removed_first = match scaling_desired {
        None => {
            Some(Box::pin(scaling::converge(&clients.autoscaling, &scaling_id, None, scaling_found.clone())).await?)
        }
        Some(_) => None,
    };
    // Boxed: inline, the SDK's large futures would make this one overflow a small stack.
    let service = Box::pin(service::converge(
        &clients.ecs,
        &service::Desired {
            cluster: &settings.cluster,
            name: &names.service,
            task_definition_arn: &td_arn,
            tasks: tasks_of(&spec.config.sizing),
            target_group_arn: &tg_arn,
            port: settings.container_port,
            subnets: &settings.subnets,
            security_groups: &settings.security_groups,
            tags: &tags,
            drain_wait: settings.service_drain_wait,
        },
        service_found,
    ))
    .await?;
    let autoscaling = match removed_first {
        Some(removed) => removed,
        None => {
            Box::pin(scaling::converge(&clients.autoscaling, &scaling_id, scaling_desired.as_ref(), scaling_found))
                .await?
        }
    };
    tracing::info!(agent_id = %spec.agent_id, tenant_id = %spec.tenant_id, "agent deployed");
    Ok(AgentReport {
        agent_id: spec.agent_id,
        resources: vec![bucket, secret, role, target_group, task_definition, rule, service, autoscaling],
        image: Some(image_uri),
    })
}

/// The service's task count: fixed, or left to autoscaling within the agent's bounds.
fn tasks_of(sizing: &agent_spec::config::Sizing) -> service::Tasks {
    if sizing.scales() {
        service::Tasks::Scaled { min: sizing.min_tasks, max: sizing.max_tasks }
    } else {
        service::Tasks::Fixed(sizing.min_tasks)
    }
}

/// Both futures' outputs: concurrently, or one after the other when `sequential`
/// (the benchmark's baseline). Each is boxed at once: the SDK's futures are large,
/// and nested inline they would overflow a thread's stack.
fn both<'a, A, B>(sequential: bool, a: A, b: B) -> BoxFuture<'a, (A::Output, B::Output)>
where
    A: Future + Send + 'a,
    B: Future + Send + 'a,
    A::Output: Send,
    B::Output: Send,
{
    let (a, b) = (a.boxed(), b.boxed());
    async move { if sequential { (a.await, b.await) } else { tokio::join!(a, b) } }.boxed()
}

pub async fn delete(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: DeleteRequest,
) -> Result<AgentReport, DeployError> {
    let report = teardown(clients, settings, &req.agent_id, req.listener_arn.as_deref(), req.purge_transcripts).await?;
    tracing::info!(agent_id = %req.agent_id, tenant_id = %req.tenant_id, purge = req.purge_transcripts, "agent deleted");
    Ok(report)
}

/// Removes everything of `agent`, in the order that keeps nothing routing to or
/// running it: its autoscaling (which could otherwise scale the service back up),
/// the service, its listener rule (on `listener_arn` and on any load
/// balancer its target group is still attached to), the target group, the task
/// definitions, the task role, the secret, and the bucket (retired or purged).
pub(crate) async fn teardown(
    clients: &AwsClients,
    settings: &DeployerSettings,
    agent: &AgentId,
    listener_arn: Option<&str>,
    purge_transcripts: bool,
) -> Result<AgentReport, DeployError> {
    let names = AgentNames::new(&settings.prefix, agent);
    let autoscaling =
        scaling::remove(&clients.autoscaling, &scaling::resource_id(&settings.cluster, &names.service)).await?;
    let service = service::remove(&clients.ecs, &settings.cluster, &names.service).await?;
    let tg = target_group::find(&clients.elb, &names.target_group).await?;
    let attached: Vec<String> = tg.as_ref().map(|t| t.load_balancer_arns().to_vec()).unwrap_or_default();
    let rule = listener_rule::remove(&clients.elb, listener_arn, &attached, &names.path_pattern).await?;
    let target_group = target_group::remove(&clients.elb, &names.target_group, tg).await?;
    let task_definition = task_definition::remove(&clients.ecs, &names.family).await?;
    let role = task_role::remove(&clients.iam, &names.task_role).await?;
    let secret = secret::remove(&clients.secrets, &names.secret).await?;
    let bucket = bucket::retire_or_purge(&clients.s3, settings.partition, &names.bucket, purge_transcripts).await?;
    Ok(AgentReport {
        agent_id: agent.clone(),
        resources: vec![autoscaling, service, rule, target_group, task_definition, role, secret, bucket],
        image: None,
    })
}
