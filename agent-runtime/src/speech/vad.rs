//! Voice activity and end of turn, from the `earshot` neural detector.
//!
//! Earshot scores 16 ms frames of 16 kHz audio; the caller's 8 kHz audio is re-framed
//! and each frame scored is upsampled. A turn starts after
//! [`TurnDetector::START_FRAMES`] voiced frames in a row and ends after `end_of_turn`
//! of unvoiced audio; the utterance keeps a little audio from before the start so the
//! first syllable is not clipped.
//!
//! While the agent talks the caller's line is mostly quiet, and scoring quiet is most
//! of the detector's cost: after [`SETTLE_FRAMES`] frames in a row below
//! [`QUIET_FLOOR_DBFS`] (RMS), further quiet frames count as unvoiced without being
//! scored, until a louder frame comes. The floor is about the idle noise a telephone
//! line may have (G.712 allows −65 dBm0, near −68 dBFS), far below speech; while the
//! caller is speaking every frame is scored. A turn then starts or ends at most one
//! 20 ms frame from where scoring everything puts it (tested).

use std::collections::VecDeque;
use std::time::Duration;

const EARSHOT_FRAME: usize = 256;
/// One earshot frame of the caller's 8 kHz audio.
const FRAME_8K: usize = EARSHOT_FRAME / 2;
const EARSHOT_FRAME_MS: f64 = 16.0;
/// Audio quieter than this (RMS over a 16 ms frame) is not scored; see the module docs.
pub const QUIET_FLOOR_DBFS: f64 = -60.0;
/// Quiet frames scored before scoring stops (640 ms): earshot's window is three
/// frames, and its recurrent state has by then mostly settled on quiet (its score on
/// digital silence moves from 0.19 to 0.126 over these frames, and to 0.123 after
/// 100), so it resumes close to where further quiet would have left it.
const SETTLE_FRAMES: u32 = 40;

/// The mean square of a 16 ms frame at [`QUIET_FLOOR_DBFS`].
fn quiet_floor_mean_square() -> u64 {
    let rms = 32768.0 * 10f64.powf(QUIET_FLOOR_DBFS / 20.0);
    (rms * rms) as u64
}

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
    /// Caller audio not yet a whole earshot frame (8 kHz), and the frame upsampled.
    pending: Vec<i16>,
    frame_16k: [i16; EARSHOT_FRAME],
    voiced_run: u32,
    unvoiced_ms: f64,
    end_after_ms: f64,
    speaking: bool,
    preroll: VecDeque<i16>,
    utterance: Vec<i16>,
    max_utterance_samples: usize,
    keep_utterances: bool,
    /// Frames under this mean square are quiet (0: every frame is scored).
    quiet_floor: u64,
    /// Quiet frames in a row.
    quiet_run: u32,
    /// Frames scored, and frames passed over as quiet.
    scored: u64,
    passed_over: u64,
}

impl TurnDetector {
    /// Voiced earshot frames in a row that start a turn (48 ms).
    pub const START_FRAMES: u32 = 3;
    const PREROLL_SAMPLES: usize = 8 * 300;

