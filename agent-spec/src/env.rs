//! The one mapping between an agent and the runtime container's environment.
//!
//! The deployer writes [`AgentSpec::to_env`] into the ECS task definition: `vars` as
//! plain `environment`, `secrets` into the agent's Secrets Manager secret, referenced
//! with `secrets`/`valueFrom`. ECS hands both to the container as environment
//! variables, and the runtime reads them back with [`AgentSpec::from_env`].
//! `from_env(to_env(spec)) == spec` for every valid spec.
//!
//! Size: ECS refuses a task definition over 64 KiB. The agent's encoded environment
//! is held to [`ENV_BUDGET_BYTES`] (32 KiB), leaving the rest for the container
//! definition, secret references and log settings. A config over budget — in
//! practice a large knowledge base — is refused at validation with an error naming
//! the field to shorten, so it never reaches the deployer.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{AgentConfig, CpuArchitecture, KnowledgeDocument, SpeechProvider};
use crate::draft::{
    AgentDraft, GuardrailsDraft, IntegrationsDraft, KnowledgeDocumentDraft, SecretsDraft, SizingDraft, TelephonyDraft,
    VoiceDraft,
};
use crate::ids::{AgentId, ID_LEN, TenantId};
use crate::secrets::{AgentSecrets, SecretPatch};

/// Version of this mapping, written as `AGENT_SPEC_VERSION`. A runtime refuses an
/// environment written for a version it does not know.
pub const SPEC_VERSION: &str = "1";

/// Budget for the agent's encoded environment, in bytes of task-definition JSON.
pub const ENV_BUDGET_BYTES: usize = 32 * 1024;

/// Allowance for each secret reference (`{"name":…,"valueFrom":"arn:aws:secretsmanager:…:KEY::"}`).
const SECRET_REFERENCE_BYTES: usize = 200;

