//! The REST API. Each resource module exports `router() -> OpenApiRouter<AppState>`;
//! routes are registered only through utoipa-axum's `routes!`, so every route and
//! its OpenAPI operation come from the same annotated handler.
//!
//! Layers, outermost first: request id (`x-request-id`, generated if absent),
//! request span and access log, `Strict-Transport-Security` on responses to requests
//! that arrived over https, body limit. Unknown routes and methods get JSON errors
//! like everything else.
//!
//! Authentication ([`extract`]): an API key or a session token ([`sessions`]) as a
//! bearer token; failed attempts are limited per client address and key id
//! ([`auth_limit`]).

pub mod admin;
pub mod agents;
pub mod auth_limit;
pub mod callbacks;
pub mod calls;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod health;
pub mod numbers;
pub mod outbound;
pub mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Object, OpenApi, Ref, RefOr, Type};
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
    /// Failed authentications, by client address and key id.
    pub auth_limiter: Arc<auth_limit::FailedAuthLimiter>,
    /// Twilio's numbers API (`None`: `TEMPOVOICE_TWILIO_API_BASE=off`).
    pub twilio: Option<crate::twilio::TwilioApi>,
    /// The agents' call indexes, cached by ETag.
    pub call_index: Arc<crate::call_index::CallIndexReader>,
    /// The control plane's own metrics (`GET /v1/admin/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
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
    pub fn new(store: Store, settings: Arc<Settings>, aws: Option<AwsAccess>) -> Self {
        let auth_limiter = Arc::new(auth_limit::FailedAuthLimiter::new(&settings.auth_limits));
        let twilio = settings.twilio_api_base.as_deref().map(crate::twilio::TwilioApi::new);
        Self { store, settings, aws, auth_limiter, twilio, call_index: Arc::default(), metrics: Arc::default() }
    }

    pub fn aws(&self) -> Result<&AwsAccess, ApiError> {
        self.aws.as_ref().ok_or(ApiError::DeployerOff)
    }

    /// The URLs Twilio reaches the tenant's agent at; 409 `not_deployed` before it
    /// is placed on a load balancer.
    pub async fn agent_urls(
        &self,
        tenant: &agent_spec::TenantId,
        agent: &agent_spec::AgentId,
    ) -> Result<crate::settings::AgentUrls, ApiError> {
        let placement = self.store.placement(tenant, agent).await.map_err(|e| ApiError::from_store(e, "agent"))?;
        self.settings.agent_urls(agent, placement.map(|p| p.listener_arn).as_deref()).ok_or_else(|| {
            ApiError::Conflict {
                code: "not_deployed".into(),
                message: "the agent has no voice URL until it is deployed".into(),
            }
        })
    }

    /// Twilio's API, unless this control plane runs without it.
    pub fn twilio(&self) -> Result<&crate::twilio::TwilioApi, ApiError> {
        self.twilio.as_ref().ok_or_else(|| ApiError::Disabled {
            code: "twilio_off",
            message: "this control plane does not talk to Twilio (TEMPOVOICE_TWILIO_API_BASE=off)".into(),
        })
    }
}

