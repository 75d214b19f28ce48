//! Call artifacts: what a call leaves behind in `s3://{agent bucket}/calls/{callSid}/`.
//!
//! - `transcript.json`: [`Transcript`], turns with role, text, times, the interrupted
//!   flag and tool calls, and the DTMF digits pressed;
//! - `metadata.json`: [`CallMetadata`];
//! - `recording.wav` (when recording is on): stereo 8 kHz 16-bit, caller left, agent
//!   right, written to a file while the call runs ([`Recorder`]), never held in memory;
//! - `voicemail.wav`: the caller's message when the `voicemail` tool ran.
//!
//! [`ArtifactStore`] uploads them; when S3 fails, the files go to a spool directory and
//! a background task retries with back-off until they are uploaded. Leftovers from a
//! previous process are uploaded on start-up. Nothing is deleted before S3 has it.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_spec::calls::CALL_FILES;
pub use agent_spec::calls::{CallMetadata, DtmfRecord, Role, ToolCallRecord, Transcript, Turn, WebhookDelivery};

/// The bytes the spool may hold (`TEMPOVOICE_SPOOL_MAX_MB`): recordings being
/// written and every call's files waiting for S3. Recordings take their room ahead,
/// [`RECORDING_CHUNK`] at a time, and stop when there is none; a call's transcript and
/// metadata are always written (they are small, and the call's record).
#[derive(Debug)]
pub struct DiskBudget {
    cap: u64,
    used: AtomicU64,
}

/// How much room a recording takes at a time (about 2 s of a stereo recording).
pub const RECORDING_CHUNK: u64 = 64 * 1024;

impl DiskBudget {
    pub fn new(cap: u64) -> Self {
        Self { cap, used: AtomicU64::new(0) }
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit under the cap.
    pub fn reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }

    /// Counts `bytes` written whatever the cap (a call's transcript and metadata).
    pub fn add(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn release(&self, bytes: u64) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes)));
    }
}

/// Why a recording stopped before its call ended.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the spool is full ({cap} bytes, TEMPOVOICE_SPOOL_MAX_MB)")]
    SpoolFull { cap: u64 },
    #[error(transparent)]
    Write(#[from] hound::Error),
}

/// Writes the stereo call recording to a file as the call goes, within the spool's
/// [`DiskBudget`].
pub struct Recorder {
    /// `None` once finished.
    writer: Option<hound::WavWriter<BufWriter<std::fs::File>>>,
    path: PathBuf,
    budget: Arc<DiskBudget>,
    /// Bytes taken from the budget and not yet written.
    room: u64,
    /// Bytes taken from the budget in all.
    taken: u64,
    channels: u16,
}

impl Recorder {
    /// A recording at `path`; refused when the spool has no room for its first chunk.
    pub fn create(path: PathBuf, channels: u16, budget: Arc<DiskBudget>) -> Result<Self, RecordError> {
        if !budget.reserve(RECORDING_CHUNK) {
            return Err(RecordError::SpoolFull { cap: budget.cap() });
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate: crate::audio::SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let opened = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            hound::WavWriter::create(&path, spec)
        })();
        match opened {
            Ok(writer) => {
                // The WAV header (44 bytes) comes out of the first chunk.
                Ok(Self {
                    writer: Some(writer),
                    path,
                    budget,
                    room: RECORDING_CHUNK - 44,
                    taken: RECORDING_CHUNK,
                    channels,
                })
            }
            Err(e) => {
                budget.release(RECORDING_CHUNK);
                Err(e.into())
            }
        }
    }

    /// One frame: caller μ-law and, for a stereo recording, the agent audio heard at
    /// the same time (shorter is padded with silence). At the spool's cap the
    /// recording stops: [`RecordError::SpoolFull`], and what was written is kept.
    pub fn write_frame(&mut self, caller: &[u8], agent: Option<&[u8]>) -> Result<(), RecordError> {
        let samples = match agent {
            None => caller.len(),
            Some(agent) => caller.len().max(agent.len()),
        };
        let bytes = (samples * 2 * usize::from(self.channels)) as u64;
        while self.room < bytes {
            if !self.budget.reserve(RECORDING_CHUNK) {
                return Err(RecordError::SpoolFull { cap: self.budget.cap() });
            }
            self.room += RECORDING_CHUNK;
            self.taken += RECORDING_CHUNK;
        }
        self.room -= bytes;
        let writer = self.writer.as_mut().expect("a recorder is written until it is finished");
        match agent {
            None => {
                for b in caller {
                    writer.write_sample(crate::audio::ulaw_decode(*b))?;
                }
            }
            Some(agent) => {
                let n = caller.len().max(agent.len());
                for i in 0..n {
                    let c = caller.get(i).copied().unwrap_or(crate::audio::ULAW_SILENCE);
                    let a = agent.get(i).copied().unwrap_or(crate::audio::ULAW_SILENCE);
                    writer.write_sample(crate::audio::ulaw_decode(c))?;
                    writer.write_sample(crate::audio::ulaw_decode(a))?;
                }
            }
        }
        Ok(())
    }

    /// Closes the file; the room taken and not written goes back to the budget (the
    /// file's own bytes go back when it leaves the spool).
    pub fn finish(mut self) -> Result<PathBuf, hound::Error> {
        let writer = self.writer.take().expect("a recorder is finished once");
        self.budget.release(std::mem::take(&mut self.room));
        match writer.finalize() {
            Ok(()) => Ok(self.path.clone()),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    fn discard(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.budget.release(std::mem::take(&mut self.taken));
    }
}

impl Drop for Recorder {
    /// A recording dropped unfinished (it failed) is deleted, and its room given back.
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            self.discard();
        }
    }
}

