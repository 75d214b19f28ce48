//! An agent's calls, and one call's conversation and metadata.

use agent_spec::calls::{CallMetadata, Role, Transcript};
use leptos::prelude::*;

use super::{CALLS_PER_PAGE, async_page, not_found, param};
use crate::api::ApiFailure;
use crate::app::PageError;
use crate::app::view::{Page, duration, short_time, when};

#[component]
pub fn CallsPage() -> impl IntoView {
    let id = param("id");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        let agent = api.get_agent(&id).await.map_err(not_found("agent"))?;
        let cursor = ctx.query("cursor");
        let page = api.list_calls(&id, cursor.as_deref(), CALLS_PER_PAGE).await?;
        let title = format!("Calls · {}", agent.config.name);
        let base = format!("/agents/{}/calls", agent.id);
        let rows = page
            .calls
            .iter()
            .map(|call| {
                let href = format!("{base}/{}", call.call_sid);
                view! {
                    <tr>
                        <td><a href=href>{call.started_at.map(short_time).unwrap_or_else(|| "unknown".into())}</a></td>
                        <td class="mono">{call.from.clone().unwrap_or_else(|| "—".into())}</td>
                        <td>{call.duration_secs.map(duration).unwrap_or_else(|| "—".into())}</td>
                        <td>{call.end_reason.clone().unwrap_or_else(|| "—".into()).replace('_', " ")}</td>
                        <td class="mono hide-narrow">{call.call_sid.to_string()}</td>
                    </tr>
                }
            })
            .collect_view();
        let empty = page.calls.is_empty() && cursor.is_none();
        let body = view! {
            <div class="crumbs"><a href="/">"Agents"</a> " / " <a href=format!("/agents/{}", agent.id)>{agent.config.name.clone()}</a></div>
            <div class="head"><h1>"Calls"</h1></div>
            {if empty {
                view! {
                    <div class="panel empty">
                        <h2>"No calls yet"</h2>
                        <p>"Each call appears here when it ends, with its transcript and, if recording is on, its audio."</p>
                    </div>
                }
                .into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">"Started"</th>
                                    <th scope="col">"Caller"</th>
                                    <th scope="col">"Duration"</th>
                                    <th scope="col">"Ended by"</th>
                                    <th scope="col" class="hide-narrow">"Call SID"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                    <nav class="pager" aria-label="Pages">
                        <span>{cursor.is_some().then(|| view! { <a href=base.clone()>"← Newest calls"</a> })}</span>
                        <span>{page.next_cursor.map(|c| view! { <a href=format!("{base}?cursor={}", crate::app::view::encode(&c))>"Older calls →"</a> })}</span>
                    </nav>
                }
                .into_any()
            }}
        };
        Ok(Page { title, refresh: None, body: body.into_any() })
    })
}

