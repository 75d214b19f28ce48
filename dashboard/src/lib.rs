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
//!   with the origin check on posts, the body limit and the security headers
//!   (HSTS when served over https).
//! - [`session`]: the sealed session cookie (the API's session token, CSRF token,
//!   expiry) and the sign-in form's own token.
//! - [`app`]: the pages ([`app::pages`]) and the server functions behind the forms
//!   ([`app::actions`]).
//! - [`form`]: the agent form as posted, and its translation to the API's `AgentDraft`.
//! - [`flash`]: messages and kept input carried across a post-redirect.
//! - [`api`]: the control-plane API, over HTTP or in process.
//! - [`standalone`]: the dashboard served alone (the `dashboard` binary): its
//!   settings and its `App`, started and stopped like every TempoVoice server.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
mod assets;
pub(crate) mod fields;
pub mod flash;
pub mod form;
pub mod session;
pub mod standalone;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::api::{ApiFailure, Client, ControlPlane};
use crate::flash::FlashStore;
use crate::session::{Session, SessionKey, SignInToken};

/// How long a sign-in lasts unless configured.
pub const DEFAULT_SESSION_HOURS: i64 = 12;

/// The largest form post accepted (the agent form with the longest prompt and
/// documents the API takes is well below it); a larger one is refused with 413
/// before it is read into memory.
pub const MAX_POST_BYTES: usize = 512 * 1024;

/// `Strict-Transport-Security` for responses served over https: two years,
/// subdomains included.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Whether the load balancer says the request arrived over https
/// (`X-Forwarded-Proto: https`; of a list, the first: the client's hop).
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Whether the request's `Host` is a loopback name or address (`localhost`,
/// `*.localhost`, 127.0.0.0/8, `[::1]`), port aside.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    match url::Url::parse(&format!("http://{host}/")).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Everything the pages and server functions share.
#[derive(Clone)]
pub struct Dashboard(Arc<DashboardInner>);

