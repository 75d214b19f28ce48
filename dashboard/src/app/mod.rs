//! The Leptos application: the route table ([`App`]), the document shell, the page
//! frame every page shares, and the request context pages and server functions read.
//!
//! Every route renders with [`SsrMode::Async`]: the page's data is loaded from the
//! API first, then the complete HTML is sent with the right status (a redirect to
//! sign in, 404 for another tenant's agent), so nothing depends on JavaScript.

pub mod actions;
pub mod pages;
pub(crate) mod view;

use agent_spec::FieldError;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::Dashboard;
use crate::api::{ApiFailure, TenantApi};
use crate::flash::Flash;
use crate::session::{self, Session};

/// The document around every page.
pub fn shell(_options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <App/>
    }
}

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=|| "Page not found.">
                <Route path=path!("/") view=pages::AgentsPage ssr=SsrMode::Async/>
                <Route path=path!("/sign-in") view=pages::SignInPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/new") view=pages::NewAgentPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/:id") view=pages::AgentPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/:id/edit") view=pages::EditAgentPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/:id/delete") view=pages::DeleteAgentPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/:id/calls") view=pages::CallsPage ssr=SsrMode::Async/>
                <Route path=path!("/agents/:id/calls/:sid") view=pages::CallPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// What a page or server function knows of its request.
#[derive(Clone)]
pub(crate) struct RequestContext {
    pub dashboard: Dashboard,
    pub parts: Parts,
    pub response: ResponseOptions,
    pub session: Option<Session>,
    /// The nonce of this response's inline scripts.
    pub nonce: Option<String>,
}

impl RequestContext {
    pub fn current() -> Self {
        let dashboard = expect_context::<Dashboard>();
        let parts = expect_context::<Parts>();
        let response = expect_context::<ResponseOptions>();
        let session = dashboard.session(&parts.headers);
        let nonce = leptos::nonce::use_nonce().map(|n| n.to_string());
        Self { dashboard, parts, response, session, nonce }
    }

    /// A query parameter of the request, if present and not blank.
    pub fn query(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.parts.uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.trim().is_empty())
    }

    /// The API as the signed-in tenant sees it.
    pub fn api(&self) -> Result<TenantApi, PageError> {
        let session = self.session.as_ref().ok_or(PageError::SignIn)?;
        Ok(self.dashboard.api.tenant(session.api_key.clone()))
    }

    /// The flash named by `?flash=`, if it is this session's.
    pub fn flash(&self) -> Option<Flash> {
        let session = self.session.as_ref()?;
        self.dashboard.flash.get(&session.csrf, &self.query("flash")?)
    }

    /// Answers with a redirect to `to` (a path on this site).
    pub fn redirect(&self, to: &str) {
        self.response.set_status(StatusCode::FOUND);
        if let Ok(location) = HeaderValue::from_str(to) {
            self.response.insert_header(header::LOCATION, location);
        }
    }

    pub fn set_cookie(&self, value: String) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            self.response.insert_header(header::SET_COOKIE, value);
        }
    }

    /// Ends the session in the browser.
    pub fn clear_session(&self) {
        self.set_cookie(session::clear_cookie(self.dashboard.secure(&self.parts.headers)));
    }

    /// Stores `flash` for this session and returns `path` with it attached.
    pub fn with_flash(&self, path: &str, flash: Flash) -> String {
        match &self.session {
            Some(session) => {
                let id = self.dashboard.flash.put(&session.csrf, flash);
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}flash={id}")
            }
            None => path.to_owned(),
        }
    }

    /// The path and query of this request (where to come back to after signing in).
    pub fn here(&self) -> String {
        self.parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into())
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No session, or the API refused its key: sign in (again).
    SignIn,
    /// No such thing for this tenant (another tenant's agent included).
    NotFound(&'static str),
    /// The API failed.
    Api(ApiFailure),
}

impl From<ApiFailure> for PageError {
    fn from(e: ApiFailure) -> Self {
        match e {
            ApiFailure::Unauthorized => Self::SignIn,
            ApiFailure::NotFound => Self::NotFound("page"),
            e => Self::Api(e),
        }
    }
}

/// Field errors for the input at `path` (and, for lists, its items `path[i]…`).
pub(crate) fn errors_for(errors: &[FieldError], path: &str) -> Vec<String> {
    errors
        .iter()
        .filter(|e| e.field == path)
        .map(|e| e.reason.clone())
        .chain(errors.iter().filter_map(|e| {
            let rest = e.field.strip_prefix(path)?.strip_prefix('[')?;
            let (index, _) = rest.split_once(']')?;
            let n: usize = index.parse().ok()?;
            Some(format!("line {}: {}", n + 1, e.reason))
        }))
        .collect()
}
