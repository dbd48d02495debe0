//! Portcullis: a single-binary, fail-closed security backend for single-host deployments.
//!
//! A new reader finds each feature by folder: `config` (settings and their checks),
//! `http` (middleware and extractors), `db` (SQLite and one module per table),
//! `audit` (the hash-chained security log), `routes` (handlers), `cli` (commands).

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod documents;
pub mod error;
pub mod http;
pub mod limits;
pub mod policy;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;

pub use startup::Application;

#[cfg(test)]
mod test_vectors;
