//! The agent's ALB target group: IP targets on the runtime's port, health check
//! `GET /health` every 15 s (timeout 5 s, healthy after 2, unhealthy after 3), and a
//! deregistration delay long enough for the agent's longest call to finish.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, Tag, TargetGroupAttribute, TargetTypeEnum};

use crate::error::{DeployError, Step, code_of};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::TargetGroup;
pub const HEALTH_CHECK_PATH: &str = "/health";
pub const HEALTH_CHECK_INTERVAL_SECS: i32 = 15;
pub const HEALTH_CHECK_TIMEOUT_SECS: i32 = 5;
pub const HEALTHY_THRESHOLD: i32 = 2;
pub const UNHEALTHY_THRESHOLD: i32 = 3;
const DEREGISTRATION_DELAY_KEY: &str = "deregistration_delay.timeout_seconds";

/// Draining time for a target: the agent's longest call plus a margin, within the
/// ALB maximum of 3600 s.
pub fn deregistration_delay_secs(max_session_duration_secs: u32) -> u32 {
    (max_session_duration_secs + 30).min(3600)
}

pub struct Desired<'a> {
    pub name: &'a str,
    pub vpc_id: &'a str,
    pub port: i32,
    pub deregistration_delay_secs: u32,
    pub tags: &'a [(&'static str, String)],
}

fn tags(t: &[(&'static str, String)]) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()
}

/// Finds the target group by name: its ARN, if it exists.
pub async fn find(
    elb: &Client,
    name: &str,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>, DeployError> {
    match elb.describe_target_groups().names(name).send().await {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) if code_of(&e) == Some("TargetGroupNotFound") => Ok(None),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

/// Deletes the target group (`found` is what [`find`] answered).
pub async fn remove(
    elb: &Client,
    name: &str,
    found: Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>,
) -> Result<ResourceReport, DeployError> {
    let Some(tg) = found else {
        return Ok(ResourceReport::new(ResourceKind::TargetGroup, name, None, ResourceAction::Absent));
    };
    let arn = tg.target_group_arn().unwrap_or_default().to_owned();
    match elb.delete_target_group().target_group_arn(&arn).send().await {
        Ok(_) => Ok(ResourceReport::new(ResourceKind::TargetGroup, name, Some(arn), ResourceAction::Deleted)),
        Err(e) if code_of(&e) == Some("TargetGroupNotFound") => {
            Ok(ResourceReport::new(ResourceKind::TargetGroup, name, Some(arn), ResourceAction::Absent))
        }
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

/// The target group made to exist (created, or its health check corrected), before
/// its attributes and tags are converged by [`configure`]: the ARN is all the listener
/// rule needs, so it need not wait for the rest.
pub struct Ensured {
    arn: String,
    existed: bool,
    changes: Vec<String>,
}

impl Ensured {
    pub fn arn(&self) -> &str {
        &self.arn
    }
}

/// Creates the target group, or corrects its health check; `existing` is what
/// [`find`] answered.
pub async fn ensure(
    elb: &Client,
    d: &Desired<'_>,
    existing: Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>,
) -> Result<Ensured, DeployError> {
    let existed = existing.is_some();
    let mut changes = Vec::new();
    let tg = match existing {
        Some(tg) => {
            let health_ok = tg.health_check_path() == Some(HEALTH_CHECK_PATH)
                && tg.health_check_interval_seconds() == Some(HEALTH_CHECK_INTERVAL_SECS)
                && tg.health_check_timeout_seconds() == Some(HEALTH_CHECK_TIMEOUT_SECS)
                && tg.healthy_threshold_count() == Some(HEALTHY_THRESHOLD)
                && tg.unhealthy_threshold_count() == Some(UNHEALTHY_THRESHOLD);
            if !health_ok {
                elb.modify_target_group()
                    .target_group_arn(tg.target_group_arn().unwrap_or_default())
                    .health_check_path(HEALTH_CHECK_PATH)
                    .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECS)
                    .health_check_timeout_seconds(HEALTH_CHECK_TIMEOUT_SECS)
                    .healthy_threshold_count(HEALTHY_THRESHOLD)
                    .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                    .send()
                    .await
                    .map_err(|e| DeployError::aws(STEP, e))?;
                changes.push("health check".to_owned());
            }
            tg
        }
        None => {
            let out = elb
                .create_target_group()
                .name(d.name)
                .protocol(ProtocolEnum::Http)
                .port(d.port)
                .vpc_id(d.vpc_id)
                .target_type(TargetTypeEnum::Ip)
                .health_check_enabled(true)
                .health_check_path(HEALTH_CHECK_PATH)
                .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECS)
                .health_check_timeout_seconds(HEALTH_CHECK_TIMEOUT_SECS)
                .healthy_threshold_count(HEALTHY_THRESHOLD)
                .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                .matcher(Matcher::builder().http_code("200").build())
                .set_tags(Some(tags(d.tags)))
                .send()
                .await
                .map_err(|e| DeployError::aws(STEP, e))?;
            out.target_groups()
                .first()
                .cloned()
                .ok_or_else(|| DeployError::new(STEP, None, "CreateTargetGroup returned no target group", true))?
        }
    };
    Ok(Ensured { arn: tg.target_group_arn().unwrap_or_default().to_owned(), existed, changes })
}

/// Converges the deregistration delay and the tags. A target group just created has
/// the default delay and every tag, so nothing is read first.
pub async fn configure(elb: &Client, d: &Desired<'_>, ensured: Ensured) -> Result<ResourceReport, DeployError> {
    let Ensured { arn, existed, mut changes } = ensured;
    let delay = d.deregistration_delay_secs.to_string();
    let current = if existed {
        let attributes = elb
            .describe_target_group_attributes()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY_KEY))
            .and_then(|a| a.value())
            .map(str::to_owned)
    } else {
        None
    };
    if current.as_deref() != Some(delay.as_str()) {
        elb.modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(TargetGroupAttribute::builder().key(DEREGISTRATION_DELAY_KEY).value(&delay).build())
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        if existed {
            changes.push("deregistration delay".to_owned());
        }
    }
    if existed {
        let described = elb.describe_tags().resource_arns(&arn).send().await.map_err(|e| DeployError::aws(STEP, e))?;
        let have: Vec<(String, String)> = described
            .tag_descriptions()
            .iter()
            .flat_map(|td| td.tags())
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect();
        let missing: Vec<(&'static str, String)> =
            d.tags.iter().filter(|(k, v)| !have.iter().any(|(hk, hv)| hk == k && hv == v)).cloned().collect();
        if !missing.is_empty() {
            elb.add_tags()
                .resource_arns(&arn)
                .set_tags(Some(tags(&missing)))
                .send()
                .await
                .map_err(|e| DeployError::aws(STEP, e))?;
            changes.push("tags".to_owned());
        }
    }
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::TargetGroup, d.name, Some(arn), action).with_changes(changes))
}
