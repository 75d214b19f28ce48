//! Deployment health from ECS: moto runs no task, so ECS's rollout states and the
//! target group's health are answered by the SDK interceptor, in the services' wire
//! formats, around a service really deployed on moto.

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::faults::Fault;
use deployer_lambda::health::{HealthRequest, Stage, health};
use deployer_lambda::report::ResourceKind;
use deployer_lambda::{AgentReport, deploy};
use serde_json::json;

fn arn_of(report: &AgentReport, kind: ResourceKind) -> String {
    report.resources.iter().find(|r| r.kind == kind).and_then(|r| r.arn.clone()).unwrap()
}

/// DescribeServices as ECS answers it: the service with its deployments, each
/// `(status, taskDefinition, rolloutState, reason)`.
fn services(report: &AgentReport, deployments: &[(&str, &str, &str, &str)]) -> String {
    // The service runs what its PRIMARY deployment runs.
    let td = deployments.iter().find(|d| d.0 == "PRIMARY").map(|d| d.1).unwrap_or_default().to_owned();
    let deployments: Vec<_> = deployments
        .iter()
        .enumerate()
        .map(|(i, (status, task_definition, state, reason))| {
            json!({"id": format!("ecs-svc/{i}"), "status": status, "taskDefinition": task_definition,
                   "desiredCount": 1, "runningCount": 1, "pendingCount": 0,
                   "rolloutState": state, "rolloutStateReason": reason})
        })
        .collect();
    json!({"services": [{
        "serviceArn": arn_of(report, ResourceKind::Service), "serviceName": "svc", "status": "ACTIVE",
        "desiredCount": 1, "runningCount": 1, "pendingCount": 0, "taskDefinition": td,
        "loadBalancers": [{"targetGroupArn": arn_of(report, ResourceKind::TargetGroup),
                           "containerName": "agent-runtime", "containerPort": 8080}],
        "deployments": deployments
    }], "failures": []})
    .to_string()
}

/// DescribeTargetHealth as ELB answers it: one target per state.
fn targets(states: &[&str]) -> String {
    let members: String = states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "<member><Target><Id>10.0.1.{i}</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort>\
                 <TargetHealth><State>{s}</State></TargetHealth></member>"
            )
        })
        .collect();
    format!(
        "<DescribeTargetHealthResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
         <DescribeTargetHealthResult><TargetHealthDescriptions>{members}</TargetHealthDescriptions>\
         </DescribeTargetHealthResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\
         </DescribeTargetHealthResponse>"
    )
}

#[tokio::test]
async fn a_rollout_is_followed_to_healthy_failed_or_never_healthy() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 30)).await.unwrap();
    let td = arn_of(&report, ResourceKind::TaskDefinition);
    base.recorder.clear();
    let ask = || HealthRequest { agent_id: agent.clone(), tenant_id: tenant.clone(), task_definition_arn: td.clone() };

    // moto itself reports no rollout state: never healthy by ECS's word.
    let plain = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!(plain.stage, Stage::RollingOut, "{plain:?}");

    // IN_PROGRESS, then COMPLETED with a healthy target.
    base.recorder.inject(Fault::reply(
        "DescribeServices",
        services(&report, &[("PRIMARY", &td, "IN_PROGRESS", "")]),
        1,
    ));
    base.recorder.inject(Fault::reply("DescribeTargetHealth", targets(&["initial"]), 1));
    let rolling = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!((rolling.stage, rolling.rollout_state.as_deref()), (Stage::RollingOut, Some("IN_PROGRESS")));
    assert!(rolling.reason.as_deref().unwrap().contains("0 healthy target"), "{rolling:?}");
    base.recorder.inject(Fault::reply(
        "DescribeServices",
        services(&report, &[("PRIMARY", &td, "COMPLETED", "ECS deployment ecs-svc/0 completed.")]),
        1,
    ));
    base.recorder.inject(Fault::reply("DescribeTargetHealth", targets(&["healthy", "draining"]), 1));
    let healthy = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!((healthy.stage, healthy.healthy_targets), (Stage::Healthy, 1), "{healthy:?}");
    assert_eq!(base.recorder.clear_faults().len(), 4);

    // COMPLETED by ECS but no healthy target: still rolling out (the control plane's
    // timeout ends it).
    base.recorder.inject(Fault::reply("DescribeServices", services(&report, &[("PRIMARY", &td, "COMPLETED", "")]), 1));
    base.recorder.inject(Fault::reply("DescribeTargetHealth", targets(&["unhealthy"]), 1));
    let never = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!(never.stage, Stage::RollingOut, "{never:?}");

    // The circuit breaker: FAILED with ECS's reason, the previous revision rolling back.
    let reason = "ECS deployment circuit breaker: tasks failed to start.";
    base.recorder.inject(Fault::reply(
        "DescribeServices",
        services(
            &report,
            &[
                ("PRIMARY", "arn:aws:ecs:us-east-1:1:task-definition/x:1", "IN_PROGRESS", ""),
                ("ACTIVE", &td, "FAILED", reason),
            ],
        ),
        1,
    ));
    let failed = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!((failed.stage, failed.reason.as_deref()), (Stage::Failed, Some(reason)), "{failed:?}");

    // Rolled back and gone from the list: failed, naming what ECS runs instead.
    let previous = "arn:aws:ecs:us-east-1:1:task-definition/x:1";
    base.recorder.inject(Fault::reply(
        "DescribeServices",
        services(&report, &[("PRIMARY", previous, "COMPLETED", "")]),
        1,
    ));
    let replaced = health(&base.clients, &base.settings, ask()).await.unwrap();
    assert_eq!(replaced.stage, Stage::Failed);
    assert!(replaced.reason.as_deref().unwrap().contains("no longer runs"), "{replaced:?}");
    assert_eq!(base.recorder.mutating_calls(), [], "health is read-only");
}
