//! `/v1/agents`: a tenant's agents. Create, list (cursor pagination), get, update
//! (If-Match required: a stale version is 409), delete. Secrets are write-only.
//! Another tenant's agent is 404 on every route.
//!
//! Create, update and delete also start a deployment (202 with the agent and its
//! deployment; for delete, the deployment) unless `?deploy=false` is given or the
//! deployer is off.

use agent_spec::AgentDraft;
use agent_spec::api::{AgentPage, AgentResponse, DeploymentAction, DeploymentResponse, ErrorBody};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::{accepted, agent_response_body, enqueue};
use super::error::ApiError;
use super::extract::{AgentPath, ApiJson, IfMatch, Tenant, etag};
use super::{AppState, flag_query, page_query};
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
/// `created`: also a `Location` header.
fn agent_response(state: &AppState, status: StatusCode, agent: StoredAgent, created: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&etag(agent.version)).expect("digits are a valid header"));
    if created {
        let location = format!("/v1/agents/{}", agent.id);
        headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("id is a valid header"));
    }
    (status, headers, axum::Json(agent_response_body(state, agent))).into_response()
}

/// Whether this write should start a deployment: `?deploy=` (default true), and
/// only when a deployer is configured.
fn wants_deploy(state: &AppState, deploy: bool) -> bool {
    deploy && state.aws.is_some()
}

