//! Fault injection at every provisioning step: the error names the step; the next
//! deploy converges to the full set; a delete after a half-way failure leaves
//! nothing of the agent behind (every resource type is listed to check).

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::naming::AgentNames;
use deployer_lambda::report::ResourceAction;
use deployer_lambda::{DeleteRequest, Step, delete, deploy};

/// Every mutating operation of a fresh deploy, and the step it belongs to.
const STEPS: &[(&str, Step)] = &[
    ("CreateBucket", Step::Bucket),
    ("PutBucketVersioning", Step::Bucket),
    ("PutPublicAccessBlock", Step::Bucket),
    ("PutBucketEncryption", Step::Bucket),
    ("PutBucketPolicy", Step::Bucket),
    ("PutBucketLifecycleConfiguration", Step::Bucket),
    ("PutBucketTagging", Step::Bucket),
    ("CreateSecret", Step::Secret),
    ("CreateTargetGroup", Step::TargetGroup),
    ("ModifyTargetGroupAttributes", Step::TargetGroup),
    ("RegisterTaskDefinition", Step::TaskDefinition),
    ("CreateRule", Step::ListenerRule),
    ("CreateService", Step::Service),
];

/// Names of everything of `agent` that still exists, found by listing each resource type.
async fn leftovers(base: &Base, names: &AgentNames) -> Vec<String> {
    let sdk = &base.sdk;
    let mut left = Vec::new();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        if b.name() == Some(names.bucket.as_str()) {
            left.push(format!("bucket {}", names.bucket));
        }
    }
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    for s in sm.list_secrets().send().await.unwrap().secret_list() {
        if s.name() == Some(names.secret.as_str()) {
            left.push(format!("secret {}", names.secret));
        }
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    for tg in elb.describe_target_groups().send().await.unwrap().target_groups() {
        if tg.target_group_name() == Some(names.target_group.as_str()) {
            left.push(format!("target group {}", names.target_group));
        }
    }
    for rule in elb.describe_rules().listener_arn(&base.listener_arn).send().await.unwrap().rules() {
        if rule.conditions().iter().flat_map(|c| c.values()).any(|v| v == &names.path_pattern) {
            left.push(format!("rule {}", names.path_pattern));
        }
    }
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let families = ecs.list_task_definitions().family_prefix(&names.family).send().await.unwrap();
    left.extend(families.task_definition_arns().iter().map(|a| format!("task definition {a}")));
    let services =
        ecs.describe_services().cluster(&base.settings.cluster).services(&names.service).send().await.unwrap();
    left.extend(
        services
            .services()
            .iter()
            .filter(|s| s.status() == Some("ACTIVE"))
            .map(|s| format!("service {:?}", s.service_name())),
    );
    left
}

#[tokio::test]
async fn a_failure_at_each_step_is_named_then_converged_then_fully_deleted() {
    let base = base().await;
    for (i, (operation, step)) in STEPS.iter().enumerate() {
        let (agent, tenant) = (AgentId::generate(), TenantId::generate());
        let names = AgentNames::new(&base.settings.prefix, &agent);
        let priority = 100 + i as u32;

        base.recorder.fail(Some(operation));
        let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, priority))
            .await
            .expect_err(&format!("{operation} was injected to fail"));
        base.recorder.fail(None);
        assert_eq!(err.step, *step, "failing {operation}: {err}");

        // The next deploy finishes the job.
        let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, priority))
            .await
            .unwrap_or_else(|e| panic!("deploy after a failed {operation}: {e}"));
        assert_eq!(report.resources.len(), 6);
        assert!(report.resources.iter().all(|r| r.arn.is_some()), "after {operation}: {report:#?}");
        // And again: nothing left to do.
        base.recorder.clear();
        deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, priority)).await.unwrap();
        assert_eq!(base.recorder.mutating_calls(), [], "after a failed {operation}, converge was not complete");

        // Delete with purge leaves nothing of the agent.
        let req = DeleteRequest {
            agent_id: agent.clone(),
            tenant_id: tenant.clone(),
            listener_arn: Some(base.listener_arn.clone()),
            purge_transcripts: true,
        };
        delete(&base.clients, &base.settings, req).await.unwrap();
        assert_eq!(leftovers(&base, &names).await, Vec::<String>::new(), "after a failed {operation}");
    }
}

#[tokio::test]
async fn delete_right_after_a_half_way_failure_removes_what_exists() {
    let base = base().await;
    for (i, operation) in ["CreateTargetGroup", "CreateRule", "CreateService"].iter().enumerate() {
        let (agent, tenant) = (AgentId::generate(), TenantId::generate());
        let names = AgentNames::new(&base.settings.prefix, &agent);
        base.recorder.fail(Some(operation));
        deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 200 + i as u32)).await.unwrap_err();
        base.recorder.fail(None);
        assert!(!leftovers(&base, &names).await.is_empty(), "{operation}: something was made before the failure");

        let req = DeleteRequest {
            agent_id: agent.clone(),
            tenant_id: tenant.clone(),
            listener_arn: Some(base.listener_arn.clone()),
            purge_transcripts: true,
        };
        let report = delete(&base.clients, &base.settings, req).await.unwrap();
        assert!(report.resources.iter().any(|r| r.action == ResourceAction::Absent), "{operation}: {report:#?}");
        assert_eq!(leftovers(&base, &names).await, Vec::<String>::new(), "after a failed {operation}");
    }
}
