//! One span per request carrying its id. Spans record the method, the route
//! *pattern* (never the raw path or query, which may carry tokens), the client
//! address and the status. Headers — `Authorization` and cookies among them — and
//! bodies are never recorded.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use super::ClientIp;
use super::request_context::{RequestId, RequestStart};

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
        // A 503 is the server declining under load or during an outage, by design:
        // a warning, so a spray of them cannot fill the log at the ERROR level.
        if status == 503 {
            tracing::warn!(status, elapsed_ms, "request refused: unavailable");
        } else if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request completed");
        }
    }
}
