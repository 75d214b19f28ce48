//! The REST API. Each resource module exports `router() -> OpenApiRouter<AppState>`;
//! routes are registered only through utoipa-axum's `routes!`, so every route and
//! its OpenAPI operation come from the same annotated handler.
//!
//! Layers, outermost first: request id (`x-request-id`, generated if absent),
//! request span and access log, body limit. Unknown routes and methods get JSON
//! errors like everything else.

pub mod admin;
pub mod agents;
pub mod calls;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod health;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use self::error::ApiError;
use crate::settings::Settings;
use crate::store::Store;

/// Largest request body accepted. An agent's encoded config is held to 32 KiB;
/// JSON escaping of the same text can make the request up to about twice that.
pub const BODY_LIMIT_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    /// Present unless the deployer is off.
    pub aws: Option<AwsAccess>,
}

/// What the API needs of AWS: waking the deployment workers, reading transcripts,
/// and the deployer itself for the operator's sweep.
#[derive(Clone)]
pub struct AwsAccess {
    pub wake_workers: Arc<tokio::sync::Notify>,
    pub s3: aws_sdk_s3::Client,
    pub deployer: Arc<dyn crate::deploy::Deployer>,
}

impl AppState {
    pub fn aws(&self) -> Result<&AwsAccess, ApiError> {
        self.aws.as_ref().ok_or(ApiError::DeployerOff)
    }
}

/// All routes with their OpenAPI document.
pub fn api() -> (Router<AppState>, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .merge(health::router())
        .merge(agents::router())
        .merge(deployments::router())
        .merge(calls::router())
        .merge(admin::router())
        .split_for_parts();
    doc.info.title = "TempoVoice control plane".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Tenants manage their AI phone agents. Authenticate with `Authorization: Bearer <api key>`; \
         admin routes take the operator's admin token."
            .into(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    components.add_security_scheme("admin_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    (router, doc)
}

/// A type with a `#[serde(flatten)]`ed struct (an agent's response: its config and
/// its id, version, …) is generated as `allOf` of the two, and the config's own
/// `additionalProperties: false` would then refuse every field of the other. Each
/// such schema is written out as the one object it is on the wire.
fn merge_flattened_schemas(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value};
    let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object).cloned() else { return };
    let resolve = |part: &Value| -> Value {
        match part.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => schemas.get(name).cloned().unwrap_or(Value::Null),
            None => part.clone(),
        }
    };
    let Some(out) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for schema in out.values_mut() {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array) else { continue };
        let parts: Vec<Value> = parts.iter().map(&resolve).collect();
        if !parts.iter().all(|p| p.get("properties").is_some_and(Value::is_object)) {
            continue;
        }
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for part in &parts {
            properties.extend(part["properties"].as_object().cloned().unwrap_or_default());
            for r in part.get("required").and_then(Value::as_array).cloned().unwrap_or_default() {
                if !required.contains(&r) {
                    required.push(r);
                }
            }
        }
        let mut merged = Map::new();
        merged.insert("type".into(), "object".into());
        if let Some(description) = schema.get("description").cloned() {
            merged.insert("description".into(), description);
        }
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("required".into(), Value::Array(required));
        merged.insert("additionalProperties".into(), false.into());
        *schema = Value::Object(merged);
    }
}

/// The complete service: routes, fallbacks and layers, with state. `pages` (the
/// dashboard) is served beside the API; an unknown path then gets the dashboard's
/// 404 page when a browser asks for HTML outside `/v1/`, and a JSON error otherwise.
pub fn service(state: AppState, pages: Option<Router>) -> Router {
    let (router, doc) = api();
    let mut doc = serde_json::to_value(&doc).expect("OpenAPI document serializes");
    merge_flattened_schemas(&mut doc);
    let doc_json = health::OpenApiJson(Arc::new(doc.to_string()));
    let request_id = HeaderName::from_static("x-request-id");
    let has_pages = pages.is_some();
    // Set before `with_state`: it applies to the method routers registered so far.
    let mut app = router.method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed }).with_state(state);
    if let Some(pages) = pages {
        app = app.merge(pages);
    }
    app.fallback(move |req: Request| async move {
        if has_pages && wants_page(&req) { dashboard::not_found() } else { ApiError::RouteNotFound.into_response() }
    })
    .layer(axum::Extension(doc_json))
    .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(|req: &Request| {
                let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id,
                    tenant_id = tracing::field::Empty,
                )
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO))
            // Failures are logged once, with their cause, by `ApiError`.
            .on_failure(()),
    )
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
}

/// A browser asking for a page (not an API client).
fn wants_page(req: &Request) -> bool {
    let path = req.uri().path();
    let api = path == "/v1" || path.starts_with("/v1/") || path.starts_with("/health");
    !api && req
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand::random::<u64>());
        axum::http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Reads `limit` and `cursor`, refusing any other parameter.
pub(crate) fn page_query<C>(
    query: Option<&str>,
    default: u32,
    max: u32,
    decode: impl Fn(&str) -> Option<C>,
) -> Result<(u32, Option<C>), ApiError> {
    let mut limit = default;
    let mut cursor = None;
    let mut errors = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => limit = n,
                _ => errors.push(field_error("limit", format!("must be a whole number from 1 to {max}"))),
            },
            "cursor" => match decode(&value) {
                Some(c) => cursor = Some(c),
                None => errors.push(field_error("cursor", "is not a cursor returned by this API".into())),
            },
            _ => {
                errors.push(field_error("query", format!("{key:?} is not a known query parameter (use limit, cursor)")))
            }
        }
    }
    if errors.is_empty() { Ok((limit, cursor)) } else { Err(ApiError::Invalid(errors)) }
}

/// Reads boolean query flags (`true`/`false`), each defaulting to its given value,
/// refusing unknown parameters.
pub(crate) fn flag_query<const N: usize>(
    query: Option<&str>,
    mut flags: [(&'static str, bool); N],
) -> Result<[(&'static str, bool); N], ApiError> {
    let mut errors = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match flags.iter_mut().find(|(name, _)| *name == key) {
            Some((name, flag)) => match value.as_ref() {
                "true" => *flag = true,
                "false" => *flag = false,
                _ => errors.push(field_error(name, "must be true or false".into())),
            },
            None => {
                let known: Vec<&str> = flags.iter().map(|(n, _)| *n).collect();
                errors.push(field_error(
                    "query",
                    format!("{key:?} is not a known query parameter (use {})", known.join(", ")),
                ));
            }
        }
    }
    if errors.is_empty() { Ok(flags) } else { Err(ApiError::Invalid(errors)) }
}

fn field_error(field: &str, reason: String) -> agent_spec::FieldError {
    agent_spec::FieldError { field: field.into(), reason }
}
