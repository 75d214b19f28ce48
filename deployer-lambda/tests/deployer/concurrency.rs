//! Concurrent deploys and rule priorities, against moto server: two deploys of the
//! same agent end with one set of resources; deploys of different agents never share
//! a priority; a priority held by someone else's rule is refused by name, never taken.

use crate::common;

use agent_spec::{AgentId, TenantId};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, RuleCondition};
use common::*;
use deployer_lambda::naming::AgentNames;
use deployer_lambda::report::{ResourceAction, ResourceKind};
use deployer_lambda::{Placement, Step, deploy};

fn elb(base: &Base) -> aws_sdk_elasticloadbalancingv2::Client {
    aws_sdk_elasticloadbalancingv2::Client::new(&base.sdk)
}

/// (path pattern, priority) of every rule on the base's listener, default rule aside.
async fn rules(base: &Base) -> Vec<(String, String)> {
    let out = elb(base).describe_rules().listener_arn(&base.listener_arn).send().await.unwrap();
    out.rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .map(|r| {
            let path = r.conditions().iter().flat_map(|c| c.values()).next().cloned().unwrap_or_default();
            (path, r.priority().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn two_deploys_of_one_agent_at_once_end_with_one_set_of_resources() {
    let base = base().await;
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let req = request(&base, &agent, &tenant, 41);
    let (a, b) = tokio::join!(
        deploy(&base.clients, &base.settings, req.clone()),
        deploy(&base.clients, &base.settings, req.clone())
    );
    // Each either converged or lost a race to the other (each can lose a different
    // one: the target group to one, the secret to the other) with a retryable error;
    // a retry finishes the job.
    for r in [&a, &b] {
        if let Err(e) = r {
            assert!(e.retryable, "a lost race must be retryable: {e:?}");
        }
    }
    if a.is_err() && b.is_err() {
        deploy(&base.clients, &base.settings, req.clone()).await.unwrap();
    }
    base.recorder.clear();
    let again = deploy(&base.clients, &base.settings, req).await.unwrap();
    assert!(again.resources.iter().all(|r| r.action == ResourceAction::Unchanged), "{again:#?}");
    assert!(base.recorder.mutating_calls().is_empty(), "{:?}", base.recorder.mutating_calls());

    // One of each: one rule for the agent's path, one active service, one target group.
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let ours: Vec<_> = rules(&base).await.into_iter().filter(|(p, _)| *p == names.path_pattern).collect();
    assert_eq!(ours, [(names.path_pattern.clone(), "41".to_owned())]);
    let tgs = elb(&base).describe_target_groups().names(&names.target_group).send().await.unwrap();
    assert_eq!(tgs.target_groups().len(), 1);
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let services = ecs.list_services().cluster(&base.settings.cluster).send().await.unwrap();
    assert_eq!(services.service_arns().iter().filter(|a| a.ends_with(&names.service)).count(), 1);
    // The service runs the family's latest revision (a race may have registered two).
    let latest = ecs.describe_task_definition().task_definition(&names.family).send().await.unwrap();
    let service =
        ecs.describe_services().cluster(&base.settings.cluster).services(&names.service).send().await.unwrap();
    assert_eq!(service.services()[0].task_definition(), latest.task_definition().and_then(|t| t.task_definition_arn()));
}

#[tokio::test]
async fn concurrent_deploys_of_different_agents_keep_their_own_priorities() {
    let base = base().await;
    let tenant = TenantId::generate();
    let agents: Vec<AgentId> = (0..5).map(|_| AgentId::generate()).collect();
    let deploys = agents
        .iter()
        .enumerate()
        .map(|(i, a)| deploy(&base.clients, &base.settings, request(&base, a, &tenant, 100 + i as u32)));
    for result in futures::future::join_all(deploys).await {
        result.unwrap();
    }
    let mut found = rules(&base).await;
    found.sort();
    let mut expected: Vec<(String, String)> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (AgentNames::new(&base.settings.prefix, a).path_pattern, (100 + i).to_string()))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn a_priority_held_by_another_rule_is_refused_and_left_alone() {
    let base = base().await;
    let elb = elb(&base);
    // Someone else's rule at priority 77.
    let tg = elb
        .create_target_group()
        .name(unique("other-"))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&base.settings.vpc_id)
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
    let foreign = elb
        .create_rule()
        .listener_arn(&base.listener_arn)
        .priority(77)
        .conditions(RuleCondition::builder().field("path-pattern").values("/legacy/*").build())
        .actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg_arn).build())
        .send()
        .await
        .unwrap();
    let foreign_arn = foreign.rules()[0].rule_arn().unwrap().to_owned();

    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    let err = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 77)).await.unwrap_err();
    assert_eq!((err.step, err.code.as_deref(), err.retryable), (Step::ListenerRule, Some("PriorityInUse"), false));
    assert!(err.message.contains(&foreign_arn) && err.message.contains("77"), "{err}");
    assert_eq!(err.error_type(), "NonRetryable.listener_rule.PriorityInUse");

    // With another slot the deploy converges, and the other rule is untouched.
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 78)).await.unwrap();
    let rule = report.resources.iter().find(|r| r.kind == ResourceKind::ListenerRule).unwrap();
    assert_eq!(rule.action, ResourceAction::Created);
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let mut found = rules(&base).await;
    found.sort();
    assert_eq!(found, [(names.path_pattern, "78".to_owned()), ("/legacy/*".to_owned(), "77".to_owned())]);

    // A new slot for an agent that has a rule moves the rule; it is never duplicated.
    let report = deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 79)).await.unwrap();
    let rule = report.resources.iter().find(|r| r.kind == ResourceKind::ListenerRule).unwrap();
    assert_eq!(
        (rule.action, rule.changes.as_slice()),
        (ResourceAction::Updated, ["priority 79".to_owned()].as_slice())
    );
    assert_eq!(rules(&base).await.len(), 2);
}