/// The files of one finished call, on local disk.
#[derive(Debug)]
pub struct CallArtifacts {
    pub call_sid: String,
    pub transcript: Vec<u8>,
    pub metadata: Vec<u8>,
    /// The call's line in the agent's call index.
    pub index: agent_spec::calls::CallIndexEntry,
    pub recording: Option<PathBuf>,
    pub voicemail: Option<PathBuf>,
}

/// Why a file did not reach the object store (the call stays in the spool).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("put {key}: {reason}")]
    Put { key: String, reason: String },
}

/// Where artifacts go.
pub trait ObjectStore: Send + Sync + 'static {
    fn put_file<'a>(
        &'a self,
        key: &'a str,
        path: &'a Path,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>>;

    /// Writes `body` at `key`, replacing what is there.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>>;

    /// Writes `body` at `key` only if no object is there: `Ok(false)` when one is
    /// (or another writer is creating it right now).
    fn create_new<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, UploadError>>;
}

/// S3, in the agent's bucket.
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

impl ObjectStore for S3Store {
    fn put_file<'a>(
        &'a self,
        key: &'a str,
        path: &'a Path,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        Box::pin(async move {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
                .await
                .map_err(|e| UploadError::Read { path: path.to_owned(), reason: e.to_string() })?;
            self.put_body(key, body, content_type).await
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        Box::pin(self.put_body(key, body.into(), content_type))
    }

    fn create_new<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, UploadError>> {
        Box::pin(async move {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .if_none_match("*")
                .body(body.into())
                .send()
                .await;
            match sent {
                Ok(_) => Ok(true),
                // 412 PreconditionFailed: the object exists. 409
                // ConditionalRequestConflict: another conditional write of the same key
                // is under way; one of the two wins, and it is not this one.
                Err(e) if matches!(e.raw_response().map(|r| r.status().as_u16()), Some(412 | 409)) => Ok(false),
                Err(e) => Err(UploadError::Put {
                    key: format!("s3://{}/{key}", self.bucket),
                    reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                }),
            }
        })
    }
}

impl S3Store {
    async fn put_body(
        &self,
        key: &str,
        body: aws_sdk_s3::primitives::ByteStream,
        content_type: &str,
    ) -> Result<(), UploadError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| UploadError::Put {
                key: format!("s3://{}/{key}", self.bucket),
                reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}

/// The bytes of the files under `dir`, recursively.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Releases a call claimed for writing or uploading.
struct Claim<'a> {
    store: &'a ArtifactStore,
    call_sid: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.store.busy.lock().expect("spool lock").remove(&self.call_sid);
    }
}

/// Uploads call artifacts, spooling what S3 does not take.
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// Calls being written or uploaded right now: one uploader per call at a time.
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
    spool: PathBuf,
    spooled_calls: AtomicU64,
    disk: Arc<DiskBudget>,
    retry_first: Duration,
    retry_max: Duration,
}

