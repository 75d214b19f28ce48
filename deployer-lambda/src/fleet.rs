//! Actions over what exists: `status` of one agent, and `rollout` of a new runtime
//! image to every agent (or a named set) — what CI invokes after pushing an image.

use agent_spec::{AgentId, TenantId};
use aws_sdk_ecs::types::{Service, TaskDefinition};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::{DeployError, Step, code_of};
use crate::naming::{AgentNames, CONTAINER_NAME};
use crate::report::{ResourceAction, ResourceKind, ResourceReport};
use crate::resources::{bucket, listener_rule, service, target_group, task_definition, task_role};
use crate::settings::DeployerSettings;

/// How many agents a rollout updates at once.
const ROLLOUT_CONCURRENCY: usize = 8;
/// Attempts per agent in a rollout, and the first pause between them (doubling).
const ROLLOUT_ATTEMPTS: u32 = 3;
const ROLLOUT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub listener_arn: String,
}

/// The service's state as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// The primary deployment's rollout state (`IN_PROGRESS`, `COMPLETED`, `FAILED`).
    pub rollout_state: Option<String>,
    pub task_definition_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_id: AgentId,
    /// Every resource, `present` or `absent`.
    pub resources: Vec<ResourceReport>,
    pub service: Option<ServiceHealth>,
}

fn present(kind: ResourceKind, name: &str, arn: Option<String>) -> ResourceReport {
    ResourceReport::new(kind, name, arn, ResourceAction::Present)
}

fn absent(kind: ResourceKind, name: &str) -> ResourceReport {
    ResourceReport::new(kind, name, None, ResourceAction::Absent)
}

/// Describes what exists of one agent and how its service is doing. Read-only.
pub async fn status(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: StatusRequest,
) -> Result<AgentStatus, DeployError> {
    let names = AgentNames::new(&settings.prefix, &req.agent_id);
    let secret = async {
        match clients.secrets.describe_secret().secret_id(&names.secret).send().await {
            Ok(s) if s.deleted_date().is_none() => {
                Ok(present(ResourceKind::Secret, &names.secret, s.arn().map(str::to_owned)))
            }
            Ok(_) => Ok(absent(ResourceKind::Secret, &names.secret)),
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                Ok(absent(ResourceKind::Secret, &names.secret))
            }
            Err(e) => Err(DeployError::aws(Step::Secret, e)),
        }
    };
    let bucket_exists = async {
        match clients.s3.head_bucket().bucket(&names.bucket).send().await {
            Ok(_) => {
                Ok(present(ResourceKind::Bucket, &names.bucket, Some(bucket::arn(settings.partition, &names.bucket))))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Ok(absent(ResourceKind::Bucket, &names.bucket))
            }
            Err(e) => Err(DeployError::aws(Step::Bucket, e)),
        }
    };
    let role = async {
        let observed = task_role::observe(&clients.iam, &names.task_role).await?;
        Ok(match observed.role {
            Some(r) => present(ResourceKind::TaskRole, &names.task_role, Some(r.arn().to_owned())),
            None => absent(ResourceKind::TaskRole, &names.task_role),
        })
    };
    let (bucket, secret, role, tg, td, rule, svc) = tokio::try_join!(
        bucket_exists,
        secret,
        role,
        target_group::find(&clients.elb, &names.target_group),
        task_definition::latest(&clients.ecs, &names.family),
        listener_rule::find(&clients.elb, &req.listener_arn, &names.path_pattern),
        service::find(&clients.ecs, &settings.cluster, &names.service),
    )?;
    let resources = vec![
        bucket,
        secret,
        role,
        match tg {
            Some(tg) => {
                present(ResourceKind::TargetGroup, &names.target_group, tg.target_group_arn().map(str::to_owned))
            }
            None => absent(ResourceKind::TargetGroup, &names.target_group),
        },
        match td {
            Some(td) => {
                present(ResourceKind::TaskDefinition, &names.family, td.task_definition_arn().map(str::to_owned))
            }
            None => absent(ResourceKind::TaskDefinition, &names.family),
        },
        match rule {
            Some(rule) => present(ResourceKind::ListenerRule, &names.path_pattern, rule.rule_arn().map(str::to_owned)),
            None => absent(ResourceKind::ListenerRule, &names.path_pattern),
        },
        match &svc {
            Some(s) => present(ResourceKind::Service, &names.service, s.service_arn().map(str::to_owned)),
            None => absent(ResourceKind::Service, &names.service),
        },
    ];
    Ok(AgentStatus { agent_id: req.agent_id, resources, service: svc.as_ref().map(health) })
}

