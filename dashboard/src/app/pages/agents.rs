//! The agents list, with search and paging.

use agent_spec::api::AgentResponse;
use leptos::prelude::*;

use super::{AGENTS_PER_PAGE, SEARCH_SCAN_MAX, async_page, truncate};
use crate::api::TenantApi;
use crate::app::PageError;
use crate::app::view::{Page, notice, status_badge, when};

#[component]
pub fn AgentsPage() -> impl IntoView {
    async_page(|ctx| async move {
        let api = ctx.api()?;
        let flash = ctx.flash();
        let q = ctx.query("q").map(|q| q.trim().to_owned()).unwrap_or_default();
        let cursor = ctx.query("cursor");
        let (agents, next, scanned) = if q.is_empty() {
            let page = api.list_agents(cursor.as_deref(), AGENTS_PER_PAGE).await?;
            (page.agents, page.next_cursor, None)
        } else {
            let (found, scanned) = search(&api, &q).await?;
            (found, None, Some(scanned))
        };
        let first_page = cursor.is_none();
        let body = if agents.is_empty() && q.is_empty() && first_page {
            view! {
                <div class="head"><h1>"Agents"</h1></div>
                {notice(flash.as_ref())}
                <div class="panel empty">
                    <h2>"No agents yet"</h2>
                    <p>
                        "An agent answers the calls to one Twilio phone number. To create one you need its name, "
                        "what it should do (the prompt), the Twilio number, and your Twilio account SID and auth token."
                    </p>
                    <a class="button" href="/agents/new">"Create your first agent"</a>
                </div>
            }
            .into_any()
        } else {
            let count = agents.len();
            let summary = match scanned {
                Some(scanned) => format!("{count} of {scanned} agents match “{q}”"),
                None => String::new(),
            };
            view! {
                <div class="head">
                    <h1>"Agents"</h1>
                    <a class="button" href="/agents/new">"New agent"</a>
                </div>
                {notice(flash.as_ref())}
                <form class="search" method="get" action="/" role="search">
                    <label class="sr-only" for="q">"Search agents"</label>
                    <input type="search" id="q" name="q" value=q.clone() placeholder="Search by name, phone number or id"/>
                    <button type="submit" class="secondary">"Search"</button>
                    {(!q.is_empty()).then(|| view! { <a class="button secondary" href="/">"Clear"</a> })}
                </form>
                {(!summary.is_empty()).then(|| view! { <p class="muted">{summary}</p> })}
                <div class="table-wrap">
                    <table>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Phone number"</th>
                                <th scope="col">"Deployment"</th>
                                <th scope="col" class="hide-narrow">"Last change"</th>
                                <th scope="col" class="hide-narrow">"Calls"</th>
                            </tr>
                        </thead>
                        <tbody>{agents.iter().map(agent_row).collect_view()}</tbody>
                    </table>
                </div>
                <nav class="pager" aria-label="Pages">
                    <span>{(!first_page).then(|| view! { <a href="/">"← First page"</a> })}</span>
                    <span>
                        {next.map(|c| view! { <a href=format!("/?cursor={}", crate::app::view::encode(&c))>"Next page →"</a> })}
                    </span>
                </nav>
            }
            .into_any()
        };
        Ok(Page { title: "Agents".into(), refresh: None, body })
    })
}

fn agent_row(agent: &AgentResponse) -> impl IntoView + use<> {
    let href = format!("/agents/{}", agent.id);
    let calls = format!("/agents/{}/calls", agent.id);
    let last_change = agent.deployment.as_ref().map(|d| d.updated_at.max(agent.updated_at)).unwrap_or(agent.updated_at);
    let description = truncate(&agent.config.description, 90);
    view! {
        <tr>
            <td>
                <a href=href>{agent.config.name.clone()}</a>
                {(!description.is_empty()).then(|| view! { <div class="muted">{description}</div> })}
            </td>
            <td class="mono">{agent.config.telephony.call_phone_number.to_string()}</td>
            <td>{status_badge(agent.deployment.as_ref())}</td>
            <td class="hide-narrow">{when(last_change)}</td>
            <td class="hide-narrow"><a href=calls>"Calls"</a></td>
        </tr>
    }
}

/// Agents whose name, number or id contains `q` (any case); reads every page.
async fn search(api: &TenantApi, q: &str) -> Result<(Vec<AgentResponse>, usize), PageError> {
    let needle = q.to_lowercase();
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = api.list_agents(cursor.as_deref(), 200).await?;
        scanned += page.agents.len();
        found.extend(page.agents.into_iter().filter(|a| {
            a.config.name.to_lowercase().contains(&needle)
                || a.config.telephony.call_phone_number.to_string().contains(&needle)
                || a.id.to_string().contains(&needle)
        }));
        match page.next_cursor {
            Some(next) if scanned < SEARCH_SCAN_MAX => cursor = Some(next),
            _ => break,
        }
    }
    Ok((found, scanned))
}
