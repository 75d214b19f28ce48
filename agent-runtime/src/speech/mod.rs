//! Speech pipelines. Every provider is a [`SpeechSession`]: caller audio goes in;
//! agent audio and text, caller turns and their transcripts, speech-started, tool
//! calls (with ids, answered through the session) and turn ends come out. The call
//! loop ([`crate::call`]) only knows this trait, so Amazon Nova Sonic and OpenAI
//! Realtime plug in beside the offline [`local`] pipeline.
//!
//! - [`local`]: voice activity detection (earshot) → recognition (PocketSphinx,
//!   [`recognizer`]) → [`responder`] (knowledge base by BM25, tools by intent) →
//!   synthesis ([`tts`], espeak-ng, cached).

pub mod instructions;
pub mod local;
pub mod nova;
pub mod openai;
pub mod provider;
pub mod recognizer;
pub mod responder;
pub mod scripted;
pub mod tts;
pub mod vad;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use agent_spec::calls::ToolCall;
pub use vad::TurnEvent;

/// A provider's name for one caller turn, tying its transcript (which may arrive
/// late) to the turn.
pub type ItemId = String;

/// What a speech session produces.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// The provider heard the caller start speaking (barge-in if the agent is talking).
    CallerSpeechStarted,
    /// The caller finished turn `item` at `at`; its text follows as [`Self::CallerText`].
    CallerTurnEnded { item: ItemId, at: Instant },
    /// What the caller said in turn `item` (empty if nothing was recognized). May
    /// arrive after the agent's reply began.
    CallerText { item: ItemId, text: String },
    /// Agent speech, 8 kHz μ-law, of any length: the stream of one agent turn;
    /// `received` is when it reached the runtime (for the audio-latency histogram).
    AgentAudio { ulaw: Bytes, received: Instant },
    /// Words the agent voices with the audio that follows (transcripts arrive apart
    /// from audio).
    AgentText(String),
    /// The provider's own record of what it said in the turn, after the audio (Nova's
    /// FINAL text): it replaces the turn's text when the turn was played whole.
    AgentTextFinal(String),
    /// Text the agent is about to say, before its audio (checked against the
    /// guardrails early; not itself part of the transcript).
    AgentDraft(String),
    /// The provider asks for a call action; its result goes back with
    /// [`SpeechSession::tool_result`] and this `id`.
    Tool { id: String, call: ToolCall },
    /// The agent finished generating its turn.
    AgentTurnEnd,
    /// Tokens the provider counted (added to the call's metadata).
    Usage { input_tokens: u64, output_tokens: u64 },
    /// Something went wrong that the session survives.
    Error(String),
    /// The session failed for good; the call cannot go on with this provider.
    Failed(String),
}

impl SpeechEvent {
    /// Part of the agent's response (what a cut drops).
    pub fn is_agent_output(&self) -> bool {
        matches!(
            self,
            Self::AgentAudio { .. }
                | Self::AgentText(_)
                | Self::AgentTextFinal(_)
                | Self::AgentDraft(_)
                | Self::AgentTurnEnd
        )
    }
}

/// The caller's audio of one Media Streams message, decoded once for every consumer.
#[derive(Debug, Clone, Copy)]
pub struct CallerAudio<'a> {
    /// 8 kHz μ-law, as Twilio sent it (any length).
    pub ulaw: &'a [u8],
    /// The same audio as 16-bit linear PCM.
    pub pcm: &'a [i16],
    /// What the runtime's own voice activity detector (earshot, running for every
    /// provider) made of it.
    pub turn: &'a [TurnEvent],
}

/// What the call loop answers a tool call with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    pub ok: bool,
    /// `ok`, or what went wrong, in words the model can pass on.
    pub message: String,
    /// `message` is for the caller to hear (when a callback is scheduled, or why it
    /// could not be): a pipeline without a model to pass it on says it as it is.
    pub tell: bool,
}

impl ToolOutcome {
    pub fn ok() -> Self {
        Self { ok: true, message: "ok".into(), tell: false }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self { ok: false, message: message.into(), tell: false }
    }

    /// An outcome the caller is to hear, in `words`.
    pub fn told(ok: bool, words: impl Into<String>) -> Self {
        Self { ok, message: words.into(), tell: true }
    }

    /// The JSON document providers receive.
    pub fn to_json(&self) -> String {
        if self.ok {
            serde_json::json!({ "result": self.message }).to_string()
        } else {
            serde_json::json!({ "error": self.message }).to_string()
        }
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The provider did not answer or refused the connection (network, TLS, 5xx).
    #[error("{provider} unreachable: {reason}")]
    Unavailable { provider: &'static str, reason: String },
    /// The provider answered and refused this session (credentials, model, settings).
    #[error("{provider} refused the session: {reason}")]
    Refused { provider: &'static str, reason: String },
}

/// One call's connection to a speech pipeline.
pub trait SpeechSession: Send {
    /// The provider's name for metadata and metrics (`local`, `nova-sonic`, …).
    fn provider(&self) -> &'static str;
    /// Whether the runtime's voice activity detector should keep each caller
    /// utterance's audio for this session (in [`TurnEvent::TurnEnded`]).
    fn wants_utterances(&self) -> bool {
        false
    }
    /// Caller audio, as it arrives. Must not block.
    fn push_audio(&mut self, audio: CallerAudio<'_>);
    /// Speak this line as the agent (greeting, idle prompt, goodbye).
    fn speak(&mut self, text: &str);
    /// Stop generating the current agent turn (barge-in): Twilio played `played` of
    /// it; audio produced beyond that is not delivered.
    fn interrupt(&mut self, played: Duration);
    /// The result of the tool call `id`.
    fn tool_result(&mut self, id: &str, outcome: &ToolOutcome);
    /// The next event, or `None` when the session is closed.
    fn next_event(&mut self) -> impl Future<Output = Option<SpeechEvent>> + Send;
}

/// Splits text into sentences, keeping their punctuation.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            let s = current.trim();
            if !s.is_empty() {
                out.push(s.to_owned());
            }
            current.clear();
        }
    }
    let s = current.trim();
    if !s.is_empty() {
        out.push(s.to_owned());
    }
    out
}

/// Lowercase words (letters, digits and apostrophes) of `text`.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_sentences() {
        assert_eq!(
            super::sentences("Hello there. We open at 9.30 am! Ok?  Fine"),
            vec!["Hello there.", "We open at 9.30 am!", "Ok?", "Fine"]
        );
        assert_eq!(super::words("What's your e-mail, Bob?"), vec!["what's", "your", "e", "mail", "bob"]);
    }
}
