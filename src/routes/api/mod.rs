//! The JSON API under `/api/v1`, one file per resource.

pub mod admin_users;
pub mod auth;
pub mod mfa;

use actix_web::dev::HttpServiceFactory;
use actix_web::web;

use super::{delete, get, post};

pub fn scope() -> impl HttpServiceFactory {
    web::scope("/api/v1")
        .service(post("/auth/register", auth::register))
        .service(post("/auth/login", auth::login))
        .service(post("/auth/refresh", auth::refresh))
        .service(post("/auth/logout", auth::logout))
        .service(post("/auth/logout-all", auth::logout_all))
        .service(get("/auth/me", auth::me))
        .service(post("/auth/password", auth::change_password))
        .service(get("/auth/sessions", auth::sessions))
        .service(delete("/auth/sessions/{id}", auth::revoke_session))
        .service(post("/auth/mfa/setup", mfa::setup))
        .service(post("/auth/mfa/enable", mfa::enable))
        .service(post("/auth/mfa/disable", mfa::disable))
        .service(post("/auth/mfa/verify-login", mfa::verify_login))
        .service(post("/admin/users/{id}/lock", admin_users::lock))
        .service(post("/admin/users/{id}/unlock", admin_users::unlock))
        .service(post("/admin/users/{id}/mfa/reset", admin_users::reset_mfa))
}
