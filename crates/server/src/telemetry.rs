//! Log set-up. Logs go to stderr (so `--json` command output on stdout stays clean), as text or
//! JSON lines, filtered by `RUST_LOG`. What may be logged is in `docs/LOGGING.md`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: our own info lines, only warnings from libraries.
const DEFAULT_FILTER: &str =
    "info,sqlx=warn,tower_http=warn,tower_http::trace::on_response=info,hyper=warn,reqwest=warn";

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), so
/// tests that start several servers in one process are fine.
pub fn init(format: LogFormat) {
    init_with_default(format, DEFAULT_FILTER);
}

/// [`init`] with another filter for when `RUST_LOG` is unset (tests default to silence).
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(FmtSpan::NONE);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
