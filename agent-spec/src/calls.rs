//! What a call leaves behind in `s3://{agent bucket}/calls/{callSid}/` ([`CallFile`]
//! names the keys for the runtime that writes them and the control plane that reads
//! them), as JSON: the runtime writes these documents, the control plane serves them,
//! and the dashboard shows them.
//!
//! - `transcript.json`: [`Transcript`];
//! - `metadata.json`: [`CallMetadata`].
//!
//! Beside them, the call index: `index/{YYYY-MM-DD}/{task}-{segment}.jsonl`, one
//! [`CallIndexEntry`] per line for each call a runtime task ended that day (UTC). Each
//! task writes its own objects only, rewriting its open segment as calls end; a
//! segment holds at most [`INDEX_SEGMENT_CALLS`] calls, then the next one opens, so
//! closed segments never change and readers cache them by ETag. The control plane
//! lists and charts calls from the index, never from the `calls/` listing.

use serde::{Deserialize, Serialize};

/// The prefix under which every call's files live in the agent's bucket.
pub const CALLS_PREFIX: &str = "calls/";

/// The files a call can leave, in upload order: `metadata.json` last, because its
/// presence marks a complete call for readers.
pub const CALL_FILES: [CallFile; 4] =
    [CallFile::Transcript, CallFile::Recording, CallFile::Voicemail, CallFile::Metadata];

/// One file of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFile {
    Transcript,
    Recording,
    Voicemail,
    Metadata,
}

impl CallFile {
    pub fn name(self) -> &'static str {
        match self {
            Self::Transcript => "transcript.json",
            Self::Recording => "recording.wav",
            Self::Voicemail => "voicemail.wav",
            Self::Metadata => "metadata.json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Transcript | Self::Metadata => "application/json",
            Self::Recording | Self::Voicemail => "audio/wav",
        }
    }

    /// The object key of this file of `call_sid`: `calls/{callSid}/{file}`.
    pub fn key(self, call_sid: &str) -> String {
        format!("{CALLS_PREFIX}{call_sid}/{}", self.name())
    }

    /// The call whose file this key is, if it is one of this kind.
    pub fn call_of(self, key: &str) -> Option<&str> {
        let sid = key.strip_prefix(CALLS_PREFIX)?.strip_suffix(self.name())?.strip_suffix('/')?;
        (!sid.is_empty() && !sid.contains('/')).then_some(sid)
    }
}

/// The prefix of the call index.
pub const INDEX_PREFIX: &str = "index/";
/// The most calls one index segment holds.
pub const INDEX_SEGMENT_CALLS: usize = 2000;

/// One call in the agent's call index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallIndexEntry {
    pub call_sid: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: String,
    pub duration_secs: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `inbound`, `outbound-api`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    pub end_reason: String,
    /// The caller left a voicemail.
    #[serde(default)]
    pub voicemail: bool,
    /// An outbound call's answering machine detection result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

impl CallIndexEntry {
    pub fn of(metadata: &CallMetadata) -> Self {
        Self {
            call_sid: metadata.call_sid.clone(),
            started_at: metadata.started_at.clone(),
            ended_at: metadata.ended_at.clone(),
            duration_secs: metadata.duration_secs,
            from: metadata.from.clone(),
            to: metadata.to.clone(),
            direction: metadata.direction.clone(),
            end_reason: metadata.end_reason.clone(),
            voicemail: metadata.voicemail,
            answered_by: metadata.answered_by.clone(),
        }
    }
}

/// The key of segment `segment` of `task`'s index of `day`.
pub fn index_key(day: time::Date, task: &str, segment: u32) -> String {
    format!("{INDEX_PREFIX}{:04}-{:02}-{:02}/{task}-{segment:04}.jsonl", day.year(), day.month() as u8, day.day())
}

/// The day an index key is of.
pub fn index_day(key: &str) -> Option<time::Date> {
    let day = key.strip_prefix(INDEX_PREFIX)?.split('/').next()?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format).ok()
}

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
    /// Have the caller called back: scheduled with the control plane (and passed on
    /// to the agent's scheduling webhook, if it has one).
    ScheduleCallback {
        /// When, in the caller's words.
        requested_time: String,
        /// When, as an RFC 3339 timestamp, if the speech model gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
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
    /// Why the runtime would not send it (an address that is not public, a redirect);
    /// never what the receiver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Tokens a provider counted over a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
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
    /// `max_turns`, `guardrail`, `shutdown`, `stream_dropped`, `provider_unavailable`
    /// (the speech provider could not be reached), `provider_error` (it failed during
    /// the call), `answering_machine` (an outbound call reached a machine: the
    /// voicemail message was left).
    pub end_reason: String,
    /// Per agent reply: milliseconds from the end of the caller's turn to the first
    /// agent audio sent.
    pub turn_latency_ms: Vec<u64>,
    pub caller_turns: u32,
    pub agent_turns: u32,
    pub interruptions: u32,
    /// Agent replies cut because they broke one of the agent's rules.
    #[serde(default)]
    pub guardrail_cuts: u32,
    /// Tokens the speech provider counted (zero for the local pipeline).
    #[serde(default)]
    pub usage: TokenUsage,
    pub frames_in: u64,
    pub frames_out: u64,
    pub malformed_messages: u64,
    pub recording: bool,
    /// When the recording stopped because the runtime's spool reached its cap
    /// (milliseconds into the call; 0: the call was not recorded at all). The call
    /// itself went on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_cut_at_ms: Option<u64>,
    pub voicemail: bool,
    pub webhooks: Vec<WebhookDelivery>,
    pub errors: Vec<String>,
    /// `inbound`, or `outbound-api` for a call the agent placed (Twilio's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Twilio's answering machine detection on an outbound call: `human`,
    /// `machine_end_beep`, `machine_end_silence`, `machine_end_other`, `fax`,
    /// `unknown`; `timeout` when no result came in time (the call went on as if
    /// answered by a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// The `metadata` given when the outbound call was placed, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn index_keys_name_their_day() {
        let day = time::macros::date!(2026 - 11 - 28);
        let key = index_key(day, "t1a2b3", 3);
        assert_eq!(key, "index/2026-11-28/t1a2b3-0003.jsonl");
        assert_eq!(index_day(&key), Some(day));
        assert_eq!(index_day("calls/CA1/metadata.json"), None);
    }

    #[test]
    fn keys_map_back_to_their_call() {
        let key = CallFile::Metadata.key("CA0123");
        assert_eq!(key, "calls/CA0123/metadata.json");
        assert_eq!(CallFile::Metadata.call_of(&key), Some("CA0123"));
        assert_eq!(CallFile::Transcript.call_of(&key), None);
        assert_eq!(CallFile::Metadata.call_of("calls//metadata.json"), None);
        assert_eq!(CallFile::Metadata.call_of("calls/a/b/metadata.json"), None);
    }
}
