//! The agent's ECS Fargate service: private subnets, no public IP, behind the
//! agent's target group; rolling deploys that keep 100 % of tasks healthy (up to
//! 200 % during the roll) with the circuit breaker rolling back a failed deploy.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType, LoadBalancer,
    NetworkConfiguration, PropagateTags, Service, Tag,
};

use crate::error::{DeployError, Step};
use crate::naming::CONTAINER_NAME;
use crate::report::{ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::Service;
pub const HEALTH_CHECK_GRACE_SECS: i32 = 60;

pub struct Desired<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub task_definition_arn: &'a str,
    pub desired_count: u32,
    pub target_group_arn: &'a str,
    pub port: i32,
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
    pub tags: &'a [(&'static str, String)],
}

fn deployment_configuration() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .minimum_healthy_percent(100)
        .maximum_percent(200)
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
        .build()
}

/// The service if it exists and is not being deleted (ECS keeps INACTIVE services
/// visible for a while after deletion; a new one may take the name).
pub async fn find(ecs: &Client, cluster: &str, name: &str) -> Result<Option<Service>, DeployError> {
    let out =
        ecs.describe_services().cluster(cluster).services(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
    Ok(out.services().iter().find(|s| s.status() == Some("ACTIVE")).cloned())
}

/// Creates the service, or updates what differs; `existing` is what [`find`] answered.
pub async fn converge(ecs: &Client, d: &Desired<'_>, existing: Option<Service>) -> Result<ResourceReport, DeployError> {
    let existed = existing.is_some();
    let mut changes = Vec::new();
    let arn = match existing {
        Some(service) => {
            let mut update = ecs.update_service().cluster(d.cluster).service(d.name);
            if service.task_definition() != Some(d.task_definition_arn) {
                update = update.task_definition(d.task_definition_arn);
                changes.push("task definition".to_owned());
            }
            if service.desired_count() != d.desired_count as i32 {
                update = update.desired_count(d.desired_count as i32);
                changes.push(format!("desired count {}", d.desired_count));
            }
            if !changes.is_empty() {
                update
                    .deployment_configuration(deployment_configuration())
                    .send()
                    .await
                    .map_err(|e| DeployError::aws(STEP, e))?;
            }
            service.service_arn().map(str::to_owned)
        }
        None => {
            let network = NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(d.subnets.to_vec()))
                        .set_security_groups(Some(d.security_groups.to_vec()))
                        .assign_public_ip(AssignPublicIp::Disabled)
                        .build()
                        .expect("subnets are set"),
                )
                .build();
            // Same agent and same revision → same token: a retried create is not doubled.
            let token: String = format!("{}-{}", d.name, d.task_definition_arn.rsplit(':').next().unwrap_or("0"))
                .chars()
                .rev()
                .take(36)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let out = ecs
                .create_service()
                .cluster(d.cluster)
                .service_name(d.name)
                .task_definition(d.task_definition_arn)
                .desired_count(d.desired_count as i32)
                .launch_type(LaunchType::Fargate)
                .network_configuration(network)
                .load_balancers(
                    LoadBalancer::builder()
                        .target_group_arn(d.target_group_arn)
                        .container_name(CONTAINER_NAME)
                        .container_port(d.port)
                        .build(),
                )
                .health_check_grace_period_seconds(HEALTH_CHECK_GRACE_SECS)
                .deployment_configuration(deployment_configuration())
                .propagate_tags(PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .client_token(token)
                .set_tags(Some(d.tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()))
                .send()
                .await
                .map_err(|e| DeployError::aws(STEP, e))?;
            out.service().and_then(|s| s.service_arn()).map(str::to_owned)
        }
    };
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::Service, d.name, arn, action).with_changes(changes))
}
