//! The outermost per-request middleware. It gives each request an id and a client
//! address, times it (and counts it in the metrics by route class and status),
//! turns a handler panic into an opaque 500 (the worker keeps serving), and makes
//! every error response a problem+json body carrying the id.

use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;

use super::client_ip::{self, ClientIp};
use super::request_span;
use crate::audit::RequestMeta;
use crate::config::LogRequests;
use crate::http::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::policy::engine::Context;
use crate::telemetry::lines::{InRequest, in_request};
use crate::telemetry::metrics::{HttpMetrics, RouteClass};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const PROCESS_TIME_HEADER: &str = "x-process-time";

/// The id of the current request: the caller's `X-Request-ID` when it is safe to
/// echo (1–64 of `[A-Za-z0-9_-]`), otherwise a fresh UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_headers(headers: &header::HeaderMap) -> Self {
        let incoming = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v));
        match incoming {
            Some(id) => Self(Arc::from(id)),
            None => Self(Arc::from(uuid::Uuid::new_v4().to_string())),
        }
    }
}

pub fn is_valid_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<RequestId>()
                .cloned()
                .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("request context missing"))),
        )
    }
}

/// User agents are kept (for the sessions list and the audit log) only this long.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Where a request came from, for services that record it (sessions, audit): the
/// resolved client address, a bounded user agent, and the request id.
/// The request's [`RequestMeta`].
pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    let ext = req.extensions();
    RequestMeta {
        ip: ext.get::<ClientIp>().map(|ip| ip.0),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        request_id: ext.get::<RequestId>().map(|id| id.as_str().to_owned()),
    }
}

impl FromRequest for RequestMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(request_meta(req)))
    }
}

/// The request as the policy engine sees it: the client's address, the method, the
/// path, and the time. Every door builds it here, so every door asks alike.
pub fn policy_context(req: &HttpRequest, meta: &RequestMeta, now: i64) -> Context {
    Context {
        ip: meta.ip,
        method: Some(req.method().to_string()),
        path: Some(req.path().to_owned()),
        now,
    }
}

/// The route class a path is counted under: its fixed prefix, never the path
/// (which may carry ids), so the metrics' label set stays bounded.
pub fn route_class(path: &str) -> RouteClass {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if let Some(api) = path.strip_prefix("/api/v1/") {
        return match api.split('/').next().unwrap_or("") {
            "auth" => RouteClass::Auth,
            "documents" => RouteClass::Documents,
            "webhooks" => RouteClass::Webhooks,
            "authz" => RouteClass::Authz,
            "admin" => RouteClass::AdminApi,
            "gate" => RouteClass::Gate,
            _ => RouteClass::Other,
        };
    }
    if under("/health") {
        RouteClass::Health
    } else if under("/admin") {
        RouteClass::AdminPages
    } else if under("/gate") {
        RouteClass::Portal
    } else if path == "/api/openapi.json" || under("/.well-known") || under("/static") {
        RouteClass::Static
    } else {
        RouteClass::Other
    }
}

#[derive(Clone)]
pub struct RequestContext {
    trusted_proxies: Rc<[IpNet]>,
    requests: LogRequests,
    metrics: Rc<HttpMetrics>,
}

impl RequestContext {
    pub fn new(trusted_proxies: &[IpNet], requests: LogRequests, metrics: HttpMetrics) -> Self {
        Self {
            trusted_proxies: Rc::from(trusted_proxies),
            requests,
            metrics: Rc::new(metrics),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestContext
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = RequestContextMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestContextMiddleware {
            service: Rc::new(service),
            trusted_proxies: Rc::clone(&self.trusted_proxies),
            requests: self.requests,
            metrics: Rc::clone(&self.metrics),
        }))
    }
}

pub struct RequestContextMiddleware<S> {
    service: Rc<S>,
    trusted_proxies: Rc<[IpNet]>,
    requests: LogRequests,
    metrics: Rc<HttpMetrics>,
}