pub struct DashboardInner {
    pub api: ControlPlane,
    pub sessions: SessionKey,
    pub flash: FlashStore,
    pub session_lifetime: time::Duration,
    /// Users reach the dashboard over https only (`TEMPOVOICE_DASHBOARD_SECURE_COOKIES`).
    pub https_only: bool,
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
    /// Users reach the dashboard over https only (behind TLS termination): every
    /// response carries `Strict-Transport-Security`, posts must come from an https
    /// origin, and cookies are `Secure` even on a loopback host. Without it, a request
    /// forwarded with `X-Forwarded-Proto: https` counts as https.
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

impl DashboardSettings {
    /// Reads `TEMPOVOICE_DASHBOARD_SESSION_KEY`, `TEMPOVOICE_DASHBOARD_SESSION_HOURS`
    /// (1–720) and `TEMPOVOICE_DASHBOARD_SECURE_COOKIES` (`true` or `false`), for the
    /// dashboard's binary and the control plane's alike; errors go to `reader`.
    pub fn read(reader: &mut serving::Settings<'_>) -> Self {
        let session_key = reader.get("TEMPOVOICE_DASHBOARD_SESSION_KEY").map(SecretString::from);
        if let Some(Err(e)) = session_key.as_ref().map(SessionKey::from_base64) {
            reader.error(format!("TEMPOVOICE_DASHBOARD_SESSION_KEY: {e}; generate one with: openssl rand -base64 32"));
        }
        let hours = reader.number("TEMPOVOICE_DASHBOARD_SESSION_HOURS", DEFAULT_SESSION_HOURS as u64, 1..=720);
        let secure_cookies = reader.switch("TEMPOVOICE_DASHBOARD_SECURE_COOKIES", "true", "false", false);
        Self { session_key, session_lifetime: time::Duration::hours(hours as i64), secure_cookies }
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
            https_only: settings.secure_cookies,
        })))
    }

    /// The session of a request, if its cookie holds a valid, unexpired one.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        session::cookie_value(headers, session::COOKIE, self.secure_cookies(headers))
            .and_then(|v| self.sessions.open(v, OffsetDateTime::now_utc()))
    }

    /// The sign-in form's token of a request, if its cookie holds a valid one.
    pub fn sign_in_token(&self, headers: &HeaderMap) -> Option<SignInToken> {
        session::cookie_value(headers, session::SIGN_IN_COOKIE, self.secure_cookies(headers))
            .and_then(|v| self.sessions.open_sign_in(v, OffsetDateTime::now_utc()))
    }

    /// Whether the request arrived over https: configured so, or forwarded as such.
    pub fn https(&self, headers: &HeaderMap) -> bool {
        self.https_only || forwarded_https(headers)
    }

    /// Whether this request's cookies are `Secure` with the `__Host-` prefix: always,
    /// except on plain http to a loopback host (local development, where a browser
    /// would drop a `Secure` cookie).
    pub fn secure_cookies(&self, headers: &HeaderMap) -> bool {
        self.https(headers) || !loopback_host(headers)
    }

    /// Whether a post says it comes from this dashboard: its `Origin` (or, when a
    /// browser sent none, its `Referer`) has this request's host and port, and the
    /// https scheme when the dashboard is served over https. A post saying neither
    /// is refused: browsers send `Origin` with every form post.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).ok_or("the request names no host")?;
        let claimed = match headers.get(header::ORIGIN) {
            Some(origin) => origin.to_str().ok().filter(|o| *o != "null").ok_or("its Origin is not a site")?,
            None => headers
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .ok_or("it says neither where it comes from (no Origin or Referer)")?,
        };
        let claimed = url::Url::parse(claimed).map_err(|_| "its Origin or Referer is not a URL")?;
        match claimed.scheme() {
            "https" => {}
            "http" if !self.https(headers) => {}
            _ => return Err("it comes from another origin (not https)"),
        }
        let expected = url::Url::parse(&format!("{}://{host}/", claimed.scheme()))
            .map_err(|_| "the request's Host is not a host name")?;
        let same =
            claimed.host() == expected.host() && claimed.port_or_known_default() == expected.port_or_known_default();
        if same { Ok(()) } else { Err("it comes from another site") }
    }

    /// The API as the holder of `credential`, on behalf of the browser of `parts`.
    pub fn api_for(&self, credential: SecretString, parts: &axum::http::request::Parts) -> api::TenantApi {
        self.api.tenant(credential, Client::of(parts))
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
    let dashboard_for_layers = dashboard.clone();
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
        .layer(axum::middleware::from_fn_with_state(dashboard_for_layers.clone(), same_origin_posts))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_POST_BYTES))
        .layer(axum::middleware::from_fn_with_state(dashboard_for_layers, security_headers))
        .with_state(state)
}

/// The page for a path the dashboard does not have.
pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], assets::NOT_FOUND_PAGE)
        .into_response()
}

/// Refuses a post that does not say it comes from this dashboard (see
/// [`Dashboard::check_origin`]), on top of the CSRF token every form carries (the
/// sign-in form's included) and the `SameSite` cookie.
async fn same_origin_posts(State(dashboard): State<Dashboard>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        if let Err(why) = dashboard.check_origin(request.headers()) {
            let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or_default();
            tracing::warn!(path = %request.uri().path(), origin, why, "form post refused");
            return (StatusCode::FORBIDDEN, format!("This form post was refused: {why}.")).into_response();
        }
    }
    next.run(request).await
}

/// Headers every dashboard response carries: pages hold a tenant's data, so they are
/// not cached and not framed; over https, browsers are told to use nothing else.
async fn security_headers(State(dashboard): State<Dashboard>, request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let https = dashboard.https(request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if https {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
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
/// the API with the session's token, for the page's audio player.
async fn recording(
    State(dashboard): State<Dashboard>,
    Path((id, sid)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let Some(session) = dashboard.session(&parts.headers) else {
        return (StatusCode::UNAUTHORIZED, "sign in to listen to recordings").into_response();
    };
    match dashboard.api_for(session.token, &parts).recording(&id, &sid).await {
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
        Err(ApiFailure::TooManyAttempts { retry_after }) => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after.to_string())], "try again later")
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "recording could not be read");
            (StatusCode::BAD_GATEWAY, "the recording could not be read").into_response()
        }
    }
}
