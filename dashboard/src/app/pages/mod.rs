//! The pages. Each is a component that loads its data from the API inside a
//! `Suspense` (awaited before the response is sent) and renders it with the frame.

mod agent;
mod agent_form;
mod agents;
mod calls;
mod numbers;
mod sign_in;

pub use agent::{AgentPage, DeleteAgentPage};
pub use agent_form::{EditAgentPage, NewAgentPage};
pub use agents::AgentsPage;
pub use calls::{CallPage, CallsPage};
pub use numbers::NumbersPage;
pub use sign_in::SignInPage;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::view::{Page, finish};
use super::{PageError, RequestContext};
use crate::api::ApiFailure;

/// Agents per page of the list.
pub const AGENTS_PER_PAGE: u32 = 50;
/// Calls per page of an agent's call list.
pub const CALLS_PER_PAGE: u32 = 50;
/// A search reads at most this many agents (in pages of 200).
pub const SEARCH_SCAN_MAX: usize = 5_000;
/// A deployment in progress reloads its page this often, in seconds.
pub const REFRESH_SECS: u32 = 2;

fn param(name: &str) -> String {
    use_params_map().with_untracked(|p| p.get(name)).unwrap_or_default()
}

/// Renders `load` inside a suspense that the server awaits.
fn async_page<F, Fut>(load: F) -> impl IntoView
where
    F: FnOnce(RequestContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page, PageError>> + Send + 'static,
{
    let ctx = RequestContext::current();
    view! {
        <Suspense fallback=|| ()>
            {Suspend::new(async move {
                let result = load(ctx.clone()).await;
                finish(&ctx, result)
            })}
        </Suspense>
    }
}

fn not_found(what: &'static str) -> impl Fn(ApiFailure) -> PageError {
    move |e| match e {
        ApiFailure::NotFound => PageError::NotFound(what),
        e => e.into(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", text[..i].trim_end()),
        None => text.to_owned(),
    }
}
