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

/// Writes the stereo call recording to a file as the call goes.
pub struct Recorder {
    writer: hound::WavWriter<BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl Recorder {
    pub fn create(path: PathBuf, channels: u16) -> Result<Self, hound::Error> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: crate::audio::SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self { writer: hound::WavWriter::create(&path, spec)?, path })
    }

    /// One frame: caller μ-law and, for a stereo recording, the agent audio heard at
    /// the same time (shorter is padded with silence).
    pub fn write_frame(&mut self, caller: &[u8], agent: Option<&[u8]>) -> Result<(), hound::Error> {
        match agent {
            None => {
                for b in caller {
                    self.writer.write_sample(crate::audio::ulaw_decode(*b))?;
                }
            }
            Some(agent) => {
                let n = caller.len().max(agent.len());
                for i in 0..n {
                    let c = caller.get(i).copied().unwrap_or(crate::audio::ULAW_SILENCE);
                    let a = agent.get(i).copied().unwrap_or(crate::audio::ULAW_SILENCE);
                    self.writer.write_sample(crate::audio::ulaw_decode(c))?;
                    self.writer.write_sample(crate::audio::ulaw_decode(a))?;
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<PathBuf, hound::Error> {
        self.writer.finalize()?;
        Ok(self.path)
    }
}

/// The files of one finished call, on local disk.
#[derive(Debug)]
pub struct CallArtifacts {
    pub call_sid: String,
    pub transcript: Vec<u8>,
    pub metadata: Vec<u8>,
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
        })
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
    retry_first: Duration,
    retry_max: Duration,
}

impl ArtifactStore {
    pub fn new(store: Arc<dyn ObjectStore>, spool: PathBuf, retry_first: Duration, retry_max: Duration) -> Self {
        Self { store, busy: Default::default(), spool, spooled_calls: AtomicU64::new(0), retry_first, retry_max }
    }

    pub fn spool_dir(&self) -> &Path {
        &self.spool
    }

    /// Calls waiting in the spool.
    pub fn spooled(&self) -> u64 {
        self.spooled_calls.load(Ordering::Relaxed)
    }

    /// A scratch path for a file of this call (recordings are written here during the call).
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
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("metadata.json.tmp"), metadata).await?;
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
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
        if tokio::fs::remove_dir_all(&dir).await.is_ok() {
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

    /// Counts what a previous process left, so that metrics and the retry loop know.
    pub fn recover(&self) -> usize {
        let pending = self.pending_calls();
        self.spooled_calls.store(pending.len() as u64, Ordering::Relaxed);
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
