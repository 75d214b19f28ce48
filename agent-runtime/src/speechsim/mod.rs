//! `speechsim`: fakes of the cloud speech providers that speak their real wire
//! protocols, for tests, benchmarks and developers with no network.
//!
//! - [`openai`]: OpenAI Realtime's WebSocket protocol.
//! - [`nova`]: Amazon Nova Sonic's bidirectional stream (HTTP/2, event stream).
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

/// `line`'s sentences with their 8 kHz μ-law audio, all synthesized (at once)
/// before the first is sent: a cloud model generates speech faster than real time,
/// so its reply has no gap between sentences that a caller would take for the end
/// of the turn. Stops at the first sentence that cannot be voiced.
pub(crate) async fn voice(brain: &LocalPipeline, line: &str) -> Vec<(String, bytes::Bytes)> {
    let all = crate::speech::sentences(line);
    let tts = brain.synthesizer();
    let audio = futures::future::join_all(all.iter().map(|s| tts.synthesize(s))).await;
    all.into_iter().zip(audio).map_while(|(s, a)| a.ok().map(|a| (s, a))).collect()
}

/// Accepts connections on `listener` until `stop`, serving each with `serve` in a
/// task of its own that `stop` also ends.
pub(crate) fn accept_until_stopped<F, Fut>(
    listener: tokio::net::TcpListener,
    stop: tokio_util::sync::CancellationToken,
    serve: F,
) where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            // The providers stream audio in real time.
            let _ = tcp.set_nodelay(true);
            let (connection, stop) = (serve(tcp), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = connection => {}
                }
            });
        }
    });
}

/// How a fake hears the caller's turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hearing {
    /// earshot, as the runtime hears them (the default).
    #[default]
    Earshot,
    /// A frame-energy threshold: far cheaper, so a load generator running a fake for
    /// hundreds of calls is not the bottleneck (benchmarks).
    Energy,
}

/// Caller turns by frame energy: 3 loud 20 ms frames start one, 600 ms of quiet
/// end it.
#[derive(Debug, Default)]
pub(crate) struct EnergyTurns {
    loud_run: u32,
    quiet_ms: u32,
    speaking: bool,
}

impl EnergyTurns {
    pub(crate) fn push(&mut self, samples: &[i16], events: &mut Vec<crate::speech::vad::TurnEvent>) {
        use crate::speech::vad::TurnEvent;
        for frame in samples.chunks(160) {
            let energy = frame.iter().map(|s| i64::from(*s) * i64::from(*s)).sum::<i64>() / frame.len().max(1) as i64;
            let loud = energy > 500 * 500;
            if loud {
                self.loud_run += 1;
                self.quiet_ms = 0;
                if !self.speaking && self.loud_run >= 3 {
                    self.speaking = true;
                    events.push(TurnEvent::SpeechStarted);
                }
            } else {
                self.loud_run = 0;
                if self.speaking {
                    self.quiet_ms += 20;
                    if self.quiet_ms >= 600 {
                        self.speaking = false;
                        self.quiet_ms = 0;
                        events.push(TurnEvent::TurnEnded(Vec::new()));
                    }
                }
            }
        }
    }
}

/// The turn detector of a fake.
pub(crate) enum FakeEar {
    Earshot(Box<crate::speech::vad::TurnDetector>),
    Energy(EnergyTurns),
}

impl FakeEar {
    pub(crate) fn new(hearing: Hearing) -> Self {
        match hearing {
            Hearing::Earshot => {
                let mut vad = crate::speech::vad::TurnDetector::new(std::time::Duration::from_millis(600));
                vad.keep_utterances(true);
                Self::Earshot(Box::new(vad))
            }
            Hearing::Energy => Self::Energy(EnergyTurns::default()),
        }
    }

    pub(crate) fn push(&mut self, samples: &[i16], events: &mut Vec<crate::speech::vad::TurnEvent>) {
        match self {
            Self::Earshot(v) => v.push(samples, events),
            Self::Energy(e) => e.push(samples, events),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::vad::TurnEvent;

    #[test]
    fn energy_turns_hear_a_spoken_phrase_as_one_turn() {
        let speech = crate::callsim::speech("What are your opening hours?", crate::callsim::DEFAULT_CALLER_VOICE)
            .expect("espeak-ng speech");
        let mut pcm = vec![0i16; 8_000];
        // As the runtime sends it: μ-law on the wire, decoded.
        pcm.extend(speech.iter().map(|s| crate::audio::ulaw_decode(crate::audio::ulaw_encode(*s))));
        pcm.extend(std::iter::repeat_n(0i16, 8_000));
        let mut ear = EnergyTurns::default();
        let mut events = Vec::new();
        for chunk in pcm.chunks(320) {
            ear.push(chunk, &mut events);
        }
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e {
                TurnEvent::SpeechStarted => "started",
                TurnEvent::TurnEnded(_) => "ended",
            })
            .collect();
        assert_eq!(kinds, ["started", "ended"]);
    }
}
