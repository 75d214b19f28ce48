//! [`AgentDraft`]: an agent configuration as a person or program typed it — the body
//! of `POST /v1/agents` and `PUT /v1/agents/{id}`, a dashboard form, or the runtime's
//! environment before parsing. [`AgentDraft::validate`] turns it into a trusted
//! [`AgentConfig`] plus [`AgentSecrets`], or lists every problem at once.
//!
//! Every field has a default, so a missing field is reported by validation together
//! with all other problems ("is required"), not by the JSON parser one at a time.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::{
    AgentConfig, CpuArchitecture, Eagerness, EndpointingSensitivity, Guardrails, Integrations, KnowledgeDocument,
    Sizing, SpeechProvider, Telephony, TurnDetection, VoiceConfig, fargate_memory_for,
};
use crate::env::{ENV_BUDGET_BYTES, EnvironmentSize};
use crate::secrets::{AgentSecrets, SecretPatch};
use crate::validation::ValidationErrors;
use crate::values::{
    AwsRegion, E164, HttpsUrl, InvalidValue, LanguageTag, ModelId, SipUri, Temperature, TwilioAccountSid, VoiceId,
    check_text, max_len,
};

/// Limits on free text and lists. Sizes are in characters.
pub mod limits {
    pub const NAME_MAX: usize = 100;
    pub const DESCRIPTION_MAX: usize = 1_000;
    pub const SYSTEM_PROMPT_MAX: usize = 16_000;
    pub const GREETING_MAX: usize = 500;
    pub const VOICEMAIL_MESSAGE_MAX: usize = 500;
    pub const KNOWLEDGE_DOCUMENTS_MAX: usize = 100;
    pub const KNOWLEDGE_TITLE_MAX: usize = 200;
    pub const KNOWLEDGE_TEXT_MAX: usize = 30_000;
    pub const CUSTOM_RULES_MAX: usize = 50;
    pub const CUSTOM_RULE_MAX: usize = 1_000;
    pub const MAX_CONVERSATION_TURNS: std::ops::RangeInclusive<u32> = 1..=1_000;
    /// Twilio ends any call after 4 hours.
    /// At most what a deploy can honour: a task being replaced keeps its calls for the
    /// target group's deregistration delay, which ALB caps at 3,600 s.
    pub const MAX_SESSION_DURATION_SECS: std::ops::RangeInclusive<u32> = 30..=3_600;
    /// An OpenAI Realtime session lasts at most 60 minutes; a call on it ends a
    /// minute before, so the model can still say goodbye.
    pub const OPENAI_MAX_SESSION_SECS: u32 = 3_540;
    pub const MAX_INAPPROPRIATE_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=20;
    pub const IDLE_PROMPT_AFTER_SECS: std::ops::RangeInclusive<u32> = 3..=300;
    /// Tasks per agent: a service's minimum and maximum.
    pub const MIN_TASKS: std::ops::RangeInclusive<u32> = 0..=20;
    pub const MAX_TASKS: std::ops::RangeInclusive<u32> = 0..=20;
    /// Concurrent calls per task (the runtime measured about 1,000 per vCPU on the
    /// local pipeline; cloud providers cost it less).
    pub const CALLS_PER_TASK: std::ops::RangeInclusive<u32> = 1..=1_000;
    pub const SIP_URI_MAX: usize = 255;
    pub const WEBHOOK_URL_MAX: usize = 2_048;
}

pub const DEFAULT_GREETING: &str = "Hello! Thanks for calling. How can I help you today?";
pub const DEFAULT_VOICEMAIL_MESSAGE: &str =
    "Hello, this is an automated call. Sorry we missed you; we will try again later. Goodbye.";
pub const DEFAULT_LANGUAGE: &str = "en-US";
pub const DEFAULT_AWS_REGION: &str = "us-east-1";

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceDraft {
    pub provider: SpeechProvider,
    /// Defaults to the provider's default model.
    pub model: Option<String>,
    /// Defaults to the provider's default voice.
    pub voice_id: Option<String>,
    /// openai-realtime only: `server_vad` (the default) or `semantic_vad`.
    pub turn_detection: Option<String>,
    /// openai-realtime with `semantic_vad` only: `low`, `medium`, `high` or `auto`
    /// (the default).
    pub eagerness: Option<String>,
    /// nova-sonic with Nova 2 Sonic only: `high`, `medium` (the default) or `low`.
    pub endpointing_sensitivity: Option<String>,
    /// nova-sonic only: 0 to 1, at most two decimals (default 0.7).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub temperature: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeDocumentDraft {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailsDraft {
    pub custom_rules: Vec<String>,
    #[schema(default = 50, minimum = 1, maximum = 1000)]
    pub max_conversation_turns: u32,
    #[schema(default = 1800, minimum = 30, maximum = 3600)]
    pub max_session_duration_secs: u32,
    #[schema(default = 3, minimum = 1, maximum = 20)]
    pub max_inappropriate_attempts: u32,
}

