//! `/v1/admin`: the operator's routes, authenticated with `TEMPOVOICE_ADMIN_TOKEN`
//! (disabled when it is unset). The same operations are on the CLI.

use agent_spec::api::{
    CreateTenantRequest, DeploymentResponse, ErrorBody, IssueApiKeyRequest, IssuedApiKey, TenantResponse,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, AgentPath, ApiJson, DeploymentPath, TenantPath};
use crate::store::api_keys::ApiKeyInfo;
use crate::store::quotas::{QUOTA_MAX, QuotaOverrides, TenantQuotas};
use deployer_lambda::event::{Action, DeployerEvent, DeployerResponse, EVENT_VERSION, Outcome};
use deployer_lambda::fleet::{SweepReport, SweepRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant))
        .routes(routes!(issue_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(sweep))
        .routes(routes!(metrics))
        .routes(routes!(get_deployment))
        .routes(routes!(get_quotas, set_quotas))
}

pub use agent_spec::api::LABEL_MAX;

fn label(field: &str, raw: &str, required: bool) -> Result<String, ApiError> {
    // The limit counts what was sent, spaces around it included (as the document's
    // `maxLength` does).
    if raw.chars().count() > LABEL_MAX {
        return Err(ApiError::invalid(field, format!("must be at most {LABEL_MAX} characters")));
    }
    agent_spec::values::single_line(raw, required, LABEL_MAX).map_err(|e| ApiError::invalid(field, e.0))
}

