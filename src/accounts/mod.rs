//! Accounts: the password rules and the account service (register, login, refresh,
//! logout, password change, sessions, MFA, and the administrators' operations on
//! accounts), and passkeys (registering them, and signing in with one alone). The
//! account record itself is `crate::model::User`.

pub mod browser_sessions;
pub mod passkeys;
pub mod password_policy;
pub mod service;

pub use service::{AccountError, AccountService};
