//! The tenant's Twilio numbers: `GET /v1/numbers` lists each agent's number with
//! where Twilio routes it now (read live, one request per agent, a few at a time),
//! so a number someone re-pointed in the Twilio console shows as drifted;
//! `POST /v1/agents/{id}/number` points the agent's number at it again at once (what
//! a deploy does, without one).

use agent_spec::api::{ErrorBody, NumberList, NumberStatus, RepointResponse};
use std::collections::HashMap;

use agent_spec::{AgentId, AgentSecrets};
use axum::extract::State;
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{AgentPath, Tenant};
use crate::deploy::numbers::{Look, Numbers, Target};
use crate::store::agents::StoredAgent;
use crate::store::numbers::NumberBinding;

/// Numbers looked at in Twilio at once.
const LOOK_CONCURRENCY: usize = 8;
/// Agents read per page while listing all of a tenant's.
const AGENT_PAGE: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_numbers)).routes(routes!(repoint_number))
}

fn numbers(state: &AppState) -> Numbers<'_> {
    Numbers { store: &state.store, twilio: state.twilio.as_ref(), settings: &state.settings }
}

/// One agent's number, looked at now. `binding` is the agent's number binding, if
/// it has one: what the number routed to before the agent took it.
async fn look(
    state: &AppState,
    agent: &StoredAgent,
    secrets: &AgentSecrets,
    voice_url: Option<&str>,
    binding: Option<&NumberBinding>,
) -> NumberStatus {
    let number = agent.config.telephony.call_phone_number.as_str();
    let previous_voice_url =
        binding.filter(|b| b.phone_number == number).map(|b| b.previous.voice_url.clone()).filter(|u| !u.is_empty());
    numbers(state).look(Look { agent, token: &secrets.twilio_auth_token, voice_url, previous_voice_url }).await
}

/// Every agent's Twilio number and where it routes now.
///
/// Twilio is asked about each number as the list is made (at most 5 s each): a
/// number whose voice URL is not its agent's shows as `drifted`, with where it
/// routes instead.
#[utoipa::path(
    get, path = "/v1/numbers", tag = "numbers",
    responses(
        (status = 200, description = "Each agent's number, by number", body = NumberList),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn list_numbers(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<axum::Json<NumberList>, ApiError> {
    let mut agents = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = state
            .store
            .list_agents(&tenant, after.as_ref(), AGENT_PAGE)
            .await
            .map_err(|e| ApiError::from_store(e, "agent"))?;
        agents.extend(page);
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    let bindings: HashMap<AgentId, NumberBinding> = state
        .store
        .number_bindings(&tenant)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?
        .into_iter()
        .map(|b| (b.agent_id.clone(), b))
        .collect();
    let (state, tenant, bindings) = (&state, &tenant, &bindings);
    let mut numbers: Vec<NumberStatus> = futures::stream::iter(agents)
        .map(|agent| async move {
            // The listed agent carries its placement; its secrets are read on their own.
            let (_, secrets) = state.store.get_agent_with_secrets(tenant, &agent.id).await?;
            let voice_url = state.settings.voice_url(&agent.id, agent.listener_arn.as_deref());
            Ok::<_, crate::store::StoreError>(
                look(state, &agent, &secrets, voice_url.as_deref(), bindings.get(&agent.id)).await,
            )
        })
        .buffered(LOOK_CONCURRENCY)
        .filter_map(|found| async move {
            match found {
                Ok(status) => Some(Ok(status)),
                // Deleted while the list was made.
                Err(crate::store::StoreError::NotFound) => None,
                Err(e) => Some(Err(e)),
            }
        })
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    numbers.sort_by(|a, b| (&a.phone_number, &a.agent_name).cmp(&(&b.phone_number, &b.agent_name)));
    Ok(axum::Json(NumberList { numbers }))
}

/// Point the agent's number at it now.
///
/// What a deploy does once the agent is active: the number's voice URL, POST and
/// status callback are set (its previous routing recorded first, to be given back
/// when the agent goes). For a number that drifted; nothing is deployed.
#[utoipa::path(
    post, path = "/v1/agents/{id}/number", tag = "numbers",
    params(("id" = AgentId, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The number now routes to the agent", body = RepointResponse),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 409, description = "The number cannot be pointed at the agent: `not_deployed` (no voice URL yet), `number_not_managed` (telephony.configure_number is off), `number_not_in_account`, `twilio_credentials`, `number_in_use`, `number_on_sip_trunk`; the message says what to do", body = ErrorBody),
        (status = 502, description = "Twilio could not be reached or failed; retry shortly", body = ErrorBody),
        (status = 503, description = "This control plane does not talk to Twilio (TEMPOVOICE_TWILIO_API_BASE=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn repoint_number(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<RepointResponse>, ApiError> {
    let (agent, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let t = &agent.config.telephony;
    if !t.configure_number {
        return Err(ApiError::Conflict {
            code: "number_not_managed".into(),
            message: "telephony.configure_number is off: the number is yours to point".into(),
        });
    }
    state.twilio()?;
    let urls = state.agent_urls(&tenant, &id).await?;
    let target = Target {
        tenant: &tenant,
        agent: &id,
        account_sid: t.twilio_account_sid.as_str(),
        phone_number: t.call_phone_number.as_str(),
        secrets: &secrets,
        voice_url: &urls.voice,
        status_callback: &urls.call_status,
    };
    let mut events = Vec::new();
    numbers(&state).point(&target, true, &mut events).await.map_err(|e| {
        tracing::info!(agent_id = %id, error_type = %e.error_type, error = %e.message, "re-pointing the number failed");
        match (e.step.as_deref() == Some(crate::deploy::numbers::STEP), e.retryable) {
            (true, true) => ApiError::Dependency { code: "twilio_unavailable", message: e.message },
            (true, false) => ApiError::Conflict { code: e.code.unwrap_or_else(|| "twilio".into()), message: e.message },
            // The control plane's own store.
            (false, true) => ApiError::Unavailable(anyhow::anyhow!(e.message)),
            (false, false) => ApiError::Internal(anyhow::anyhow!(e.message)),
        }
    })?;
    tracing::info!(agent_id = %id, ?events, "number re-pointed");
    let binding = state.store.number_binding(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let number = look(&state, &agent, &secrets, Some(&urls.voice), binding.as_ref()).await;
    Ok(axum::Json(RepointResponse { number, events }))
}
