//! `speechsim`: fakes of the cloud speech providers that speak their real wire
//! protocols, for tests, benchmarks and developers with no network.
//!
//! - [`openai`]: OpenAI Realtime's WebSocket protocol.
//!
//! Each converses with the agent's own offline brain (PocketSphinx, the knowledge
//! base's BM25 responder, espeak-ng), so a call through a fake is answered from the
//! knowledge base, and asserts the protocol as the real service would.

pub mod nova;
pub mod openai;

use std::sync::Arc;

use agent_spec::AgentConfig;

use crate::speech::local::{LocalPipeline, LocalSettings};
use crate::speech::recognizer::RecognizerError;

/// The agent's offline brain, speaking with espeak-ng's default voice (the agent's
/// voice is the cloud provider's name for one, unknown to espeak-ng).
pub fn brain(config: &AgentConfig, settings: &LocalSettings) -> Result<Arc<LocalPipeline>, RecognizerError> {
    let mut config = config.clone();
    config.voice.voice_id =
        agent_spec::values::VoiceId::parse(crate::speech::tts::DEFAULT_VOICE).expect("espeak-ng's voice id is valid");
    LocalPipeline::new(&config, settings)
}
