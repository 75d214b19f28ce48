//! [`ScriptedSession`]: a speech session whose events a test (or a benchmark) sends
//! through a channel, recording what the call loop asks of it. With it the call
//! loop's rules are checked in milliseconds, without espeak-ng, PocketSphinx or a
//! provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CallerAudio, SpeechEvent, SpeechSession, ToolOutcome};

/// What the call loop asked of a [`ScriptedSession`].
#[derive(Debug, Default, Clone)]
pub struct ScriptLog {
    /// Lines asked for with `speak`.
    pub spoken: Vec<String>,
    /// The played position given with each `interrupt`.
    pub interrupts: Vec<Duration>,
    /// Tool results, by tool call id.
    pub tool_results: Vec<(String, ToolOutcome)>,
    /// Caller audio bytes pushed.
    pub audio_bytes: usize,
}

pub struct ScriptedSession {
    events: mpsc::UnboundedReceiver<SpeechEvent>,
    log: Arc<Mutex<ScriptLog>>,
}

/// Sends a [`ScriptedSession`] its events; dropping it closes the session.
pub type Script = mpsc::UnboundedSender<SpeechEvent>;

impl ScriptedSession {
    pub fn new() -> (Self, Script, Arc<Mutex<ScriptLog>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(ScriptLog::default()));
        (Self { events: rx, log: Arc::clone(&log) }, tx, log)
    }
}

impl SpeechSession for ScriptedSession {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    fn push_audio(&mut self, audio: CallerAudio<'_>) {
        self.log.lock().expect("script log lock").audio_bytes += audio.ulaw.len();
    }

    fn speak(&mut self, text: &str) {
        self.log.lock().expect("script log lock").spoken.push(text.to_owned());
    }

    fn interrupt(&mut self, played: Duration) {
        self.log.lock().expect("script log lock").interrupts.push(played);
    }

    fn tool_result(&mut self, id: &str, outcome: &ToolOutcome) {
        self.log.lock().expect("script log lock").tool_results.push((id.to_owned(), outcome.clone()));
    }

    async fn next_event(&mut self) -> Option<SpeechEvent> {
        self.events.recv().await
    }
}
