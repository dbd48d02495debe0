//! The records every layer shares — accounts, documents, policies, webhooks — as
//! plain data with their parsing rules. They sit below the database, so storage and
//! the services agree on one shape and the SQL modules depend on nothing above them.

pub mod admin_action;
pub mod auth_method;
pub mod document;
pub mod email;
pub mod host;
pub mod policy;
pub mod user;
pub mod webhook;

pub use auth_method::AuthMethod;
pub use email::Email;
pub use user::{Role, User, UserId, UserStatus};
