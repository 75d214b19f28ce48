//! The agent form: what the create and edit pages post, as the browser sends it
//! (every value a string), and its translation to the API's [`AgentDraft`].
//!
//! Input names are `agent[<field>]`; a document of the knowledge base is
//! `agent[knowledge][<i>][title]` and `…[text]`. Errors are keyed by the API's field
//! paths (`telephony.call_phone_number`, `knowledge_base[0].title`), so an error
//! found here and one returned by the API land next to the same input.

use agent_spec::api::AgentResponse;
use agent_spec::config::CpuArchitecture;
use agent_spec::draft::{
    GuardrailsDraft, IntegrationsDraft, KnowledgeDocumentDraft, SecretsDraft, SizingDraft, TelephonyDraft, VoiceDraft,
};
use agent_spec::values::Temperature;
use agent_spec::{AgentDraft, FieldError, SecretPatch, SpeechProvider};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DocumentForm {
    pub title: String,
    pub text: String,
}

/// The agent form as posted. Checkboxes are `"on"` when ticked and absent otherwise.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentForm {
    /// The agent being edited; empty when creating.
    pub id: String,
    /// The version the edit started from (sent as `If-Match`).
    pub version: String,
    /// The kept-input record of an earlier failed submission (holds secrets typed then).
    pub resume: String,
    /// Set by the "Add a document" button: show one more empty document, save nothing.
    pub add_document: String,

    pub name: String,
    pub description: String,
    pub language: String,
    pub system_prompt: String,
    pub greeting: String,
    pub voicemail_message: String,
    pub idle_prompt_after_secs: String,
    pub enable_transcription: String,
    pub enable_recording: String,

    pub provider: String,
    pub model: String,
    pub voice_id: String,
    pub turn_detection: String,
    pub eagerness: String,
    pub endpointing_sensitivity: String,
    pub temperature: String,
    pub aws_region: String,
    pub openai_api_key: String,
    pub remove_openai_api_key: String,

    pub knowledge: Vec<DocumentForm>,

    /// One rule per line.
    pub custom_rules: String,
    pub max_conversation_turns: String,
    pub max_session_duration_secs: String,
    pub max_inappropriate_attempts: String,

    pub call_phone_number: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub transfer_phone_number: String,
    pub summary_phone_number: String,
    pub sip_endpoint: String,
    pub configure_number: String,

    pub webhook_endpoint: String,
    pub transcript_webhook_url: String,
    pub pickup_webhook_url: String,
    pub make_endpoint: String,
    pub webhook_signing_secret: String,
    pub remove_webhook_signing_secret: String,

    pub cpu: String,
    pub memory_mib: String,
    pub min_tasks: String,
    /// Blank: the default (twice `min_tasks`).
    pub max_tasks: String,
    pub calls_per_task: String,
    /// Blank: the default (70 % of `calls_per_task`).
    pub target_calls_per_task: String,
    pub cpu_architecture: String,
}

impl std::fmt::Debug for AgentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("AgentForm").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

fn on(flag: bool) -> String {
    if flag { "on".into() } else { String::new() }
}

fn optional(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty()).then(|| raw.to_owned())
}

/// Secrets the form does not show again: typed into a submission that failed, they
/// are kept on the server (never in the page) for the next submission.
#[derive(Clone, Default)]
pub struct KeptSecrets {
    pub twilio_auth_token: Option<SecretString>,
    pub openai_api_key: Option<SecretString>,
    pub webhook_signing_secret: Option<SecretString>,
}

impl KeptSecrets {
    pub fn is_empty(&self) -> bool {
        self.twilio_auth_token.is_none() && self.openai_api_key.is_none() && self.webhook_signing_secret.is_none()
    }
}

