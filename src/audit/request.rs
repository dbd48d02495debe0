//! Where a request came from, as sessions and the audit log record it: the resolved
//! client address, a bounded user agent, and the request id (the one the client
//! sees in `X-Request-ID`, so a report finds its audit records). The web layer fills
//! it in; services only read it.

use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}
