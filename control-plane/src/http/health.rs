//! Liveness (`/health`: the process serves requests), readiness (`/v1/health`: the
//! database answers) and the OpenAPI document.

use std::sync::Arc;

use agent_spec::api::HealthResponse;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(liveness)).routes(routes!(readiness)).routes(routes!(openapi_document))
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
async fn liveness() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".into() })
}

/// Readiness: the database is reachable.
#[utoipa::path(get, path = "/v1/health", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "The database is unreachable", body = HealthResponse),
    ))]
async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    match state.store.db.ping().await {
        Ok(()) => (StatusCode::OK, Json(HealthResponse { status: "ok".into() })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(HealthResponse { status: "unavailable".into() }))
        }
    }
}

/// The serialized OpenAPI document, made once at start-up.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
async fn openapi_document(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.as_str().to_owned())
}
