//! The agent form's fields, described once: each field's API path, form name,
//! label, hint, control, whether it is required, the group it sits in and the
//! provider it belongs to. The form is drawn from this table, errors are labelled
//! and ordered by it, and a posted form is read back through it.

use agent_spec::SpeechProvider;
use agent_spec::api::{SecretState, SecretsStatus};
use agent_spec::config::{Eagerness, EndpointingSensitivity, FARGATE_SIZES, TurnDetection};

use crate::app::view::Kind;
use crate::form::{AgentForm, KeptSecrets};

/// Reads one value out of a posted form.
pub type FormValue = fn(&AgentForm) -> &str;

/// The form's sections, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Identity,
    Behaviour,
    Voice,
    Knowledge,
    Guardrails,
    Telephony,
    Integrations,
    Sizing,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Self::Identity,
        Self::Behaviour,
        Self::Voice,
        Self::Knowledge,
        Self::Guardrails,
        Self::Telephony,
        Self::Integrations,
        Self::Sizing,
    ];

    pub fn legend(self) -> &'static str {
        match self {
            Self::Identity => "Identity",
            Self::Behaviour => "Behaviour and prompt",
            Self::Voice => "Voice and speech provider",
            Self::Knowledge => "Knowledge base",
            Self::Guardrails => "Guardrails",
            Self::Telephony => "Telephony",
            Self::Integrations => "Integrations and webhooks",
            Self::Sizing => "Sizing",
        }
    }
}

/// A secret input: write-only, shown as stored, kept from a failed submission, or
/// absent.
#[derive(Clone, Copy)]
pub struct Secret {
    pub stored: fn(&SecretsStatus) -> SecretState,
    pub kept: fn(&KeptSecrets) -> bool,
    /// The "remove" checkbox's form name and value, for optional secrets.
    pub remove: Option<(&'static str, FormValue)>,
}

/// How a field is drawn.
#[derive(Clone, Copy)]
pub enum Control {
    /// A labelled input or text area.
    Input(Kind),
    Checkbox,
    /// `(value, label)` options.
    Select(fn() -> Vec<(String, String)>),
    Secret(Secret),
    /// The knowledge base's documents (drawn as a list of title/text pairs).
    Documents,
}

impl Control {
    /// Drawn side by side with its neighbours in a grid.
    pub fn is_short(self) -> bool {
        match self {
            Self::Input(kind) => !matches!(kind, Kind::TextArea { .. }),
            Self::Select(_) => true,
            Self::Checkbox | Self::Secret(_) | Self::Documents => false,
        }
    }
}

pub struct Field {
    /// The API's field path, which errors are keyed by.
    pub path: &'static str,
    /// The form key inside `agent[…]`.
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub control: Control,
    pub required: bool,
    pub group: Group,
    /// Shown (and sent) only when this provider is chosen.
    pub provider: Option<SpeechProvider>,
    /// The field's value in a posted form (empty for secrets and documents).
    pub value: FormValue,
}

const fn field(
    group: Group,
    path: &'static str,
    name: &'static str,
    label: &'static str,
    control: Control,
    value: FormValue,
) -> Field {
    Field { path, name, label, hint: None, control, required: false, group, provider: None, value }
}

impl Field {
    const fn hint(self, hint: &'static str) -> Self {
        Field { hint: Some(hint), ..self }
    }

    const fn required(self) -> Self {
        Field { required: true, ..self }
    }

    const fn only(self, provider: SpeechProvider) -> Self {
        Field { provider: Some(provider), ..self }
    }
}

fn none(_: &AgentForm) -> &str {
    ""
}

fn provider_options() -> Vec<(String, String)> {
    SpeechProvider::ALL
        .iter()
        .map(|p| {
            let label = match p {
                SpeechProvider::NovaSonic => "Amazon Nova Sonic",
                SpeechProvider::OpenaiRealtime => "OpenAI Realtime",
                SpeechProvider::Local => "Local (offline pipeline)",
            };
            (p.as_str().to_owned(), label.to_owned())
        })
        .collect()
}

/// A blank "provider default" option, then the choices.
fn with_default(default: &str, choices: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once((String::new(), format!("Default ({default})")))
        .chain(choices.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned())))
        .collect()
}

