//! `status` and `rollout` against moto server.

use crate::common;

use agent_spec::{AgentId, TenantId};
use common::*;
use deployer_lambda::fleet::{RolloutAction, RolloutRequest, StatusRequest, SweepRequest, rollout, status, sweep};
use deployer_lambda::naming::AgentNames;
use deployer_lambda::report::{ResourceAction, ResourceKind};
use deployer_lambda::{DeleteRequest, Step, delete, deploy};

#[tokio::test]
async fn status_follows_the_agent_through_deploy_and_delete() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let req =
        StatusRequest { agent_id: agent.clone(), tenant_id: tenant.clone(), listener_arn: base.listener_arn.clone() };

    let before = status(&base.clients, &base.settings, req.clone()).await.unwrap();
    assert!(before.resources.iter().all(|r| r.action == ResourceAction::Absent), "{before:#?}");
    assert!(before.service.is_none());

    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 11)).await.unwrap();
    base.recorder.clear();
    let after = status(&base.clients, &base.settings, req.clone()).await.unwrap();
    assert_eq!(base.recorder.mutating_calls(), [], "status only reads");
    assert_eq!(after.resources.len(), 8);
    assert!(after.resources.iter().all(|r| r.action == ResourceAction::Present && r.arn.is_some()), "{after:#?}");
    let service = after.service.unwrap();
    assert_eq!(service.desired, 1);
    assert!(service.task_definition_arn.unwrap().contains(&AgentNames::new(&base.settings.prefix, &agent).family));

    let delete_req = DeleteRequest {
        agent_id: agent.clone(),
        tenant_id: tenant,
        listener_arn: Some(base.listener_arn.clone()),
        purge_transcripts: false,
    };
    delete(&base.clients, &base.settings, delete_req).await.unwrap();
    let gone = status(&base.clients, &base.settings, req).await.unwrap();
    for r in &gone.resources {
        let expected = if r.kind == ResourceKind::Bucket { ResourceAction::Present } else { ResourceAction::Absent };
        assert_eq!(r.action, expected, "{:?} after delete (the bucket is retained)", r.kind);
    }
}

#[tokio::test]
async fn rollout_moves_every_agent_onto_the_new_image_once() {
    let base = base().await;
    let tenant = TenantId::generate();
    let agents: Vec<AgentId> = (0..3).map(|_| AgentId::generate()).collect();
    for (i, agent) in agents.iter().enumerate() {
        deploy(&base.clients, &base.settings, request(&base, agent, &tenant, 20 + i as u32)).await.unwrap();
    }
    let ecr = aws_sdk_ecr::Client::new(&base.sdk);
    let v2 = push_image(&ecr, &base.settings.runtime_repository, "v2").await;

    // A tag that does not exist changes nothing.
    let err = rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "v9".into(), agents: None })
        .await
        .unwrap_err();
    assert_eq!(err.step, Step::RuntimeImage);

    base.recorder.clear();
    let report =
        rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "v2".into(), agents: None }).await.unwrap();
    assert!(report.image.ends_with(&format!("@{v2}")), "pinned by digest: {}", report.image);
    assert_eq!(report.digest, v2);
    assert_eq!(report.agents.len(), 3);
    assert!(report.agents.iter().all(|a| a.action == RolloutAction::Updated), "{report:#?}");
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(ops.iter().filter(|o| *o == "RegisterTaskDefinition").count(), 3);
    assert_eq!(ops.iter().filter(|o| *o == "UpdateService").count(), 3);
    assert_eq!(ops.len(), 6, "{ops:?}");

    // Each service now runs a revision with the new image; the rest of it is unchanged.
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    for agent in &agents {
        let names = AgentNames::new(&base.settings.prefix, agent);
        let svc =
            ecs.describe_services().cluster(&base.settings.cluster).services(&names.service).send().await.unwrap();
        let td_arn = svc.services()[0].task_definition().unwrap().to_owned();
        let td = ecs.describe_task_definition().task_definition(&td_arn).send().await.unwrap();
        let container = &td.task_definition().unwrap().container_definitions()[0];
        assert_eq!(container.image(), Some(report.image.as_str()));
        assert!(
            container
                .environment()
                .iter()
                .any(|kv| kv.name() == Some("AGENT_ID") && kv.value() == Some(agent.as_str()))
        );
        assert_eq!(container.secrets().len(), 1);
    }

    // Again: nothing to do. A named set may include an agent that was never deployed.
    base.recorder.clear();
    let again =
        rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "v2".into(), agents: None }).await.unwrap();
    assert!(again.agents.iter().all(|a| a.action == RolloutAction::Unchanged));
    assert_eq!(base.recorder.mutating_calls(), []);
    let stranger = AgentId::generate();
    let named = rollout(
        &base.clients,
        &base.settings,
        RolloutRequest { image_tag: "v1".into(), agents: Some(vec![agents[0].clone(), stranger.clone()]) },
    )
    .await
    .unwrap();
    let by_id = |id: &AgentId| named.agents.iter().find(|a| a.agent_id == id.as_str()).unwrap().action;
    assert_eq!((by_id(&agents[0]), by_id(&stranger)), (RolloutAction::Updated, RolloutAction::Absent));

    // By digest, as a release pipeline names what it pushed: the same image as by tag.
    let by_digest =
        rollout(&base.clients, &base.settings, RolloutRequest { image_tag: v2.clone(), agents: None }).await.unwrap();
    assert_eq!(by_digest.image, report.image);
    // Only agents[0], moved back to v1 above, had anything to do.
    let action_of = |id: &AgentId| by_digest.agents.iter().find(|a| a.agent_id == id.as_str()).unwrap().action;
    assert_eq!(action_of(&agents[0]), RolloutAction::Updated, "{by_digest:#?}");
    assert!(agents[1..].iter().all(|a| action_of(a) == RolloutAction::Unchanged), "{by_digest:#?}");
    // A digest ECR does not hold, and one that is not a digest, change nothing.
    let unknown = format!("sha256:{}", "0".repeat(64));
    let err = rollout(&base.clients, &base.settings, RolloutRequest { image_tag: unknown.clone(), agents: None })
        .await
        .unwrap_err();
    assert_eq!((err.step, err.code.as_deref()), (Step::RuntimeImage, Some("ImageNotFoundException")), "{err:?}");
    assert!(err.message.contains(&format!("@{unknown}")), "{}", err.message);
    let err = rollout(&base.clients, &base.settings, RolloutRequest { image_tag: "sha256:beef".into(), agents: None })
        .await
        .unwrap_err();
    assert!(!err.retryable && err.message.contains("image_tag \"sha256:beef\" is not an image digest"), "{err:?}");
}

