//! Validation table: each field's bad values are refused with an error that names
//! the field, and all problems are reported at once.

use crate::common;

use common::valid_draft;

use agent_spec::draft::{AgentDraft, KnowledgeDocumentDraft};
use agent_spec::secrets::SecretPatch;
use agent_spec::{AgentSecrets, SpeechProvider};
use secrecy::SecretString;

type Mutation = fn(&mut AgentDraft);

/// (what is wrong, how to make it wrong, the field that must be named, words the reason must contain)
const TABLE: &[(&str, Mutation, &str, &str)] = &[
    ("missing name", |d| d.name = "  ".into(), "name", "required"),
    ("long name", |d| d.name = "n".repeat(101), "name", "at most 100"),
    ("name with newline", |d| d.name = "a\nb".into(), "name", "single line"),
    ("long description", |d| d.description = "d".repeat(1001), "description", "at most 1000"),
    ("missing prompt", |d| d.system_prompt = String::new(), "system_prompt", "required"),
    ("prompt with NUL", |d| d.system_prompt = "a\0b".into(), "system_prompt", "control characters"),
    ("long prompt", |d| d.system_prompt = "p".repeat(16_001), "system_prompt", "at most 16000"),
    ("empty greeting", |d| d.greeting = String::new(), "greeting", "required"),
    ("bad language", |d| d.language = "english".into(), "language", "language tag"),
    ("bad model", |d| d.voice.model = Some("no spaces allowed".into()), "voice.model", "letters, digits"),
    ("bad voice", |d| d.voice.voice_id = Some("Tiffany!".into()), "voice.voice_id", "lowercase"),
    (
        "turn detection on nova",
        |d| d.voice.turn_detection = Some("server_vad".into()),
        "voice.turn_detection",
        "openai-realtime only",
    ),
    ("eagerness on nova", |d| d.voice.eagerness = Some("low".into()), "voice.eagerness", "openai-realtime only"),
    (
        "unknown sensitivity",
        |d| d.voice.endpointing_sensitivity = Some("fast".into()),
        "voice.endpointing_sensitivity",
        "high, medium or low",
    ),
    (
        "sensitivity on nova sonic v1",
        |d| {
            d.voice.model = Some("amazon.nova-sonic-v1:0".into());
            d.voice.endpointing_sensitivity = Some("high".into());
        },
        "voice.endpointing_sensitivity",
        "amazon.nova-2-sonic-v1:0",
    ),
    ("temperature above 1", |d| d.voice.temperature = Some(1.5), "voice.temperature", "from 0 to 1"),
    ("temperature too precise", |d| d.voice.temperature = Some(0.555), "voice.temperature", "two decimals"),
    (
        "empty document title",
        |d| d.knowledge_base = vec![KnowledgeDocumentDraft { title: String::new(), text: "x".into() }],
        "knowledge_base[0].title",
        "required",
    ),
    (
        "empty document text",
        |d| {
            d.knowledge_base = vec![
                KnowledgeDocumentDraft { title: "ok".into(), text: "ok".into() },
                KnowledgeDocumentDraft { title: "Hours".into(), text: " ".into() },
            ]
        },
        "knowledge_base[1].text",
        "required",
    ),
    (
        "too many documents",
        |d| d.knowledge_base = vec![KnowledgeDocumentDraft { title: "t".into(), text: "x".into() }; 101],
        "knowledge_base",
        "at most 100 documents",
    ),
    ("empty rule", |d| d.guardrails.custom_rules = vec!["".into()], "guardrails.custom_rules[0]", "required"),
    ("too many rules", |d| d.guardrails.custom_rules = vec!["r".into(); 51], "guardrails.custom_rules", "at most 50"),
    (
        "zero turns",
        |d| d.guardrails.max_conversation_turns = 0,
        "guardrails.max_conversation_turns",
        "between 1 and 1000",
    ),
    (
        "session too long",
        |d| d.guardrails.max_session_duration_secs = 20_000,
        "guardrails.max_session_duration_secs",
        "between 30 and 3600",
    ),
    (
        "session longer than a deploy can keep a call",
        |d| d.guardrails.max_session_duration_secs = 3_601,
        "guardrails.max_session_duration_secs",
        "deregistration delay",
    ),
    (
        "zero inappropriate attempts",
        |d| d.guardrails.max_inappropriate_attempts = 0,
        "guardrails.max_inappropriate_attempts",
        "between 1 and 20",
    ),
    ("idle too short", |d| d.idle_prompt_after_secs = 1, "idle_prompt_after_secs", "between 3 and 300"),
    ("missing phone", |d| d.telephony.call_phone_number = String::new(), "telephony.call_phone_number", "required"),
    ("local phone", |d| d.telephony.call_phone_number = "4155550100".into(), "telephony.call_phone_number", "E.164"),
    (
        "phone with spaces",
        |d| d.telephony.call_phone_number = "+1 415 555 0100".into(),
        "telephony.call_phone_number",
        "E.164",
    ),
    (
        "bad transfer",
        |d| d.telephony.transfer_phone_number = Some("+0".into()),
        "telephony.transfer_phone_number",
        "E.164",
    ),
    (
        "transfer to itself",
        |d| d.telephony.transfer_phone_number = Some("+14155550100".into()),
        "telephony.transfer_phone_number",
        "must differ",
    ),
    (
        "bad summary",
        |d| d.telephony.summary_phone_number = Some("call me".into()),
        "telephony.summary_phone_number",
        "E.164",
    ),
    ("missing sid", |d| d.telephony.twilio_account_sid = String::new(), "telephony.twilio_account_sid", "required"),
    (
        "short sid",
        |d| d.telephony.twilio_account_sid = "AC123".into(),
        "telephony.twilio_account_sid",
        "AC followed by 32",
    ),
    (
        "uppercase sid",
        |d| d.telephony.twilio_account_sid = "AC0123456789ABCDEF0123456789ABCDEF".into(),
        "telephony.twilio_account_sid",
        "lowercase hex",
    ),
    ("bad sip", |d| d.telephony.sip_endpoint = Some("pbx.example.com".into()), "telephony.sip_endpoint", "sip:"),
    (
        "http webhook",
        |d| d.integrations.webhook_endpoint = Some("http://x.example.com".into()),
        "integrations.webhook_endpoint",
        "https",
    ),
    (
        "relative transcript url",
        |d| d.integrations.transcript_webhook_url = Some("/hooks".into()),
        "integrations.transcript_webhook_url",
        "absolute https",
    ),
    (
        "credentials in pickup url",
        |d| d.integrations.pickup_webhook_url = Some("https://u:p@x.example.com".into()),
        "integrations.pickup_webhook_url",
        "username or password",
    ),
    (
        "ftp make endpoint",
        |d| d.integrations.make_endpoint = Some("ftp://x".into()),
        "integrations.make_endpoint",
        "https",
    ),
    ("bad region", |d| d.integrations.aws_region = "Virginia".into(), "integrations.aws_region", "region"),
    ("bad cpu", |d| d.sizing.cpu = 300, "sizing.cpu", "Fargate CPU"),
    ("bad memory", |d| d.sizing.memory_mib = 4096, "sizing.memory_mib", "512, 1024, 2048"),
    ("too many tasks", |d| d.sizing.min_tasks = 21, "sizing.min_tasks", "between 0 and 20"),
    ("too many tasks at most", |d| d.sizing.max_tasks = Some(21), "sizing.max_tasks", "between 0 and 20"),
    (
        "a maximum under the minimum",
        |d| (d.sizing.min_tasks, d.sizing.max_tasks) = (3, Some(2)),
        "sizing.max_tasks",
        "at least min_tasks (3)",
    ),
    ("no calls per task", |d| d.sizing.calls_per_task = 0, "sizing.calls_per_task", "between 1 and 1000"),
    (
        "a scaling agent's target at its limit, which live calls per task can never pass",
        |d| (d.sizing.calls_per_task, d.sizing.target_calls_per_task) = (10, Some(10)),
        "sizing.target_calls_per_task",
        "must be below calls_per_task (10)",
    ),
    (
        "both names of the minimum, disagreeing",
        |d| (d.sizing.min_tasks, d.sizing.desired_count) = (2, Some(3)),
        "sizing.desired_count",
        "not both",
    ),
    (
        "a target over the limit",
        |d| (d.sizing.calls_per_task, d.sizing.target_calls_per_task) = (10, Some(11)),
        "sizing.target_calls_per_task",
        "between 1 and calls_per_task (10)",
    ),
    (
        "missing auth token",
        |d| d.secrets.twilio_auth_token = SecretPatch::Keep,
        "secrets.twilio_auth_token",
        "required",
    ),
    (
        "removed auth token",
        |d| d.secrets.twilio_auth_token = SecretPatch::Clear,
        "secrets.twilio_auth_token",
        "cannot be removed",
    ),
    (
        "short auth token",
        |d| d.secrets.twilio_auth_token = SecretPatch::set("abc"),
        "secrets.twilio_auth_token",
        "32-character",
    ),
    (
        "openai without key",
        |d| d.voice.provider = SpeechProvider::OpenaiRealtime,
        "secrets.openai_api_key",
        "required when voice.provider is openai-realtime",
    ),
    (
        "key with spaces",
        |d| d.secrets.openai_api_key = SecretPatch::set("has spaces in it and more"),
        "secrets.openai_api_key",
        "without spaces",
    ),
    (
        "short signing secret",
        |d| d.secrets.webhook_signing_secret = SecretPatch::set("short"),
        "secrets.webhook_signing_secret",
        "32 to 256",
    ),
];

