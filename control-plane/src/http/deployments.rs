//! `/v1/agents/{id}/deployments`: start a deployment of an agent (202: it runs in
//! the background, taken by a worker from the database) and follow it — status,
//! per-step events, the resources it touched, and its error.
//!
//! A deleted agent's deployments stay readable, so its teardown can be followed.

use agent_spec::api::{AgentResponse, DeploymentAction, DeploymentPage, DeploymentResponse, ErrorBody};
use agent_spec::{AgentId, TenantId};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{AgentPath, DeploymentPath, Tenant};
use crate::store::agents::StoredAgent;
use crate::store::deployments::{Deployment, DeploymentCursor};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_deployment, list_deployments)).routes(routes!(get_deployment))
}

/// Queues a deployment and wakes this process's workers.
pub(crate) async fn enqueue(
    state: &AppState,
    tenant: &TenantId,
    agent: &AgentId,
    action: DeploymentAction,
    agent_version: Option<i64>,
    purge_transcripts: bool,
) -> Result<Deployment, ApiError> {
    let aws = state.aws()?;
    if action == DeploymentAction::Deploy {
        state
            .store
            .check_listener_slot(tenant, Some(agent), state.settings.tenant_quotas)
            .await
            .map_err(|e| ApiError::from_store(e, "agent"))?;
    }
    let deployment = state
        .store
        .enqueue_deployment(tenant, agent, action, agent_version, purge_transcripts)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    aws.wake_workers.notify_one();
    tracing::info!(agent_id = %agent, deployment_id = %deployment.id, ?action, "deployment queued");
    Ok(deployment)
}

/// The agent as the API shows it: with its voice URL (and the latest deployment the
/// store read with it).
pub(crate) fn agent_response_body(state: &AppState, agent: StoredAgent) -> AgentResponse {
    let voice_url = state.settings.voice_url(&agent.id, agent.listener_arn.as_deref());
    AgentResponse { voice_url, ..agent.into_response() }
}

/// A deployment as its tenant sees it: resources by name without their ARNs, and a
/// failure as its step, AWS's error code and what happens next, never AWS's own words
/// (which name the platform's account, roles and resources). The admin API gives the
/// whole record.
pub(crate) fn for_tenant(mut deployment: DeploymentResponse) -> DeploymentResponse {
    for resource in &mut deployment.resources {
        resource.arn = None;
    }
    if let Some(error) = &mut deployment.error {
        error.message = crate::deploy::worker::tenant_message(error);
    }
    deployment
}

/// `202 Accepted` with the deployment (as its tenant sees it) and its `Location`.
pub(crate) fn accepted(deployment: DeploymentResponse) -> Response {
    let deployment = for_tenant(deployment);
    let location = format!("/v1/agents/{}/deployments/{}", deployment.agent_id, deployment.id);
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are valid in a header"));
    (StatusCode::ACCEPTED, headers, axum::Json(deployment)).into_response()
}

/// Deploy the agent's current configuration (again).
#[utoipa::path(
    post, path = "/v1/agents/{id}/deployments", tag = "deployments",
    params(("id" = agent_spec::AgentId, Path, description = "Agent id")),
    responses(
        (status = 202, description = "Queued; follow it at Location", body = DeploymentResponse,
            headers(("Location" = String, description = "The deployment"))),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 503, description = "This control plane does not deploy (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn start_deployment(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
) -> Result<Response, ApiError> {
    let agent = state.store.get_agent(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let deployment = enqueue(&state, &tenant, &id, DeploymentAction::Deploy, Some(agent.version), false).await?;
    let full =
        state.store.get_deployment(&tenant, &id, &deployment.id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(accepted(full))
}

/// The agent's deployments, newest first (without their events).
#[utoipa::path(
    get, path = "/v1/agents/{id}/deployments", tag = "deployments",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page: the position `{ms}.{id}` of its last deployment; any well-formed position is a valid cursor", pattern = "^[0-9]{1,18}\\.[a-z2-7]{16}$"),
    ),
    responses(
        (status = 200, description = "One page", body = DeploymentPage),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn list_deployments(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<DeploymentPage>, ApiError> {
    if !state.store.agent_is_known(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))? {
        return Err(ApiError::NotFound("agent"));
    }
    let (limit, cursor) =
        super::page_query(query.as_deref(), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, DeploymentCursor::decode)?;
    let (deployments, next) = state
        .store
        .list_deployments(&tenant, &id, cursor.as_ref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(axum::Json(DeploymentPage {
        deployments: deployments.into_iter().map(|d| for_tenant(d.into_response(Vec::new()))).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// One deployment: status, events, resources, error.
#[utoipa::path(
    get, path = "/v1/agents/{id}/deployments/{deploymentId}", tag = "deployments",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("deploymentId" = agent_spec::DeploymentId, Path, description = "Deployment id"),
    ),
    responses(
        (status = 200, description = "The deployment", body = DeploymentResponse),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such deployment of this tenant's agent", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_deployment(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    DeploymentPath(deployment): DeploymentPath,
) -> Result<axum::Json<DeploymentResponse>, ApiError> {
    let found = state
        .store
        .get_deployment(&tenant, &id, &deployment)
        .await
        .map_err(|e| ApiError::from_store(e, "deployment"))?;
    Ok(axum::Json(for_tenant(found)))
}
