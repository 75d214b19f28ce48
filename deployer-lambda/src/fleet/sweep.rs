//! `sweep`: resources of this deployer whose agent is not among the known agents,
//! found by their `tempovoice:*` tags (managed-by, this prefix, the agent), never by
//! names alone; deleted when asked. Listener rules carry no name: they are found by
//! their agent's path on the listeners given and on every listener of the load
//! balancers this deployer's target groups are attached to, so a listener no
//! longer configured is looked at too.
//!
//! Retired transcript buckets (kept after their agent's deletion) are expected
//! leftovers until they are older than `TEMPOVOICE_RETIRED_BUCKET_DAYS`; then the
//! sweep reports them, and removes them (every version) when asked to delete. A
//! retired bucket whose tag holds no time (retired before the tag carried one) gets
//! the time of the first deleting sweep that finds it, and its retention starts then.

use std::collections::{BTreeMap, BTreeSet};

use agent_spec::AgentId;
use aws_sdk_elasticloadbalancingv2::types::TargetGroup;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::{DeployError, Step, code_of};
use crate::naming::{AgentNames, agent_of_tags};
use crate::resources::{bucket, listener_rule, service, task_definition, task_role};
use crate::settings::DeployerSettings;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Every agent that exists (from the control plane's database).
    pub known_agents: Vec<AgentId>,
    /// Listeners to look for rules on, besides those of the load balancers this
    /// deployer's target groups are attached to.
    pub listener_arns: Vec<String>,
    /// Delete what is found. Transcript buckets of orphans are retained and tagged
    /// retired, never purged by a sweep; retired buckets past their retention are
    /// removed. Default: only report.
    #[serde(default)]
    pub delete: bool,
}

/// Resources left by one agent that no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub agent_id: AgentId,
    /// `kind name` of each resource found.
    pub found: Vec<String>,
    /// What the sweep did, when asked to delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<crate::provision::AgentReport>,
}

/// A retired transcript bucket past its retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredBucket {
    pub bucket: String,
    /// When it was retired (RFC 3339).
    pub retired_at: String,
    /// Whether this sweep removed it.
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub orphans: Vec<Orphan>,
    #[serde(default)]
    pub expired_buckets: Vec<ExpiredBucket>,
}

fn aws<E, R>(step: Step) -> impl Fn(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> DeployError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| DeployError::aws(step, e)
}

