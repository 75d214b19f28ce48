//! Request and response types of the control-plane REST API (`/v1`). The server,
//! the tests and the dashboard all use these, so they cannot drift apart.
//!
//! Requests: [`AgentDraft`](crate::AgentDraft) is the body of create and update.
//! Responses never contain a secret: [`SecretsStatus`] says only whether each is set.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::AgentConfig;
use crate::ids::{AgentId, TenantId};
use crate::secrets::AgentSecrets;
use crate::validation::FieldError;

/// Timestamps in API bodies: RFC 3339 in UTC with exactly three fractional digits
/// (`2026-11-21T09:28:28.910Z`), so they have one width and sort as strings. Any
/// RFC 3339 timestamp is accepted when reading.
pub mod timestamp {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use time::format_description::BorrowedFormatItem;
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, UtcOffset};

    const FORMAT: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    pub fn format(t: OffsetDateTime) -> Result<String, time::error::Format> {
        t.to_offset(UtcOffset::UTC).format(FORMAT)
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&raw, &Rfc3339).map_err(D::Error::custom)
    }

    /// The same for optional timestamps.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|raw| OffsetDateTime::parse(&raw, &Rfc3339).map_err(D::Error::custom))
                .transpose()
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn fixed_width_utc_millis() {
            let t = time::macros::datetime!(2026-11-21 09:28:28.91 UTC);
            assert_eq!(super::format(t).unwrap(), "2026-11-21T09:28:28.910Z");
            let json = serde_json::to_string(&crate::api::HealthResponse { status: "ok".into() }).unwrap();
            assert_eq!(json, r#"{"status":"ok"}"#);
        }
    }
}

/// Whether a write-only secret holds a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    Set,
    NotSet,
}

impl From<bool> for SecretState {
    fn from(set: bool) -> Self {
        if set { Self::Set } else { Self::NotSet }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretsStatus {
    pub twilio_auth_token: SecretState,
    pub openai_api_key: SecretState,
    pub webhook_signing_secret: SecretState,
}

impl From<&AgentSecrets> for SecretsStatus {
    fn from(s: &AgentSecrets) -> Self {
        Self {
            twilio_auth_token: SecretState::Set,
            openai_api_key: s.openai_api_key.is_some().into(),
            webhook_signing_secret: s.webhook_signing_secret.is_some().into(),
        }
    }
}

/// An agent as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentResponse {
    pub id: AgentId,
    pub tenant_id: TenantId,
    /// Increases by one with every update. Send it back as `If-Match: "<version>"`
    /// (the `ETag` header) to update or delete.
    pub version: i64,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
    #[serde(flatten)]
    pub config: AgentConfig,
    pub secrets: SecretsStatus,
    /// The URL to paste into Twilio as the phone number's voice webhook:
    /// `https://{host}/agent/{id}/incoming-call`, with the host of the load balancer
    /// the agent is placed on. Absent until the agent is placed (its first deploy).
    #[serde(default)]
    pub voice_url: Option<String>,
    /// The agent's latest deployment, if it has one.
    #[serde(default)]
    pub deployment: Option<DeploymentSummary>,
    /// The runtime image its tasks run, pinned by digest: the image of its latest
    /// `active` deploy.
    #[serde(default)]
    pub runtime_image: Option<String>,
}

/// What a deployment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentAction {
    /// Create or converge the agent's AWS resources to its current configuration.
    Deploy,
    /// Tear them down.
    Delete,
}

/// Where a deployment is. A `deploy` goes `pending` → `provisioning` → `rolling_out`
/// → `active` (or `failed`): `rolling_out` once AWS accepted every change, until ECS
/// reports the service deployment complete and the target group has healthy
/// targets; `failed` if the circuit breaker rolls it back or it does not get healthy
/// in time. A `delete` goes `pending` → `deleting` → `deleted` (or `failed`).
/// A retryable failure sends it back to `pending` until its attempts run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Pending,
    Provisioning,
    RollingOut,
    Active,
    Failed,
    Deleting,
    Deleted,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::RollingOut => "rolling_out",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "provisioning" => Self::Provisioning,
            "rolling_out" => Self::RollingOut,
            "active" => Self::Active,
            "failed" => Self::Failed,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }

    /// Whether the deployment has ended (nothing more will happen to it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Active | Self::Failed | Self::Deleted)
    }
}

/// The latest deployment of an agent, as shown with the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentSummary {
    pub id: crate::ids::DeploymentId,
    pub action: DeploymentAction,
    pub status: DeploymentStatus,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
}

/// One thing that happened during a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentEvent {
    #[serde(with = "timestamp")]
    pub at: OffsetDateTime,
    /// `queued`, `started`, `resource`, `retry`, `failed`, `succeeded`.
    pub kind: String,
    /// The provisioning step or resource it is about (`bucket`, `listener_rule`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub message: String,
}