/// Environment variable names, plain and secret.
pub mod vars {
    pub const AGENT_SPEC_VERSION: &str = "AGENT_SPEC_VERSION";
    pub const AGENT_ID: &str = "AGENT_ID";
    pub const TENANT_ID: &str = "TENANT_ID";
    pub const AGENT_NAME: &str = "AGENT_NAME";
    pub const AGENT_DESCRIPTION: &str = "AGENT_DESCRIPTION";
    pub const AGENT_SYSTEM_PROMPT: &str = "AGENT_SYSTEM_PROMPT";
    pub const AGENT_GREETING: &str = "AGENT_GREETING";
    pub const AGENT_VOICEMAIL_MESSAGE: &str = "AGENT_VOICEMAIL_MESSAGE";
    pub const AGENT_LANGUAGE: &str = "AGENT_LANGUAGE";
    pub const SPEECH_PROVIDER: &str = "SPEECH_PROVIDER";
    pub const SPEECH_MODEL: &str = "SPEECH_MODEL";
    pub const VOICE_ID: &str = "VOICE_ID";
    /// openai-realtime: `server_vad` or `semantic_vad`.
    pub const TURN_DETECTION: &str = "TURN_DETECTION";
    /// openai-realtime with `semantic_vad`.
    pub const TURN_EAGERNESS: &str = "TURN_EAGERNESS";
    /// nova-sonic (Nova 2 Sonic).
    pub const ENDPOINTING_SENSITIVITY: &str = "ENDPOINTING_SENSITIVITY";
    /// nova-sonic.
    pub const SPEECH_TEMPERATURE: &str = "SPEECH_TEMPERATURE";
    /// JSON array of `{"title", "text"}`.
    pub const AGENT_KNOWLEDGE_BASE: &str = "AGENT_KNOWLEDGE_BASE";
    /// JSON array of strings.
    pub const GUARDRAILS_CUSTOM_RULES: &str = "GUARDRAILS_CUSTOM_RULES";
    pub const MAX_CONVERSATION_TURNS: &str = "MAX_CONVERSATION_TURNS";
    pub const MAX_SESSION_DURATION_SECS: &str = "MAX_SESSION_DURATION_SECS";
    pub const MAX_INAPPROPRIATE_ATTEMPTS: &str = "MAX_INAPPROPRIATE_ATTEMPTS";
    pub const IDLE_PROMPT_AFTER_SECS: &str = "IDLE_PROMPT_AFTER_SECS";
    pub const ENABLE_RECORDING: &str = "ENABLE_RECORDING";
    pub const ENABLE_TRANSCRIPTION: &str = "ENABLE_TRANSCRIPTION";
    pub const CALL_PHONE_NUMBER: &str = "CALL_PHONE_NUMBER";
    pub const TRANSFER_PHONE_NUMBER: &str = "TRANSFER_PHONE_NUMBER";
    pub const SUMMARY_PHONE_NUMBER: &str = "SUMMARY_PHONE_NUMBER";
    pub const TWILIO_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
    pub const SIP_ENDPOINT: &str = "SIP_ENDPOINT";
    pub const WEBHOOK_ENDPOINT: &str = "WEBHOOK_ENDPOINT";
    pub const TRANSCRIPT_WEBHOOK_URL: &str = "TRANSCRIPT_WEBHOOK_URL";
    pub const PICKUP_WEBHOOK_URL: &str = "PICKUP_WEBHOOK_URL";
    pub const MAKE_ENDPOINT: &str = "MAKE_ENDPOINT";
    pub const AWS_REGION: &str = "AWS_REGION";
    pub const AGENT_CPU: &str = "AGENT_CPU";
    pub const AGENT_MEMORY_MIB: &str = "AGENT_MEMORY_MIB";
    pub const AGENT_MIN_TASKS: &str = "AGENT_MIN_TASKS";
    /// What `AGENT_MIN_TASKS` was called before scaling: still written (the same
    /// value) for older runtimes, and read when `AGENT_MIN_TASKS` is absent.
    pub const AGENT_DESIRED_COUNT: &str = "AGENT_DESIRED_COUNT";
    pub const AGENT_MAX_TASKS: &str = "AGENT_MAX_TASKS";
    pub const AGENT_CALLS_PER_TASK: &str = "AGENT_CALLS_PER_TASK";
    pub const AGENT_TARGET_CALLS_PER_TASK: &str = "AGENT_TARGET_CALLS_PER_TASK";
    pub const AGENT_CPU_ARCHITECTURE: &str = "AGENT_CPU_ARCHITECTURE";

    pub const TWILIO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
    pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
    pub const WEBHOOK_SIGNING_SECRET: &str = "WEBHOOK_SIGNING_SECRET";

    /// The names that hold secrets; they never appear in plain `environment`.
    pub const SECRETS: [&str; 3] = [TWILIO_AUTH_TOKEN, OPENAI_API_KEY, WEBHOOK_SIGNING_SECRET];
}

