//! Voice activity and end of turn, from the `earshot` neural detector.
//!
//! Earshot scores 16 ms frames of 16 kHz audio; the caller's 8 kHz frames are
//! upsampled and re-framed. A turn starts after [`TurnDetector::START_FRAMES`] voiced
//! frames in a row and ends after `end_of_turn` of unvoiced audio; the utterance keeps
//! a little audio from before the start so the first syllable is not clipped.

use std::collections::VecDeque;
use std::time::Duration;

const EARSHOT_FRAME: usize = 256;
const EARSHOT_FRAME_MS: f64 = 16.0;

/// What a frame of caller audio did to the turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The caller started speaking.
    SpeechStarted,
    /// The caller finished; the utterance, 8 kHz linear PCM (empty unless the
    /// detector keeps utterances).
    TurnEnded(Vec<i16>),
}

pub struct TurnDetector {
    detector: Box<earshot::Detector>,
    threshold: f32,
    pending_16k: Vec<i16>,
    voiced_run: u32,
    unvoiced_ms: f64,
    end_after_ms: f64,
    speaking: bool,
    preroll: VecDeque<i16>,
    utterance: Vec<i16>,
    max_utterance_samples: usize,
    keep_utterances: bool,
}

impl TurnDetector {
    /// Voiced earshot frames in a row that start a turn (48 ms).
    pub const START_FRAMES: u32 = 3;
    const PREROLL_SAMPLES: usize = 8 * 300;

    pub fn new(end_of_turn: Duration) -> Self {
        Self {
            detector: Box::default(),
            threshold: 0.5,
            pending_16k: Vec::with_capacity(EARSHOT_FRAME * 3),
            voiced_run: 0,
            unvoiced_ms: 0.0,
            end_after_ms: end_of_turn.as_secs_f64() * 1000.0,
            speaking: false,
            preroll: VecDeque::with_capacity(Self::PREROLL_SAMPLES),
            utterance: Vec::new(),
            max_utterance_samples: 8_000 * 30,
            keep_utterances: false,
        }
    }

    /// Whether utterances' audio is kept (for a recognizer); without it (the default)
    /// the detector holds no audio beyond one earshot frame.
    pub fn keep_utterances(&mut self, keep: bool) {
        if !keep {
            self.preroll = VecDeque::new();
            self.utterance = Vec::new();
        }
        self.keep_utterances = keep;
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Feeds 8 kHz linear samples; returns what happened, at most one start and one end.
    pub fn push(&mut self, samples: &[i16], events: &mut Vec<TurnEvent>) {
        if self.keep_utterances {
            if self.speaking {
                self.utterance.extend_from_slice(samples);
            } else {
                let over = (self.preroll.len() + samples.len()).saturating_sub(Self::PREROLL_SAMPLES);
                self.preroll.drain(..over.min(self.preroll.len()));
                self.preroll.extend(samples.iter().copied());
            }
        }
        crate::audio::upsample_2x(samples, &mut self.pending_16k);
        let mut consumed = 0;
        while self.pending_16k.len() - consumed >= EARSHOT_FRAME {
            let frame = &self.pending_16k[consumed..consumed + EARSHOT_FRAME];
            let score = self.detector.predict_i16(frame);
            consumed += EARSHOT_FRAME;
            self.on_score(score >= self.threshold, events);
        }
        self.pending_16k.drain(..consumed);
        if self.speaking && self.keep_utterances && self.utterance.len() >= self.max_utterance_samples {
            self.finish(events);
        }
    }

    fn on_score(&mut self, voiced: bool, events: &mut Vec<TurnEvent>) {
        if voiced {
            self.voiced_run += 1;
            self.unvoiced_ms = 0.0;
            if !self.speaking && self.voiced_run >= Self::START_FRAMES {
                self.speaking = true;
                self.utterance.clear();
                self.utterance.extend(self.preroll.drain(..));
                events.push(TurnEvent::SpeechStarted);
            }
        } else {
            self.voiced_run = 0;
            if self.speaking {
                self.unvoiced_ms += EARSHOT_FRAME_MS;
                if self.unvoiced_ms >= self.end_after_ms {
                    self.finish(events);
                }
            }
        }
    }

    fn finish(&mut self, events: &mut Vec<TurnEvent>) {
        self.speaking = false;
        self.unvoiced_ms = 0.0;
        self.voiced_run = 0;
        events.push(TurnEvent::TurnEnded(std::mem::take(&mut self.utterance)));
    }
}
