//! Outgoing webhooks: Standard Webhooks signatures, the SSRF guard, the outbox and
//! its delivery worker, and the events that feed it.

pub mod signing;