fn health(s: &Service) -> ServiceHealth {
    let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
    ServiceHealth {
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        rollout_state: primary.and_then(|d| d.rollout_state()).map(|r| r.as_str().to_owned()),
        task_definition_arn: s.task_definition().map(str::to_owned),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// The runtime image tag to move agents onto (checked in ECR first).
    pub image_tag: String,
    /// Only these agents; all of this deployer's agents when absent.
    #[serde(default)]
    pub agents: Option<Vec<AgentId>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutAction {
    /// A new revision with the image, and the service rolling onto it.
    Updated,
    /// Already on the image.
    Unchanged,
    /// The agent has no service (named in the request but not deployed).
    Absent,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRollout {
    pub agent_id: String,
    pub action: RolloutAction,
    pub task_definition_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeployError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutReport {
    /// The image agents now run, pinned by digest (`…@sha256:…`).
    pub image: String,
    pub digest: String,
    pub agents: Vec<AgentRollout>,
}

/// The ACTIVE services of this deployer's agents in the cluster (by name prefix).
/// ListServices also shows services still draining after a delete: each is
/// described (10 per call) to keep only active ones.
async fn agent_services(clients: &AwsClients, settings: &DeployerSettings) -> Result<Vec<String>, DeployError> {
    let prefix = format!("{}-agent-", settings.prefix);
    let arns: Vec<String> = clients
        .ecs
        .list_services()
        .cluster(&settings.cluster)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(Step::Service, e))?;
    let names: Vec<String> = arns
        .iter()
        .filter_map(|arn| arn.rsplit('/').next())
        .filter(|name| name.strip_prefix(&prefix).is_some_and(|id| AgentId::parse(id).is_ok()))
        .map(str::to_owned)
        .collect();
    let mut active = Vec::new();
    for chunk in names.chunks(10) {
        let described = clients
            .ecs
            .describe_services()
            .cluster(&settings.cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| DeployError::aws(Step::Service, e))?;
        active.extend(
            described
                .services()
                .iter()
                .filter(|s| s.status() == Some("ACTIVE"))
                .filter_map(|s| s.service_name().map(str::to_owned)),
        );
    }
    active.sort();
    Ok(active)
}

/// Moves every agent (or `req.agents`) onto `req.image_tag`. One agent failing does
/// not stop the others; each result is reported.
pub async fn rollout(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: RolloutRequest,
) -> Result<RolloutReport, DeployError> {
    let image = crate::provision::runtime_image(clients, settings, &req.image_tag).await?;
    let services = match &req.agents {
        Some(agents) => agents.iter().map(|a| AgentNames::new(&settings.prefix, a).service).collect(),
        None => agent_services(clients, settings).await?,
    };
    let prefix = format!("{}-agent-", settings.prefix);
    let results = futures::stream::iter(services)
        .map(|name| {
            let image = image.clone();
            let prefix = prefix.clone();
            async move {
                let agent_id = name.strip_prefix(&prefix).unwrap_or(&name).to_owned();
                match roll_with_retries(clients, settings, &name, &image.uri).await {
                    Ok((action, arn)) => AgentRollout { agent_id, action, task_definition_arn: arn, error: None },
                    Err(e) => AgentRollout {
                        agent_id,
                        action: RolloutAction::Failed,
                        task_definition_arn: None,
                        error: Some(e),
                    },
                }
            }
        })
        .buffer_unordered(ROLLOUT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut agents = results;
    agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    Ok(RolloutReport { image: image.uri, digest: image.digest, agents })
}

/// One agent's roll, tried again after a retryable failure (AWS throttling what the
/// SDK's own retries did not absorb): a fleet rollout should not leave an agent
/// behind for a transient answer.
async fn roll_with_retries(
    clients: &AwsClients,
    settings: &DeployerSettings,
    service_name: &str,
    image: &str,
) -> Result<(RolloutAction, Option<String>), DeployError> {
    let mut delay = ROLLOUT_RETRY_DELAY;
    let mut attempt = 1;
    loop {
        match roll_one(clients, settings, service_name, image).await {
            Err(e) if e.retryable && attempt < ROLLOUT_ATTEMPTS => {
                tracing::info!(service = service_name, attempt, error = %e, "rollout of one agent failed: retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn roll_one(
    clients: &AwsClients,
    settings: &DeployerSettings,
    service_name: &str,
    image: &str,
) -> Result<(RolloutAction, Option<String>), DeployError> {
    let Some(service) = service::find(&clients.ecs, &settings.cluster, service_name).await? else {
        return Ok((RolloutAction::Absent, None));
    };
    let current_arn = service.task_definition().unwrap_or_default().to_owned();
    let current = clients
        .ecs
        .describe_task_definition()
        .task_definition(&current_arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| DeployError::aws(Step::TaskDefinition, e))?;
    let td = current.task_definition().ok_or_else(|| {
        DeployError::new(Step::TaskDefinition, None, format!("{current_arn} has no definition"), true)
    })?;
    if td.container_definitions().iter().any(|c| c.name() == Some(CONTAINER_NAME) && c.image() == Some(image)) {
        return Ok((RolloutAction::Unchanged, Some(current_arn)));
    }
    let new_arn = register_with_image(clients, td, current.tags(), image).await?;
    clients
        .ecs
        .update_service()
        .cluster(&settings.cluster)
        .service(service_name)
        .task_definition(&new_arn)
        .send()
        .await
        .map_err(|e| DeployError::aws(Step::Service, e))?;
    Ok((RolloutAction::Updated, Some(new_arn)))
}

/// Registers a copy of `td` whose runtime container runs `image`.
async fn register_with_image(
    clients: &AwsClients,
    td: &TaskDefinition,
    tags: &[aws_sdk_ecs::types::Tag],
    image: &str,
) -> Result<String, DeployError> {
    let containers = td
        .container_definitions()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.name() == Some(CONTAINER_NAME) {
                c.image = Some(image.to_owned());
            }
            c
        })
        .collect();
    let out = clients
        .ecs
        .register_task_definition()
        .set_family(td.family().map(str::to_owned))
        .set_network_mode(td.network_mode().cloned())
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_owned))
        .set_memory(td.memory().map(str::to_owned))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_owned))
        .set_task_role_arn(td.task_role_arn().map(str::to_owned))
        .set_container_definitions(Some(containers))
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
        .send()
        .await
        .map_err(|e| DeployError::aws(Step::TaskDefinition, e))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| DeployError::new(Step::TaskDefinition, None, "RegisterTaskDefinition returned no ARN", true))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Every agent that exists (from the control plane's database).
    pub known_agents: Vec<AgentId>,
    /// The listeners agents are placed on (to find their rules).
    pub listener_arns: Vec<String>,
    /// Delete what is found (transcript buckets are retained and tagged retired,
    /// never purged by a sweep). Default: only report.
    #[serde(default)]
    pub delete: bool,
}

/// Resources left by one agent that no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub agent_id: AgentId,
    /// `kind name` of each resource found.
    pub found: Vec<String>,
    /// What the sweep did, when asked to delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<crate::provision::AgentReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub orphans: Vec<Orphan>,
}

/// The agent id in a name of the form `{prefix}{id}{suffix}`, if it is one.
fn agent_in(name: &str, prefix: &str, suffix: &str) -> Option<AgentId> {
    name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)).and_then(|id| AgentId::parse(id).ok())
}

