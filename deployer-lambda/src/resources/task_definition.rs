//! The agent's task definition family. A new revision is registered only when what
//! the container would run differs from the latest revision: image, environment,
//! secret references, size, roles, port, logs or stop timeout.

use std::collections::BTreeMap;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, KeyValuePair, LogConfiguration, LogDriver, NetworkMode,
    OsFamily, PortMapping, RuntimePlatform, Secret, Tag, TaskDefinition, TransportProtocol,
};

use crate::error::{DeployError, Step, code_of};
use crate::naming::CONTAINER_NAME;
use crate::report::{ResourceAction, ResourceKind, ResourceReport};

const STEP: Step = Step::TaskDefinition;
/// Fargate's maximum: time between SIGTERM and SIGKILL, for the runtime to end
/// live calls politely and flush their artifacts.
pub const STOP_TIMEOUT_SECS: i32 = 120;

/// What the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub family: String,
    pub image: String,
    /// Plain environment, sorted by name.
    pub environment: BTreeMap<String, String>,
    /// Secret variable name → `valueFrom` reference.
    pub secrets: BTreeMap<String, String>,
    pub cpu: u32,
    pub memory_mib: u32,
    /// `runtimePlatform.cpuArchitecture`: `X86_64` or `ARM64`.
    pub cpu_architecture: &'static str,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub port: i32,
    pub log_group: String,
    pub region: String,
    pub stream_prefix: String,
}

impl Desired {
    fn container(&self) -> ContainerDefinition {
        let mut options = std::collections::HashMap::new();
        options.insert("awslogs-group".to_owned(), self.log_group.clone());
        options.insert("awslogs-region".to_owned(), self.region.clone());
        options.insert("awslogs-stream-prefix".to_owned(), self.stream_prefix.clone());
        options.insert("awslogs-create-group".to_owned(), "true".to_owned());
        ContainerDefinition::builder()
            .name(CONTAINER_NAME)
            .image(&self.image)
            .essential(true)
            .stop_timeout(STOP_TIMEOUT_SECS)
            .port_mappings(PortMapping::builder().container_port(self.port).protocol(TransportProtocol::Tcp).build())
            .set_environment(Some(
                self.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect(),
            ))
            .set_secrets(Some(
                self.secrets
                    .iter()
                    .map(|(k, v)| Secret::builder().name(k).value_from(v).build().expect("name and valueFrom"))
                    .collect(),
            ))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .set_options(Some(options))
                    .build()
                    .expect("log driver is set"),
            )
            .build()
    }

    /// Whether `current` runs exactly what `self` describes.
    fn matches(&self, current: &TaskDefinition) -> bool {
        let Some(c) = current.container_definitions().iter().find(|c| c.name() == Some(CONTAINER_NAME)) else {
            return false;
        };
        let environment: BTreeMap<String, String> = c
            .environment()
            .iter()
            .map(|kv| (kv.name().unwrap_or_default().to_owned(), kv.value().unwrap_or_default().to_owned()))
            .collect();
        let secrets: BTreeMap<String, String> =
            c.secrets().iter().map(|s| (s.name().to_owned(), s.value_from().to_owned())).collect();
        let log = c.log_configuration().and_then(|l| l.options()).cloned().unwrap_or_default();
        c.image() == Some(self.image.as_str())
            && environment == self.environment
            && secrets == self.secrets
            && current.cpu() == Some(self.cpu.to_string().as_str())
            && current.memory() == Some(self.memory_mib.to_string().as_str())
            && current.runtime_platform().and_then(|p| p.cpu_architecture()).map(|a| a.as_str())
                == Some(self.cpu_architecture)
            && current.execution_role_arn() == Some(self.execution_role_arn.as_str())
            && current.task_role_arn() == Some(self.task_role_arn.as_str())
            && c.port_mappings().iter().any(|p| p.container_port() == Some(self.port))
            && c.stop_timeout() == Some(STOP_TIMEOUT_SECS)
            && log.get("awslogs-group") == Some(&self.log_group)
            && log.get("awslogs-stream-prefix") == Some(&self.stream_prefix)
    }
}

/// The image the runtime container of `td` runs.
pub fn image_of(td: &TaskDefinition) -> Option<&str> {
    td.container_definitions().iter().find(|c| c.name() == Some(CONTAINER_NAME)).and_then(|c| c.image())
}

/// The latest ACTIVE revision of `family`, if any (a family whose revisions were all
/// deregistered has none).
pub async fn latest(ecs: &Client, family: &str) -> Result<Option<TaskDefinition>, DeployError> {
    match ecs.describe_task_definition().task_definition(family).send().await {
        Ok(out) => Ok(out
            .task_definition()
            .filter(|td| td.status() == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active))
            .cloned()),
        // ECS answers a missing family with a ClientException.
        Err(e) if code_of(&e) == Some("ClientException") => Ok(None),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

/// Deregisters every ACTIVE revision of the family.
pub async fn remove(ecs: &Client, family: &str) -> Result<ResourceReport, DeployError> {
    let revisions: Vec<String> = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(STEP, e))?;
    // `family_prefix` also matches longer family names; keep this family only.
    let revisions: Vec<String> = revisions
        .into_iter()
        .filter(|arn| arn.rsplit_once('/').is_some_and(|(_, fr)| fr.rsplit_once(':').is_some_and(|(f, _)| f == family)))
        .collect();
    for arn in &revisions {
        ecs.deregister_task_definition().task_definition(arn).send().await.map_err(|e| DeployError::aws(STEP, e))?;
    }
    let action = if revisions.is_empty() { ResourceAction::Absent } else { ResourceAction::Deleted };
    Ok(ResourceReport::new(ResourceKind::TaskDefinition, family, revisions.last().cloned(), action))
}

/// Registers a revision unless `current` (what [`latest`] answered) already matches.
pub async fn converge(
    ecs: &Client,
    d: &Desired,
    tags: &[(&'static str, String)],
    current: Option<TaskDefinition>,
) -> Result<ResourceReport, DeployError> {
    if let Some(current) = current.as_ref().filter(|c| d.matches(c)) {
        let arn = current.task_definition_arn().map(str::to_owned);
        return Ok(ResourceReport::new(ResourceKind::TaskDefinition, &d.family, arn, ResourceAction::Unchanged));
    }
    let out = ecs
        .register_task_definition()
        .family(&d.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(d.cpu.to_string())
        .memory(d.memory_mib.to_string())
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::from(d.cpu_architecture))
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .execution_role_arn(&d.execution_role_arn)
        .task_role_arn(&d.task_role_arn)
        .container_definitions(d.container())
        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()))
        .send()
        .await
        .map_err(|e| DeployError::aws(STEP, e))?;
    let registered = out.task_definition();
    let arn = registered.and_then(|t| t.task_definition_arn()).map(str::to_owned);
    let revision = registered.map(|t| t.revision()).unwrap_or_default();
    let (action, changes) = match current {
        None => (ResourceAction::Created, Vec::new()),
        Some(_) => (ResourceAction::Updated, vec![format!("revision {revision}")]),
    };
    Ok(ResourceReport::new(ResourceKind::TaskDefinition, &d.family, arn, action).with_changes(changes))
}