impl Default for GuardrailsDraft {
    fn default() -> Self {
        Self {
            custom_rules: Vec::new(),
            max_conversation_turns: 50,
            max_session_duration_secs: 1_800,
            max_inappropriate_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelephonyDraft {
    /// Required. E.164.
    pub call_phone_number: String,
    pub transfer_phone_number: Option<String>,
    pub summary_phone_number: Option<String>,
    /// Required. `AC` + 32 hex digits.
    pub twilio_account_sid: String,
    pub sip_endpoint: Option<String>,
    /// Point `call_phone_number` at the agent on deploy (and give it back on delete).
    #[schema(default = true)]
    pub configure_number: bool,
}

impl Default for TelephonyDraft {
    fn default() -> Self {
        Self {
            call_phone_number: String::new(),
            transfer_phone_number: None,
            summary_phone_number: None,
            twilio_account_sid: String::new(),
            sip_endpoint: None,
            configure_number: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsDraft {
    pub webhook_endpoint: Option<String>,
    pub transcript_webhook_url: Option<String>,
    pub pickup_webhook_url: Option<String>,
    pub make_endpoint: Option<String>,
    #[schema(default = "us-east-1")]
    pub aws_region: String,
}

impl Default for IntegrationsDraft {
    fn default() -> Self {
        Self {
            webhook_endpoint: None,
            transcript_webhook_url: None,
            pickup_webhook_url: None,
            make_endpoint: None,
            aws_region: DEFAULT_AWS_REGION.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SizingDraft {
    #[schema(default = 256)]
    pub cpu: u32,
    #[schema(default = 512)]
    pub memory_mib: u32,
    /// Tasks that always run; 0 pauses the agent.
    #[schema(default = 1)]
    pub min_tasks: u32,
    /// Deprecated: the name of a fixed task count before autoscaling. Sent, it sets
    /// `min_tasks` and, unless `max_tasks` is sent too, `max_tasks` to the same
    /// count: the agent keeps the fixed size it asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(deprecated)]
    pub desired_count: Option<u32>,
    /// Most tasks autoscaling may run; omitted: twice `min_tasks` (at least 2, at
    /// most 20). Equal to `min_tasks`, the agent does not scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<u32>,
    /// Concurrent calls one task takes; more are answered busy.
    #[schema(default = 50)]
    pub calls_per_task: u32,
    /// Live calls per task autoscaling holds the agent at; omitted: 70 % of
    /// `calls_per_task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_calls_per_task: Option<u32>,
    /// `x86_64` (the default) or `arm64`.
    pub cpu_architecture: CpuArchitecture,
}

impl Default for SizingDraft {
    fn default() -> Self {
        Self {
            cpu: 256,
            memory_mib: 512,
            min_tasks: 1,
            desired_count: None,
            max_tasks: None,
            calls_per_task: Sizing::DEFAULT_CALLS_PER_TASK,
            target_calls_per_task: None,
            cpu_architecture: CpuArchitecture::default(),
        }
    }
}

/// Secrets in a request. Omitted: keep what is stored; `null`: remove; string: set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsDraft {
    /// Required on create: the Twilio auth token (32 characters).
    #[serde(skip_serializing_if = "SecretPatch::is_keep")]
    pub twilio_auth_token: SecretPatch,
    /// Required when `voice.provider` is `openai-realtime`.
    #[serde(skip_serializing_if = "SecretPatch::is_keep")]
    pub openai_api_key: SecretPatch,
    /// Signs outgoing webhooks; at least 32 characters.
    #[serde(skip_serializing_if = "SecretPatch::is_keep")]
    pub webhook_signing_secret: SecretPatch,
}

impl SecretsDraft {
    /// Every stored secret as `Set`, unset optional ones as `Clear`: a complete
    /// description of the secrets (what the deployer writes to the agent's secret).
    pub fn from_secrets(secrets: &AgentSecrets) -> Self {
        let patch = |v: &Option<SecretString>| match v {
            Some(v) => SecretPatch::Set(v.clone()),
            None => SecretPatch::Clear,
        };
        Self {
            twilio_auth_token: SecretPatch::Set(secrets.twilio_auth_token.clone()),
            openai_api_key: patch(&secrets.openai_api_key),
            webhook_signing_secret: patch(&secrets.webhook_signing_secret),
        }
    }
}

/// The body of `POST /v1/agents` and `PUT /v1/agents/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AgentDraft {
    /// Required.
    pub name: String,
    pub description: String,
    /// Required: who the agent is and how it behaves.
    pub system_prompt: String,
    #[schema(default = "Hello! Thanks for calling. How can I help you today?")]
    pub greeting: String,
    /// Left on an answering machine by an outbound call, after the beep.
    #[schema(default = "Hello, this is an automated call. Sorry we missed you; we will try again later. Goodbye.")]
    pub voicemail_message: String,
    #[schema(default = "en-US")]
    pub language: String,
    #[serde(deserialize_with = "object")]
    pub voice: VoiceDraft,
    #[serde(deserialize_with = "objects")]
    pub knowledge_base: Vec<KnowledgeDocumentDraft>,
    #[serde(deserialize_with = "object")]
    pub guardrails: GuardrailsDraft,
    #[schema(default = 10, minimum = 3, maximum = 300)]
    pub idle_prompt_after_secs: u32,
    #[schema(default = false)]
    pub enable_recording: bool,
    #[schema(default = true)]
    pub enable_transcription: bool,
    #[serde(deserialize_with = "object")]
    pub telephony: TelephonyDraft,
    #[serde(deserialize_with = "object")]
    pub integrations: IntegrationsDraft,
    #[serde(deserialize_with = "object")]
    pub sizing: SizingDraft,
    #[serde(deserialize_with = "object")]
    pub secrets: SecretsDraft,
}

/// A part of the draft, read from a JSON object only. (serde would also read a
/// struct from an array, by position: `"integrations": [null, null]`, which the
/// document does not allow.)
fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(StructOnly(d))
}

/// [`object`] for each item of a list.
fn objects<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct Item<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            object(d).map(Item)
        }
    }
    Ok(Vec::<Item<T>>::deserialize(d)?.into_iter().map(|Item(t)| t).collect())
}

/// A deserializer that reads a struct as a map only.
struct StructOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for StructOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

impl Default for AgentDraft {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            system_prompt: String::new(),
            greeting: DEFAULT_GREETING.to_owned(),
            voicemail_message: DEFAULT_VOICEMAIL_MESSAGE.to_owned(),
            language: DEFAULT_LANGUAGE.to_owned(),
            voice: VoiceDraft::default(),
            knowledge_base: Vec::new(),
            guardrails: GuardrailsDraft::default(),
            idle_prompt_after_secs: 10,
            enable_recording: false,
            enable_transcription: true,
            telephony: TelephonyDraft::default(),
            integrations: IntegrationsDraft::default(),
            sizing: SizingDraft::default(),
            secrets: SecretsDraft::default(),
        }
    }
}

/// The provider's own settings, validated: each one the provider (and model) has
/// is filled with its default when not given; one it does not have is refused.
struct Tuning {
    turn_detection: Option<TurnDetection>,
    eagerness: Option<Eagerness>,
    endpointing_sensitivity: Option<EndpointingSensitivity>,
    temperature: Option<Temperature>,
}

impl VoiceDraft {
    /// `model` is the validated model (`None` when it was refused).
    fn tuning(&self, e: &mut ValidationErrors, model: Option<&str>) -> Tuning {
        let provider = self.provider;
        let given = |raw: &Option<String>| raw.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let (openai, nova) = (provider == SpeechProvider::OpenaiRealtime, provider == SpeechProvider::NovaSonic);
        let elsewhere = |e: &mut ValidationErrors, field: &str, owner: &str| {
            e.push(field, format!("applies to {owner} only, not to {}", provider.as_str()));
        };

        let turn_detection = match given(&self.turn_detection) {
            Some(_) if !openai => {
                elsewhere(e, "voice.turn_detection", "openai-realtime");
                None
            }
            Some(raw) => TurnDetection::parse(&raw).or_else(|| {
                e.push("voice.turn_detection", format!("must be {}", TurnDetection::choices()));
                None
            }),
            None => openai.then(TurnDetection::default),
        };
        let semantic = turn_detection == Some(TurnDetection::SemanticVad);
        let eagerness = match given(&self.eagerness) {
            Some(_) if !openai => {
                elsewhere(e, "voice.eagerness", "openai-realtime");
                None
            }
            Some(_) if !semantic => {
                e.push("voice.eagerness", "applies only when voice.turn_detection is semantic_vad");
                None
            }
            Some(raw) => Eagerness::parse(&raw).or_else(|| {
                e.push("voice.eagerness", format!("must be {}", Eagerness::choices()));
                None
            }),
            None => semantic.then(Eagerness::default),
        };
        let endpointing = model.is_some_and(|m| provider.has_endpointing(m));
        let endpointing_sensitivity = match given(&self.endpointing_sensitivity) {
            Some(_) if !nova => {
                elsewhere(e, "voice.endpointing_sensitivity", "nova-sonic");
                None
            }
            Some(_) if model.is_some() && !endpointing => {
                e.push(
                    "voice.endpointing_sensitivity",
                    "needs the model amazon.nova-2-sonic-v1:0 (Nova Sonic v1 has no endpointing setting)",
                );
                None
            }
            Some(raw) => EndpointingSensitivity::parse(&raw.to_ascii_lowercase()).or_else(|| {
                e.push("voice.endpointing_sensitivity", format!("must be {}", EndpointingSensitivity::choices()));
                None
            }),
            None => endpointing.then(EndpointingSensitivity::default),
        };
        let temperature = match self.temperature {
            Some(_) if !nova => {
                let why = if openai { " (OpenAI's Realtime API takes no temperature)" } else { "" };
                e.push("voice.temperature", format!("applies to nova-sonic only, not to {}{why}", provider.as_str()));
                None
            }
            Some(t) => e.check("voice.temperature", Temperature::new(t)),
            None => nova.then_some(Temperature::DEFAULT),
        };
        Tuning { turn_detection, eagerness, endpointing_sensitivity, temperature }
    }
}

/// Parses an optional value: absent or blank means "not set".
/// Which hosts a webhook URL may name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Webhooks {
    AnyHost,
    PublicHostsOnly,
}

