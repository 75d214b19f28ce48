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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(flatten)]
    pub config: AgentConfig,
    pub secrets: SecretsStatus,
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
    #[serde(with = "time::serde::rfc3339")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuedApiKey {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub label: String,
    /// The bearer token. Store it now: it cannot be shown again.
    pub api_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /health` and `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `unavailable` when a dependency is down.
    pub status: String,
}
