//! The Lambda's event contract (JSON, versioned; see docs/deployer.md):
//!
//! ```json
//! {"version": 1, "action": "deploy", "agent_id": "…", "tenant_id": "…", "config": {…},
//!  "secrets": {…}, "placement": {"listener_arn": "…", "priority": 17}}
//! {"version": 1, "action": "delete", "agent_id": "…", "tenant_id": "…", "listener_arn": "…",
//!  "purge_transcripts": false}
//! {"version": 1, "action": "status", "agent_id": "…", "tenant_id": "…", "listener_arn": "…"}
//! {"version": 1, "action": "rollout", "image_tag": "2026-11-21.3", "agents": ["…"]}
//! {"version": 1, "action": "sweep", "known_agents": ["…"], "listener_arns": ["…"], "delete": false}
//! {"version": 1, "action": "health", "agent_id": "…", "tenant_id": "…", "task_definition_arn": "…"}
//! ```
//!
//! The response lists every resource with its ARN and what was done. Errors are
//! reported with the error type `Retryable.{step}.{code}` or `NonRetryable.{step}.{code}`.

use serde::{Deserialize, Serialize};

use crate::fleet::{AgentStatus, RolloutReport, RolloutRequest, StatusRequest, SweepReport, SweepRequest};
use crate::provision::{AgentReport, DeleteRequest, DeployRequest};

/// The only version of the contract so far.
pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Deploy(Box<DeployRequest>),
    Delete(DeleteRequest),
    Status(StatusRequest),
    Rollout(RolloutRequest),
    Sweep(SweepRequest),
    Health(crate::health::HealthRequest),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployerEvent {
    pub version: u32,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployerResponse {
    pub version: u32,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What an action did, tagged with the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome {
    Deploy(AgentReport),
    Delete(AgentReport),
    Status(AgentStatus),
    Rollout(RolloutReport),
    Sweep(SweepReport),
    Health(crate::health::RolloutHealth),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy_json() -> serde_json::Value {
        let draft = agent_spec::AgentDraft {
            name: "Front desk".into(),
            system_prompt: "Be brief.".into(),
            telephony: agent_spec::draft::TelephonyDraft {
                call_phone_number: "+14155550100".into(),
                twilio_account_sid: "AC0123456789abcdef0123456789abcdef".into(),
                ..Default::default()
            },
            secrets: agent_spec::draft::SecretsDraft {
                twilio_auth_token: agent_spec::SecretPatch::set("f00dfeedf00dfeedf00dfeedf00dfeed"),
                ..Default::default()
            },
            ..Default::default()
        };
        let (config, _) = draft.validate(None).unwrap();
        serde_json::json!({
            "version": 1,
            "action": "deploy",
            "agent_id": "abcdefghijklmnop",
            "tenant_id": "qrstuvwxyz234567",
            "config": config,
            "secrets": { "twilio_auth_token": "f00dfeedf00dfeedf00dfeedf00dfeed" },
            "placement": { "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c", "priority": 3 }
        })
    }

    #[test]
    fn deploy_and_delete_events_parse() {
        let event: DeployerEvent = serde_json::from_value(deploy_json()).unwrap();
        assert_eq!(event.version, 1);
        let Action::Deploy(req) = event.action else { panic!("not a deploy") };
        assert_eq!(req.placement.priority, 3);
        assert!(req.image_tag.is_none());

        let delete: DeployerEvent = serde_json::from_value(serde_json::json!({
            "version": 1, "action": "delete", "agent_id": "abcdefghijklmnop", "tenant_id": "qrstuvwxyz234567",
            "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c"
        }))
        .unwrap();
        let Action::Delete(req) = delete.action else { panic!("not a delete") };
        assert!(!req.purge_transcripts);
    }

    #[test]
    fn malformed_events_are_refused_by_name() {
        let mut unknown_field = deploy_json();
        unknown_field["placment"] = serde_json::json!({});
        let err = serde_json::from_value::<DeployerEvent>(unknown_field).unwrap_err().to_string();
        assert!(err.contains("placment"), "{err}");
        let mut unknown_action = deploy_json();
        unknown_action["action"] = "explode".into();
        let err = serde_json::from_value::<DeployerEvent>(unknown_action).unwrap_err().to_string();
        assert!(err.contains("explode"), "{err}");
        let mut bad_id = deploy_json();
        bad_id["agent_id"] = "../../x".into();
        assert!(serde_json::from_value::<DeployerEvent>(bad_id).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let event: DeployerEvent = serde_json::from_value(deploy_json()).unwrap();
        assert!(!format!("{event:?}").contains("f00dfeed"));
    }
}