impl ArtifactStore {
    pub fn new(store: Arc<dyn ObjectStore>, spool: PathBuf, retry_first: Duration, retry_max: Duration) -> Self {
        Self {
            store,
            busy: Default::default(),
            spool,
            spooled_calls: AtomicU64::new(0),
            disk: Arc::new(DiskBudget::new(u64::MAX)),
            retry_first,
            retry_max,
        }
    }

    /// The spool holds at most `bytes` (see [`DiskBudget`]).
    pub fn with_spool_cap(mut self, bytes: u64) -> Self {
        self.disk = Arc::new(DiskBudget::new(bytes));
        self
    }

    /// The spool's budget, which recordings draw on.
    pub fn disk(&self) -> Arc<DiskBudget> {
        Arc::clone(&self.disk)
    }

    pub fn spool_dir(&self) -> &Path {
        &self.spool
    }

    /// Calls waiting in the spool.
    pub fn spooled(&self) -> u64 {
        self.spooled_calls.load(Ordering::Relaxed)
    }

    /// Claims the call's media stream: `calls/{callSid}/stream.json`, written only if
    /// no stream claimed the call before. `Ok(false)` when one did.
    pub async fn claim_stream(&self, call_sid: &str, stream_sid: &str, agent_id: &str) -> Result<bool, UploadError> {
        let body = serde_json::json!({
            "call_sid": call_sid,
            "stream_sid": stream_sid,
            "agent_id": agent_id,
            "claimed_at": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        let key = format!("calls/{call_sid}/stream.json");
        self.store.create_new(&key, serde_json::to_vec(&body).unwrap_or_default(), "application/json").await
    }

    /// A scratch path for a file of this call (recordings are written here during the call).
    pub fn scratch_path(&self, call_sid: &str, file: &str) -> PathBuf {
        self.spool.join("active").join(call_sid).join(file)
    }

    /// Writes the call's files into its spool directory, then uploads them. Returns
    /// whether everything reached the store; if not, the call stays spooled.
    pub async fn store(&self, artifacts: CallArtifacts) -> Result<bool, std::io::Error> {
        let _claim = self.claim(&artifacts.call_sid).await;
        let dir = self.spool.join("pending").join(&artifacts.call_sid);
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("transcript.json"), &artifacts.transcript).await?;
        self.disk.add((artifacts.transcript.len() + artifacts.metadata.len()) as u64);
        for (src, name) in [(&artifacts.recording, "recording.wav"), (&artifacts.voicemail, "voicemail.wav")] {
            if let Some(src) = src {
                tokio::fs::rename(src, dir.join(name)).await?;
            }
        }
        // The metadata file is written last: a directory with it is complete.
        tokio::fs::write(dir.join("metadata.json.tmp"), &artifacts.metadata).await?;
        tokio::fs::rename(dir.join("metadata.json.tmp"), dir.join("metadata.json")).await?;
        let _ = tokio::fs::remove_dir_all(self.spool.join("active").join(&artifacts.call_sid)).await;
        self.spooled_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.upload_dir(&artifacts.call_sid).await)
    }

    /// Waits until no one else writes or uploads this call, and holds it.
    async fn claim(&self, call_sid: &str) -> Claim<'_> {
        loop {
            if self.busy.lock().expect("spool lock").insert(call_sid.to_owned()) {
                return Claim { store: self, call_sid: call_sid.to_owned() };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn try_claim(&self, call_sid: &str) -> Option<Claim<'_>> {
        self.busy
            .lock()
            .expect("spool lock")
            .insert(call_sid.to_owned())
            .then(|| Claim { store: self, call_sid: call_sid.to_owned() })
    }

    /// Replaces the call's `metadata.json` (e.g. to record a webhook delivered after
    /// the call), through the spool like every artifact.
    pub async fn update_metadata(&self, call_sid: &str, metadata: &[u8]) -> Result<bool, std::io::Error> {
        let _claim = self.claim(call_sid).await;
        let dir = self.spool.join("pending").join(call_sid);
        let existed = dir.exists();
        let before = tokio::fs::metadata(dir.join("metadata.json")).await.map_or(0, |m| m.len());
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("metadata.json.tmp"), metadata).await?;
        self.disk.add(metadata.len() as u64);
        self.disk.release(before);
        tokio::fs::rename(dir.join("metadata.json.tmp"), dir.join("metadata.json")).await?;
        if !existed {
            self.spooled_calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.upload_dir(call_sid).await)
    }

