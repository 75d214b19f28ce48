//! [`ApiError`]: every error response of the API, as JSON [`ErrorBody`]. 4xx bodies
//! say exactly what was wrong with the request; 5xx bodies are generic and the cause
//! is logged once, here.

use agent_spec::api::{ErrorBody, ErrorDetail};
use agent_spec::{FieldError, ValidationErrors};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("the admin API is disabled")]
    AdminDisabled,
    /// Authenticated, but this credential may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too many failed authentications from this client address or for this key id.
    #[error("too many failed authentication attempts")]
    TooManyFailedAttempts { retry_after: std::time::Duration },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("version conflict")]
    VersionConflict { current: i64 },
    #[error("precondition required")]
    PreconditionRequired,
    #[error("{0}")]
    OverQuota(crate::store::quotas::OverQuota),
    #[error("deployments are turned off")]
    DeployerOff,
    /// The request cannot be carried out in the resource's present state; `code`
    /// says which state (`not_deployed`, `number_in_use`, …).
    #[error("{message}")]
    Conflict { code: String, message: String },
    /// A service outside AWS (Twilio) failed or could not be reached; the message is
    /// the tenant's to read (it is about their own account).
    #[error("{message}")]
    Dependency { code: &'static str, message: String },
    /// The tenant or agent has its most live outbound calls.
    #[error("{0}")]
    TooManyCalls(String),
    /// A feature this control plane was configured without.
    #[error("{message}")]
    Disabled { code: &'static str, message: String },
    #[error("AWS request failed")]
    Upstream(#[source] anyhow::Error),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError { field: field.into(), reason: reason.into() }])
    }

    /// Maps a store error; `what` names the resource for a 404 ("agent", "tenant").
    pub fn from_store(e: StoreError, what: &'static str) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound(what),
            StoreError::VersionConflict { current } => Self::VersionConflict { current },
            StoreError::OverQuota(over) => Self::OverQuota(over),
            // Pool exhausted or closed, connection lost: temporary, worth a retry.
            StoreError::Database(e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))) => {
                Self::Unavailable(e.into())
            }
            other => Self::Internal(other.into()),
        }
    }

    fn parts(&self) -> (StatusCode, std::borrow::Cow<'static, str>, String) {
        let (status, code, message) = match self {
            Self::Conflict { code, message } => {
                return (StatusCode::CONFLICT, code.clone().into(), message.clone());
            }
            Self::Dependency { code, message } => (StatusCode::BAD_GATEWAY, *code, message.clone()),
            Self::Disabled { code, message } => (StatusCode::SERVICE_UNAVAILABLE, *code, message.clone()),
            Self::TooManyCalls(message) => (StatusCode::TOO_MANY_REQUESTS, "too_many_calls", message.clone()),
            Self::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                match fields.len() {
                    1 => format!("{}: {}", fields[0].field, fields[0].reason),
                    n => format!("{n} fields are invalid"),
                },
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than {} bytes", super::BODY_LIMIT_BYTES),
            ),
            Self::Unauthorized(why) => (StatusCode::UNAUTHORIZED, "unauthorized", (*why).into()),
            Self::AdminDisabled => (
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the admin API is disabled: set TEMPOVOICE_ADMIN_TOKEN to enable it".into(),
            ),
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", (*why).into()),
            Self::TooManyFailedAttempts { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_attempts",
                format!(
                    "too many failed authentication attempts from this address or for this key; \
                     retry after {} s",
                    retry_after_secs(*retry_after)
                ),
            ),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("{what} not found")),
            Self::RouteNotFound => {
                (StatusCode::NOT_FOUND, "route_not_found", "no such route; see /v1/openapi.json".into())
            }
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method; see /v1/openapi.json".into(),
            ),
            Self::VersionConflict { current } => (
                StatusCode::CONFLICT,
                "version_conflict",
                format!(
                    "the agent was changed by someone else: its current version is {current}; \
                     read it again, reapply your change and send If-Match: \"{current}\""
                ),
            ),
            Self::PreconditionRequired => (
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "send If-Match with the agent's ETag (its version, e.g. If-Match: \"3\") so that \
                 concurrent changes are not overwritten"
                    .into(),
            ),
            Self::OverQuota(over) => (StatusCode::UNPROCESSABLE_ENTITY, "quota_exceeded", over.to_string()),
            Self::DeployerOff => (
                StatusCode::SERVICE_UNAVAILABLE,
                "deployer_off",
                "this control plane does not deploy agents or read their calls (TEMPOVOICE_DEPLOYER=off)".into(),
            ),
            Self::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "upstream",
                "AWS did not answer as expected; retry shortly (the cause has been logged)".into(),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is temporarily unavailable; retry shortly".into(),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side; it has been logged".into(),
            ),
        };
        (status, code.into(), message)
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::Invalid(e.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        match &self {
            Self::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "request failed"),
            Self::Unavailable(cause) => tracing::warn!(error = format!("{cause:#}"), "dependency unavailable"),
            Self::Upstream(cause) => tracing::warn!(error = format!("{cause:#}"), "AWS request failed"),
            _ => {}
        }
        let retry_after = match &self {
            Self::TooManyFailedAttempts { retry_after } => Some(retry_after_secs(*retry_after)),
            _ => None,
        };
        let fields = match self {
            Self::Invalid(fields) => fields,
            // Named like an invalid field, so a form shows it where it belongs.
            Self::OverQuota(over) => vec![FieldError { field: over.field.into(), reason: over.to_string() }],
            _ => Vec::new(),
        };
        let body = ErrorBody { error: ErrorDetail { code: code.into(), message, fields } };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After` has no fractions).
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}
