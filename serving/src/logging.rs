//! Logging set-up: one JSON shape for every server.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written (`TEMPOVOICE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines: `timestamp`, `level`, `target`, the event's fields at the top level
    /// (`message` among them), and the current span's fields under `span`.
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "json" => Some(Self::Json),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
}

/// Installs the global subscriber writing to `writer`, filtered by `RUST_LOG`
/// (default `info`). A second call leaves the first in place (tests build many
/// servers in one process).
pub fn init<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    init_with_filter(format, filter, writer);
}

/// [`init`] with an explicit filter (tests capture `debug`).
pub fn init_with_filter<W>(format: LogFormat, filter: EnvFilter, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
