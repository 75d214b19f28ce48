//! The agent's speech provider, chosen by its config (`voice.provider`) and built
//! once at start-up, and the session it opens per call.
//!
//! No provider ever stands in for another: if the one configured cannot work (its
//! credentials are missing, say), readiness fails with the reason, and a call that
//! reaches the task anyway hears an apology and is hung up.

use std::sync::Arc;
use std::time::Duration;

use agent_spec::SpeechProvider;

use super::local::{LocalPipeline, LocalSession};
use super::nova::{NovaSession, NovaSonic};
use super::openai::{OpenAiRealtime, OpenAiSession};
use super::{CallerAudio, ConnectError, SpeechEvent, SpeechSession, ToolOutcome};

/// What answers the agent's calls.
pub enum Provider {
    Local(Arc<LocalPipeline>),
    OpenAi(Arc<OpenAiRealtime>),
    Nova(Arc<NovaSonic>),
    /// Configured, but it cannot work: readiness reports `reason`.
    Unusable {
        provider: &'static str,
        reason: String,
    },
}

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local(_) => SpeechProvider::Local.as_str(),
            Self::OpenAi(_) => SpeechProvider::OpenaiRealtime.as_str(),
            Self::Nova(_) => SpeechProvider::NovaSonic.as_str(),
            Self::Unusable { provider, .. } => provider,
        }
    }

    /// Why the provider cannot take calls, if it cannot.
    pub fn unusable(&self) -> Option<&str> {
        match self {
            Self::Unusable { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Opens one call's session.
    pub async fn connect(&self) -> Result<Session, ConnectError> {
        match self {
            Self::Local(pipeline) => Ok(Session::Local(pipeline.session())),
            Self::OpenAi(openai) => Ok(Session::OpenAi(openai.connect().await?)),
            Self::Nova(nova) => Ok(Session::Nova(nova.connect().await?)),
            Self::Unusable { provider, reason } => Err(ConnectError::Refused { provider, reason: reason.clone() }),
        }
    }
}

/// One call's session with whichever provider the agent uses.
pub enum Session {
    Local(LocalSession),
    OpenAi(OpenAiSession),
    Nova(NovaSession),
}

impl SpeechSession for Session {
    fn provider(&self) -> &'static str {
        match self {
            Self::Local(s) => s.provider(),
            Self::OpenAi(s) => s.provider(),
            Self::Nova(s) => s.provider(),
        }
    }

    fn wants_utterances(&self) -> bool {
        match self {
            Self::Local(s) => s.wants_utterances(),
            Self::OpenAi(s) => s.wants_utterances(),
            Self::Nova(s) => s.wants_utterances(),
        }
    }

    fn push_audio(&mut self, audio: CallerAudio<'_>) {
        match self {
            Self::Local(s) => s.push_audio(audio),
            Self::OpenAi(s) => s.push_audio(audio),
            Self::Nova(s) => s.push_audio(audio),
        }
    }

    fn speak(&mut self, text: &str) {
        match self {
            Self::Local(s) => s.speak(text),
            Self::OpenAi(s) => s.speak(text),
            Self::Nova(s) => s.speak(text),
        }
    }

    fn interrupt(&mut self, played: Duration) {
        match self {
            Self::Local(s) => s.interrupt(played),
            Self::OpenAi(s) => s.interrupt(played),
            Self::Nova(s) => s.interrupt(played),
        }
    }

    fn tool_result(&mut self, id: &str, outcome: &ToolOutcome) {
        match self {
            Self::Local(s) => s.tool_result(id, outcome),
            Self::OpenAi(s) => s.tool_result(id, outcome),
            Self::Nova(s) => s.tool_result(id, outcome),
        }
    }

    async fn next_event(&mut self) -> Option<SpeechEvent> {
        match self {
            Self::Local(s) => s.next_event().await,
            Self::OpenAi(s) => s.next_event().await,
            Self::Nova(s) => s.next_event().await,
        }
    }
}
