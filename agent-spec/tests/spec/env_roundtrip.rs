//! `from_env(to_env(spec)) == spec` for every valid spec, and `from_env` names
//! every missing or invalid variable.

use crate::common;

use std::collections::BTreeMap;

use agent_spec::config::{Eagerness, EndpointingSensitivity, FARGATE_SIZES, TurnDetection};
use agent_spec::draft::{
    AgentDraft, GuardrailsDraft, IntegrationsDraft, KnowledgeDocumentDraft, SecretsDraft, SizingDraft, TelephonyDraft,
    VoiceDraft,
};
use agent_spec::env::vars;
use agent_spec::secrets::SecretPatch;
use agent_spec::{AgentId, AgentSpec, SpeechProvider, TenantId};
use proptest::prelude::*;
use proptest::sample::select;

fn free_text(max: usize) -> impl Strategy<Value = String> {
    // Printable Unicode with quotes, '=' and the odd newline: what breaks naive encodings.
    proptest::string::string_regex(&format!("[A-Za-zé日][\\PC\"'=\\n\\t]{{0,{max}}}")).unwrap()
}

fn single_line(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-zé日][\\PC\"'=]{{0,{max}}}")).unwrap()
}

fn maybe(re: &'static str) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::string::string_regex(re).unwrap())
}

prop_compose! {
    fn sizing()(
        index in 0..FARGATE_SIZES.len(),
        pick in any::<prop::sample::Index>(),
        (min, extra) in (0u32..=20, 0u32..=20),
        (calls, target) in (1u32..=1_000, any::<prop::sample::Index>()),
    ) -> SizingDraft {
        let (cpu, memory) = FARGATE_SIZES[index];
        // A scaling agent's target is below its limit; one call per task cannot scale.
        let max = if calls == 1 { min } else { (min + extra).min(20) };
        SizingDraft {
            cpu,
            memory_mib: *pick.get(memory),
            min_tasks: min,
            desired_count: None,
            max_tasks: Some(max),
            calls_per_task: calls,
            target_calls_per_task: Some(target.index((calls as usize - 1).max(1)) as u32 + 1),
            cpu_architecture: Default::default(),
        }
    }
}

fn maybe_index() -> impl Strategy<Value = Option<usize>> {
    proptest::option::of(0usize..32)
}

