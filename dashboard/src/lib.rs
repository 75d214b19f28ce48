//! The TempoVoice dashboard: a server-rendered Leptos web UI where a tenant creates
//! agents, watches them deploy, copies their Twilio voice URL and reads their calls.
//!
//! It is a client of the control-plane REST API: every page and form calls the API
//! with the signed-in tenant's key, so authorization and validation live in the API
//! alone. Pages are plain HTML and forms are HTML forms posting to Leptos server
//! functions, so everything works without JavaScript; one small script adds the copy
//! button.
//!
//! Modules, in the order a request meets them:
//!
//! - [`router`] (here): the axum routes — pages (rendered by [`app`]), server
//!   functions under `/api/`, the stylesheet and script, and the recording proxy —
//!   with the origin check on posts and the security headers.
//! - [`session`]: the sealed session cookie (API key, CSRF token, expiry).
//! - [`app`]: the pages ([`app::pages`]) and the server functions behind the forms
//!   ([`app::actions`]).
//! - [`form`]: the agent form as posted, and its translation to the API's `AgentDraft`.
//! - [`flash`]: messages and kept input carried across a post-redirect.
//! - [`api`]: the control-plane API, over HTTP or in process.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
mod assets;
pub(crate) mod fields;
pub mod flash;
pub mod form;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use secrecy::SecretString;

use crate::api::{ApiFailure, ControlPlane};
use crate::flash::FlashStore;
use crate::session::{Session, SessionKey};

/// How long a sign-in lasts unless configured.
pub const DEFAULT_SESSION_HOURS: i64 = 12;

/// Everything the pages and server functions share.
#[derive(Clone)]
pub struct Dashboard(Arc<DashboardInner>);

pub struct DashboardInner {
    pub api: ControlPlane,
    pub sessions: SessionKey,
    pub flash: FlashStore,
    pub session_lifetime: time::Duration,
    /// Mark the session cookie `Secure` (also done for requests forwarded as https).
    pub secure_cookies: bool,
}

impl std::ops::Deref for Dashboard {
    type Target = DashboardInner;
    fn deref(&self) -> &DashboardInner {
        &self.0
    }
}

/// The dashboard's settings, shared by its binary and the control plane's.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// Base64 of 32 bytes; without it a random key is made and sessions end with the process.
    pub session_key: Option<SecretString>,
    pub session_lifetime: time::Duration,
    pub secure_cookies: bool,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            session_key: None,
            session_lifetime: time::Duration::hours(DEFAULT_SESSION_HOURS),
            secure_cookies: false,
        }
    }
}

impl Dashboard {
    pub fn new(api: ControlPlane, settings: &DashboardSettings) -> Result<Self, session::BadSessionKey> {
        let sessions = match &settings.session_key {
            Some(key) => SessionKey::from_base64(key)?,
            None => {
                tracing::info!("no dashboard session key set: sessions end when this process stops");
                SessionKey::generate()
            }
        };
        Ok(Self(Arc::new(DashboardInner {
            api,
            sessions,
            flash: FlashStore::default(),
            session_lifetime: settings.session_lifetime,
            secure_cookies: settings.secure_cookies,
        })))
    }

    /// The session of a request, if its cookie holds a valid, unexpired one.
    pub fn session(&self, headers: &axum::http::HeaderMap) -> Option<Session> {
        session::cookie_value(headers).and_then(|v| self.sessions.open(v, time::OffsetDateTime::now_utc()))
    }

    /// Whether the session cookie should be `Secure` for this request.
    pub fn secure(&self, headers: &axum::http::HeaderMap) -> bool {
        self.secure_cookies
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    }
}

#[derive(Clone, FromRef)]
struct RouterState {
    leptos_options: LeptosOptions,
    dashboard: Dashboard,
}

/// The dashboard's routes, to serve alone or merge into another router at `/`. It
/// sets no fallback: the host decides what an unknown path gets ([`not_found`] for
/// pages).
pub fn router(dashboard: Dashboard) -> Router {
    let leptos_options = LeptosOptions::builder().output_name("dashboard").build();
    let state = RouterState { leptos_options: leptos_options.clone(), dashboard: dashboard.clone() };
    let routes = generate_route_list(app::App);
    Router::new()
        .route(assets::CSS_PATH, get(assets::stylesheet))
        .route(assets::JS_PATH, get(assets::script))
        .route("/agents/{id}/calls/{sid}/recording.wav", get(recording))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(dashboard.clone()),
            move || app::shell(leptos_options.clone()),
        )
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The page for a path the dashboard does not have.
pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], assets::NOT_FOUND_PAGE)
        .into_response()
}

/// Refuses a post whose `Origin` is another site (a cross-site form), on top of the
/// CSRF token every form carries and the `SameSite` cookie.
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if let (Some(origin), Some(host)) = (origin, host) {
            let origin_host = url::Url::parse(origin).ok().map(|u| match u.port() {
                Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
                None => u.host_str().unwrap_or_default().to_owned(),
            });
            if origin_host.as_deref() != Some(host) {
                tracing::warn!(origin, host, "cross-origin post refused");
                return (StatusCode::FORBIDDEN, "cross-origin form posts are refused").into_response();
            }
        }
    }
    next.run(request).await
}

/// Headers every dashboard response carries: pages hold a tenant's data, so they are
/// not cached and not framed.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = HeaderValue::from_str(&content_security_policy(None)).expect("the policy is a valid header");
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if !is_asset {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Scripts and styles come from the dashboard itself only. Leptos ends each page
/// with small inline scripts carrying the response's nonce; the page allows that nonce.
pub(crate) fn content_security_policy(nonce: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce}; style-src 'self'; img-src 'self' data:; media-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// `GET /agents/{id}/calls/{sid}/recording.wav`: the call's recording, streamed from
/// the API with the session's key, for the page's audio player.
async fn recording(
    State(dashboard): State<Dashboard>,
    Path((id, sid)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(session) = dashboard.session(&headers) else {
        return (StatusCode::UNAUTHORIZED, "sign in to listen to recordings").into_response();
    };
    match dashboard.api.tenant(session.api_key).recording(&id, &sid).await {
        Ok(upstream) => {
            let (parts, body) = upstream.into_parts();
            let mut response = Response::new(body);
            for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
                if let Some(value) = parts.headers.get(&name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            response
        }
        Err(ApiFailure::Unauthorized) => (StatusCode::UNAUTHORIZED, "sign in again").into_response(),
        Err(ApiFailure::NotFound) => (StatusCode::NOT_FOUND, "no recording of this call").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "recording could not be read");
            (StatusCode::BAD_GATEWAY, "the recording could not be read").into_response()
        }
    }
}