impl AgentForm {
    /// The bytes this form holds, as the flash store accounts them: every string's
    /// length plus the size of a `String` for each.
    pub fn accounted_bytes(&self) -> usize {
        fn strings(value: &serde_json::Value) -> usize {
            match value {
                serde_json::Value::String(s) => s.len() + std::mem::size_of::<String>(),
                serde_json::Value::Array(items) => items.iter().map(strings).sum(),
                serde_json::Value::Object(fields) => fields.values().map(strings).sum(),
                _ => 0,
            }
        }
        strings(&serde_json::to_value(self).expect("a form of strings serializes"))
    }

    /// A new agent's form with the API's defaults.
    pub fn new_agent() -> Self {
        let d = AgentDraft::default();
        Self {
            greeting: d.greeting,
            voicemail_message: d.voicemail_message,
            language: d.language,
            idle_prompt_after_secs: d.idle_prompt_after_secs.to_string(),
            enable_transcription: on(d.enable_transcription),
            enable_recording: on(d.enable_recording),
            provider: d.voice.provider.as_str().into(),
            aws_region: d.integrations.aws_region,
            configure_number: on(d.telephony.configure_number),
            max_conversation_turns: d.guardrails.max_conversation_turns.to_string(),
            max_session_duration_secs: d.guardrails.max_session_duration_secs.to_string(),
            max_inappropriate_attempts: d.guardrails.max_inappropriate_attempts.to_string(),
            cpu: d.sizing.cpu.to_string(),
            memory_mib: d.sizing.memory_mib.to_string(),
            min_tasks: d.sizing.min_tasks.to_string(),
            max_tasks: d.sizing.max_tasks.map(|n| n.to_string()).unwrap_or_default(),
            calls_per_task: d.sizing.calls_per_task.to_string(),
            target_calls_per_task: d.sizing.target_calls_per_task.map(|n| n.to_string()).unwrap_or_default(),
            cpu_architecture: d.sizing.cpu_architecture.as_str().into(),
            ..Self::default()
        }
    }

    /// The form of a stored agent (secrets blank: they are write-only).
    pub fn from_agent(agent: &AgentResponse) -> Self {
        let d = AgentDraft::from_config(&agent.config);
        let o = |v: Option<String>| v.unwrap_or_default();
        Self {
            id: agent.id.to_string(),
            version: agent.version.to_string(),
            name: d.name,
            description: d.description,
            language: d.language,
            system_prompt: d.system_prompt,
            greeting: d.greeting,
            voicemail_message: d.voicemail_message,
            idle_prompt_after_secs: d.idle_prompt_after_secs.to_string(),
            enable_transcription: on(d.enable_transcription),
            enable_recording: on(d.enable_recording),
            provider: d.voice.provider.as_str().into(),
            model: o(d.voice.model),
            voice_id: o(d.voice.voice_id),
            turn_detection: o(d.voice.turn_detection),
            eagerness: o(d.voice.eagerness),
            endpointing_sensitivity: o(d.voice.endpointing_sensitivity),
            temperature: d.voice.temperature.map(|t| t.to_string()).unwrap_or_default(),
            aws_region: d.integrations.aws_region,
            knowledge: d.knowledge_base.into_iter().map(|k| DocumentForm { title: k.title, text: k.text }).collect(),
            custom_rules: d.guardrails.custom_rules.join("\n"),
            max_conversation_turns: d.guardrails.max_conversation_turns.to_string(),
            max_session_duration_secs: d.guardrails.max_session_duration_secs.to_string(),
            max_inappropriate_attempts: d.guardrails.max_inappropriate_attempts.to_string(),
            call_phone_number: d.telephony.call_phone_number,
            twilio_account_sid: d.telephony.twilio_account_sid,
            transfer_phone_number: o(d.telephony.transfer_phone_number),
            summary_phone_number: o(d.telephony.summary_phone_number),
            sip_endpoint: o(d.telephony.sip_endpoint),
            configure_number: on(d.telephony.configure_number),
            webhook_endpoint: o(d.integrations.webhook_endpoint),
            transcript_webhook_url: o(d.integrations.transcript_webhook_url),
            pickup_webhook_url: o(d.integrations.pickup_webhook_url),
            make_endpoint: o(d.integrations.make_endpoint),
            cpu: d.sizing.cpu.to_string(),
            memory_mib: d.sizing.memory_mib.to_string(),
            min_tasks: d.sizing.min_tasks.to_string(),
            max_tasks: d.sizing.max_tasks.map(|n| n.to_string()).unwrap_or_default(),
            calls_per_task: d.sizing.calls_per_task.to_string(),
            target_calls_per_task: d.sizing.target_calls_per_task.map(|n| n.to_string()).unwrap_or_default(),
            cpu_architecture: d.sizing.cpu_architecture.as_str().into(),
            ..Self::default()
        }
    }

