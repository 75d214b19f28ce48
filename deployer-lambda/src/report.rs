//! What a request did: every resource with its ARN (or name) and the action taken.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Bucket,
    Secret,
    TaskRole,
    TargetGroup,
    TaskDefinition,
    ListenerRule,
    Service,
    /// The scalable target and its target-tracking policy.
    Autoscaling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceAction {
    Created,
    Updated,
    Unchanged,
    Deleted,
    /// Kept on delete (the transcript bucket, unless purging was asked for).
    Retained,
    /// Did not exist (on delete or status).
    Absent,
    /// Exists (status only).
    Present,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReport {
    pub kind: ResourceKind,
    pub name: String,
    /// The ARN where the resource has one (buckets are reported as `arn:aws:s3:::name`).
    pub arn: Option<String>,
    pub action: ResourceAction,
    /// What changed, for `updated` (e.g. "versioning", "revision 3").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

impl ResourceReport {
    pub fn new(kind: ResourceKind, name: impl Into<String>, arn: Option<String>, action: ResourceAction) -> Self {
        Self { kind, name: name.into(), arn, action, changes: Vec::new() }
    }

    pub fn with_changes(mut self, changes: Vec<String>) -> Self {
        self.changes = changes;
        self
    }
}

/// The outcome of converging one resource: `changes` empty means nothing was done.
pub(crate) fn outcome(existed: bool, changes: &[String]) -> ResourceAction {
    match (existed, changes.is_empty()) {
        (false, _) => ResourceAction::Created,
        (true, true) => ResourceAction::Unchanged,
        (true, false) => ResourceAction::Updated,
    }
}
