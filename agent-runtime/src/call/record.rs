//! What a call leaves behind: its transcript, metadata, recording and voicemail,
//! assembled when it ends.

use std::time::Duration;

use futures::{Sink, SinkExt};

use super::{Call, EndReason, Mode};
use crate::artifacts::{CallArtifacts, CallMetadata, Transcript, WebhookDelivery};
use crate::speech::SpeechSession;
use agent_spec::calls::TokenUsage;

/// How long the call's webhooks may still take to report once it has ended; a slower
/// one is recorded as pending rather than holding the artifacts back.
const WEBHOOK_REPORT_WAIT: Duration = Duration::from_secs(2);

impl<S: SpeechSession, O: Sink<String> + Unpin> Call<'_, S, O> {
    pub(super) async fn finish(mut self, reason: EndReason) -> CallArtifacts {
        self.close_turn();
        let _ = self.out.close().await;
        let ended_at = time::OffsetDateTime::now_utc();
        let duration = self.t0.elapsed();
        tracing::info!(reason = reason.as_str(), duration_ms = duration.as_millis() as u64, "call ended");
        self.env.metrics.call_ended(reason.as_str());
        let recording = self
            .recorder
            .take()
            .and_then(|r| match r.finish() {
                Ok(p) => Some(p),
                Err(e) => {
                    self.errors.push(format!("recording: {e}"));
                    None
                }
            })
            .or_else(|| self.recording_kept.take());
        let voicemail = match std::mem::replace(&mut self.mode, Mode::Conversation) {
            Mode::Voicemail { recorder: Some(r), .. } => r.finish().ok(),
            _ => None,
        }
        .or_else(|| self.voicemail_kept.take());
        let mut webhooks = Vec::new();
        for handle in self.webhook_results.drain(..) {
            match tokio::time::timeout(WEBHOOK_REPORT_WAIT, handle).await {
                Ok(Ok(result)) => webhooks.push(result),
                _ => webhooks.push(WebhookDelivery {
                    kind: "unknown".into(),
                    url: String::new(),
                    delivered: false,
                    attempts: 0,
                    error: Some("still being retried when the call ended".into()),
                }),
            }
        }
        let mut turns = std::mem::take(&mut self.turns);
        turns.sort_by_key(|t| t.start_ms);
        let transcript = Transcript { call_sid: self.id.call_sid.clone(), turns, dtmf: std::mem::take(&mut self.dtmf) };
        let rfc3339 =
            |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let metadata = CallMetadata {
            call_sid: self.id.call_sid.clone(),
            stream_sid: self.id.stream_sid.clone(),
            account_sid: self.id.account_sid.clone(),
            from: self.id.from.clone(),
            to: self.id.to.clone(),
            agent_id: self.env.agent_id.clone(),
            tenant_id: self.env.tenant_id.clone(),
            agent_name: self.env.config.name.clone(),
            provider: self.env.config.voice.provider.as_str().to_owned(),
            started_at: rfc3339(self.id.started_at),
            ended_at: rfc3339(ended_at),
            duration_secs: duration.as_secs_f64(),
            end_reason: reason.as_str().to_owned(),
            turn_latency_ms: self.latencies.clone(),
            caller_turns: self.caller_turns,
            agent_turns: self.agent_turns,
            interruptions: self.interruptions,
            guardrail_cuts: self.guardrail_cuts,
            usage: TokenUsage { input_tokens: self.input_tokens, output_tokens: self.output_tokens },
            frames_in: self.frames_in,
            frames_out: self.frames_out,
            malformed_messages: self.malformed,
            recording: recording.is_some(),
            recording_cut_at_ms: self.recording_cut_at_ms,
            voicemail: voicemail.is_some(),
            webhooks,
            errors: std::mem::take(&mut self.errors),
            direction: self.id.direction.clone(),
            answered_by: self.id.answered_by.clone(),
            metadata: self.id.metadata.clone(),
        };
        CallArtifacts {
            call_sid: self.id.call_sid.clone(),
            transcript: serde_json::to_vec_pretty(&transcript).expect("transcripts serialize"),
            metadata: serde_json::to_vec_pretty(&metadata).expect("metadata serializes"),
            index: agent_spec::calls::CallIndexEntry::of(&metadata),
            recording,
            voicemail,
        }
    }
}
