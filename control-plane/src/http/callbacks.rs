//! Scheduled callbacks. An agent's runtime reports a callback the caller asked for
//! (`POST /v1/runtime/agents/{id}/callbacks`, signed with the agent's Twilio auth
//! token, the secret the runtime and the control plane share); the callback worker
//! ([`crate::callbacks`]) places it when due. Tenants list and cancel them.

use agent_spec::api::{Callback, CallbackList, CallbackStatus, ErrorBody};
use agent_spec::{AgentId, CallSid, values::E164};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::{AgentPath, Tenant};
use crate::store::callbacks::{CancelRefused, NewCallback};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_callbacks))
        .routes(routes!(cancel_callback))
        .routes(routes!(report_callback))
}

/// The header a runtime signs its reports with: Twilio's algorithm (HMAC-SHA1 over
/// the URL and the sorted form), keyed by the agent's Twilio auth token.
pub const SIGNATURE_HEADER: &str = "x-tempovoice-signature";
/// How far a report's `SentAt` may be from this control plane's clock.
const SKEW_SECS: i64 = 300;
/// The most of the earlier call a callback carries.
pub const CONTEXT_MAX_CHARS: usize = 600;

/// The agent's callbacks.
///
/// Those still to come first, the next due first; then the most recent of those
/// placed, failed or cancelled (kept 30 days).
#[utoipa::path(
    get, path = "/v1/agents/{id}/callbacks", tag = "callbacks",
    params(("id" = AgentId, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent's callbacks", body = CallbackList),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(super) async fn list_callbacks(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
) -> Result<axum::Json<CallbackList>, ApiError> {
    if !state.store.agent_is_known(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))? {
        return Err(ApiError::NotFound("agent"));
    }
    let callbacks = state.store.list_callbacks(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    Ok(axum::Json(CallbackList { callbacks }))
}

/// Cancel a scheduled callback.
///
/// Only a callback still `scheduled` can be cancelled: one being placed, placed,
/// failed or cancelled already answers 409 with its status as the code.
#[utoipa::path(
    delete, path = "/v1/agents/{id}/callbacks/{callbackId}", tag = "callbacks",
    params(
        ("id" = AgentId, Path, description = "Agent id"),
        ("callbackId" = String, Path, description = "Callback id"),
    ),
    responses(
        (status = 200, description = "Cancelled", body = Callback),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such callback for this agent", body = ErrorBody),
        (status = 409, description = "Not scheduled any more: `callback_placing`, `callback_placed`, `callback_failed` or `callback_cancelled`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(super) async fn cancel_callback(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    Path((_, callback)): Path<(String, String)>,
) -> Result<axum::Json<Callback>, ApiError> {
    let done =
        state.store.cancel_callback(&tenant, &id, &callback).await.map_err(|e| ApiError::from_store(e, "callback"))?;
    match done {
        Ok(cancelled) => {
            tracing::info!(agent_id = %id, callback_id = %cancelled.id, "callback cancelled");
            Ok(axum::Json(cancelled))
        }
        Err(CancelRefused::NotFound) => Err(ApiError::NotFound("callback")),
        Err(CancelRefused::Too(status)) => Err(ApiError::Conflict {
            code: format!("callback_{}", status.as_str()),
            message: match status {
                CallbackStatus::Placing => "the callback is being placed right now".to_owned(),
                other => format!("the callback is {} already", other.as_str()),
            },
        }),
    }
}

/// A callback a caller asked for (from the agent's runtime).
///
/// Not for tenants: the agent's runtime reports the callback its caller asked for,
/// signed in `X-TempoVoice-Signature` as Twilio signs webhooks, with the agent's
/// Twilio auth token. Form fields: `CallSid` (the call), `To` (the caller's
/// number), `RequestedTime` (the caller's words), `At` (RFC 3339, optional: the
/// time as the speech model understood it), `Context` (what the caller said, at
/// most 600 characters) and `SentAt` (Unix seconds, within 5 minutes of now).
/// Reporting again for the same call moves its callback while it is scheduled.
#[utoipa::path(
    post, path = "/v1/runtime/agents/{id}/callbacks", tag = "runtime",
    params(("id" = AgentId, Path, description = "Agent id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`CallSid`, `To`, `RequestedTime`, `At`, `Context`, `SentAt`"),
    responses(
        (status = 201, description = "Scheduled (or moved); `due_at` is when it will be placed", body = Callback),
        (status = 403, description = "Not signed with the agent's auth token, or `SentAt` too far from now", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "This call's callback is being placed or is done (`callback_placing`, …)", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid, or the time cannot be told (`RequestedTime`, `At`), with the reason", body = ErrorBody),
        (status = 503, description = "This control plane places no calls (`twilio_off`, `outbound_off`)", body = ErrorBody),
    ),
)]
pub(super) async fn report_callback(
    State(state): State<AppState>,
    AgentPath(id): AgentPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Callback>), ApiError> {
    state.twilio()?;
    let Some(public_url) = state.settings.public_url.as_deref() else {
        return Err(ApiError::Disabled {
            code: "outbound_off",
            message: "this control plane places no calls: set TEMPOVOICE_PUBLIC_URL".into(),
        });
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let tenant = state.store.agent_tenant(&id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let Some(tenant) = tenant else { return Err(ApiError::NotFound("agent")) };
    let (agent, secrets) =
        state.store.get_agent_with_secrets(&tenant, &id).await.map_err(|e| ApiError::from_store(e, "agent"))?;
    let url = format!("{public_url}/v1/runtime/agents/{id}/callbacks");
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !agent_spec::twilio::is_valid(secrets.twilio_auth_token.expose_secret(), &url, &params, given) {
        tracing::warn!(agent_id = %id, "callback report with a bad signature refused");
        return Err(ApiError::Forbidden("not signed with the agent's auth token"));
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let now = time::OffsetDateTime::now_utc();
    let sent = param("SentAt").and_then(|s| s.parse::<i64>().ok());
    if sent.is_none_or(|s| (s - now.unix_timestamp()).abs() > SKEW_SECS) {
        return Err(ApiError::Forbidden("SentAt is missing or more than 5 minutes from now"));
    }
    let mut invalid = Vec::new();
    let call_sid =
        CallSid::parse(param("CallSid").unwrap_or_default()).map_err(|e| invalid.push(("CallSid", e.to_string()))).ok();
    let to = match E164::parse(param("To").unwrap_or_default()) {
        Ok(to) if to.as_str() == agent.config.telephony.call_phone_number.as_str() => {
            invalid.push(("To", "is the agent's own number".to_owned()));
            None
        }
        Ok(to) => Some(to),
        Err(e) => {
            invalid.push(("To", format!("{e} (a caller without a number cannot be called back)")));
            None
        }
    };
    let words: String = param("RequestedTime").unwrap_or_default().chars().take(200).collect();
    let at = param("At").filter(|a| !a.is_empty());
    let asap = time::Duration::try_from(state.settings.callback_asap).unwrap_or(time::Duration::minutes(2));
    let due = agent_spec::callbacks::resolve(at, &words, now, asap)
        .map_err(|reason| invalid.push((if at.is_some() { "At" } else { "RequestedTime" }, reason)))
        .ok();
    let context: String = param("Context").unwrap_or_default().chars().take(CONTEXT_MAX_CHARS).collect();
    let (Some(call_sid), Some(to), Some(due)) = (call_sid, to, due) else {
        return Err(ApiError::Invalid(
            invalid.into_iter().map(|(field, reason)| agent_spec::FieldError { field: field.into(), reason }).collect(),
        ));
    };
    let stored = state
        .store
        .schedule_callback(
            &tenant,
            &id,
            NewCallback {
                call_sid: &call_sid,
                to: to.as_str(),
                requested_time: &words,
                context: &context,
                due_at: (due.unix_timestamp_nanos() / 1_000_000) as i64,
            },
        )
        .await
        .map_err(|e| ApiError::from_store(e, "agent"))?;
    let callback = stored.callback;
    if callback.status != CallbackStatus::Scheduled {
        return Err(ApiError::Conflict {
            code: format!("callback_{}", callback.status.as_str()),
            message: format!("this call's callback is {} already", callback.status.as_str()),
        });
    }
    tracing::info!(agent_id = %id, callback_id = %callback.id, call_sid = %call_sid, due_at = %callback.due_at, "callback scheduled");
    Ok((StatusCode::CREATED, axum::Json(callback)))
}