/// Finds resources in this deployer's namespace (names are deterministic, so the
/// prefix identifies ours) whose agent is not in `known_agents`; deletes them when
/// asked. Retired transcript buckets are expected leftovers and not reported.
pub async fn sweep(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: SweepRequest,
) -> Result<SweepReport, DeployError> {
    let p = &settings.prefix;
    let mut found: std::collections::BTreeMap<AgentId, Vec<String>> = Default::default();
    let mut note = |id: Option<AgentId>, what: String| {
        if let Some(id) = id.filter(|id| !req.known_agents.contains(id)) {
            found.entry(id).or_default().push(what);
        }
    };

    for name in agent_services(clients, settings).await? {
        note(agent_in(&name, &format!("{p}-agent-"), ""), format!("service {name}"));
    }
    let families: Vec<String> = clients
        .ecs
        .list_task_definition_families()
        .family_prefix(format!("{p}-agent-"))
        .status(aws_sdk_ecs::types::TaskDefinitionFamilyStatus::Active)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(Step::TaskDefinition, e))?;
    for family in families {
        // Listed as active by name; keep it only if a revision really is.
        if task_definition::latest(&clients.ecs, &family).await?.is_some() {
            note(agent_in(&family, &format!("{p}-agent-"), ""), format!("task definition {family}"));
        }
    }
    let groups: Vec<aws_sdk_elasticloadbalancingv2::types::TargetGroup> = clients
        .elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(Step::TargetGroup, e))?;
    for tg in groups {
        let name = tg.target_group_name().unwrap_or_default();
        note(agent_in(name, &format!("{p}-"), ""), format!("target group {name}"));
    }
    for listener in &req.listener_arns {
        for rule in listener_rule::rules(&clients.elb, listener).await? {
            for value in rule.conditions().iter().flat_map(|c| c.values()) {
                note(agent_in(value, "/agent/", "/*"), format!("listener rule {value}"));
            }
        }
    }
    let pages: Vec<_> = clients
        .secrets
        .list_secrets()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(Step::Secret, e))?;
    for s in pages.iter().flat_map(|page| page.secret_list()) {
        let name = s.name().unwrap_or_default();
        note(agent_in(name, &format!("{p}/agents/"), ""), format!("secret {name}"));
    }
    let buckets = clients.s3.list_buckets().send().await.map_err(|e| DeployError::aws(Step::Bucket, e))?;
    for b in buckets.buckets() {
        let name = b.name().unwrap_or_default();
        let Some(id) = agent_in(name, &format!("{p}-transcripts-"), "") else { continue };
        let tags = match clients.s3.get_bucket_tagging().bucket(name).send().await {
            Ok(t) => t.tag_set().to_vec(),
            Err(e) if code_of(&e).is_some_and(|c| c.starts_with("NoSuchTagSet")) => Vec::new(),
            Err(e) => return Err(DeployError::aws(Step::Bucket, e)),
        };
        if !tags.iter().any(|t| t.key() == crate::naming::tags::RETIRED) {
            note(Some(id), format!("bucket {name}"));
        }
    }

    let mut orphans = Vec::new();
    for (agent_id, found) in found {
        let deleted = if req.delete {
            // The rule is on one of the listeners; delete() looks on the one given.
            let names = AgentNames::new(p, &agent_id);
            let mut listener = req.listener_arns.first().cloned().unwrap_or_default();
            for l in &req.listener_arns {
                if listener_rule::find(&clients.elb, l, &names.path_pattern).await?.is_some() {
                    listener = l.clone();
                    break;
                }
            }
            let report = crate::provision::teardown(clients, settings, &agent_id, Some(&listener), false).await?;
            tracing::info!(agent_id = %agent_id, "orphan swept");
            Some(report)
        } else {
            None
        };
        orphans.push(Orphan { agent_id, found, deleted });
    }
    Ok(SweepReport { orphans })
}
