//! Extractors. Each rejects with an [`ApiError`], so a client never sees axum's
//! plain-text rejections: malformed JSON, wrong types and unknown fields are 422
//! with the field's path; a bad or missing key is 401; an id that cannot exist is 404.

use agent_spec::{AgentId, CallSid, DeploymentId, TenantId};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// A JSON body, parsed with the path of any failing field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid("body", "could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses JSON, naming the failing field (`telephony.call_phone_number`) or `body`
/// for malformed JSON.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object. (serde would otherwise read a JSON array
    // into a struct by position, and name fields as `[0]`.)
    if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (field, reason) = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ("body".to_owned(), format!("is not valid JSON: {inner}"))
            }
            _ if path == "." => ("body".to_owned(), without_position(&inner)),
            // serde's text can quote the offending value: under `secrets`, keep only
            // messages that name a key ("unknown field"), never one that shows a value.
            _ if (path == "secrets" || path.starts_with("secrets.")) && !is_unknown_field(&inner) => {
                let reason = if path == "secrets" {
                    "must be an object of secret names to strings (or null)"
                } else {
                    "must be a string, or null to remove it"
                };
                (path, reason.to_owned())
            }
            _ => (path, without_position(&inner)),
        };
        ApiError::invalid(field, reason)
    })?;
    de.end().map_err(|e| ApiError::invalid("body", format!("is not valid JSON: {e}")))?;
    Ok(value)
}

fn is_unknown_field(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("unknown field")
}

/// serde_json's message without its " at line L column C" suffix: the field path
/// already says where the problem is.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The tenant whose API key authenticated the request. Recorded on the request span.
pub struct Tenant(pub TenantId);

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization header: send Authorization: Bearer <api key>"))?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or(ApiError::Unauthorized("Authorization must be Bearer <api key>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("Authorization must be Bearer <api key>"));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let tenant = state
            .store
            .authenticate(token)
            .await
            .map_err(|e| ApiError::from_store(e, "api key"))?
            .ok_or(ApiError::Unauthorized("invalid or revoked API key"))?;
        tracing::Span::current().record("tenant_id", tenant.as_str());
        Ok(Tenant(tenant))
    }
}

/// The operator, authenticated with `TEMPOVOICE_ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.settings.admin_token.as_ref().ok_or(ApiError::AdminDisabled)?;
        let token = bearer_token(parts)?;
        // Compare digests in constant time: equal length, no early exit.
        let a = Sha256::digest(token.as_bytes());
        let b = Sha256::digest(expected.expose_secret().as_bytes());
        if bool::from(a.ct_eq(&b)) { Ok(Admin) } else { Err(ApiError::Unauthorized("invalid admin token")) }
    }
}

/// `{id}` of `/v1/agents/{id}`. An id that is not well-formed names no agent: 404.
pub struct AgentPath(pub AgentId);

impl<S: Send + Sync> FromRequestParts<S> for AgentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "id").await.ok_or(ApiError::NotFound("agent"))?;
        AgentId::parse(&raw).map(AgentPath).map_err(|_| ApiError::NotFound("agent"))
    }
}

/// One named parameter of the matched route.
async fn path_param<S: Send + Sync>(parts: &mut Parts, state: &S, name: &str) -> Option<String> {
    let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state).await.ok()?;
    params.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `{deploymentId}` of `/v1/agents/{id}/deployments/{deploymentId}`.
pub struct DeploymentPath(pub DeploymentId);

impl<S: Send + Sync> FromRequestParts<S> for DeploymentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "deploymentId").await.ok_or(ApiError::NotFound("deployment"))?;
        DeploymentId::parse(&raw).map(DeploymentPath).map_err(|_| ApiError::NotFound("deployment"))
    }
}

/// `{callSid}`: validated (`CA` + 32 hex digits) before it is used in a storage key.
pub struct CallPath(pub CallSid);

impl<S: Send + Sync> FromRequestParts<S> for CallPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "callSid").await.unwrap_or_default();
        CallSid::parse(&raw).map(CallPath).map_err(|e| ApiError::invalid("callSid", e.to_string()))
    }
}

/// `{tenantId}` of the admin routes.
pub struct TenantPath(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("tenant"))?;
        let raw = params.iter().find(|(k, _)| k == "tenantId").map(|(_, v)| v.as_str()).unwrap_or_default();
        TenantId::parse(raw).map(TenantPath).map_err(|_| ApiError::NotFound("tenant"))
    }
}

/// The version from `If-Match` (`"3"`, `W/"3"` or `3`), if the header was sent.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let invalid = || {
            ApiError::invalid(
                "If-Match",
                "must be the single ETag of the version you read, e.g. \"3\" (not * or a list)",
            )
        };
        let raw = value.to_str().map_err(|_| invalid())?.trim();
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        let raw = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw);
        raw.parse::<i64>().map(|v| IfMatch(Some(v))).map_err(|_| invalid())
    }
}

/// The ETag header value for a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        a: u32,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        b: String,
    }

    fn field_of(json: &str) -> (String, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Invalid(f)) => (f[0].field.clone(), f[0].reason.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of(r#"{"a":"x","inner":{"b":"y"}}"#).0, "a");
        assert_eq!(field_of(r#"{"a":1,"inner":{"b":2}}"#).0, "inner.b");
        let (field, reason) = field_of(r#"{"a":1,"inner":{"b":"y","c":1}}"#);
        assert!(field.starts_with("inner"), "{field}");
        assert!(reason.contains("unknown field `c`"), "{reason}");
        assert_eq!(field_of(r#"{"a":1,"#).0, "body");
        assert_eq!(field_of(r#"{"a":1,"inner":{"b":"y"}} trailing"#).0, "body");
        assert_eq!(field_of("[1]").0, "body");
    }
}
