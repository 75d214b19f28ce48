//! The IAM actions the deployer's own role needs, from what it really calls: every
//! path (deploy, a config and a secret change, re-placement, status, health,
//! rollout, delete keeping and purging transcripts, a deleting sweep) runs with the
//! call recorder, and the actions those calls need must be exactly the list in
//! docs/deployer-iam-actions.json, and exactly what the deployer's policy
//! (infra/policies/deployer.json, which Terraform loads) grants: no action left out,
//! none granted that nothing uses, no wildcard action, and `*` as a resource only for
//! actions AWS gives no resource-level permission (infra/policies/unscoped-actions.json).
//! The control plane's own role (infra/policies/control-plane.json) is held to the
//! same rules against the calls it makes. And the checker itself is shown to catch
//! each planted defect: an action removed, a wildcard action, a `*` resource.

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
fn unscoped_actions() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/policies/unscoped-actions.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

fn read_policy(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What is wrong with `policy` for a role whose calls need `used`: each problem in a
/// sentence. `optional` may be granted without being used (drift corrections).
fn policy_problems(policy: &serde_json::Value, used: &BTreeSet<String>, optional: &[&str]) -> Vec<String> {
    let unscoped = unscoped_actions();
    let as_list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or_default().to_owned()).collect(),
            x => vec![x.as_str().unwrap_or_default().to_owned()],
        }
    };
    let mut problems = Vec::new();
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)");
        if statement["Effect"] != "Allow" {
            problems.push(format!("{sid}: only Allow statements are expected"));
        }
        let actions = as_list(&statement["Action"]);
        for action in actions.iter().filter(|a| a.contains('*')) {
            problems.push(format!("{sid}: wildcard action {action}"));
        }
        if as_list(&statement["Resource"]).iter().any(|r| r == "*") {
            for action in actions.iter().filter(|a| !unscoped.contains(*a)) {
                problems.push(format!("{sid}: {action} takes resource-level permissions but is granted on *"));
            }
        }
        granted.extend(actions);
    }
    for action in used.difference(&granted) {
        problems.push(format!("{action} is needed but not granted"));
    }
    for action in granted.difference(used).filter(|a| !optional.contains(&a.as_str())) {
        problems.push(format!("{action} is granted but nothing uses it"));
    }
    problems
}

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
        control_plane_url: None,
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
    let documented = documented_actions();
    let missing: Vec<&String> = used.difference(&documented).collect();
    let unused: Vec<&String> = documented.difference(&used).filter(|a| !ON_DRIFT_ONLY.contains(&a.as_str())).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "docs/deployer-iam-actions.json is out of date: add {missing:?}, remove {unused:?}; the full list:\n{}",
        serde_json::to_string_pretty(&used).unwrap()
    );

    // The policy grants exactly these, never by wildcard.
    let problems = policy_problems(&read_policy(POLICY), &used, ON_DRIFT_ONLY);
    assert!(problems.is_empty(), "infra/policies/deployer.json: {problems:#?}");
}

fn documented_actions() -> BTreeSet<String> {
    serde_json::from_str::<Vec<String>>(&std::fs::read_to_string(DOC).unwrap()).unwrap().into_iter().collect()
}

/// The checker fails on each defect planted in the real policy.
#[test]
fn the_policy_check_catches_a_removed_action_a_wildcard_and_a_star_resource() {
    let used = documented_actions();
    let policy = read_policy(POLICY);
    assert_eq!(policy_problems(&policy, &used, ON_DRIFT_ONLY), Vec::<String>::new());
    let statements = |p: &mut serde_json::Value| p["Statement"].as_array_mut().unwrap().clone();
    let with = |f: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut p = policy.clone();
        let mut s = statements(&mut p);
        f(&mut s);
        p["Statement"] = serde_json::Value::Array(s);
        policy_problems(&p, &used, ON_DRIFT_ONLY)
    };

    // An action removed (tag-on-create, which moto never asks for).
    let removed = with(&|s| {
        for st in s.iter_mut() {
            if let Some(a) = st["Action"].as_array_mut() {
                a.retain(|x| x != "ecs:TagResource");
            }
        }
    });
    assert!(removed.iter().any(|p| p == "ecs:TagResource is needed but not granted"), "{removed:?}");

    // An action by wildcard.
    let wildcard = with(&|s| s[0]["Action"] = serde_json::json!(["ecr:Describe*"]));
    assert!(wildcard.iter().any(|p| p.ends_with("wildcard action ecr:Describe*")), "{wildcard:?}");

    // A `*` resource on actions that take resource-level permissions.
    let star = with(&|s| {
        let st = s.iter_mut().find(|st| st["Sid"] == "AgentServices").unwrap();
        st["Resource"] = serde_json::json!("*");
    });
    assert!(
        star.iter()
            .any(|p| p == "AgentServices: ecs:CreateService takes resource-level permissions but is granted on *"),
        "{star:?}"
    );

    // A grant nothing needs.
    let extra = with(&|s| {
        s.push(serde_json::json!({"Sid": "Extra", "Effect": "Allow", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::x/*"}))
    });
    assert!(extra.iter().any(|p| p == "s3:PutObject is granted but nothing uses it"), "{extra:?}");
}

/// The control plane's task role: the calls it makes (the deployer Lambda's Invoke;
/// listing and reading an agent's call records in its transcript bucket), mapped to
/// IAM actions as the deployer's are, and the policy grants exactly those.
#[test]
fn the_control_plane_policy_grants_exactly_what_it_calls() {
    // deploy::LambdaDeployer (Invoke), http::calls (GetObject: a call's files) and
    // call_index (ListObjectsV2 and GetObject: the call index).
    let calls = [("Lambda", "Invoke"), ("S3", "ListObjectsV2"), ("S3", "GetObject"), ("S3", "GetObject")];
    // The list is the source's: each SDK call there is one line with `.send()`, whose
    // first `.operation()` names it.
    let mut in_source: Vec<String> = Vec::new();
    for file in rust_files(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../control-plane/src"))) {
        // Twilio's REST API (reqwest), not AWS.
        if file.ends_with("control-plane/src/twilio.rs") {
            continue;
        }
        for line in std::fs::read_to_string(&file).unwrap().lines().filter(|l| l.contains(".send()")) {
            let op = line
                .split('.')
                .find_map(|part| part.strip_suffix("()").or_else(|| part.split_once("()").map(|(op, _)| op)));
            let op = op.filter(|op| op.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            in_source.push(op.map_or_else(|| format!("unreadable: {line}"), pascal_case));
        }
    }
    in_source.sort();
    let mut listed: Vec<String> = calls.iter().map(|(_, op)| (*op).to_owned()).collect();
    listed.sort();
    assert_eq!(in_source, listed, "control-plane/src makes other AWS calls than this test lists: update it");
    let used: BTreeSet<String> = calls
        .iter()
        .flat_map(|(service, operation)| {
            deployer_lambda::aws::iam_actions(&deployer_lambda::aws::Call {
                service: (*service).to_owned(),
                operation: (*operation).to_owned(),
            })
        })
        .collect();
    assert_eq!(used, ["lambda:InvokeFunction", "s3:GetObject", "s3:ListBucket"].map(String::from).into());
    let policy = read_policy(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/policies/control-plane.json"));
    assert_eq!(policy_problems(&policy, &used, &[]), Vec::<String>::new());
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `list_objects_v2` → `ListObjectsV2`: the SDK's method name as the operation's.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}