/// Create an agent.
#[utoipa::path(
    post, path = "/v1/agents", tag = "agents",
    params(("deploy" = Option<bool>, Query, description = "Start a deployment (default true)")),
    request_body = AgentDraft,
    responses(
        (status = 201, description = "Created, not deployed (`deploy=false` or deployer off)", body = AgentResponse,
            headers(("ETag" = String, description = "The agent's version"), ("Location" = String))),
        (status = 202, description = "Created; its deployment is queued (`deployment` in the body)", body = AgentResponse,
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
    RawQuery(query): RawQuery,
    ApiJson(draft): ApiJson<AgentDraft>,
) -> Result<Response, ApiError> {
    let [(_, deploy)] = flag_query(query.as_deref(), [("deploy", true)])?;
    let (config, secrets) = draft.validate_to_save(None)?;
    if wants_deploy(&state, deploy) {
        // A new agent that could not be deployed is refused before it is stored.
        state
            .store
            .check_listener_slot(&tenant, None, state.settings.tenant_quotas)
            .await
            .map_err(|e| ApiError::from_store(e, "tenant"))?;
    }
    let mut agent = state
        .store
        .create_agent(&tenant, config, &secrets, state.settings.tenant_quotas)
        .await
        .map_err(|e| ApiError::from_store(e, "tenant"))?;
    tracing::info!(agent_id = %agent.id, "agent created");
    if wants_deploy(&state, deploy) {
        let deployment =
            enqueue(&state, &tenant, &agent.id, DeploymentAction::Deploy, Some(agent.version), false).await?;
        agent.deployment = Some(deployment.summary());
        return Ok(agent_response(&state, StatusCode::ACCEPTED, agent, true));
    }
    Ok(agent_response(&state, StatusCode::CREATED, agent, true))
}

/// List the tenant's agents, oldest first.
#[utoipa::path(
    get, path = "/v1/agents", tag = "agents",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page: the position `{ms}.{id}` of its last agent; any well-formed position is a valid cursor", pattern = "^[0-9]{1,18}\\.[a-z2-7]{16}$"),
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
    let (limit, cursor) = page_query(query.as_deref(), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageCursor::decode)?;
    let (agents, next) = state
        .store
        .list_agents(&tenant, cursor.as_ref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "tenant"))?;
    Ok(axum::Json(AgentPage {
        agents: agents.into_iter().map(|a| agent_response_body(&state, a)).collect(),
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
    Ok(agent_response(&state, StatusCode::OK, agent, false))
}

/// Replace an agent's configuration. Secrets omitted from the body keep their
/// stored values; `null` removes an optional secret.
#[utoipa::path(
    put, path = "/v1/agents/{id}", tag = "agents",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced, e.g. \"3\"", pattern = r#"^(?:(?:W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#),
        ("deploy" = Option<bool>, Query, description = "Start a deployment (default true)"),
    ),
    request_body = AgentDraft,
    responses(
        (status = 200, description = "Updated, not deployed (`deploy=false` or deployer off)", body = AgentResponse,
            headers(("ETag" = String, description = "The new version"))),
        (status = 202, description = "Updated; its deployment is queued (`deployment` in the body)", body = AgentResponse,
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
    RawQuery(query): RawQuery,
    body: Result<ApiJson<AgentDraft>, ApiError>,
) -> Result<Response, ApiError> {
    // Existence first: another tenant's agent is 404 whatever the body holds.
    let (current, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let expected = expected.ok_or(ApiError::PreconditionRequired)?;
    if expected != current.version {
        return Err(ApiError::VersionConflict { current: current.version });
    }
    let [(_, deploy)] = flag_query(query.as_deref(), [("deploy", true)])?;
    let ApiJson(draft) = body?;
    let (config, secrets) = draft.validate_to_save(Some(&secrets))?;
    let mut agent = state
        .store
        .update_agent(&tenant, &id, expected, config, &secrets, state.settings.tenant_quotas)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %agent.id, version = agent.version, "agent updated");
    agent.listener_arn = state
        .store
        .placement(&tenant, &id)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?
        .map(|p| p.listener_arn);
    if wants_deploy(&state, deploy) {
        let deployment =
            enqueue(&state, &tenant, &agent.id, DeploymentAction::Deploy, Some(agent.version), false).await?;
        agent.deployment = Some(deployment.summary());
        return Ok(agent_response(&state, StatusCode::ACCEPTED, agent, false));
    }
    agent.deployment =
        state.store.latest_deployment(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(agent_response(&state, StatusCode::OK, agent, false))
}

/// Delete an agent. With `If-Match`, only if it is still that version. Its AWS
/// resources are torn down by a `delete` deployment; the transcript bucket is kept
/// (tagged retired) unless `purge_transcripts=true`.
#[utoipa::path(
    delete, path = "/v1/agents/{id}", tag = "agents",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the agent is still this version", pattern = r#"^(?:(?:W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#),
        ("deploy" = Option<bool>, Query, description = "Tear down its AWS resources (default true)"),
        ("purge_transcripts" = Option<bool>, Query,
            description = "Also empty and delete its transcript bucket: every call recording and transcript (default false). Needs `deploy=true` (the teardown purges them): with `deploy=false` it is refused with 422"),
    ),
    responses(
        (status = 202, description = "Deleted; the teardown deployment is queued", body = DeploymentResponse,
            headers(("Location" = String, description = "The deployment"))),
        (status = 204, description = "Deleted, AWS resources left in place (`deploy=false` or deployer off)"),
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
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let [(_, deploy), (_, purge)] = flag_query(query.as_deref(), [("deploy", true), ("purge_transcripts", false)])?;
    if purge && !deploy {
        return Err(ApiError::invalid(
            "purge_transcripts",
            "needs deploy=true: transcripts are purged by the teardown",
        ));
    }
    state.store.delete_agent(&tenant, &id, expected).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %id, "agent deleted");
    // Nobody is to call its callers back any more (a failure here leaves each to fail
    // when due, with the same reason).
    match state.store.cancel_agent_callbacks(&tenant, &id, "the agent was deleted").await {
        Ok(0) => {}
        Ok(n) => tracing::info!(agent_id = %id, callbacks = n, "the agent's scheduled callbacks were cancelled"),
        Err(e) => tracing::warn!(agent_id = %id, error = %e, "could not cancel the deleted agent's callbacks"),
    }
    if !wants_deploy(&state, deploy) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // The agent row is gone; if queueing its teardown fails now, its resources stay
    // until a sweep finds them: say so loudly.
    let deployment = enqueue(&state, &tenant, &id, DeploymentAction::Delete, None, purge).await.inspect_err(|e| {
        tracing::error!(agent_id = %id, error = %e, "agent deleted but its teardown could not be queued; a sweep will find its resources");
    })?;
    let full =
        state.store.get_deployment(&tenant, &id, &deployment.id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(accepted(full))
}
