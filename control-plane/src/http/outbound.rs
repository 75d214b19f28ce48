//! Outbound calls: `POST /v1/agents/{id}/calls` has Twilio call a number from the
//! agent's, with answering machine detection; the callee's answer fetches the
//! agent's voice webhook as an inbound call does, and the runtime takes it from
//! there (a person gets the conversation, a machine the voicemail message).
//!
//! Each tenant and each agent may have a limited number of live outbound calls
//! (`TEMPOVOICE_MAX_CONCURRENT_CALLS`, `…_PER_AGENT`): a slot is reserved before
//! Twilio is asked, and freed when Twilio reports the call's final status to
//! `POST /v1/twilio/agents/{id}/call-status` (signed with the agent's auth token,
//! at `TEMPOVOICE_PUBLIC_URL`), or when the longest the call could last has passed.

use agent_spec::api::{ErrorBody, PlaceCallRequest, PlacedCall};
use agent_spec::values::E164;
use agent_spec::{AgentConfig, AgentId, AgentSecrets, CallSid, TenantId};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::ExposeSecret;

use super::AppState;
use super::error::ApiError;
use super::extract::{AgentPath, ApiJson, Tenant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::outbound::NewCall;
use crate::twilio::{OutboundCall, TwilioError};

/// Twilio's callbacks (`POST /v1/agents/{id}/calls` is routed with the call list).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(call_status))
}

/// Largest `metadata`, as JSON.
pub const METADATA_MAX_BYTES: usize = 1024;
/// How long Twilio lets an outbound call ring.
const RING_SECS: u32 = 30;

