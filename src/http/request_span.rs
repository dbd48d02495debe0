//! What the log says about a request: its id, method and client address on every
//! line logged while it is served (`telemetry::lines`), and its own line when it
//! ends (`LOG_REQUESTS`), which adds the route *pattern* (never the raw path or
//! query, which may carry tokens), the status and the time taken. Headers —
//! `Authorization` and cookies among them — and bodies are never recorded.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;

use super::request_context::RequestId;
use crate::config::LogRequests;
use crate::telemetry::lines::{RequestFields, in_request};

/// The fields every line logged while the request is served carries.
pub fn fields(
    request: &actix_web::HttpRequest,
    request_id: &RequestId,
    client: Option<IpAddr>,
) -> Rc<RequestFields> {
    Rc::new(RequestFields {
        request_id: Arc::clone(&request_id.0),
        method: request.method().as_str().to_owned(),
        client_ip: client,
    })
}

/// The request's line: every 5xx (a 503 — declining under load or during an outage,
/// by design — as a warning, so a spray of them cannot fill the log at ERROR), and
/// the rest as `LOG_REQUESTS` says.
pub fn end(
    fields: &Rc<RequestFields>,
    route: Option<&str>,
    status: StatusCode,
    started: Instant,
    requests: LogRequests,
) {
    let logged = match requests {
        LogRequests::All => true,
        LogRequests::Failures => status.is_client_error() || status.is_server_error(),
        LogRequests::ServerErrors => status.is_server_error(),
    };
    if !logged {
        return;
    }
    // A request a middleware refused (an origin CORS does not allow) never
    // reached routing.
    let route = route.unwrap_or("unmatched");
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = status.as_u16();
    in_request(fields, || {
        if status == 503 {
            tracing::warn!(status, route, elapsed_ms, "request refused: unavailable");
        } else if status >= 500 {
            tracing::error!(status, route, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, route, elapsed_ms, "request completed");
        }
    });
}