/// Why a deployment failed (or why its last attempt did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentError {
    /// `Retryable.{step}.{code}` or `NonRetryable.{step}.{code}`, as the deployer reports it.
    pub error_type: String,
    /// The step that failed (`bucket`, `listener_rule`, …), when known.
    pub step: Option<String>,
    /// The AWS error code, when AWS answered.
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

/// A resource a deployment touched, and what it did to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeployedResource {
    /// `bucket`, `secret`, `target_group`, `task_definition`, `listener_rule`, `service`.
    pub kind: String,
    pub name: String,
    pub arn: Option<String>,
    /// `created`, `updated`, `unchanged`, `deleted`, `retained`, `absent`.
    pub action: String,
}

/// `GET /v1/agents/{id}/deployments/{deploymentId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentResponse {
    pub id: crate::ids::DeploymentId,
    pub agent_id: AgentId,
    pub action: DeploymentAction,
    pub status: DeploymentStatus,
    /// The agent version this deployment was asked for; `deployed_version` is the one
    /// it applied (newer, if the agent changed before it ran).
    pub agent_version: Option<i64>,
    pub deployed_version: Option<i64>,
    /// For `delete`: whether the transcript bucket is emptied and deleted too.
    pub purge_transcripts: bool,
    pub attempts: i64,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "timestamp::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub error: Option<DeploymentError>,
    pub resources: Vec<DeployedResource>,
    /// The runtime image a deploy put in place, pinned by digest
    /// (`{registry}/{repository}@sha256:…`).
    #[serde(default)]
    pub image: Option<String>,
    pub events: Vec<DeploymentEvent>,
}

/// One page of an agent's deployments, newest first (without their events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentPage {
    pub deployments: Vec<DeploymentResponse>,
    pub next_cursor: Option<String>,
}

/// One call, from the agent's call index (`index/…`, written by its runtime as each
/// call ends; its `calls/{callSid}/metadata.json` has the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallSummary {
    pub call_sid: crate::ids::CallSid,
    #[serde(default, with = "timestamp::option")]
    pub started_at: Option<OffsetDateTime>,
    pub duration_secs: Option<f64>,
    /// The caller's number, as Twilio gave it.
    pub from: Option<String>,
    /// Why the call ended (`caller_hung_up`, `end_call`, `max_duration`, …).
    pub end_reason: Option<String>,
}

/// One page of an agent's calls, newest first (by when each call ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallPage {
    pub calls: Vec<CallSummary>,
    pub next_cursor: Option<String>,
}

/// One page of agents, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentPage {
    pub agents: Vec<AgentResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_request`, `not_found`, `version_conflict`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// For `invalid_request`: every problem, by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// Longest tenant name or API key label.
pub const LABEL_MAX: usize = 100;

/// `POST /v1/admin/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantResponse {
    pub id: TenantId,
    pub name: String,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/admin/tenants/{tenantId}/api-keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IssueApiKeyRequest {
    /// What the key is for, e.g. "CI" or "dashboard".
    pub label: String,
}

/// A newly issued API key. `api_key` is shown this once; only its hash is stored.
/// `Debug` leaves the key out.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuedApiKey {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub label: String,
    /// The bearer token. Store it now: it cannot be shown again.
    pub api_key: String,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("key_id", &self.key_id)
            .field("tenant_id", &self.tenant_id)
            .field("label", &self.label)
            .field("api_key", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// `GET /health` and `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `unavailable` when a dependency is down.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_key_debug_leaves_the_key_out() {
        let key = IssuedApiKey {
            key_id: "abc".into(),
            tenant_id: TenantId::generate(),
            label: "CI".into(),
            api_key: "tvk_abc_SECRETSECRET".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let debug = format!("{key:?}");
        assert!(!debug.contains("SECRETSECRET") && debug.contains("abc"), "{debug}");
    }
}

/// How an agent's Twilio number routes now, checked live against Twilio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberState {
    /// Twilio sends the number's calls to the agent's voice URL.
    Matches,
    /// Twilio sends them elsewhere (`routing.voice_url`, or a TwiML app): the number
    /// has drifted from its agent.
    Drifted,
    /// The agent has no voice URL yet (it has never been placed on a load balancer).
    NotDeployed,
    /// The agent's Twilio account has no such number.
    NotInAccount,
    /// Twilio refused the agent's account SID and auth token.
    CredentialsRefused,
    /// Twilio could not be asked (unreachable, slow, or an error of its own).
    Unreachable,
    /// This control plane does not talk to Twilio (`TEMPOVOICE_TWILIO_API_BASE=off`).
    NotChecked,
}

