//! Portcullis: a single-binary, fail-closed security backend for single-host deployments.
//!
//! A new reader finds each feature by folder. The core knows nothing of HTTP:
//! `config` (settings and their checks), `clock`, `cache` (in-memory caches),
//! `validation` (field errors),
//! `model` (the shared records), `crypto`, `db` (SQLite, one module per table),
//! `audit` (the hash-chained security log), and the services `accounts`, `auth`,
//! `limits`, `policy`, `documents`, `webhooks`, `gate` (forward-auth) and `admin`. The web layer is `http`
//! (middleware and extractors) and `routes` (handlers). `state` and `startup` wire
//! them together; `cli` and `demo` drive them. `tests/api/layering.rs` checks who
//! may use whom.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod documents;
pub mod gate;
pub mod http;
pub mod limits;
pub mod model;
pub mod policy;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validation;
pub mod webhooks;

pub use startup::Application;

#[cfg(test)]
mod test_vectors;
