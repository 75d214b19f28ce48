//! The Leptos application: the route table ([`App`]), the document shell, the page
//! frame every page shares, and the request context pages and server functions read.
//!
//! Every route renders with [`SsrMode::Async`]: the page's data is loaded from the
//! API first, then the complete HTML is sent with the right status (a redirect to
//! sign in, 404 for another tenant's agent), so nothing depends on JavaScript.

pub mod actions;
pub mod chart;
pub mod pages;
pub(crate) mod view;

use agent_spec::{AgentId, CallSid, FieldError};
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

/// The pages, as [`App`] routes them (a test checks the two agree): where the
/// browser may be sent after signing in. `/sign-in` is left out on purpose.
pub(crate) const PAGES: &[&str] = &[
    "/",
    "/agents/new",
    "/agents/:id",
    "/agents/:id/edit",
    "/agents/:id/delete",
    "/agents/:id/calls",
    "/agents/:id/calls/:sid",
    "/numbers",
];

/// Where to send the browser after signing in: `next` when its path is one of
/// [`PAGES`] — each literal segment equal, `:id` a well-formed agent id and `:sid`
/// a call SID, exactly (nothing decoded, trimmed or normalized first) — rebuilt
/// from the parsed parts with its query re-encoded; `/` otherwise. So
/// `//evil.example`, `/\evil.example`, `/%09/evil.example`, `https:evil.example`
/// and their kin all end at `/`.
pub(crate) fn after_sign_in(next: &str) -> String {
    let next = next.split('#').next().unwrap_or_default();
    let (path, query) = match next.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (next, None),
    };
    let Some(segments) = path.strip_prefix('/').map(|p| p.split('/').collect::<Vec<_>>()) else {
        return "/".into();
    };
    let known = PAGES.iter().any(|page| {
        let pattern: Vec<&str> = page[1..].split('/').collect();
        pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(want, got)| match *want {
                ":id" => AgentId::parse(got).is_ok_and(|id| id.as_str() == *got),
                ":sid" => CallSid::parse(got).is_ok_and(|sid| sid.as_str() == *got),
                literal => literal == *got,
            })
    });
    if !known {
        return "/".into();
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()))
        .finish();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
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
                <Route path=path!("/numbers") view=pages::NumbersPage ssr=SsrMode::Async/>
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
        Ok(self.api_for(session))
    }

    /// The API with `session`'s token, on behalf of this request's browser.
    pub fn api_for(&self, session: &Session) -> TenantApi {
        self.dashboard.api_for(session.token.clone(), &self.parts)
    }

    /// Whether this response's cookies are `Secure` with the `__Host-` prefix.
    pub fn secure_cookies(&self) -> bool {
        self.dashboard.secure_cookies(&self.parts.headers)
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

    /// Adds a `Set-Cookie` header (one per cookie).
    pub fn set_cookie(&self, value: String) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            self.response.append_header(header::SET_COOKIE, value);
        }
    }

    /// Removes the session cookie from the browser.
    pub fn clear_session(&self) {
        self.set_cookie(session::clear_cookie(session::COOKIE, self.secure_cookies()));
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
            ApiFailure::TooManyAttempts { .. } => Self::Api(e),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_the_browser_goes_to_a_page_of_the_dashboard_only() {
        let agent = "k3v7q2mxa2bd4fhe";
        let call = "CA0123456789abcdef0123456789abcdef";
        for good in [
            "/".to_owned(),
            "/agents/new".to_owned(),
            format!("/agents/{agent}"),
            format!("/agents/{agent}/edit"),
            format!("/agents/{agent}/delete"),
            format!("/agents/{agent}/calls"),
            format!("/agents/{agent}/calls/{call}"),
        ] {
            assert_eq!(after_sign_in(&good), good);
        }
        assert_eq!(after_sign_in("/?q=front%20desk&cursor=abc"), "/?q=front+desk&cursor=abc");
        assert_eq!(after_sign_in(&format!("/agents/{agent}#top")), format!("/agents/{agent}"));
        assert_eq!(after_sign_in("/?q=%0d%0aSet-Cookie:x"), "/?q=%0D%0ASet-Cookie%3Ax", "the query is re-encoded");
        for attack in [
            "/%09/evil.com",
            "/%09/evil.com/",
            "/\t/evil.com",
            "/\t//evil.com",
            "/\n/evil.com",
            "/\r\n/evil.com",
            "//evil.com",
            "///evil.com",
            "//evil.com/agents/new",
            "/\\evil.com",
            "\\/evil.com",
            "/\\/evil.com",
            "/%5Cevil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "https:evil.com",
            "https://evil.com",
            "http:/evil.com",
            "evil.com",
            "javascript:alert(1)",
            "/sign-in",
            "/agents/new/../../evil.com",
            "/agents/./new",
            "/agents/ k3v7q2mxa2bd4fhe",
            "/agents/k3v7q2mxa2bd4fhe%20",
            "/agents/K3V7Q2MXA2BD4FHE",
            "/agents/%6b3v7q2mxa2bd4fhe",
            "/agents/k3v7q2mxa2bd4fhe/calls/evil.com",
            "/api/sign_out",
            "/assets/dashboard.css",
            "",
            " /",
            "/ ",
        ] {
            assert_eq!(after_sign_in(attack), "/", "{attack:?}");
        }
    }

    #[test]
    fn the_allowed_destinations_are_the_routers_pages() {
        let routed: std::collections::BTreeSet<String> = leptos_axum::generate_route_list(App)
            .iter()
            .map(|r| r.path().replace('{', ":").replace('}', ""))
            .filter(|p| p != "/sign-in")
            .collect();
        let allowed: std::collections::BTreeSet<String> = PAGES.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(routed, allowed, "PAGES must list every page of App but /sign-in");
    }
}