    pub fn is_edit(&self) -> bool {
        !self.id.is_empty()
    }

    /// Drops knowledge documents left entirely blank (the empty slot, or one the user
    /// cleared to remove it), so document numbers match what is saved.
    pub fn drop_blank_documents(&mut self) {
        self.knowledge.retain(|d| !(d.title.trim().is_empty() && d.text.trim().is_empty()));
    }

    /// Takes the typed secrets out of the form (so it can be shown again and kept
    /// without them), falling back to `kept` for those left blank.
    pub fn take_secrets(&mut self, kept: &KeptSecrets) -> KeptSecrets {
        let take = |typed: &mut String, kept: &Option<SecretString>| {
            let typed = std::mem::take(typed);
            if typed.trim().is_empty() { kept.clone() } else { Some(SecretString::from(typed.trim().to_owned())) }
        };
        KeptSecrets {
            twilio_auth_token: take(&mut self.twilio_auth_token, &kept.twilio_auth_token),
            openai_api_key: take(&mut self.openai_api_key, &kept.openai_api_key),
            webhook_signing_secret: take(&mut self.webhook_signing_secret, &kept.webhook_signing_secret),
        }
    }

    /// The API request body, and the problems found before the API sees it (numbers
    /// that are not numbers, an unknown provider). Call [`Self::drop_blank_documents`]
    /// first.
    pub fn to_draft(&self, secrets: &KeptSecrets) -> (AgentDraft, Vec<FieldError>) {
        let mut errors = Vec::new();
        let defaults = AgentDraft::default();
        let mut number = |field: &str, raw: &str, default: u32| -> u32 {
            match raw.trim().parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let reason = if raw.trim().is_empty() { "is required" } else { "must be a whole number" };
                    errors.push(FieldError { field: field.into(), reason: reason.into() });
                    default
                }
            }
        };
        let idle = number("idle_prompt_after_secs", &self.idle_prompt_after_secs, defaults.idle_prompt_after_secs);
        let g = &defaults.guardrails;
        let turns = number("guardrails.max_conversation_turns", &self.max_conversation_turns, g.max_conversation_turns);
        let duration = number(
            "guardrails.max_session_duration_secs",
            &self.max_session_duration_secs,
            g.max_session_duration_secs,
        );
        let attempts = number(
            "guardrails.max_inappropriate_attempts",
            &self.max_inappropriate_attempts,
            g.max_inappropriate_attempts,
        );
        let s = &defaults.sizing;
        let cpu = number("sizing.cpu", &self.cpu, s.cpu);
        let memory_mib = number("sizing.memory_mib", &self.memory_mib, s.memory_mib);
        let min_tasks = number("sizing.min_tasks", &self.min_tasks, s.min_tasks);
        let max_tasks = (!self.max_tasks.trim().is_empty()).then(|| number("sizing.max_tasks", &self.max_tasks, 0));
        let calls_per_task = number("sizing.calls_per_task", &self.calls_per_task, s.calls_per_task);
        let target_calls_per_task = (!self.target_calls_per_task.trim().is_empty())
            .then(|| number("sizing.target_calls_per_task", &self.target_calls_per_task, 0));
        let cpu_architecture = if self.cpu_architecture.trim().is_empty() {
            s.cpu_architecture
        } else {
            CpuArchitecture::parse(&self.cpu_architecture).unwrap_or_else(|| {
                errors.push(FieldError {
                    field: "sizing.cpu_architecture".into(),
                    reason: format!("must be {}", CpuArchitecture::choices()),
                });
                s.cpu_architecture
            })
        };
        let provider = SpeechProvider::parse(&self.provider).unwrap_or_else(|| {
            errors.push(FieldError {
                field: "voice.provider".into(),
                reason: format!("must be {}", SpeechProvider::choices()),
            });
            SpeechProvider::default()
        });

        // The provider's own settings are sent for the chosen provider only: the
        // others' inputs are hidden, and the API refuses settings a provider lacks.
        let mine = |owner: SpeechProvider, raw: &str| if provider == owner { optional(raw) } else { None };
        let temperature = mine(SpeechProvider::NovaSonic, &self.temperature).and_then(|raw| {
            Temperature::parse(&raw)
                .map_err(|e| errors.push(FieldError { field: "voice.temperature".into(), reason: e.0 }))
                .ok()
                .map(Temperature::value)
        });
        let patch = |value: &Option<SecretString>, remove: &str| match value {
            Some(v) => SecretPatch::Set(v.clone()),
            None if remove == "on" => SecretPatch::Clear,
            None => SecretPatch::Keep,
        };
        let draft = AgentDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            system_prompt: self.system_prompt.clone(),
            greeting: self.greeting.clone(),
            voicemail_message: self.voicemail_message.clone(),
            language: self.language.clone(),
            voice: VoiceDraft {
                provider,
                model: optional(&self.model),
                voice_id: optional(&self.voice_id),
                turn_detection: mine(SpeechProvider::OpenaiRealtime, &self.turn_detection),
                eagerness: mine(SpeechProvider::OpenaiRealtime, &self.eagerness),
                endpointing_sensitivity: mine(SpeechProvider::NovaSonic, &self.endpointing_sensitivity),
                temperature,
            },
            knowledge_base: self
                .knowledge
                .iter()
                .map(|d| KnowledgeDocumentDraft { title: d.title.clone(), text: d.text.clone() })
                .collect(),
            guardrails: GuardrailsDraft {
                custom_rules: self
                    .custom_rules
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                max_conversation_turns: turns,
                max_session_duration_secs: duration,
                max_inappropriate_attempts: attempts,
            },
            idle_prompt_after_secs: idle,
            enable_recording: self.enable_recording == "on",
            enable_transcription: self.enable_transcription == "on",
            telephony: TelephonyDraft {
                call_phone_number: self.call_phone_number.trim().to_owned(),
                transfer_phone_number: optional(&self.transfer_phone_number),
                summary_phone_number: optional(&self.summary_phone_number),
                twilio_account_sid: self.twilio_account_sid.trim().to_owned(),
                sip_endpoint: optional(&self.sip_endpoint),
                configure_number: self.configure_number == "on",
            },
            integrations: IntegrationsDraft {
                webhook_endpoint: optional(&self.webhook_endpoint),
                transcript_webhook_url: optional(&self.transcript_webhook_url),
                pickup_webhook_url: optional(&self.pickup_webhook_url),
                make_endpoint: optional(&self.make_endpoint),
                aws_region: self.aws_region.trim().to_owned(),
            },
            sizing: SizingDraft {
                cpu,
                memory_mib,
                min_tasks,
                desired_count: None,
                max_tasks,
                calls_per_task,
                target_calls_per_task,
                cpu_architecture,
            },
            secrets: SecretsDraft {
                twilio_auth_token: patch(&secrets.twilio_auth_token, ""),
                openai_api_key: patch(&secrets.openai_api_key, &self.remove_openai_api_key),
                webhook_signing_secret: patch(&secrets.webhook_signing_secret, &self.remove_webhook_signing_secret),
            },
        };
        (draft, errors)
    }
}

