//! `/v1/agents/{id}/calls`: an agent's calls, read from its transcript bucket,
//! where the runtime writes `calls/{callSid}/transcript.json`, `recording.wav` and
//! `metadata.json` at the end of each call.
//!
//! The call sid is validated (`CA` + 32 hex digits) before any key is built, and the
//! agent must be the tenant's (or have been: a deleted agent's bucket is kept, and so
//! are its calls).

use agent_spec::api::{CallPage, CallSummary, ErrorBody};
use agent_spec::calls::{CALLS_PREFIX, CallFile};
use agent_spec::{AgentId, CallSid, TenantId};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use deployer_lambda::naming::AgentNames;
use futures::StreamExt;
use tokio_util::io::ReaderStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AgentPath, CallPath, Tenant};
use super::outbound::{__path_place_call, place_call};
use super::{AppState, page_query};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;
/// Metadata objects read at once for one page.
const READ_CONCURRENCY: usize = 16;
/// Largest JSON artifact returned (transcripts of very long calls stay well under it).
const MAX_JSON_BYTES: i64 = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls, place_call))
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

/// Position in the newest-first list: `{lastModifiedMs}.{callSid}`
/// ([`crate::store::cursor`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallCursor {
    modified_ms: i64,
    call: String,
}

impl CallCursor {
    fn encode(&self) -> String {
        crate::store::cursor::encode(self.modified_ms, &self.call)
    }

    fn decode(raw: &str) -> Option<Self> {
        let (modified_ms, call) = crate::store::cursor::decode(raw, CallSid::parse)?;
        Some(Self { modified_ms, call: call.to_string() })
    }
}

/// List the agent's calls, newest first.
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
    let s3 = &state.aws()?.s3;

    // Every call's metadata object with its time. S3 lists by key (the call sid), so
    // the newest-first order needs the whole listing; it holds keys only.
    let listed: Result<Vec<_>, _> =
        s3.list_objects_v2().bucket(&bucket).prefix(CALLS_PREFIX).into_paginator().send().try_collect().await;
    let objects: Vec<aws_sdk_s3::types::Object> = match listed {
        Ok(pages) => pages.into_iter().flat_map(|p| p.contents.unwrap_or_default()).collect(),
        // Never deployed, or its bucket purged: no calls.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => Vec::new(),
        Err(e) => {
            return Err(ApiError::Upstream(
                anyhow::Error::new(e).context(format!("list s3://{bucket}/{CALLS_PREFIX}")),
            ));
        }
    };
    let mut calls: Vec<CallCursor> = objects
        .iter()
        .filter_map(|o| {
            let sid = CallFile::Metadata.call_of(o.key()?)?;
            let sid = CallSid::parse(sid).ok()?;
            let modified_ms = o.last_modified().map(|t| t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000))?;
            Some(CallCursor { modified_ms, call: sid.to_string() })
        })
        .collect();
    calls.sort_unstable_by(|a, b| b.cmp(a));
    let start = match &after {
        Some(c) => calls.partition_point(|x| x >= c),
        None => 0,
    };
    let page: Vec<CallCursor> = calls.iter().skip(start).take(limit as usize).cloned().collect();
    let next = (start + page.len() < calls.len()).then(|| page.last().map(CallCursor::encode)).flatten();

    let summaries: Vec<CallSummary> = futures::stream::iter(page)
        .map(|c| {
            let (s3, bucket) = (s3.clone(), bucket.clone());
            async move {
                let sid = CallSid::parse(&c.call).expect("listed sids were validated");
                let metadata = read_json(&s3, &bucket, &key(&sid, CallFile::Metadata)).await;
                summary(sid, metadata)
            }
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    Ok(axum::Json(CallPage { calls: summaries, next_cursor: next }))
}

/// The list entry of a call, from its metadata (fields it lacks are left empty; an
/// unreadable metadata object still lists the call).
fn summary(call_sid: CallSid, metadata: Result<Option<serde_json::Value>, ApiError>) -> CallSummary {
    let metadata = match metadata {
        Ok(Some(v)) => v,
        Ok(None) => serde_json::Value::Null,
        Err(e) => {
            tracing::warn!(%call_sid, error = %e, "call metadata unreadable");
            serde_json::Value::Null
        }
    };
    let text = |k: &str| metadata.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    CallSummary {
        started_at: text("started_at")
            .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()),
        duration_secs: metadata.get("duration_secs").and_then(|v| v.as_f64()),
        from: text("from"),
        end_reason: text("end_reason"),
        call_sid,
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
        let a = CallCursor { modified_ms: 2, call: "CA0123456789abcdef0123456789abcdef".into() };
        assert_eq!(CallCursor::decode(&a.encode()), Some(a.clone()));
        assert_eq!(CallCursor::decode("1.../../etc"), None);
        let b = CallCursor { modified_ms: 1, call: "CAffffffffffffffffffffffffffffffff".into() };
        assert!(a > b, "newer sorts after, so newest-first is descending");
    }
}