/// Which variable carries each config field, for turning validation errors on a
/// draft read from the environment into errors naming the variable. Fields inside
/// a JSON-encoded variable map by prefix.
const FIELD_VARS: &[(&str, &str)] = &[
    ("name", vars::AGENT_NAME),
    ("description", vars::AGENT_DESCRIPTION),
    ("system_prompt", vars::AGENT_SYSTEM_PROMPT),
    ("greeting", vars::AGENT_GREETING),
    ("voicemail_message", vars::AGENT_VOICEMAIL_MESSAGE),
    ("language", vars::AGENT_LANGUAGE),
    ("voice.provider", vars::SPEECH_PROVIDER),
    ("voice.model", vars::SPEECH_MODEL),
    ("voice.voice_id", vars::VOICE_ID),
    ("voice.turn_detection", vars::TURN_DETECTION),
    ("voice.eagerness", vars::TURN_EAGERNESS),
    ("voice.endpointing_sensitivity", vars::ENDPOINTING_SENSITIVITY),
    ("voice.temperature", vars::SPEECH_TEMPERATURE),
    ("knowledge_base", vars::AGENT_KNOWLEDGE_BASE),
    ("guardrails.custom_rules", vars::GUARDRAILS_CUSTOM_RULES),
    ("guardrails.max_conversation_turns", vars::MAX_CONVERSATION_TURNS),
    ("guardrails.max_session_duration_secs", vars::MAX_SESSION_DURATION_SECS),
    ("guardrails.max_inappropriate_attempts", vars::MAX_INAPPROPRIATE_ATTEMPTS),
    ("idle_prompt_after_secs", vars::IDLE_PROMPT_AFTER_SECS),
    ("enable_recording", vars::ENABLE_RECORDING),
    ("enable_transcription", vars::ENABLE_TRANSCRIPTION),
    ("telephony.call_phone_number", vars::CALL_PHONE_NUMBER),
    ("telephony.transfer_phone_number", vars::TRANSFER_PHONE_NUMBER),
    ("telephony.summary_phone_number", vars::SUMMARY_PHONE_NUMBER),
    ("telephony.twilio_account_sid", vars::TWILIO_ACCOUNT_SID),
    ("telephony.sip_endpoint", vars::SIP_ENDPOINT),
    ("integrations.webhook_endpoint", vars::WEBHOOK_ENDPOINT),
    ("integrations.transcript_webhook_url", vars::TRANSCRIPT_WEBHOOK_URL),
    ("integrations.pickup_webhook_url", vars::PICKUP_WEBHOOK_URL),
    ("integrations.make_endpoint", vars::MAKE_ENDPOINT),
    ("integrations.aws_region", vars::AWS_REGION),
    ("sizing.cpu", vars::AGENT_CPU),
    ("sizing.memory_mib", vars::AGENT_MEMORY_MIB),
    ("sizing.min_tasks", vars::AGENT_MIN_TASKS),
    ("sizing.max_tasks", vars::AGENT_MAX_TASKS),
    ("sizing.calls_per_task", vars::AGENT_CALLS_PER_TASK),
    ("sizing.target_calls_per_task", vars::AGENT_TARGET_CALLS_PER_TASK),
    ("sizing.cpu_architecture", vars::AGENT_CPU_ARCHITECTURE),
    ("secrets.twilio_auth_token", vars::TWILIO_AUTH_TOKEN),
    ("secrets.openai_api_key", vars::OPENAI_API_KEY),
    ("secrets.webhook_signing_secret", vars::WEBHOOK_SIGNING_SECRET),
];

fn var_for_field(field: &str) -> &'static str {
    FIELD_VARS
        .iter()
        .find(|(prefix, _)| {
            field == *prefix || field.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(['[', '.']))
        })
        .map_or(vars::AGENT_SPEC_VERSION, |(_, var)| var)
}

/// Everything the runtime needs to run one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub config: AgentConfig,
    pub secrets: AgentSecrets,
}

/// The encoded environment: plain variables and secrets, kept apart.
#[derive(Debug, Clone)]
pub struct AgentEnvironment {
    pub vars: BTreeMap<&'static str, String>,
    pub secrets: BTreeMap<&'static str, SecretString>,
}

/// A variable that is missing or holds an invalid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub var: &'static str,
    pub reason: String,
}

/// Every problem with an environment, at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EnvErrors(pub Vec<EnvError>);

impl fmt::Display for EnvErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid agent environment: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", e.var, e.reason)?;
        }
        Ok(())
    }
}

