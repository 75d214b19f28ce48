//! The offline `local` speech pipeline: the caller's utterances (cut by the runtime's
//! earshot end-of-turn detector) → PocketSphinx recognition → the knowledge-base
//! [`Responder`] → espeak-ng synthesis. Nothing leaves the machine.
//!
//! [`LocalPipeline`] is built once per agent (language model, recognizer pool,
//! phrase cache) and hands out one [`LocalSession`] per call. A session does no
//! per-frame work of its own; recognition runs on the blocking pool and synthesis in
//! espeak-ng processes, so calls do not hold each other up.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_spec::AgentConfig;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::recognizer::{self, Dictionary, Recognizer, RecognizerError};
use super::responder::Responder;
use super::tts::Synthesizer;
use super::vad::TurnEvent;
use super::{CallerAudio, SpeechEvent, SpeechSession, ToolOutcome, sentences};

#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Recognize what callers say (PocketSphinx). Off, every caller turn is heard as
    /// nothing recognizable: only the runtime's own work remains (the benchmark's mode).
    pub recognition: bool,
    pub model_dir: PathBuf,
    pub espeak: PathBuf,
    /// Where the agent's language model is written.
    pub work_dir: PathBuf,
}

struct AgentModels {
    lm: PathBuf,
    dict: PathBuf,
}

pub struct LocalPipeline {
    responder: Responder,
    tts: Arc<Synthesizer>,
    recognizers: Mutex<Vec<Recognizer>>,
    /// The agent's language model and pronouncing dictionary, with recognition on.
    models: Option<AgentModels>,
    model_dir: PathBuf,
}

impl LocalPipeline {
    pub fn new(config: &AgentConfig, settings: &LocalSettings) -> Result<Arc<Self>, RecognizerError> {
        let responder = Responder::new(config);
        let voice = config.voice.voice_id.as_str().to_owned();
        let mut pipeline = Self {
            tts: Arc::new(Synthesizer::new(settings.espeak.clone(), voice)),
            recognizers: Mutex::new(Vec::new()),
            models: None,
            model_dir: settings.model_dir.clone(),
            responder,
        };
        if settings.recognition {
            let dictionary = Dictionary::load(&settings.model_dir)?;
            let known = dictionary.words();
            let corpus = pipeline.responder.corpus(config);
            // The agent's words the dictionary knows: the language model's vocabulary,
            // and all the decoder's dictionary holds.
            let vocabulary: BTreeSet<&str> =
                corpus.iter().flatten().map(String::as_str).filter(|w| known.contains(w)).collect();
            let lm = recognizer::domain_language_model(&corpus, &vocabulary);
            std::fs::create_dir_all(&settings.work_dir)?;
            let models =
                AgentModels { lm: settings.work_dir.join("agent.lm"), dict: settings.work_dir.join("agent.dict") };
            std::fs::write(&models.lm, lm)?;
            std::fs::write(&models.dict, dictionary.subset(&vocabulary))?;
            // Load one decoder now: a broken model fails at start-up, not on a call.
            let first = Recognizer::new(&settings.model_dir, &models.lm, &models.dict)?;
            pipeline.recognizers.lock().expect("recognizer pool lock").push(first);
            pipeline.models = Some(models);
        }
        Ok(Arc::new(pipeline))
    }

    /// The knowledge-base responder.
    pub fn responder(&self) -> &Responder {
        &self.responder
    }

    /// The agent's voice, which also says the runtime's own lines.
    pub fn synthesizer(&self) -> Arc<Synthesizer> {
        Arc::clone(&self.tts)
    }

    pub fn session(self: &Arc<Self>) -> LocalSession {
        let (tx, rx) = mpsc::unbounded_channel();
        LocalSession { pipeline: Arc::clone(self), turns: 0, tx, rx, generation: 0, tasks: JoinSet::new() }
    }

    /// What the caller said in `samples` (8 kHz), by the agent's recognizer; empty
    /// without recognition.
    pub fn recognize(&self, samples: &[i16]) -> String {
        let Some(models) = &self.models else { return String::new() };
        let pooled = self.recognizers.lock().expect("recognizer pool lock").pop();
        let mut decoder = match pooled {
            Some(d) => d,
            None => match Recognizer::new(&self.model_dir, &models.lm, &models.dict) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "start a speech recognizer");
                    return String::new();
                }
            },
        };
        let text = decoder.recognize_8khz(samples);
        self.recognizers.lock().expect("recognizer pool lock").push(decoder);
        text
    }
}