#[tokio::test]
async fn sweep_reports_then_removes_orphans_and_leaves_known_agents_alone() {
    let base = base().await;
    let tenant = TenantId::generate();
    let (kept, gone) = (AgentId::generate(), AgentId::generate());
    deploy(&base.clients, &base.settings, request(&base, &kept, &tenant, 31)).await.unwrap();
    deploy(&base.clients, &base.settings, request(&base, &gone, &tenant, 32)).await.unwrap();
    // A planted orphan: a secret with our tags that no deploy made. And a secret
    // whose name merely looks like ours, without the tags: not ours to sweep.
    let planted = AgentId::generate();
    let sm = aws_sdk_secretsmanager::Client::new(&base.sdk);
    let planted_names = AgentNames::new(&base.settings.prefix, &planted);
    let planted_secret = planted_names.secret.clone();
    let tag = |(k, v): &(&str, String)| aws_sdk_secretsmanager::types::Tag::builder().key(*k).value(v).build();
    let planted_tags = planted_names.tags(&tenant).iter().map(tag).collect();
    sm.create_secret().name(&planted_secret).secret_string("{}").set_tags(Some(planted_tags)).send().await.unwrap();
    let look_alike = AgentNames::new(&base.settings.prefix, &AgentId::generate()).secret;
    sm.create_secret().name(&look_alike).secret_string("{}").send().await.unwrap();

    let req = |delete| SweepRequest {
        known_agents: vec![kept.clone()],
        listener_arns: vec![base.listener_arn.clone()],
        delete,
    };
    base.recorder.clear();
    // A listing can miss a resource made a moment ago: AWS's List calls are eventually
    // consistent, and moto's server, iterating a dict other tests write to at the same
    // time, can skip an entry. A sweep is periodic, so the next one finds it; here the
    // report is asked for again (at most 3 times) before holding it to every resource.
    let mut report = sweep(&base.clients, &base.settings, req(false)).await.unwrap();
    let complete = |r: &deployer_lambda::fleet::SweepReport| {
        r.orphans.iter().find(|o| o.agent_id == gone).is_some_and(|o| o.found.len() == 7)
    };
    for _ in 0..2 {
        if complete(&report) {
            break;
        }
        report = sweep(&base.clients, &base.settings, req(false)).await.unwrap();
    }
    assert_eq!(base.recorder.mutating_calls(), [], "a report-only sweep changes nothing");
    let ids: Vec<&AgentId> = report.orphans.iter().map(|o| &o.agent_id).collect();
    assert_eq!(ids.len(), 2, "{report:#?}");
    assert!(ids.contains(&&gone) && ids.contains(&&planted) && !ids.contains(&&kept));
    let gone_found = &report.orphans.iter().find(|o| o.agent_id == gone).unwrap().found;
    assert_eq!(gone_found.len(), 7, "every resource of the orphan is found: {gone_found:?}");

    let swept = sweep(&base.clients, &base.settings, req(true)).await.unwrap();
    assert!(swept.orphans.iter().all(|o| o.deleted.is_some()));
    assert!(sm.describe_secret().secret_id(&planted_secret).send().await.unwrap().deleted_date().is_some());
    // Only the retained (retired) bucket of the orphan is left, and it is not reported again.
    let after = sweep(&base.clients, &base.settings, req(false)).await.unwrap();
    assert_eq!(after.orphans, [], "{after:#?}");
    assert_eq!(after.expired_buckets, [], "retired today: within its retention");
    assert!(sm.describe_secret().secret_id(&look_alike).send().await.unwrap().deleted_date().is_none());

    // Retired long ago (past TEMPOVOICE_RETIRED_BUCKET_DAYS): reported, then removed.
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base.sdk).force_path_style(true).build());
    let gone_bucket = AgentNames::new(&base.settings.prefix, &gone).bucket;
    let mut tags = s3.get_bucket_tagging().bucket(&gone_bucket).send().await.unwrap().tag_set().to_vec();
    for t in tags.iter_mut().filter(|t| t.key() == deployer_lambda::naming::tags::RETIRED) {
        *t = aws_sdk_s3::types::Tag::builder().key(t.key()).value("2020-01-01T00:00:00Z").build().unwrap();
    }
    let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tags)).build().unwrap();
    s3.put_bucket_tagging().bucket(&gone_bucket).tagging(tagging).send().await.unwrap();
    let old = sweep(&base.clients, &base.settings, req(false)).await.unwrap();
    let expired: Vec<&str> = old.expired_buckets.iter().map(|b| b.bucket.as_str()).collect();
    assert_eq!(expired, [gone_bucket.as_str()], "{old:#?}");
    let removed = sweep(&base.clients, &base.settings, req(true)).await.unwrap();
    assert!(removed.expired_buckets.iter().all(|b| b.deleted), "{removed:#?}");
    assert!(s3.head_bucket().bucket(&gone_bucket).send().await.is_err(), "the expired bucket is gone");

    // A bucket retired without a time (as retired buckets were tagged before it was
    // recorded): never removed at once; a deleting sweep starts its retention.
    let old_style = AgentId::generate();
    deploy(&base.clients, &base.settings, request(&base, &old_style, &tenant, 33)).await.unwrap();
    let old_bucket = AgentNames::new(&base.settings.prefix, &old_style).bucket;
    let mut tags = s3.get_bucket_tagging().bucket(&old_bucket).send().await.unwrap().tag_set().to_vec();
    tags.push(
        aws_sdk_s3::types::Tag::builder().key(deployer_lambda::naming::tags::RETIRED).value("true").build().unwrap(),
    );
    let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tags)).build().unwrap();
    s3.put_bucket_tagging().bucket(&old_bucket).tagging(tagging).send().await.unwrap();
    let mut known = req(true);
    known.known_agents.push(old_style.clone());
    let swept = sweep(&base.clients, &base.settings, known).await.unwrap();
    assert!(swept.expired_buckets.iter().all(|b| b.bucket != old_bucket), "{swept:#?}");
    let tags = s3.get_bucket_tagging().bucket(&old_bucket).send().await.unwrap().tag_set().to_vec();
    let retired = tags.iter().find(|t| t.key() == deployer_lambda::naming::tags::RETIRED).unwrap();
    assert!(retired.value().ends_with('Z') && retired.value().starts_with("20"), "a time now: {retired:?}");
    let kept_status = status(
        &base.clients,
        &base.settings,
        StatusRequest { agent_id: kept, tenant_id: tenant, listener_arn: base.listener_arn.clone() },
    )
    .await
    .unwrap();
    assert!(kept_status.resources.iter().all(|r| r.action == ResourceAction::Present), "the known agent is intact");
}

#[tokio::test]
async fn handle_dispatches_by_action_and_refuses_unknown_versions() {
    use deployer_lambda::event::{Action, DeployerEvent, Outcome};
    let base = base().await;
    let req = StatusRequest {
        agent_id: AgentId::generate(),
        tenant_id: TenantId::generate(),
        listener_arn: base.listener_arn.clone(),
    };
    let response = deployer_lambda::handle(
        &base.clients,
        &base.settings,
        DeployerEvent { version: 1, action: Action::Status(req.clone()) },
    )
    .await
    .unwrap();
    assert_eq!(response.version, 1);
    assert!(matches!(response.outcome, Outcome::Status(s) if s.service.is_none()));
    let json = serde_json::to_value(
        deployer_lambda::handle(
            &base.clients,
            &base.settings,
            DeployerEvent { version: 1, action: Action::Status(req.clone()) },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["action"], "status", "the response names its action: {json}");

    let err = deployer_lambda::handle(
        &base.clients,
        &base.settings,
        DeployerEvent { version: 2, action: Action::Status(req) },
    )
    .await
    .unwrap_err();
    assert_eq!((err.step, err.retryable), (Step::Validate, false));
    assert!(err.message.contains("version 2"), "{err}");
}
