//! Prometheus metrics, in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the turn-latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0];

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
    ended: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    pub fn call_ended(&self, reason: &str) {
        *self.ended.lock().expect("metrics lock").entry(reason.to_owned()).or_default() += 1;
    }

    pub fn observe_turn_latency(&self, secs: f64) {
        let mut h = self.latency.lock().expect("metrics lock");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn render(&self, spooled_calls: u64) -> String {
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
            "tempovoice_spooled_calls",
            "Calls whose artifacts wait in the local spool.",
            "gauge",
            spooled_calls.to_string(),
        );

        let _ = writeln!(
            out,
            "# HELP tempovoice_calls_ended_total Calls ended, by reason.\n# TYPE tempovoice_calls_ended_total counter"
        );
        for (reason, n) in self.ended.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tempovoice_calls_ended_total{{reason=\"{reason}\"}} {n}");
        }
        let h = self.latency.lock().expect("metrics lock");
        let _ = writeln!(
            out,
            "# HELP tempovoice_turn_latency_seconds End of the caller's turn to the first agent audio.\n# TYPE tempovoice_turn_latency_seconds histogram"
        );
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "tempovoice_turn_latency_seconds_bucket{{le=\"{bound}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "tempovoice_turn_latency_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "tempovoice_turn_latency_seconds_sum {}", h.sum);
        let _ = writeln!(out, "tempovoice_turn_latency_seconds_count {}", h.count);
        out
    }
}