/// Create a tenant.
#[utoipa::path(
    post, path = "/v1/admin/tenants", tag = "admin",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created", body = TenantResponse),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<TenantResponse>), ApiError> {
    let name = label("name", &req.name, true)?;
    let tenant = state.store.create_tenant(&name).await.map_err(|e| ApiError::from_store(e, "tenant"))?;
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Issue an API key for a tenant. The key is in this response only.
#[utoipa::path(
    post, path = "/v1/admin/tenants/{tenantId}/api-keys", tag = "admin",
    params(("tenantId" = agent_spec::TenantId, Path, description = "Tenant id")),
    request_body = IssueApiKeyRequest,
    responses(
        (status = 201, description = "Issued", body = IssuedApiKey),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn issue_api_key(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
    ApiJson(req): ApiJson<IssueApiKeyRequest>,
) -> Result<(StatusCode, Json<IssuedApiKey>), ApiError> {
    let label = label("label", &req.label, false)?;
    let key = state.store.issue_api_key(&tenant, &label).await.map_err(|e| ApiError::from_store(e, "tenant"))?;
    tracing::info!(tenant_id = %tenant, key_id = %key.key_id, "api key issued");
    Ok((StatusCode::CREATED, Json(key)))
}

/// List a tenant's API keys (ids and labels, never the keys).
#[utoipa::path(
    get, path = "/v1/admin/tenants/{tenantId}/api-keys", tag = "admin",
    params(("tenantId" = agent_spec::TenantId, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant's keys", body = Vec<ApiKeyInfo>),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn list_api_keys(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let keys = state.store.list_api_keys(&tenant).await.map_err(|e| ApiError::from_store(e, "tenant"))?;
    Ok(Json(keys))
}

/// Revoke an API key. Requests with it are refused from now on.
#[utoipa::path(
    delete, path = "/v1/admin/tenants/{tenantId}/api-keys/{keyId}", tag = "admin",
    params(
        ("tenantId" = agent_spec::TenantId, Path, description = "Tenant id"),
        ("keyId" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such key for this tenant", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
    Path((_, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_api_key(&tenant, &key_id).await.map_err(|e| ApiError::from_store(e, "api key"))?;
    tracing::info!(tenant_id = %tenant, key_id = %key_id, "api key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A tenant's quotas: those in force, the overrides set for it, and its use.
#[utoipa::path(
    get, path = "/v1/admin/tenants/{tenantId}/quotas", tag = "admin",
    params(("tenantId" = agent_spec::TenantId, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant's quotas", body = TenantQuotas),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn get_quotas(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
) -> Result<Json<TenantQuotas>, ApiError> {
    Ok(Json(tenant_quotas(&state, &tenant).await?))
}

/// Set a tenant's quota overrides; `null` (or an omitted field) is the operator's
/// default. Lowering a quota below the tenant's use refuses new agents and growth,
/// and takes nothing away.
#[utoipa::path(
    put, path = "/v1/admin/tenants/{tenantId}/quotas", tag = "admin",
    params(("tenantId" = agent_spec::TenantId, Path, description = "Tenant id")),
    request_body = QuotaOverrides,
    responses(
        (status = 200, description = "The tenant's quotas now", body = TenantQuotas),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn set_quotas(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
    ApiJson(overrides): ApiJson<QuotaOverrides>,
) -> Result<Json<TenantQuotas>, ApiError> {
    let fields = [
        ("agents", overrides.agents),
        ("cpu_units", overrides.cpu_units),
        ("listener_slots", overrides.listener_slots),
        ("knowledge_bytes", overrides.knowledge_bytes),
    ];
    let too_large: Vec<agent_spec::FieldError> = fields
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| v > QUOTA_MAX))
        .map(|(field, _)| agent_spec::FieldError {
            field: field.into(),
            reason: format!("must be at most {QUOTA_MAX}"),
        })
        .collect();
    if !too_large.is_empty() {
        return Err(ApiError::Invalid(too_large));
    }
    state.store.set_quota_overrides(&tenant, overrides).await.map_err(|e| ApiError::from_store(e, "tenant"))?;
    tracing::info!(tenant_id = %tenant, ?overrides, "tenant quotas set");
    Ok(Json(tenant_quotas(&state, &tenant).await?))
}

async fn tenant_quotas(state: &AppState, tenant: &agent_spec::TenantId) -> Result<TenantQuotas, ApiError> {
    let store = |e| ApiError::from_store(e, "tenant");
    if !state.store.tenant_exists(tenant).await.map_err(store)? {
        return Err(ApiError::NotFound("tenant"));
    }
    let overrides = state.store.quota_overrides(tenant).await.map_err(store)?;
    let used = state.store.quota_use(tenant, None).await.map_err(store)?;
    Ok(TenantQuotas { limits: state.settings.tenant_quotas.with(overrides), overrides, used })
}

/// One deployment of a tenant's agent, whole: AWS's error text and the resources'
/// ARNs, which the tenant's own view leaves out.
#[utoipa::path(
    get, path = "/v1/admin/tenants/{tenantId}/agents/{id}/deployments/{deploymentId}", tag = "admin",
    params(
        ("tenantId" = agent_spec::TenantId, Path, description = "Tenant id"),
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("deploymentId" = agent_spec::DeploymentId, Path, description = "Deployment id"),
    ),
    responses(
        (status = 200, description = "The deployment", body = DeploymentResponse),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 404, description = "No such deployment of this tenant's agent", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn get_deployment(
    State(state): State<AppState>,
    _: Admin,
    TenantPath(tenant): TenantPath,
    AgentPath(id): AgentPath,
    DeploymentPath(deployment): DeploymentPath,
) -> Result<Json<DeploymentResponse>, ApiError> {
    let found = state
        .store
        .get_deployment(&tenant, &id, &deployment)
        .await
        .map_err(|e| ApiError::from_store(e, "deployment"))?;
    Ok(Json(found))
}

/// The control plane's metrics, in Prometheus's text format.
///
/// Responses by status class, callbacks placed and given up on by this process, and,
/// read from the database at each scrape, deployments by action and status,
/// callbacks by status, live outbound calls, agents and tenants. A scraper
/// authenticates with the admin token.
#[utoipa::path(
    get, path = "/v1/admin/metrics", tag = "admin",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn metrics(State(state): State<AppState>, _: Admin) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let text = state.metrics.render(&state.store).await.map_err(|e| ApiError::from_store(e, "metrics"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Look for orphans: AWS resources named and tagged as an agent's whose agent the
/// database no longer knows (a teardown that failed for good, resources left by
/// hand). A dry run: the report names them and nothing is deleted; removing them
/// is the deployer's `sweep` with `delete`, after a person has read the report.
#[utoipa::path(
    post, path = "/v1/admin/sweep", tag = "admin",
    responses(
        (status = 200, description = "What a sweep would remove: orphans, and retired transcript buckets past their retention", body = Object),
        (status = 401, description = "Invalid admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
        (status = 502, description = "The deployer failed", body = ErrorBody),
        (status = 503, description = "The deployer is off", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
async fn sweep(State(state): State<AppState>, _: Admin) -> Result<Json<SweepReport>, ApiError> {
    let aws = state.aws()?;
    let known_agents = state.store.known_agent_ids().await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let listener_arns = state.settings.listeners.iter().map(|l| l.listener_arn.clone()).collect();
    let count = known_agents.len();
    let event = DeployerEvent {
        version: EVENT_VERSION,
        action: Action::Sweep(SweepRequest { known_agents, listener_arns, delete: false }),
    };
    let failed =
        |what: String| ApiError::Upstream(anyhow::anyhow!("sweep through {}: {what}", aws.deployer.describe()));
    match aws.deployer.invoke(event).await {
        Ok(DeployerResponse { outcome: Outcome::Sweep(report), .. }) => {
            tracing::info!(known_agents = count, orphans = report.orphans.len(), "sweep (dry run)");
            Ok(Json(report))
        }
        Ok(other) => Err(failed(format!("answered a sweep with {:?}", other.outcome))),
        Err(e) => Err(failed(format!("{}: {}", e.error_type, e.message))),
    }
}
