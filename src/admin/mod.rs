//! Administration, web-free: the one authorization
//! question every administrator operation asks (through the pages or the admin
//! API), and the dashboard's overview. What administrators *do* lives with the
//! thing they do it to (accounts, policies, webhooks), taking an `AdminActor`.

pub mod access;
pub mod config_check;
pub mod overview;

pub use access::{AdminAccess, AdminAccessError, AdminAction};
pub use overview::{AdminOverview, Overview};

/// An admin-page session ends after 30 minutes without a request, or 12 hours
/// after sign-in.
pub const SESSION_IDLE_SECONDS: i64 = 30 * 60;
pub const SESSION_ABSOLUTE_SECONDS: i64 = 12 * 3600;