#[test]
fn the_valid_draft_is_valid() {
    let (config, secrets) = valid_draft().validate(None).expect("valid draft");
    assert_eq!(config.voice.model.as_str(), "amazon.nova-2-sonic-v1:0");
    assert_eq!(config.voice.voice_id.as_str(), "tiffany");
    assert!(secrets.openai_api_key.is_none());
}

#[test]
fn each_provider_gets_its_own_settings_filled_and_refuses_the_others() {
    use agent_spec::config::{Eagerness, EndpointingSensitivity, TurnDetection};
    // Nova 2 Sonic: endpointing and temperature, with their defaults.
    let (config, _) = valid_draft().validate(None).unwrap();
    assert_eq!(config.voice.endpointing_sensitivity, Some(EndpointingSensitivity::Medium));
    assert_eq!(config.voice.temperature.map(|t| t.value()), Some(0.7));
    assert_eq!((config.voice.turn_detection, config.voice.eagerness), (None, None));
    // Nova Sonic v1 has no endpointing setting.
    let mut v1 = valid_draft();
    v1.voice.model = Some("amazon.nova-sonic-v1:0".into());
    assert_eq!(v1.validate(None).unwrap().0.voice.endpointing_sensitivity, None);
    // OpenAI: server_vad by default; eagerness only with semantic_vad.
    let mut openai = valid_draft();
    openai.voice.provider = SpeechProvider::OpenaiRealtime;
    openai.voice.voice_id = Some("alloy".into());
    openai.secrets.openai_api_key = SecretPatch::set("sk-test-0123456789abcdef");
    let (config, _) = openai.validate(None).unwrap();
    assert_eq!((config.voice.turn_detection, config.voice.eagerness), (Some(TurnDetection::ServerVad), None));
    assert_eq!((config.voice.endpointing_sensitivity, config.voice.temperature), (None, None));
    openai.voice.turn_detection = Some("semantic_vad".into());
    assert_eq!(openai.validate(None).unwrap().0.voice.eagerness, Some(Eagerness::Auto));
    openai.voice.eagerness = Some("high".into());
    assert_eq!(openai.validate(None).unwrap().0.voice.eagerness, Some(Eagerness::High));
    openai.voice.turn_detection = Some("server_vad".into());
    let errors = openai.validate(None).unwrap_err();
    assert!(errors.reason_for("voice.eagerness").unwrap().contains("semantic_vad"), "{errors}");
    openai.voice.eagerness = None;
    openai.voice.temperature = Some(0.5);
    let errors = openai.validate(None).unwrap_err();
    assert!(errors.reason_for("voice.temperature").unwrap().contains("takes no temperature"), "{errors}");
}

