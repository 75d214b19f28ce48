//! `/v1/agents/{id}/calls`: an agent's calls, read from its transcript bucket,
//! where the runtime writes `calls/{callSid}/transcript.json`, `recording.wav` and
//! `metadata.json` at the end of each call. The list and the statistics come from
//! the agent's call index ([`crate::call_index`]), not from listing `calls/`.
//!
//! The call sid is validated (`CA` + 32 hex digits) before any key is built, and the
//! agent must be the tenant's (or have been: a deleted agent's bucket is kept, and so
//! are its calls).

use agent_spec::api::{CallDay, CallPage, CallStats, CallSummary, ErrorBody};
use agent_spec::calls::CallFile;
use agent_spec::{AgentId, CallSid, TenantId};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use deployer_lambda::naming::AgentNames;
use tokio_util::io::ReaderStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AgentPath, CallPath, Tenant};
use super::outbound::{__path_place_call, place_call};
use super::{AppState, page_query};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;
/// The most days of statistics asked for at once.
pub const MAX_STATS_DAYS: u32 = 90;
/// Largest JSON artifact returned (transcripts of very long calls stay well under it).
const MAX_JSON_BYTES: i64 = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls, place_call))
        .routes(routes!(call_stats))
        .routes(routes!(get_transcript))
        .routes(routes!(get_metadata))
        .routes(routes!(get_recording))
}

fn key(call: &CallSid, file: CallFile) -> String {
    file.key(call.as_str())
}

/// The agent's transcript bucket, after checking the agent is (or was) the tenant's.
async fn bucket(state: &AppState, tenant: &TenantId, agent: &AgentId) -> Result<String, ApiError> {
    state.aws()?;
    if !state.store.agent_is_known(tenant, agent).await.map_err(|e| ApiError::from_store(e, "agent"))? {
        return Err(ApiError::NotFound("agent"));
    }
    Ok(AgentNames::new(&state.settings.resource_prefix, agent).bucket)
}

/// Position in the newest-first list: `{endedMs}.{callSid}`
/// ([`crate::store::cursor`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallCursor {
    ended_ms: i64,
    call: String,
}

impl CallCursor {
    fn encode(&self) -> String {
        crate::store::cursor::encode(self.ended_ms, &self.call)
    }

    fn decode(raw: &str) -> Option<Self> {
        let (ended_ms, call) = crate::store::cursor::decode(raw, CallSid::parse)?;
        Some(Self { ended_ms, call: call.to_string() })
    }
}

fn index_error(e: crate::call_index::IndexError) -> ApiError {
    ApiError::Upstream(anyhow::Error::new(e))
}

