//! The agent's autoscaling (Application Auto Scaling): a scalable target on its ECS
//! service's desired count, from `sizing.min_tasks` to `sizing.max_tasks`, and one
//! target-tracking policy that holds live calls per task at
//! `sizing.target_calls_per_task`.
//!
//! The metric is `TempoVoice/LiveCalls` with the dimension `AgentId`, which every
//! task of the agent writes once a minute in CloudWatch's embedded metric format
//! (see the runtime's `emf` module); its `Average` over a minute is the live calls
//! per task, a metric that falls in proportion as tasks are added, as target
//! tracking requires.
//!
//! Scale-out is fast and scale-in slow: target tracking scales out after 3 minutes
//! above the target and in after 15 minutes below it; after a scale-out the next
//! may follow [`SCALE_OUT_COOLDOWN_SECS`] later, a scale-in
//! [`SCALE_IN_COOLDOWN_SECS`] after the last activity. A task stopped by a scale-in
//! never has a live call: the runtime holds ECS task scale-in protection while it
//! has one.
//!
//! An agent that does not scale (paused, or `max_tasks` = `min_tasks`) has neither.

use std::collections::HashMap;

use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::{
    CustomizedMetricSpecification, MetricDimension, MetricStatistic, PolicyType, ScalableDimension, ScalableTarget,
    ScalingPolicy, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};

use crate::consistency::{SETTLE, autoscaling_settling, settle};
use crate::error::{DeployError, Step};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::Autoscaling;
/// The one policy each agent's scalable target has.
pub const POLICY_NAME: &str = "live-calls-per-task";
pub const METRIC_NAMESPACE: &str = "TempoVoice";
pub const METRIC_NAME: &str = "LiveCalls";
pub const METRIC_DIMENSION: &str = "AgentId";
/// After a scale-out, the next may follow a minute later: a burst that keeps
/// growing gets a task a minute.
pub const SCALE_OUT_COOLDOWN_SECS: i32 = 60;
/// Between a scale-in and the next scaling activity that removes a task.
pub const SCALE_IN_COOLDOWN_SECS: i32 = 300;

/// `service/{cluster}/{service}`: how Application Auto Scaling names an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

pub struct Desired<'a> {
    pub resource_id: String,
    pub agent_id: &'a str,
    pub min_tasks: u32,
    pub max_tasks: u32,
    pub target_calls_per_task: u32,
    pub tags: &'a [(&'static str, String)],
}

impl Desired<'_> {
    fn policy(&self) -> TargetTrackingScalingPolicyConfiguration {
        let dimension =
            MetricDimension::builder().name(METRIC_DIMENSION).value(self.agent_id).build().expect("name and value set");
        let metric = CustomizedMetricSpecification::builder()
            .namespace(METRIC_NAMESPACE)
            .metric_name(METRIC_NAME)
            .dimensions(dimension)
            .statistic(MetricStatistic::Average)
            .unit("Count")
            .build();
        TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(f64::from(self.target_calls_per_task))
            .customized_metric_specification(metric)
            .scale_out_cooldown(SCALE_OUT_COOLDOWN_SECS)
            .scale_in_cooldown(SCALE_IN_COOLDOWN_SECS)
            .disable_scale_in(false)
            .build()
            .expect("target value set")
    }
}

/// What exists: the scalable target and the agent's policy on it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub target: Option<ScalableTarget>,
    pub policy: Option<ScalingPolicy>,
}

/// Reads the scalable target and its policy (two reads, concurrently).
pub async fn observe(aas: &Client, resource_id: &str) -> Result<Observed, DeployError> {
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_ids(resource_id)
        .send();
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(resource_id)
        .policy_names(POLICY_NAME)
        .send();
    let (targets, policies) = tokio::join!(targets, policies);
    let targets = targets.map_err(|e| DeployError::aws(STEP, e))?;
    let policies = policies.map_err(|e| DeployError::aws(STEP, e))?;
    Ok(Observed {
        target: targets.scalable_targets().iter().find(|t| t.resource_id() == resource_id).cloned(),
        policy: policies
            .scaling_policies()
            .iter()
            .find(|p| p.resource_id() == resource_id && p.policy_name() == POLICY_NAME)
            .cloned(),
    })
}

/// Whether the stored policy is the one wanted: the fields this module sets, with
/// AWS's defaults for what it may leave out.
fn policy_matches(found: &ScalingPolicy, want: &TargetTrackingScalingPolicyConfiguration) -> bool {
    let Some(have) = found.target_tracking_scaling_policy_configuration() else { return false };
    let metric = |c: &TargetTrackingScalingPolicyConfiguration| {
        c.customized_metric_specification().map(|m| {
            let dims: Vec<(String, String)> =
                m.dimensions().iter().map(|d| (d.name().to_owned(), d.value().to_owned())).collect();
            (m.namespace().map(str::to_owned), m.metric_name().map(str::to_owned), dims, m.statistic().cloned())
        })
    };
    found.policy_type() == &PolicyType::TargetTrackingScaling
        && (have.target_value() - want.target_value()).abs() < 1e-9
        && metric(have) == metric(want)
        && have.scale_out_cooldown() == want.scale_out_cooldown()
        && have.scale_in_cooldown() == want.scale_in_cooldown()
        && have.disable_scale_in().unwrap_or(false) == want.disable_scale_in().unwrap_or(false)
}

