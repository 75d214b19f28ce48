//! The agent's Secrets Manager secret: one JSON object whose keys are the runtime's
//! secret variable names (`TWILIO_AUTH_TOKEN`, …). The task definition references
//! each key of one version, `valueFrom: "{arn}:{KEY}::{versionId}"`, so secrets never
//! appear in plain environment, and a task definition always runs with the values
//! it was deployed with (a circuit-breaker rollback included). The value is compared
//! before it is written.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use secrecy::{ExposeSecret, SecretString};

use crate::consistency::{SETTLE, secret_restoring, settle};
use crate::error::{DeployError, Step, code_of};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};

const STEP: Step = Step::Secret;

/// The secret's JSON, built from the agent's secret variables. Never logged.
pub fn secret_json(secrets: &BTreeMap<&'static str, SecretString>) -> SecretString {
    let map: BTreeMap<&str, &str> = secrets.iter().map(|(k, v)| (*k, v.expose_secret())).collect();
    SecretString::from(serde_json::to_string(&map).expect("a string map serializes"))
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// The secret's description, if it exists (also when scheduled for deletion).
pub async fn describe(sm: &Client, name: &str) -> Result<Option<DescribeSecretOutput>, DeployError> {
    match sm.describe_secret().secret_id(name).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e) if code_of(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

/// Schedules the secret's deletion, with the default 7-day recovery window (a
/// redeploy restores it).
pub async fn remove(sm: &Client, name: &str) -> Result<ResourceReport, DeployError> {
    match describe(sm, name).await? {
        None => Ok(ResourceReport::new(ResourceKind::Secret, name, None, ResourceAction::Absent)),
        Some(s) if s.deleted_date().is_some() => {
            Ok(ResourceReport::new(ResourceKind::Secret, name, s.arn().map(str::to_owned), ResourceAction::Absent))
        }
        Some(s) => {
            sm.delete_secret().secret_id(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
            Ok(ResourceReport::new(ResourceKind::Secret, name, s.arn().map(str::to_owned), ResourceAction::Deleted))
        }
    }
}

/// The `valueFrom` of one key of one version of the secret.
pub fn value_from(secret_arn: &str, key: &str, version_id: &str) -> String {
    format!("{secret_arn}:{key}::{version_id}")
}

/// Makes the secret exist with `value`; returns its report (with the ARN) and the
/// version holding `value`. `described` is what [`describe`] answered.
pub async fn converge(
    sm: &Client,
    name: &str,
    value: &SecretString,
    tags: &[(&'static str, String)],
    described: Option<DescribeSecretOutput>,
) -> Result<(ResourceReport, String), DeployError> {
    let no_version = || DeployError::new(STEP, None, format!("Secrets Manager named no version of {name}"), true);
    let Some(described) = described else {
        let out = sm
            .create_secret()
            .name(name)
            .description("TempoVoice agent secrets (runtime environment)")
            .secret_string(value.expose_secret())
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        let version = out.version_id().ok_or_else(no_version)?.to_owned();
        let report =
            ResourceReport::new(ResourceKind::Secret, name, out.arn().map(str::to_owned), ResourceAction::Created);
        return Ok((report, version));
    };

    let arn = described.arn().map(str::to_owned);
    let mut changes = Vec::new();
    if described.deleted_date().is_some() {
        // Scheduled for deletion by an earlier delete; the agent is back.
        sm.restore_secret().secret_id(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("restored".to_owned());
    }
    // Right after a restore, Secrets Manager may still see the secret as deleted.
    let current = settle(SETTLE, secret_restoring, || async {
        sm.get_secret_value().secret_id(name).send().await.map_err(|e| DeployError::aws(STEP, e))
    })
    .await?;
    let mut version = current.version_id().ok_or_else(no_version)?.to_owned();
    let same = match current.secret_string() {
        Some(s) => {
            serde_json::from_str::<serde_json::Value>(s).ok()
                == serde_json::from_str::<serde_json::Value>(value.expose_secret()).ok()
        }
        None => false,
    };
    if !same {
        let put = settle(SETTLE, secret_restoring, || async {
            sm.put_secret_value()
                .secret_id(name)
                .secret_string(value.expose_secret())
                .send()
                .await
                .map_err(|e| DeployError::aws(STEP, e))
        })
        .await?;
        version = put.version_id().ok_or_else(no_version)?.to_owned();
        changes.push("value".to_owned());
    }
    let missing: Vec<Tag> = tags
        .iter()
        .filter(|(k, v)| !described.tags().iter().any(|t| t.key() == Some(*k) && t.value() == Some(v.as_str())))
        .map(|(k, v)| tag(k, v))
        .collect();
    if !missing.is_empty() {
        settle(SETTLE, secret_restoring, || async {
            sm.tag_resource()
                .secret_id(name)
                .set_tags(Some(missing.clone()))
                .send()
                .await
                .map_err(|e| DeployError::aws(STEP, e))
        })
        .await?;
        changes.push("tags".to_owned());
    }
    let action = outcome(true, &changes);
    Ok((ResourceReport::new(ResourceKind::Secret, name, arn, action).with_changes(changes), version))
}
