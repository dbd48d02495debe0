//! HTTP plumbing shared by every route: request context (id, client IP, timing,
//! panics, problem bodies), security headers, CORS, JSON bodies and TLS.

pub mod client_ip;
pub mod cors;
pub mod json;
pub mod request_context;
pub mod security_headers;
pub mod tls;

pub use client_ip::ClientIp;
pub use request_context::RequestId;
