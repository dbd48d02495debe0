//! One test binary for the whole black-box suite (faster to build and link).

mod admin_pages;
mod audit;
mod auth_flow;
mod browser;
mod cli;
mod client_ip;
mod config;
mod cors;
mod documents;
mod errors;
mod health;
mod helpers;
mod layering;
mod logging;
mod mfa;
mod openapi;
mod passwords;
mod policies;
mod rate_limits;
mod request_id;
mod revocation;
mod security_headers;
mod sessions;
mod softlock;
mod tokens;
mod webhooks;
