//! Logging through `tracing`, configured by `RUST_LOG` (default `info`), on stderr so
//! stdout stays free for the `listening on` lines scripts read; and those lines.
//!
//! Logging can never block or stop a service: lines go to a bounded queue that a thread of
//! its own writes to stderr, and when stderr cannot keep up (a pipe nobody reads) new lines
//! are dropped instead of waiting. Likewise [`announce`] ignores a stdout that is closed.

use std::io::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Log lines waiting for stderr; past this many, new ones are dropped.
const QUEUED_LINES: usize = 10_000;

/// Whether a subscriber was installed by [`init`] in this process.
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Flushes the queued log lines when dropped (at the end of `main`), unless stderr has
/// already shown it cannot keep up: then waiting would only delay the exit.
#[must_use = "logs queued at exit are flushed when the guard is dropped"]
pub struct LogGuard(Option<(WorkerGuard, ErrorCounter)>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some((guard, dropped)) = self.0.take()
            && dropped.dropped_lines() > 0
        {
            // The writer thread is stuck on stderr; its guard would wait for it.
            std::mem::forget(guard);
        }
    }
}

/// Installs the global subscriber and returns the guard that flushes it at exit. Calling
/// it again is harmless: the later guards do nothing.
pub fn init() -> LogGuard {
    if INSTALLED.get().is_some() {
        return LogGuard(None);
    }
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    match installed {
        Ok(()) => {
            let _ = INSTALLED.set(());
            LogGuard(Some((guard, dropped)))
        }
        Err(_) => LogGuard(None),
    }
}

/// Prints one line on stdout for scripts and tests (`listening on ADDR`), flushed at once;
/// a closed or broken stdout is ignored (`println!` would panic).
pub fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
