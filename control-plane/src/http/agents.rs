//! `/v1/agents`: a tenant's agents. Create, list (cursor pagination), get, update
//! (If-Match required: a stale version is 409), delete. Secrets are write-only.
//! Another tenant's agent is 404 on every route.

use agent_spec::AgentDraft;
use agent_spec::api::{AgentPage, AgentResponse, ErrorBody};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{AgentPath, ApiJson, IfMatch, Tenant, etag};
use crate::store::agents::{PageCursor, StoredAgent};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_agent, list_agents)).routes(routes!(
        get_agent,
        update_agent,
        delete_agent
    ))
}

/// The agent as JSON with its `ETag`.
fn agent_response(status: StatusCode, agent: StoredAgent) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&etag(agent.version)).expect("digits are a valid header"));
    if status == StatusCode::CREATED {
        let location = format!("/v1/agents/{}", agent.id);
        headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("id is a valid header"));
    }
    (status, headers, axum::Json(agent.into_response())).into_response()
}

/// Create an agent.
#[utoipa::path(
    post, path = "/v1/agents", tag = "agents",
    request_body = AgentDraft,
    responses(
        (status = 201, description = "Created", body = AgentResponse,
            headers(("ETag" = String, description = "The agent's version"), ("Location" = String))),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn create_agent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(draft): ApiJson<AgentDraft>,
) -> Result<Response, ApiError> {
    let (config, secrets) = draft.validate(None)?;
    let agent =
        state.store.create_agent(&tenant, config, &secrets).await.map_err(|e| ApiError::from_store(e, "tenant"))?;
    tracing::info!(agent_id = %agent.id, "agent created");
    Ok(agent_response(StatusCode::CREATED, agent))
}

/// List the tenant's agents, oldest first.
#[utoipa::path(
    get, path = "/v1/agents", tag = "agents",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = AgentPage),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn list_agents(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<AgentPage>, ApiError> {
    let mut limit = DEFAULT_PAGE_SIZE;
    let mut cursor = None;
    let mut errors = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => limit = n,
                _ => errors.push(("limit", format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"))),
            },
            "cursor" => match PageCursor::decode(&value) {
                Some(c) => cursor = Some(c),
                None => errors.push(("cursor", "is not a cursor returned by this API".to_owned())),
            },
            _ => errors.push(("query", format!("{key:?} is not a known query parameter (use limit, cursor)"))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(
            errors.into_iter().map(|(field, reason)| agent_spec::FieldError { field: field.into(), reason }).collect(),
        ));
    }
    let (agents, next) = state
        .store
        .list_agents(&tenant, cursor.as_ref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "tenant"))?;
    Ok(axum::Json(AgentPage {
        agents: agents.into_iter().map(StoredAgent::into_response).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// Get one agent.
#[utoipa::path(
    get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = agent_spec::AgentId, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent", body = AgentResponse,
            headers(("ETag" = String, description = "The agent's version"))),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_agent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
) -> Result<Response, ApiError> {
    let agent = state.store.get_agent(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(agent_response(StatusCode::OK, agent))
}

/// Replace an agent's configuration. Secrets omitted from the body keep their
/// stored values; `null` removes an optional secret.
#[utoipa::path(
    put, path = "/v1/agents/{id}", tag = "agents",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced, e.g. \"3\""),
    ),
    request_body = AgentDraft,
    responses(
        (status = 200, description = "Updated", body = AgentResponse,
            headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 409, description = "The agent changed since that version was read", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn update_agent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    IfMatch(expected): IfMatch,
    body: Result<ApiJson<AgentDraft>, ApiError>,
) -> Result<Response, ApiError> {
    // Existence first: another tenant's agent is 404 whatever the body holds.
    let (current, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let expected = expected.ok_or(ApiError::PreconditionRequired)?;
    if expected != current.version {
        return Err(ApiError::VersionConflict { current: current.version });
    }
    let ApiJson(draft) = body?;
    let (config, secrets) = draft.validate(Some(&secrets))?;
    let agent = state
        .store
        .update_agent(&tenant, &id, expected, config, &secrets)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %agent.id, version = agent.version, "agent updated");
    Ok(agent_response(StatusCode::OK, agent))
}

/// Delete an agent. With `If-Match`, only if it is still that version.
#[utoipa::path(
    delete, path = "/v1/agents/{id}", tag = "agents",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the agent is still this version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 409, description = "The agent changed since that version was read", body = ErrorBody),
        (status = 422, description = "Malformed If-Match", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn delete_agent(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    IfMatch(expected): IfMatch,
) -> Result<StatusCode, ApiError> {
    state.store.delete_agent(&tenant, &id, expected).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %id, "agent deleted");
    Ok(StatusCode::NO_CONTENT)
}