pub async fn sweep(
    clients: &AwsClients,
    settings: &DeployerSettings,
    req: SweepRequest,
) -> Result<SweepReport, DeployError> {
    let p = settings.prefix.as_str();
    let known: BTreeSet<&AgentId> = req.known_agents.iter().collect();
    let mut found: BTreeMap<AgentId, Vec<String>> = BTreeMap::new();
    let mut rule_listener: BTreeMap<AgentId, String> = BTreeMap::new();
    let mut note = |agent: Option<AgentId>, what: String| {
        if let Some(agent) = agent.filter(|a| !known.contains(a)) {
            found.entry(agent).or_default().push(what);
        }
    };

    // Services, by their tags; only ACTIVE ones.
    for s in service::active_in_cluster(&clients.ecs, &settings.cluster, |_| true, true).await? {
        let tags = s.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
        note(agent_of_tags(p, tags), format!("service {}", s.service_name().unwrap_or_default()));
    }

    // Task definition families with an ACTIVE revision, by the latest one's tags.
    let families: Vec<String> = clients
        .ecs
        .list_task_definition_families()
        .family_prefix(format!("{p}-agent-"))
        .status(aws_sdk_ecs::types::TaskDefinitionFamilyStatus::Active)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws(Step::TaskDefinition))?;
    for family in families {
        let described = match clients
            .ecs
            .describe_task_definition()
            .task_definition(&family)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .send()
            .await
        {
            Ok(d) => d,
            Err(e) if code_of(&e) == Some("ClientException") => continue,
            Err(e) => return Err(DeployError::aws(Step::TaskDefinition, e)),
        };
        let active = described
            .task_definition()
            .is_some_and(|td| td.status() == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active));
        if active && task_definition::latest(&clients.ecs, &family).await?.is_some() {
            let tags = described.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
            note(agent_of_tags(p, tags), format!("task definition {family}"));
        }
    }

    // Target groups, by their tags (20 per DescribeTags call); their load balancers
    // tell where rules may be.
    let groups: Vec<TargetGroup> = clients
        .elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws(Step::TargetGroup))?;
    let mut load_balancers: BTreeSet<String> = BTreeSet::new();
    for chunk in groups.chunks(20) {
        let arns: Vec<String> = chunk.iter().filter_map(|g| g.target_group_arn().map(str::to_owned)).collect();
        let described =
            clients.elb.describe_tags().set_resource_arns(Some(arns)).send().await.map_err(aws(Step::TargetGroup))?;
        for description in described.tag_descriptions() {
            let tags = description.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
            let Some(agent) = agent_of_tags(p, tags) else { continue };
            let group = chunk.iter().find(|g| g.target_group_arn() == description.resource_arn());
            load_balancers.extend(group.iter().flat_map(|g| g.load_balancer_arns().iter().cloned()));
            let name = group.and_then(|g| g.target_group_name()).unwrap_or_default();
            note(Some(agent), format!("target group {name}"));
        }
    }

    // Listener rules: on the listeners given and on every listener of those load
    // balancers, by the agent path they route.
    let mut listeners: BTreeSet<String> = req.listener_arns.iter().cloned().collect();
    for lb in &load_balancers {
        let found: Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>, _> =
            clients.elb.describe_listeners().load_balancer_arn(lb).into_paginator().items().send().try_collect().await;
        match found {
            Ok(found) => listeners.extend(found.iter().filter_map(|l| l.listener_arn().map(str::to_owned))),
            Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => {}
            Err(e) => return Err(DeployError::aws(Step::ListenerRule, e)),
        }
    }
    for listener in &listeners {
        for rule in listener_rule::rules(&clients.elb, listener).await? {
            for value in rule.conditions().iter().flat_map(|c| c.values()) {
                if let Some(agent) = AgentNames::agent_of_path(value) {
                    if AgentNames::new(p, &agent).path_pattern == *value && !known.contains(&agent) {
                        rule_listener.entry(agent.clone()).or_insert_with(|| listener.clone());
                    }
                    note(Some(agent), format!("listener rule {value}"));
                }
            }
        }
    }

    // Secrets (not scheduled for deletion) carry their tags in the listing.
    let pages: Vec<_> = clients
        .secrets
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::TagKey)
                .values(crate::naming::tags::AGENT)
                .build(),
        )
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(aws(Step::Secret))?;
    for s in pages.iter().flat_map(|page| page.secret_list()) {
        let tags = s.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
        note(agent_of_tags(p, tags), format!("secret {}", s.name().unwrap_or_default()));
    }

    // Task roles under this deployer's path, by their tags.
    let roles: Vec<aws_sdk_iam::types::Role> = clients
        .iam
        .list_roles()
        .path_prefix(task_role::path(p))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws(Step::TaskRole))?;
    for role in roles {
        let tags =
            clients.iam.list_role_tags().role_name(role.role_name()).send().await.map_err(aws(Step::TaskRole))?;
        let tags = tags.tags().iter().map(|t| (t.key(), t.value()));
        note(agent_of_tags(p, tags), format!("task role {}", role.role_name()));
    }

    // Transcript buckets (listed by name prefix, paginated), by their tags: a
    // retired one is an expected leftover until its retention is over.
    let buckets: Vec<aws_sdk_s3::types::Bucket> = clients
        .s3
        .list_buckets()
        .prefix(format!("{p}-transcripts-"))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws(Step::Bucket))?;
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let retention_secs = i64::from(settings.retired_bucket_days) * 86_400;
    let mut expired = Vec::new();
    let bucket_prefix = format!("{p}-transcripts-");
    for b in buckets.iter().filter(|b| b.name().is_some_and(|n| n.starts_with(&bucket_prefix))) {
        let name = b.name().unwrap_or_default().to_owned();
        let tags = match bucket::tags(&clients.s3, &name).await {
            Ok(tags) => tags,
            // Deleted since the listing.
            Err(e) if e.code.as_deref() == Some("NoSuchBucket") => continue,
            Err(e) => return Err(e),
        };
        match bucket::retired_at(&tags) {
            Some(Some(at)) if now.secs() - at.secs() >= retention_secs => expired.push((name, at)),
            Some(Some(_)) => {}
            // Retired without a time: its retention starts now, when the sweep may write.
            Some(None) if req.delete => {
                bucket::mark_retired(&clients.s3, &name, tags).await?;
                tracing::info!(bucket = %name, "retired bucket without a retirement time: its retention starts now");
            }
            Some(None) => {}
            None => note(agent_of_tags(p, tags.iter().map(|t| (t.key(), t.value()))), format!("bucket {name}")),
        }
    }

    let mut orphans = Vec::new();
    for (agent_id, found) in found {
        let deleted = if req.delete {
            let listener = rule_listener.get(&agent_id).map(String::as_str);
            let report = crate::provision::teardown(clients, settings, &agent_id, listener, false).await?;
            tracing::info!(agent_id = %agent_id, "orphan swept");
            Some(report)
        } else {
            None
        };
        orphans.push(Orphan { agent_id, found, deleted });
    }
    let mut expired_buckets = Vec::new();
    for (name, at) in expired {
        if req.delete {
            bucket::purge_bucket(&clients.s3, &name).await?;
            tracing::info!(bucket = %name, "retired bucket past its retention removed");
        }
        let retired_at = at.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
        expired_buckets.push(ExpiredBucket { bucket: name, retired_at, deleted: req.delete });
    }
    Ok(SweepReport { orphans, expired_buckets })
}
