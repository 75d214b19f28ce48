//! Extractors. Each rejects with an [`ApiError`], so a client never sees axum's
//! plain-text rejections: malformed JSON, wrong types and unknown fields are 422
//! with the field's path; a bad or missing key is 401 (429 after too many failed
//! attempts, see [`super::auth_limit`]); an id that cannot exist is 404.

use std::net::{IpAddr, SocketAddr};

use agent_spec::{AgentId, CallSid, DeploymentId, TenantId};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::auth_limit::ClientKey;
use super::error::ApiError;
use crate::store::api_keys::{self, Credential};
use crate::store::sessions;

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
    let parsed = serde_path_to_error::deserialize(&mut de);
    let parsed = match parsed {
        // JSON has one number type: `974.0` is the integer 974 to JSON Schema, and so
        // to every client generated from the document. serde reads it as a float and
        // refuses it for an integer field, so such a body is read again with its
        // whole floats as integers.
        Err(e) if e.inner().to_string().starts_with("invalid type: floating point") => {
            let mut value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::invalid("body", format!("is not valid JSON: {e}")))?;
            whole_floats_as_integers(&mut value);
            return serde_path_to_error::deserialize(value).map_err(body_error);
        }
        parsed => parsed,
    };
    let value = parsed.map_err(body_error)?;
    de.end().map_err(|e| ApiError::invalid("body", format!("is not valid JSON: {e}")))?;
    Ok(value)
}

/// Names the field a body failed on, or `body` for malformed JSON.
fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
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
}

/// Every float in `value` with no fractional part, within the range where floats
/// are exact (±2^53), becomes an integer.
fn whole_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                *value = if f < 0.0 { Value::from(f as i64) } else { Value::from(f as u64) };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
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

/// The tenant whose API key or session token authenticated the request. Recorded on
/// the request span.
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

/// The address failed authentications are counted against: the socket peer, or,
/// behind a trusted proxy (`TEMPOVOICE_TRUSTED_PROXY`), the rightmost
/// `X-Forwarded-For` entry — the one the proxy appended; entries left of it are
/// whatever the client sent.
pub fn client_address(parts: &Parts, trusted_proxy: bool) -> Option<IpAddr> {
    let forwarded = || {
        let last = parts.headers.get_all(X_FORWARDED_FOR).iter().next_back()?;
        let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
        // `1.2.3.4`, `[2001:db8::1]` or `[2001:db8::1]:443` / `1.2.3.4:443`.
        entry
            .parse::<IpAddr>()
            .ok()
            .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
            .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
    };
    let peer = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if trusted_proxy { forwarded().or_else(peer) } else { peer() }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Authenticates the request's bearer credential, counting a failure against its
/// client address and key id; answers 429 while either has no attempt left, before
/// the credential is looked at.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Credential, ApiError> {
    let token = bearer_token(parts)?;
    let client = ClientKey::of(client_address(parts, state.settings.auth_limits.trusted_proxy));
    let key_id = api_keys::key_id_of(token);
    let now = state.auth_limiter.now();
    if let Err(retry_after) = state.auth_limiter.check(client, key_id, now) {
        tracing::debug!(?client, key_id, "authentication refused: too many failed attempts");
        return Err(ApiError::TooManyFailedAttempts { retry_after });
    }
    match state.store.authenticate(token).await.map_err(|e| ApiError::from_store(e, "api key"))? {
        Some(credential) => {
            tracing::Span::current().record("tenant_id", credential.tenant.as_str());
            Ok(credential)
        }
        None => {
            let exhausted = state.auth_limiter.failed(client, key_id, now);
            tracing::info!(?client, key_id, "authentication failed");
            if exhausted.address || exhausted.key {
                tracing::warn!(
                    ?client,
                    key_id,
                    by_address = exhausted.address,
                    by_key = exhausted.key,
                    "failed-authentication limit reached: refusing further attempts for now"
                );
            }
            Err(ApiError::Unauthorized(if sessions::looks_like_session_token(token) {
                "invalid, expired or revoked session token: sign in again"
            } else {
                "invalid or revoked API key"
            }))
        }
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(|c| Tenant(c.tenant))
    }
}

/// A request authenticated with an API key itself (not a session token): what may
/// open a session.
pub struct KeyHolder {
    pub tenant: TenantId,
    pub key_id: String,
}

impl FromRequestParts<AppState> for KeyHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await? {
            Credential { tenant, key_id, session_id: None } => Ok(KeyHolder { tenant, key_id }),
            Credential { session_id: Some(_), .. } => {
                Err(ApiError::Forbidden("a session is opened with an API key, not with another session's token"))
            }
        }
    }
}

/// A request authenticated with a session token: the session it may end.
pub struct CurrentSession {
    pub tenant: TenantId,
    pub session_id: String,
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await? {
            Credential { tenant, session_id: Some(session_id), .. } => Ok(CurrentSession { tenant, session_id }),
            Credential { session_id: None, .. } => Err(ApiError::Forbidden(
                "this request is authenticated with an API key, not a session token: send the session's token \
                 to end it (an API key is revoked by the operator)",
            )),
        }
    }
}

