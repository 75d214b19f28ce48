//! Twilio Media Streams messages, both directions, exactly as Twilio sends and
//! accepts them (JSON text frames; audio is base64 8 kHz μ-law).
//!
//! In (Twilio → us): `connected`, `start`, `media`, `dtmf`, `mark`, `stop`.
//! Out (us → Twilio): `media`, `mark`, `clear`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message Twilio sends on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    Connected {
        protocol: String,
        version: String,
    },
    #[serde(rename_all = "camelCase")]
    Start {
        sequence_number: String,
        start: StartInfo,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Media {
        sequence_number: String,
        media: MediaPayload,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Dtmf {
        sequence_number: String,
        dtmf: DtmfInfo,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Mark {
        sequence_number: String,
        mark: MarkInfo,
        stream_sid: String,
    },
    #[serde(rename_all = "camelCase")]
    Stop {
        sequence_number: String,
        stop: StopInfo,
        stream_sid: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartInfo {
    pub account_sid: String,
    pub stream_sid: String,
    pub call_sid: String,
    pub tracks: Vec<String>,
    pub media_format: MediaFormat,
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

impl MediaFormat {
    pub fn twilio() -> Self {
        Self { encoding: "audio/x-mulaw".to_owned(), sample_rate: 8000, channels: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaPayload {
    #[serde(default)]
    pub track: Option<String>,
    #[serde(default)]
    pub chunk: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfInfo {
    pub track: String,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkInfo {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopInfo {
    pub account_sid: String,
    pub call_sid: String,
}

/// A message we send to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    #[serde(rename_all = "camelCase")]
    Media { stream_sid: String, media: OutboundMedia },
    #[serde(rename_all = "camelCase")]
    Mark { stream_sid: String, mark: MarkInfo },
    #[serde(rename_all = "camelCase")]
    Clear { stream_sid: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMedia {
    pub payload: String,
}

/// The fields of an inbound message the per-frame path needs, borrowed from the
/// text: parsing `media` this way skips the buffering serde does for internally
/// tagged enums. Anything that is not `media` is parsed again as [`Inbound`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef<'a> {
    #[serde(borrow)]
    pub event: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    pub stream_sid: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub media: Option<MediaPayloadRef<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct MediaPayloadRef<'a> {
    #[serde(borrow)]
    pub payload: std::borrow::Cow<'a, str>,
}

/// Writes the JSON of an outbound `media` message straight into `out`, without an
/// intermediate value: this runs 50 times a second per call.
pub fn write_media_json(out: &mut String, stream_sid: &str, ulaw: &[u8]) {
    use base64::Engine;
    out.clear();
    out.push_str(r#"{"event":"media","streamSid":""#);
    push_json_str_body(out, stream_sid);
    out.push_str(r#"","media":{"payload":""#);
    base64::engine::general_purpose::STANDARD.encode_string(ulaw, out);
    out.push_str(r#""}}"#);
}

/// Writes Twilio's inbound `media` message for one frame of caller audio into `out`
/// (replacing its contents): what the call simulator sends 50 times a second per call.
pub fn write_inbound_media_json(out: &mut String, stream_sid: &str, sequence: u64, chunk: u64, ulaw: &[u8]) {
    use base64::Engine;
    use std::fmt::Write;
    out.clear();
    let _ = write!(
        out,
        r#"{{"event":"media","sequenceNumber":"{sequence}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{}","payload":""#,
        chunk * crate::audio::FRAME_MS
    );
    base64::engine::general_purpose::STANDARD.encode_string(ulaw, out);
    out.push_str(r#""},"streamSid":""#);
    push_json_str_body(out, stream_sid);
    out.push_str(r#""}"#);
}

fn push_json_str_body(out: &mut String, s: &str) {
    if !s.chars().any(|c| c == '"' || c == '\\' || (c as u32) < 0x20) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulators_media_message_is_twilios() {
        let mut out = String::new();
        write_inbound_media_json(&mut out, "MZ\"1", 7, 3, &[0xff; 160]);
        let parsed: Inbound = serde_json::from_str(&out).expect("valid JSON of an inbound message");
        let Inbound::Media { sequence_number, media, stream_sid } = parsed else { panic!("not media: {out}") };
        assert_eq!((sequence_number.as_str(), stream_sid.as_str()), ("7", "MZ\"1"));
        assert_eq!(media.track.as_deref(), Some("inbound"));
        assert_eq!((media.chunk.as_deref(), media.timestamp.as_deref()), (Some("3"), Some("60")));
        use base64::Engine;
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&media.payload).unwrap(), vec![0xff; 160]);
    }

    #[test]
    fn parses_twilio_documented_messages() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"from":"+15550001111"}},"streamSid":"MZ1"}"#;
        let Inbound::Start { start, .. } = serde_json::from_str(start).unwrap() else { panic!("not start") };
        assert_eq!(start.custom_parameters["from"], "+15550001111");
        let media = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/w=="},"streamSid":"MZ1"}"#;
        assert!(matches!(serde_json::from_str(media).unwrap(), Inbound::Media { .. }));
        let dtmf =
            r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#;
        assert!(matches!(serde_json::from_str(dtmf).unwrap(), Inbound::Dtmf { .. }));
        let stop =
            r#"{"event":"stop","sequenceNumber":"5","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}"#;
        assert!(matches!(serde_json::from_str(stop).unwrap(), Inbound::Stop { .. }));
    }

    #[test]
    fn hand_written_media_json_matches_serde() {
        let mut out = String::new();
        write_media_json(&mut out, "MZ\"x", &[0xFF, 0x7F, 0x00]);
        let parsed: Outbound = serde_json::from_str(&out).unwrap();
        assert_eq!(
            parsed,
            Outbound::Media { stream_sid: "MZ\"x".into(), media: OutboundMedia { payload: "/38A".into() } }
        );
    }
}
