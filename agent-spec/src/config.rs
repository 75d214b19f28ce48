//! The validated agent configuration. Values of these types only come out of
//! [`AgentDraft::validate`](crate::AgentDraft::validate) (or deserialization, which
//! re-validates every value type), so code that holds an [`AgentConfig`] can trust it.
//!
//! The JSON shape of [`AgentConfig`] is the shape of the API's create/update body
//! without `secrets`, so a client can read an agent, change a field and send it back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::values::{AwsRegion, E164, HttpsUrl, LanguageTag, ModelId, SipUri, Temperature, TwilioAccountSid, VoiceId};

/// Declares a setting with a fixed set of values: `ALL`, `as_str`, `parse`, and
/// serde as those names.
macro_rules! keyword {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        // Written out: a derived schema would name the variants as Rust does, not as
        // they are sent (`nova-sonic`, not `NovaSonic`).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &[$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw.trim())
            }

            /// The accepted names, for error messages: `a, b or c`.
            pub fn choices() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => names.concat(),
                }
            }
        }
    };
}

keyword!(
    /// Which speech pipeline answers the agent's calls.
    SpeechProvider {
        /// Amazon Nova Sonic (speech-to-speech on Bedrock).
        #[default]
        NovaSonic = "nova-sonic",
        /// OpenAI Realtime (needs `secrets.openai_api_key`).
        OpenaiRealtime = "openai-realtime",
        /// The offline pipeline: local voice activity detection, recognition and synthesis.
        Local = "local",
    }
);

impl SpeechProvider {
    /// The model used when the config names none.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::NovaSonic => "amazon.nova-2-sonic-v1:0",
            Self::OpenaiRealtime => "gpt-realtime",
            Self::Local => "local-en-us",
        }
    }

    /// The voices the provider speaks with (`None`: any espeak-ng voice).
    pub fn voices(self) -> Option<&'static [&'static str]> {
        match self {
            // Nova 2 Sonic's voices (Nova Sonic's are a subset but for `greta`).
            Self::NovaSonic => Some(&[
                "tiffany", "matthew", "amy", "olivia", "lupe", "carlos", "ambre", "florian", "lennart", "beatrice",
                "lorenzo", "tina", "carolina", "leo", "kiara", "arjun", "greta",
            ]),
            Self::OpenaiRealtime => {
                Some(&["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"])
            }
            Self::Local => None,
        }
    }

    /// Whether `model` is one of the provider's speech-to-speech models.
    pub fn accepts_model(self, model: &str) -> bool {
        match self {
            Self::NovaSonic => matches!(model, "amazon.nova-2-sonic-v1:0" | "amazon.nova-sonic-v1:0"),
            Self::OpenaiRealtime => ["gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"]
                .iter()
                .any(|family| model == *family || model.strip_prefix(family).is_some_and(|rest| rest.starts_with('-'))),
            Self::Local => model == "local-en-us",
        }
    }

    /// The voice used when the config names none.
    pub fn default_voice(self) -> &'static str {
        match self {
            Self::NovaSonic => "tiffany",
            Self::OpenaiRealtime => "alloy",
            Self::Local => "en-us",
        }
    }

    /// Whether the model takes an endpointing sensitivity (Nova 2 Sonic; Nova Sonic
    /// v1 has none).
    pub fn has_endpointing(self, model: &str) -> bool {
        self == Self::NovaSonic && model == "amazon.nova-2-sonic-v1:0"
    }
}

keyword!(
    /// How OpenAI Realtime decides that the caller has finished a turn.
    TurnDetection {
        /// Silence after speech (voice activity detection).
        #[default]
        ServerVad = "server_vad",
        /// A model that judges whether the caller has finished what they meant to say.
        SemanticVad = "semantic_vad",
    }
);

keyword!(
    /// How soon OpenAI's `semantic_vad` answers: `low` waits up to 8 s for the caller
    /// to go on, `medium` 4 s, `high` 2 s; `auto` is `medium`.
    Eagerness {
        Low = "low",
        Medium = "medium",
        High = "high",
        #[default]
        Auto = "auto",
    }
);

keyword!(
    /// How quickly Nova 2 Sonic takes the end of the caller's speech as the end of
    /// the turn: `high` after about 1.5 s of pause, `medium` 1.75 s, `low` 2 s.
    EndpointingSensitivity {
        High = "high",
        #[default]
        Medium = "medium",
        Low = "low",
    }
);

impl EndpointingSensitivity {
    /// Nova Sonic's name for it.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
        }
    }
}

