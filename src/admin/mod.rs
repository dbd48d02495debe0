//! Administration, web-free: the sessions of the admin pages, the one authorization
//! question every administrator operation asks (through the pages or the admin
//! API), and the dashboard's overview. What administrators *do* lives with the
//! thing they do it to (accounts, policies, webhooks), taking an `AdminActor`.

pub mod access;
pub mod overview;
pub mod sessions;

pub use access::{AdminAccess, AdminAccessError, AdminAction};
pub use overview::{AdminOverview, Overview};
pub use sessions::AdminSessions;
