//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG`, default `info`), as text or
//! JSON lines. Request spans carry `request_id`, `method`, `path` and, once the key
//! is checked, `tenant_id`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;

/// Installs the global subscriber writing to `writer`.
pub fn init<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    init_with_filter(format, filter, writer);
}

/// Installs the global subscriber with an explicit filter (tests capture `debug`).
pub fn init_with_filter<W>(format: LogFormat, filter: EnvFilter, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
}
