//! The agent's call index, as this task writes it: each call that ends is added
//! to today's open segment (`index/{day}/{task}-{segment}.jsonl`, see
//! [`agent_spec::calls`]), which is written again at most every
//! [`FLUSH_EVERY`] while calls end, and once more when the task stops. Only this task
//! writes its segments, so a rewrite never loses another writer's line. A segment is
//! closed when it holds [`INDEX_SEGMENT_CALLS`] calls or its day is over, and is then
//! never written again.
//!
//! A failed write keeps the segment pending and is tried again at the next flush; the
//! calls themselves are in `calls/` whatever happens to the index
//! (`tempovoice_index_write_errors_total` counts the failures).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_spec::calls::{CallIndexEntry, INDEX_SEGMENT_CALLS, index_key};
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use crate::artifacts::ObjectStore;
use crate::metrics::Metrics;

/// How often pending index segments are written while calls end.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

pub struct CallIndex {
    objects: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
    /// This task's name in its segments' keys.
    task: String,
    state: std::sync::Mutex<State>,
    /// Serializes writes, so an older body never overwrites a newer one.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    open: Option<Segment>,
    /// Closed segments whose last write has not succeeded yet.
    closed: Vec<Segment>,
}

#[derive(Clone)]
struct Segment {
    day: Date,
    number: u32,
    lines: String,
    calls: usize,
    /// Lines added since it was last written.
    dirty: bool,
}

impl Segment {
    fn key(&self, task: &str) -> String {
        index_key(self.day, task, self.number)
    }
}

impl CallIndex {
    /// `task` must be unique among the agent's tasks (the ECS task id, or a random one).
    pub fn new(objects: Arc<dyn ObjectStore>, metrics: Arc<Metrics>, task: String) -> Self {
        Self { objects, metrics, task, state: Default::default(), writing: Default::default() }
    }

    pub fn task(&self) -> &str {
        &self.task
    }

    /// Adds a call that ended; it is written at the next flush.
    pub fn record(&self, entry: &CallIndexEntry) {
        self.record_at(entry, OffsetDateTime::now_utc().date());
    }

    fn record_at(&self, entry: &CallIndexEntry, today: Date) {
        let Ok(mut line) = serde_json::to_string(entry) else { return };
        line.push('\n');
        let mut state = self.state.lock().expect("index lock");
        let state = &mut *state;
        let next = match &state.open {
            Some(open) if open.day == today && open.calls < INDEX_SEGMENT_CALLS => None,
            Some(open) if open.day == today => Some(open.number + 1),
            _ => Some(0),
        };
        if let Some(number) = next {
            if let Some(old) = state.open.take() {
                state.closed.push(old);
            }
            state.open = Some(Segment { day: today, number, lines: String::new(), calls: 0, dirty: false });
        }
        let open = state.open.as_mut().expect("opened above");
        open.lines.push_str(&line);
        open.calls += 1;
        open.dirty = true;
    }

    /// Writes every pending segment; returns how many could not be written.
    pub async fn flush(&self) -> usize {
        let _one_at_a_time = self.writing.lock().await;
        let pending: Vec<Segment> = {
            let state = self.state.lock().expect("index lock");
            state.closed.iter().chain(state.open.iter().filter(|s| s.dirty)).cloned().collect()
        };
        let mut failed = 0;
        for segment in pending {
            let key = segment.key(&self.task);
            match self.objects.put(&key, segment.lines.clone().into_bytes(), "application/x-ndjson").await {
                Ok(()) => {
                    let mut state = self.state.lock().expect("index lock");
                    state.closed.retain(|s| (s.day, s.number) != (segment.day, segment.number));
                    // Written as it was read: lines added meanwhile keep it dirty.
                    if let Some(open) =
                        state.open.as_mut().filter(|o| (o.day, o.number) == (segment.day, segment.number))
                        && open.calls == segment.calls
                    {
                        open.dirty = false;
                    }
                }
                Err(e) => {
                    failed += 1;
                    self.metrics.index_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key, error = %e, "write the call index; it is tried again");
                }
            }
        }
        failed
    }

    /// Flushes every [`FLUSH_EVERY`] until `stop`, then once more.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => { self.flush().await; }
                () = stop.cancelled() => break,
            }
        }
        let left = self.flush().await;
        if left > 0 {
            tracing::error!(segments = left, "call index segments left unwritten at shutdown");
        }
    }
}

