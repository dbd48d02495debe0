//! Outgoing webhooks: Standard Webhooks signatures, the SSRF guard, the outbox and
//! its delivery worker, and the events that feed it.

pub mod events;
pub mod model;
pub mod service;
pub mod signing;
pub mod ssrf;
pub mod worker;
