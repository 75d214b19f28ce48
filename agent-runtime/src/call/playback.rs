//! What Twilio has been sent and has played.
//!
//! Agent audio goes out in 20 ms media messages with a `mark` every
//! [`FRAMES_PER_MARK`] frames and after each chunk; Twilio echoes a mark when the
//! audio before it has been played, so the last echo is the played position. Audio
//! streamed in pieces that are not whole frames is carried over to the next piece
//! (silence is only added when the agent's turn ends), so streamed speech has no gaps.

use std::collections::VecDeque;

use crate::audio::{FRAME_MS, FRAME_SAMPLES, ULAW_SILENCE};

/// Frames between marks.
pub(super) const FRAMES_PER_MARK: u32 = 10;

pub(super) struct Playback {
    /// Agent audio ms sent to Twilio.
    pub sent_ms: u64,
    /// Agent audio ms Twilio has played (at the last echoed mark).
    pub played_ms: u64,
    /// Marks sent and not yet echoed: (sequence, agent-audio ms at the mark).
    marks: VecDeque<(u64, u64)>,
    next_mark: u64,
    /// Echoes of marks below this were cleared, not played.
    cleared_below: u64,
    pub frames_since_mark: u32,
    /// Agent audio shorter than a frame, waiting for the rest of its stream.
    partial: Vec<u8>,
    /// A model of Twilio's playback buffer, for the agent side of the recording;
    /// kept only when the call is recorded.
    buffer: Option<VecDeque<u8>>,
}

impl Playback {
    pub fn new(recorded: bool) -> Self {
        Self {
            sent_ms: 0,
            played_ms: 0,
            marks: VecDeque::new(),
            next_mark: 0,
            cleared_below: 0,
            frames_since_mark: 0,
            partial: Vec::with_capacity(FRAME_SAMPLES),
            buffer: recorded.then(VecDeque::new),
        }
    }

    /// Audio sent and not yet played, or not yet sent because it is less than a frame.
    pub fn is_playing(&self) -> bool {
        !self.marks.is_empty() || !self.partial.is_empty()
    }

    pub fn queued_ms(&self) -> u64 {
        self.sent_ms.saturating_sub(self.played_ms)
    }

    /// Agent-audio position of the next byte handed to [`Self::next_frame`].
    pub fn position_ms(&self) -> u64 {
        self.sent_ms + self.partial.len() as u64 / 8
    }

    /// The next whole frame out of what is carried over and `input` (consumed as it
    /// goes); with `flush`, a last short piece is padded with silence.
    pub fn next_frame(&mut self, input: &mut &[u8], flush: bool) -> Option<[u8; FRAME_SAMPLES]> {
        let need = FRAME_SAMPLES - self.partial.len();
        if input.len() >= need {
            let mut frame = [ULAW_SILENCE; FRAME_SAMPLES];
            let carried = self.partial.len();
            frame[..carried].copy_from_slice(&self.partial);
            frame[carried..].copy_from_slice(&input[..need]);
            *input = &input[need..];
            self.partial.clear();
            return Some(frame);
        }
        self.partial.extend_from_slice(input);
        *input = &[];
        if flush && !self.partial.is_empty() {
            let mut frame = [ULAW_SILENCE; FRAME_SAMPLES];
            frame[..self.partial.len()].copy_from_slice(&self.partial);
            self.partial.clear();
            return Some(frame);
        }
        None
    }

    /// A frame went out.
    pub fn sent(&mut self, frame: &[u8; FRAME_SAMPLES]) {
        self.sent_ms += FRAME_MS;
        if let Some(buffer) = &mut self.buffer {
            buffer.extend(frame);
        }
        self.frames_since_mark += 1;
    }

    /// A mark goes out now; returns its name.
    pub fn mark(&mut self) -> String {
        let seq = self.next_mark;
        self.next_mark += 1;
        self.frames_since_mark = 0;
        self.marks.push_back((seq, self.sent_ms));
        format!("m{seq}")
    }

    /// A mark came back; returns whether it moved the played position.
    pub fn echoed(&mut self, name: &str) -> bool {
        let Some(seq) = name.strip_prefix('m').and_then(|s| s.parse::<u64>().ok()) else { return false };
        if seq < self.cleared_below {
            return false;
        }
        let mut moved = false;
        while let Some(&(s, at)) = self.marks.front() {
            if s > seq {
                break;
            }
            self.marks.pop_front();
            self.played_ms = at;
            moved = true;
        }
        moved
    }

    /// Everything queued was dropped by a `clear`; returns the played position.
    pub fn clear(&mut self) -> u64 {
        self.cleared_below = self.next_mark;
        self.marks.clear();
        self.partial.clear();
        if let Some(b) = &mut self.buffer {
            b.clear();
        }
        self.sent_ms = self.played_ms;
        self.frames_since_mark = 0;
        self.played_ms
    }

    /// The agent audio heard while `n` bytes of caller audio came in.
    pub fn heard(&mut self, out: &mut Vec<u8>, n: usize) {
        out.clear();
        let Some(buffer) = &mut self.buffer else { return };
        out.extend((0..n).map(|_| buffer.pop_front().unwrap_or(ULAW_SILENCE)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_pieces_become_whole_frames_without_padding_until_the_end() {
        let mut p = Playback::new(false);
        let mut frames = Vec::new();
        for piece in [vec![1u8; 100], vec![2u8; 100], vec![3u8; 250]] {
            let mut input = piece.as_slice();
            while let Some(f) = p.next_frame(&mut input, false) {
                frames.push(f);
            }
        }
        // 450 bytes: two whole frames, 130 carried over.
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][..100], &[1u8; 100][..]);
        assert_eq!(&frames[0][100..], &[2u8; 60][..]);
        assert!(frames.iter().flatten().all(|b| *b != ULAW_SILENCE));
        assert_eq!(p.position_ms(), 16);
        let mut empty: &[u8] = &[];
        let last = p.next_frame(&mut empty, true).unwrap();
        assert_eq!(&last[..130], &[3u8; 130][..]);
        assert!(last[130..].iter().all(|b| *b == ULAW_SILENCE));
        assert!(p.next_frame(&mut empty, true).is_none());
    }

    #[test]
    fn marks_move_the_played_position_and_cleared_ones_do_not() {
        let mut p = Playback::new(false);
        for _ in 0..3 {
            p.sent(&[0; FRAME_SAMPLES]);
        }
        let m0 = p.mark();
        p.sent(&[0; FRAME_SAMPLES]);
        let m1 = p.mark();
        assert!(p.echoed(&m0));
        assert_eq!(p.played_ms, 60);
        assert!(p.is_playing());
        assert_eq!(p.clear(), 60);
        assert!(!p.echoed(&m1), "the echo of a cleared mark is not playback");
        assert!(!p.is_playing());
        assert_eq!(p.sent_ms, 60);
    }
}
