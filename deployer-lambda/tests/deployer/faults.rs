//! Fault injection at every provisioning step: the error names the step; the next
//! deploy converges to the full set; a delete after a half-way failure leaves
//! nothing of the agent behind (every resource type is listed to check).
//!
//! Then AWS as it really is: its transient answers (throttling, 5xx, S3's
//! OperationAborted and NoSuchBucket after create, a service still draining, a
//! target group not yet associated, a secret just restored) injected on the wire,
//! once, several times, or at a rate across a 50-agent fleet.

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::faults::{Fault, Transient};
use deployer_lambda::fleet::{RolloutAction, RolloutRequest, rollout};
use deployer_lambda::naming::AgentNames;
use deployer_lambda::report::{ResourceAction, ResourceKind};
use deployer_lambda::{DeleteRequest, Step, delete, deploy};
use futures::StreamExt;

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
    ("CreateRole", Step::TaskRole),
    ("PutRolePolicy", Step::TaskRole),
    ("CreateTargetGroup", Step::TargetGroup),
    ("ModifyTargetGroupAttributes", Step::TargetGroup),
    ("RegisterTaskDefinition", Step::TaskDefinition),
    ("CreateRule", Step::ListenerRule),
    ("CreateService", Step::Service),
    ("RegisterScalableTarget", Step::Autoscaling),
    ("PutScalingPolicy", Step::Autoscaling),
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
    let iam = aws_sdk_iam::Client::new(sdk);
    if iam.get_role().role_name(&names.task_role).send().await.is_ok() {
        left.push(format!("task role {}", names.task_role));
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
    let (target, policy) = autoscaling_of(base, names).await;
    left.extend(target.map(|t| format!("scalable target {}", t.resource_id())));
    left.extend(policy.map(|p| format!("scaling policy {}", p.policy_name())));
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
        assert_eq!(report.resources.len(), 8);
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
    assert_calls_are_documented(&base);
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
    assert_calls_are_documented(&base);
}

/// A transient answer at each step, injected on the wire as AWS sends it, and how
/// many attempts in a row get it. Throttling and 5xx are retried by the SDK; the
/// others are waited out by the deployer.
const TRANSIENTS: &[(&str, Transient, u32)] = &[
    ("DescribeImages", Transient::Throttling, 2),
    ("CreateBucket", Transient::OperationAborted, 2),
    ("PutBucketVersioning", Transient::NoSuchBucket, 2),
    ("PutBucketLifecycleConfiguration", Transient::OperationAborted, 3),
    ("PutBucketPolicy", Transient::Throttling, 2),
    ("CreateSecret", Transient::Throttling, 2),
    ("CreateRole", Transient::Throttling, 2),
    ("PutRolePolicy", Transient::ServerError, 1),
    ("CreateTargetGroup", Transient::ServerError, 2),
    ("ModifyTargetGroupAttributes", Transient::Unavailable, 1),
    ("RegisterTaskDefinition", Transient::Throttling, 3),
    ("CreateRule", Transient::Throttling, 2),
    ("CreateService", Transient::TargetGroupNotAssociated, 2),
    ("CreateService", Transient::Throttling, 2),
    ("RegisterScalableTarget", Transient::ServiceNotYetScalable, 2),
    ("RegisterScalableTarget", Transient::Throttling, 2),
    ("PutScalingPolicy", Transient::AutoscalingBusy, 2),
    ("PutScalingPolicy", Transient::ScalableTargetNotYetVisible, 1),
    ("RegisterScalableTarget", Transient::ScalableTargetTagsOnExisting, 1),
];

async fn purge(base: &Base, agent: &AgentId, tenant: &TenantId) {
    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: true,
    };
    delete(&base.clients, &base.settings, req).await.unwrap();
}

