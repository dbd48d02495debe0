//! Logging: text or JSON lines on stderr, written by a background thread; panics
//! become log lines. Every line logged while a request is served carries the
//! request's id (`lines`); the request's own line is the web layer's
//! (`http::request_span`).
//!
//! Requests the HTTP parser refuses before they reach the application (a bad request
//! line, too many or too large headers) would each write an ERROR line, so anyone
//! could flood the log. They are counted instead, and the start-up wiring reports
//! the count at WARN once a minute.
//!
//! `metrics` holds the Prometheus metrics the services record and the metrics
//! listener serves.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where the HTTP parser reports what it refused.
const PARSER_TARGET: &str = "actix_http::h1::dispatcher";

static MALFORMED_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Requests the HTTP parser refused since the last call.
pub fn take_malformed_requests() -> u64 {
    MALFORMED_REQUESTS.swap(0, Ordering::Relaxed)
}

/// Counts the parser's refusals instead of writing them.
struct CountMalformed;

impl<S: tracing::Subscriber> Layer<S> for CountMalformed {
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        MALFORMED_REQUESTS.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod lines;
pub mod metrics;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber (once; later calls are ignored) and routes panic
/// reports through it, so a panic is a log line with the request's id, not stray
/// stderr text. Lines are written by a background thread, so a slow reader of
/// stderr never stalls a worker; keep the returned guard alive until exit (dropping
/// it flushes).
pub fn init(log: &LogSettings) -> Option<WorkerGuard> {
    let mut filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    if let Ok(silenced) = format!("{PARSER_TARGET}=off").parse() {
        filter = filter.add_directive(silenced);
    }
    // Lines are written in batches: the writer thread flushes whenever it has
    // emptied its queue, so a busy server makes one write for many lines, not one
    // system call (and a wake-up) per line.
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    ));
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(lines::LineFormat {
            json: log.format == LogFormat::Json,
        })
        .with_writer(writer);
    let counted =
        CountMalformed.with_filter(Targets::new().with_target(PARSER_TARGET, Level::WARN));
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(counted)
        .try_init();
    if installed.is_err() {
        return None;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic.message = %message, panic.location = %location, "panic");
    }));
    Some(guard)
}
