//! Fixtures shared by the agent-spec integration tests.

use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::secrets::SecretPatch;

/// The smallest valid draft: only the required fields, everything else default.
pub fn valid_draft() -> AgentDraft {
    AgentDraft {
        name: "Front desk".into(),
        system_prompt: "You answer calls for Rosa's Bakery.".into(),
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            ..Default::default()
        },
        secrets: SecretsDraft {
            twilio_auth_token: SecretPatch::set("0123456789abcdef0123456789abcdef"),
            ..Default::default()
        },
        ..Default::default()
    }
}