/// Events carry the generation of the agent turn they belong to; an interrupt moves
/// the session to the next generation, and events of older ones are dropped.
const ANY_GENERATION: u64 = u64::MAX;

pub struct LocalSession {
    pipeline: Arc<LocalPipeline>,
    /// Caller turns so far, which name them (`c1`, `c2`, …).
    turns: u64,
    tx: mpsc::UnboundedSender<(u64, SpeechEvent)>,
    rx: mpsc::UnboundedReceiver<(u64, SpeechEvent)>,
    generation: u64,
    /// Recognition and synthesis of this call; aborted when the session is dropped.
    tasks: JoinSet<()>,
}

impl LocalSession {
    fn spawn_reply(&mut self, utterance: Vec<i16>) {
        self.turns += 1;
        let item = format!("c{}", self.turns);
        let _ = self
            .tx
            .send((ANY_GENERATION, SpeechEvent::CallerTurnEnded { item: item.clone(), at: std::time::Instant::now() }));
        let pipeline = Arc::clone(&self.pipeline);
        let tx = self.tx.clone();
        let generation = self.generation;
        let tool_id = format!("t{}", self.turns);
        self.tasks.spawn(
            async move {
                let text = if pipeline.models.is_some() {
                    let p = Arc::clone(&pipeline);
                    tokio::task::spawn_blocking(move || p.recognize(&utterance)).await.unwrap_or_default()
                } else {
                    String::new()
                };
                let _ = tx.send((ANY_GENERATION, SpeechEvent::CallerText { item, text: text.clone() }));
                let reply = pipeline.responder.reply(&text);
                speak_into(&pipeline, &tx, generation, &reply.text).await;
                if let Some(call) = reply.tool {
                    let _ = tx.send((generation, SpeechEvent::Tool { id: tool_id, call }));
                }
                let _ = tx.send((generation, SpeechEvent::AgentTurnEnd));
            }
            .in_current_span(),
        );
    }
}

async fn speak_into(
    pipeline: &LocalPipeline,
    tx: &mpsc::UnboundedSender<(u64, SpeechEvent)>,
    generation: u64,
    text: &str,
) {
    for sentence in sentences(text) {
        match pipeline.tts.synthesize(&sentence).await {
            Ok(ulaw) => {
                let _ = tx.send((generation, SpeechEvent::AgentText(sentence)));
                if tx.send((generation, SpeechEvent::AgentAudio { ulaw, received: std::time::Instant::now() })).is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send((generation, SpeechEvent::Error(format!("synthesize speech: {e}"))));
                return;
            }
        }
    }
}

impl SpeechSession for LocalSession {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn wants_utterances(&self) -> bool {
        // Without recognition an utterance is never looked at.
        self.pipeline.models.is_some()
    }

    fn push_audio(&mut self, audio: CallerAudio<'_>) {
        for event in audio.turn {
            if let TurnEvent::TurnEnded(utterance) = event {
                self.spawn_reply(utterance.clone());
            }
        }
    }

    fn speak(&mut self, text: &str) {
        let pipeline = Arc::clone(&self.pipeline);
        let tx = self.tx.clone();
        let generation = self.generation;
        let text = text.to_owned();
        self.tasks.spawn(
            async move {
                speak_into(&pipeline, &tx, generation, &text).await;
                let _ = tx.send((generation, SpeechEvent::AgentTurnEnd));
            }
            .in_current_span(),
        );
    }

    fn interrupt(&mut self, _played: std::time::Duration) {
        self.generation += 1;
    }

    fn tool_result(&mut self, _id: &str, outcome: &ToolOutcome) {
        // The responder chose the tool knowing the agent's settings, and said its
        // words already. An outcome with words of its own (when a callback is
        // scheduled, or why it could not be) has no model to pass it on: it is said.
        if outcome.tell {
            self.speak(&outcome.message.clone());
        }
    }

    async fn next_event(&mut self) -> Option<SpeechEvent> {
        // Reap finished tasks so the set does not grow over a long call.
        while self.tasks.try_join_next().is_some() {}
        loop {
            let (generation, event) = self.rx.recv().await?;
            if generation == ANY_GENERATION || generation == self.generation {
                return Some(event);
            }
        }
    }
}
