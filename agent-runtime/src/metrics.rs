//! Prometheus metrics, in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::server::admission::Refusal;

/// Upper bounds (seconds) of the turn-latency and greeting histograms: fine enough
/// from 1 ms to 10 s that a tail is seen near its value, not at a distant bound.
pub const LATENCY_BUCKETS: [f64; 26] = [
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
];
/// Upper bounds (seconds) of the frame-handling and provider-audio histograms: from
/// 5 µs to 50 ms, with steps of a quarter to a half of a millisecond around the 2 ms
/// a provider's audio may add, so a p99 under it is told from one at it.
pub const FRAME_BUCKETS: [f64; 18] = [
    0.000_005, 0.000_01, 0.000_02, 0.000_03, 0.000_05, 0.000_075, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001,
    0.001_25, 0.001_5, 0.002, 0.003, 0.005, 0.01, 0.05,
];

#[derive(Default)]
pub struct Metrics {
    pub active_calls: AtomicI64,
    pub calls_rejected_busy: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub malformed_messages: AtomicU64,
    pub provider_errors: AtomicU64,
    pub s3_errors: AtomicU64,
    pub webhook_errors: AtomicU64,
    pub telephony_errors: AtomicU64,
    pub signature_failures: AtomicU64,
    /// Agent replies cut because they broke one of the agent's rules.
    pub guardrail_cuts: AtomicU64,
    /// Calls the speech provider failed: `unavailable` at the start, `error` during.
    pub provider_unavailable: AtomicU64,
    pub provider_failed: AtomicU64,
    /// Media streams refused at `start`, by [`Refusal::index`].
    streams_refused: [AtomicU64; Refusal::ALL.len()],
    /// Recordings (and voicemails) stopped at the spool's cap.
    pub recordings_cut: AtomicU64,
    /// Stream claims the bucket did not answer (the stream went on, checked by this
    /// task alone).
    pub stream_claim_errors: AtomicU64,
    /// Call index segments S3 did not take (tried again).
    pub index_write_errors: AtomicU64,
    /// 1 while the task holds ECS scale-in protection.
    pub task_protected: AtomicI64,
    /// Scale-in protection requests the ECS agent refused or did not answer.
    pub task_protection_errors: AtomicU64,
    /// Twilio's stream status callbacks, by `StreamEvent`.
    stream_events: Mutex<BTreeMap<String, u64>>,
    call_statuses: Mutex<BTreeMap<String, u64>>,
    /// Callbacks reported to the control plane: scheduled, and refused or not taken.
    callbacks: [AtomicU64; 2],
    ended: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram<{ LATENCY_BUCKETS.len() }>>,
    greeting: Mutex<Histogram<{ LATENCY_BUCKETS.len() }>>,
    frame_handling: Mutex<Histogram<{ FRAME_BUCKETS.len() }>>,
    agent_audio: Mutex<Histogram<{ FRAME_BUCKETS.len() }>>,
}

struct Histogram<const N: usize> {
    counts: [u64; N],
    sum: f64,
    count: u64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Self { counts: [0; N], sum: 0.0, count: 0 }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, bounds: &[f64; N], secs: f64) {
        if let Some(i) = bounds.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64; N]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

impl Metrics {
    /// Calls ended so far, whatever the reason.
    pub fn calls_ended(&self) -> u64 {
        self.ended.lock().expect("metrics lock").values().sum()
    }

    pub fn call_ended(&self, reason: &str) {
        *self.ended.lock().expect("metrics lock").entry(reason.to_owned()).or_default() += 1;
    }

