//! CORS exactly as DESIGN.md says: configured origins only, a fixed header list.

use actix_cors::Cors;
use actix_web::http::{Method, header};

/// Request headers a browser may send cross-origin.
pub const ALLOWED_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "x-requested-with",
    "x-request-id",
    "accept",
    "origin",
];

/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: [&str; 2] = ["x-process-time", "x-request-id"];

/// Origins were validated at startup (no `*`, no `null`, exact `scheme://host[:port]`).
/// A request from any other origin is served without CORS headers, so the browser
/// withholds the response; a preflight from it is refused.
pub fn cors(allowed_origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers(ALLOWED_HEADERS.map(header::HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(header::HeaderName::from_static))
        .max_age(600);
    allowed_origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin))
}
