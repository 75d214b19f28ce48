//! The lines the agent says on its own initiative, whatever the speech provider.

use agent_spec::AgentConfig;

#[derive(Debug, Clone)]
pub struct Phrases {
    pub greeting: String,
    /// Left on an answering machine (an outbound call), in the runtime's own voice.
    pub voicemail_message: String,
    pub idle_prompt: String,
    pub goodbye: String,
    pub idle_goodbye: String,
    pub time_limit: String,
    pub turn_limit: String,
    pub guardrail_end: String,
    pub guardrail_warning: String,
    pub off_limits: String,
    pub transfer: String,
    pub voicemail: String,
    pub not_understood: String,
    pub no_answer: String,
    pub shutting_down: String,
    /// Said in the runtime's own voice when the speech provider is unavailable.
    pub provider_apology: String,
}

impl Phrases {
    pub fn for_agent(config: &AgentConfig) -> Self {
        Self {
            greeting: config.greeting.clone(),
            voicemail_message: config.voicemail_message.clone(),
            idle_prompt: "Are you still there?".into(),
            goodbye: "Thank you for calling. Goodbye.".into(),
            idle_goodbye: "I have not heard from you, so I will end the call now. Goodbye.".into(),
            time_limit: "We have reached the time limit for this call. Thank you for calling. Goodbye.".into(),
            turn_limit: "We have reached the limit for this call. Thank you for calling. Goodbye.".into(),
            guardrail_end: "I am going to end our call now. Goodbye.".into(),
            guardrail_warning: "Please keep our conversation respectful.".into(),
            off_limits: "I am sorry, I cannot discuss that.".into(),
            transfer: "Let me transfer you to a person now.".into(),
            voicemail: "Please leave your message after the tone, and hang up when you are done.".into(),
            not_understood: "Sorry, I did not catch that. Could you say it again?".into(),
            no_answer: "I am sorry, I do not have an answer to that.".into(),
            shutting_down: "I am sorry, I have to end our call now. Please call again. Goodbye.".into(),
            provider_apology: "I am sorry, I cannot take your call right now. Please call again later. Goodbye.".into(),
        }
    }

    /// Lines worth synthesizing before the first call.
    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.greeting,
            &self.voicemail_message,
            &self.idle_prompt,
            &self.goodbye,
            &self.idle_goodbye,
            &self.time_limit,
            &self.turn_limit,
            &self.guardrail_end,
            &self.guardrail_warning,
            &self.off_limits,
            &self.transfer,
            &self.voicemail,
            &self.not_understood,
            &self.no_answer,
            &self.shutting_down,
            &self.provider_apology,
        ]
    }
}
