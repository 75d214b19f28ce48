//! Deploy and delete against moto server: every resource with the right settings,
//! zero mutating calls on a repeated deploy, only a new revision and a service
//! update on a config change, and nothing left behind by delete.

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::naming::{AgentNames, tags};
use deployer_lambda::report::{ResourceAction, ResourceKind};
use deployer_lambda::resources::{bucket, task_role};
use deployer_lambda::{DeleteRequest, Step, delete, deploy};

fn action_of(report: &deployer_lambda::AgentReport, kind: ResourceKind) -> ResourceAction {
    report.resources.iter().find(|r| r.kind == kind).map(|r| r.action).expect("resource in report")
}

#[tokio::test]
async fn deploy_creates_every_resource_with_the_right_settings() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 7)).await.unwrap();
    assert_eq!(report.resources.len(), 8);
    assert!(report.resources.iter().all(|r| r.action == ResourceAction::Created), "{report:#?}");
    assert!(report.resources.iter().all(|r| r.arn.is_some()), "{report:#?}");
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base.sdk).force_path_style(true).build());

    // Bucket: versioning, public access block, encryption, TLS-only policy, lifecycle, tags.
    let versioning = s3.get_bucket_versioning().bucket(&names.bucket).send().await.unwrap();
    assert_eq!(versioning.status(), Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled));
    let pab = s3.get_public_access_block().bucket(&names.bucket).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3.get_bucket_encryption().bucket(&names.bucket).send().await.unwrap();
    assert!(!encryption.server_side_encryption_configuration().unwrap().rules().is_empty());
    let policy = s3.get_bucket_policy().bucket(&names.bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy, bucket::tls_only_policy(base.settings.partition, &names.bucket));
    // Retention that deletes on a versioned bucket: current versions transition and
    // expire, noncurrent versions expire after that, lone delete markers and
    // abandoned multipart uploads are removed.
    let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(&names.bucket).send().await.unwrap();
    assert_eq!(lifecycle.rules().len(), 2, "{lifecycle:#?}");
    let rule = lifecycle.rules().iter().find(|r| r.id() == Some(bucket::LIFECYCLE_RULE_ID)).unwrap();
    let days: Vec<Option<i32>> = rule.transitions().iter().map(|t| t.days()).collect();
    assert_eq!(days, [Some(30), Some(90)]);
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(365));
    assert_eq!(rule.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()), Some(30));
    assert_eq!(
        rule.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
        Some(bucket::ABORT_MULTIPART_DAYS)
    );
    let markers = lifecycle.rules().iter().find(|r| r.id() == Some(bucket::DELETE_MARKER_RULE_ID)).unwrap();
    assert_eq!(markers.expiration().and_then(|e| e.expired_object_delete_marker()), Some(true));
    assert_eq!(markers.expiration().and_then(|e| e.days()), None, "S3 refuses days beside the marker flag");
    let bucket_tags = s3.get_bucket_tagging().bucket(&names.bucket).send().await.unwrap();
    assert!(bucket_tags.tag_set().iter().any(|t| t.key() == tags::AGENT && t.value() == agent.as_str()));
    assert!(bucket_tags.tag_set().iter().any(|t| t.key() == tags::TENANT && t.value() == tenant.as_str()));

    // Secret: holds the token; the task definition references it and never carries it.
    let sm = aws_sdk_secretsmanager::Client::new(&base.sdk);
    let value = sm.get_secret_value().secret_id(&names.secret).send().await.unwrap();
    let value: serde_json::Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
    assert_eq!(value["TWILIO_AUTH_TOKEN"], TOKEN);
    let secret_arn = report.resources.iter().find(|r| r.kind == ResourceKind::Secret).unwrap().arn.clone().unwrap();

    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let td = ecs.describe_task_definition().task_definition(&names.family).send().await.unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!((td.cpu(), td.memory()), (Some("256"), Some("512")));
    let platform = td.runtime_platform().unwrap();
    assert_eq!(platform.cpu_architecture(), Some(&aws_sdk_ecs::types::CpuArchitecture::X8664));
    assert_eq!(platform.operating_system_family(), Some(&aws_sdk_ecs::types::OsFamily::Linux));
    let container = &td.container_definitions()[0];
    // Pinned by digest: the tag's digest at deploy time, in the report too.
    let ecr = aws_sdk_ecr::Client::new(&base.sdk);
    let described = ecr
        .describe_images()
        .repository_name(&base.settings.runtime_repository)
        .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(IMAGE_TAG).build())
        .send()
        .await
        .unwrap();
    let digest = described.image_details()[0].image_digest().unwrap();
    let pinned = format!("/{}@{digest}", base.settings.runtime_repository);
    assert!(container.image().unwrap().ends_with(&pinned), "{:?}", container.image());
    assert_eq!(report.image.as_deref(), container.image());
    let env: Vec<(&str, &str)> =
        container.environment().iter().map(|kv| (kv.name().unwrap(), kv.value().unwrap())).collect();
    assert!(env.contains(&("AGENT_ID", agent.as_str())));
    assert!(env.contains(&("S3_BUCKET_NAME", names.bucket.as_str())));
    assert!(!env.iter().any(|(k, v)| *k == "TWILIO_AUTH_TOKEN" || v.contains(TOKEN)));
    // Each secret reference is pinned to the version the deploy wrote.
    let version = sm.describe_secret().secret_id(&names.secret).send().await.unwrap();
    let current = version
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id.clone())
        .unwrap();
    let refs: Vec<(&str, &str)> = container.secrets().iter().map(|s| (s.name(), s.value_from())).collect();
    assert_eq!(refs, [("TWILIO_AUTH_TOKEN", format!("{secret_arn}:TWILIO_AUTH_TOKEN::{current}").as_str())]);
    assert_eq!(container.stop_timeout(), Some(120));
    assert_eq!(container.port_mappings()[0].container_port(), Some(8080));

    // The agent's own task role: ECS tasks of this account only, under the boundary,
    // allowed its own bucket's calls/ and nothing of any other bucket.
    let iam = aws_sdk_iam::Client::new(&base.sdk);
    let role = iam.get_role().role_name(&names.task_role).send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(td.task_role_arn(), Some(role.arn()));
    assert_eq!(role.path(), format!("/tempovoice/{}/", base.settings.prefix));
    assert_eq!(
        role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
        Some(base.settings.task_role_boundary_arn.as_str())
    );
    let trust = task_role::decode_document(role.assume_role_policy_document().unwrap()).unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], base.settings.account);
    let inline = iam.get_role_policy().role_name(&names.task_role).policy_name(task_role::POLICY_NAME).send().await;
    let inline = task_role::decode_document(inline.unwrap().policy_document()).unwrap();
    let resources: Vec<String> = inline["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Resource"] {
            serde_json::Value::Array(a) => a.iter().map(|r| r.as_str().unwrap().to_owned()).collect(),
            r => vec![r.as_str().unwrap().to_owned()],
        })
        .collect();
    let buckets: Vec<&String> = resources.iter().filter(|r| r.starts_with("arn:aws:s3:")).collect();
    assert_eq!(
        buckets,
        [&format!("arn:aws:s3:::{}/calls/*", names.bucket), &format!("arn:aws:s3:::{}/index/*", names.bucket)],
        "only its own bucket: {inline:#}"
    );
    assert!(resources.iter().all(|r| !r.contains(":s3:::*") && r != "*"), "no wildcard bucket: {inline:#}");
    let model = format!("foundation-model/{}", config().voice.model.as_str());
    let bedrock: Vec<&String> = resources.iter().filter(|r| r.contains(":bedrock:")).collect();
    assert_eq!(bedrock.len(), 1, "{inline:#}");
    assert!(bedrock[0].ends_with(&model), "its own model only: {inline:#}");
    assert!(role.tags().iter().any(|t| t.key() == tags::AGENT && t.value() == agent.as_str()));

    // Target group: ip targets, health check, deregistration delay from the call limit.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&base.sdk);
    let tgs = elb.describe_target_groups().names(&names.target_group).send().await.unwrap();
    let tg = &tgs.target_groups()[0];
    assert_eq!(tg.target_type(), Some(&aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip));
    assert_eq!(tg.health_check_path(), Some("/health"));
    assert_eq!((tg.health_check_interval_seconds(), tg.health_check_timeout_seconds()), (Some(15), Some(5)));
    assert_eq!((tg.healthy_threshold_count(), tg.unhealthy_threshold_count()), (Some(2), Some(3)));
    let attrs =
        elb.describe_target_group_attributes().target_group_arn(tg.target_group_arn().unwrap()).send().await.unwrap();
    let delay = attrs.attributes().iter().find(|a| a.key() == Some("deregistration_delay.timeout_seconds")).unwrap();
    assert_eq!(delay.value(), Some("1830"), "default 1800 s call limit + 30 s");

    // Listener rule: the agent's path, the assigned priority, forwarding to its target group.
    let rules = elb.describe_rules().listener_arn(&base.listener_arn).send().await.unwrap();
    let rule = rules.rules().iter().find(|r| r.priority() == Some("7")).expect("rule at priority 7");
    let paths: Vec<&String> = rule.conditions().iter().flat_map(|c| c.values()).collect();
    assert_eq!(paths, [&format!("/agent/{agent}/*")]);
    assert_eq!(rule.actions()[0].target_group_arn(), tg.target_group_arn());

    // Service: private networking, the target group, the task definition, tags.
    let services = ecs
        .describe_services()
        .cluster(&base.settings.cluster)
        .services(&names.service)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    let service = &services.services()[0];
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(service.desired_count(), 1);
    assert_eq!(service.task_definition(), td.task_definition_arn());
    let network = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    assert_eq!(network.assign_public_ip(), Some(&aws_sdk_ecs::types::AssignPublicIp::Disabled));
    assert_eq!(network.subnets(), base.subnets.as_slice());
    assert_eq!(service.load_balancers()[0].target_group_arn(), tg.target_group_arn());
    assert!(service.tags().iter().any(|t| t.key() == Some(tags::AGENT) && t.value() == Some(agent.as_str())));
}