#[test]
fn surrounding_spaces_are_trimmed_and_count_against_the_limit() {
    // The limit counts what was sent, as the document's maxLength does.
    let mut draft = valid_draft();
    draft.name = format!("  {}  ", "n".repeat(96));
    let (config, _) = draft.validate(None).expect("96 characters plus padding fit");
    assert_eq!(config.name, "n".repeat(96));
    draft.name = format!("  {}  ", "n".repeat(100));
    let errors = draft.validate(None).unwrap_err();
    assert!(errors.reason_for("name").is_some_and(|r| r.contains("at most 100")), "{errors}");
}

#[test]
fn each_bad_value_is_named_with_its_reason() {
    for (what, mutate, field, words) in TABLE {
        let mut draft = valid_draft();
        mutate(&mut draft);
        let errors = match draft.validate(None) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        let reason = errors.reason_for(field).unwrap_or_else(|| panic!("{what}: no error for {field}; got {errors}"));
        assert!(reason.contains(words), "{what}: reason for {field} was {reason:?}, expected it to mention {words:?}");
        assert_eq!(errors.fields().len(), 1, "{what}: only {field} is wrong, got {errors}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut draft = valid_draft();
    for (_, mutate, _, _) in TABLE.iter().filter(|(what, ..)| {
        ["missing name", "local phone", "bad region", "bad cpu", "http webhook", "missing auth token"].contains(what)
    }) {
        mutate(&mut draft);
    }
    let errors = draft.validate(None).unwrap_err();
    let fields: Vec<&str> = errors.fields().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "telephony.call_phone_number",
            "integrations.webhook_endpoint",
            "integrations.aws_region",
            "sizing.cpu",
            "secrets.twilio_auth_token"
        ]
    );
}

