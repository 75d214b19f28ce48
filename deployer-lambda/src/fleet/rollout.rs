//! `rollout`: a new runtime image, pinned by digest, to every agent (or a named set)
//! — what CI invokes after pushing an image.

use agent_spec::AgentId;
use aws_sdk_ecs::types::TaskDefinition;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::{DeployError, Step};
use crate::naming::{AgentNames, CONTAINER_NAME};
use crate::resources::service;
use crate::settings::DeployerSettings;

/// How many agents a rollout updates at once.
const ROLLOUT_CONCURRENCY: usize = 8;
/// Attempts per agent in a rollout, and the first pause between them (doubling).
const ROLLOUT_ATTEMPTS: u32 = 3;
const ROLLOUT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// The runtime image to move agents onto (checked in ECR first): a tag, or a
    /// digest `sha256:…` (what a release pipeline's push reported).
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

/// The names of this deployer's agents' ACTIVE services in the cluster.
async fn agent_services(clients: &AwsClients, settings: &DeployerSettings) -> Result<Vec<String>, DeployError> {
    let ours = |name: &str| AgentNames::agent_of_service(&settings.prefix, name).is_some();
    let services = service::active_in_cluster(&clients.ecs, &settings.cluster, ours, false).await?;
    let mut names: Vec<String> = services.iter().filter_map(|s| s.service_name().map(str::to_owned)).collect();
    names.sort();
    Ok(names)
}

/// Moves every agent (or `req.agents`) onto `req.image_tag` (a tag or a digest). One
/// agent failing does not stop the others; each result is reported.
pub async fn rollout(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: RolloutRequest,
) -> Result<RolloutReport, DeployError> {
    let reference = crate::provision::ImageRef::parse("image_tag", &req.image_tag)?;
    let image = crate::provision::resolve_image(clients, settings, reference).await?;
    let services = match &req.agents {
        Some(agents) => agents.iter().map(|a| AgentNames::new(&settings.prefix, a).service).collect(),
        None => agent_services(clients, settings).await?,
    };
    let results = futures::stream::iter(services)
        .map(|name| {
            let image = image.clone();
            async move {
                let agent_id = AgentNames::agent_of_service(&settings.prefix, &name)
                    .map_or_else(|| name.clone(), |a| a.to_string());
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
        .set_runtime_platform(td.runtime_platform().cloned())
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