#[tokio::test]
async fn deploying_again_makes_no_mutating_call_and_a_change_only_rolls_the_service() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 3)).await.unwrap();

    assert!(base.recorder.calls().len() >= 20, "the recorder sees the calls: {:?}", base.recorder.calls());
    assert!(
        base.recorder.mutating_calls().iter().any(|c| c.operation == "CreateService"),
        "{:?}",
        base.recorder.calls()
    );
    base.recorder.clear();
    let again = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 3)).await.unwrap();
    assert_eq!(base.recorder.mutating_calls(), [], "a repeated deploy changed something");
    assert!(again.resources.iter().all(|r| r.action == ResourceAction::Unchanged), "{again:#?}");

    // A config change: one new task definition revision and an UpdateService, nothing else.
    base.recorder.clear();
    let mut changed = request(&base, &agent, &tenant, 3);
    changed.config.system_prompt = "You answer calls for Rosa's Bakery, now open on Mondays.".into();
    let report = deploy(&base.clients, &base.settings, changed).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert_eq!(action_of(&report, ResourceKind::TaskDefinition), ResourceAction::Updated);
    assert_eq!(action_of(&report, ResourceKind::Service), ResourceAction::Updated);
    assert_eq!(action_of(&report, ResourceKind::Bucket), ResourceAction::Unchanged);
}

