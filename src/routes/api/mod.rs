//! The JSON API under `/api/v1`, one file per resource.

pub mod admin_policies;
pub mod admin_users;
pub mod auth;
pub mod authz;
pub mod documents;
pub mod mfa;
pub mod passkeys;
pub mod webhooks;

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::web;

use crate::http::principal::admin_only;

use super::{delete, get, post, resource};

/// Grouped in scopes by resource, the busiest first: the router compares a
/// request with each scope's prefix and only then with its routes, so a request for
/// a document never tries the webhooks' or the sessions' patterns.
pub fn scope() -> impl HttpServiceFactory {
    web::scope("/api/v1")
        .service(
            web::scope("/documents")
                .service(
                    resource("", "GET, HEAD, POST")
                        .route(web::get().to(documents::list))
                        .route(web::head().to(documents::list))
                        .route(web::post().to(documents::create)),
                )
                .service(
                    resource("/{id}", "GET, HEAD, PUT, PATCH, DELETE")
                        .route(web::get().to(documents::get))
                        .route(web::head().to(documents::get))
                        .route(web::put().to(documents::replace))
                        .route(web::patch().to(documents::patch))
                        .route(web::delete().to(documents::delete)),
                ),
        )
        .service(
            web::scope("/auth")
                .service(get("/me", auth::me))
                .service(post("/login", auth::login))
                .service(post("/refresh", auth::refresh))
                .service(post("/logout", auth::logout))
                .service(post("/register", auth::register))
                .service(post("/logout-all", auth::logout_all))
                .service(post("/password", auth::change_password))
                .service(get("/sessions", auth::sessions))
                .service(delete("/sessions/{id}", auth::revoke_session))
                .service(post("/mfa/setup", mfa::setup))
                .service(post("/mfa/enable", mfa::enable))
                .service(post("/mfa/disable", mfa::disable))
                .service(post("/mfa/verify-login", mfa::verify_login))
                .service(get("/passkeys", passkeys::list))
                .service(post("/passkeys/register/start", passkeys::register_start))
                .service(post("/passkeys/register/finish", passkeys::register_finish))
                .service(post("/passkeys/login/start", passkeys::login_start))
                .service(post("/passkeys/login/finish", passkeys::login_finish))
                .service(post(
                    "/passkeys/verify-login/start",
                    passkeys::verify_login_start,
                ))
                .service(post(
                    "/passkeys/verify-login/finish",
                    passkeys::verify_login_finish,
                ))
                .service(
                    resource("/passkeys/{id}", "PATCH, DELETE")
                        .route(web::patch().to(passkeys::rename))
                        .route(web::delete().to(passkeys::delete)),
                ),
        )
        .service(post("/authz/check", authz::check))
        .service(
            web::scope("/webhooks")
                .service(
                    resource("", "GET, HEAD, POST")
                        .route(web::get().to(webhooks::list))
                        .route(web::head().to(webhooks::list))
                        .route(web::post().to(webhooks::create)),
                )
                .service(
                    resource("/{id}", "GET, HEAD, PATCH, DELETE")
                        .route(web::get().to(webhooks::get))
                        .route(web::head().to(webhooks::get))
                        .route(web::patch().to(webhooks::update))
                        .route(web::delete().to(webhooks::delete)),
                )
                .service(post("/{id}/rotate-secret", webhooks::rotate_secret))
                .service(post("/{id}/test", webhooks::test))
                .service(get("/{id}/deliveries", webhooks::deliveries))
                .service(post(
                    "/{id}/deliveries/{delivery_id}/retry",
                    webhooks::retry,
                )),
        )
        .service(admin_scope())
}

/// `/api/v1/admin/*`: behind [`admin_only`], so only an active administrator's
/// request reaches a handler; each handler then asks the engine about its action.
fn admin_scope() -> impl HttpServiceFactory {
    web::scope("/admin")
        .wrap(from_fn(admin_only))
        .service(post("/users/{id}/lock", admin_users::lock))
        .service(post("/users/{id}/unlock", admin_users::unlock))
        .service(post("/users/{id}/mfa/reset", admin_users::reset_mfa))
        .service(
            resource("/users/{id}/passkeys", "GET, HEAD, DELETE")
                .route(web::get().to(admin_users::passkeys))
                .route(web::head().to(admin_users::passkeys))
                .route(web::delete().to(admin_users::reset_passkeys)),
        )
        .service(
            resource("/policies", "GET, HEAD, POST")
                .route(web::get().to(admin_policies::list))
                .route(web::head().to(admin_policies::list))
                .route(web::post().to(admin_policies::create)),
        )
        // Fixed paths before `{id}`, which would otherwise match them.
        .service(post("/policies/simulate", admin_policies::simulate))
        .service(get("/policies/export", admin_policies::export))
        .service(post("/policies/import", admin_policies::import))
        .service(get("/policies/vocabulary", admin_policies::vocabulary))
        .service(
            resource("/policies/{id}", "GET, HEAD, PUT, PATCH, DELETE")
                .route(web::get().to(admin_policies::get))
                .route(web::head().to(admin_policies::get))
                .route(web::put().to(admin_policies::update))
                .route(web::patch().to(admin_policies::set_status))
                .route(web::delete().to(admin_policies::delete)),
        )
        .service(get("/policies/{id}/versions", admin_policies::versions))
}
