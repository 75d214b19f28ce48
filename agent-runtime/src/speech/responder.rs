//! The offline pipeline's "brain": turns what the caller said into the agent's reply.
//!
//! Tools are triggered by intent words (goodbye → `end_call`, asking for a person →
//! `transfer_call`, …); questions are answered from the agent's knowledge base, whose
//! sentences are ranked by BM25 against the caller's words.

use std::collections::HashMap;

use agent_spec::AgentConfig;

use crate::guardrails::{Guardrails, Verdict, stem};
use crate::phrases::Phrases;
use crate::speech::{ToolCall, sentences, words};

/// Words that carry no topic.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "be", "do", "does", "did", "what", "when", "where", "which", "who", "how",
    "your", "you", "i", "me", "my", "we", "our", "us", "it", "to", "of", "in", "on", "at", "for", "and", "or", "can",
    "could", "would", "please", "tell", "about", "that", "this", "there", "have", "has", "with", "like", "so", "if",
    "will", "know", "want", "need", "hi", "hello", "yes", "no", "ok", "okay",
];

/// Caller phrasings per intent, also used to teach the recognizer these words.
pub const INTENT_EXAMPLES: &[&str] = &[
    "thank you goodbye",
    "bye bye",
    "goodbye",
    "that is all thank you",
    "i want to talk to a person",
    "can i speak to a human",
    "transfer me to an agent please",
    "let me talk to a real person",
    "i would like to speak to someone",
    "i want to leave a message",
    "can i leave a voicemail",
    "please call me back tomorrow at three pm",
    "can you call me back later today",
    "call me back on monday morning",
    "please call me back as soon as possible",
    "call me back in two hours",
    "yes please",
    "no thank you",
    "hello",
    "what are your opening hours",
    "when are you open",
    "where are you located",
    "how much does it cost",
    "you are stupid",
    "shut up you idiot",
    "this is useless",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub tool: Option<ToolCall>,
}

pub struct Responder {
    phrases: Phrases,
    guardrails: Guardrails,
    transfer_available: bool,
    passages: Vec<Passage>,
    doc_freq: HashMap<String, usize>,
    avg_len: f64,
}

struct Passage {
    text: String,
    terms: HashMap<String, usize>,
    len: usize,
}

impl Responder {
    pub fn new(config: &AgentConfig) -> Self {
        let mut passages = Vec::new();
        for doc in &config.knowledge_base {
            let title_terms = terms(&doc.title);
            // Passages of up to three sentences: an answer keeps its context.
            let doc_sentences = sentences(&doc.text);
            for chunk in doc_sentences.chunks(3) {
                let sentence = chunk.join(" ");
                let mut all = terms(&sentence);
                all.extend(title_terms.iter().cloned());
                let mut counts = HashMap::new();
                for t in &all {
                    *counts.entry(t.clone()).or_insert(0) += 1;
                }
                passages.push(Passage { text: sentence, len: all.len(), terms: counts });
            }
        }
        let mut doc_freq = HashMap::new();
        for p in &passages {
            for t in p.terms.keys() {
                *doc_freq.entry(t.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = if passages.is_empty() {
            1.0
        } else {
            passages.iter().map(|p| p.len as f64).sum::<f64>() / passages.len() as f64
        };
        Self {
            phrases: Phrases::for_agent(config),
            guardrails: Guardrails::new(&config.guardrails),
            transfer_available: config.telephony.transfer_phone_number.is_some(),
            passages,
            doc_freq,
            avg_len,
        }
    }

    pub fn reply(&self, caller: &str) -> Reply {
        let said = words(caller);
        if said.is_empty() {
            return self.say(&self.phrases.not_understood);
        }
        let has = |w: &str| said.iter().any(|x| x == w);
        let has_seq = |seq: &[&str]| said.windows(seq.len()).any(|win| win.iter().zip(seq).all(|(a, b)| a == b));

        match self.guardrails.classify(caller) {
            Verdict::Inappropriate => return self.say(&self.phrases.guardrail_warning),
            Verdict::OffLimits { .. } => return self.say(&self.phrases.off_limits),
            Verdict::Fine => {}
        }
        if has_seq(&["call", "me", "back"]) || has("callback") || has_seq(&["call", "back"]) {
            let at = said.iter().position(|w| w == "back" || w == "callback").map_or(said.len(), |i| i + 1);
            let requested: Vec<&str> = said[at..].iter().map(String::as_str).filter(|w| *w != "please").collect();
            let requested_time =
                if requested.is_empty() { "as soon as possible".to_owned() } else { requested.join(" ") };
            return Reply {
                text: "Certainly, let me arrange that.".to_owned(),
                tool: Some(ToolCall::ScheduleCallback { requested_time, at: None }),
            };
        }
        if has("message") || has("voicemail") {
            return Reply { text: self.phrases.voicemail.clone(), tool: Some(ToolCall::Voicemail) };
        }
        if self.transfer_available
            && ["person", "human", "agent", "representative", "operator", "someone", "transfer"].iter().any(|w| has(w))
        {
            return Reply { text: self.phrases.transfer.clone(), tool: Some(ToolCall::TransferCall) };
        }
        if has("goodbye") || has("bye") || has_seq(&["that", "is", "all"]) || has_seq(&["hang", "up"]) {
            return Reply { text: self.phrases.goodbye.clone(), tool: Some(ToolCall::EndCall) };
        }
        match self.best_passage(&said) {
            Some(text) => self.say(text),
            None => self.say(&self.phrases.no_answer),
        }
    }

    /// The knowledge base's best passage for `query` (BM25), for a provider's
    /// `search_knowledge_base` tool.
    pub fn search(&self, query: &str) -> Option<&str> {
        self.best_passage(&words(query))
    }

    fn say(&self, text: &str) -> Reply {
        Reply { text: text.to_owned(), tool: None }
    }

    /// The knowledge-base sentence that ranks highest by BM25, if any query term matches.
    fn best_passage(&self, said: &[String]) -> Option<&str> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let query: Vec<String> = said.iter().filter(|w| !STOPWORDS.contains(&w.as_str())).map(|w| stem(w)).collect();
        let n = self.passages.len() as f64;
        let mut best: Option<(f64, &Passage)> = None;
        for p in &self.passages {
            let mut score = 0.0;
            for q in &query {
                let Some(tf) = p.terms.get(q) else { continue };
                let df = self.doc_freq.get(q).copied().unwrap_or(0) as f64;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let tf = *tf as f64;
                score += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * p.len as f64 / self.avg_len));
            }
            if score > 0.0 && best.is_none_or(|(s, _)| score > s) {
                best = Some((score, p));
            }
        }
        best.map(|(_, p)| p.text.as_str())
    }