/// Registers the scalable target and puts the policy where they differ from
/// `desired`; with `desired` `None` (the agent does not scale), removes both. The
/// service must exist: Application Auto Scaling checks it.
pub async fn converge(
    aas: &Client,
    resource_id: &str,
    desired: Option<&Desired<'_>>,
    observed: Observed,
) -> Result<ResourceReport, DeployError> {
    let Some(d) = desired else {
        return remove_observed(aas, resource_id, observed).await;
    };
    let existed = observed.target.is_some();
    let mut changes = Vec::new();
    let (min, max) = (d.min_tasks as i32, d.max_tasks as i32);
    let range_matches = observed.target.as_ref().is_some_and(|t| t.min_capacity() == min && t.max_capacity() == max);
    let mut arn = observed.target.as_ref().and_then(|t| t.scalable_target_arn()).map(str::to_owned);
    if !range_matches {
        let register = aas
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .min_capacity(min)
            .max_capacity(max);
        let send = |register: aws_sdk_applicationautoscaling::operation::register_scalable_target::builders::RegisterScalableTargetFluentBuilder| {
            settle(SETTLE, autoscaling_settling, move || {
                let register = register.clone();
                async move { register.send().await.map_err(|e| DeployError::aws(STEP, e)) }
            })
        };
        // Tags go with the target's creation only: AWS refuses them for a target that
        // exists ("…use the TagResource API"). One can exist unseen: a concurrent
        // deploy made it, or an earlier attempt that timed out had. It keeps its tags.
        let out = if existed {
            send(register).await?
        } else {
            let tags: HashMap<String, String> = d.tags.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            match send(register.clone().set_tags(Some(tags))).await {
                Err(e) if tags_refused_on_existing(&e) => send(register).await?,
                other => other?,
            }
        };
        arn = out.scalable_target_arn().map(str::to_owned).or(arn);
        changes.push(format!("tasks {min}–{max}"));
    }
    let want = d.policy();
    if !observed.policy.as_ref().is_some_and(|p| policy_matches(p, &want)) {
        let put = aas
            .put_scaling_policy()
            .policy_name(POLICY_NAME)
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(want);
        settle(SETTLE, autoscaling_settling, || {
            let put = put.clone();
            async move { put.send().await.map_err(|e| DeployError::aws(STEP, e)) }
        })
        .await?;
        changes.push(format!("target {} live calls per task", d.target_calls_per_task));
    }
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::Autoscaling, resource_id, arn, action).with_changes(changes))
}

/// AWS's answer to tags on RegisterScalableTarget for a target that already exists.
fn tags_refused_on_existing(e: &DeployError) -> bool {
    e.code.as_deref() == Some("ValidationException") && e.message.contains("already exists")
}

/// Removes the policy, then the scalable target (which AWS would also take the
/// policy with; deleting it first leaves nothing behind if the second call fails).
pub async fn remove(aas: &Client, resource_id: &str) -> Result<ResourceReport, DeployError> {
    let observed = observe(aas, resource_id).await?;
    remove_observed(aas, resource_id, observed).await
}

async fn remove_observed(aas: &Client, resource_id: &str, observed: Observed) -> Result<ResourceReport, DeployError> {
    if observed.policy.is_none() && observed.target.is_none() {
        return Ok(ResourceReport::new(ResourceKind::Autoscaling, resource_id, None, ResourceAction::Absent));
    }
    // Already gone is done; a change still being applied is waited out.
    let gone = |e: &DeployError| e.code.as_deref() == Some("ObjectNotFoundException");
    let busy = |e: &DeployError| e.code.as_deref() == Some("ConcurrentUpdateException");
    if observed.policy.is_some() {
        let delete = aas
            .delete_scaling_policy()
            .policy_name(POLICY_NAME)
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id);
        let deleted = settle(SETTLE, busy, || {
            let delete = delete.clone();
            async move { delete.send().await.map_err(|e| DeployError::aws(STEP, e)) }
        })
        .await;
        if let Err(e) = deleted
            && !gone(&e)
        {
            return Err(e);
        }
    }
    let arn = observed.target.as_ref().and_then(|t| t.scalable_target_arn()).map(str::to_owned);
    if observed.target.is_some() {
        let deregister = aas
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id);
        let deregistered = settle(SETTLE, busy, || {
            let deregister = deregister.clone();
            async move { deregister.send().await.map_err(|e| DeployError::aws(STEP, e)) }
        })
        .await;
        if let Err(e) = deregistered
            && !gone(&e)
        {
            return Err(e);
        }
    }
    Ok(ResourceReport::new(ResourceKind::Autoscaling, resource_id, arn, ResourceAction::Deleted))
}
