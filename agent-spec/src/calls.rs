//! What a call leaves behind in `s3://{agent bucket}/calls/{callSid}/`, as JSON: the
//! runtime writes these documents, the control plane serves them, and the dashboard
//! shows them.
//!
//! - `transcript.json`: [`Transcript`];
//! - `metadata.json`: [`CallMetadata`].

use serde::{Deserialize, Serialize};

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Caller,
}

/// A call action the speech pipeline asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ToolCall {
    /// Say goodbye, then hang up.
    EndCall,
    /// Hand the caller to the agent's transfer number.
    TransferCall,
    /// Stop talking and record the caller's message.
    Voicemail,
    /// Pass a callback request on to the agent's scheduling endpoint.
    ScheduleCallback { requested_time: String },
}

impl ToolCall {
    pub fn name(&self) -> &'static str {
        match self {
            Self::EndCall => "end_call",
            Self::TransferCall => "transfer_call",
            Self::Voicemail => "voicemail",
            Self::ScheduleCallback { .. } => "schedule_callback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    #[serde(flatten)]
    pub call: ToolCall,
    /// `ok`, or what went wrong.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    /// Milliseconds from the start of the call.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The caller cut the agent off; `text` is what was played before that.
    pub interrupted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
}

/// A key the caller pressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfRecord {
    pub digit: String,
    pub at_ms: u64,
}

/// `transcript.json`: the turns with role, text, times, the interrupted flag and tool
/// calls, and the DTMF digits pressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub call_sid: String,
    pub turns: Vec<Turn>,
    pub dtmf: Vec<DtmfRecord>,
}

/// One webhook the call sent, and whether it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub kind: String,
    pub url: String,
    pub delivered: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallMetadata {
    pub call_sid: String,
    pub stream_sid: String,
    pub account_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub agent_id: String,
    pub tenant_id: String,
    pub agent_name: String,
    pub provider: String,
    /// RFC 3339.
    pub started_at: String,
    pub ended_at: String,
    pub duration_secs: f64,
    /// `caller_hung_up`, `end_call`, `transferred`, `voicemail`, `idle`, `max_duration`,
    /// `max_turns`, `guardrail`, `shutdown`, `stream_dropped`.
    pub end_reason: String,
    /// Per agent reply: milliseconds from the end of the caller's turn to the first
    /// agent audio sent.
    pub turn_latency_ms: Vec<u64>,
    pub caller_turns: u32,
    pub agent_turns: u32,
    pub interruptions: u32,
    pub frames_in: u64,
    pub frames_out: u64,
    pub malformed_messages: u64,
    pub recording: bool,
    pub voicemail: bool,
    pub webhooks: Vec<WebhookDelivery>,
    pub errors: Vec<String>,
}