/// The speech provider, its model and voice, and the provider's own settings. A
/// setting is `null` when the provider (or model) has no such thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    pub provider: SpeechProvider,
    pub model: ModelId,
    pub voice_id: VoiceId,
    /// openai-realtime: `server_vad` or `semantic_vad`.
    #[serde(default)]
    pub turn_detection: Option<TurnDetection>,
    /// openai-realtime with `semantic_vad`: `low`, `medium`, `high` or `auto`.
    #[serde(default)]
    pub eagerness: Option<Eagerness>,
    /// nova-sonic with Nova 2 Sonic: `high`, `medium` or `low`.
    #[serde(default)]
    pub endpointing_sensitivity: Option<EndpointingSensitivity>,
    /// nova-sonic: sampling temperature from 0 to 1.
    #[serde(default)]
    pub temperature: Option<Temperature>,
}

/// One document the agent may answer from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeDocument {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Rules the agent must follow, in plain language.
    pub custom_rules: Vec<String>,
    /// The call ends politely after this many caller turns.
    pub max_conversation_turns: u32,
    /// The call ends politely after this many seconds.
    pub max_session_duration_secs: u32,
    /// The call ends politely after this many inappropriate caller turns.
    pub max_inappropriate_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Telephony {
    /// The Twilio number callers dial.
    pub call_phone_number: E164,
    /// Where `transfer_call` sends the caller.
    pub transfer_phone_number: Option<E164>,
    /// Where call summaries are texted.
    pub summary_phone_number: Option<E164>,
    pub twilio_account_sid: TwilioAccountSid,
    pub sip_endpoint: Option<SipUri>,
    /// Whether the control plane points `call_phone_number` at the agent when it is
    /// deployed (Twilio's IncomingPhoneNumbers API) and gives the number its previous
    /// voice URL back when the agent is deleted or moves to another number. Off: the
    /// number is the tenant's to point (configs stored before it existed are on).
    #[serde(default = "configure_number_default")]
    pub configure_number: bool,
}

fn configure_number_default() -> bool {
    true
}

fn voicemail_message_default() -> String {
    crate::draft::DEFAULT_VOICEMAIL_MESSAGE.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Integrations {
    /// General event webhook.
    pub webhook_endpoint: Option<HttpsUrl>,
    /// Receives the transcript when a call ends.
    pub transcript_webhook_url: Option<HttpsUrl>,
    /// Notified when a call is picked up.
    pub pickup_webhook_url: Option<HttpsUrl>,
    /// Make.com scenario that receives scheduled callbacks.
    pub make_endpoint: Option<HttpsUrl>,
    /// Region of the agent's speech provider (Amazon Bedrock for Nova Sonic). The
    /// transcript bucket lives in the deployer's region, given to the runtime as
    /// `S3_BUCKET_REGION`.
    pub aws_region: AwsRegion,
}

keyword!(
    /// The CPU architecture an agent's tasks run on. ARM64 (Graviton) Fargate costs
    /// about 20 % less for the same size; the runtime image is built for both.
    CpuArchitecture {
        #[default]
        X86_64 = "x86_64",
        Arm64 = "arm64",
    }
);

impl CpuArchitecture {
    /// ECS's name for it (`runtimePlatform.cpuArchitecture`).
    pub fn ecs_name(self) -> &'static str {
        match self {
            Self::X86_64 => "X86_64",
            Self::Arm64 => "ARM64",
        }
    }
}

/// Fargate task size, and how many tasks run: from `min_tasks` to `max_tasks`,
/// scaled on live calls per task. Only CPU and memory combinations Fargate accepts
/// are valid; see [`FARGATE_SIZES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(from = "StoredSizing")]
pub struct Sizing {
    /// CPU units (1024 = 1 vCPU).
    pub cpu: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Tasks that always run; 0 pauses the agent. (Configs written before scaling
    /// existed call it `desired_count`.)
    pub min_tasks: u32,
    /// Tasks autoscaling may add up to; equal to `min_tasks`, the agent does not scale.
    pub max_tasks: u32,
    /// Concurrent calls one task takes; more are answered busy.
    pub calls_per_task: u32,
    /// Live calls per task that autoscaling holds the agent at.
    pub target_calls_per_task: u32,
    /// The tasks' CPU architecture (configs stored before it existed are x86_64).
    pub cpu_architecture: CpuArchitecture,
}

impl Sizing {
    /// The calls one task takes unless the agent says otherwise.
    pub const DEFAULT_CALLS_PER_TASK: u32 = 50;

    /// `max_tasks` when none is given: twice the minimum (at least 2, at most
    /// [`crate::draft::limits::MAX_TASKS`]), so a burst can double the agent.
    pub fn default_max_tasks(min_tasks: u32) -> u32 {
        min_tasks.max(1).saturating_mul(2).min(*crate::draft::limits::MAX_TASKS.end())
    }