prop_compose! {
    fn draft()(
        name in single_line(40),
        description in proptest::option::of(free_text(80)),
        system_prompt in free_text(300),
        greeting in single_line(60),
        voicemail_message in single_line(60),
        language in select(vec!["en-US", "en-GB", "es", "pt-BR", "zh-Hans-CN"]),
        provider in select(SpeechProvider::ALL.to_vec()),
        (model_pick, voice_pick) in (maybe_index(), maybe_index()),
        // The provider's own settings: an index into each choice list, or unset.
        (turn_pick, eager_pick, endpoint_pick) in (maybe_index(), maybe_index(), maybe_index()),
        temperature in proptest::option::of(0u8..=100),
        local_voice in "[a-z][a-z0-9+_-]{0,10}",
        documents in prop::collection::vec((single_line(30), free_text(200)), 0..4),
        rules in prop::collection::vec(single_line(50), 0..4),
        (turns, duration, attempts, idle) in (1u32..=1000, 301u32..=3_600, 1u32..=20, 3u32..=300),
        (recording, transcription) in (any::<bool>(), any::<bool>()),
        call in "\\+[1-9][0-9]{6,14}",
        transfer in maybe("\\+[1-9][0-9]{6,14}"),
        summary in maybe("\\+[1-9][0-9]{6,14}"),
        sid in "AC[0-9a-f]{32}",
        sip in maybe("sips?:[a-z]{1,8}@[a-z]{1,10}\\.example\\.com"),
        urls in prop::collection::vec(maybe("https://[a-z]{1,10}\\.example\\.com/[a-z0-9/_-]{0,20}(\\?a=[0-9]{1,3})?"), 4),
        region in select(vec!["us-east-1", "eu-west-2", "ap-southeast-4", "us-gov-west-1"]),
        cpu_architecture in select(agent_spec::config::CpuArchitecture::ALL.to_vec()),
        sizing in sizing(),
        token in "[A-Za-z0-9]{32}",
        openai in "[A-Za-z0-9_-]{20,60}",
        signing in maybe("[!-~]{32,64}"),
    ) -> AgentDraft {
        let mut secrets = SecretsDraft { twilio_auth_token: SecretPatch::set(token), ..Default::default() };
        if provider == SpeechProvider::OpenaiRealtime {
            secrets.openai_api_key = SecretPatch::set(openai);
        }
        if let Some(s) = signing {
            secrets.webhook_signing_secret = SecretPatch::set(s);
        }
        AgentDraft {
            name,
            description: description.unwrap_or_default(),
            system_prompt,
            greeting,
            voicemail_message,
            language: language.into(),
            voice: VoiceDraft {
                provider,
                // The provider's own models and voices (the default when none is picked).
                model: model_pick.map(|i| {
                    let models: &[&str] = match provider {
                        SpeechProvider::NovaSonic => &["amazon.nova-2-sonic-v1:0", "amazon.nova-sonic-v1:0"],
                        SpeechProvider::OpenaiRealtime => &["gpt-realtime", "gpt-realtime-2025-08-28", "gpt-4o-realtime-preview"],
                        SpeechProvider::Local => &["local-en-us"],
                    };
                    models[i % models.len()].to_owned()
                }),
                voice_id: voice_pick.map(|i| match provider.voices() {
                    Some(voices) => voices[i % voices.len()].to_owned(),
                    None => local_voice.clone(),
                }),
                turn_detection: turn_pick
                    .filter(|_| provider == SpeechProvider::OpenaiRealtime)
                    .map(|i| TurnDetection::ALL[i % TurnDetection::ALL.len()].as_str().to_owned()),
                eagerness: eager_pick
                    .filter(|_| provider == SpeechProvider::OpenaiRealtime && turn_pick.is_some_and(|i| TurnDetection::ALL[i % TurnDetection::ALL.len()] == TurnDetection::SemanticVad))
                    .map(|i| Eagerness::ALL[i % Eagerness::ALL.len()].as_str().to_owned()),
                endpointing_sensitivity: endpoint_pick
                    .filter(|_| provider == SpeechProvider::NovaSonic && model_pick.is_none_or(|i| i % 2 == 0))
                    .map(|i| EndpointingSensitivity::ALL[i % EndpointingSensitivity::ALL.len()].as_str().to_owned()),
                temperature: temperature.filter(|_| provider == SpeechProvider::NovaSonic).map(|t| f64::from(t) / 100.0),
            },
            knowledge_base: documents.into_iter().map(|(title, text)| KnowledgeDocumentDraft { title, text }).collect(),
            guardrails: GuardrailsDraft {
                custom_rules: rules,
                max_conversation_turns: turns,
                max_session_duration_secs: if provider == SpeechProvider::OpenaiRealtime {
                    duration.min(agent_spec::draft::limits::OPENAI_MAX_SESSION_SECS)
                } else {
                    duration
                },
                max_inappropriate_attempts: attempts,
            },
            idle_prompt_after_secs: idle,
            enable_recording: recording,
            enable_transcription: transcription,
            telephony: TelephonyDraft {
                transfer_phone_number: transfer.filter(|t| *t != call),
                call_phone_number: call,
                summary_phone_number: summary,
                twilio_account_sid: sid,
                sip_endpoint: sip,
                // Not in the environment: always the default there.
                configure_number: true,
            },
            integrations: IntegrationsDraft {
                webhook_endpoint: urls[0].clone(),
                transcript_webhook_url: urls[1].clone(),
                pickup_webhook_url: urls[2].clone(),
                make_endpoint: urls[3].clone(),
                aws_region: region.into(),
            },
            sizing: SizingDraft { cpu_architecture, ..sizing },
            secrets,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn env_round_trip_is_lossless(draft in draft()) {
        let (config, secrets) = draft.validate(None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let spec = AgentSpec { agent_id: AgentId::generate(), tenant_id: TenantId::generate(), config, secrets };
        let env = spec.to_env();

        // Secrets never travel as plain environment.
        for name in vars::SECRETS {
            prop_assert!(!env.vars.contains_key(name), "{} in plain env", name);
        }
        let all = env.merged();
        let back = AgentSpec::from_env(|k| all.get(k).cloned()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back.agent_id, &spec.agent_id);
        prop_assert_eq!(&back.tenant_id, &spec.tenant_id);
        prop_assert_eq!(&back.config, &spec.config);
        prop_assert!(back.secrets.same_values(&spec.secrets));
        // And the draft of a config validates back to the same config.
        let (again, _) = AgentDraft::from_config(&spec.config).validate(Some(&spec.secrets)).unwrap();
        prop_assert_eq!(again, spec.config);
    }
}

fn sample_env() -> BTreeMap<String, String> {
    let d = common::valid_draft();
    let (config, secrets) = d.validate(None).unwrap();
    AgentSpec { agent_id: AgentId::generate(), tenant_id: TenantId::generate(), config, secrets }.to_env().merged()
}

#[test]
fn from_env_names_every_missing_and_invalid_variable() {
    let mut env = sample_env();
    env.remove(vars::AGENT_NAME);
    env.remove(vars::TWILIO_AUTH_TOKEN);
    env.insert(vars::MAX_CONVERSATION_TURNS.into(), "many".into());
    env.insert(vars::CALL_PHONE_NUMBER.into(), "555-0100".into());
    env.insert(vars::AGENT_KNOWLEDGE_BASE.into(), "[{\"title\":1}]".into());
    env.insert(vars::ENABLE_RECORDING.into(), "yes".into());
    env.insert(vars::AGENT_ID.into(), "not-an-id".into());
    // The sample is a Nova Sonic agent: a temperature that is no number, and a setting
    // only OpenAI has.
    env.insert(vars::SPEECH_TEMPERATURE.into(), "warm".into());
    env.insert(vars::TURN_DETECTION.into(), "server_vad".into());

    let errors = AgentSpec::from_env(|k| env.get(k).cloned()).unwrap_err();
    let named: Vec<&str> = errors.0.iter().map(|e| e.var).collect();
    for var in [
        vars::AGENT_NAME,
        vars::TWILIO_AUTH_TOKEN,
        vars::MAX_CONVERSATION_TURNS,
        vars::CALL_PHONE_NUMBER,
        vars::AGENT_KNOWLEDGE_BASE,
        vars::ENABLE_RECORDING,
        vars::AGENT_ID,
        vars::SPEECH_TEMPERATURE,
        vars::TURN_DETECTION,
    ] {
        assert!(named.contains(&var), "{var} not named in {errors}");
    }
    assert_eq!(named.len(), 9, "{errors}");
    let message = errors.to_string();
    assert!(message.contains("MAX_CONVERSATION_TURNS must be a whole number"), "{message}");
    assert!(message.contains("AGENT_NAME is required"), "{message}");
    assert!(message.contains("SPEECH_TEMPERATURE must be a number"), "{message}");
    assert!(message.contains("TURN_DETECTION applies to openai-realtime only"), "{message}");
}

#[test]
fn from_env_refuses_an_unknown_spec_version() {
    let mut env = sample_env();
    env.insert(vars::AGENT_SPEC_VERSION.into(), "99".into());
    let errors = AgentSpec::from_env(|k| env.get(k).cloned()).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].var, vars::AGENT_SPEC_VERSION);
    env.remove(vars::AGENT_SPEC_VERSION);
    assert!(AgentSpec::from_env(|k| env.get(k).cloned()).is_err());
}

#[test]
fn from_env_ignores_unrelated_variables() {
    let mut env = sample_env();
    env.insert("PATH".into(), "/usr/bin".into());
    env.insert("HOSTNAME".into(), "ip-10-0-0-1".into());
    assert!(AgentSpec::from_env(|k| env.get(k).cloned()).is_ok());
}

/// Runtimes older than scaling require `AGENT_DESIRED_COUNT`: it is still written,
/// as the minimum, and an environment with only it (a task definition from before
/// scaling) reads back with its count as the minimum and the newer fields' defaults.
#[test]
fn the_pre_scaling_task_count_is_written_and_read() {
    let mut env = sample_env();
    assert_eq!(env.get(vars::AGENT_DESIRED_COUNT), env.get(vars::AGENT_MIN_TASKS));
    for var in
        [vars::AGENT_MIN_TASKS, vars::AGENT_MAX_TASKS, vars::AGENT_CALLS_PER_TASK, vars::AGENT_TARGET_CALLS_PER_TASK]
    {
        env.remove(var);
    }
    env.insert(vars::AGENT_DESIRED_COUNT.into(), "3".into());
    let sizing = AgentSpec::from_env(|k| env.get(k).cloned()).unwrap().config.sizing;
    assert_eq!(
        (sizing.min_tasks, sizing.max_tasks, sizing.calls_per_task, sizing.target_calls_per_task),
        (3, 6, 50, 35)
    );
}
