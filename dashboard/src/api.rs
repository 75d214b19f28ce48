//! The control-plane REST API as the dashboard uses it: every page and form goes
//! through here with the signed-in tenant's session token (signing in exchanges the
//! API key for it), so the API decides what the tenant may see, whether input is
//! valid, and whether the session still stands.
//!
//! Each call carries the browser's address ([`Client`]), so the API counts failed
//! sign-ins against the browser, not against the dashboard.
//!
//! [`ControlPlane`] reaches the API over HTTP (the standalone `dashboard` binary) or
//! in process through the API's own router (when the control-plane binary mounts the
//! dashboard): the same handlers, authentication and validation either way.

use std::net::SocketAddr;
use std::time::Duration;

use agent_spec::api::{
    AgentPage, AgentResponse, CallPage, CallStats, Callback, CallbackList, DeploymentResponse, ErrorBody, NumberList,
    PlacedCall, RepointResponse,
};
use agent_spec::calls::{CallMetadata, Transcript};
use agent_spec::{AgentDraft, FieldError};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// Largest JSON body the dashboard reads from the API (a page of 200 agents with
/// large configurations stays well below this).
const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;

/// How the dashboard reaches the API.
#[derive(Clone)]
pub struct ControlPlane {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Http { base: url::Url, client: reqwest::Client },
    InProcess(axum::Router),
}

/// Why an API call did not give the dashboard what it asked for.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// The key is missing, wrong or revoked: the tenant must sign in again.
    #[error("the API key was refused")]
    Unauthorized,
    /// No such agent or call for this tenant.
    #[error("not found")]
    NotFound,
    /// The input was refused; every problem by field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The agent changed since it was read.
    #[error("{0}")]
    Conflict(String),
    /// Too many failed authentications from this address or for this key; retry
    /// after this many seconds.
    #[error("too many failed attempts: retry after {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    /// The API answered with another error; `message` is the API's own.
    #[error("the control plane answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    /// The API could not be reached or answered nonsense.
    #[error("the control plane could not be reached: {0}")]
    Transport(String),
}

impl ControlPlane {
    /// The API at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn http(base: url::Url) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client with timeouts builds");
        Self { transport: Transport::Http { base, client } }
    }

    /// The API's own router, called without a network hop.
    pub fn in_process(router: axum::Router) -> Self {
        Self { transport: Transport::InProcess(router) }
    }

    /// The API as the holder of `credential` (a session token, or an API key while
    /// signing in) sees it, called on behalf of `client`.
    pub fn tenant(&self, credential: SecretString, client: Client) -> TenantApi {
        TenantApi { control_plane: self.clone(), key: credential, client }
    }

    async fn send(&self, mut request: Request<Body>, client: &Client) -> Result<Response<Body>, ApiFailure> {
        match &self.transport {
            Transport::InProcess(router) => {
                // The API sees the browser's connection, as if it had been asked directly.
                if let Some(peer) = client.peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                if let Some(forwarded) = &client.forwarded_for {
                    request.headers_mut().insert(X_FORWARDED_FOR, forwarded.clone());
                }
                Ok(router.clone().oneshot(request).await.unwrap_or_else(|never| match never {}))
            }
            Transport::Http { base, client: http } => {
                // As a proxy does: the browser's address appended to `X-Forwarded-For`.
                if let Some(forwarded) = client.forwarded_for_appended() {
                    request.headers_mut().insert(X_FORWARDED_FOR, forwarded);
                }
                let (parts, body) = request.into_parts();
                let url = base
                    .join(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
                    .map_err(|e| ApiFailure::Transport(e.to_string()))?;
                let body = axum::body::to_bytes(body, MAX_JSON_BYTES)
                    .await
                    .map_err(|e| ApiFailure::Transport(e.to_string()))?;
                let response = http
                    .request(parts.method, url)
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| ApiFailure::Transport(e.to_string()))?;
                let mut out = Response::builder().status(response.status());
                if let Some(headers) = out.headers_mut() {
                    headers.extend(response.headers().clone());
                }
                let stream = response.bytes_stream().map_err(std::io::Error::other);
                out.body(Body::from_stream(stream)).map_err(|e| ApiFailure::Transport(e.to_string()))
            }
        }
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The browser a call is made for: its socket address as the dashboard sees it, and
/// the `X-Forwarded-For` its request came with (from a load balancer in front).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub peer: Option<SocketAddr>,
    pub forwarded_for: Option<HeaderValue>,
}

