//! Logging for the long-running commands (`serve`, `demo-app`): lines to stderr that can
//! never take the server down.
//!
//! tracing-subscriber's fmt layer writes on the thread that logs, and when a write fails it
//! reports the failure with `eprintln!`, which panics when stderr itself is what failed (a
//! full disk, a closed pipe): the request in flight died, and so did any task that logged
//! (the audit writer). Here the fmt layer only hands each line to a channel
//! ([`tracing_appender::non_blocking`], lossy: a full channel drops the line rather than
//! stall sign-in), one thread writes them out, and a failed write is counted instead of
//! reported. Both kinds of loss are exported as `latchkey_log_lines_dropped_total`.

use std::io::{IsTerminal as _, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the writer thread before new ones are dropped.
const BUFFERED_LINES: usize = 16_384;

/// The running log writer. Keep it until the process ends: dropping it flushes what is
/// still queued and stops the writer thread.
#[derive(Debug)]
pub(crate) struct Logging {
    _worker: WorkerGuard,
    dropped: LogDrops,
}

impl Logging {
    /// The dropped-line count, for the metrics registry.
    pub(crate) fn drops(&self) -> LogDrops {
        self.dropped.clone()
    }
}

/// Lines lost so far: dropped because the writer was behind, or because writing failed.
#[derive(Clone)]
pub(crate) struct LogDrops {
    behind: ErrorCounter,
    failed: Arc<AtomicU64>,
}

impl std::fmt::Debug for LogDrops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDrops")
            .field("total", &self.total())
            .finish()
    }
}

impl LogDrops {
    /// Both counts added up.
    pub(crate) fn total(&self) -> u64 {
        let behind = u64::try_from(self.behind.dropped_lines()).unwrap_or(u64::MAX);
        behind.saturating_add(self.failed.load(Ordering::Relaxed))
    }
}

/// Starts logging to stderr: `RUST_LOG` filters (else `default_filter`),
/// `LATCHKEY_LOG_FORMAT=json` gives JSON lines, colours only on a terminal. If a subscriber
/// is already installed, says so on stderr and keeps it.
pub(crate) fn init(default_filter: &str) -> Logging {
    let failed = Arc::new(AtomicU64::new(0));
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("latchkey-log")
        .finish(Counting {
            inner: std::io::stderr(),
            failed: failed.clone(),
        });
    let dropped = LogDrops {
        behind: writer.error_counter(),
        failed,
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false);
    let result = if std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        // `let _`: this warning must not be the thing that panics on a broken stderr.
        let _ = writeln!(std::io::stderr(), "warning: logging not initialised: {e}");
    }
    Logging {
        _worker: worker,
        dropped,
    }
}

/// The writer thread's destination (stderr): a line that cannot be written is counted and
/// reported as written, so nothing upstream retries, blocks or panics over it. The thread
/// hands over one whole line per `write`, so the count is in lines.
struct Counting<W> {
    inner: W,
    failed: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.inner.write_all(line).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_counted_and_reported_as_written() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("disk full"))
            }
        }
        let failed = Arc::new(AtomicU64::new(0));
        let mut writer = Counting {
            inner: Broken,
            failed: failed.clone(),
        };
        assert_eq!(writer.write(b"one line\n").unwrap(), 9);
        assert_eq!(writer.write(b"another\n").unwrap(), 8);
        writer.flush().unwrap();
        assert_eq!(failed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_written_line_is_not_counted() {
        let failed = Arc::new(AtomicU64::new(0));
        let mut writer = Counting {
            inner: Vec::new(),
            failed: failed.clone(),
        };
        writer.write_all(b"fine\n").unwrap();
        assert_eq!(writer.inner, b"fine\n");
        assert_eq!(failed.load(Ordering::Relaxed), 0);
    }
}
