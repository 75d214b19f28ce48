//! The rules [`AgentDraft::validate`](crate::AgentDraft::validate) applies, written
//! into the draft's OpenAPI schema, so that what the document calls valid the API
//! accepts, and what it calls invalid the API refuses. The derived schema only knows
//! the Rust types (a `String`, a `u32`); this adds what validation knows: required
//! fields, lengths, patterns, the values each speech provider takes, the Fargate
//! sizes, and the secrets a new agent needs.
//!
//! Patterns are written for ECMA-262 (JSON Schema's dialect) and allow the
//! whitespace that validation trims (Rust's `str::trim`, Unicode `White_Space`)
//! around each value. Tests in `draft.rs` check each pattern against the validator.
//!
//! What a schema cannot say, the field descriptions do: a transfer number equal to
//! the agent's own number, and the 64 KiB budget of the agent's container
//! environment, are refused with 422 naming the field.

use serde_json::{Map, Value, json};

use crate::config::{FARGATE_SIZES, SpeechProvider};
use crate::draft::limits;

/// Whitespace as `str::trim` removes it (Unicode `White_Space`).
pub const WS: &str = r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// A character of one-line text: anything but a control character (Unicode `Cc`).
const LINE_CHAR: &str = r"[^\x00-\x1f\x7f-\x9f]";
/// A character of multi-line text: also newlines and tabs.
const TEXT_CHAR: &str = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]";
/// A character that is neither whitespace nor a control character.
const VISIBLE_CHAR: &str = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// E.164 without the whitespace around it.
pub const E164: &str = r"\+[1-9][0-9]{6,14}";
pub const TWILIO_ACCOUNT_SID: &str = "AC[0-9a-f]{32}";
pub const AWS_REGION: &str = "[a-z]{2}(?:-[a-z]+){1,2}-[0-9]{1,2}";
pub const LANGUAGE_TAG: &str = "[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?";
pub const VOICE_ID: &str = "[a-z][a-z0-9_+-]{0,63}";
pub const MODEL_ID: &str = "[A-Za-z0-9._:/-]{1,128}";
pub const SIP_URI: &str =
    r"sips?:(?:[^\x00-\x20\x7f]+@)?(?:[A-Za-z0-9.\-\[\]]+|[A-Za-z0-9.\-\[\]:]+:[0-9]+)(?:[;?][^\x00-\x20\x7f@]*)?";

/// A DNS host name: labels of letters and digits joined by single hyphens (so no
/// IDNA `xn--` label), the last one starting with a letter (so never an address).
const HOST_NAME: &str = "(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*";
const PORT: &str = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
const URL_CHAR: &str = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})";

/// A webhook URL as the API takes it: `https://`, a host name, an optional port,
/// then a path, query and fragment of URL characters (others percent-encoded), or
/// `/…`: the redacted form the API shows of a secret URL, which sent back keeps it.
pub fn webhook_url() -> String {
    let q = format!("(?:{URL_CHAR}|\\?)");
    format!("https://{HOST_NAME}(?::{PORT})?(?:/…|(?:/{URL_CHAR}*)?(?:\\?{q}*)?(?:#{q}*)?)")
}

/// A webhook host that is this machine (refused: see `net::inward_host`).
fn localhost_url() -> String {
    format!("^{WS}*https://(?:[^/?#:]*\\.)?[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt](?:[:/?#]|{WS}*$)")
}

/// `core` with optional whitespace around it; blank too when not `required`.
pub fn trimmed(core: &str, required: bool) -> String {
    match (core, required) {
        ("", _) => format!("^{WS}*$"),
        (_, true) => format!("^{WS}*(?:{core}){WS}*$"),
        (_, false) => format!("^{WS}*(?:{core})?{WS}*$"),
    }
}

/// Free text as validation takes it: trimmed, then not blank when `required`, and
/// without control characters (newlines and tabs allowed when `multiline`).
pub fn text(required: bool, multiline: bool) -> String {
    let body = if multiline { TEXT_CHAR } else { LINE_CHAR };
    let core = format!("{VISIBLE_CHAR}(?:{body}*{VISIBLE_CHAR})?");
    trimmed(&core, required)
}

