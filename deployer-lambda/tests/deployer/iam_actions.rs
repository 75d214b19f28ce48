//! The IAM actions the deployer's own role needs, from what it really calls: every
//! path (deploy, a config and a secret change, re-placement, status, health,
//! rollout, delete keeping and purging transcripts, a deleting sweep) runs with the
//! call recorder, and the actions those calls need must be exactly the list in
//! docs/deployer-iam-actions.json, and exactly what the deployer's policy
//! (infra/policies/deployer.json, which Terraform loads) grants: no action left out,
//! none granted that nothing uses, no wildcard action, and `*` as a resource only for
//! actions AWS gives no resource-level permission.

use std::collections::BTreeSet;

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::fleet::{RolloutRequest, StatusRequest, SweepRequest, rollout, status, sweep};
use deployer_lambda::health::{HealthRequest, health};
use deployer_lambda::report::ResourceKind;
use deployer_lambda::{DeleteRequest, Placement, delete, deploy};

/// Calls made only to correct drift (a resource changed by hand), which the paths
/// above do not meet; they are in the document all the same.
const ON_DRIFT_ONLY: &[&str] = &[
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
    "elasticloadbalancing:ModifyTargetGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
];

/// Actions that take no resource-level permission: only `"Resource": "*"` grants them.
const NO_RESOURCE_LEVEL: &[&str] = &[
    "ecs:ListServices",
    "ecs:RegisterTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:ListTaskDefinitionFamilies",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "secretsmanager:ListSecrets",
    "iam:ListRoles",
    "s3:ListAllMyBuckets",
];

const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/policies/deployer.json");

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deployer-iam-actions.json");

#[tokio::test]
async fn the_documented_iam_actions_are_exactly_what_the_deployer_calls() {
    let base = base_full(2, |_| {}).await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 60)).await.unwrap();
    let mut changed = request(&base, &agent, &tenant, 60);
    changed.config.system_prompt = "You answer calls for Rosa's Bakery. Be brief.".into();
    changed.secrets = secrets("0123456789abcdef0123456789abcdef");
    deploy(&base.clients, &base.settings, changed).await.unwrap();
    let mut moved = request(&base, &agent, &tenant, 61);
    moved.placement = Placement {
        listener_arn: base.listeners[1].0.clone(),
        priority: 61,
        public_host: Some(base.listeners[1].1.clone()),
    };
    deploy(&base.clients, &base.settings, moved).await.unwrap();
    let listener_arn = base.listeners[1].0.clone();
    status(
        &base.clients,
        &base.settings,
        StatusRequest { agent_id: agent.clone(), tenant_id: tenant.clone(), listener_arn: listener_arn.clone() },
    )
    .await
    .unwrap();
    let td = report.resources.iter().find(|r| r.kind == ResourceKind::TaskDefinition).unwrap().arn.clone().unwrap();
    health(
        &base.clients,
        &base.settings,
        HealthRequest { agent_id: agent.clone(), tenant_id: tenant.clone(), task_definition_arn: td },
    )
    .await
    .unwrap();
    let ecr = aws_sdk_ecr::Client::new(&base.sdk);
    push_image(&ecr, &base.settings.runtime_repository, "v2").await;
    rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "v2".into(), agents: None }).await.unwrap();
    let names = deployer_lambda::naming::AgentNames::new(&base.settings.prefix, &agent);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base.sdk).force_path_style(true).build());
    // An object for the purge to delete: written once the TLS-only policy is off
    // (moto applies its Deny to every request); neither call is the deployer's.
    s3.delete_bucket_policy().bucket(&names.bucket).send().await.unwrap();
    let object = s3.put_object().bucket(&names.bucket).key("calls/CA1/transcript.json");
    object.body(b"{}".to_vec().into()).send().await.unwrap();
    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(listener_arn),
        purge_transcripts: false,
    };
    delete(&base.clients, &base.settings, req.clone()).await.unwrap();
    delete(&base.clients, &base.settings, DeleteRequest { purge_transcripts: true, ..req }).await.unwrap();
    // Back after a delete: the secret is restored from its recovery window.
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 63)).await.unwrap();
    let orphan = AgentId::generate();
    deploy(&base.clients, &base.settings, request(&base, &orphan, &tenant, 62)).await.unwrap();
    let swept = SweepRequest { known_agents: vec![], listener_arns: vec![base.listener_arn.clone()], delete: true };
    sweep(&base.clients, &base.settings, swept).await.unwrap();

    let used: BTreeSet<String> = base.recorder.calls().iter().flat_map(deployer_lambda::aws::iam_actions).collect();
    let documented: Vec<String> = serde_json::from_str(&std::fs::read_to_string(DOC).unwrap()).unwrap();
    let documented: BTreeSet<String> = documented.into_iter().collect();
    let missing: Vec<&String> = used.difference(&documented).collect();
    let unused: Vec<&String> = documented.difference(&used).filter(|a| !ON_DRIFT_ONLY.contains(&a.as_str())).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "docs/deployer-iam-actions.json is out of date: add {missing:?}, remove {unused:?}; the full list:\n{}",
        serde_json::to_string_pretty(&used).unwrap()
    );

    // The policy grants exactly these, never by wildcard.
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(POLICY).unwrap()).unwrap();
    let as_list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            x => vec![x.as_str().unwrap().to_owned()],
        }
    };
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        let actions = as_list(&statement["Action"]);
        for action in &actions {
            assert!(!action.contains('*'), "a wildcard action: {action}");
        }
        if as_list(&statement["Resource"]).iter().any(|r| r == "*") {
            let scoped: Vec<&String> = actions.iter().filter(|a| !NO_RESOURCE_LEVEL.contains(&a.as_str())).collect();
            assert!(scoped.is_empty(), "{scoped:?} take resource-level permissions but are granted on *: {statement}");
        }
        granted.extend(actions);
    }
    let not_granted: Vec<&String> = used.difference(&granted).collect();
    let granted_unused: Vec<&String> =
        granted.difference(&used).filter(|a| !ON_DRIFT_ONLY.contains(&a.as_str())).collect();
    assert!(not_granted.is_empty(), "infra/policies/deployer.json does not grant {not_granted:?}");
    assert!(granted_unused.is_empty(), "infra/policies/deployer.json grants {granted_unused:?}, which nothing uses");
}