fn optional<T>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &Option<String>,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Option<Option<T>> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(v) => errors.check(field, parse(v)).map(Some),
    }
}

/// Parses a required value: blank means "is required".
fn required<T>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &str,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Option<T> {
    if raw.trim().is_empty() {
        errors.push(field, "is required");
        return None;
    }
    errors.check(field, parse(raw))
}

/// Free text is trimmed, then checked; its limit counts every character sent (as a
/// JSON Schema `maxLength` does).
fn text(errors: &mut ValidationErrors, field: &str, raw: &str, required: bool, max: usize, multiline: bool) -> String {
    let trimmed = raw.trim();
    errors.check(field, check_text(trimmed, required, max, multiline).and_then(|()| max_len(raw, max)));
    trimmed.to_owned()
}

/// [`optional`] for a value with a length limit on what was sent.
fn optional_within<T>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &Option<String>,
    max: usize,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Option<Option<T>> {
    if let Err(too_long) = raw.as_deref().map_or(Ok(()), |raw| max_len(raw, max)) {
        errors.push(field, too_long.0);
        return None;
    }
    optional(errors, field, raw, parse)
}

/// A webhook URL as the API takes it (the pattern in the document): a host name,
/// never an address, and URL characters only. Checked when an agent is saved; the
/// runtime reads what was saved with [`HttpsUrl::parse`].
fn check_webhook_syntax(raw: &str) -> Result<(), InvalidValue> {
    static PATTERN: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        regex_lite::Regex::new(&format!("^(?:{})$", crate::openapi::webhook_url())).expect("the webhook URL pattern")
    });
    let raw = raw.trim();
    if PATTERN.is_match(raw) {
        return Ok(());
    }
    // Say why, most specific first.
    if let Ok(url) = url::Url::parse(raw) {
        if let Some(inward) = crate::net::inward_host(&url) {
            return Err(InvalidValue(inward));
        }
        if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
            return Err(InvalidValue::new("must name its host by a DNS name, not an address"));
        }
    }
    Err(InvalidValue::new(
        "must be https:// with a DNS host name, an optional port, and a path, query and fragment of URL characters \
         (percent-encode others)",
    ))
}