    /// A callback the caller asked for was scheduled (`true`), or could not be.
    pub fn callback_reported(&self, scheduled: bool) {
        self.callbacks[usize::from(!scheduled)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_refused(&self, refusal: Refusal) {
        self.streams_refused[refusal.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn streams_refused(&self, refusal: Refusal) -> u64 {
        self.streams_refused[refusal.index()].load(Ordering::Relaxed)
    }

    /// One of Twilio's stream status callbacks (`stream-started`, `stream-stopped`,
    /// `stream-error`); other values are counted as `other`.
    pub fn stream_event(&self, event: &str) {
        let event = match event {
            "stream-started" | "stream-stopped" | "stream-error" => event,
            _ => "other",
        };
        *self.stream_events.lock().expect("metrics lock").entry(event.to_owned()).or_default() += 1;
    }

    /// One of Twilio's call status callbacks: the call's final status (`completed`,
    /// `busy`, `no-answer`, `failed`, `canceled`); other values are counted as `other`.
    pub fn call_status(&self, status: &str) {
        let status = match status {
            "completed" | "busy" | "no-answer" | "failed" | "canceled" => status,
            _ => "other",
        };
        *self.call_statuses.lock().expect("metrics lock").entry(status.to_owned()).or_default() += 1;
    }

    /// A call lost its speech provider (`unavailable` when it could not connect,
    /// `error` when it failed during the call).
    pub fn provider_failure(&self, kind: &str) {
        match kind {
            "unavailable" => self.provider_unavailable.fetch_add(1, Ordering::Relaxed),
            _ => self.provider_failed.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn observe_turn_latency(&self, secs: f64) {
        self.latency.lock().expect("metrics lock").observe(&LATENCY_BUCKETS, secs);
    }

    /// The stream's `start` → the first agent audio sent (the greeting).
    pub fn observe_greeting(&self, secs: f64) {
        self.greeting.lock().expect("metrics lock").observe(&LATENCY_BUCKETS, secs);
    }

    /// Agent audio received from the provider → its media frames written to Twilio.
    pub fn observe_agent_audio(&self, secs: f64) {
        self.agent_audio.lock().expect("metrics lock").observe(&FRAME_BUCKETS, secs);
    }

    pub fn observe_frame_handling(&self, secs: f64) {
        self.frame_handling.lock().expect("metrics lock").observe(&FRAME_BUCKETS, secs);
    }

    pub fn render(&self, spooled_calls: u64, spool_bytes: u64) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        gauge(
            "tempovoice_active_calls",
            "Calls in progress.",
            "gauge",
            self.active_calls.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tempovoice_calls_rejected_busy_total",
            "Calls refused over the concurrency limit or while draining.",
            "counter",
            load(&self.calls_rejected_busy),
        );
        gauge("tempovoice_frames_in_total", "Media frames received.", "counter", load(&self.frames_in));
        gauge("tempovoice_frames_out_total", "Media frames sent.", "counter", load(&self.frames_out));
        gauge(
            "tempovoice_malformed_messages_total",
            "Stream messages that could not be used.",
            "counter",
            load(&self.malformed_messages),
        );
        gauge("tempovoice_provider_errors_total", "Speech provider errors.", "counter", load(&self.provider_errors));
        gauge(
            "tempovoice_guardrail_cuts_total",
            "Agent replies cut because they broke one of the agent's rules.",
            "counter",
            load(&self.guardrail_cuts),
        );
        gauge(
            "tempovoice_s3_errors_total",
            "Artifact uploads that failed (and were spooled).",
            "counter",
            load(&self.s3_errors),
        );
        gauge(
            "tempovoice_webhook_errors_total",
            "Webhooks not delivered after their retries.",
            "counter",
            load(&self.webhook_errors),
        );
        gauge(
            "tempovoice_telephony_errors_total",
            "Twilio REST requests that failed.",
            "counter",
            load(&self.telephony_errors),
        );
        gauge(
            "tempovoice_signature_failures_total",
            "Requests refused for a bad Twilio signature.",
            "counter",
            load(&self.signature_failures),
        );
        gauge(
            "tempovoice_stream_claim_errors_total",
            "Media streams whose claim in the bucket failed; each went on, checked by this task alone.",
            "counter",
            load(&self.stream_claim_errors),
        );
        gauge(
            "tempovoice_task_protected",
            "1 while the task holds ECS scale-in protection (it has live calls).",
            "gauge",
            self.task_protected.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tempovoice_task_protection_errors_total",
            "Scale-in protection requests the ECS agent refused or did not answer; each is tried again.",
            "counter",
            load(&self.task_protection_errors),
        );
        gauge(
            "tempovoice_index_write_errors_total",
            "Writes of the call index S3 did not take; each is tried again at the next flush.",
            "counter",
            load(&self.index_write_errors),
        );
        gauge(
            "tempovoice_spool_bytes",
            "Bytes in the spool: recordings being written and files waiting for S3.",
            "gauge",
            spool_bytes.to_string(),
        );
        gauge(
            "tempovoice_recordings_cut_total",
            "Recordings and voicemails stopped at the spool's cap (TEMPOVOICE_SPOOL_MAX_MB); their calls went on.",
            "counter",
            load(&self.recordings_cut),
        );
        gauge(
            "tempovoice_spooled_calls",
            "Calls whose artifacts wait in the local spool.",
            "gauge",
            spooled_calls.to_string(),
        );

        let _ = writeln!(
            out,
            "# HELP tempovoice_provider_failures_total Calls that lost their speech provider, by kind \
             (unavailable: at the start; error: during the call).\n# TYPE tempovoice_provider_failures_total counter\n\
             tempovoice_provider_failures_total{{kind=\"unavailable\"}} {}\n\
             tempovoice_provider_failures_total{{kind=\"error\"}} {}",
            load(&self.provider_unavailable),
            load(&self.provider_failed)
        );
        let _ = writeln!(
            out,
            "# HELP tempovoice_streams_refused_total Media streams refused at start, by reason.\n\
             # TYPE tempovoice_streams_refused_total counter"
        );
        for refusal in Refusal::ALL {
            let _ = writeln!(
                out,
                "tempovoice_streams_refused_total{{reason=\"{}\"}} {}",
                refusal.as_str(),
                self.streams_refused(refusal)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tempovoice_stream_events_total Twilio's stream status callbacks, by event.\n\
             # TYPE tempovoice_stream_events_total counter"
        );
        for (event, n) in self.stream_events.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tempovoice_stream_events_total{{event=\"{event}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tempovoice_call_statuses_total Twilio's call status callbacks, by the call's final status.\n\
             # TYPE tempovoice_call_statuses_total counter"
        );
        for (status, n) in self.call_statuses.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tempovoice_call_statuses_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tempovoice_callbacks_total Callbacks callers asked for, by whether the control plane scheduled them.\n\
             # TYPE tempovoice_callbacks_total counter"
        );
        for (i, outcome) in ["scheduled", "failed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "tempovoice_callbacks_total{{outcome=\"{outcome}\"}} {}",
                self.callbacks[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tempovoice_calls_ended_total Calls ended, by reason.\n# TYPE tempovoice_calls_ended_total counter"
        );
        for (reason, n) in self.ended.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tempovoice_calls_ended_total{{reason=\"{reason}\"}} {n}");
        }
        self.latency.lock().expect("metrics lock").render(
            &mut out,
            "tempovoice_turn_latency_seconds",
            "End of the caller's turn to the first agent audio sent.",
            &LATENCY_BUCKETS,
        );
        self.greeting.lock().expect("metrics lock").render(
            &mut out,
            "tempovoice_greeting_seconds",
            "The media stream's start to the first agent audio sent (the greeting).",
            &LATENCY_BUCKETS,
        );
        self.frame_handling.lock().expect("metrics lock").render(
            &mut out,
            "tempovoice_frame_handling_seconds",
            "Time to handle one inbound stream message.",
            &FRAME_BUCKETS,
        );
        self.agent_audio.lock().expect("metrics lock").render(
            &mut out,
            "tempovoice_agent_audio_seconds",
            "Agent audio received from the speech provider to its media frames written to Twilio.",
            &FRAME_BUCKETS,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(text: &str, name: &str, le: &str) -> u64 {
        let prefix = format!("{name}_bucket{{le=\"{le}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).expect("bucket rendered")
    }

    #[test]
    fn latencies_land_in_buckets_near_their_value() {
        let m = Metrics::default();
        m.observe_turn_latency(0.012);
        m.observe_greeting(0.180);
        m.observe_greeting(8.0);
        let text = m.render(0, 0);
        let turn = "tempovoice_turn_latency_seconds";
        assert_eq!(bucket(&text, turn, "0.01"), 0);
        assert_eq!(bucket(&text, turn, "0.015"), 1);
        let greeting = "tempovoice_greeting_seconds";
        assert_eq!(bucket(&text, greeting, "0.15"), 0);
        assert_eq!(bucket(&text, greeting, "0.2"), 1);
        assert_eq!(bucket(&text, greeting, "7.5"), 1);
        assert_eq!(bucket(&text, greeting, "10"), 2);
        assert!(text.contains("tempovoice_greeting_seconds_count 2"), "{text}");
        m.observe_agent_audio(0.0014);
        let text = m.render(0, 0);
        let audio = "tempovoice_agent_audio_seconds";
        assert_eq!(bucket(&text, audio, "0.00125"), 0);
        assert_eq!(bucket(&text, audio, "0.0015"), 1, "a 1.4 ms delay is seen under 2 ms");
    }
}