/// List the agent's calls, newest first.
///
/// From the agent's call index, which its runtime writes as calls end: a call is
/// listed within a few seconds of its end.
#[utoipa::path(
    get, path = "/v1/agents/{id}/calls", tag = "calls",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page: the position `{ms}.{id}` of its last call; any well-formed position is a valid cursor", pattern = "^[0-9]{1,18}\\.CA[0-9a-f]{32}$"),
    ),
    responses(
        (status = 200, description = "One page", body = CallPage),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
        (status = 502, description = "S3 failed", body = ErrorBody),
        (status = 503, description = "This control plane has no AWS access (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn list_calls(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<CallPage>, ApiError> {
    let (limit, after) = page_query(query.as_deref(), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CallCursor::decode)?;
    let bucket = bucket(&state, &tenant, &id).await?;
    let segments = state.call_index.read(&state.aws()?.s3, &bucket, None).await.map_err(index_error)?;
    let mut calls: Vec<(CallCursor, &crate::call_index::IndexedCall)> = segments
        .iter()
        .flat_map(|s| s.iter())
        .map(|c| (CallCursor { ended_ms: c.ended_ms, call: c.call_sid.to_string() }, c))
        .collect();
    calls.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    calls.dedup_by(|a, b| a.0.call == b.0.call);
    let start = match &after {
        Some(c) => calls.partition_point(|(x, _)| x >= c),
        None => 0,
    };
    let page: Vec<_> = calls.iter().skip(start).take(limit as usize).collect();
    let next = (start + page.len() < calls.len()).then(|| page.last().map(|(c, _)| c.encode())).flatten();
    let summaries = page
        .into_iter()
        .map(|(_, c)| CallSummary {
            call_sid: c.call_sid.clone(),
            started_at: c.started_at,
            duration_secs: Some(c.duration_secs),
            from: c.from.clone(),
            end_reason: Some(c.end_reason.clone()),
        })
        .collect();
    Ok(axum::Json(CallPage { calls: summaries, next_cursor: next }))
}

/// The agent's calls of the last days, at a glance.
///
/// Calls per day (UTC, by when they started) by end reason, the median and 90th
/// percentile duration, and the shares transferred and ending in voicemail, from the
/// agent's call index.
#[utoipa::path(
    get, path = "/v1/agents/{id}/calls/stats", tag = "calls",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("days" = Option<u32>, Query, description = "Days back, today included: 1 to 90 (default 30)", minimum = 1, maximum = 90),
    ),
    responses(
        (status = 200, description = "The statistics", body = CallStats),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
        (status = 502, description = "S3 failed", body = ErrorBody),
        (status = 503, description = "This control plane has no AWS access (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn call_stats(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<CallStats>, ApiError> {
    let mut days = 30;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "days" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_STATS_DAYS).contains(&n) => days = n,
                _ => {
                    return Err(ApiError::invalid(
                        "days",
                        format!("must be a whole number from 1 to {MAX_STATS_DAYS}"),
                    ));
                }
            },
            other => return Err(ApiError::invalid(other.to_owned(), "is not a parameter of this route")),
        }
    }
    let bucket = bucket(&state, &tenant, &id).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let first = today - time::Duration::days(i64::from(days) - 1);
    // A call that started on the first day may have ended the next.
    let segments = state.call_index.read(&state.aws()?.s3, &bucket, Some(first)).await.map_err(index_error)?;
    Ok(axum::Json(stats(segments.iter().flat_map(|s| s.iter()), first, today)))
}

/// The statistics of `calls` that started from `first` to `last` (UTC days).
pub fn stats<'a>(
    calls: impl Iterator<Item = &'a crate::call_index::IndexedCall>,
    first: time::Date,
    last: time::Date,
) -> CallStats {
    let span = (last - first).whole_days().max(0) as usize + 1;
    let mut by_day: Vec<CallDay> = (0..span)
        .map(|i| {
            let d = first + time::Duration::days(i as i64);
            CallDay {
                date: format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day()),
                calls: 0,
                by_end_reason: Default::default(),
            }
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut durations = Vec::new();
    let (mut transferred, mut voicemail) = (0u64, 0u64);
    for call in calls {
        let Some(day) = call.started_at.map(|t| t.date()) else { continue };
        if day < first || day > last || !seen.insert(&call.call_sid) {
            continue;
        }
        let slot = &mut by_day[(day - first).whole_days() as usize];
        slot.calls += 1;
        *slot.by_end_reason.entry(call.end_reason.clone()).or_default() += 1;
        durations.push(call.duration_secs);
        transferred += u64::from(call.end_reason == "transferred");
        voicemail += u64::from(call.voicemail);
    }
    durations.sort_unstable_by(f64::total_cmp);
    let n = durations.len();
    // Nearest rank: the smallest value with at least q of the calls at or below it.
    let rank = |q: f64| (n > 0).then(|| durations[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
    let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
    CallStats {
        days: by_day,
        calls: n as u64,
        median_duration_secs: rank(0.5),
        p90_duration_secs: rank(0.9),
        transferred_share: share(transferred),
        voicemail_share: share(voicemail),
    }
}

/// A JSON object from the bucket; `None` if it does not exist.
async fn read_json(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(object) = get(s3, bucket, key).await? else { return Ok(None) };
    if object.content_length().unwrap_or_default() > MAX_JSON_BYTES {
        return Err(ApiError::Upstream(anyhow::anyhow!("s3://{bucket}/{key} is larger than {MAX_JSON_BYTES} bytes")));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| ApiError::Upstream(anyhow::Error::new(e).context(format!("read s3://{bucket}/{key}"))))?
        .into_bytes();
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::Upstream(anyhow::Error::new(e).context(format!("s3://{bucket}/{key} is not JSON"))))
}

/// GetObject; `None` for a missing key or bucket.
async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<GetObjectOutput>, ApiError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
        Err(e) => Err(ApiError::Upstream(anyhow::Error::new(e).context(format!("get s3://{bucket}/{key}")))),
    }
}