impl AgentDraft {
    /// A draft that reproduces `config` exactly (secrets: keep).
    pub fn from_config(config: &AgentConfig) -> Self {
        let opt = |v: &Option<_>| v.as_ref().map(|v: &E164| v.to_string());
        let url = |v: &Option<HttpsUrl>| v.as_ref().map(HttpsUrl::to_string);
        Self {
            name: config.name.clone(),
            description: config.description.clone(),
            system_prompt: config.system_prompt.clone(),
            greeting: config.greeting.clone(),
            voicemail_message: config.voicemail_message.clone(),
            language: config.language.to_string(),
            voice: VoiceDraft {
                provider: config.voice.provider,
                model: Some(config.voice.model.to_string()),
                voice_id: Some(config.voice.voice_id.to_string()),
                turn_detection: config.voice.turn_detection.map(|t| t.as_str().to_owned()),
                eagerness: config.voice.eagerness.map(|e| e.as_str().to_owned()),
                endpointing_sensitivity: config.voice.endpointing_sensitivity.map(|e| e.as_str().to_owned()),
                temperature: config.voice.temperature.map(Temperature::value),
            },
            knowledge_base: config
                .knowledge_base
                .iter()
                .map(|d| KnowledgeDocumentDraft { title: d.title.clone(), text: d.text.clone() })
                .collect(),
            guardrails: GuardrailsDraft {
                custom_rules: config.guardrails.custom_rules.clone(),
                max_conversation_turns: config.guardrails.max_conversation_turns,
                max_session_duration_secs: config.guardrails.max_session_duration_secs,
                max_inappropriate_attempts: config.guardrails.max_inappropriate_attempts,
            },
            idle_prompt_after_secs: config.idle_prompt_after_secs,
            enable_recording: config.enable_recording,
            enable_transcription: config.enable_transcription,
            telephony: TelephonyDraft {
                call_phone_number: config.telephony.call_phone_number.to_string(),
                transfer_phone_number: opt(&config.telephony.transfer_phone_number),
                summary_phone_number: opt(&config.telephony.summary_phone_number),
                twilio_account_sid: config.telephony.twilio_account_sid.to_string(),
                sip_endpoint: config.telephony.sip_endpoint.as_ref().map(SipUri::to_string),
                configure_number: config.telephony.configure_number,
            },
            integrations: IntegrationsDraft {
                webhook_endpoint: url(&config.integrations.webhook_endpoint),
                transcript_webhook_url: url(&config.integrations.transcript_webhook_url),
                pickup_webhook_url: url(&config.integrations.pickup_webhook_url),
                make_endpoint: url(&config.integrations.make_endpoint),
                aws_region: config.integrations.aws_region.to_string(),
            },
            sizing: SizingDraft {
                cpu: config.sizing.cpu,
                memory_mib: config.sizing.memory_mib,
                min_tasks: config.sizing.min_tasks,
                desired_count: None,
                max_tasks: Some(config.sizing.max_tasks),
                calls_per_task: config.sizing.calls_per_task,
                target_calls_per_task: Some(config.sizing.target_calls_per_task),
                cpu_architecture: config.sizing.cpu_architecture,
            },
            secrets: SecretsDraft::default(),
        }
    }

