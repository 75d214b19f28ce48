//! Reading an agent's call index (`index/{day}/{task}-{segment}.jsonl`, written by its
//! runtime tasks; see [`agent_spec::calls`]). A read lists the index's objects from
//! the first day it needs on (a listing is reused for [`LIST_TTL`]), and fetches only
//! the segments whose ETag it has not seen: a closed segment is fetched once, the
//! segment a task is writing each time it changed. No read lists `calls/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_spec::CallSid;
use agent_spec::calls::{CallIndexEntry, INDEX_PREFIX, index_day};
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use futures::{StreamExt, TryStreamExt};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// How long a listing of an agent's index is reused: a call shows within this (and
/// the runtime's 2 s flush) of its end.
pub const LIST_TTL: Duration = Duration::from_secs(2);
/// Segments fetched at once.
const FETCH_CONCURRENCY: usize = 16;
/// Segments kept in memory, across agents; past it the cache starts afresh.
const MAX_CACHED_SEGMENTS: usize = 50_000;
/// The largest segment read (2,000 calls of a few hundred bytes each fit well).
const MAX_SEGMENT_BYTES: i64 = 8 * 1024 * 1024;

/// One call of the index.
#[derive(Debug, Clone)]
pub struct IndexedCall {
    pub call_sid: CallSid,
    pub started_at: Option<OffsetDateTime>,
    /// When it ended, in Unix milliseconds.
    pub ended_ms: i64,
    pub duration_secs: f64,
    pub from: Option<String>,
    pub end_reason: String,
    pub voicemail: bool,
}

