//! Accounts: the user model, e-mail and password rules, and the account service
//! (register, login, refresh, logout, password change, sessions).

pub mod email;
pub mod password_policy;
pub mod service;
pub mod user;

pub use email::Email;
pub use service::{AccountError, AccountService};
pub use user::{Role, User, UserId, UserStatus};