#[test]
fn secrets_are_kept_replaced_or_removed_on_update() {
    let existing = AgentSecrets {
        twilio_auth_token: SecretString::from("0123456789abcdef0123456789abcdef"),
        openai_api_key: None,
        webhook_signing_secret: Some(SecretString::from("s".repeat(40))),
        webhook_urls: Default::default(),
    };
    let mut draft = valid_draft();
    draft.secrets.twilio_auth_token = SecretPatch::Keep;
    let (_, kept) = draft.validate(Some(&existing)).unwrap();
    assert!(kept.same_values(&existing));

    draft.secrets.webhook_signing_secret = SecretPatch::Clear;
    draft.secrets.twilio_auth_token = SecretPatch::set("ffffffffffffffffffffffffffffffff");
    let (_, changed) = draft.validate(Some(&existing)).unwrap();
    assert!(changed.webhook_signing_secret.is_none());
    assert!(!changed.same_values(&existing));
}

#[test]
fn secret_values_never_appear_in_errors_or_debug() {
    let token = "SECRETSECRETSECRETSECRETSECRET99";
    let mut draft = valid_draft();
    draft.secrets.twilio_auth_token = SecretPatch::set(token);
    draft.secrets.openai_api_key = SecretPatch::set("bad key SECRETSECRET");
    assert!(!format!("{draft:?}").contains("SECRET"));
    let errors = draft.validate(None).unwrap_err();
    assert!(!errors.to_string().contains("SECRET"));
    draft.secrets.openai_api_key = SecretPatch::Keep;
    let (_, secrets) = draft.validate(None).unwrap();
    assert!(!format!("{secrets:?}").contains("SECRET"));
}

#[test]
fn json_body_missing_everything_names_every_required_field() {
    let draft: AgentDraft = serde_json::from_str("{}").unwrap();
    let errors = draft.validate(None).unwrap_err();
    let fields: Vec<&str> = errors.fields().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "system_prompt",
            "telephony.call_phone_number",
            "telephony.twilio_account_sid",
            "secrets.twilio_auth_token"
        ]
    );
}

