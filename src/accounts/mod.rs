//! Accounts: the password rules and the account service (register, login, refresh,
//! logout, password change, sessions, MFA, and the administrators' operations on
//! accounts). The account record itself is `crate::model::User`.

pub mod browser_sessions;
pub mod password_policy;
pub mod service;

pub use service::{AccountError, AccountService};
