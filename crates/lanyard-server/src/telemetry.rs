//! Logging setup. Logs go to stderr, so commands that print JSON keep stdout clean. Lines are
//! handed to a background writer thread (tracing-appender), so a slow stderr never holds up a
//! request. Nothing is dropped: only if the writer falls a whole buffer behind do requests wait
//! for it.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines queued for the writer thread. The queue is allocated up front, so it is kept small.
const BUFFERED_LINES: usize = 8_192;

/// Installs the global subscriber. `RUST_LOG` refines the default `info` level. Keep the guard
/// until the process ends: dropping it flushes what is still queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(false)
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    guard
}