/// Every problem with a draft, as the API would report it, for when the dashboard
/// cannot send it (some values did not even parse): the form's own errors first, then
/// the shared validation's for the other fields. On an edit, secrets left blank are
/// kept by the API, so "required" for them is not reported.
pub fn all_errors(draft: &AgentDraft, mut errors: Vec<FieldError>, editing: bool) -> Vec<FieldError> {
    if let Err(found) = draft.validate(None) {
        for e in found.0 {
            let blank_kept_secret = editing && e.field.starts_with("secrets.") && e.reason.starts_with("is required");
            if !blank_kept_secret && !errors.iter().any(|x| x.field == e.field) {
                errors.push(e);
            }
        }
    }
    errors.sort_by_key(|e| crate::fields::position(&e.field));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_numbers_and_blank_documents_are_reported_by_api_field() {
        let mut form = AgentForm::new_agent();
        form.max_conversation_turns = "lots".into();
        form.cpu = String::new();
        form.knowledge = vec![
            DocumentForm { title: " ".into(), text: String::new() },
            DocumentForm { title: "Hours".into(), text: "Open 9 to 5.".into() },
        ];
        form.drop_blank_documents();
        let (draft, errors) = form.to_draft(&KeptSecrets::default());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["guardrails.max_conversation_turns", "sizing.cpu"]);
        assert_eq!(draft.knowledge_base.len(), 1);
        let all = all_errors(&draft, errors, false);
        assert!(all.iter().any(|e| e.field == "name" && e.reason == "is required"), "{all:?}");
        assert!(all.iter().any(|e| e.field == "secrets.twilio_auth_token"), "{all:?}");
        assert_eq!(all.iter().filter(|e| e.field == "sizing.cpu").count(), 1);
    }

    #[test]
    fn only_the_chosen_providers_own_settings_are_sent() {
        let mut form = AgentForm::new_agent();
        // Values left in the hidden inputs of the provider not chosen.
        form.temperature = "0.4".into();
        form.endpointing_sensitivity = "high".into();
        form.turn_detection = "semantic_vad".into();
        form.eagerness = "low".into();
        let (draft, errors) = form.to_draft(&KeptSecrets::default());
        assert!(errors.is_empty());
        assert_eq!(
            (draft.voice.temperature, draft.voice.endpointing_sensitivity.as_deref()),
            (Some(0.4), Some("high"))
        );
        assert_eq!((draft.voice.turn_detection, draft.voice.eagerness), (None, None));
        form.provider = "openai-realtime".into();
        let (draft, _) = form.to_draft(&KeptSecrets::default());
        assert_eq!((draft.voice.temperature, draft.voice.endpointing_sensitivity), (None, None));
        assert_eq!(
            (draft.voice.turn_detection.as_deref(), draft.voice.eagerness.as_deref()),
            (Some("semantic_vad"), Some("low"))
        );
        form.provider = "nova-sonic".into();
        form.temperature = "warm".into();
        let (_, errors) = form.to_draft(&KeptSecrets::default());
        assert_eq!(errors[0].field, "voice.temperature");
    }

    #[test]
    fn typed_secrets_are_taken_out_and_blank_ones_fall_back_to_kept() {
        let mut form = AgentForm::new_agent();
        form.twilio_auth_token = "a".repeat(32);
        let kept =
            KeptSecrets { webhook_signing_secret: Some(SecretString::from("s".repeat(40))), ..KeptSecrets::default() };
        let secrets = form.take_secrets(&kept);
        assert!(form.twilio_auth_token.is_empty());
        assert!(secrets.twilio_auth_token.is_some() && secrets.webhook_signing_secret.is_some());
        assert!(secrets.openai_api_key.is_none());
        let (draft, _) = form.to_draft(&secrets);
        assert!(matches!(draft.secrets.twilio_auth_token, SecretPatch::Set(_)));
        assert!(matches!(draft.secrets.openai_api_key, SecretPatch::Keep));
    }
}