/// Call a number from the agent's.
///
/// Twilio calls `to` from the agent's number with answering machine detection: a
/// person who answers talks with the agent; an answering machine gets the agent's
/// `voicemail_message` after the beep, then the call hangs up. The call's
/// `metadata.json` (`GET …/calls/{callSid}/metadata`) has its `direction`
/// (`outbound-api`), `answered_by` and the `metadata` given here.
#[utoipa::path(
    post, path = "/v1/agents/{id}/calls", tag = "calls",
    params(("id" = AgentId, Path, description = "Agent id")),
    request_body = PlaceCallRequest,
    responses(
        (status = 201, description = "Twilio accepted the call: it rings now", body = PlacedCall),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 409, description = "The agent cannot call: `not_deployed` (no voice URL yet), `twilio_credentials`, or Twilio refused the call (`twilio_{code}`, with Twilio's message)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (`to`, `from`, `metadata`), each named with the reason", body = ErrorBody),
        (status = 429, description = "The agent or the tenant has its limit of live outbound calls (`too_many_calls`); retry when one ends", body = ErrorBody),
        (status = 502, description = "Twilio could not be reached or failed; retry shortly", body = ErrorBody),
        (status = 503, description = "This control plane does not place calls: no Twilio (`twilio_off`) or no public URL for Twilio's status callbacks (`outbound_off`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(super) async fn place_call(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    ApiJson(request): ApiJson<PlaceCallRequest>,
) -> Result<Response, ApiError> {
    let (agent, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let number = agent.config.telephony.call_phone_number.as_str().to_owned();
    let mut invalid = Vec::new();
    let to = match E164::parse(request.to.trim()) {
        Ok(to) if to.as_str() == number => {
            invalid.push(("to", "must not be the agent's own number".to_owned()));
            None
        }
        Ok(to) => Some(to),
        Err(e) => {
            invalid.push(("to", e.to_string()));
            None
        }
    };
    if let Some(from) = &request.from {
        match E164::parse(from.trim()) {
            Ok(from) if from.as_str() == number => {}
            Ok(_) => invalid.push(("from", format!("must be the agent's number {number}: it calls from no other"))),
            Err(e) => invalid.push(("from", e.to_string())),
        }
    }
    let metadata = match &request.metadata {
        Some(map) => {
            let json = serde_json::to_vec(map).expect("JSON values serialize");
            if json.len() > METADATA_MAX_BYTES {
                invalid.push((
                    "metadata",
                    format!("is {} bytes as JSON; at most {METADATA_MAX_BYTES} are carried with a call", json.len()),
                ));
            }
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
        }
        None => None,
    };
    if !invalid.is_empty() {
        return Err(ApiError::Invalid(
            invalid.into_iter().map(|(field, reason)| agent_spec::FieldError { field: field.into(), reason }).collect(),
        ));
    }
    let to = to.expect("checked above");
    let placed = dial(&state, &tenant, &id, &agent.config, &secrets, &to, metadata.as_deref()).await?;
    let location = format!("/v1/agents/{}/calls/{}/metadata", placed.agent_id, placed.call_sid);
    let mut response = (StatusCode::CREATED, axum::Json(placed)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Has Twilio call `to` from the agent's number, within the tenant's and the
/// agent's limits of live outbound calls; `metadata` is the base64url JSON the
/// call carries. The API's calls and scheduled callbacks both place calls here.
pub(crate) async fn dial(
    state: &AppState,
    tenant: &TenantId,
    id: &AgentId,
    config: &AgentConfig,
    secrets: &AgentSecrets,
    to: &E164,
    metadata: Option<&str>,
) -> Result<PlacedCall, ApiError> {
    let number = config.telephony.call_phone_number.as_str().to_owned();
    let twilio = state.twilio()?;
    let Some(public_url) = state.settings.public_url.as_deref() else {
        return Err(ApiError::Disabled {
            code: "outbound_off",
            message: "this control plane places no calls: set TEMPOVOICE_PUBLIC_URL to where Twilio reaches it, \
                      for the calls' status callbacks"
                .into(),
        });
    };
    let urls = state.agent_urls(tenant, id).await?;
    let url = match metadata {
        Some(meta) => format!("{}?amd=async&metadata={meta}", urls.voice),
        None => format!("{}?amd=async", urls.voice),
    };
    let status_callback = format!("{public_url}/v1/twilio/agents/{id}/call-status");

    // The longest the call can hold a slot without a final status: ringing, then the
    // agent's longest call, then a margin.
    let max_secs = i64::from(RING_SECS) + i64::from(config.guardrails.max_session_duration_secs) + 120;
    let reservation = format!("oc{:016x}", rand::random::<u64>());
    let reserved = state
        .store
        .reserve_outbound_call(
            tenant,
            id,
            NewCall {
                id: &reservation,
                to: to.as_str(),
                from: &number,
                live_until: crate::db::now_ms() + max_secs * 1000,
            },
            state.settings.call_limits,
        )
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    if let Err(over) = reserved {
        let whose = if over.scope == "agent" { "the agent" } else { "your tenant" };
        return Err(ApiError::TooManyCalls(format!(
            "{whose} already has {} live outbound calls, the most allowed; retry when one ends",
            over.limit
        )));
    }
    let account = config.telephony.twilio_account_sid.as_str();
    let created = twilio
        .create_call(
            account,
            &secrets.twilio_auth_token,
            &OutboundCall {
                to: to.as_str(),
                from: &number,
                url: &url,
                status_callback: &status_callback,
                amd_callback: &urls.amd_status,
                ring_timeout_secs: RING_SECS,
            },
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            if let Err(release) = state.store.release_outbound_call(&reservation).await {
                tracing::warn!(error = %release, "could not release an outbound call slot; it frees itself later");
            }
            tracing::info!(agent_id = %id, error = %e, "Twilio refused the outbound call");
            return Err(match e {
                TwilioError::Unauthorized { .. } => ApiError::Conflict {
                    code: "twilio_credentials".into(),
                    message: format!(
                        "Twilio refused the credentials of account {account}: check telephony.twilio_account_sid and \
                         secrets.twilio_auth_token"
                    ),
                },
                e if e.retryable() => ApiError::Dependency { code: "twilio_unavailable", message: e.to_string() },
                TwilioError::Rejected { code: Some(21211 | 21217 | 21214), .. } => {
                    ApiError::invalid("to", e.to_string())
                }
                TwilioError::Rejected { code, .. } => ApiError::Conflict {
                    code: code.map(|c| format!("twilio_{c}")).unwrap_or_else(|| "twilio_rejected".into()),
                    message: e.to_string(),
                },
                TwilioError::Unreachable(_) => {
                    ApiError::Dependency { code: "twilio_unavailable", message: e.to_string() }
                }
            });
        }
    };
    let Ok(call_sid) = CallSid::parse(&created.sid) else {
        return Err(ApiError::Dependency {
            code: "twilio_unavailable",
            message: format!("Twilio answered with a call sid that is not one: {:?}", created.sid),
        });
    };
    state
        .store
        .outbound_call_created(&reservation, call_sid.as_str(), &created.status)
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %id, call_sid = %call_sid, "outbound call placed");
    Ok(PlacedCall { call_sid, agent_id: id.clone(), to: to.as_str().to_owned(), from: number, status: created.status })
}

/// Twilio's progress reports of an outbound call (not for tenants: Twilio signs them
/// with the agent's auth token). A final status frees the call's slot.
#[utoipa::path(
    post, path = "/v1/twilio/agents/{id}/call-status", tag = "twilio",
    params(("id" = AgentId, Path, description = "Agent id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio's status callback form (`CallSid`, `CallStatus`, …)"),
    responses(
        (status = 204, description = "Recorded"),
        (status = 403, description = "Not signed by Twilio with the agent's auth token", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 422, description = "`CallSid` or `CallStatus` missing", body = ErrorBody),
        (status = 503, description = "This control plane places no calls (no `TEMPOVOICE_PUBLIC_URL`)", body = ErrorBody),
    ),
)]
pub(super) async fn call_status(
    State(state): State<AppState>,
    AgentPath(id): AgentPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(public_url) = state.settings.public_url.as_deref() else {
        return Err(ApiError::Disabled { code: "outbound_off", message: "this control plane places no calls".into() });
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let tenant = state.store.agent_tenant(&id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let Some(tenant) = tenant else { return Err(ApiError::NotFound("agent")) };
    let (_, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let url = format!("{public_url}/v1/twilio/agents/{id}/call-status");
    let given = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !agent_spec::twilio::is_valid(secrets.twilio_auth_token.expose_secret(), &url, &params, given) {
        tracing::warn!(agent_id = %id, "call status callback with a bad signature refused");
        return Err(ApiError::Forbidden("not signed by Twilio for this agent"));
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    let (call_sid, status) = (param("CallSid"), param("CallStatus"));
    if CallSid::parse(call_sid).is_err() || status.is_empty() {
        return Err(ApiError::invalid("CallSid", "CallSid and CallStatus are required"));
    }
    let known =
        state.store.outbound_call_status(&id, call_sid, status).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    tracing::info!(agent_id = %id, call_sid, status, known, "outbound call status");
    Ok(StatusCode::NO_CONTENT)
}
