//! The agent's own IAM task role, `{prefix}-agent-{agentId}` under the path
//! `/tempovoice/{prefix}/`: what the runtime's code can do, and nothing more. Its
//! one inline policy allows
//!
//! - objects under `calls/` in the agent's own transcript bucket (write, read back,
//!   abort an unfinished multipart upload),
//! - writing its task's part of the call index, under `index/` in that bucket,
//! - setting its own tasks' scale-in protection (`ecs:UpdateTaskProtection` and
//!   `ecs:GetTaskProtection` on the cluster's tasks: the container agent's
//!   `task-protection/v1/state` endpoint calls them with the task role), and
//! - `bedrock:InvokeModel` (the action AWS's API reference names for
//!   `InvokeModelWithBidirectionalStream`) and `bedrock:InvokeModelWithBidirectionalStream`
//!   (the one AWS's Nova Sonic samples grant) on the agent's Nova Sonic model, in its
//!   speech region, when the agent speaks through Nova Sonic.
//!
//! Only ECS tasks of this account can assume it (`aws:SourceAccount`), and it is
//! created under the permission boundary the settings name, so even a policy edited
//! by hand cannot grant more than the boundary. Code running in one agent's
//! container cannot reach another tenant's transcripts.
//!
//! IAM answers policy documents URL-encoded; they are decoded before comparing.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{Role, Tag};
use serde_json::{Value, json};

use crate::error::{DeployError, Step, code_of};
use crate::report::{ResourceAction, ResourceKind, ResourceReport, outcome};
use crate::settings::Partition;

const STEP: Step = Step::TaskRole;
/// The name of the role's one inline policy.
pub const POLICY_NAME: &str = "tempovoice-agent";

/// The path of every agent role of `prefix`: sweep lists roles by it.
pub fn path(prefix: &str) -> String {
    format!("/tempovoice/{prefix}/")
}

/// Who may assume the role: ECS tasks, on behalf of this account only.
pub fn trust_policy(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "ecs-tasks.amazonaws.com" },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "aws:SourceAccount": account } }
        }]
    })
}

/// The Nova Sonic model an agent may invoke, and the Bedrock region it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockModel {
    pub region: String,
    pub model_id: String,
}

/// The tasks whose scale-in protection the runtime sets: its own cluster's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTasks {
    pub region: String,
    pub account: String,
    /// The cluster's name (or ARN: its name is taken).
    pub cluster: String,
}

impl ClusterTasks {
    fn arn(&self, p: &str) -> String {
        let name = self.cluster.rsplit('/').next().unwrap_or(&self.cluster);
        format!("arn:{p}:ecs:{}:{}:task/{name}/*", self.region, self.account)
    }
}

