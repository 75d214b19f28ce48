//! `status`: what exists of one agent, and how its service is doing. Read-only.

use agent_spec::{AgentId, TenantId};
use aws_sdk_ecs::types::Service;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::DeployError;
use crate::naming::AgentNames;
use crate::report::{ResourceAction, ResourceKind, ResourceReport};
use crate::resources::{bucket, listener_rule, scaling, secret, service, target_group, task_definition, task_role};
use crate::settings::DeployerSettings;

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
    // Scheduled for deletion counts as absent.
    let secret = async {
        Ok(match secret::describe(&clients.secrets, &names.secret).await? {
            Some(s) if s.deleted_date().is_none() => {
                present(ResourceKind::Secret, &names.secret, s.arn().map(str::to_owned))
            }
            _ => absent(ResourceKind::Secret, &names.secret),
        })
    };
    let bucket_exists = async {
        Ok(if bucket::exists(&clients.s3, &names.bucket).await? {
            present(ResourceKind::Bucket, &names.bucket, Some(bucket::arn(settings.partition, &names.bucket)))
        } else {
            absent(ResourceKind::Bucket, &names.bucket)
        })
    };
    let role = async {
        let observed = task_role::observe(&clients.iam, &names.task_role).await?;
        Ok(match observed.role {
            Some(r) => present(ResourceKind::TaskRole, &names.task_role, Some(r.arn().to_owned())),
            None => absent(ResourceKind::TaskRole, &names.task_role),
        })
    };
    let scaling_id = scaling::resource_id(&settings.cluster, &names.service);
    let (bucket, secret, role, tg, td, rule, svc, autoscaling) = tokio::try_join!(
        bucket_exists,
        secret,
        role,
        target_group::find(&clients.elb, &names.target_group),
        task_definition::latest(&clients.ecs, &names.family),
        listener_rule::find(&clients.elb, &req.listener_arn, &names.path_pattern),
        service::find(&clients.ecs, &settings.cluster, &names.service),
        scaling::observe(&clients.autoscaling, &scaling_id),
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
        match autoscaling.target {
            Some(t) => present(ResourceKind::Autoscaling, &scaling_id, t.scalable_target_arn().map(str::to_owned)),
            None => absent(ResourceKind::Autoscaling, &scaling_id),
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