/// The agent's rules (by path) on `listener`.
async fn agent_rules(base: &Base, listener: &str, agent: &AgentId) -> Vec<String> {
    let path = format!("/agent/{agent}/*");
    let rules = elb(base).describe_rules().listener_arn(listener).send().await.unwrap();
    rules
        .rules()
        .iter()
        .filter(|r| r.conditions().iter().flat_map(|c| c.values()).any(|v| *v == path))
        .map(|r| r.rule_arn().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_moved_to_another_load_balancer_loses_its_old_rule_before_it_gets_the_new_one() {
    let base = base_full(2, |_| {}).await;
    let (first, second) = (base.listeners[0].clone(), base.listeners[1].clone());
    let (agent, tenant) = (AgentId::generate(), TenantId::generate());
    deploy(&base.clients, &base.settings, request(&base, &agent, &tenant, 40)).await.unwrap();
    assert_eq!(agent_rules(&base, &first.0, &agent).await.len(), 1);

    // Placed on the second ALB: the first's rule is deleted before the new one is made
    // (a target group can be used by one load balancer only).
    base.recorder.clear();
    let mut moved = request(&base, &agent, &tenant, 41);
    moved.placement = Placement {
        listener_arn: second.0.clone(),
        priority: 41,
        public_host: Some(second.1.clone()),
        control_plane_url: None,
    };
    deploy(&base.clients, &base.settings, moved).await.unwrap();
    let ops: Vec<String> = base.recorder.mutating_calls().into_iter().map(|c| c.operation).collect();
    let deleted = ops.iter().position(|o| o == "DeleteRule").expect("the old rule is deleted");
    let created = ops.iter().position(|o| o == "CreateRule").expect("a rule is created");
    assert!(deleted < created, "{ops:?}");
    assert_eq!(agent_rules(&base, &first.0, &agent).await, Vec::<String>::new());
    assert_eq!(agent_rules(&base, &second.0, &agent).await.len(), 1);

    // The runtime answers on the new ALB's host.
    let ecs = aws_sdk_ecs::Client::new(&base.sdk);
    let names = AgentNames::new(&base.settings.prefix, &agent);
    let td = ecs.describe_task_definition().task_definition(&names.family).send().await.unwrap();
    let env = td.task_definition().unwrap().container_definitions()[0].environment().to_vec();
    let host = env.iter().find(|kv| kv.name() == Some("TEMPOVOICE_PUBLIC_HOST")).and_then(|kv| kv.value());
    assert_eq!(host, Some(second.1.as_str()));

    // An agent deleted with the wrong listener given (a move that never finished)
    // still loses its rule: it is found through the load balancers its target group
    // is attached to.
    let other = AgentId::generate();
    deploy(&base.clients, &base.settings, request(&base, &other, &tenant, 42)).await.unwrap();
    let req = deployer_lambda::DeleteRequest {
        agent_id: other.clone(),
        tenant_id: tenant.clone(),
        listener_arn: Some(second.0.clone()),
        purge_transcripts: true,
    };
    deployer_lambda::delete(&base.clients, &base.settings, req).await.unwrap();
    assert_eq!(agent_rules(&base, &first.0, &other).await, Vec::<String>::new());
}
