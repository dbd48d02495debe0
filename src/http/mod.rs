//! HTTP plumbing shared by every route, and the only place besides `routes` and
//! `startup` that knows actix: request context (id, client IP, timing, panics,
//! problem bodies), the per-request span, security headers, CORS, rate limiting at
//! the edge, JSON bodies, and the extractors handlers start with (the caller's
//! token, the administrator on the admin API and pages).

pub mod admin_page;
pub mod client_ip;
pub mod cors;
pub mod json;
pub mod principal;
pub mod problem;
pub mod rate_limit;
pub mod request_context;
pub mod request_span;
pub mod security_headers;

pub use client_ip::ClientIp;
pub use request_context::RequestId;

/// The query string's pairs, percent-decoded; a malformed one is 400.
pub fn query_pairs(
    req: &actix_web::HttpRequest,
) -> Result<Vec<(String, String)>, problem::ApiError> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(actix_web::web::Query::into_inner)
        .map_err(|_| problem::ApiError::BadRequest("The query string is malformed.".to_owned()))
}