    /// Validates the whole draft. `existing` are the secrets stored for the agent
    /// being updated (`None` on create); omitted secrets keep those values.
    ///
    /// Returns every problem at once, in field order.
    pub fn validate(&self, existing: Option<&AgentSecrets>) -> Result<(AgentConfig, AgentSecrets), ValidationErrors> {
        self.validate_with(existing, Webhooks::AnyHost)
    }

    /// [`Self::validate`], and the rule for saving an agent: no webhook URL may name a
    /// host that is not on the public internet, written as an address (`10.0.0.5`,
    /// `[::ffff:127.0.0.1]`) or as `localhost` ([`crate::net::inward_host`]). The
    /// agent's runtime checks every name it resolves by the same rule.
    pub fn validate_to_save(
        &self,
        existing: Option<&AgentSecrets>,
    ) -> Result<(AgentConfig, AgentSecrets), ValidationErrors> {
        self.validate_with(existing, Webhooks::PublicHostsOnly)
    }

    fn validate_with(
        &self,
        existing: Option<&AgentSecrets>,
        webhooks: Webhooks,
    ) -> Result<(AgentConfig, AgentSecrets), ValidationErrors> {
        use limits::*;
        let mut e = ValidationErrors::default();

        let name = text(&mut e, "name", &self.name, true, NAME_MAX, false);
        let description = text(&mut e, "description", &self.description, false, DESCRIPTION_MAX, true);
        let system_prompt = text(&mut e, "system_prompt", &self.system_prompt, true, SYSTEM_PROMPT_MAX, true);
        let greeting = text(&mut e, "greeting", &self.greeting, true, GREETING_MAX, false);
        let voicemail_message =
            text(&mut e, "voicemail_message", &self.voicemail_message, true, VOICEMAIL_MESSAGE_MAX, false);
        let language = required(&mut e, "language", &self.language, LanguageTag::parse);

        let provider = self.voice.provider;
        let model = optional(&mut e, "voice.model", &self.voice.model, ModelId::parse)
            .map(|m| m.unwrap_or_else(|| ModelId::parse(provider.default_model()).expect("default model is valid")));
        let voice_id = optional(&mut e, "voice.voice_id", &self.voice.voice_id, VoiceId::parse)
            .map(|v| v.unwrap_or_else(|| VoiceId::parse(provider.default_voice()).expect("default voice is valid")));
        if let Some(m) = model.as_ref().filter(|m| !provider.accepts_model(m.as_str())) {
            e.push("voice.model", format!("{:?} is not a {} speech-to-speech model", m.as_str(), provider.as_str()));
        }
        if let (Some(v), Some(voices)) = (&voice_id, provider.voices()) {
            if !voices.contains(&v.as_str()) {
                e.push(
                    "voice.voice_id",
                    format!("must be one of the {} voices: {}", provider.as_str(), voices.join(", ")),
                );
            }
        }

        let tuning = self.voice.tuning(&mut e, model.as_ref().map(ModelId::as_str));

        if self.knowledge_base.len() > KNOWLEDGE_DOCUMENTS_MAX {
            e.push("knowledge_base", format!("must hold at most {KNOWLEDGE_DOCUMENTS_MAX} documents"));
        }
        let knowledge_base: Vec<KnowledgeDocument> = self
            .knowledge_base
            .iter()
            .enumerate()
            .map(|(i, d)| KnowledgeDocument {
                title: text(&mut e, &format!("knowledge_base[{i}].title"), &d.title, true, KNOWLEDGE_TITLE_MAX, false),
                text: text(&mut e, &format!("knowledge_base[{i}].text"), &d.text, true, KNOWLEDGE_TEXT_MAX, true),
            })
            .collect();

        let g = &self.guardrails;
        if g.custom_rules.len() > CUSTOM_RULES_MAX {
            e.push("guardrails.custom_rules", format!("must hold at most {CUSTOM_RULES_MAX} rules"));
        }
        let custom_rules: Vec<String> = g
            .custom_rules
            .iter()
            .enumerate()
            .map(|(i, r)| text(&mut e, &format!("guardrails.custom_rules[{i}]"), r, true, CUSTOM_RULE_MAX, false))
            .collect();
        e.check_range("guardrails.max_conversation_turns", g.max_conversation_turns, MAX_CONVERSATION_TURNS, "turns");
        if !MAX_SESSION_DURATION_SECS.contains(&g.max_session_duration_secs) {
            e.push(
                "guardrails.max_session_duration_secs",
                format!(
                    "must be between {} and {} seconds: a deploy replaces the agent's tasks, and the load balancer \
                     keeps a replaced task's calls for at most 3600 s (its deregistration delay), so a longer call \
                     would be cut",
                    MAX_SESSION_DURATION_SECS.start(),
                    MAX_SESSION_DURATION_SECS.end()
                ),
            );
        }
        if provider == SpeechProvider::OpenaiRealtime && g.max_session_duration_secs > OPENAI_MAX_SESSION_SECS {
            e.push(
                "guardrails.max_session_duration_secs",
                format!(
                    "must be at most {OPENAI_MAX_SESSION_SECS} seconds with openai-realtime: OpenAI ends a session \
                     after 60 minutes, and the agent needs the last minute to say goodbye"
                ),
            );
        }
        e.check_range(
            "guardrails.max_inappropriate_attempts",
            g.max_inappropriate_attempts,
            MAX_INAPPROPRIATE_ATTEMPTS,
            "attempts",
        );
        // (An idle prompt due after the session's end never plays: harmless, so allowed.)
        e.check_range("idle_prompt_after_secs", self.idle_prompt_after_secs, IDLE_PROMPT_AFTER_SECS, "seconds");

        let t = &self.telephony;
        let call_phone_number = required(&mut e, "telephony.call_phone_number", &t.call_phone_number, E164::parse);
        let transfer_phone_number =
            optional(&mut e, "telephony.transfer_phone_number", &t.transfer_phone_number, E164::parse);
        if let (Some(call), Some(Some(transfer))) = (&call_phone_number, &transfer_phone_number) {
            if call == transfer {
                e.push(
                    "telephony.transfer_phone_number",
                    "must differ from telephony.call_phone_number (a transfer would call the agent itself)",
                );
            }
        }
        let summary_phone_number =
            optional(&mut e, "telephony.summary_phone_number", &t.summary_phone_number, E164::parse);
        let twilio_account_sid =
            required(&mut e, "telephony.twilio_account_sid", &t.twilio_account_sid, TwilioAccountSid::parse);
        let sip_endpoint =
            optional_within(&mut e, "telephony.sip_endpoint", &t.sip_endpoint, SIP_URI_MAX, SipUri::parse);

        let i = &self.integrations;
        let url_parse: fn(&str) -> Result<HttpsUrl, InvalidValue> = match webhooks {
            Webhooks::AnyHost => HttpsUrl::parse,
            Webhooks::PublicHostsOnly => |raw| check_webhook_syntax(raw).and_then(|()| HttpsUrl::parse(raw)),
        };
        let url = |e: &mut ValidationErrors, field: &str, raw: &Option<String>| {
            optional_within(e, field, raw, WEBHOOK_URL_MAX, url_parse)
        };
        let webhook_endpoint = url(&mut e, "integrations.webhook_endpoint", &i.webhook_endpoint);
        let transcript_webhook_url = url(&mut e, "integrations.transcript_webhook_url", &i.transcript_webhook_url);
        let pickup_webhook_url = url(&mut e, "integrations.pickup_webhook_url", &i.pickup_webhook_url);
        let make_endpoint = url(&mut e, "integrations.make_endpoint", &i.make_endpoint);
        if webhooks == Webhooks::PublicHostsOnly {
            let urls = [
                ("integrations.webhook_endpoint", &webhook_endpoint),
                ("integrations.transcript_webhook_url", &transcript_webhook_url),
                ("integrations.pickup_webhook_url", &pickup_webhook_url),
                ("integrations.make_endpoint", &make_endpoint),
            ];
            for (field, url) in urls {
                if let Some(reason) =
                    url.as_ref().and_then(Option::as_ref).and_then(|u| crate::net::inward_host(&u.url()))
                {
                    e.push(field, reason);
                }
            }
        }
        let aws_region = required(&mut e, "integrations.aws_region", &i.aws_region, AwsRegion::parse);

        let s = &self.sizing;
        match fargate_memory_for(s.cpu) {
            None => e.push("sizing.cpu", "must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384"),
            Some(memory) if !memory.contains(&s.memory_mib) => e.push(
                "sizing.memory_mib",
                format!(
                    "is not a Fargate memory size for cpu {}: use one of {}",
                    s.cpu,
                    memory.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                ),
            ),
            Some(_) => {}
        }
        let min_tasks = match s.desired_count {
            Some(count) if s.min_tasks != SizingDraft::default().min_tasks && s.min_tasks != count => {
                e.push("sizing.desired_count", "is the old name of min_tasks: send one of them, not both");
                s.min_tasks
            }
            Some(count) => {
                e.check_range("sizing.desired_count", count, MIN_TASKS, "tasks");
                count
            }
            None => {
                e.check_range("sizing.min_tasks", s.min_tasks, MIN_TASKS, "tasks");
                s.min_tasks
            }
        };
        // An old client's fixed count stays fixed; otherwise the default leaves room to scale.
        let max_tasks = s.max_tasks.unwrap_or_else(|| match s.desired_count {
            Some(_) => min_tasks,
            None => Sizing::default_max_tasks(min_tasks),
        });
        e.check_range("sizing.max_tasks", max_tasks, MAX_TASKS, "tasks");
        if max_tasks < min_tasks && MIN_TASKS.contains(&min_tasks) {
            e.push("sizing.max_tasks", format!("must be at least min_tasks ({min_tasks})"));
        }
        e.check_range("sizing.calls_per_task", s.calls_per_task, CALLS_PER_TASK, "calls");
        let target_calls_per_task = s.target_calls_per_task.unwrap_or_else(|| Sizing::default_target(s.calls_per_task));
        let scales = Sizing::scales_between(min_tasks, max_tasks);
        if CALLS_PER_TASK.contains(&s.calls_per_task) {
            if !(1..=s.calls_per_task).contains(&target_calls_per_task) {
                e.push(
                    "sizing.target_calls_per_task",
                    format!("must be between 1 and calls_per_task ({}) calls", s.calls_per_task),
                );
            } else if scales && target_calls_per_task >= s.calls_per_task {
                e.push(
                    "sizing.target_calls_per_task",
                    format!(
                        "must be below calls_per_task ({}) for an agent that scales: a task answers busy past its \
                         limit, so live calls per task would never pass the target and no task would be added",
                        s.calls_per_task
                    ),
                );
            }
        }

        let secrets = validate_secrets(&mut e, &self.secrets, existing, provider);

        // Every field above has been checked; build the config only if all passed.
        let (
            Some(language),
            Some(model),
            Some(voice_id),
            Some(call_phone_number),
            Some(transfer_phone_number),
            Some(summary_phone_number),
            Some(twilio_account_sid),
            Some(sip_endpoint),
            Some(webhook_endpoint),
            Some(transcript_webhook_url),
            Some(pickup_webhook_url),
            Some(make_endpoint),
            Some(aws_region),
            Some(secrets),
            true,
        ) = (
            language,
            model,
            voice_id,
            call_phone_number,
            transfer_phone_number,
            summary_phone_number,
            twilio_account_sid,
            sip_endpoint,
            webhook_endpoint,
            transcript_webhook_url,
            pickup_webhook_url,
            make_endpoint,
            aws_region,
            secrets,
            e.is_empty(),
        )
        else {
            return Err(e);
        };

        // Webhook URLs that are credentials go into the secrets; the config keeps them
        // redacted. The redacted form of a stored one sent back means "keep it".
        let mut secrets = secrets;
        let mut seal = |field: &str, url: Option<HttpsUrl>| -> Option<HttpsUrl> {
            let url = url?;
            if let Some(real) = existing.and_then(|s| s.webhook_urls.get(field)) {
                if crate::net::redact_url(real.expose_secret()) == url.as_str() {
                    secrets.webhook_urls.insert(field.to_owned(), real.clone());
                    return Some(url);
                }
            }
            if !crate::net::is_secret_url(&url.url()) {
                return Some(url);
            }
            secrets.webhook_urls.insert(field.to_owned(), SecretString::from(url.as_str().to_owned()));
            Some(HttpsUrl::parse(&crate::net::redact_url(url.as_str())).expect("a redacted https URL is one"))
        };
        let webhook_endpoint = seal("integrations.webhook_endpoint", webhook_endpoint);
        let transcript_webhook_url = seal("integrations.transcript_webhook_url", transcript_webhook_url);
        let pickup_webhook_url = seal("integrations.pickup_webhook_url", pickup_webhook_url);
        let make_endpoint = seal("integrations.make_endpoint", make_endpoint);

        let config = AgentConfig {
            name,
            description,
            system_prompt,
            greeting,
            voicemail_message,
            language,
            voice: VoiceConfig {
                provider,
                model,
                voice_id,
                turn_detection: tuning.turn_detection,
                eagerness: tuning.eagerness,
                endpointing_sensitivity: tuning.endpointing_sensitivity,
                temperature: tuning.temperature,
            },
            knowledge_base,
            guardrails: Guardrails {
                custom_rules,
                max_conversation_turns: g.max_conversation_turns,
                max_session_duration_secs: g.max_session_duration_secs,
                max_inappropriate_attempts: g.max_inappropriate_attempts,
            },
            idle_prompt_after_secs: self.idle_prompt_after_secs,
            enable_recording: self.enable_recording,
            enable_transcription: self.enable_transcription,
            telephony: Telephony {
                call_phone_number,
                transfer_phone_number,
                summary_phone_number,
                twilio_account_sid,
                sip_endpoint,
                configure_number: t.configure_number,
            },
            integrations: Integrations {
                webhook_endpoint,
                transcript_webhook_url,
                pickup_webhook_url,
                make_endpoint,
                aws_region,
            },
            sizing: Sizing {
                cpu: s.cpu,
                memory_mib: s.memory_mib,
                min_tasks,
                max_tasks,
                calls_per_task: s.calls_per_task,
                target_calls_per_task,
                cpu_architecture: s.cpu_architecture,
            },
        };

        check_environment_budget(&mut e, &config);
        if e.is_empty() { Ok((config, secrets)) } else { Err(e) }
    }
}