/// One of `names`, exactly.
fn one_of(names: &[&str]) -> String {
    let escaped: Vec<String> = names.iter().map(|n| n.replace('.', "\\.")).collect();
    escaped.join("|")
}

/// One of `names`, any ASCII case (as validation lower-cases them).
fn one_of_any_case(names: &[&str]) -> String {
    let spelled: Vec<String> = names
        .iter()
        .map(|n| n.chars().map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())).collect())
        .collect();
    spelled.join("|")
}

fn string(pattern: String) -> Value {
    json!({ "type": "string", "pattern": pattern })
}

fn optional_string(pattern: String) -> Value {
    json!({ "type": ["string", "null"], "pattern": pattern })
}

fn text_field(required: bool, multiline: bool, max: usize) -> Value {
    json!({ "type": "string", "pattern": text(required, multiline), "maxLength": max })
}

/// Sets `schema.properties.name` to `rule`, keeping its description and default.
fn set(schema: &mut Value, name: &str, rule: Value) {
    let field = &mut schema["properties"][name];
    let mut merged = rule;
    for key in ["description", "default"] {
        if let Some(v) = field.get(key).cloned() {
            merged[key] = v;
        }
    }
    *field = merged;
}

fn describe(schema: &mut Value, name: &str, text: &str) {
    schema["properties"][name]["description"] = Value::from(text);
}