    /// Uploads one spooled call; removes it when every file is in the store.
    async fn upload_dir(&self, call_sid: &str) -> bool {
        let dir = self.spool.join("pending").join(call_sid);
        // In `CALL_FILES` order: the metadata last, as it marks a complete call.
        for file in CALL_FILES {
            let name = file.name();
            let path = dir.join(name);
            if !path.exists() {
                continue;
            }
            let key = file.key(call_sid);
            if let Err(e) = self.store.put_file(&key, &path, file.content_type()).await {
                tracing::warn!(call_sid, error = %e, "artifact upload failed; kept in the spool");
                return false;
            }
            // Uploaded files are removed one by one, so a retry does not send them again.
            if name != "metadata.json" {
                let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
                if tokio::fs::remove_file(&path).await.is_ok() {
                    self.disk.release(size);
                }
            }
        }
        let left = dir_size(&dir);
        if tokio::fs::remove_dir_all(&dir).await.is_ok() {
            self.disk.release(left);
            self.spooled_calls.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Complete calls in the spool (those with `metadata.json`).
    pub fn pending_calls(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.spool.join("pending")) else { return Vec::new() };
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("metadata.json").exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    /// Counts what a previous process left, so that metrics, the retry loop and the
    /// spool's budget know. Recordings of calls that process never finished (it died
    /// mid-call, so they have no transcript or metadata to go with) are deleted.
    pub fn recover(&self) -> usize {
        let active = self.spool.join("active");
        if active.exists() {
            tracing::warn!(bytes = dir_size(&active), "deleting recordings of calls a previous process never finished");
            let _ = std::fs::remove_dir_all(&active);
        }
        let pending = self.pending_calls();
        self.spooled_calls.store(pending.len() as u64, Ordering::Relaxed);
        self.disk.add(dir_size(&self.spool.join("pending")));
        pending.len()
    }

    /// One pass over the spool. Returns how many calls are still waiting.
    pub async fn flush_spool(&self) -> usize {
        let mut left = 0;
        for sid in self.pending_calls() {
            // A call someone else is uploading is theirs to finish.
            let Some(_claim) = self.try_claim(&sid) else { continue };
            if !self.upload_dir(&sid).await {
                left += 1;
            }
        }
        left
    }

    /// Retries the spool with exponential back-off until `stop` is cancelled.
    pub async fn retry_loop(&self, stop: tokio_util::sync::CancellationToken) {
        let mut delay = self.retry_first;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            if self.pending_calls().is_empty() {
                delay = self.retry_first;
                continue;
            }
            let left = self.flush_spool().await;
            delay = if left == 0 { self.retry_first } else { (delay * 2).min(self.retry_max) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_budget_never_goes_over_its_cap() {
        let budget = DiskBudget::new(100);
        assert!(budget.reserve(60));
        assert!(!budget.reserve(41), "60 + 41 is over 100");
        assert!(budget.reserve(40));
        budget.add(10);
        assert_eq!(budget.used(), 110, "transcripts are written over the cap");
        assert!(!budget.reserve(1));
        budget.release(200);
        assert_eq!(budget.used(), 0, "never below zero");
    }

    #[test]
    fn a_recording_that_fails_or_is_dropped_gives_its_room_back() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(DiskBudget::new(3 * RECORDING_CHUNK));
        let path = dir.path().join("a/recording.wav");
        let mut rec = Recorder::create(path.clone(), 2, Arc::clone(&budget)).unwrap();
        for _ in 0..150 {
            rec.write_frame(&[0xFF; 160], Some(&[0xFF; 160])).unwrap();
        }
        assert_eq!(budget.used(), 2 * RECORDING_CHUNK, "150 frames of 640 bytes take two chunks");
        drop(rec);
        assert_eq!(budget.used(), 0);
        assert!(!path.exists(), "an unfinished recording is deleted");

        let rec = Recorder::create(path.clone(), 1, Arc::clone(&budget)).unwrap();
        let kept = rec.finish().unwrap();
        assert_eq!(budget.used(), std::fs::metadata(&kept).unwrap().len(), "a finished file keeps its own bytes");

        let full = DiskBudget::new(RECORDING_CHUNK - 1);
        assert!(matches!(
            Recorder::create(dir.path().join("b.wav"), 2, Arc::new(full)),
            Err(RecordError::SpoolFull { .. })
        ));
    }
}