/// The encoded container environment must stay well inside the 64 KiB ECS
/// task-definition limit. Over budget, the error names the largest free-text field,
/// which is what the user has to shorten.
fn check_environment_budget(e: &mut ValidationErrors, config: &AgentConfig) {
    let size = EnvironmentSize::of(config);
    if size.total <= ENV_BUDGET_BYTES {
        return;
    }
    let (field, bytes) = size.largest_free_text();
    e.push(
        field,
        format!(
            "makes the agent's configuration too large to deploy: it encodes to {} bytes and the limit is {ENV_BUDGET_BYTES} \
             (ECS allows 64 KiB per task definition); this field takes {bytes} bytes, shorten it by at least {} bytes",
            size.total,
            size.total - ENV_BUDGET_BYTES
        ),
    );
}

fn validate_secrets(
    e: &mut ValidationErrors,
    draft: &SecretsDraft,
    existing: Option<&AgentSecrets>,
    provider: SpeechProvider,
) -> Option<AgentSecrets> {
    let twilio_auth_token = match &draft.twilio_auth_token {
        SecretPatch::Set(v) => e.check("secrets.twilio_auth_token", check_twilio_auth_token(v)).map(|()| v.clone()),
        SecretPatch::Keep => match existing {
            Some(s) => Some(s.twilio_auth_token.clone()),
            None => {
                e.push("secrets.twilio_auth_token", "is required");
                None
            }
        },
        SecretPatch::Clear => {
            e.push("secrets.twilio_auth_token", "is required and cannot be removed");
            None
        }
    };

    let openai_api_key = patch_optional(
        e,
        "secrets.openai_api_key",
        &draft.openai_api_key,
        existing.and_then(|s| s.openai_api_key.as_ref()),
        check_api_key,
    );
    if provider == SpeechProvider::OpenaiRealtime && matches!(openai_api_key, Some(None)) {
        e.push("secrets.openai_api_key", "is required when voice.provider is openai-realtime");
    }
    let webhook_signing_secret = patch_optional(
        e,
        "secrets.webhook_signing_secret",
        &draft.webhook_signing_secret,
        existing.and_then(|s| s.webhook_signing_secret.as_ref()),
        check_signing_secret,
    );

    Some(AgentSecrets {
        twilio_auth_token: twilio_auth_token?,
        openai_api_key: openai_api_key?,
        webhook_signing_secret: webhook_signing_secret?,
        webhook_urls: Default::default(),
    })
}

fn patch_optional(
    e: &mut ValidationErrors,
    field: &str,
    patch: &SecretPatch,
    existing: Option<&SecretString>,
    check: fn(&str) -> Result<(), InvalidValue>,
) -> Option<Option<SecretString>> {
    match patch {
        SecretPatch::Set(v) => e.check(field, check(v.expose_secret())).map(|()| Some(v.clone())),
        SecretPatch::Keep => Some(existing.cloned()),
        SecretPatch::Clear => Some(None),
    }
}

fn check_twilio_auth_token(v: &SecretString) -> Result<(), InvalidValue> {
    let v = v.expose_secret();
    if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(InvalidValue::new("must be the 32-character auth token from the Twilio console"));
    }
    Ok(())
}

fn check_api_key(v: &str) -> Result<(), InvalidValue> {
    if !(20..=512).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidValue::new("must be 20 to 512 printable characters without spaces"));
    }
    Ok(())
}

fn check_signing_secret(v: &str) -> Result<(), InvalidValue> {
    if !(32..=256).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidValue::new("must be 32 to 256 printable characters without spaces"));
    }
    Ok(())
}