/// The plain variables of a config (without ids and version), in a fixed order.
fn config_vars(c: &AgentConfig) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (vars::AGENT_NAME, c.name.clone()),
        (vars::AGENT_DESCRIPTION, c.description.clone()),
        (vars::AGENT_SYSTEM_PROMPT, c.system_prompt.clone()),
        (vars::AGENT_GREETING, c.greeting.clone()),
        (vars::AGENT_VOICEMAIL_MESSAGE, c.voicemail_message.clone()),
        (vars::AGENT_LANGUAGE, c.language.to_string()),
        (vars::SPEECH_PROVIDER, c.voice.provider.as_str().to_owned()),
        (vars::SPEECH_MODEL, c.voice.model.to_string()),
        (vars::VOICE_ID, c.voice.voice_id.to_string()),
        (vars::AGENT_KNOWLEDGE_BASE, serde_json::to_string(&c.knowledge_base).expect("knowledge base serializes")),
        (vars::GUARDRAILS_CUSTOM_RULES, serde_json::to_string(&c.guardrails.custom_rules).expect("rules serialize")),
        (vars::MAX_CONVERSATION_TURNS, c.guardrails.max_conversation_turns.to_string()),
        (vars::MAX_SESSION_DURATION_SECS, c.guardrails.max_session_duration_secs.to_string()),
        (vars::MAX_INAPPROPRIATE_ATTEMPTS, c.guardrails.max_inappropriate_attempts.to_string()),
        (vars::IDLE_PROMPT_AFTER_SECS, c.idle_prompt_after_secs.to_string()),
        (vars::ENABLE_RECORDING, c.enable_recording.to_string()),
        (vars::ENABLE_TRANSCRIPTION, c.enable_transcription.to_string()),
        (vars::CALL_PHONE_NUMBER, c.telephony.call_phone_number.to_string()),
        (vars::TWILIO_ACCOUNT_SID, c.telephony.twilio_account_sid.to_string()),
        (vars::AWS_REGION, c.integrations.aws_region.to_string()),
        (vars::AGENT_CPU, c.sizing.cpu.to_string()),
        (vars::AGENT_MEMORY_MIB, c.sizing.memory_mib.to_string()),
        (vars::AGENT_MIN_TASKS, c.sizing.min_tasks.to_string()),
        // For runtimes older than scaling, which require it: a rollout can put one
        // back, and a deploy keeps the image an agent runs.
        (vars::AGENT_DESIRED_COUNT, c.sizing.min_tasks.to_string()),
        (vars::AGENT_MAX_TASKS, c.sizing.max_tasks.to_string()),
        (vars::AGENT_CALLS_PER_TASK, c.sizing.calls_per_task.to_string()),
        (vars::AGENT_TARGET_CALLS_PER_TASK, c.sizing.target_calls_per_task.to_string()),
        (vars::AGENT_CPU_ARCHITECTURE, c.sizing.cpu_architecture.as_str().to_owned()),
    ];
    let optional = [
        (vars::TRANSFER_PHONE_NUMBER, c.telephony.transfer_phone_number.as_ref().map(ToString::to_string)),
        (vars::SUMMARY_PHONE_NUMBER, c.telephony.summary_phone_number.as_ref().map(ToString::to_string)),
        (vars::SIP_ENDPOINT, c.telephony.sip_endpoint.as_ref().map(ToString::to_string)),
        (vars::WEBHOOK_ENDPOINT, c.integrations.webhook_endpoint.as_ref().map(ToString::to_string)),
        (vars::TRANSCRIPT_WEBHOOK_URL, c.integrations.transcript_webhook_url.as_ref().map(ToString::to_string)),
        (vars::PICKUP_WEBHOOK_URL, c.integrations.pickup_webhook_url.as_ref().map(ToString::to_string)),
        (vars::MAKE_ENDPOINT, c.integrations.make_endpoint.as_ref().map(ToString::to_string)),
        (vars::TURN_DETECTION, c.voice.turn_detection.map(|t| t.as_str().to_owned())),
        (vars::TURN_EAGERNESS, c.voice.eagerness.map(|e| e.as_str().to_owned())),
        (vars::ENDPOINTING_SENSITIVITY, c.voice.endpointing_sensitivity.map(|e| e.as_str().to_owned())),
        (vars::SPEECH_TEMPERATURE, c.voice.temperature.map(|t| t.to_string())),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    // ECS passes empty values through, but an absent variable is clearer to read.
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// Bytes one `{"name":…,"value":…}` entry takes in task-definition JSON.
fn entry_bytes(name: &str, value: &str) -> usize {
    let escaped_value = serde_json::to_string(value).expect("string serializes").len();
    r#"{"name":"","value":},"#.len() + name.len() + escaped_value
}

/// How many bytes a config's environment takes in the task definition.
#[derive(Debug, Clone)]
pub struct EnvironmentSize {
    pub total: usize,
    per_var: Vec<(&'static str, usize)>,
}

impl EnvironmentSize {
    pub fn of(config: &AgentConfig) -> Self {
        let per_var: Vec<(&'static str, usize)> =
            config_vars(config).iter().map(|(k, v)| (*k, entry_bytes(k, v))).collect();
        let fixed = entry_bytes(vars::AGENT_ID, &"a".repeat(ID_LEN))
            + entry_bytes(vars::TENANT_ID, &"a".repeat(ID_LEN))
            + entry_bytes(vars::AGENT_SPEC_VERSION, SPEC_VERSION)
            + vars::SECRETS.len() * SECRET_REFERENCE_BYTES;
        let total = fixed + per_var.iter().map(|(_, n)| n).sum::<usize>() + 2;
        Self { total, per_var }
    }

    /// The free-text field taking the most bytes, as (field path, bytes).
    pub fn largest_free_text(&self) -> (&'static str, usize) {
        const FREE_TEXT: [(&str, &str); 6] = [
            ("knowledge_base", vars::AGENT_KNOWLEDGE_BASE),
            ("system_prompt", vars::AGENT_SYSTEM_PROMPT),
            ("guardrails.custom_rules", vars::GUARDRAILS_CUSTOM_RULES),
            ("description", vars::AGENT_DESCRIPTION),
            ("greeting", vars::AGENT_GREETING),
            ("voicemail_message", vars::AGENT_VOICEMAIL_MESSAGE),
        ];
        FREE_TEXT
            .iter()
            .map(|(field, var)| {
                let bytes = self.per_var.iter().find(|(k, _)| k == var).map_or(0, |(_, n)| *n);
                (*field, bytes)
            })
            .max_by_key(|(_, bytes)| *bytes)
            .unwrap_or(("knowledge_base", 0))
    }
}

impl AgentSpec {
    /// The container environment for this agent.
    pub fn to_env(&self) -> AgentEnvironment {
        let mut vars: BTreeMap<&'static str, String> = config_vars(&self.config).into_iter().collect();
        vars.insert(vars::AGENT_SPEC_VERSION, SPEC_VERSION.to_owned());
        vars.insert(vars::AGENT_ID, self.agent_id.to_string());
        vars.insert(vars::TENANT_ID, self.tenant_id.to_string());

        let mut secrets = BTreeMap::new();
        secrets.insert(vars::TWILIO_AUTH_TOKEN, self.secrets.twilio_auth_token.clone());
        if let Some(v) = &self.secrets.openai_api_key {
            secrets.insert(vars::OPENAI_API_KEY, v.clone());
        }
        if let Some(v) = &self.secrets.webhook_signing_secret {
            secrets.insert(vars::WEBHOOK_SIGNING_SECRET, v.clone());
        }
        // A webhook URL that is a credential travels as a secret, under its own name.
        for (field, url) in &self.secrets.webhook_urls {
            let var = var_for_field(field);
            vars.remove(var);
            secrets.insert(var, url.clone());
        }
        AgentEnvironment { vars, secrets }
    }

    /// Reads an agent from environment variables (`lookup` is usually
    /// `|k| std::env::var(k).ok()`). Other variables are ignored. Every missing or
    /// invalid variable is reported, by name.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<AgentSpec, EnvErrors> {
        let mut reader = EnvReader { lookup: &lookup, errors: Vec::new() };

        match reader.get(vars::AGENT_SPEC_VERSION).as_deref() {
            Some(SPEC_VERSION) => {}
            Some(_) => reader.fail(
                vars::AGENT_SPEC_VERSION,
                format!("is not a supported version: this runtime reads version {SPEC_VERSION}"),
            ),
            None => reader.fail(vars::AGENT_SPEC_VERSION, "is missing".to_owned()),
        }
        let agent_id = reader.parsed(vars::AGENT_ID, AgentId::parse);
        let tenant_id = reader.parsed(vars::TENANT_ID, TenantId::parse);

        let provider = match reader.get(vars::SPEECH_PROVIDER) {
            None => {
                reader.fail(vars::SPEECH_PROVIDER, "is missing".to_owned());
                SpeechProvider::default()
            }
            Some(raw) => SpeechProvider::parse(&raw).unwrap_or_else(|| {
                reader.fail(vars::SPEECH_PROVIDER, format!("must be {}", SpeechProvider::choices()));
                SpeechProvider::default()
            }),
        };
        // Absent in environments written before it existed: x86_64.
        let cpu_architecture = match reader.get(vars::AGENT_CPU_ARCHITECTURE) {
            None => CpuArchitecture::default(),
            Some(raw) => CpuArchitecture::parse(&raw).unwrap_or_else(|| {
                reader.fail(vars::AGENT_CPU_ARCHITECTURE, format!("must be {}", CpuArchitecture::choices()));
                CpuArchitecture::default()
            }),
        };
        let knowledge_base: Vec<KnowledgeDocument> = reader.json(vars::AGENT_KNOWLEDGE_BASE);
        let custom_rules: Vec<String> = reader.json(vars::GUARDRAILS_CUSTOM_RULES);
        let secret = |name: &str| lookup(name).filter(|v| !v.is_empty()).map_or(SecretPatch::Keep, SecretPatch::set);

        let draft = AgentDraft {
            name: reader.text(vars::AGENT_NAME),
            description: reader.text(vars::AGENT_DESCRIPTION),
            system_prompt: reader.text(vars::AGENT_SYSTEM_PROMPT),
            greeting: reader.text(vars::AGENT_GREETING),
            voicemail_message: reader.text(vars::AGENT_VOICEMAIL_MESSAGE),
            language: reader.text(vars::AGENT_LANGUAGE),
            voice: VoiceDraft {
                provider,
                model: reader.get(vars::SPEECH_MODEL),
                voice_id: reader.get(vars::VOICE_ID),
                turn_detection: reader.get(vars::TURN_DETECTION),
                eagerness: reader.get(vars::TURN_EAGERNESS),
                endpointing_sensitivity: reader.get(vars::ENDPOINTING_SENSITIVITY),
                temperature: reader.optional_number(vars::SPEECH_TEMPERATURE),
            },
            knowledge_base: knowledge_base
                .into_iter()
                .map(|d| KnowledgeDocumentDraft { title: d.title, text: d.text })
                .collect(),
            guardrails: GuardrailsDraft {
                custom_rules,
                max_conversation_turns: reader.number(vars::MAX_CONVERSATION_TURNS),
                max_session_duration_secs: reader.number(vars::MAX_SESSION_DURATION_SECS),
                max_inappropriate_attempts: reader.number(vars::MAX_INAPPROPRIATE_ATTEMPTS),
            },
            idle_prompt_after_secs: reader.number(vars::IDLE_PROMPT_AFTER_SECS),
            enable_recording: reader.boolean(vars::ENABLE_RECORDING),
            enable_transcription: reader.boolean(vars::ENABLE_TRANSCRIPTION),
            telephony: TelephonyDraft {
                call_phone_number: reader.text(vars::CALL_PHONE_NUMBER),
                transfer_phone_number: reader.get(vars::TRANSFER_PHONE_NUMBER),
                summary_phone_number: reader.get(vars::SUMMARY_PHONE_NUMBER),
                twilio_account_sid: reader.text(vars::TWILIO_ACCOUNT_SID),
                sip_endpoint: reader.get(vars::SIP_ENDPOINT),
                // The control plane's business, not the runtime's: not in the environment.
                configure_number: true,
            },
            integrations: IntegrationsDraft {
                webhook_endpoint: reader.get(vars::WEBHOOK_ENDPOINT),
                transcript_webhook_url: reader.get(vars::TRANSCRIPT_WEBHOOK_URL),
                pickup_webhook_url: reader.get(vars::PICKUP_WEBHOOK_URL),
                make_endpoint: reader.get(vars::MAKE_ENDPOINT),
                aws_region: reader.text(vars::AWS_REGION),
            },
            sizing: SizingDraft {
                cpu: reader.number(vars::AGENT_CPU),
                memory_mib: reader.number(vars::AGENT_MEMORY_MIB),
                // Task definitions written before scaling have only AGENT_DESIRED_COUNT.
                min_tasks: match reader.get(vars::AGENT_MIN_TASKS) {
                    None if reader.get(vars::AGENT_DESIRED_COUNT).is_some() => reader.number(vars::AGENT_DESIRED_COUNT),
                    _ => reader.number(vars::AGENT_MIN_TASKS),
                },
                desired_count: None,
                max_tasks: reader.optional_whole(vars::AGENT_MAX_TASKS),
                calls_per_task: reader
                    .optional_whole(vars::AGENT_CALLS_PER_TASK)
                    .unwrap_or(crate::config::Sizing::DEFAULT_CALLS_PER_TASK),
                target_calls_per_task: reader.optional_whole(vars::AGENT_TARGET_CALLS_PER_TASK),
                cpu_architecture,
            },
            secrets: SecretsDraft {
                twilio_auth_token: secret(vars::TWILIO_AUTH_TOKEN),
                openai_api_key: secret(vars::OPENAI_API_KEY),
                webhook_signing_secret: secret(vars::WEBHOOK_SIGNING_SECRET),
            },
        };

        let mut errors = reader.errors;
        let validated = draft.validate(None).map_err(|invalid| {
            for e in invalid.0 {
                let var = var_for_field(&e.field);
                // A variable that failed to parse is reported once, by the parser.
                if !errors.iter().any(|seen| seen.var == var) {
                    errors.push(EnvError { var, reason: e.reason });
                }
            }
        });
        match (validated, agent_id, tenant_id, errors.is_empty()) {
            (Ok((config, secrets)), Some(agent_id), Some(tenant_id), true) => {
                Ok(AgentSpec { agent_id, tenant_id, config, secrets })
            }
            _ => Err(EnvErrors(errors)),
        }
    }
}

impl AgentEnvironment {
    /// Plain variables and secrets as one map, as the container sees them.
    pub fn merged(&self) -> BTreeMap<String, String> {
        let mut all: BTreeMap<String, String> = self.vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        all.extend(self.secrets.iter().map(|(k, v)| ((*k).to_owned(), v.expose_secret().to_owned())));
        all
    }
}

struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<EnvError>,
}

impl EnvReader<'_> {
    fn fail(&mut self, var: &'static str, reason: String) {
        self.errors.push(EnvError { var, reason });
    }

    /// The variable's value; absent and empty are the same.
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.is_empty())
    }

    /// Free text; absent is empty, which validation reports if the field is required.
    fn text(&self, var: &str) -> String {
        self.get(var).unwrap_or_default()
    }

    fn parsed<T, E: fmt::Display>(&mut self, var: &'static str, parse: fn(&str) -> Result<T, E>) -> Option<T> {
        match self.get(var) {
            None => {
                self.fail(var, "is missing".to_owned());
                None
            }
            Some(raw) => parse(&raw).map_err(|e| self.fail(var, e.to_string())).ok(),
        }
    }

    fn number(&mut self, var: &'static str) -> u32 {
        self.parsed(var, |raw| raw.trim().parse::<u32>().map_err(|_| "must be a whole number")).unwrap_or_default()
    }

    /// A whole number, if the variable is set.
    fn optional_whole(&mut self, var: &'static str) -> Option<u32> {
        self.get(var)?;
        Some(self.number(var))
    }

    /// A decimal number, if the variable is set.
    fn optional_number(&mut self, var: &'static str) -> Option<f64> {
        let raw = self.get(var)?;
        raw.trim().parse::<f64>().map_err(|_| self.fail(var, "must be a number".to_owned())).ok()
    }

    fn boolean(&mut self, var: &'static str) -> bool {
        self.parsed(var, |raw| match raw.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("must be true or false"),
        })
        .unwrap_or_default()
    }

    fn json<T: serde::de::DeserializeOwned + Default>(&mut self, var: &'static str) -> T {
        match self.get(var) {
            None => T::default(),
            Some(raw) => serde_json::from_str(&raw).unwrap_or_else(|e| {
                self.fail(var, format!("must be valid JSON of the documented shape ({e})"));
                T::default()
            }),
        }
    }
}