/// All routes with their OpenAPI document.
pub fn api() -> (Router<AppState>, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .merge(health::router())
        .merge(sessions::router())
        .merge(agents::router())
        .merge(deployments::router())
        .merge(calls::router())
        .merge(numbers::router())
        .merge(outbound::router())
        .merge(callbacks::router())
        .merge(admin::router())
        .split_for_parts();
    doc.info.title = "TempoVoice control plane".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Tenants manage their AI phone agents. Authenticate with `Authorization: Bearer <api key>`, or with a \
         session token opened with the key (`POST /v1/sessions`); admin routes take the operator's admin token. \
         Too many failed authentications from one address or for one key id are answered 429 with \
         `Retry-After`."
            .into(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |description: &str| {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(description.to_owned());
        SecurityScheme::Http(scheme)
    };
    components.add_security_scheme(
        "api_key",
        bearer("An API key `tvk_{keyId}_{secret}`, or a session token `tvs_…` opened with one"),
    );
    components.add_security_scheme("session_token", bearer("A session token `tvs_…` (POST /v1/sessions)"));
    components.add_security_scheme("admin_token", bearer("The operator's TEMPOVOICE_ADMIN_TOKEN"));
    document_failed_attempt_limit(&mut doc);
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

/// The rules agent drafts are validated by ([`agent_spec::openapi`]), and a create
/// body that names the secrets a new agent needs.
fn document_validation_rules(doc: &mut serde_json::Value) {
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(serde_json::Value::as_object_mut) {
        agent_spec::openapi::document_rules(schemas);
    }
    if let Some(body) = doc.pointer_mut("/paths/~1v1~1agents/post/requestBody/content/application~1json/schema") {
        *body = serde_json::json!({ "$ref": "#/components/schemas/NewAgentDraft" });
    }
}

/// Every authenticated operation may answer 429 (see [`auth_limit`]): said once
/// here rather than in each handler's annotation.
fn document_failed_attempt_limit(doc: &mut OpenApi) {
    let retry_after = HeaderBuilder::new()
        .schema(Object::with_type(Type::Integer))
        .description(Some("Seconds to wait before authenticating again"))
        .build();
    let too_many = ResponseBuilder::new()
        .description(
            "Too many failed authentications from this address or for this key id; retry after `Retry-After` \
             seconds",
        )
        .header("Retry-After", retry_after)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                operation.responses.responses.insert("429".into(), RefOr::T(too_many.clone()));
            }
        }
    }
}

/// The complete service: routes, fallbacks and layers, with state. `pages` (the
/// dashboard) is served beside the API; an unknown path then gets the dashboard's
/// 404 page when a browser asks for HTML outside `/v1/`, and a JSON error otherwise.
pub fn service(state: AppState, pages: Option<Router>) -> Router {
    let (router, doc) = api();
    let mut doc = serde_json::to_value(&doc).expect("OpenAPI document serializes");
    merge_flattened_schemas(&mut doc);
    document_validation_rules(&mut doc);
    let doc_json = health::OpenApiJson(Arc::new(doc.to_string()));
    let request_id = HeaderName::from_static("x-request-id");
    let has_pages = pages.is_some();
    // Set before `with_state`: it applies to the method routers registered so far.
    let metrics = Arc::clone(&state.metrics);
    let mut app = router.method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed }).with_state(state);
    if let Some(pages) = pages {
        app = app.merge(pages);
    }
    app.fallback(move |req: Request| async move {
        if has_pages && wants_page(&req) { dashboard::not_found() } else { ApiError::RouteNotFound.into_response() }
    })
    .layer(axum::Extension(doc_json))
    .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
    .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let metrics = Arc::clone(&metrics);
        async move {
            let response = next.run(req).await;
            metrics.response(response.status().as_u16());
            response
        }
    }))
    .layer(axum::middleware::from_fn(strict_transport_security))
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

/// `Strict-Transport-Security` on every response to a request the load balancer says
/// arrived over https (`X-Forwarded-Proto: https`): browsers then refuse plain http
/// to this host (and its subdomains) for two years. Responses that set it
/// themselves (the dashboard's) are left alone.
async fn strict_transport_security(request: Request, next: Next) -> Response {
    let https = forwarded_https(request.headers());
    let mut response = next.run(request).await;
    if https {
        response.headers_mut().entry(header::STRICT_TRANSPORT_SECURITY).or_insert(HeaderValue::from_static(HSTS));
    }
    response
}

/// The `Strict-Transport-Security` value: two years, subdomains included.
pub const HSTS: &str = dashboard::HSTS;

fn forwarded_https(headers: &axum::http::HeaderMap) -> bool {
    dashboard::forwarded_https(headers)
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