/// What the runtime may do: its own bucket's `calls/` and `index/`, its tasks'
/// scale-in protection, and its model.
pub fn permissions_policy(
    partition: Partition,
    bucket: &str,
    tasks: &ClusterTasks,
    model: Option<&BedrockModel>,
) -> Value {
    let p = partition.id();
    let mut statements = vec![json!({
        "Sid": "OwnTranscripts",
        "Effect": "Allow",
        "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        "Resource": format!("arn:{p}:s3:::{bucket}/calls/*")
    })];
    statements.push(json!({
        "Sid": "OwnCallIndex",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": format!("arn:{p}:s3:::{bucket}/index/*")
    }));
    statements.push(json!({
        "Sid": "ScaleInProtection",
        "Effect": "Allow",
        "Action": ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
        "Resource": tasks.arn(p)
    }));
    if let Some(m) = model {
        statements.push(json!({
            "Sid": "SpeechModel",
            "Effect": "Allow",
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithBidirectionalStream"],
            "Resource": format!("arn:{p}:bedrock:{}::foundation-model/{}", m.region, m.model_id)
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

pub struct Desired<'a> {
    pub name: &'a str,
    pub path: String,
    pub trust: Value,
    pub policy: Value,
    pub boundary_arn: &'a str,
    pub tags: &'a [(&'static str, String)],
}

/// What exists: the role (with its tags and boundary) and its inline policy.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub role: Option<Role>,
    pub policy: Option<Value>,
}

/// A policy document as IAM answers it: URL-encoded JSON (RFC 3986: `+` is itself),
/// or plain JSON.
pub fn decode_document(document: &str) -> Option<Value> {
    serde_json::from_str(document).ok().or_else(|| serde_json::from_str(&percent_decode(document)?).ok())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    code_of(e) == Some("NoSuchEntity")
}

/// Reads the role and its policy, concurrently (the policy read answers
/// NoSuchEntity when the role does not exist).
pub async fn observe(iam: &Client, name: &str) -> Result<Observed, DeployError> {
    let (role, policy) = tokio::join!(
        iam.get_role().role_name(name).send(),
        iam.get_role_policy().role_name(name).policy_name(POLICY_NAME).send(),
    );
    let role = match role {
        Ok(out) => out.role().cloned(),
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    let policy = match policy {
        Ok(out) => decode_document(out.policy_document()),
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    Ok(Observed { role, policy })
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("key and value")
}

/// The role made to exist with the right trust, boundary and tags; its ARN is all
/// the task definition needs, so the policy is put by [`put_policy`] meanwhile.
pub struct Ensured {
    pub arn: String,
    existed: bool,
    changes: Vec<String>,
}

pub async fn ensure(iam: &Client, d: &Desired<'_>, observed: &Observed) -> Result<Ensured, DeployError> {
    let Some(role) = &observed.role else {
        let created = match iam
            .create_role()
            .role_name(d.name)
            .path(&d.path)
            .description("TempoVoice agent runtime: its own transcripts and speech model")
            .assume_role_policy_document(d.trust.to_string())
            .permissions_boundary(d.boundary_arn)
            .set_tags(Some(d.tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
            .await
        {
            Ok(out) => out.role().map(|r| r.arn().to_owned()),
            // A concurrent deploy of this agent made it between the read and now.
            Err(e) if code_of(&e) == Some("EntityAlreadyExists") => {
                let out = iam.get_role().role_name(d.name).send().await.map_err(|e| DeployError::aws(STEP, e))?;
                out.role().map(|r| r.arn().to_owned())
            }
            Err(e) => return Err(DeployError::aws(STEP, e)),
        };
        let arn = created.ok_or_else(|| DeployError::new(STEP, None, "CreateRole returned no role", true))?;
        return Ok(Ensured { arn, existed: false, changes: Vec::new() });
    };

    let mut changes = Vec::new();
    let trust = role.assume_role_policy_document().and_then(decode_document);
    if trust.as_ref() != Some(&d.trust) {
        iam.update_assume_role_policy()
            .role_name(d.name)
            .policy_document(d.trust.to_string())
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("trust policy".to_owned());
    }
    if role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()) != Some(d.boundary_arn) {
        iam.put_role_permissions_boundary()
            .role_name(d.name)
            .permissions_boundary(d.boundary_arn)
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("permission boundary".to_owned());
    }
    let missing: Vec<Tag> = d
        .tags
        .iter()
        .filter(|(k, v)| !role.tags().iter().any(|t| t.key() == *k && t.value() == v.as_str()))
        .map(|(k, v)| tag(k, v))
        .collect();
    if !missing.is_empty() {
        iam.tag_role().role_name(d.name).set_tags(Some(missing)).send().await.map_err(|e| DeployError::aws(STEP, e))?;
        changes.push("tags".to_owned());
    }
    Ok(Ensured { arn: role.arn().to_owned(), existed: true, changes })
}

/// Puts the inline policy unless it already is exactly `d.policy`; reports the role.
pub async fn put_policy(
    iam: &Client,
    d: &Desired<'_>,
    observed: &Observed,
    ensured: Ensured,
) -> Result<ResourceReport, DeployError> {
    let Ensured { arn, existed, mut changes } = ensured;
    if observed.policy.as_ref() != Some(&d.policy) {
        iam.put_role_policy()
            .role_name(d.name)
            .policy_name(POLICY_NAME)
            .policy_document(d.policy.to_string())
            .send()
            .await
            .map_err(|e| DeployError::aws(STEP, e))?;
        if existed {
            changes.push("policy".to_owned());
        }
    }
    let action = outcome(existed, &changes);
    Ok(ResourceReport::new(ResourceKind::TaskRole, d.name, Some(arn), action).with_changes(changes))
}

/// Deletes the inline policy, then the role.
pub async fn remove(iam: &Client, name: &str) -> Result<ResourceReport, DeployError> {
    let arn = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role().map(|r| r.arn().to_owned()),
        Err(e) if not_found(&e) => {
            return Ok(ResourceReport::new(ResourceKind::TaskRole, name, None, ResourceAction::Absent));
        }
        Err(e) => return Err(DeployError::aws(STEP, e)),
    };
    match iam.delete_role_policy().role_name(name).policy_name(POLICY_NAME).send().await {
        Ok(_) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => return Err(DeployError::aws(STEP, e)),
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(ResourceReport::new(ResourceKind::TaskRole, name, arn, ResourceAction::Deleted)),
        Err(e) if not_found(&e) => Ok(ResourceReport::new(ResourceKind::TaskRole, name, arn, ResourceAction::Absent)),
        Err(e) => Err(DeployError::aws(STEP, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_back_url_encoded_or_plain() {
        let doc = trust_policy("123456789012");
        let encoded: String = doc
            .to_string()
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        assert_eq!(decode_document(&encoded), Some(doc.clone()));
        assert_eq!(decode_document(&doc.to_string()), Some(doc));
        assert_eq!(decode_document("%ZZ"), None);
    }

    #[test]
    fn the_policy_names_only_the_agents_bucket_and_model() {
        let model = BedrockModel { region: "us-west-2".into(), model_id: "amazon.nova-sonic-v1:0".into() };
        let tasks = ClusterTasks { region: "cn-north-1".into(), account: "123456789012".into(), cluster: "tv".into() };
        let policy = permissions_policy(Partition::China, "tv-transcripts-abc", &tasks, Some(&model)).to_string();
        assert!(policy.contains("arn:aws-cn:s3:::tv-transcripts-abc/calls/*"), "{policy}");
        assert!(policy.contains("arn:aws-cn:bedrock:us-west-2::foundation-model/amazon.nova-sonic-v1:0"));
        assert!(policy.contains("arn:aws-cn:s3:::tv-transcripts-abc/index/*"), "{policy}");
        assert!(policy.contains("arn:aws-cn:ecs:cn-north-1:123456789012:task/tv/*"), "{policy}");
        assert_eq!(policy.matches('*').count(), 3, "a wildcard in each object key and task id only: {policy}");
        let without = permissions_policy(Partition::Aws, "b", &tasks, None).to_string();
        assert!(!without.contains("bedrock"), "{without}");
    }
}