#[tokio::test]
async fn images_are_pinned_by_digest_and_a_config_edit_keeps_the_running_image() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let ecr = aws_sdk_ecr::Client::new(&base.sdk);
    let repo = base.settings.runtime_repository.clone();
    let v2 = push_image(&ecr, &repo, "v2").await;
    let mut req = request(&base, &agent, &tenant, 5);
    req.image_tag = Some("v2".into());
    let first = deploy(&base.clients, &base.settings, req).await.unwrap();
    assert!(first.image.as_deref().unwrap().ends_with(&format!("/{repo}@{v2}")), "{first:#?}");

    // The tag moves to another image: nothing changes until a deploy asks for it.
    let moved = push_image(&ecr, &repo, "v2-moved").await;
    ecr.batch_delete_image()
        .repository_name(&repo)
        .image_ids(aws_sdk_ecr::types::ImageIdentifier::builder().image_tag("v2").build())
        .send()
        .await
        .unwrap();
    assert_ne!(moved, v2);

    // A config edit names no tag: the agent keeps the image it runs (not the
    // default tag's), even though the tag it came from is gone.
    base.recorder.clear();
    let mut edit = request(&base, &agent, &tenant, 5);
    edit.config.system_prompt = "You answer calls for Rosa's Bakery. Be brief.".into();
    let edited = deploy(&base.clients, &base.settings, edit).await.unwrap();
    assert_eq!(edited.image, first.image, "a config edit changed the image");
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);

    // A deploy naming the default tag moves it there.
    let mut back = request(&base, &agent, &tenant, 5);
    back.image_tag = Some(IMAGE_TAG.into());
    let reset = deploy(&base.clients, &base.settings, back).await.unwrap();
    assert!(reset.image.as_deref().unwrap().contains("@sha256:"));
    assert_ne!(reset.image, first.image);
}