#[tokio::test]
async fn transient_answers_at_each_step_are_waited_out_and_the_deploy_converges() {
    let base = base().await;
    for (i, (operation, error, times)) in TRANSIENTS.iter().enumerate() {
        let (agent, tenant) = (AgentId::generate(), TenantId::generate());
        let names = AgentNames::new(&base.settings.prefix, &agent);
        base.recorder.inject(Fault::times(operation, *error, *times));
        let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 300 + i as u32))
            .await
            .unwrap_or_else(|e| panic!("{operation} answering {error:?} ×{times}: {e}"));
        let injected = base.recorder.clear_faults();
        assert_eq!(injected.len(), *times as usize, "{operation}: every injected answer was sent");
        assert!(report.resources.iter().all(|r| r.action == ResourceAction::Created), "{operation}: {report:#?}");

        base.recorder.clear();
        deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 300 + i as u32)).await.unwrap();
        assert_eq!(
            base.recorder.mutating_calls(),
            [],
            "after {operation} answering {error:?}, converge was not complete"
        );
        purge(&base, &agent, &tenant).await;
        assert_eq!(leftovers(&base, &names).await, Vec::<String>::new(), "after {operation}");
    }
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn a_transient_answer_that_does_not_end_fails_retryably_and_names_the_step() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    // Throttling past the SDK's attempts: retryable, with the service's code.
    base.recorder.inject(Fault::times("CreateTargetGroup", Transient::Throttling, 100));
    let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 400)).await.unwrap_err();
    let injected = base.recorder.clear_faults();
    assert_eq!(injected.len(), deployer_lambda::aws::MAX_ATTEMPTS as usize, "the SDK made its attempts");
    assert_eq!((err.step, err.code.as_deref(), err.retryable), (Step::TargetGroup, Some("Throttling"), true));
    assert_eq!(err.error_type(), "Retryable.target_group.Throttling");
    // And the next deploy finishes.
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 400)).await.unwrap();
    purge(&base, &agent, &tenant).await;
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn a_secret_just_restored_is_waited_for() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 410)).await.unwrap();
    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: false,
    };
    delete(&base.clients, &base.settings, req).await.unwrap();

    base.recorder.inject(Fault::times("GetSecretValue", Transient::SecretScheduledForDeletion, 2));
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 410)).await.unwrap();
    assert_eq!(base.recorder.clear_faults().len(), 2);
    let secret = report.resources.iter().find(|r| r.kind == ResourceKind::Secret).unwrap();
    assert!(secret.changes.contains(&"restored".to_owned()), "{secret:?}");
    purge(&base, &agent, &tenant).await;
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn a_redeploy_right_after_a_delete_waits_for_the_old_service_to_drain_within_a_bound() {
    let base = base_with(|s| {
        s.insert("TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS".into(), "3".into());
    })
    .await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 420)).await.unwrap();
    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: false,
    };
    delete(&base.clients, &base.settings, req.clone()).await.unwrap();

    // ECS answers CreateService twice with "still Draining", then takes it.
    base.recorder.inject(Fault::times("CreateService", Transient::ServiceDraining, 2));
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 420)).await.unwrap();
    assert_eq!(base.recorder.clear_faults().len(), 2);
    let service = report.resources.iter().find(|r| r.kind == ResourceKind::Service).unwrap();
    assert_eq!(service.action, ResourceAction::Created);

    // A service that keeps draining: the wait ends at the bound with a clear, retryable error.
    delete(&base.clients, &base.settings, req).await.unwrap();
    base.recorder.inject(Fault::times("CreateService", Transient::ServiceDraining, 10_000));
    let started = std::time::Instant::now();
    let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 420)).await.unwrap_err();
    let waited = started.elapsed();
    base.recorder.clear_faults();
    assert_eq!((err.step, err.retryable), (Step::Service, true), "{err}");
    assert!(err.message.contains("still draining") && err.message.contains("deregistration delay"), "{err}");
    assert!(waited >= std::time::Duration::from_secs(3), "it waited {waited:?}");
    purge(&base, &agent, &tenant).await;
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn fifty_agents_deploy_roll_out_and_delete_under_throttling_with_no_failure_or_leftover() {
    const AGENTS: usize = 50;
    let base = base().await;
    let tenant = TenantId::generate();
    let agents: Vec<AgentId> = (0..AGENTS).map(|_| AgentId::generate()).collect();
    // 10 % of all attempts throttled, 2 % answered with a 500, across every service.
    base.recorder.inject(Fault::rate(None, Transient::Throttling, 0.10));
    base.recorder.inject(Fault::rate(None, Transient::ServerError, 0.02));

    let deployed = futures::stream::iter(agents.iter().enumerate())
        .map(|(i, agent)| deploy(&base.clients, &base.settings, request(&base, agent, &tenant, 500 + i as u32)))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = deployed.iter().filter_map(|r| r.as_ref().err()).map(ToString::to_string).collect();
    assert_eq!(failed, Vec::<String>::new(), "deploys failed under throttling");

    let ecr = aws_sdk_ecr::Client::new(&base.sdk);
    push_image(&ecr, &base.settings.runtime_repository, "v2").await;
    let report =
        rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "v2".into(), agents: Some(agents.clone()) })
            .await
            .unwrap();
    let not_updated: Vec<_> = report.agents.iter().filter(|a| a.action != RolloutAction::Updated).collect();
    assert_eq!(not_updated, Vec::<&deployer_lambda::fleet::AgentRollout>::new());

    let deleted = futures::stream::iter(agents.iter())
        .map(|agent| {
            let req = DeleteRequest {
                agent_id: agent.clone(),
                tenant_id: tenant.clone(),
                listener_arn: Some(base.listener_arn.clone()),
                purge_transcripts: true,
            };
            delete(&base.clients, &base.settings, req)
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = deleted.iter().filter_map(|r| r.as_ref().err()).map(ToString::to_string).collect();
    assert_eq!(failed, Vec::<String>::new(), "deletes failed under throttling");
    let injected = base.recorder.clear_faults();
    assert!(injected.len() >= 100, "the faults were answered: {}", injected.len());
    for agent in &agents {
        let names = AgentNames::new(&base.settings.prefix, agent);
        assert_eq!(leftovers(&base, &names).await, Vec::<String>::new());
    }
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn a_bucket_head_refused_or_redirected_is_told_as_it_is() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    // 403: another account's bucket, or no s3:ListBucket; nothing is created.
    base.recorder.inject(Fault::status("HeadBucket", 403, &[], 1));
    let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 430)).await.unwrap_err();
    assert_eq!((err.step, err.code.as_deref(), err.retryable), (Step::Bucket, Some("Forbidden"), false));
    assert!(err.message.contains("s3:ListBucket") && err.message.contains("another account"), "{err}");
    // 301: the name is taken in another region, which the answer names.
    base.recorder.inject(Fault::status("HeadBucket", 301, &[("x-amz-bucket-region", "eu-west-1")], 1));
    let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 430)).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("PermanentRedirect"), "{err}");
    assert!(err.message.contains("eu-west-1"), "{err}");
    base.recorder.clear_faults();
    assert!(base.recorder.mutating_calls().is_empty(), "nothing is written after a refused look");
    assert_calls_are_documented(&base);
}