#[test]
fn unknown_fields_are_refused() {
    let err = serde_json::from_str::<AgentDraft>(r#"{"name":"x","nmae":"y"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    let err = serde_json::from_str::<AgentDraft>(r#"{"telephony":{"phone":"+1"}}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `phone`"), "{err}");
}

#[test]
fn webhook_urls_that_are_credentials_are_sealed_shown_redacted_and_kept_when_sent_back() {
    use secrecy::ExposeSecret;
    let make = "https://hook.eu1.make.com/k3y0fth3scenario";
    let tokened = "https://hooks.example.com/calls?token=t0k3n";
    let mut draft = valid_draft();
    draft.integrations.make_endpoint = Some(make.into());
    draft.integrations.transcript_webhook_url = Some(tokened.into());
    draft.integrations.pickup_webhook_url = Some("https://hooks.example.com/pickup".into());
    let (config, secrets) = draft.validate(None).unwrap();
    let shown = |u: &Option<agent_spec::values::HttpsUrl>| u.as_ref().map(|u| u.as_str().to_owned());
    assert_eq!(shown(&config.integrations.make_endpoint).as_deref(), Some("https://hook.eu1.make.com/…"));
    assert_eq!(shown(&config.integrations.transcript_webhook_url).as_deref(), Some("https://hooks.example.com/…"));
    assert_eq!(
        shown(&config.integrations.pickup_webhook_url).as_deref(),
        Some("https://hooks.example.com/pickup"),
        "a URL that carries no credential stays in the config"
    );
    assert_eq!(secrets.webhook_urls["integrations.make_endpoint"].expose_secret(), make);
    assert!(!serde_json::to_string(&config).unwrap().contains("k3y0f"), "the stored config holds no credential");
    assert!(!format!("{secrets:?}").contains("k3y0f"), "nor does Debug");
    let real = secrets.with_webhook_urls(&config);
    assert_eq!(shown(&real.integrations.transcript_webhook_url).as_deref(), Some(tokened));

    // To the runtime: the URL travels as a secret, and reads back whole.
    let spec = agent_spec::AgentSpec {
        agent_id: agent_spec::AgentId::generate(),
        tenant_id: agent_spec::TenantId::generate(),
        config: config.clone(),
        secrets: secrets.clone(),
    };
    let env = spec.to_env();
    assert!(!env.vars.contains_key("MAKE_ENDPOINT") && env.secrets.contains_key("MAKE_ENDPOINT"));
    assert!(!env.vars.values().any(|v| v.contains("k3y0f") || v.contains("t0k3n")));
    let merged = env.merged();
    let back = agent_spec::AgentSpec::from_env(|k| merged.get(k).cloned()).unwrap();
    assert_eq!(back.config, config);
    assert!(back.secrets.same_values(&secrets));

    // An update that sends the redacted form back keeps the URL; a new one replaces it.
    let mut update = agent_spec::draft::AgentDraft::from_config(&config);
    update.secrets.twilio_auth_token = SecretPatch::Keep;
    let (_, kept) = update.validate(Some(&secrets)).unwrap();
    assert!(kept.same_values(&secrets));
    update.integrations.make_endpoint = Some("https://hook.eu1.make.com/an0th3r".into());
    let (_, replaced) = update.validate(Some(&secrets)).unwrap();
    assert_eq!(
        replaced.webhook_urls["integrations.make_endpoint"].expose_secret(),
        "https://hook.eu1.make.com/an0th3r"
    );
    update.integrations.make_endpoint = None;
    let (_, removed) = update.validate(Some(&secrets)).unwrap();
    assert!(!removed.webhook_urls.contains_key("integrations.make_endpoint"));
}

/// Configs stored before scaling existed say `desired_count`: read as the minimum,
/// they keep the fixed size they were deployed with; a request that still says
/// `desired_count` gets the defaults for the rest.
#[test]
fn sizing_written_before_scaling_keeps_its_fixed_size() {
    let stored: agent_spec::config::Sizing =
        serde_json::from_str(r#"{"cpu": 512, "memory_mib": 1024, "desired_count": 3}"#).unwrap();
    assert_eq!(
        (stored.min_tasks, stored.max_tasks, stored.calls_per_task, stored.target_calls_per_task),
        (3, 3, 50, 35)
    );
    assert!(!stored.scales());

    // An old client's fixed count stays fixed.
    let draft: agent_spec::draft::SizingDraft = serde_json::from_str(r#"{"desired_count": 3}"#).unwrap();
    let mut d = valid_draft();
    d.sizing = draft;
    let (config, _) = d.validate(None).unwrap();
    assert_eq!((config.sizing.min_tasks, config.sizing.max_tasks, config.sizing.target_calls_per_task), (3, 3, 35));
    assert!(!config.sizing.scales());
    // With a maximum, it scales from that minimum.
    d.sizing.max_tasks = Some(6);
    let (config, _) = d.validate(None).unwrap();
    assert_eq!((config.sizing.min_tasks, config.sizing.max_tasks), (3, 6));
    assert!(config.sizing.scales());

    // Written back, a config has the new names and reads back the same.
    let json = serde_json::to_value(config.sizing).unwrap();
    assert!(json.get("desired_count").is_none() && json["max_tasks"] == 6, "{json}");
    assert_eq!(serde_json::from_value::<agent_spec::config::Sizing>(json).unwrap(), config.sizing);

    // Paused: no scaling, whatever the maximum.
    (d.sizing.desired_count, d.sizing.min_tasks) = (None, 0);
    assert!(!d.validate(None).unwrap().0.sizing.scales());
}