#[tokio::test]
async fn an_arm64_agent_runs_on_arm64_and_converges() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let mut req = request(&base, &agent, &tenant, 8);
    req.config.sizing.cpu_architecture = agent_spec::config::CpuArchitecture::Arm64;
    deploy(&base.clients, &base.settings, req.clone()).await.unwrap();
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let td = ecs.describe_task_definition().task_definition(&names.family).send().await.unwrap();
    let arch = td.task_definition().unwrap().runtime_platform().and_then(|p| p.cpu_architecture()).cloned();
    assert_eq!(arch, Some(aws_sdk_ecs::types::CpuArchitecture::Arm64));
    base.recorder.clear();
    deploy(&base.clients, &base.settings, req).await.unwrap();
    assert_eq!(base.recorder.mutating_calls(), [], "the platform is compared, not rewritten");
}

#[tokio::test]
async fn a_changed_secret_is_pinned_by_its_new_version() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 6)).await.unwrap();
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let value_from = async || {
        let td = ecs.describe_task_definition().task_definition(&names.family).send().await.unwrap();
        td.task_definition().unwrap().container_definitions()[0].secrets()[0].value_from().to_owned()
    };
    let before = value_from().await;

    base.recorder.clear();
    let mut req = request(&base, &agent, &tenant, 6);
    req.secrets = secrets("0123456789abcdef0123456789abcdef");
    deploy(&base.clients, &base.settings, req).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops, ["PutSecretValue", "RegisterTaskDefinition", "UpdateService"]);
    let after = value_from().await;
    assert_ne!(before, after);
    let (arn_key, version) = after.rsplit_once("::").unwrap();
    assert!(arn_key.ends_with(":TWILIO_AUTH_TOKEN") && !version.is_empty(), "{after}");
    let sm = aws_sdk_secretsmanager::Client::new(&base.sdk);
    let pinned = sm.get_secret_value().secret_id(&names.secret).version_id(version).send().await.unwrap();
    assert!(pinned.secret_string().unwrap().contains("0123456789abcdef0123456789abcdef"));
}