/// Writes the rules into the schemas of `AgentDraft` and its parts, adds
/// `NewAgentDraft` (the same with the secrets a new agent needs), and gives tenant
/// names and key labels their rules.
pub fn document_rules(schemas: &mut Map<String, Value>) {
    use limits::*;
    if let Some(tenant) = schemas.get_mut("CreateTenantRequest") {
        set(tenant, "name", text_field(true, false, crate::api::LABEL_MAX));
    }
    if let Some(key) = schemas.get_mut("IssueApiKeyRequest") {
        set(key, "label", text_field(false, false, crate::api::LABEL_MAX));
    }
    if let Some(call) = schemas.get_mut("PlaceCallRequest") {
        set(call, "to", string(trimmed(E164, true)));
        set(call, "from", optional_string(trimmed(E164, false)));
        describe(
            call,
            "to",
            "E.164, not the agent's own number (a rule between the request and the agent: refused with 422).",
        );
    }
    if let Some(draft) = schemas.get_mut("AgentDraft") {
        set(draft, "name", text_field(true, false, NAME_MAX));
        set(draft, "description", text_field(false, true, DESCRIPTION_MAX));
        set(draft, "system_prompt", text_field(true, true, SYSTEM_PROMPT_MAX));
        set(draft, "greeting", text_field(true, false, GREETING_MAX));
        set(draft, "voicemail_message", text_field(true, false, VOICEMAIL_MESSAGE_MAX));
        set(draft, "language", string(trimmed(LANGUAGE_TAG, true)));
        for required in ["name", "system_prompt"] {
            draft["properties"][required].as_object_mut().map(|p| p.remove("default"));
        }
        draft["properties"]["telephony"].as_object_mut().map(|p| p.remove("default"));
        draft["required"] = json!(["name", "system_prompt", "telephony"]);
        draft["properties"]["knowledge_base"]["maxItems"] = json!(KNOWLEDGE_DOCUMENTS_MAX);
        describe(
            draft,
            "knowledge_base",
            "Documents the agent answers from. Their bytes count against the tenant's knowledge-base quota \
             (422 `quota_exceeded` over it).",
        );
        draft["description"] = Value::from(
            "The body of `PUT /v1/agents/{id}` (and, with its secrets, of `POST /v1/agents`). Two rules are not \
             in this schema and are answered 422 naming the field: `telephony.transfer_phone_number` must \
             differ from `telephony.call_phone_number`, and the agent's container environment (its texts, \
             encoded) must fit the 64 KiB an ECS task definition allows; with `openai-realtime` an update that \
             omits `secrets.openai_api_key` needs one already stored.",
        );
        // OpenAI ends a Realtime session after 60 minutes; its key cannot be removed.
        draft["allOf"] = json!([{
            "if": openai_voice(),
            "then": { "properties": {
                "guardrails": { "properties": {
                    "max_session_duration_secs": { "maximum": OPENAI_MAX_SESSION_SECS }
                } },
                "secrets": { "properties": { "openai_api_key": { "type": "string" } } },
            } },
        }]);
    }
    if let Some(voice) = schemas.get_mut("VoiceDraft") {
        voice["oneOf"] = voice_branches();
        voice["description"] = Value::from(
            "The speech provider and its own settings: each provider takes its models and voices, and only \
             its own settings (another provider's must be left out, null or blank).",
        );
    }
    if let Some(doc) = schemas.get_mut("KnowledgeDocumentDraft") {
        set(doc, "title", text_field(true, false, KNOWLEDGE_TITLE_MAX));
        set(doc, "text", text_field(true, true, KNOWLEDGE_TEXT_MAX));
        for required in ["title", "text"] {
            doc["properties"][required].as_object_mut().map(|p| p.remove("default"));
        }
        doc["required"] = json!(["title", "text"]);
    }
    if let Some(guardrails) = schemas.get_mut("GuardrailsDraft") {
        let rules = &mut guardrails["properties"]["custom_rules"];
        rules["maxItems"] = json!(CUSTOM_RULES_MAX);
        rules["items"] = text_field(true, false, CUSTOM_RULE_MAX);
    }
    if let Some(telephony) = schemas.get_mut("TelephonyDraft") {
        set(telephony, "call_phone_number", string(trimmed(E164, true)));
        set(telephony, "transfer_phone_number", optional_string(trimmed(E164, false)));
        set(telephony, "summary_phone_number", optional_string(trimmed(E164, false)));
        set(telephony, "twilio_account_sid", string(trimmed(TWILIO_ACCOUNT_SID, true)));
        let mut sip = optional_string(trimmed(SIP_URI, false));
        sip["maxLength"] = json!(SIP_URI_MAX);
        set(telephony, "sip_endpoint", sip);
        for required in ["call_phone_number", "twilio_account_sid"] {
            telephony["properties"][required].as_object_mut().map(|p| p.remove("default"));
        }
        telephony["required"] = json!(["call_phone_number", "twilio_account_sid"]);
        describe(telephony, "transfer_phone_number", "E.164; must differ from `call_phone_number`.");
    }
    if let Some(integrations) = schemas.get_mut("IntegrationsDraft") {
        for name in ["webhook_endpoint", "transcript_webhook_url", "pickup_webhook_url", "make_endpoint"] {
            let rule = json!({
                "type": ["string", "null"],
                "maxLength": WEBHOOK_URL_MAX,
                "pattern": trimmed(&webhook_url(), false),
                "not": { "type": "string", "pattern": localhost_url() },
            });
            set(integrations, name, rule);
            let text = "An https:// URL with a DNS host name on the public internet (not an address, not localhost), \
                        an optional port, and a path, query and fragment of URL characters (others \
                        percent-encoded). A URL with a query or fragment, or a Make.com one, is kept as a secret and \
                        shown redacted (`https://host/…`); sending the redacted form back keeps it.";
            describe(integrations, name, text);
        }
        set(integrations, "aws_region", string(trimmed(AWS_REGION, true)));
    }
    if let Some(sizing) = schemas.get_mut("SizingDraft") {
        sizing["properties"]["min_tasks"]["maximum"] = json!(MIN_TASKS.end());
        sizing["properties"]["max_tasks"]["maximum"] = json!(MAX_TASKS.end());
        sizing["properties"]["calls_per_task"]["minimum"] = json!(CALLS_PER_TASK.start());
        sizing["properties"]["calls_per_task"]["maximum"] = json!(CALLS_PER_TASK.end());
        sizing["properties"]["target_calls_per_task"]["minimum"] = json!(1);
        sizing["properties"]["target_calls_per_task"]["maximum"] = json!(CALLS_PER_TASK.end());
        sizing["properties"]["cpu"]["enum"] = FARGATE_SIZES.iter().map(|(cpu, _)| json!(cpu)).collect();
        // Each CPU size takes its own memory sizes; 256 CPU units (the default) also
        // takes the default memory.
        let branches: Vec<Value> = FARGATE_SIZES
            .iter()
            .map(|(cpu, memory)| {
                let mut branch = json!({ "properties": {
                    "cpu": { "const": cpu },
                    "memory_mib": { "enum": memory },
                } });
                if *cpu != 256 {
                    branch["required"] = json!(["cpu", "memory_mib"]);
                }
                branch
            })
            .collect();
        sizing["oneOf"] = Value::Array(branches);
    }
    if let Some(secrets) = schemas.get_mut("SecretsDraft") {
        // Write-only like every secret (`SecretPatch`), with the form each takes.
        let secret = |rule: Value| json!({ "allOf": [{ "$ref": "#/components/schemas/SecretPatch" }, rule] });
        let token = json!({ "type": "string", "minLength": 32, "maxLength": 32, "pattern": "^[A-Za-z0-9]{32}$" });
        set(secrets, "twilio_auth_token", secret(token));
        let key = json!({ "type": ["string", "null"], "minLength": 20, "maxLength": 512, "pattern": "^[!-~]*$" });
        set(secrets, "openai_api_key", secret(key));
        let signing = json!({ "type": ["string", "null"], "minLength": 32, "maxLength": 256, "pattern": "^[!-~]*$" });
        set(secrets, "webhook_signing_secret", secret(signing));
    }
    if let Some(draft) = schemas.get("AgentDraft").cloned() {
        let mut new = draft;
        new["description"] = Value::from(
            "The body of `POST /v1/agents`: an `AgentDraft` with the Twilio auth token, and the OpenAI API key \
             when the voice is `openai-realtime`.",
        );
        new["required"] = json!(["name", "system_prompt", "telephony", "secrets"]);
        new["properties"]["secrets"] = json!({
            "allOf": [{ "$ref": "#/components/schemas/SecretsDraft" }],
            "required": ["twilio_auth_token"],
        });
        new["properties"]["secrets"].as_object_mut().map(|p| p.remove("default"));
        new["allOf"].as_array_mut().expect("AgentDraft has allOf").push(json!({
            "if": openai_voice(),
            "then": { "properties": { "secrets": {
                "required": ["openai_api_key"],
                "properties": { "openai_api_key": { "type": "string" } },
            } } },
        }));
        schemas.insert("NewAgentDraft".into(), new);
    }
}

