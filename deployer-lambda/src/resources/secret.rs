//! The agent's Secrets Manager secret: one JSON object whose keys are the runtime's
//! secret variable names (`TWILIO_AUTH_TOKEN`, …). The task definition references
//! each key with `valueFrom: "{arn}:{KEY}::"`, so secrets never appear in plain
//! environment. The value is compared before it is written.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use secrecy::{ExposeSecret, SecretString};

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

/// Makes the secret exist with `value`; returns its report (with the ARN).
/// `described` is what [`describe`] answered.
pub async fn converge(
    sm: &Client,
    name: &str,
    value: &SecretString,
    tags: &[(&'static str, String)],
    described: Option<DescribeSecretOutput>,
) -> Result<ResourceReport, DeployError> {
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
        return Ok(ResourceReport::new(
            ResourceKind::Secret,
            name,
            out.arn().map(str::to_owned),
            ResourceAction::Created,
        ));
    };

    let arn = described.arn().map(str::to_owned);
    let mut changes = Vec::new();
    if described.deleted_date().is_some() {
        // Scheduled for deletion by an earlier delete; the agent is back.
        sm.restore_secret().secret_id(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("restored".to_owned());
    }
    let current = sm.get_secret_value().secret_id(name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
    let same = match current.secret_string() {
        Some(s) => {
            serde_json::from_str::<serde_json::Value>(s).ok()
                == serde_json::from_str::<serde_json::Value>(value.expose_secret()).ok()
        }
        None => false,
    };
    if !same {
        sm.put_secret_value()
            .secret_id(name)
            .secret_string(value.expose_secret())
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("value".to_owned());
    }
    let missing: Vec<Tag> = tags
        .iter()
        .filter(|(k, v)| !described.tags().iter().any(|t| t.key() == Some(*k) && t.value() == Some(v.as_str())))
        .map(|(k, v)| tag(k, v))
        .collect();
    if !missing.is_empty() {
        sm.tag_resource()
            .secret_id(name)
            .set_tags(Some(missing))
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("tags".to_owned());
    }
    let action = outcome(true, &changes);
    Ok(ResourceReport::new(ResourceKind::Secret, name, arn, action).with_changes(changes))
}
