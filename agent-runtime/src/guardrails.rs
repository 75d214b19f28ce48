//! Guardrails applied to what the caller says, whatever the speech provider: a count
//! of inappropriate caller turns (the call ends politely past the agent's maximum),
//! and the agent's custom rules that put topics off limits ("Never discuss pricing").

use agent_spec::config::Guardrails as GuardrailsConfig;

use crate::speech::words;

/// Words that make a caller turn inappropriate (abuse aimed at the agent).
pub const ABUSIVE_WORDS: &[&str] =
    &["stupid", "idiot", "idiots", "moron", "dumb", "shut", "hate", "damn", "useless", "crap", "jerk", "loser"];

/// Verbs that, in a custom rule, introduce a topic the agent must not talk about.
const RULE_VERBS: &[&str] = &["discuss", "mention", "reveal", "disclose", "about", "give", "share", "quote"];

const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "any",
    "our",
    "your",
    "their",
    "its",
    "of",
    "or",
    "and",
    "to",
    "with",
    "on",
    "in",
    "for",
    "never",
    "not",
    "do",
    "don't",
    "must",
    "should",
    "anything",
    "other",
    "others",
    "callers",
    "caller",
    "customers",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Abuse; counts towards `max_inappropriate_attempts`.
    Inappropriate,
    /// Asks about a topic a custom rule forbids; the agent declines.
    OffLimits {
        rule: String,
    },
}

#[derive(Debug, Clone)]
pub struct Guardrails {
    topics: Vec<(String, Vec<String>)>,
    pub max_inappropriate: u32,
}

impl Guardrails {
    pub fn new(config: &GuardrailsConfig) -> Self {
        let topics = config
            .custom_rules
            .iter()
            .filter_map(|rule| {
                let w = words(rule);
                let at = w.iter().position(|x| RULE_VERBS.contains(&x.as_str()))?;
                let topic: Vec<String> = w[at + 1..]
                    .iter()
                    .filter(|x| !STOPWORDS.contains(&x.as_str()) && !RULE_VERBS.contains(&x.as_str()))
                    .map(|x| stem(x))
                    .collect();
                (!topic.is_empty()).then(|| (rule.clone(), topic))
            })
            .collect();
        Self { topics, max_inappropriate: config.max_inappropriate_attempts }
    }

    pub fn classify(&self, caller_text: &str) -> Verdict {
        let w = words(caller_text);
        if w.iter().any(|x| ABUSIVE_WORDS.contains(&x.as_str())) {
            return Verdict::Inappropriate;
        }
        let stems: Vec<String> = w.iter().map(|x| stem(x)).collect();
        for (rule, topic) in &self.topics {
            if topic.iter().any(|t| stems.contains(t)) {
                return Verdict::OffLimits { rule: rule.clone() };
            }
        }
        Verdict::Fine
    }

    /// Words of the rules' topics, for the recognizer's vocabulary.
    pub fn topic_words(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().flat_map(|(_, t)| t.iter().map(String::as_str))
    }
}

/// A light stemmer: enough to match "prices"/"price"/"pricing", "opening"/"open",
/// "located"/"location".
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    let mut base = w;
    for suffix in ["ing", "ies", "ion", "es", "ed", "s"] {
        if let Some(b) = w.strip_suffix(suffix) {
            if b.len() >= 3 {
                if suffix == "ies" {
                    return format!("{b}y");
                }
                base = b;
                break;
            }
        }
    }
    base.strip_suffix('e').filter(|b| b.len() >= 3).unwrap_or(base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rails(rules: &[&str]) -> Guardrails {
        Guardrails::new(&GuardrailsConfig {
            custom_rules: rules.iter().map(|s| s.to_string()).collect(),
            max_conversation_turns: 10,
            max_session_duration_secs: 60,
            max_inappropriate_attempts: 2,
        })
    }

    #[test]
    fn abuse_is_inappropriate_and_rules_put_topics_off_limits() {
        let g = rails(&["Never discuss pricing with callers."]);
        assert_eq!(g.classify("you are stupid"), Verdict::Inappropriate);
        assert!(matches!(g.classify("what are your prices"), Verdict::OffLimits { .. }));
        assert_eq!(g.classify("what are your opening hours"), Verdict::Fine);
    }
}