    /// `target_calls_per_task` when none is given: 70 % of the per-task limit, the
    /// headroom a burst needs while a new task starts (about a minute), and below
    /// the limit: a task answers busy past it, so live calls per task could never
    /// rise above a target at the limit and the agent would never scale out.
    pub fn default_target(calls_per_task: u32) -> u32 {
        let seventy = u64::from(calls_per_task) * 7 / 10;
        (seventy as u32).min(calls_per_task.saturating_sub(1)).max(1)
    }

    /// Whether the agent has autoscaling: it runs, and may run more tasks than its minimum.
    pub fn scales(&self) -> bool {
        Self::scales_between(self.min_tasks, self.max_tasks)
    }

    /// Whether an agent of `min_tasks` to `max_tasks` tasks has autoscaling.
    pub fn scales_between(min_tasks: u32, max_tasks: u32) -> bool {
        min_tasks > 0 && max_tasks > min_tasks
    }

    /// The most tasks the agent may run: `max_tasks`, or none while paused. What
    /// quotas (CPU, load-balancer targets) count.
    pub fn most_tasks(&self) -> u32 {
        if self.min_tasks == 0 { 0 } else { self.max_tasks }
    }
}

/// [`Sizing`] as stored: configs written before scaling existed have
/// `desired_count` (now the minimum) and none of the scaling fields. They keep the
/// fixed size they were deployed with (`max_tasks` = `min_tasks`) until updated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSizing {
    cpu: u32,
    memory_mib: u32,
    #[serde(alias = "desired_count")]
    min_tasks: u32,
    #[serde(default)]
    max_tasks: Option<u32>,
    #[serde(default)]
    calls_per_task: Option<u32>,
    #[serde(default)]
    target_calls_per_task: Option<u32>,
    #[serde(default)]
    cpu_architecture: CpuArchitecture,
}

impl From<StoredSizing> for Sizing {
    fn from(s: StoredSizing) -> Self {
        let calls_per_task = s.calls_per_task.unwrap_or(Self::DEFAULT_CALLS_PER_TASK);
        Self {
            cpu: s.cpu,
            memory_mib: s.memory_mib,
            min_tasks: s.min_tasks,
            max_tasks: s.max_tasks.unwrap_or(s.min_tasks),
            calls_per_task,
            target_calls_per_task: s.target_calls_per_task.unwrap_or_else(|| Self::default_target(calls_per_task)),
            cpu_architecture: s.cpu_architecture,
        }
    }
}

/// The full, validated configuration of one agent, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    /// First words the agent says when it picks up.
    pub greeting: String,
    /// What an outbound call that reaches an answering machine leaves after the
    /// beep, before it hangs up (configs stored before it existed get the default).
    #[serde(default = "voicemail_message_default")]
    pub voicemail_message: String,
    pub language: LanguageTag,
    pub voice: VoiceConfig,
    pub knowledge_base: Vec<KnowledgeDocument>,
    pub guardrails: Guardrails,
    /// Seconds of caller silence before the agent asks whether the caller is still there.
    pub idle_prompt_after_secs: u32,
    pub enable_recording: bool,
    pub enable_transcription: bool,
    pub telephony: Telephony,
    pub integrations: Integrations,
    pub sizing: Sizing,
}

/// Every Fargate (cpu, memory) combination: for each cpu value, the valid memory
/// sizes in MiB.
pub const FARGATE_SIZES: &[(u32, &[u32])] = &[
    (256, &[512, 1024, 2048]),
    (512, &[1024, 2048, 3072, 4096]),
    (1024, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (2048, &range_mib::<13>(4096, 1024)),
    (4096, &range_mib::<23>(8192, 1024)),
    (8192, &range_mib::<12>(16384, 4096)),
    (16384, &range_mib::<12>(32768, 8192)),
];

const fn range_mib<const N: usize>(start: u32, step: u32) -> [u32; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = start + step * i as u32;
        i += 1;
    }
    out
}

/// The memory sizes Fargate accepts with `cpu`, or `None` if `cpu` is not a Fargate size.
pub fn fargate_memory_for(cpu: u32) -> Option<&'static [u32]> {
    FARGATE_SIZES.iter().find(|(c, _)| *c == cpu).map(|(_, m)| *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_table_matches_aws_ranges() {
        assert_eq!(fargate_memory_for(2048).unwrap().last(), Some(&16384));
        assert_eq!(fargate_memory_for(4096).unwrap().last(), Some(&30720));
        assert_eq!(fargate_memory_for(8192).unwrap().last(), Some(&61440));
        assert_eq!(fargate_memory_for(16384).unwrap().last(), Some(&122880));
        assert!(fargate_memory_for(300).is_none());
    }

    #[test]
    fn provider_names_round_trip() {
        for &p in SpeechProvider::ALL {
            assert_eq!(SpeechProvider::parse(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
    }
}