fn turn_detection_options() -> Vec<(String, String)> {
    let label = |t: TurnDetection| match t {
        TurnDetection::ServerVad => "Server VAD: a pause ends the turn",
        TurnDetection::SemanticVad => "Semantic VAD: a model judges the caller has finished",
    };
    let choices: Vec<(&str, &str)> = TurnDetection::ALL.iter().map(|t| (t.as_str(), label(*t))).collect();
    with_default(TurnDetection::default().as_str(), &choices)
}

fn eagerness_options() -> Vec<(String, String)> {
    let label = |e: Eagerness| match e {
        Eagerness::Low => "Low: waits up to 8 s",
        Eagerness::Medium => "Medium: waits up to 4 s",
        Eagerness::High => "High: waits up to 2 s",
        Eagerness::Auto => "Auto (as medium)",
    };
    let choices: Vec<(&str, &str)> = Eagerness::ALL.iter().map(|e| (e.as_str(), label(*e))).collect();
    with_default(Eagerness::default().as_str(), &choices)
}

fn endpointing_options() -> Vec<(String, String)> {
    let label = |e: EndpointingSensitivity| match e {
        EndpointingSensitivity::High => "High: answers after a 1.5 s pause",
        EndpointingSensitivity::Medium => "Medium: 1.75 s",
        EndpointingSensitivity::Low => "Low: 2 s, for callers who pause to think",
    };
    let choices: Vec<(&str, &str)> = EndpointingSensitivity::ALL.iter().map(|e| (e.as_str(), label(*e))).collect();
    with_default("medium on Nova 2 Sonic", &choices)
}

fn cpu_options() -> Vec<(String, String)> {
    FARGATE_SIZES
        .iter()
        .map(|(cpu, _)| (cpu.to_string(), format!("{cpu} ({} vCPU)", f64::from(*cpu) / 1024.0)))
        .collect()
}

fn architecture_options() -> Vec<(String, String)> {
    vec![("x86_64".to_owned(), "x86_64".to_owned()), ("arm64".to_owned(), "ARM64 (Graviton)".to_owned())]
}

use Control::*;
use Group::*;
use Kind::*;
use SpeechProvider::{NovaSonic, OpenaiRealtime};

