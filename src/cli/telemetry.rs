//! Logging set-up: the tracing subscriber, text or JSON, to a buffered
//! stderr flushed on exit.

use crate::config::LogFormat;
use std::sync::{Arc, Mutex};

/// Log lines go to stderr through a 64 KiB buffer that a background
/// thread flushes every 200 ms (and `LogFlush` at exit), so a busy server
/// makes a few writes a second instead of one per request — as nginx's
/// `access_log … buffer= flush=` does. A crash loses at most the last
/// 200 ms of lines.
pub struct LogFlush(Arc<Mutex<std::io::BufWriter<std::io::Stderr>>>);

impl Drop for LogFlush {
    fn drop(&mut self) {
        if let Ok(mut w) = self.0.lock() {
            let _ = std::io::Write::flush(&mut *w);
        }
    }
}

#[derive(Clone)]
struct BufferedStderr(Arc<Mutex<std::io::BufWriter<std::io::Stderr>>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedStderr {
    type Writer = <Mutex<std::io::BufWriter<std::io::Stderr>> as tracing_subscriber::fmt::MakeWriter<'a>>::Writer;
    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// Installs the global subscriber: JSON or text lines on stderr.
pub fn init_tracing(format: LogFormat, level: &str) -> LogFlush {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let out = Arc::new(Mutex::new(std::io::BufWriter::with_capacity(
        64 << 10,
        std::io::stderr(),
    )));
    let weak = Arc::downgrade(&out);
    let _ = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            while let Some(out) = weak.upgrade() {
                if let Ok(mut w) = out.lock() {
                    let _ = std::io::Write::flush(&mut *w);
                }
                drop(out);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    // Colour codes only for a terminal, never into a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(BufferedStderr(out.clone()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogFlush(out)
}