/// A draft whose voice is OpenAI Realtime.
fn openai_voice() -> Value {
    json!({
        "required": ["voice"],
        "properties": { "voice": {
            "required": ["provider"],
            "properties": { "provider": { "const": SpeechProvider::OpenaiRealtime.as_str() } },
        } },
    })
}

/// One branch per provider (and Nova Sonic per model: only Nova 2 Sonic takes an
/// endpointing sensitivity).
fn voice_branches() -> Value {
    let blank = || optional_string(trimmed("", false));
    let provider = |p: SpeechProvider| json!({ "const": p.as_str() });
    let voices = |p: SpeechProvider| match p.voices() {
        Some(names) => optional_string(trimmed(&one_of(names), false)),
        None => optional_string(trimmed(VOICE_ID, false)),
    };
    let temperature = json!({
        "type": ["number", "null"],
        "enum": std::iter::once(Value::Null)
            .chain((0..=100).map(|h| json!(f64::from(h) / 100.0)))
            .collect::<Vec<_>>(),
    });
    let nova = SpeechProvider::NovaSonic;
    let nova2 = json!({
        // Nova Sonic is the default provider, and Nova 2 Sonic its default model.
        "properties": {
            "provider": provider(nova),
            "model": optional_string(trimmed(&one_of(&["amazon.nova-2-sonic-v1:0"]), false)),
            "voice_id": voices(nova),
            "turn_detection": blank(),
            "eagerness": blank(),
            "endpointing_sensitivity": optional_string(trimmed(&one_of_any_case(&["high", "medium", "low"]), false)),
            "temperature": temperature,
        },
    });
    let nova1 = json!({
        "required": ["model"],
        "properties": {
            "provider": provider(nova),
            "model": string(trimmed(&one_of(&["amazon.nova-sonic-v1:0"]), true)),
            "voice_id": voices(nova),
            "turn_detection": blank(),
            "eagerness": blank(),
            "endpointing_sensitivity": blank(),
            "temperature": temperature,
        },
    });
    let openai = SpeechProvider::OpenaiRealtime;
    // A model of one of OpenAI's Realtime families, dated or not, within 128
    // characters.
    let families = ["gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"];
    let models: Vec<String> = families
        .iter()
        .map(|f| format!("{}(?:-[A-Za-z0-9._:/-]{{0,{}}})?", f.replace('.', "\\."), 128 - f.len() - 1))
        .collect();
    let semantic = "semantic_vad";
    let openai_server_vad = json!({
        "required": ["provider"],
        "properties": {
            "provider": provider(openai),
            "model": optional_string(trimmed(&models.join("|"), false)),
            "voice_id": voices(openai),
            "turn_detection": optional_string(trimmed("server_vad", false)),
            "eagerness": blank(),
            "endpointing_sensitivity": blank(),
            "temperature": { "type": "null" },
        },
    });
    let openai_semantic_vad = json!({
        "required": ["provider", "turn_detection"],
        "properties": {
            "provider": provider(openai),
            "model": optional_string(trimmed(&models.join("|"), false)),
            "voice_id": voices(openai),
            "turn_detection": string(trimmed(semantic, true)),
            "eagerness": optional_string(trimmed(&one_of(&["low", "medium", "high", "auto"]), false)),
            "endpointing_sensitivity": blank(),
            "temperature": { "type": "null" },
        },
    });
    let local = SpeechProvider::Local;
    let local = json!({
        "required": ["provider"],
        "properties": {
            "provider": provider(local),
            "model": optional_string(trimmed(&one_of(&[local.default_model()]), false)),
            "voice_id": voices(local),
            "turn_detection": blank(),
            "eagerness": blank(),
            "endpointing_sensitivity": blank(),
            "temperature": { "type": "null" },
        },
    });
    json!([nova2, nova1, openai_server_vad, openai_semantic_vad, local])
}