/// A name for this task in index keys: the ECS task id from the task metadata
/// endpoint's URI when there is one, else random.
pub fn task_name() -> String {
    let from_ecs = std::env::var("ECS_CONTAINER_METADATA_URI_V4").ok().and_then(|uri| {
        // …/v4/{task id}-{container id}
        let last = uri.rsplit('/').next()?.to_owned();
        let id: String = last.split('-').next()?.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
        (!id.is_empty()).then_some(id)
    });
    from_ecs.unwrap_or_else(|| format!("t{:016x}", rand::random::<u64>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::UploadError;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use time::macros::date;

    #[derive(Default)]
    struct Bucket {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl ObjectStore for Bucket {
        fn put<'a>(
            &'a self,
            key: &'a str,
            body: Vec<u8>,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(UploadError::Put { key: key.into(), reason: "down".into() });
                }
                self.objects.lock().unwrap().insert(key.to_owned(), body);
                Ok(())
            })
        }

        fn put_file<'a>(
            &'a self,
            _: &'a str,
            _: &'a std::path::Path,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
            unreachable!("the index writes bodies")
        }

        fn create_new<'a>(
            &'a self,
            _: &'a str,
            _: Vec<u8>,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<bool, UploadError>> {
            unreachable!("the index writes bodies")
        }
    }

    fn entry(n: usize) -> CallIndexEntry {
        CallIndexEntry {
            call_sid: format!("CA{n:032x}"),
            started_at: "2026-11-28T10:00:00Z".into(),
            ended_at: "2026-11-28T10:01:00Z".into(),
            duration_secs: 60.0,
            from: Some("+15550001234".into()),
            to: None,
            direction: Some("inbound".into()),
            end_reason: "end_call".into(),
            voicemail: false,
            answered_by: None,
        }
    }

    fn lines(bucket: &Bucket, key: &str) -> usize {
        bucket.objects.lock().unwrap().get(key).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
    }

    #[tokio::test]
    async fn segments_by_day_and_size_and_a_failed_write_is_kept() {
        let bucket = Arc::new(Bucket::default());
        let index = CallIndex::new(bucket.clone(), Arc::default(), "tabc".into());
        let (day1, day2) = (date!(2026 - 11 - 28), date!(2026 - 11 - 29));
        for n in 0..3 {
            index.record_at(&entry(n), day1);
        }
        assert_eq!(index.flush().await, 0);
        assert_eq!(lines(&bucket, "index/2026-11-28/tabc-0000.jsonl"), 3);
        // Nothing new: nothing written.
        bucket.objects.lock().unwrap().clear();
        assert_eq!(index.flush().await, 0);
        assert!(bucket.objects.lock().unwrap().is_empty());

        // S3 down across a day change: both segments wait, and are written later.
        bucket.down.store(true, Ordering::SeqCst);
        index.record_at(&entry(3), day1);
        index.record_at(&entry(4), day2);
        assert_eq!(index.flush().await, 2);
        bucket.down.store(false, Ordering::SeqCst);
        assert_eq!(index.flush().await, 0);
        assert_eq!(lines(&bucket, "index/2026-11-28/tabc-0000.jsonl"), 4);
        assert_eq!(lines(&bucket, "index/2026-11-29/tabc-0000.jsonl"), 1);

        // A full segment closes; the next opens.
        for n in 0..INDEX_SEGMENT_CALLS {
            index.record_at(&entry(10 + n), day2);
        }
        assert_eq!(index.flush().await, 0);
        assert_eq!(lines(&bucket, "index/2026-11-29/tabc-0000.jsonl"), INDEX_SEGMENT_CALLS);
        assert_eq!(lines(&bucket, "index/2026-11-29/tabc-0001.jsonl"), 1);
        let text =
            String::from_utf8(bucket.objects.lock().unwrap()["index/2026-11-29/tabc-0001.jsonl"].clone()).unwrap();
        let parsed: CallIndexEntry = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(parsed, entry(10 + INDEX_SEGMENT_CALLS - 1));
    }
}