#[tokio::test]
async fn a_service_whose_load_balancer_was_changed_is_put_back_behind_its_own_target_group() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 440)).await.unwrap();
    let arn = |kind| report.resources.iter().find(|r| r.kind == kind).and_then(|r| r.arn.clone()).unwrap();
    let (service, td) = (arn(ResourceKind::Service), arn(ResourceKind::TaskDefinition));
    // ECS reports the service behind another target group (changed by hand).
    let drifted = serde_json::json!({"services": [{
        "serviceArn": service, "serviceName": AgentNames::new(&base.settings.prefix, &agent).service,
        "status": "ACTIVE", "desiredCount": 1, "runningCount": 1, "pendingCount": 0, "taskDefinition": td,
        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/0123456789abcdef",
                           "containerName": "agent-runtime", "containerPort": 8080}],
        "deployments": []
    }], "failures": []});
    base.recorder.clear();
    base.recorder.inject(Fault::reply("DescribeServices", drifted.to_string(), 1));
    let again = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 440)).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["UpdateService"], "only the service is corrected");
    let svc = again.resources.iter().find(|r| r.kind == ResourceKind::Service).unwrap();
    assert_eq!(svc.changes, ["load balancer"], "{svc:?}");
    purge(&base, &agent, &tenant).await;
    assert_calls_are_documented(&base);
}