    pub fn new(end_of_turn: Duration) -> Self {
        Self {
            detector: Box::default(),
            threshold: 0.5,
            pending: Vec::with_capacity(FRAME_8K * 3),
            frame_16k: [0; EARSHOT_FRAME],
            voiced_run: 0,
            unvoiced_ms: 0.0,
            end_after_ms: end_of_turn.as_secs_f64() * 1000.0,
            speaking: false,
            preroll: VecDeque::with_capacity(Self::PREROLL_SAMPLES),
            utterance: Vec::new(),
            max_utterance_samples: 8_000 * 30,
            keep_utterances: false,
            quiet_floor: quiet_floor_mean_square(),
            quiet_run: 0,
            scored: 0,
            passed_over: 0,
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
        self.pending.extend_from_slice(samples);
        let mut consumed = 0;
        while self.pending.len() - consumed >= FRAME_8K {
            let frame = &self.pending[consumed..consumed + FRAME_8K];
            let mean_square = frame.iter().map(|&s| (s as i64 * s as i64) as u64).sum::<u64>() / FRAME_8K as u64;
            self.quiet_run = if mean_square < self.quiet_floor { self.quiet_run + 1 } else { 0 };
            // Once quiet has settled the detector stops; when sound comes back it
            // resumes from that state, close to where more quiet would have left it.
            let voiced = if self.quiet_run > SETTLE_FRAMES && !self.speaking {
                self.passed_over += 1;
                false
            } else {
                self.scored += 1;
                // The last sample interpolates towards the next frame's first, if here.
                let after = self.pending.get(consumed + FRAME_8K).copied().unwrap_or(frame[FRAME_8K - 1]);
                crate::audio::upsample_2x_into(frame, after, &mut self.frame_16k);
                self.detector.predict_i16(&self.frame_16k) >= self.threshold
            };
            consumed += FRAME_8K;
            self.on_score(voiced, events);
        }
        self.pending.drain(..consumed);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic line noise at `dbfs` (RMS), uniform.
    fn noise(samples: usize, dbfs: f64, seed: &mut u64) -> Vec<i16> {
        let peak = 32768.0 * 10f64.powf(dbfs / 20.0) * 3f64.sqrt();
        (0..samples)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let unit = (*seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                (unit * peak).round() as i16
            })
            .collect()
    }

    fn run(detector: &mut TurnDetector, audio: &[i16]) -> Vec<(usize, TurnEvent)> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (i, frame) in audio.chunks(160).enumerate() {
            detector.push(frame, &mut events);
            out.extend(events.drain(..).map(|e| (i, e)));
        }
        out
    }

    #[test]
    fn quiet_audio_is_passed_over_without_changing_a_turn() {
        let phrase = crate::callsim::speech("What are your opening hours?", crate::callsim::DEFAULT_CALLER_VOICE)
            .expect("espeak-ng speaks");
        let soft: Vec<i16> = phrase.iter().map(|&s| (s as f64 * 0.03) as i16).collect(); // about −30 dB
        let mut seed = 7;
        // A caller who speaks, listens (digital silence, a soft reply, a quiet line's
        // noise), and speaks again over a louder line.
        let mut audio = vec![0i16; 8_000];
        audio.extend(&phrase);
        audio.extend(vec![0i16; 24_000]);
        audio.extend(&soft);
        audio.extend(noise(24_000, -70.0, &mut seed));
        audio.extend(&phrase);
        audio.extend(noise(4_000, -45.0, &mut seed));
        audio.extend(vec![0i16; 24_000]);

        let mut gated = TurnDetector::new(Duration::from_millis(600));
        let mut every = TurnDetector::new(Duration::from_millis(600));
        every.quiet_floor = 0;
        let heard = run(&mut gated, &audio);
        let reference = run(&mut every, &audio);

        assert_eq!(heard.len(), reference.len(), "{heard:?} against {reference:?}");
        for ((at, event), (reference_at, reference_event)) in heard.iter().zip(&reference) {
            assert_eq!(event, reference_event, "{heard:?} against {reference:?}");
            assert!(at.abs_diff(*reference_at) <= 1, "{heard:?} against {reference:?}");
        }
        let ends = heard.iter().filter(|(_, e)| matches!(e, TurnEvent::TurnEnded(_))).count();
        assert_eq!(ends, 3, "three turns heard: {heard:?}");
        assert_eq!(every.passed_over, 0);
        let total = gated.scored + gated.passed_over;
        assert!(
            gated.passed_over * 2 > total,
            "most of a mostly quiet line is passed over: {} of {total}",
            gated.passed_over
        );
        let mut loud = TurnDetector::new(Duration::from_millis(600));
        run(&mut loud, &noise(8_000, -45.0, &mut seed));
        assert_eq!(loud.passed_over, 0, "noise above the floor is scored");
    }
}
