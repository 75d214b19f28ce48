//! `/v1/sessions`: an API key exchanged for a session token that can be revoked on
//! its own (the dashboard signs in with this, so a browser cookie never holds the
//! key). The token then authenticates every tenant route like the key, until it
//! expires, its holder ends it (`DELETE /v1/sessions/current`) or its API key is
//! revoked.

use agent_spec::TenantId;
use agent_spec::api::ErrorBody;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, CurrentSession, KeyHolder};
use crate::store::sessions::{MAX_LIFETIME, MIN_LIFETIME};

/// A session's lifetime unless the request names one: 12 hours.
pub const DEFAULT_LIFETIME_SECS: i64 = 12 * 3600;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open_session)).routes(routes!(end_session))
}

/// What opening a session takes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// How long the session lasts, in seconds: 60 to 2592000 (30 days); 43200 (12
    /// hours) when omitted.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 2592000)]
    pub expires_in_secs: Option<i64>,
}

/// A session just opened. `session_token` is shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub session_id: String,
    /// `tvs_…`: send it as `Authorization: Bearer <session token>`.
    pub session_token: String,
    pub tenant_id: TenantId,
    /// The API key the session was opened with.
    pub key_id: String,
    #[serde(with = "agent_spec::api::timestamp")]
    pub expires_at: time::OffsetDateTime,
}

/// Open a session with an API key.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body = SessionRequest,
    responses(
        (status = 201, description = "Opened; the token is in this response only", body = SessionResponse),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 403, description = "Authenticated with a session token, not an API key", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn open_session(
    State(state): State<AppState>,
    key: KeyHolder,
    ApiJson(request): ApiJson<SessionRequest>,
) -> Result<Response, ApiError> {
    let secs = request.expires_in_secs.unwrap_or(DEFAULT_LIFETIME_SECS);
    let lifetime = time::Duration::seconds(secs);
    if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
        return Err(ApiError::invalid(
            "expires_in_secs",
            format!(
                "must be a number of seconds from {} to {} (30 days)",
                MIN_LIFETIME.whole_seconds(),
                MAX_LIFETIME.whole_seconds()
            ),
        ));
    }
    let opened = state
        .store
        .open_session(&key.tenant, &key.key_id, lifetime)
        .await
        .map_err(|e| ApiError::from_store(e, "api key"))?;
    tracing::info!(key_id = %key.key_id, session_id = %opened.session_id, "session opened");
    let body = SessionResponse {
        session_id: opened.session_id,
        session_token: opened.token.expose_secret().to_owned(),
        tenant_id: key.tenant,
        key_id: opened.key_id,
        expires_at: opened.expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// End the session whose token authenticates this request (sign out).
#[utoipa::path(
    delete, path = "/v1/sessions/current", tag = "sessions",
    responses(
        (status = 204, description = "Ended: the token authenticates nothing from now on"),
        (status = 401, description = "Missing, invalid, expired or revoked session token", body = ErrorBody),
        (status = 403, description = "Authenticated with an API key, not a session token", body = ErrorBody),
    ),
    security(("session_token" = []))
)]
async fn end_session(State(state): State<AppState>, session: CurrentSession) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_session(&session.tenant, &session.session_id)
        .await
        .map_err(|e| ApiError::from_store(e, "session"))?;
    tracing::info!(session_id = %session.session_id, "session ended");
    Ok(StatusCode::NO_CONTENT)
}
