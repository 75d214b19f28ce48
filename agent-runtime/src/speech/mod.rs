//! Speech pipelines. Every provider is a [`SpeechSession`]: caller audio goes in;
//! agent audio, caller turns, speech-started, tool calls and turn ends come out. The
//! call loop ([`crate::call`]) only knows this trait, so Amazon Nova Sonic and
//! OpenAI Realtime plug in beside the offline [`local`] pipeline.
//!
//! - [`local`]: voice activity detection (earshot) → recognition (PocketSphinx,
//!   [`recognizer`]) → [`responder`] (knowledge base by BM25, tools by intent) →
//!   synthesis ([`tts`], espeak-ng, cached).

pub mod local;
pub mod recognizer;
pub mod responder;
pub mod tts;
pub mod vad;

use std::future::Future;

use bytes::Bytes;

pub use agent_spec::calls::ToolCall;

/// What a speech session produces.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// The caller started speaking (barge-in if the agent is talking).
    CallerSpeechStarted,
    /// The caller finished a turn; `text` is what was recognized (empty if nothing
    /// was); `ended_at` is when the caller stopped speaking.
    CallerTurn { text: String, ended_at: std::time::Instant },
    /// Agent speech, 8 kHz μ-law, with the words it voices (may be empty).
    AgentAudio { ulaw: Bytes, text: String },
    /// The pipeline asks for a call action.
    Tool(ToolCall),
    /// The agent finished generating its turn.
    AgentTurnEnd,
    /// The provider failed; the call goes on without it if it can.
    Error(String),
}

/// One call's connection to a speech pipeline.
pub trait SpeechSession: Send {
    /// The provider's name for metadata and metrics (`local`, `nova-sonic`, …).
    fn provider(&self) -> &'static str;
    /// 20 ms of caller audio, 8 kHz μ-law. Must not block.
    fn push_audio(&mut self, ulaw: &[u8]);
    /// Speak this line as the agent (greeting, idle prompt, goodbye).
    fn speak(&mut self, text: &str);
    /// Stop generating the current agent turn (barge-in); audio already produced for
    /// it is not delivered.
    fn interrupt(&mut self);
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