async fn json_artifact(
    state: &AppState,
    tenant: &TenantId,
    agent: &AgentId,
    call: &CallSid,
    file: CallFile,
) -> Result<Response, ApiError> {
    let bucket = bucket(state, tenant, agent).await?;
    match read_json(&state.aws()?.s3, &bucket, &key(call, file)).await? {
        Some(value) => Ok(axum::Json(value).into_response()),
        None => Err(ApiError::NotFound("call")),
    }
}

/// The call's transcript (as the runtime wrote it: turns, interruptions, tool calls, DTMF).
#[utoipa::path(
    get, path = "/v1/agents/{id}/calls/{callSid}/transcript", tag = "calls",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("callSid" = agent_spec::CallSid, Path, description = "Twilio call SID"),
    ),
    responses(
        (status = 200, description = "The transcript JSON", body = serde_json::Value),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant, or no such call", body = ErrorBody),
        (status = 422, description = "Not a call SID", body = ErrorBody),
        (status = 502, description = "S3 failed", body = ErrorBody),
        (status = 503, description = "This control plane has no AWS access (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_transcript(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    CallPath(call): CallPath,
) -> Result<Response, ApiError> {
    json_artifact(&state, &tenant, &id, &call, CallFile::Transcript).await
}

/// The call's metadata (times, numbers, end reason, …).
#[utoipa::path(
    get, path = "/v1/agents/{id}/calls/{callSid}/metadata", tag = "calls",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("callSid" = agent_spec::CallSid, Path, description = "Twilio call SID"),
    ),
    responses(
        (status = 200, description = "The metadata JSON", body = serde_json::Value),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant, or no such call", body = ErrorBody),
        (status = 422, description = "Not a call SID", body = ErrorBody),
        (status = 502, description = "S3 failed", body = ErrorBody),
        (status = 503, description = "This control plane has no AWS access (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_metadata(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    CallPath(call): CallPath,
) -> Result<Response, ApiError> {
    json_artifact(&state, &tenant, &id, &call, CallFile::Metadata).await
}

/// The call's recording (WAV), streamed.
#[utoipa::path(
    get, path = "/v1/agents/{id}/calls/{callSid}/recording", tag = "calls",
    params(
        ("id" = agent_spec::AgentId, Path, description = "Agent id"),
        ("callSid" = agent_spec::CallSid, Path, description = "Twilio call SID"),
    ),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav"),
        (status = 401, description = "Missing, invalid or revoked API key", body = ErrorBody),
        (status = 404, description = "No such agent for this tenant, or no recording of that call", body = ErrorBody),
        (status = 422, description = "Not a call SID", body = ErrorBody),
        (status = 502, description = "S3 failed", body = ErrorBody),
        (status = 503, description = "This control plane has no AWS access (TEMPOVOICE_DEPLOYER=off)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn get_recording(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    AgentPath(id): AgentPath,
    CallPath(call): CallPath,
) -> Result<Response, ApiError> {
    let bucket = bucket(&state, &tenant, &id).await?;
    let object = get(&state.aws()?.s3, &bucket, &key(&call, CallFile::Recording))
        .await?
        .ok_or(ApiError::NotFound("recording"))?;
    let mut response = Body::from_stream(ReaderStream::new(object.body.into_async_read())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    if let Some(len) = object.content_length.filter(|l| *l >= 0) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len as u64));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_order() {
        let a = CallCursor { ended_ms: 2, call: "CA0123456789abcdef0123456789abcdef".into() };
        assert_eq!(CallCursor::decode(&a.encode()), Some(a.clone()));
        assert_eq!(CallCursor::decode("1.../../etc"), None);
        let b = CallCursor { ended_ms: 1, call: "CAffffffffffffffffffffffffffffffff".into() };
        assert!(a > b, "newer sorts after, so newest-first is descending");
    }
}
