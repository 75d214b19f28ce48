//! The listener rule routing `/agent/{agentId}/*` to the agent's target group, at
//! the (listener, priority) the control plane assigned. The rule is found by its
//! path pattern, so a rule made by an interrupted deploy is reused, and a
//! `PriorityInUse` answer is resolved by looking again rather than by guessing.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Rule, RuleCondition, RulePriorityPair, Tag};

use crate::error::{DeployError, Step, code_of};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::ListenerRule;

pub struct Desired<'a> {
    pub listener_arn: &'a str,
    pub priority: u32,
    pub path_pattern: &'a str,
    pub target_group_arn: &'a str,
    pub tags: &'a [(&'static str, String)],
}

fn has_path(rule: &Rule, pattern: &str) -> bool {
    rule.conditions().iter().any(|c| {
        c.field() == Some("path-pattern")
            && (c.values().iter().any(|v| v == pattern)
                || c.path_pattern_config().is_some_and(|p| p.values().iter().any(|v| v == pattern)))
    })
}

fn forwards_to(rule: &Rule, target_group_arn: &str) -> bool {
    rule.actions()
        .iter()
        .any(|a| a.r#type() == Some(&ActionTypeEnum::Forward) && a.target_group_arn() == Some(target_group_arn))
}

/// Every rule of the listener (paginated).
pub async fn rules(elb: &Client, listener_arn: &str) -> Result<Vec<Rule>, DeployError> {
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let out = elb
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        all.extend(out.rules().iter().cloned());
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(all),
        }
    }
}

/// The load balancer a listener belongs to: `…:listener/app/{name}/{lb}/{listener}`
/// is on `…:loadbalancer/app/{name}/{lb}`.
pub fn load_balancer_of(listener_arn: &str) -> Option<String> {
    let (head, tail) = listener_arn.split_once(":listener/")?;
    let (lb_path, _listener_id) = tail.rsplit_once('/')?;
    Some(format!("{head}:loadbalancer/{lb_path}"))
}

/// Removes the agent's rules (found by `path_pattern`) from every listener of the
/// load balancers `target_group` is attached to, except `keep_listener`'s own load
/// balancer. A target group can be used by one load balancer only
/// (`TargetGroupAssociationLimit`), so an agent moved to another ALB loses its old
/// rule before it gets the new one. Returns the rules deleted.
pub async fn remove_elsewhere(
    elb: &Client,
    load_balancer_arns: &[String],
    keep_listener: Option<&str>,
    path_pattern: &str,
) -> Result<Vec<String>, DeployError> {
    let keep = keep_listener.and_then(load_balancer_of);
    let mut deleted = Vec::new();
    for lb in load_balancer_arns.iter().filter(|lb| Some(lb.as_str()) != keep.as_deref()) {
        let listeners: Vec<aws_sdk_elasticloadbalancingv2::types::Listener> =
            match elb.describe_listeners().load_balancer_arn(lb).into_paginator().items().send().try_collect().await {
                Ok(listeners) => listeners,
                // The old load balancer is gone, and its rules with it.
                Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => continue,
                Err(e) => return Err(DeployError::aws(STEP, e)),
            };
        for listener in listeners.iter().filter_map(|l| l.listener_arn()) {
            for rule in rules(elb, listener).await?.iter().filter(|r| has_path(r, path_pattern)) {
                let arn = rule.rule_arn().unwrap_or_default();
                match elb.delete_rule().rule_arn(arn).send().await {
                    Ok(_) => deleted.push(arn.to_owned()),
                    Err(e) if code_of(&e) == Some("RuleNotFound") => {}
                    Err(e) => return Err(DeployError::aws(STEP, e)),
                }
            }
        }
    }
    Ok(deleted)
}