/// Every field, in the order the form shows them.
pub static FIELDS: &[Field] = &[
    field(Identity, "name", "name", "Name", Input(Text), |f| &f.name)
        .hint("Shown in the dashboard and in call metadata.")
        .required(),
    field(Identity, "description", "description", "Description", Input(TextArea { tall: false }), |f| &f.description),
    field(Identity, "language", "language", "Language", Input(Text), |f| &f.language)
        .hint("BCP 47 tag, e.g. en-US.")
        .required(),
    field(Behaviour, "system_prompt", "system_prompt", "System prompt", Input(TextArea { tall: true }), |f| {
        &f.system_prompt
    })
    .hint("Who the agent is, what it does and how it speaks.")
    .required(),
    field(Behaviour, "greeting", "greeting", "Greeting", Input(Text), |f| &f.greeting)
        .hint("The first words when the agent picks up.")
        .required(),
    field(Behaviour, "voicemail_message", "voicemail_message", "Voicemail message", Input(Text), |f| {
        &f.voicemail_message
    })
    .hint("Left after the beep when an outbound call reaches an answering machine.")
    .required(),
    field(
        Behaviour,
        "idle_prompt_after_secs",
        "idle_prompt_after_secs",
        "Idle prompt after (seconds)",
        Input(Number { min: 3, max: 300 }),
        |f| &f.idle_prompt_after_secs,
    )
    .hint("Silence before the agent asks whether the caller is still there (3 to 300).")
    .required(),
    field(Behaviour, "enable_transcription", "enable_transcription", "Keep transcripts", Checkbox, |f| {
        &f.enable_transcription
    })
    .hint("Each call's transcript is written to the agent's bucket."),
    field(Behaviour, "enable_recording", "enable_recording", "Record calls", Checkbox, |f| &f.enable_recording)
        .hint("Each call's audio is written to the agent's bucket."),
    field(Voice, "voice.provider", "provider", "Speech provider", Select(provider_options), |f| &f.provider).required(),
    field(Voice, "voice.model", "model", "Model", Input(Text), |f| &f.model).hint("Blank: the provider's default."),
    field(Voice, "voice.voice_id", "voice_id", "Voice", Input(Text), |f| &f.voice_id)
        .hint("Blank: the provider's default."),
    field(Voice, "integrations.aws_region", "aws_region", "Bedrock region", Input(Text), |f| &f.aws_region)
        .hint("AWS region of Amazon Bedrock that serves Nova Sonic.")
        .required()
        .only(NovaSonic),
    field(
        Voice,
        "voice.endpointing_sensitivity",
        "endpointing_sensitivity",
        "Endpointing sensitivity",
        Select(endpointing_options),
        |f| &f.endpointing_sensitivity,
    )
    .hint("How long a pause ends the caller's turn (Nova 2 Sonic only).")
    .only(NovaSonic),
    field(Voice, "voice.temperature", "temperature", "Temperature", Input(Fraction), |f| &f.temperature)
        .hint("0 to 1; lower is more predictable. Blank: 0.7.")
        .only(NovaSonic),
    field(Voice, "voice.turn_detection", "turn_detection", "Turn detection", Select(turn_detection_options), |f| {
        &f.turn_detection
    })
    .hint("How OpenAI decides the caller has finished.")
    .only(OpenaiRealtime),
    field(Voice, "voice.eagerness", "eagerness", "Eagerness", Select(eagerness_options), |f| &f.eagerness)
        .hint("With semantic VAD only: how soon the agent answers.")
        .only(OpenaiRealtime),
    field(
        Voice,
        "secrets.openai_api_key",
        "openai_api_key",
        "OpenAI API key",
        Secret(Secret {
            stored: |s| s.openai_api_key,
            kept: |k| k.openai_api_key.is_some(),
            remove: Some(("remove_openai_api_key", |f| &f.remove_openai_api_key)),
        }),
        none,
    )
    .hint("Needed for OpenAI Realtime.")
    .only(OpenaiRealtime),
    field(Knowledge, "knowledge_base", "knowledge", "Knowledge base", Documents, none)
        .hint("Documents the agent answers from. Clear a document's title and text to remove it."),
    field(Guardrails, "guardrails.custom_rules", "custom_rules", "Rules", Input(TextArea { tall: false }), |f| {
        &f.custom_rules
    })
    .hint("One per line, e.g. “Never discuss pricing.”"),
    field(
        Guardrails,
        "guardrails.max_conversation_turns",
        "max_conversation_turns",
        "Maximum turns",
        Input(Number { min: 1, max: 1000 }),
        |f| &f.max_conversation_turns,
    )
    .hint("1 to 1000 caller turns.")
    .required(),
    field(
        Guardrails,
        "guardrails.max_session_duration_secs",
        "max_session_duration_secs",
        "Maximum call length (seconds)",
        Input(Number { min: 30, max: 3_600 }),
        |f| &f.max_session_duration_secs,
    )
    .hint("30 to 3600: a deploy keeps a replaced task's calls for at most an hour.")
    .required(),
    field(
        Guardrails,
        "guardrails.max_inappropriate_attempts",
        "max_inappropriate_attempts",
        "Inappropriate turns allowed",
        Input(Number { min: 1, max: 20 }),
        |f| &f.max_inappropriate_attempts,
    )
    .hint("1 to 20, then the call ends.")
    .required(),
    field(Telephony, "telephony.call_phone_number", "call_phone_number", "Phone number", Input(Tel), |f| {
        &f.call_phone_number
    })
    .hint("The Twilio number callers dial, E.164 (+14155550123).")
    .required(),
    field(Telephony, "telephony.twilio_account_sid", "twilio_account_sid", "Twilio account SID", Input(Text), |f| {
        &f.twilio_account_sid
    })
    .hint("AC followed by 32 hex digits.")
    .required(),
    field(
        Telephony,
        "telephony.configure_number",
        "configure_number",
        "Point the number at the agent",
        Checkbox,
        |f| &f.configure_number,
    )
    .hint("On deploy, the number's Twilio voice URL is set to this agent's; deleting the agent puts the old one back."),
    field(
        Telephony,
        "secrets.twilio_auth_token",
        "twilio_auth_token",
        "Twilio auth token",
        Secret(Secret { stored: |s| s.twilio_auth_token, kept: |k| k.twilio_auth_token.is_some(), remove: None }),
        none,
    )
    .hint("From the Twilio console; checks that webhooks come from Twilio.")
    .required(),
    field(Telephony, "telephony.transfer_phone_number", "transfer_phone_number", "Transfer number", Input(Tel), |f| {
        &f.transfer_phone_number
    })
    .hint("Where “talk to a person” goes."),
    field(Telephony, "telephony.summary_phone_number", "summary_phone_number", "Summary number", Input(Tel), |f| {
        &f.summary_phone_number
    })
    .hint("Receives call summaries by SMS."),
    field(Telephony, "telephony.sip_endpoint", "sip_endpoint", "SIP endpoint", Input(Text), |f| &f.sip_endpoint)
        .hint("sip:… URI, optional."),
    field(Integrations, "integrations.webhook_endpoint", "webhook_endpoint", "Event webhook", Input(Url), |f| {
        &f.webhook_endpoint
    })
    .hint("https:// URL."),
    field(
        Integrations,
        "integrations.transcript_webhook_url",
        "transcript_webhook_url",
        "Transcript webhook",
        Input(Url),
        |f| &f.transcript_webhook_url,
    )
    .hint("Receives the transcript when a call ends."),
    field(Integrations, "integrations.pickup_webhook_url", "pickup_webhook_url", "Pickup webhook", Input(Url), |f| {
        &f.pickup_webhook_url
    })
    .hint("Notified when a call is answered."),
    field(Integrations, "integrations.make_endpoint", "make_endpoint", "Make.com endpoint", Input(Url), |f| {
        &f.make_endpoint
    })
    .hint("Receives scheduled callbacks."),
    field(
        Integrations,
        "secrets.webhook_signing_secret",
        "webhook_signing_secret",
        "Webhook signing secret",
        Secret(Secret {
            stored: |s| s.webhook_signing_secret,
            kept: |k| k.webhook_signing_secret.is_some(),
            remove: Some(("remove_webhook_signing_secret", |f| &f.remove_webhook_signing_secret)),
        }),
        none,
    )
    .hint("Signs every webhook (X-TempoVoice-Signature); 32 characters or more."),
    field(Sizing, "sizing.cpu", "cpu", "CPU", Select(cpu_options), |f| &f.cpu)
        .hint("Fargate CPU units per task.")
        .required(),
    field(Sizing, "sizing.memory_mib", "memory_mib", "Memory (MiB)", Input(Number { min: 512, max: 122_880 }), |f| {
        &f.memory_mib
    })
    .hint("A Fargate size for the CPU: 512, 1024 or 2048 with 256 CPU.")
    .required(),
    field(Sizing, "sizing.min_tasks", "min_tasks", "Minimum tasks", Input(Number { min: 0, max: 20 }), |f| {
        &f.min_tasks
    })
    .hint("Always running, 0 to 20; 0 pauses the agent.")
    .required(),
    field(Sizing, "sizing.max_tasks", "max_tasks", "Maximum tasks", Input(Number { min: 0, max: 20 }), |f| {
        &f.max_tasks
    })
    .hint("Autoscaling adds tasks up to this; blank: twice the minimum. Equal to the minimum: no scaling."),
    field(
        Sizing,
        "sizing.calls_per_task",
        "calls_per_task",
        "Calls per task",
        Input(Number { min: 1, max: 1_000 }),
        |f| &f.calls_per_task,
    )
    .hint("Concurrent calls one task takes; more are answered busy.")
    .required(),
    field(
        Sizing,
        "sizing.target_calls_per_task",
        "target_calls_per_task",
        "Scale at calls per task",
        Input(Number { min: 1, max: 1_000 }),
        |f| &f.target_calls_per_task,
    )
    .hint("Autoscaling holds live calls per task near this; blank: 70 % of calls per task."),
    field(
        Sizing,
        "sizing.cpu_architecture",
        "cpu_architecture",
        "CPU architecture",
        Select(architecture_options),
        |f| &f.cpu_architecture,
    )
    .hint("ARM64 (Graviton) costs about 20 % less.")
    .required(),
];

