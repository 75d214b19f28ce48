//! Text to speech with espeak-ng (Debian `espeak-ng`), resampled to 8 kHz μ-law.
//!
//! Synthesized phrases are cached per agent, so lines said on every call (greeting,
//! idle prompt, goodbye) start the moment they are asked for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;

/// The espeak-ng voice of lines the runtime says itself when the agent's voice is a
/// cloud provider's.
pub const DEFAULT_VOICE: &str = "en-us";

/// Synthesizes `lines` into the cache, a few at a time.
pub async fn prewarm(tts: &Synthesizer, lines: &[&str]) -> Result<(), TtsError> {
    use futures::StreamExt;
    let all: Vec<String> = lines.iter().flat_map(|l| super::sentences(l)).collect();
    let mut results = futures::stream::iter(all.iter().map(|s| tts.synthesize(s))).buffer_unordered(4);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    #[error("espeak-ng produced unreadable audio: {0}")]
    Audio(#[from] hound::Error),
}

pub struct Synthesizer {
    program: PathBuf,
    voice: String,
    cache: Mutex<HashMap<String, Bytes>>,
    max_cached: usize,
}

impl Synthesizer {
    pub fn new(program: PathBuf, voice: String) -> Self {
        Self { program, voice, cache: Mutex::new(HashMap::new()), max_cached: 512 }
    }

    /// Caches `audio` as the speech of `text` (audio made elsewhere, or by a test).
    pub fn preload(&self, text: &str, audio: Bytes) {
        self.cache.lock().expect("tts cache lock").insert(text.to_owned(), audio);
    }

    /// The cached audio for `text`, if it was synthesized before.
    pub fn cached(&self, text: &str) -> Option<Bytes> {
        self.cache.lock().expect("tts cache lock").get(text).cloned()
    }

    /// 8 kHz μ-law speech for `text`.
    pub async fn synthesize(&self, text: &str) -> Result<Bytes, TtsError> {
        if let Some(hit) = self.cached(text) {
            return Ok(hit);
        }
        let output = tokio::process::Command::new(&self.program)
            .arg("-v")
            .arg(&self.voice)
            .arg("--stdout")
            .arg("--")
            .arg(text)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| TtsError::Spawn { program: self.program.display().to_string(), source })?;
        if !output.status.success() {
            return Err(TtsError::Failed(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        let audio = tokio::task::spawn_blocking(move || wav_to_ulaw(&output.stdout))
            .await
            .map_err(|e| TtsError::Failed(e.to_string()))??;
        let mut cache = self.cache.lock().expect("tts cache lock");
        if cache.len() < self.max_cached {
            cache.insert(text.to_owned(), audio.clone());
        }
        Ok(audio)
    }
}

/// espeak-ng writes a WAV to stdout with unknown (0xFFFFFFFF) chunk sizes, so the
/// header is read by hand and the rest taken as 16-bit mono samples.
fn wav_to_ulaw(wav: &[u8]) -> Result<Bytes, TtsError> {
    if wav.len() < 44 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err(TtsError::Failed("output is not a WAV file".into()));
    }
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    // Find the data chunk.
    let mut at = 12;
    let mut data = &wav[wav.len()..];
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let size = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        if id == b"data" {
            let end = if size == u32::MAX as usize { wav.len() } else { (at + 8 + size).min(wav.len()) };
            data = &wav[at + 8..end];
            break;
        }
        at += 8 + size + (size & 1);
    }
    let samples: Vec<i16> = data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let resampled = crate::audio::resample(&samples, rate, crate::audio::SAMPLE_RATE);
    Ok(Bytes::from(crate::audio::encode(&resampled)))
}