impl<S, B> Service<ServiceRequest> for RequestContextMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        // The path as the router matches it (percent-encoded letters decoded), so
        // `/api/v1/%61uth/login` is counted where it is served.
        let class = route_class(req.match_info().as_str());
        let request_id = RequestId::from_headers(req.headers());
        let client = client_ip::resolve(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
        );
        {
            let mut ext = req.extensions_mut();
            ext.insert(request_id.clone());
            if let Some(ip) = client {
                ext.insert(ClientIp(ip));
            }
        }
        let fields = request_span::fields(req.request(), &request_id, client);
        let service = Rc::clone(&self.service);
        let requests = self.requests;
        let metrics = Rc::clone(&self.metrics);
        Box::pin(async move {
            // A panic may happen while building the future or while polling it.
            let called = in_request(&fields, || {
                std::panic::catch_unwind(AssertUnwindSafe(|| service.call(req)))
            });
            let outcome = match called {
                Ok(fut) => InRequest::new(Rc::clone(&fields), AssertUnwindSafe(fut).catch_unwind())
                    .await
                    .ok(),
                Err(_) => None,
            };
            let (status, route) = match &outcome {
                Some(Ok(response)) => (response.status(), response.request().match_pattern()),
                Some(Err(error)) => (error.as_response_error().status_code(), None),
                None => (StatusCode::INTERNAL_SERVER_ERROR, None),
            };
            request_span::end(&fields, route.as_deref(), status, started, requests);
            metrics.observe(class, status.as_u16(), started.elapsed());
            match outcome {
                Some(Ok(response)) => {
                    let (request, response) = response.map_into_boxed_body().into_parts();
                    // An admin or portal page, the gate's refusal page and the
                    // handoff's render their own (generic) HTML error pages.
                    let path = request.path();
                    let page = (path.starts_with("/admin")
                        || path.starts_with("/gate")
                        || path.starts_with("/api/v1/gate/")
                        || path.starts_with(crate::gate::handoff::PREFIX))
                        && response
                            .headers()
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|ct| ct.starts_with("text/html"));
                    let problem = if page {
                        None
                    } else {
                        problem_for(response.status(), response.error())
                    };
                    let response = finish(response, problem.as_ref(), &request_id, started);
                    Ok(ServiceResponse::new(request, response))
                }
                // Errors raised by middleware become responses only in the server's
                // dispatcher, after we return: shape them there with a mapper.
                Some(Err(mut error)) => {
                    let status = error.as_response_error().status_code();
                    let problem = problem_for(status, Some(&error));
                    error.add_response_mapper(move |response| {
                        finish(response, problem.as_ref(), &request_id, started)
                    });
                    Err(error)
                }
                None => {
                    tracing::error!(request_id = %request_id.as_str(), "handler panicked; answered 500");
                    let problem = Problem::internal();
                    let mut error = Error::from(InternalError::from_response(
                        "handler panicked",
                        problem.clone().into_response(),
                    ));
                    error.add_response_mapper(move |response| {
                        finish(response, Some(&problem), &request_id, started)
                    });
                    Err(error)
                }
            }
        })
    }
}

/// The problem document for an error status. Our own errors keep their detail;
/// anything raised elsewhere (router, CORS, actix extractors) gets a generic text for
/// its status, never the inner error's message. `None` for success statuses.
fn problem_for(status: StatusCode, error: Option<&Error>) -> Option<Problem> {
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    Some(match error.and_then(|e| e.as_error::<ApiError>()) {
        Some(api_error) => api_error.problem(),
        None => Problem::for_status(status),
    })
}

/// Writes the problem body (with the request id) and the id and timing headers.
fn finish(
    response: HttpResponse,
    problem: Option<&Problem>,
    request_id: &RequestId,
    started: Instant,
) -> HttpResponse {
    let mut response = match problem {
        Some(problem) => {
            let body = problem
                .clone()
                .with_request_id(request_id.as_str())
                .to_body();
            response.map_body(|head, _| {
                head.headers
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
                BoxBody::new(body)
            })
        }
        None => response,
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    // Seconds with six decimals, from whole microseconds (no float formatting).
    let micros = started.elapsed().as_micros();
    let seconds = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    if let Ok(value) = HeaderValue::try_from(seconds) {
        headers.insert(HeaderName::from_static(PROCESS_TIME_HEADER), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_counted_by_their_fixed_prefix() {
        for (path, class) in [
            ("/health", RouteClass::Health),
            ("/health/ready", RouteClass::Health),
            ("/healthz", RouteClass::Other),
            ("/api/v1/auth/login", RouteClass::Auth),
            ("/api/v1/documents", RouteClass::Documents),
            (
                "/api/v1/documents/6f1c2a4e-0000-4000-8000-000000000001",
                RouteClass::Documents,
            ),
            ("/api/v1/webhooks/1/deliveries", RouteClass::Webhooks),
            ("/api/v1/authz/check", RouteClass::Authz),
            ("/api/v1/admin/policies/x", RouteClass::AdminApi),
            ("/api/v1/gate/forward-auth", RouteClass::Gate),
            ("/api/v1/nothing", RouteClass::Other),
            ("/api/v1", RouteClass::Other),
            ("/api/v1x/auth", RouteClass::Other),
            ("/gate/login", RouteClass::Portal),
            ("/gateway", RouteClass::Other),
            ("/admin", RouteClass::AdminPages),
            ("/admin/users/42", RouteClass::AdminPages),
            ("/administrator", RouteClass::Other),
            ("/api/openapi.json", RouteClass::Static),
            ("/.well-known/jwks.json", RouteClass::Static),
            ("/static/admin.css", RouteClass::Static),
            ("/", RouteClass::Other),
            ("/wp-login.php", RouteClass::Other),
        ] {
            assert_eq!(route_class(path), class, "{path}");
        }
    }

    #[test]
    fn request_id_charset_and_length() {
        assert!(is_valid_request_id("abc-DEF_123"));
        assert!(is_valid_request_id(&"a".repeat(64)));
        assert!(!is_valid_request_id(&"a".repeat(65)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("inject\r\nheader"));
        assert!(!is_valid_request_id("<script>"));
    }
}