impl NumberState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matches => "matches",
            Self::Drifted => "drifted",
            Self::NotDeployed => "not_deployed",
            Self::NotInAccount => "not_in_account",
            Self::CredentialsRefused => "credentials_refused",
            Self::Unreachable => "unreachable",
            Self::NotChecked => "not_checked",
        }
    }
}

/// What Twilio routes a number to, as read just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NumberRouting {
    pub state: NumberState,
    /// The number's voice URL at Twilio, when it could be read.
    pub voice_url: Option<String>,
    /// A TwiML app that routes the number instead of its voice URL.
    pub voice_application_sid: Option<String>,
    /// The tenant's agent the voice URL belongs to, when it is one of theirs.
    pub routes_to_agent: Option<AgentId>,
    /// Why, when the state is not `matches`.
    pub detail: Option<String>,
}

/// One agent's Twilio number and where it routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NumberStatus {
    pub phone_number: String,
    pub account_sid: String,
    pub agent_id: AgentId,
    pub agent_name: String,
    /// Whether deploys point the number at the agent (`telephony.configure_number`).
    pub configure_number: bool,
    /// The agent's voice URL; `null` until it is placed.
    pub voice_url: Option<String>,
    pub routing: NumberRouting,
    /// What the number routed to before the agent took it (given back when the agent
    /// is deleted or moves), when TempoVoice pointed it.
    pub previous_voice_url: Option<String>,
}

/// `GET /v1/numbers`: every agent's number, checked live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NumberList {
    pub numbers: Vec<NumberStatus>,
}

/// `POST /v1/agents/{id}/number`: the number after it was pointed at the agent, and
/// what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepointResponse {
    pub number: NumberStatus,
    pub events: Vec<String>,
}

/// The body of `POST /v1/agents/{id}/calls`: call `to` from the agent's number.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCallRequest {
    /// E.164.
    pub to: String,
    /// E.164; the agent's `telephony.call_phone_number` (the default) is the only
    /// number it may call from.
    #[serde(default)]
    pub from: Option<String>,
    /// Anything the call should carry (at most 1 KiB as JSON); written into the
    /// call's `metadata.json`.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An outbound call Twilio accepted: it rings now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacedCall {
    pub call_sid: crate::ids::CallSid,
    pub agent_id: AgentId,
    pub to: String,
    pub from: String,
    /// Twilio's status of the call (`queued`).
    pub status: String,
}

/// Where a scheduled callback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    /// Waiting for `due_at`.
    Scheduled,
    /// A control plane is asking Twilio for the call now.
    Placing,
    /// Twilio accepted the call (`placed_call_sid`).
    Placed,
    /// It will not be placed; `error` says why.
    Failed,
    /// Cancelled through the API or the dashboard.
    Cancelled,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Placing => "placing",
            Self::Placed => "placed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Scheduled, Self::Placing, Self::Placed, Self::Failed, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A callback a caller asked for during a call (the agent's `schedule_callback`
/// tool): at `due_at` the agent calls them back, as an outbound call that carries
/// what was said on the earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Callback {
    pub id: String,
    pub agent_id: AgentId,
    pub status: CallbackStatus,
    /// The number called back: the caller of `call_sid`.
    pub to: String,
    #[serde(with = "timestamp")]
    pub due_at: OffsetDateTime,
    /// When, in the caller's words.
    pub requested_time: String,
    /// The call during which the caller asked for it.
    pub call_sid: crate::ids::CallSid,
    /// The callback itself, once Twilio accepted it.
    #[serde(default)]
    pub placed_call_sid: Option<crate::ids::CallSid>,
    /// Attempts at placing it so far.
    pub attempts: i64,
    /// Why it failed; on a scheduled callback, why the last attempt is being retried.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/agents/{id}/callbacks`: the agent's callbacks, the next due first, then
/// those done, most recent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CallbackList {
    pub callbacks: Vec<Callback>,
}

/// `GET /v1/agents/{id}/calls/stats`: the agent's calls of the last `days` days
/// (UTC), from its call index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallStats {
    /// One per day, the oldest first and today last, days without calls included.
    pub days: Vec<CallDay>,
    /// Calls in the period.
    pub calls: u64,
    /// Median call duration, when there were calls.
    pub median_duration_secs: Option<f64>,
    /// 90th percentile of call duration (nearest rank).
    pub p90_duration_secs: Option<f64>,
    /// Share of the calls transferred to a person (0 to 1).
    pub transferred_share: Option<f64>,
    /// Share of the calls that ended in voicemail: the caller left a message, or an
    /// outbound call reached an answering machine (0 to 1).
    pub voicemail_share: Option<f64>,
}

/// One day's calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallDay {
    /// `YYYY-MM-DD` (UTC), by when the calls started.
    pub date: String,
    pub calls: u64,
    /// Calls by end reason (`end_call`, `caller_hung_up`, `transferred`, …).
    pub by_end_reason: std::collections::BTreeMap<String, u64>,
}
