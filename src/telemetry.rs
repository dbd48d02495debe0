//! Logging: one span per request carrying its id; text or JSON lines on stderr.
//! Spans record the method, the route *pattern* (never the raw path or query, which
//! may carry tokens), the client address and the status. Headers — `Authorization`
//! and cookies among them — and bodies are never recorded.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};
use crate::http::ClientIp;
use crate::http::request_context::{RequestId, RequestStart};

/// Installs the global subscriber (once; later calls are ignored) and routes panic
/// reports through it, so a panic is a log line with the request's span, not stray
/// stderr text. Lines are written by a background thread, so a slow reader of
/// stderr never stalls a worker; keep the returned guard alive until exit (dropping
/// it flushes).
pub fn init(log: &LogSettings) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
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

/// Builds the per-request span from what the request context middleware resolved.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let ext = request.extensions();
        let request_id = ext
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let client_ip = ext
            .get::<ClientIp>()
            .map(|ip| ip.0.to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            route = %route,
            client_ip = %client_ip,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, elapsed_ms) = match outcome {
            Ok(response) => (
                response.status().as_u16(),
                response
                    .request()
                    .extensions()
                    .get::<RequestStart>()
                    .map(|s| s.0.elapsed().as_secs_f64() * 1000.0),
            ),
            Err(error) => (error.as_response_error().status_code().as_u16(), None),
        };
        span.record("status", status);
        let _entered = span.enter();
        let elapsed_ms = elapsed_ms.unwrap_or_default();
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request completed");
        }
    }
}