impl IndexedCall {
    fn parse(line: &str) -> Option<Self> {
        let entry: CallIndexEntry = serde_json::from_str(line).ok()?;
        let ended = OffsetDateTime::parse(&entry.ended_at, &Rfc3339).ok()?;
        Some(Self {
            call_sid: CallSid::parse(&entry.call_sid).ok()?,
            started_at: OffsetDateTime::parse(&entry.started_at, &Rfc3339).ok(),
            ended_ms: (ended.unix_timestamp_nanos() / 1_000_000) as i64,
            duration_secs: entry.duration_secs,
            from: entry.from,
            voicemail: entry.voicemail || matches!(entry.end_reason.as_str(), "voicemail" | "answering_machine"),
            end_reason: entry.end_reason,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IndexError(String);

type Segment = Arc<[IndexedCall]>;
/// An index's objects: keys and ETags.
type Listing = Arc<Vec<(String, String)>>;

#[derive(Default)]
pub struct CallIndexReader {
    /// `{bucket}/{key}` → its ETag and calls.
    segments: Mutex<HashMap<String, (String, Segment)>>,
    /// `{bucket}/{start}` → when listed, and the keys and ETags.
    listings: Mutex<HashMap<String, (Instant, Listing)>>,
}

impl CallIndexReader {
    /// The segments of calls that ended on `since` or later (all of them without),
    /// the calls of each in the order they ended on its task.
    pub async fn read(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        since: Option<Date>,
    ) -> Result<Vec<Segment>, IndexError> {
        let listed = self.list(s3, bucket, since).await?;
        let wanted: Vec<(String, String)> = listed
            .iter()
            .filter(|(key, _)| index_day(key).is_some_and(|d| since.is_none_or(|s| d >= s)))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        {
            let cache = self.segments.lock().expect("index cache lock");
            for (key, etag) in wanted {
                match cache.get(&format!("{bucket}/{key}")) {
                    Some((seen, calls)) if *seen == etag => out.push(Arc::clone(calls)),
                    _ => missing.push(key),
                }
            }
        }
        let fetched: Vec<(String, String, Segment)> = futures::stream::iter(missing)
            .map(|key| fetch(s3, bucket, key))
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut cache = self.segments.lock().expect("index cache lock");
        if cache.len() + fetched.len() > MAX_CACHED_SEGMENTS {
            cache.clear();
        }
        for (key, etag, calls) in fetched {
            out.push(Arc::clone(&calls));
            cache.insert(format!("{bucket}/{key}"), (etag, calls));
        }
        Ok(out)
    }

    async fn list(&self, s3: &aws_sdk_s3::Client, bucket: &str, since: Option<Date>) -> Result<Listing, IndexError> {
        // Keys sort by day: start after the day before `since`.
        let start = since.and_then(|d| d.previous_day()).map(|d| agent_spec::calls::index_key(d, "~", 9999));
        let cache_key = format!("{bucket}/{}", start.as_deref().unwrap_or(""));
        if let Some((at, listed)) = self.listings.lock().expect("listing cache lock").get(&cache_key)
            && at.elapsed() < LIST_TTL
        {
            return Ok(Arc::clone(listed));
        }
        let pages = list_index(s3, bucket, start).await;
        let listed: Vec<(String, String)> = match pages {
            Ok(pages) => pages
                .into_iter()
                .flat_map(|p| p.contents.unwrap_or_default())
                .filter_map(|o| Some((o.key?, o.e_tag.unwrap_or_default())))
                .collect(),
            // Never deployed, or its bucket purged: no calls.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => Vec::new(),
            Err(e) => {
                return Err(IndexError(format!(
                    "list s3://{bucket}/{INDEX_PREFIX}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )));
            }
        };
        let listed = Arc::new(listed);
        let mut listings = self.listings.lock().expect("listing cache lock");
        listings.retain(|_, (at, _)| at.elapsed() < LIST_TTL);
        listings.insert(cache_key, (Instant::now(), Arc::clone(&listed)));
        Ok(listed)
    }
}

/// The index's listing in `b`, after the key `a`, every page.
async fn list_index(
    s3: &aws_sdk_s3::Client,
    b: &str,
    a: Option<String>,
) -> Result<Vec<ListObjectsV2Output>, aws_sdk_s3::error::SdkError<ListObjectsV2Error>> {
    s3.list_objects_v2().bucket(b).prefix(INDEX_PREFIX).set_start_after(a).into_paginator().send().try_collect().await
}

async fn fetch(s3: &aws_sdk_s3::Client, bucket: &str, key: String) -> Result<(String, String, Segment), IndexError> {
    let object = match s3.get_object().bucket(bucket).key(&key).send().await {
        Ok(o) => o,
        // Listed, then gone (the bucket purged meanwhile): nothing in it.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return Ok((key, String::new(), Arc::from(Vec::new())));
        }
        Err(e) => {
            return Err(IndexError(format!(
                "read s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )));
        }
    };
    if object.content_length().unwrap_or_default() > MAX_SEGMENT_BYTES {
        return Err(IndexError(format!("s3://{bucket}/{key} is larger than {MAX_SEGMENT_BYTES} bytes")));
    }
    let etag = object.e_tag().unwrap_or_default().to_owned();
    let bytes =
        object.body.collect().await.map_err(|e| IndexError(format!("read s3://{bucket}/{key}: {e}")))?.into_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let mut bad = 0;
    let calls: Vec<IndexedCall> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let call = IndexedCall::parse(l);
            bad += usize::from(call.is_none());
            call
        })
        .collect();
    if bad > 0 {
        tracing::warn!(bucket, key, lines = bad, "call index lines that do not read were skipped");
    }
    Ok((key, etag, Arc::from(calls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_and_a_machine_is_voicemail() {
        let line = r#"{"call_sid":"CA0123456789abcdef0123456789abcdef","started_at":"2026-11-28T10:00:00Z",
            "ended_at":"2026-11-28T10:01:00.5Z","duration_secs":60.5,"end_reason":"answering_machine"}"#
            .replace('\n', "");
        let call = IndexedCall::parse(&line).unwrap();
        let started_ms = (call.started_at.unwrap().unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!((call.ended_ms - started_ms, call.voicemail), (60_500, true));
        assert!(IndexedCall::parse(r#"{"call_sid":"../x"}"#).is_none());
    }
}