#[tokio::test]
async fn a_missing_image_or_invalid_request_creates_nothing() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let mut req = request(&base, &agent, &tenant, 4);
    req.image_tag = Some("does-not-exist".into());
    let err = deploy(&base.clients, &base.settings, req).await.unwrap_err();
    assert_eq!((err.step, err.retryable), (Step::RuntimeImage, false));
    assert_eq!(err.code.as_deref(), Some("ImageNotFoundException"));
    assert!(err.message.contains("does-not-exist"), "{err}");

    let mut req = request(&base, &agent, &tenant, 4);
    req.config.telephony.transfer_phone_number = Some(req.config.telephony.call_phone_number.clone());
    let err = deploy(&base.clients, &base.settings, req).await.unwrap_err();
    assert_eq!((err.step, err.retryable), (Step::Validate, false));
    assert!(err.message.contains("telephony.transfer_phone_number"), "{err}");
    assert_eq!(err.error_type(), "NonRetryable.validate");

    assert_eq!(base.recorder.mutating_calls(), [], "nothing may be created");
}

#[tokio::test]
async fn delete_removes_everything_and_keeps_or_purges_the_transcripts() {
    // Objects are written below: without the TLS-only policy, which moto would apply
    // to every request (it ignores the policy's condition).
    let base = base_with(|s| {
        s.insert("TEMPOVOICE_TRANSCRIPTS_TLS_ONLY".into(), "false".into());
    })
    .await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 9)).await.unwrap();
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base.sdk).force_path_style(true).build());
    for key in ["calls/CA1/transcript.json", "calls/CA1/transcript.json", "calls/CA1/metadata.json"] {
        s3.put_object().bucket(&names.bucket).key(key).body(b"{}".to_vec().into()).send().await.unwrap();
    }

    let req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: false,
    };
    let report = delete(&base.clients, &base.settings, req.clone()).await.unwrap();
    for kind in [
        ResourceKind::Autoscaling,
        ResourceKind::Service,
        ResourceKind::ListenerRule,
        ResourceKind::TargetGroup,
        ResourceKind::TaskDefinition,
        ResourceKind::Secret,
        ResourceKind::TaskRole,
    ] {
        assert_eq!(action_of(&report, kind), ResourceAction::Deleted, "{kind:?}");
    }
    assert_eq!(action_of(&report, ResourceKind::Bucket), ResourceAction::Retained);
    let bucket_tags = s3.get_bucket_tagging().bucket(&names.bucket).send().await.unwrap();
    assert!(bucket_tags.tag_set().iter().any(|t| t.key() == tags::RETIRED));

    // Nothing of the agent is left but the retained bucket.
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let services =
        ecs.describe_services().cluster(&base.settings.cluster).services(&names.service).send().await.unwrap();
    assert!(services.services().iter().all(|s| s.status() != Some("ACTIVE")));
    let active = ecs.list_task_definitions().family_prefix(&names.family).send().await.unwrap();
    assert_eq!(active.task_definition_arns(), [] as [String; 0]);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&base.sdk);
    assert!(elb.describe_target_groups().names(&names.target_group).send().await.is_err());
    let rules = elb.describe_rules().listener_arn(&base.listener_arn).send().await.unwrap();
    assert!(rules.rules().iter().all(|r| r.is_default() == Some(true)), "only the default rule is left");
    let sm = aws_sdk_secretsmanager::Client::new(&base.sdk);
    let listed = sm.list_secrets().send().await.unwrap();
    assert!(!listed.secret_list().iter().any(|s| s.name() == Some(names.secret.as_str())));

    // Deleting again is a no-op; purging removes every version and the bucket.
    let again = delete(&base.clients, &base.settings, req.clone()).await.unwrap();
    assert!(
        again.resources.iter().filter(|r| r.kind != ResourceKind::Bucket).all(|r| r.action == ResourceAction::Absent),
        "{again:#?}"
    );
    let purged = delete(&base.clients, &base.settings, DeleteRequest { purge_transcripts: true, ..req }).await.unwrap();
    assert_eq!(action_of(&purged, ResourceKind::Bucket), ResourceAction::Deleted);
    assert!(s3.head_bucket().bucket(&names.bucket).send().await.is_err());

    // And a redeploy brings everything back (the secret is restored from its recovery window).
    let back = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 9)).await.unwrap();
    assert_eq!(action_of(&back, ResourceKind::Service), ResourceAction::Created);
}