    /// Everything this agent's callers are likely to say, one sentence per entry, for
    /// the recognizer's language model.
    pub fn corpus(&self, config: &AgentConfig) -> Vec<Vec<String>> {
        // What callers say to reach a tool counts three times: those words must win
        // over the knowledge base's own.
        let mut out: Vec<Vec<String>> = INTENT_EXAMPLES.iter().flat_map(|s| std::iter::repeat_n(words(s), 3)).collect();
        for doc in &config.knowledge_base {
            out.push(words(&doc.title));
            for prefix in ["what are your", "tell me about your", "what is your", "when is your"] {
                out.push(words(&format!("{prefix} {}", doc.title)));
            }
            for s in sentences(&doc.text) {
                out.push(words(&s));
            }
        }
        let topics: Vec<String> = self.guardrails.topic_words().map(str::to_owned).collect();
        for t in topics {
            out.push(words(&format!("what about your {t}")));
        }
        out
    }
}

fn terms(text: &str) -> Vec<String> {
    words(text).into_iter().filter(|w| !STOPWORDS.contains(&w.as_str())).map(|w| stem(&w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AgentConfig {
        let mut draft = agent_spec::AgentDraft {
            name: "Front desk".into(),
            system_prompt: "You answer calls.".into(),
            telephony: agent_spec::draft::TelephonyDraft {
                call_phone_number: "+14155550100".into(),
                twilio_account_sid: "AC0123456789abcdef0123456789abcdef".into(),
                ..Default::default()
            },
            secrets: agent_spec::draft::SecretsDraft {
                twilio_auth_token: agent_spec::SecretPatch::set("0123456789abcdef0123456789abcdef"),
                ..Default::default()
            },
            ..Default::default()
        };
        draft.knowledge_base = vec![
            agent_spec::draft::KnowledgeDocumentDraft {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday, from nine in the morning to five in the evening. On Saturdays we open at ten.".into(),
            },
            agent_spec::draft::KnowledgeDocumentDraft {
                title: "Location".into(),
                text: "Our office is at 12 Harbour Street, next to the station.".into(),
            },
        ];
        draft.telephony.transfer_phone_number = Some("+15550002222".into());
        draft.guardrails.custom_rules = vec!["Never discuss pricing.".into()];
        draft.validate(None).unwrap().0
    }

    #[test]
    fn answers_from_the_knowledge_base_and_triggers_tools() {
        let r = Responder::new(&config());
        assert!(r.reply("what are your opening hours are").text.contains("Monday to Friday"));
        assert!(r.reply("where are you located").text.contains("Harbour Street"));
        assert_eq!(r.reply("can you goodbye").tool, Some(ToolCall::EndCall));
        assert_eq!(r.reply("i want to talk to a person").tool, Some(ToolCall::TransferCall));
        assert_eq!(r.reply("want to leave a message").tool, Some(ToolCall::Voicemail));
        assert_eq!(
            r.reply("can you call me back tomorrow at three pm").tool,
            Some(ToolCall::ScheduleCallback { requested_time: "tomorrow at three pm".into(), at: None })
        );
        assert!(r.reply("what are your prices").text.contains("cannot discuss"));
        assert!(r.reply("").text.contains("did not catch"));
    }
}