impl Client {
    /// The client of the request whose parts these are (the server must be served
    /// with `into_make_service_with_connect_info::<SocketAddr>` for the peer).
    pub fn of(parts: &Parts) -> Self {
        let forwarded: Vec<&str> =
            parts.headers.get_all(X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
        Self {
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            forwarded_for: (!forwarded.is_empty()).then(|| forwarded.join(", ")).and_then(|v| v.parse().ok()),
        }
    }

    /// `X-Forwarded-For` with the peer's address appended, for a call over HTTP.
    fn forwarded_for_appended(&self) -> Option<HeaderValue> {
        let peer = self.peer.map(|p| p.ip().to_string());
        let previous = self.forwarded_for.as_ref().and_then(|v| v.to_str().ok());
        let value = match (previous, peer) {
            (Some(previous), Some(peer)) => format!("{previous}, {peer}"),
            (Some(previous), None) => previous.to_owned(),
            (None, Some(peer)) => peer,
            (None, None) => return None,
        };
        HeaderValue::from_str(&value).ok()
    }
}

/// A session the API opened: the token is the credential of every later call.
pub struct OpenedSession {
    pub token: SecretString,
    pub key_id: String,
    pub expires_at: time::OffsetDateTime,
}

/// The API's `SessionResponse`, as far as the dashboard reads it.
#[derive(Deserialize)]
struct SessionResponse {
    session_token: String,
    key_id: String,
    #[serde(with = "agent_spec::api::timestamp")]
    expires_at: time::OffsetDateTime,
}

/// The API with one tenant's credential.
#[derive(Clone)]
pub struct TenantApi {
    control_plane: ControlPlane,
    key: SecretString,
    client: Client,
}

impl TenantApi {
    fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key.expose_secret()))
            .header(header::ACCEPT, "application/json")
    }

    /// Sends a request; any status other than 2xx becomes an [`ApiFailure`].
    async fn call(&self, request: Request<Body>) -> Result<Response<Body>, ApiFailure> {
        let response = self.control_plane.send(request, &self.client).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(60);
            return Err(ApiFailure::TooManyAttempts { retry_after });
        }
        let body = axum::body::to_bytes(response.into_body(), MAX_JSON_BYTES).await.unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
        Err(match (status, detail) {
            (StatusCode::UNAUTHORIZED, _) => ApiFailure::Unauthorized,
            (StatusCode::NOT_FOUND, _) => ApiFailure::NotFound,
            (StatusCode::UNPROCESSABLE_ENTITY, Some(d)) if !d.fields.is_empty() => ApiFailure::Invalid(d.fields),
            (StatusCode::CONFLICT, Some(d)) => ApiFailure::Conflict(d.message),
            (status, d) => ApiFailure::Status {
                status,
                message: d.map(|d| d.message).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
            },
        })
    }

    async fn json<T: DeserializeOwned>(&self, request: Request<Body>) -> Result<T, ApiFailure> {
        let response = self.call(request).await?;
        let body = axum::body::to_bytes(response.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|e| ApiFailure::Transport(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| ApiFailure::Transport(format!("unexpected response: {e}")))
    }

    fn get(&self, path: &str) -> Request<Body> {
        self.request(Method::GET, path).body(Body::empty()).expect("a GET request builds")
    }

    fn with_json(&self, builder: axum::http::request::Builder, body: &impl serde::Serialize) -> Request<Body> {
        let bytes = serde_json::to_vec(body).expect("API request bodies serialize");
        builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(bytes)).expect("a request builds")
    }

    /// Exchanges the API key this was made with for a session lasting `lifetime`.
    pub async fn open_session(&self, lifetime: time::Duration) -> Result<OpenedSession, ApiFailure> {
        let body = serde_json::json!({ "expires_in_secs": lifetime.whole_seconds() });
        let opened: SessionResponse =
            self.json(self.with_json(self.request(Method::POST, "/v1/sessions"), &body)).await?;
        Ok(OpenedSession {
            token: SecretString::from(opened.session_token),
            key_id: opened.key_id,
            expires_at: opened.expires_at,
        })
    }

    /// Ends the session whose token this was made with (signing out).
    pub async fn end_session(&self) -> Result<(), ApiFailure> {
        let request =
            self.request(Method::DELETE, "/v1/sessions/current").body(Body::empty()).expect("a DELETE request builds");
        self.call(request).await.map(drop)
    }

    /// One page of agents.
    pub async fn list_agents(&self, cursor: Option<&str>, limit: u32) -> Result<AgentPage, ApiFailure> {
        let mut path = format!("/v1/agents?limit={limit}");
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&encode(cursor));
        }
        self.json(self.get(&path)).await
    }

    pub async fn get_agent(&self, id: &str) -> Result<AgentResponse, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}", encode(id)))).await
    }

    pub async fn create_agent(&self, draft: &AgentDraft) -> Result<AgentResponse, ApiFailure> {
        self.json(self.with_json(self.request(Method::POST, "/v1/agents"), draft)).await
    }

    pub async fn update_agent(&self, id: &str, version: i64, draft: &AgentDraft) -> Result<AgentResponse, ApiFailure> {
        let builder = self
            .request(Method::PUT, &format!("/v1/agents/{}", encode(id)))
            .header(header::IF_MATCH, format!("\"{version}\""));
        self.json(self.with_json(builder, draft)).await
    }

    /// Deletes the agent if it is still `version`, tearing down its resources; with
    /// `purge`, its calls' transcripts and recordings too.
    pub async fn delete_agent(&self, id: &str, version: i64, purge: bool) -> Result<(), ApiFailure> {
        let request = self
            .request(Method::DELETE, &format!("/v1/agents/{}?purge_transcripts={purge}", encode(id)))
            .header(header::IF_MATCH, format!("\"{version}\""))
            .body(Body::empty())
            .expect("a DELETE request builds");
        self.call(request).await.map(drop)
    }

    pub async fn start_deployment(&self, id: &str) -> Result<DeploymentResponse, ApiFailure> {
        let request = self
            .request(Method::POST, &format!("/v1/agents/{}/deployments", encode(id)))
            .body(Body::empty())
            .expect("a POST request builds");
        self.json(request).await
    }

    pub async fn place_call(&self, id: &str, to: &str) -> Result<PlacedCall, ApiFailure> {
        let body = serde_json::json!({ "to": to });
        self.json(self.with_json(self.request(Method::POST, &format!("/v1/agents/{}/calls", encode(id))), &body)).await
    }

    pub async fn call_stats(&self, id: &str, days: u32) -> Result<CallStats, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}/calls/stats?days={days}", encode(id)))).await
    }

    pub async fn list_callbacks(&self, id: &str) -> Result<CallbackList, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}/callbacks", encode(id)))).await
    }

    pub async fn cancel_callback(&self, id: &str, callback: &str) -> Result<Callback, ApiFailure> {
        let request = self
            .request(Method::DELETE, &format!("/v1/agents/{}/callbacks/{}", encode(id), encode(callback)))
            .body(Body::empty())
            .expect("a DELETE request builds");
        self.json(request).await
    }

    pub async fn list_numbers(&self) -> Result<NumberList, ApiFailure> {
        self.json(self.get("/v1/numbers")).await
    }

    pub async fn repoint_number(&self, id: &str) -> Result<RepointResponse, ApiFailure> {
        let request = self
            .request(Method::POST, &format!("/v1/agents/{}/number", encode(id)))
            .body(Body::empty())
            .expect("a POST request builds");
        self.json(request).await
    }

    pub async fn get_deployment(&self, id: &str, deployment: &str) -> Result<DeploymentResponse, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}/deployments/{}", encode(id), encode(deployment)))).await
    }

    pub async fn list_calls(&self, id: &str, cursor: Option<&str>, limit: u32) -> Result<CallPage, ApiFailure> {
        let mut path = format!("/v1/agents/{}/calls?limit={limit}", encode(id));
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&encode(cursor));
        }
        self.json(self.get(&path)).await
    }

    pub async fn transcript(&self, id: &str, call: &str) -> Result<Transcript, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}/calls/{}/transcript", encode(id), encode(call)))).await
    }

    pub async fn metadata(&self, id: &str, call: &str) -> Result<CallMetadata, ApiFailure> {
        self.json(self.get(&format!("/v1/agents/{}/calls/{}/metadata", encode(id), encode(call)))).await
    }

    /// The recording as the API streams it (status, type and length included).
    pub async fn recording(&self, id: &str, call: &str) -> Result<Response<Body>, ApiFailure> {
        self.call(self.get(&format!("/v1/agents/{}/calls/{}/recording", encode(id), encode(call)))).await
    }
}

/// Percent-encodes one path segment or query value.
fn encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