#[cfg(test)]
mod tests {
    //! Each pattern against the validator it documents: the same verdict on strings
    //! made of the characters that decide it (whitespace of every kind, control
    //! characters, the pattern's own alphabet).
    use proptest::prelude::*;
    use regex_lite::Regex;

    use super::*;
    use crate::values::{AwsRegion, E164, HttpsUrl, LanguageTag, ModelId, SipUri, TwilioAccountSid, VoiceId};

    /// A pattern and the validator it documents.
    type Check = (&'static str, fn(&str) -> bool);

    fn regex(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// Strings over `alphabet` plus whitespace and control characters.
    fn strings(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
        let tricky = [
            ' ', '\t', '\n', '\r', '\x0b', '\x00', '\x1f', '\x7f', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}',
            '\u{feff}', 'é',
        ];
        let chars: Vec<char> = alphabet.chars().chain(tricky).collect();
        proptest::collection::vec(proptest::sample::select(chars), 0..max).prop_map(|c| c.into_iter().collect())
    }

    fn agree(pattern: &str, valid: impl Fn(&str) -> bool, samples: &[&str]) {
        let re = regex(pattern);
        for s in samples {
            assert_eq!(re.is_match(s), valid(s), "{s:?} against {pattern}");
        }
    }

    fn text_valid(s: &str, required: bool, multiline: bool) -> bool {
        crate::values::check_text(s.trim(), required, usize::MAX, multiline).is_ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn text_patterns_agree_with_validation(s in strings("ab .", 8)) {
            for (required, multiline) in [(true, false), (false, false), (true, true), (false, true)] {
                prop_assert_eq!(regex(&text(required, multiline)).is_match(&s), text_valid(&s, required, multiline), "{:?} required={} multiline={}", s, required, multiline);
            }
        }

        #[test]
        fn value_patterns_agree_with_their_types(s in strings("+0123456789ACacfz-US", 20)) {
            let cases: [Check; 4] = [
                (E164, |s| E164::parse(s).is_ok()),
                (TWILIO_ACCOUNT_SID, |s| TwilioAccountSid::parse(s).is_ok()),
                (AWS_REGION, |s| AwsRegion::parse(s).is_ok()),
                (LANGUAGE_TAG, |s| LanguageTag::parse(s).is_ok()),
            ];
            for (core, valid) in cases {
                prop_assert_eq!(regex(&trimmed(core, true)).is_match(&s), valid(&s), "{:?} against {}", s, core);
            }
        }

        #[test]
        fn identifier_patterns_agree_with_their_types(s in strings("az09_+-.:/A", 12)) {
            prop_assert_eq!(regex(&trimmed(VOICE_ID, true)).is_match(&s), VoiceId::parse(&s).is_ok(), "{:?}", s);
            prop_assert_eq!(regex(&trimmed(MODEL_ID, true)).is_match(&s), ModelId::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn the_sip_pattern_agrees_with_sip_uri(s in strings("sip:@[]a1.;?=-", 16)) {
            prop_assert_eq!(regex(&trimmed(SIP_URI, true)).is_match(&s), SipUri::parse(&s).is_ok(), "{:?}", s);
        }

        /// Everything the webhook pattern admits is an https URL with a public host
        /// name, unless it is localhost (which the document's `not` refuses).
        #[test]
        fn every_url_the_pattern_admits_is_a_public_https_url(
            // The pattern with its repetitions bounded (a part of the same language),
            // so that the URLs are short enough to vary.
            url in proptest::string::string_regex(&webhook_url().replace('*', "{0,6}").replace('+', "{1,6}")).unwrap()
        ) {
            let parsed = HttpsUrl::parse(&url);
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", url, parsed);
            let parsed = parsed.unwrap().url();
            prop_assert!(matches!(parsed.host(), Some(url::Host::Domain(_))), "{:?}", url);
            let inward = crate::net::inward_host(&parsed);
            prop_assert_eq!(inward.is_some(), regex(&localhost_url()).is_match(&url), "{:?}", url);
        }
    }

    #[test]
    fn hand_picked_values() {
        agree(
            &trimmed(E164, true),
            |s| E164::parse(s).is_ok(),
            &["+14155550123", " +14155550123\n", "+0123456", "+1", "14155550123"],
        );
        agree(
            &trimmed(SIP_URI, true),
            |s| SipUri::parse(s).is_ok(),
            &[
                "sip:frontdesk@pbx.example.com",
                "sips:a@b@host:5060;transport=tls",
                "sip:[::1]:5060",
                "sip:[::1]",
                "sip:@host",
                "sip:user@",
                "sip:host?x=1",
                "sip:ho st",
            ],
        );
        let url = regex(&trimmed(&webhook_url(), false));
        for ok in [
            "",
            "https://hooks.example.com/x?y=1#z",
            "https://a-b.example:8443/",
            "https://hook.eu1.make.com/…",
            " https://x.io ",
        ] {
            assert!(url.is_match(ok), "{ok:?}");
        }
        for bad in [
            "http://x.io",
            "https://10.0.0.5/",
            "https://[::1]/",
            "https://x.io:0/",
            "https://x.io:65536/",
            "https://u:p@x.io/",
            "https://xn--abc.io/",
            "https://x..io/",
            "https://x.io/a b",
            "https://1.2.3.4/",
        ] {
            assert!(!url.is_match(bad), "{bad:?}");
        }
    }
}