/// The field `path` names, or the list it is an item of (`knowledge_base[2].title`
/// → `knowledge_base`).
fn base(path: &str) -> &str {
    path.split('[').next().unwrap_or(path)
}

/// Where a field comes in the form, to list errors in the order the inputs appear.
pub fn position(path: &str) -> usize {
    FIELDS.iter().position(|f| f.path == base(path)).unwrap_or(FIELDS.len()) * 1000 + list_index(path)
}

/// `3` for `knowledge_base[3].title`; 0 for fields that are not list items.
fn list_index(path: &str) -> usize {
    path.split_once('[').and_then(|(_, rest)| rest.split(']').next()).and_then(|i| i.parse().ok()).unwrap_or(0)
}

/// A field's human name, for the error summary: its label, or the list item's
/// (`Document 3 title`, `Rule 2`).
pub fn label(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("knowledge_base[") {
        if let Some((i, field)) = rest.split_once("].") {
            if let Ok(i) = i.parse::<usize>() {
                return format!("Document {} {field}", i + 1);
            }
        }
    }
    if let Some(rest) = path.strip_prefix("guardrails.custom_rules[") {
        if let Some(i) = rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()) {
            return format!("Rule {}", i + 1);
        }
    }
    match FIELDS.iter().find(|f| f.path == path) {
        Some(f) => f.label.to_owned(),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_draft_field_has_one_entry_and_paths_and_names_are_unique() {
        let mut paths: Vec<&str> = FIELDS.iter().map(|f| f.path).collect();
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        paths.sort_unstable();
        names.sort_unstable();
        let before = (paths.len(), names.len());
        paths.dedup();
        names.dedup();
        assert_eq!((paths.len(), names.len()), before, "a path or name is listed twice");
        // Every path the API validates has its field (and so a label and a place).
        let mut draft = agent_spec::AgentDraft::default();
        draft.voice.temperature = Some(5.0);
        draft.voice.turn_detection = Some("x".into());
        draft.voice.eagerness = Some("x".into());
        draft.voice.endpointing_sensitivity = Some("x".into());
        draft.sizing.cpu = 3;
        let errors = draft.validate(None).unwrap_err();
        for e in &errors.0 {
            assert!(FIELDS.iter().any(|f| f.path == base(&e.field)), "no form field for {}", e.field);
        }
    }

    #[test]
    fn errors_are_placed_and_labelled_by_the_table() {
        assert!(position("name") < position("voice.temperature"));
        assert!(position("knowledge_base[1].title") < position("knowledge_base[2].text"));
        assert!(position("knowledge_base[9].text") < position("guardrails.custom_rules[0]"));
        assert_eq!(label("knowledge_base[0].title"), "Document 1 title");
        assert_eq!(label("guardrails.custom_rules[4]"), "Rule 5");
        assert_eq!(label("voice.endpointing_sensitivity"), "Endpointing sensitivity");
        assert_eq!(label("sizing.cpu_architecture"), "CPU architecture");
    }
}
