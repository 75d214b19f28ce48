//! The tenant's Twilio numbers: each agent's number, where Twilio routes it now
//! (asked live as the page is made), a drift marked, and a re-point button.

use agent_spec::api::{NumberState, NumberStatus};
use leptos::prelude::*;

use super::async_page;
use crate::app::actions::RepointNumber;
use crate::app::view::{Page, notice};

#[component]
pub fn NumbersPage() -> impl IntoView {
    async_page(|ctx| async move {
        let api = ctx.api()?;
        let flash = ctx.flash();
        let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
        let numbers = api.list_numbers().await?.numbers;
        let drifted = numbers.iter().filter(|n| n.routing.state == NumberState::Drifted).count();
        let body = if numbers.is_empty() {
            view! {
                <div class="head"><h1>"Numbers"</h1></div>
                {notice(flash.as_ref())}
                <div class="panel empty">
                    <h2>"No numbers yet"</h2>
                    <p>"Each agent answers one Twilio number; create an agent to see its number here."</p>
                    <a class="button" href="/agents/new">"New agent"</a>
                </div>
            }
            .into_any()
        } else {
            let summary = match drifted {
                0 => "Checked with Twilio just now.".to_owned(),
                1 => "Checked with Twilio just now: 1 number does not route to its agent.".to_owned(),
                n => format!("Checked with Twilio just now: {n} numbers do not route to their agents."),
            };
            view! {
                <div class="head"><h1>"Numbers"</h1></div>
                {notice(flash.as_ref())}
                <p class="muted" id="numbers-summary">{summary}</p>
                <div class="table-wrap">
                    <table id="numbers">
                        <thead>
                            <tr>
                                <th scope="col">"Number"</th>
                                <th scope="col">"Agent"</th>
                                <th scope="col">"Twilio routes it to"</th>
                                <th scope="col"><span class="sr-only">"Action"</span></th>
                            </tr>
                        </thead>
                        <tbody>{numbers.iter().map(|n| number_row(n, &csrf)).collect_view()}</tbody>
                    </table>
                </div>
            }
            .into_any()
        };
        Ok(Page { title: "Numbers".into(), refresh: None, body })
    })
}

fn number_row(number: &NumberStatus, csrf: &str) -> impl IntoView + use<> {
    let state = number.routing.state;
    let label = match state {
        NumberState::Matches => "routes here",
        NumberState::Drifted => "drifted",
        NumberState::NotDeployed => "not deployed",
        NumberState::NotInAccount => "not in the account",
        NumberState::CredentialsRefused => "credentials refused",
        NumberState::Unreachable => "Twilio unreachable",
        NumberState::NotChecked => "not checked",
    };
    let routes_to = match (&number.routing.voice_url, &number.routing.voice_application_sid) {
        (_, Some(app)) => format!("TwiML app {app}"),
        (Some(url), None) => url.clone(),
        (None, None) => String::new(),
    };
    let detail = number.routing.detail.clone().filter(|_| state != NumberState::Drifted || routes_to.is_empty());
    let can_repoint = number.configure_number
        && number.voice_url.is_some()
        && matches!(state, NumberState::Drifted | NumberState::Unreachable);
    let manual = (!number.configure_number).then_some("pointed by hand (configure_number is off)");
    let row_id = format!("number-{}", number.agent_id);
    let (csrf, agent_id) = (csrf.to_owned(), number.agent_id.to_string());
    view! {
        <tr id=row_id>
            <td class="mono">{number.phone_number.clone()}</td>
            <td>
                <a href=format!("/agents/{}", number.agent_id)>{number.agent_name.clone()}</a>
                {manual.map(|m| view! { <div class="muted">{m}</div> })}
            </td>
            <td class="routing">
                <span class=format!("badge {}", state.as_str())>{label}</span>
                {(!routes_to.is_empty()).then(|| view! { <div class="mono">{routes_to}</div> })}
                {detail.map(|d| view! { <div class="muted">{d}</div> })}
            </td>
            <td>
                {can_repoint.then(|| view! {
                    <ActionForm action={ServerAction::<RepointNumber>::new()}>
                        <input type="hidden" name="csrf" value=csrf/>
                        <input type="hidden" name="id" value=agent_id/>
                        <button type="submit" class="secondary">"Re-point"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