/// The operator, authenticated with `TEMPOVOICE_ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.settings.admin_token.as_ref().ok_or(ApiError::AdminDisabled)?;
        let token = bearer_token(parts)?;
        let client = ClientKey::of(client_address(parts, state.settings.auth_limits.trusted_proxy));
        let now = state.auth_limiter.now();
        if let Err(retry_after) = state.auth_limiter.check(client, None, now) {
            return Err(ApiError::TooManyFailedAttempts { retry_after });
        }
        // Compare digests in constant time: equal length, no early exit.
        let a = Sha256::digest(token.as_bytes());
        let b = Sha256::digest(expected.expose_secret().as_bytes());
        if bool::from(a.ct_eq(&b)) {
            Ok(Admin)
        } else {
            state.auth_limiter.failed(client, None, now);
            tracing::warn!(?client, "admin authentication failed");
            Err(ApiError::Unauthorized("invalid admin token"))
        }
    }
}

/// `{id}` of `/v1/agents/{id}`. An id that is not well-formed names no agent: 404.
pub struct AgentPath(pub AgentId);

impl<S: Send + Sync> FromRequestParts<S> for AgentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "id").await.ok_or(ApiError::NotFound("agent"))?;
        exact(AgentId::parse(&raw), &raw).map(AgentPath).ok_or(ApiError::NotFound("agent"))
    }
}

/// An id exactly as written in the path (its parser trims; a path does not).
fn exact<T: AsRef<str>, E>(parsed: Result<T, E>, raw: &str) -> Option<T> {
    parsed.ok().filter(|id| id.as_ref() == raw)
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
        exact(DeploymentId::parse(&raw), &raw).map(DeploymentPath).ok_or(ApiError::NotFound("deployment"))
    }
}

/// `{callSid}`: validated (`CA` + 32 hex digits) before it is used in a storage key.
pub struct CallPath(pub CallSid);

impl<S: Send + Sync> FromRequestParts<S> for CallPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "callSid").await.unwrap_or_default();
        match CallSid::parse(&raw) {
            Ok(sid) if sid.as_str() == raw => Ok(CallPath(sid)),
            Ok(_) => Err(ApiError::invalid("callSid", "must not have spaces around it")),
            Err(e) => Err(ApiError::invalid("callSid", e.to_string())),
        }
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
        exact(TenantId::parse(raw), raw).map(TenantPath).ok_or(ApiError::NotFound("tenant"))
    }
}

/// What `If-Match` takes: one ETag, `"3"` or `W/"3"`, or the bare version `3`.
pub const IF_MATCH_PATTERN: &str = r#"^(?:(?:W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#;

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
        // Exactly IF_MATCH_PATTERN.
        let tag = raw.strip_prefix("W/").unwrap_or(raw);
        let digits = match tag.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(quoted) => quoted,
            None if tag.len() == raw.len() => raw,
            None => return Err(invalid()),
        };
        if !(1..=18).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits.parse::<i64>().map(|v| IfMatch(Some(v))).map_err(|_| invalid())
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

    fn parts(forwarded: &[&str], peer: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().uri("/v1/agents");
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        }
        parts
    }

    #[test]
    fn the_client_address_is_the_peer_unless_a_trusted_proxy_names_it() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let spoofed = parts(&["198.51.100.1"], Some("10.0.0.5:4000"));
        assert_eq!(client_address(&spoofed, false), ip("10.0.0.5"), "X-Forwarded-For ignored without a proxy");
        // Behind the proxy: the rightmost entry, the one it appended.
        let chained = parts(&["198.51.100.1, 203.0.113.9"], Some("10.0.0.5:4000"));
        assert_eq!(client_address(&chained, true), ip("203.0.113.9"));
        let two_headers = parts(&["198.51.100.1", "203.0.113.9"], Some("10.0.0.5:4000"));
        assert_eq!(client_address(&two_headers, true), ip("203.0.113.9"));
        assert_eq!(client_address(&parts(&["[2001:db8::1]:443"], None), true), ip("2001:db8::1"));
        assert_eq!(client_address(&parts(&["nonsense"], Some("10.0.0.5:1")), true), ip("10.0.0.5"));
        assert_eq!(client_address(&parts(&[], None), false), None);
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

    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        n: u32,
        list: Vec<i64>,
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_refused() {
        let counts: Counts = parse_json(br#"{"n": 974.0, "list": [-2.0, 1e3, 5]}"#).unwrap();
        assert_eq!((counts.n, counts.list), (974, vec![-2, 1000, 5]));
        for (body, field) in [(r#"{"n": 9.5, "list": []}"#, "n"), (r#"{"n": 1, "list": [1e300]}"#, "list[0]")] {
            match parse_json::<Counts>(body.as_bytes()) {
                Err(ApiError::Invalid(f)) => assert_eq!(f[0].field, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