#[component]
pub fn CallPage() -> impl IntoView {
    let id = param("id");
    let sid = param("sid");
    async_page(move |ctx| async move {
        let api = ctx.api()?;
        // The agent, the metadata and the transcript are independent reads.
        let (agent, metadata, transcript) =
            futures::join!(api.get_agent(&id), api.metadata(&id, &sid), api.transcript(&id, &sid));
        let agent = agent.map_err(not_found("agent"))?;
        let metadata = match metadata {
            Ok(m) => m,
            Err(ApiFailure::NotFound) => return Err(PageError::NotFound("call")),
            Err(ApiFailure::Status { status, .. }) if status.as_u16() == 422 => {
                return Err(PageError::NotFound("call"));
            }
            Err(e) => return Err(e.into()),
        };
        let transcript = match transcript {
            Ok(t) => Some(t),
            Err(ApiFailure::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let title = format!("Call from {}", metadata.from.clone().unwrap_or_else(|| "unknown".into()));
        let recording =
            metadata.recording.then(|| format!("/agents/{}/calls/{}/recording.wav", agent.id, metadata.call_sid));
        let body = view! {
            <div class="crumbs">
                <a href="/">"Agents"</a> " / " <a href=format!("/agents/{}", agent.id)>{agent.config.name.clone()}</a>
                " / " <a href=format!("/agents/{}/calls", agent.id)>"Calls"</a>
            </div>
            <div class="head"><h1>{title.clone()}</h1></div>
            <div class="two">
                <div>
                    {recording.map(|src| {
                        let download = src.clone();
                        view! {
                        <div class="panel">
                            <h2>"Recording"</h2>
                            <audio controls=true preload="metadata" src=src>
                                <a href=download>"Download the recording"</a>
                            </audio>
                        </div>
                    }})}
                    <div class="panel">
                        <h2>"Transcript"</h2>
                        {conversation(transcript.as_ref())}
                    </div>
                </div>
                <div>{metadata_panel(&metadata)}</div>
            </div>
        };
        Ok(Page { title, refresh: None, body: body.into_any() })
    })
}

/// `m:ss` from the start of the call.
fn offset(ms: u64) -> String {
    format!("{}:{:02}", ms / 60_000, ms / 1000 % 60)
}

fn conversation(transcript: Option<&Transcript>) -> AnyView {
    let Some(t) = transcript else {
        return view! { <p class="muted">"No transcript was kept for this call."</p> }.into_any();
    };
    if t.turns.is_empty() && t.dtmf.is_empty() {
        return view! { <p class="muted">"Nothing was said on this call."</p> }.into_any();
    }
    // Turns and key presses, in the order they happened.
    enum Item<'a> {
        Turn(&'a agent_spec::calls::Turn),
        Dtmf(&'a agent_spec::calls::DtmfRecord),
    }
    let mut items: Vec<(u64, Item)> = t.turns.iter().map(|turn| (turn.start_ms, Item::Turn(turn))).collect();
    items.extend(t.dtmf.iter().map(|d| (d.at_ms, Item::Dtmf(d))));
    items.sort_by_key(|(at, _)| *at);
    let rendered = items
        .into_iter()
        .map(|(at, item)| match item {
            Item::Turn(turn) => {
                let (class, who) = match turn.role {
                    Role::Agent => ("turn agent", "Agent"),
                    Role::Caller => ("turn caller", "Caller"),
                };
                let tools = turn
                    .tool_calls
                    .iter()
                    .map(|tool| {
                        let detail = match &tool.call {
                            agent_spec::calls::ToolCall::ScheduleCallback { requested_time, .. } => format!(" ({requested_time})"),
                            _ => String::new(),
                        };
                        let failed = if tool.result == "ok" { String::new() } else { format!(" — {}", tool.result) };
                        view! { <span class="tag tool">{format!("tool: {}{detail}{failed}", tool.call.name())}</span> }
                    })
                    .collect_view();
                view! {
                    <li class=class>
                        <header>
                            <strong>{who}</strong>
                            <time>{offset(at)}</time>
                            {turn.interrupted.then(|| view! { <span class="tag interrupted">"interrupted"</span> })}
                            {tools}
                        </header>
                        <p>{if turn.text.is_empty() { "(nothing recognized)".to_owned() } else { turn.text.clone() }}</p>
                    </li>
                }
                .into_any()
            }
            Item::Dtmf(d) => view! {
                <li class="turn dtmf">
                    <time>{offset(at)}</time> " Caller pressed " <strong class="mono">{d.digit.clone()}</strong>
                </li>
            }
            .into_any(),
        })
        .collect_view();
    view! { <ol class="conversation" aria-label="Conversation">{rendered}</ol> }.into_any()
}

fn metadata_panel(m: &CallMetadata) -> AnyView {
    let latency = if m.turn_latency_ms.is_empty() {
        "—".to_owned()
    } else {
        let mut sorted = m.turn_latency_ms.clone();
        sorted.sort_unstable();
        format!("median {} ms over {} replies", sorted[sorted.len() / 2], sorted.len())
    };
    let webhooks = m
        .webhooks
        .iter()
        .map(|w| {
            let outcome = if w.delivered {
                format!("delivered ({} attempt{})", w.attempts, if w.attempts == 1 { "" } else { "s" })
            } else {
                format!("not delivered after {} attempts: {}", w.attempts, w.error.clone().unwrap_or_default())
            };
            view! { <dt>{format!("Webhook {}", w.kind)}</dt><dd>{outcome}</dd> }
        })
        .collect_view();
    let started = time::OffsetDateTime::parse(&m.started_at, &time::format_description::well_known::Rfc3339)
        .map(when)
        .unwrap_or_else(|_| m.started_at.clone().into_any());
    let errors = (!m.errors.is_empty()).then(|| view! { <dt>"Errors"</dt><dd>{m.errors.join(" · ")}</dd> });
    view! {
        <div class="panel">
            <h2>"Call"</h2>
            <dl class="summary">
                <dt>"From"</dt><dd class="mono">{m.from.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"To"</dt><dd class="mono">{m.to.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Started"</dt><dd>{started}</dd>
                <dt>"Duration"</dt><dd>{duration(m.duration_secs)}</dd>
                <dt>"Ended by"</dt><dd>{m.end_reason.replace('_', " ")}</dd>
                <dt>"Turns"</dt><dd>{format!("{} caller · {} agent · {} interruptions", m.caller_turns, m.agent_turns, m.interruptions)}</dd>
                <dt>"Reply latency"</dt><dd>{latency}</dd>
                <dt>"Speech"</dt><dd>{m.provider.clone()}</dd>
                <dt>"Voicemail"</dt><dd>{if m.voicemail { "left" } else { "—" }}</dd>
                {webhooks}
                {errors}
                <dt>"Call SID"</dt><dd class="mono">{m.call_sid.clone()}</dd>
            </dl>
        </div>
    }
    .into_any()
}
