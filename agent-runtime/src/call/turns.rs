//! Building the transcript's turns: the agent's turn from the text and audio its
//! provider streams (cut at the played position on barge-in), and the caller's turns,
//! whose text may arrive after the agent has started answering.

use crate::artifacts::{Role, ToolCallRecord, Turn};
use crate::speech::ItemId;

/// The agent turn being spoken.
pub(super) struct AgentTurn {
    pub start_ms: u64,
    /// Agent-audio position where the turn starts.
    pub audio_start: u64,
    /// Agent-audio position after its last audio.
    pub audio_end: u64,
    /// The words voiced, each anchored at the agent-audio position where they
    /// arrived: a text is spoken by the audio from its anchor to the next one.
    pub texts: Vec<(u64, String)>,
    pub tool_calls: Vec<ToolCallRecord>,
    /// The provider's own record of the turn's words, when it sends one.
    pub final_text: Option<String>,
    /// The provider finished generating it.
    pub generated: bool,
    /// Some audio was produced (a turn of text alone is not heard).
    pub audible: bool,
}

impl AgentTurn {
    pub fn new(start_ms: u64, audio_at: u64) -> Self {
        Self {
            start_ms,
            audio_start: audio_at,
            audio_end: audio_at,
            texts: Vec::new(),
            tool_calls: Vec::new(),
            final_text: None,
            generated: false,
            audible: false,
        }
    }

    /// Agent-audio span voicing each text.
    fn spans(&self) -> impl Iterator<Item = (u64, u64, &str)> {
        let end = self.audio_end;
        self.texts.iter().enumerate().map(move |(i, (from, text))| {
            let from = (*from).clamp(self.audio_start, end);
            let to = self.texts.get(i + 1).map_or(end, |(next, _)| (*next).clamp(from, end));
            (from, to, text.as_str())
        })
    }

    pub fn full(self) -> Turn {
        let streamed = join_text(self.texts.iter().map(|t| t.1.as_str()));
        Turn {
            role: Role::Agent,
            text: self.final_text.filter(|t| !t.trim().is_empty()).unwrap_or(streamed),
            start_ms: self.start_ms,
            end_ms: self.start_ms + (self.audio_end - self.audio_start),
            interrupted: false,
            tool_calls: self.tool_calls,
        }
    }

    /// The turn as far as it was played: texts whose audio was played whole, and the
    /// share of words of the text playing at that moment.
    pub fn cut_at(self, played: u64) -> Turn {
        let mut parts: Vec<String> = Vec::new();
        for (from, to, text) in self.spans() {
            if to <= played {
                parts.push(text.to_owned());
            } else if from < played {
                let words: Vec<&str> = text.split_whitespace().collect();
                let share = (played - from) as f64 / (to - from).max(1) as f64;
                let n = (words.len() as f64 * share).floor() as usize;
                if n > 0 {
                    parts.push(words[..n].join(" "));
                }
            }
        }
        Turn {
            role: Role::Agent,
            text: join_text(parts.iter().map(String::as_str)),
            start_ms: self.start_ms,
            end_ms: self.start_ms + played.clamp(self.audio_start, self.audio_end) - self.audio_start,
            interrupted: true,
            tool_calls: self.tool_calls,
        }
    }
}

pub(super) fn join_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for p in parts.map(str::trim).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p);
    }
    out
}

/// Caller turns whose text has not arrived yet, by the provider's item id.
#[derive(Default)]
pub(super) struct PendingCallerText {
    /// (item, index of the turn in the call's turns).
    items: Vec<(ItemId, usize)>,
}

impl PendingCallerText {
    pub fn expect(&mut self, item: ItemId, index: usize) {
        // A provider that never transcribes a turn must not grow this without bound.
        if self.items.len() >= 64 {
            self.items.remove(0);
        }
        self.items.push((item, index));
    }

    /// The turn waiting for this item's text.
    pub fn take(&mut self, item: &str) -> Option<usize> {
        let at = self.items.iter().position(|(i, _)| i == item)?;
        Some(self.items.remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(texts: &[(u64, &str)], end: u64) -> AgentTurn {
        let mut t = AgentTurn::new(1_000, 0);
        t.texts = texts.iter().map(|(a, s)| (*a, (*s).to_owned())).collect();
        t.audio_end = end;
        t
    }

    #[test]
    fn a_turn_is_cut_at_the_played_position_by_its_texts_anchors() {
        let t = turn(&[(0, "We open at nine."), (1_000, "We close at five in the evening.")], 2_000);
        let cut = t.cut_at(1_500);
        assert_eq!(cut.text, "We open at nine. We close at");
        assert!(cut.interrupted);
        assert_eq!(cut.end_ms, 2_500);
        let full = turn(&[(0, "We open at nine."), (1_000, "Goodbye.")], 2_000).full();
        assert_eq!((full.text.as_str(), full.end_ms, full.interrupted), ("We open at nine. Goodbye.", 3_000, false));
    }

    #[test]
    fn texts_arriving_after_their_audio_are_kept_only_if_played() {
        // A provider that sends the transcript after the audio: the anchor is the end.
        let t = turn(&[(2_000, "All of it.")], 2_000);
        assert_eq!(t.cut_at(1_000).text, "");
        let t = turn(&[(2_000, "All of it.")], 2_000);
        assert_eq!(t.cut_at(2_000).text, "All of it.");
    }

    #[test]
    fn late_caller_text_finds_its_turn_by_item() {
        let mut p = PendingCallerText::default();
        p.expect("a".into(), 3);
        p.expect("b".into(), 5);
        assert_eq!(p.take("b"), Some(5));
        assert_eq!(p.take("b"), None);
        assert_eq!(p.take("a"), Some(3));
    }
}
