//! The agent's ECS Fargate service: private subnets, no public IP, behind the
//! agent's target group; rolling deploys that keep 100 % of tasks healthy (up to
//! 200 % during the roll) with the circuit breaker rolling back a failed deploy.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType, LoadBalancer,
    NetworkConfiguration, PropagateTags, Service, Tag,
};

use std::time::Duration;

use crate::consistency::{SETTLE, service_draining, settle, target_group_not_associated};
use crate::error::{DeployError, Step};
use crate::naming::CONTAINER_NAME;
use crate::report::{ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::Service;
pub const HEALTH_CHECK_GRACE_SECS: i32 = 60;

pub struct Desired<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub task_definition_arn: &'a str,
    pub tasks: Tasks,
    pub target_group_arn: &'a str,
    pub port: i32,
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
    pub tags: &'a [(&'static str, String)],
    /// Longest wait for a deleted service of the same name to finish draining.
    pub drain_wait: Duration,
}

/// How many tasks the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tasks {
    /// Exactly this many (0: paused).
    Fixed(u32),
    /// Autoscaling decides, within these bounds: a new service starts at `min`, and
    /// a deploy leaves the current count alone unless it is outside them (it would
    /// otherwise undo what autoscaling did).
    Scaled { min: u32, max: u32 },
}

impl Tasks {
    /// The desired count for a service that has `current` (none when creating), if
    /// it must change.
    pub fn desired(self, current: Option<i32>) -> Option<i32> {
        let want = match (self, current) {
            (Self::Fixed(n), _) | (Self::Scaled { min: n, .. }, None) => n as i32,
            (Self::Scaled { min, max }, Some(c)) => c.clamp(min as i32, max as i32),
        };
        (current != Some(want)).then_some(want)
    }
}

impl Desired<'_> {
    fn load_balancer(&self) -> LoadBalancer {
        LoadBalancer::builder()
            .target_group_arn(self.target_group_arn)
            .container_name(CONTAINER_NAME)
            .container_port(self.port)
            .build()
    }
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
            if let Some(count) = d.tasks.desired(Some(service.desired_count())) {
                update = update.desired_count(count);
                changes.push(format!("desired count {count}"));
            }
            // The service must be behind the agent's own target group, on the runtime
            // port, and nothing else (a replaced target group, a changed port).
            if service.load_balancers() != [d.load_balancer()] {
                update = update.load_balancers(d.load_balancer());
                changes.push("load balancer".to_owned());
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
            let create = ecs
                .create_service()
                .cluster(d.cluster)
                .service_name(d.name)
                .task_definition(d.task_definition_arn)
                .set_desired_count(d.tasks.desired(None))
                .launch_type(LaunchType::Fargate)
                .network_configuration(network)
                .load_balancers(d.load_balancer())
                .health_check_grace_period_seconds(HEALTH_CHECK_GRACE_SECS)
                .deployment_configuration(deployment_configuration())
                .propagate_tags(PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .client_token(token)
                .set_tags(Some(d.tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()));
            let out = create_after_drain(ecs, d, || {
                let create = create.clone();
                async move { create.send().await.map_err(|e| DeployError::aws(STEP, e)) }
            })
            .await?;
            out.service().and_then(|s| s.service_arn()).map(str::to_owned)
        }
    };
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::Service, d.name, arn, action).with_changes(changes))
}

/// Runs CreateService: retried while ECS does not yet see the target group attached
/// to the load balancer (the rule was just created), and, while a deleted service of
/// the same name is still DRAINING, waited for up to `d.drain_wait` (it can drain as
/// long as the target group's deregistration delay). Past that, a retryable error
/// says what is being waited for.
async fn create_after_drain<T, Fut>(ecs: &Client, d: &Desired<'_>, create: impl Fn() -> Fut) -> Result<T, DeployError>
where
    Fut: Future<Output = Result<T, DeployError>>,
{
    let started = tokio::time::Instant::now();
    let poll = (d.drain_wait / 12).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match settle(SETTLE, target_group_not_associated, &create).await {
            Err(e) if service_draining(&e) => {
                if started.elapsed() >= d.drain_wait {
                    return Err(DeployError::new(
                        STEP,
                        e.code.as_deref(),
                        format!(
                            "the agent's previous service {} was deleted and is still draining after {} s: ECS \
                             keeps it until its tasks have stopped, which can take as long as the target \
                             group's deregistration delay. The deploy can be retried; it creates the service \
                             once the old one is INACTIVE",
                            d.name,
                            started.elapsed().as_secs()
                        ),
                        true,
                    ));
                }
                tracing::info!(service = d.name, "a deleted service of this name is still draining: waiting");
                tokio::time::sleep(poll).await;
                // Nothing to do until ECS reports it gone: look, then try again.
                while started.elapsed() < d.drain_wait
                    && status(ecs, d.cluster, d.name).await?.as_deref() == Some("DRAINING")
                {
                    tokio::time::sleep(poll).await;
                }
            }
            other => return other,
        }
    }
}

/// The ACTIVE services of the cluster whose name `keep` accepts, described 10 per
/// call (with their tags when `tags`): ListServices also lists services still
/// draining after a delete, which are left out.
pub async fn active_in_cluster(
    ecs: &Client,
    cluster: &str,
    keep: impl Fn(&str) -> bool,
    tags: bool,
) -> Result<Vec<Service>, DeployError> {
    let arns: Vec<String> = ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| DeployError::aws(STEP, e))?;
    let kept: Vec<String> = arns.into_iter().filter(|arn| arn.rsplit('/').next().is_some_and(&keep)).collect();
    let mut active = Vec::new();
    for chunk in kept.chunks(10) {
        let mut describe = ecs.describe_services().cluster(cluster).set_services(Some(chunk.to_vec()));
        if tags {
            describe = describe.include(aws_sdk_ecs::types::ServiceField::Tags);
        }
        let described = describe.send().await.map_err(|e| DeployError::aws(STEP, e))?;
        active.extend(described.services().iter().filter(|s| s.status() == Some("ACTIVE")).cloned());
    }
    Ok(active)
}

/// Scales the service to zero, then deletes it (forced: it stays DRAINING until its
/// tasks have stopped, which a redeploy waits out).
pub async fn remove(ecs: &Client, cluster: &str, name: &str) -> Result<ResourceReport, DeployError> {
    let Some(s) = find(ecs, cluster, name).await? else {
        return Ok(ResourceReport::new(ResourceKind::Service, name, None, crate::report::ResourceAction::Absent));
    };
    let arn = s.service_arn().map(str::to_owned);
    if s.desired_count() > 0 {
        let scale = ecs.update_service().cluster(cluster).service(name).desired_count(0);
        scale.send().await.map_err(|e| DeployError::aws(STEP, e))?;
    }
    ecs.delete_service()
        .cluster(cluster)
        .service(name)
        .force(true)
        .send()
        .await
        .map_err(|e| DeployError::aws(STEP, e))?;
    Ok(ResourceReport::new(ResourceKind::Service, name, arn, crate::report::ResourceAction::Deleted))
}

/// The service's status (`ACTIVE`, `DRAINING`, `INACTIVE`), if ECS knows it.
pub async fn status(ecs: &Client, cluster: &str, name: &str) -> Result<Option<String>, DeployError> {
    let out =
        ecs.describe_services().cluster(cluster).services(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
    Ok(out.services().iter().find_map(|s| s.status()).map(str::to_owned))
}
