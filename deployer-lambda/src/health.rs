//! `health`: how the rollout of one deployed task definition is going, as ECS and the
//! load balancer see it. A deploy returns as soon as AWS accepted it; the control
//! plane then asks `health` until the answer is final:
//!
//! - `healthy`: ECS reports the service deployment running that task definition
//!   `COMPLETED`, and the target group has at least as many healthy targets as the
//!   deployment's desired count;
//! - `failed`: the deployment circuit breaker marked it `FAILED` (ECS's reason is
//!   given), or ECS no longer runs it (rolled back, or replaced by another revision);
//! - `rolling_out`: anything else. The control plane gives up after its rollout
//!   timeout.
//!
//! Read-only: DescribeServices and DescribeTargetHealth.

use agent_spec::{AgentId, TenantId};
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::{DeployError, Step};
use crate::naming::AgentNames;
use crate::resources::service;
use crate::settings::DeployerSettings;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthRequest {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    /// The task definition revision the deploy put in place.
    pub task_definition_arn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    RollingOut,
    Healthy,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutHealth {
    pub agent_id: AgentId,
    pub stage: Stage,
    /// ECS's rollout state of the deployment (`IN_PROGRESS`, `COMPLETED`, `FAILED`).
    pub rollout_state: Option<String>,
    /// What ECS or the deployer says about it (the circuit breaker's reason on failure).
    pub reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub healthy_targets: i32,
}

pub async fn health(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: HealthRequest,
) -> Result<RolloutHealth, DeployError> {
    let names = AgentNames::new(&settings.prefix, &req.agent_id);
    let report =
        |stage, rollout_state: Option<String>, reason: Option<String>, counts: (i32, i32, i32)| RolloutHealth {
            agent_id: req.agent_id.clone(),
            stage,
            rollout_state,
            reason,
            desired: counts.0,
            running: counts.1,
            healthy_targets: counts.2,
        };
    let Some(svc) = service::find(&clients.ecs, &settings.cluster, &names.service).await? else {
        let reason = format!("the service {} does not exist (deleted during the rollout?)", names.service);
        return Ok(report(Stage::Failed, None, Some(reason), (0, 0, 0)));
    };
    let ours = svc.deployments().iter().find(|d| d.task_definition() == Some(req.task_definition_arn.as_str()));
    let Some(ours) = ours else {
        if svc.task_definition() == Some(req.task_definition_arn.as_str()) {
            // The service runs it, but ECS lists no deployment of it (yet).
            let reason = "the service runs this revision, but ECS lists no deployment of it yet".to_owned();
            return Ok(report(Stage::RollingOut, None, Some(reason), (svc.desired_count(), svc.running_count(), 0)));
        }
        let now = svc.task_definition().unwrap_or("another revision");
        let reason = format!(
            "ECS no longer runs {}: the service runs {now} (rolled back by the circuit breaker, or replaced by a \
             later deploy)",
            req.task_definition_arn
        );
        return Ok(report(Stage::Failed, None, Some(reason), (svc.desired_count(), svc.running_count(), 0)));
    };
    let state = ours.rollout_state().map(|s| s.as_str().to_owned());
    let ecs_reason = ours.rollout_state_reason().map(str::to_owned);
    let (desired, running) = (ours.desired_count(), ours.running_count());
    if state.as_deref() == Some("FAILED") {
        let reason = ecs_reason.unwrap_or_else(|| "ECS marked the deployment FAILED".into());
        return Ok(report(Stage::Failed, state, Some(reason), (desired, running, 0)));
    }

    let healthy = match svc.load_balancers().first().and_then(|lb| lb.target_group_arn()) {
        Some(tg) => {
            let out = clients
                .elb
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .map_err(|e| DeployError::aws(Step::TargetGroup, e))?;
            out.target_health_descriptions()
                .iter()
                .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy))
                .count() as i32
        }
        None => 0,
    };
    let primary = ours.status() == Some("PRIMARY");
    let stage = if primary && state.as_deref() == Some("COMPLETED") && healthy >= desired {
        Stage::Healthy
    } else {
        Stage::RollingOut
    };
    let reason = match stage {
        Stage::RollingOut => Some(format!(
            "rollout {}: {running} of {desired} tasks running, {healthy} healthy target(s)",
            state.as_deref().unwrap_or("not reported by ECS")
        )),
        _ => ecs_reason,
    };
    Ok(report(stage, state, reason, (desired, running, healthy)))
}
