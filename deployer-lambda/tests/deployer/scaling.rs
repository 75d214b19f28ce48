//! Autoscaling against moto server: an agent with `max_tasks: 4` gets a scalable
//! target and a target-tracking policy on live calls per task, read back here; a
//! repeated deploy writes nothing; a deploy keeps the task count autoscaling chose
//! (clamped into a narrowed range); an agent made fixed-size or deleted has neither.

use crate::common;

use agent_spec::{AgentId, TenantId};
use aws_sdk_applicationautoscaling::types::{MetricStatistic, PolicyType, ScalableDimension};
use common::*;
use deployer_lambda::naming::AgentNames;
use deployer_lambda::report::{ResourceAction, ResourceKind};
use deployer_lambda::resources::scaling;
use deployer_lambda::{DeleteRequest, DeployRequest, delete, deploy};

fn action_of(report: &deployer_lambda::AgentReport, kind: ResourceKind) -> ResourceAction {
    report.resources.iter().find(|r| r.kind == kind).map(|r| r.action).expect("resource in report")
}

fn sized(base: &Base, agent: &AgentId, tenant: &TenantId, min: u32, max: u32) -> DeployRequest {
    let mut draft = agent_draft();
    draft.sizing.min_tasks = min;
    draft.sizing.max_tasks = Some(max);
    let mut req = request(base, agent, tenant, 21);
    req.config = draft.validate(None).unwrap().0;
    req
}

struct Read {
    range: Option<(i32, i32)>,
    policy: Option<aws_sdk_applicationautoscaling::types::ScalingPolicy>,
    desired: i32,
}

async fn read(base: &Base, agent: &AgentId) -> Read {
    let names = AgentNames::new(&base.settings.prefix, agent);
    let (target, policy) = autoscaling_of(base, &names).await;
    assert!(target.as_ref().is_none_or(|t| t.scalable_dimension() == &ScalableDimension::EcsServiceDesiredCount));
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let services = ecs.describe_services().cluster(&base.settings.cluster).services(&names.service).send().await;
    let desired =
        services.unwrap().services().iter().find(|s| s.status() == Some("ACTIVE")).map_or(0, |s| s.desired_count());
    Read { range: target.map(|t| (t.min_capacity(), t.max_capacity())), policy, desired }
}

/// What Application Auto Scaling does when the policy fires: sets the desired count.
async fn scale_to(base: &Base, agent: &AgentId, count: i32) {
    let names = AgentNames::new(&base.settings.prefix, agent);
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    ecs.update_service()
        .cluster(&base.settings.cluster)
        .service(&names.service)
        .desired_count(count)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_agent_scales_on_live_calls_per_task_between_its_bounds_and_a_delete_removes_the_scaling() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());

    let report = deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 1, 4)).await.unwrap();
    assert_eq!(action_of(&report, ResourceKind::Autoscaling), ResourceAction::Created);
    let now = read(&base, &agent).await;
    assert_eq!(now.range, Some((1, 4)));
    assert_eq!(now.desired, 1, "a new service starts at min_tasks");
    let policy = now.policy.expect("a scaling policy");
    assert_eq!(policy.policy_name(), scaling::POLICY_NAME);
    assert_eq!(policy.policy_type(), &PolicyType::TargetTrackingScaling);
    let tracking = policy.target_tracking_scaling_policy_configuration().unwrap();
    assert_eq!(tracking.target_value(), 35.0, "70 % of the default 50 calls per task");
    assert_eq!(tracking.scale_out_cooldown(), Some(scaling::SCALE_OUT_COOLDOWN_SECS));
    assert_eq!(tracking.scale_in_cooldown(), Some(scaling::SCALE_IN_COOLDOWN_SECS));
    let metric = tracking.customized_metric_specification().unwrap();
    assert_eq!((metric.namespace(), metric.metric_name()), (Some("TempoVoice"), Some("LiveCalls")));
    assert_eq!(metric.statistic(), Some(&MetricStatistic::Average));
    let dims: Vec<(&str, &str)> = metric.dimensions().iter().map(|d| (d.name(), d.value())).collect();
    assert_eq!(dims, [("AgentId", agent.as_str())]);

    // A repeated deploy writes nothing.
    base.recorder.clear();
    let again = deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 1, 4)).await.unwrap();
    assert_eq!(base.recorder.mutating_calls(), [], "a repeated deploy changed something");
    assert_eq!(action_of(&again, ResourceKind::Autoscaling), ResourceAction::Unchanged);

    // Autoscaling added two tasks; a config change rolls the service and keeps them.
    scale_to(&base, &agent, 3).await;
    base.recorder.clear();
    let mut changed = sized(&base, &agent, &tenant, 1, 4);
    changed.config.system_prompt = "You answer calls for Rosa's Bakery, now open on Mondays.".into();
    deploy(&base.clients, &base.settings, changed).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert_eq!(read(&base, &agent).await.desired, 3, "the deploy kept the count autoscaling chose");

    // A narrower range: the target is registered again, the count clamped into it,
    // and a new target value puts the policy again.
    base.recorder.clear();
    let mut narrower = sized(&base, &agent, &tenant, 1, 2);
    let mut draft = agent_draft();
    (draft.sizing.min_tasks, draft.sizing.max_tasks, draft.sizing.target_calls_per_task) = (1, Some(2), Some(20));
    narrower.config = draft.validate(None).unwrap().0;
    let report = deploy(&base.clients, &base.settings, narrower).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert!(
        ops.contains(&"RegisterScalableTarget".to_owned()) && ops.contains(&"PutScalingPolicy".to_owned()),
        "{ops:?}"
    );
    assert_eq!(action_of(&report, ResourceKind::Autoscaling), ResourceAction::Updated);
    let now = read(&base, &agent).await;
    assert_eq!((now.range, now.desired), (Some((1, 2)), 2));
    assert_eq!(now.policy.unwrap().target_tracking_scaling_policy_configuration().unwrap().target_value(), 20.0);

    // Fixed size (max = min): no scaling, exactly min_tasks.
    let report = deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 2, 2)).await.unwrap();
    assert_eq!(action_of(&report, ResourceKind::Autoscaling), ResourceAction::Deleted);
    let now = read(&base, &agent).await;
    assert_eq!((now.range, now.policy.is_none(), now.desired), (None, true, 2));

    // Paused: no scaling, no task, whatever max_tasks says.
    deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 1, 4)).await.unwrap();
    assert_eq!(read(&base, &agent).await.range, Some((1, 4)));
    let report = deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 0, 4)).await.unwrap();
    assert_eq!(action_of(&report, ResourceKind::Autoscaling), ResourceAction::Deleted);
    let now = read(&base, &agent).await;
    assert_eq!((now.range, now.desired), (None, 0));

    // Delete takes the scaling with the service.
    deploy(&base.clients, &base.settings, sized(&base, &agent, &tenant, 1, 4)).await.unwrap();
    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: true,
    };
    let report = delete(&base.clients, &base.settings, req.clone()).await.unwrap();
    assert_eq!(action_of(&report, ResourceKind::Autoscaling), ResourceAction::Deleted);
    let now = read(&base, &agent).await;
    assert_eq!((now.range, now.policy.is_none()), (None, true));
    let again = delete(&base.clients, &base.settings, req).await.unwrap();
    assert_eq!(action_of(&again, ResourceKind::Autoscaling), ResourceAction::Absent);
    assert_calls_are_documented(&base);
}
