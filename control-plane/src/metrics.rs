//! The control plane's own metrics, in Prometheus's text format, at
//! `GET /v1/admin/metrics` (admin token; on the admin address when it has one):
//!
//! - `tempovoice_cp_http_responses_total{class}`: responses by status class (`2xx`,
//!   `4xx`, `5xx`, …): a rising `5xx` is what its alarm watches;
//! - `tempovoice_cp_callbacks_placed_total`, `…_callbacks_failed_total`: callbacks
//!   this process placed, or gave up on;
//! - from the database at each scrape: `tempovoice_cp_deployments{action,status}`
//!   (every deployment on record), `tempovoice_cp_callbacks{status}`,
//!   `tempovoice_cp_outbound_calls_live`, `tempovoice_cp_agents`, `tempovoice_cp_tenants`;
//! - `tempovoice_cp_uptime_seconds`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::store::Store;

pub struct Metrics {
    started: Instant,
    /// Responses by status class, 1xx to 5xx.
    responses: [AtomicU64; 5],
    pub callbacks_placed: AtomicU64,
    pub callbacks_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            responses: Default::default(),
            callbacks_placed: AtomicU64::new(0),
            callbacks_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn response(&self, status: u16) {
        if let Some(slot) = (status / 100).checked_sub(1).and_then(|i| self.responses.get(usize::from(i))) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition, with the database's figures.
    pub async fn render(&self, store: &Store) -> Result<String, crate::store::StoreError> {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "tempovoice_cp_http_responses_total",
            "API and dashboard responses, by status class.",
            "counter",
            self.responses
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{{class=\"{}xx\"}}", i + 1), n.load(Ordering::Relaxed)))
                .collect(),
        );
        family(
            "tempovoice_cp_callbacks_placed_total",
            "Callbacks this process placed.",
            "counter",
            vec![(String::new(), self.callbacks_placed.load(Ordering::Relaxed))],
        );
        family(
            "tempovoice_cp_callbacks_failed_total",
            "Callbacks this process gave up on.",
            "counter",
            vec![(String::new(), self.callbacks_failed.load(Ordering::Relaxed))],
        );
        let figures = store.figures().await?;
        family(
            "tempovoice_cp_deployments",
            "Deployments on record, by action and status.",
            "gauge",
            figures
                .deployments
                .iter()
                .map(|(action, status, n)| (format!("{{action=\"{action}\",status=\"{status}\"}}"), *n))
                .collect(),
        );
        family(
            "tempovoice_cp_callbacks",
            "Callbacks on record (done ones are kept 30 days), by status.",
            "gauge",
            figures.callbacks.iter().map(|(status, n)| (format!("{{status=\"{status}\"}}"), *n)).collect(),
        );
        family(
            "tempovoice_cp_outbound_calls_live",
            "Outbound calls holding a slot of the concurrency limit.",
            "gauge",
            vec![(String::new(), figures.live_outbound_calls)],
        );
        family("tempovoice_cp_agents", "Agents on record.", "gauge", vec![(String::new(), figures.agents)]);
        family("tempovoice_cp_tenants", "Tenants on record.", "gauge", vec![(String::new(), figures.tenants)]);
        family(
            "tempovoice_cp_uptime_seconds",
            "Seconds since this process started.",
            "gauge",
            vec![(String::new(), self.started.elapsed().as_secs())],
        );
        Ok(out)
    }
}