/// Deletes the agent's rule on `listener_arn` (if given), and on every load balancer
/// its target group is still attached to (`attached`).
pub async fn remove(
    elb: &Client,
    listener_arn: Option<&str>,
    attached: &[String],
    path_pattern: &str,
) -> Result<ResourceReport, DeployError> {
    let mut deleted = Vec::new();
    if let Some(listener) = listener_arn {
        if let Some(rule) = find(elb, listener, path_pattern).await? {
            let arn = rule.rule_arn().unwrap_or_default().to_owned();
            match elb.delete_rule().rule_arn(&arn).send().await {
                Ok(_) => deleted.push(arn),
                Err(e) if code_of(&e) == Some("RuleNotFound") => {}
                Err(e) => return Err(DeployError::aws(STEP, e)),
            }
        }
    }
    deleted.extend(remove_elsewhere(elb, attached, listener_arn, path_pattern).await?);
    let action = if deleted.is_empty() { ResourceAction::Absent } else { ResourceAction::Deleted };
    Ok(ResourceReport::new(ResourceKind::ListenerRule, path_pattern, deleted.first().cloned(), action))
}

/// The agent's rule on `listener_arn`, found by its path pattern.
pub async fn find(elb: &Client, listener_arn: &str, path_pattern: &str) -> Result<Option<Rule>, DeployError> {
    Ok(rules(elb, listener_arn).await?.into_iter().find(|r| has_path(r, path_pattern)))
}

fn forward(target_group_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
}

/// Creates or corrects the rule; `rules` are the listener's, as [`rules`] answered.
pub async fn converge(elb: &Client, d: &Desired<'_>, rules: &[Rule]) -> Result<ResourceReport, DeployError> {
    let priority = d.priority.to_string();
    let (rule, existed) = match rules.iter().find(|r| has_path(r, d.path_pattern)).cloned() {
        Some(rule) => (rule, true),
        None => {
            let created = elb
                .create_rule()
                .listener_arn(d.listener_arn)
                .priority(d.priority as i32)
                .conditions(RuleCondition::builder().field("path-pattern").values(d.path_pattern).build())
                .actions(forward(d.target_group_arn))
                .set_tags(Some(d.tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()))
                .send()
                .await;
            match created {
                Ok(out) => {
                    let rule = out
                        .rules()
                        .first()
                        .cloned()
                        .ok_or_else(|| DeployError::new(STEP, None, "CreateRule returned no rule", true))?;
                    (rule, false)
                }
                Err(e) if code_of(&e) == Some("PriorityInUse") => {
                    // Either a concurrent deploy of this agent made our rule, or the
                    // priority belongs to another rule: say which.
                    let all = self::rules(elb, d.listener_arn).await?;
                    if let Some(ours) = all.iter().find(|r| has_path(r, d.path_pattern)) {
                        (ours.clone(), true)
                    } else {
                        let holder = all
                            .iter()
                            .find(|r| r.priority() == Some(priority.as_str()))
                            .and_then(|r| r.rule_arn())
                            .unwrap_or("an unknown rule");
                        return Err(DeployError::new(
                            STEP,
                            Some("PriorityInUse"),
                            format!(
                                "priority {} on listener {} is held by {holder}, which is not this agent's; \
                                 the control plane must assign another slot",
                                d.priority, d.listener_arn
                            ),
                            false,
                        ));
                    }
                }
                Err(e) => return Err(DeployError::aws(STEP, e)),
            }
        }
    };
    let arn = rule.rule_arn().unwrap_or_default().to_owned();
    let mut changes = Vec::new();
    if existed && !forwards_to(&rule, d.target_group_arn) {
        elb.modify_rule()
            .rule_arn(&arn)
            .actions(forward(d.target_group_arn))
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("target group".to_owned());
    }
    if existed && rule.priority() != Some(priority.as_str()) {
        elb.set_rule_priorities()
            .rule_priorities(RulePriorityPair::builder().rule_arn(&arn).priority(d.priority as i32).build())
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push(format!("priority {priority}"));
    }
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::ListenerRule, d.path_pattern, Some(arn), action).with_changes(changes))
}
