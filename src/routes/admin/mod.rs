//! The admin pages: server-rendered with askama (which escapes all output), plain
//! HTML forms that work without JavaScript, a cookie session, a CSRF token in
//! every form, and every action decided by the policy engine and audited. The
//! request context (session, CSRF, authorization, chrome, flash) is the
//! `http::admin_page` extractors'; these handlers only read, call and render.

pub mod audit;
pub mod builder;
pub mod dashboard;
pub mod errors;
pub mod gate;
pub mod login;
pub mod policies;
pub mod simulator;
pub mod users;
pub mod webhooks;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// `/static/admin.css`, cached by browsers for a day.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(include_str!("../../../static/admin.css"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/admin.css", web::get().to(stylesheet))
        .route("/admin", web::get().to(dashboard::page))
        .route("/admin/", web::get().to(dashboard::page))
        .route("/admin/login", web::get().to(login::form))
        .route("/admin/login", web::post().to(login::submit))
        .route("/admin/login/code", web::get().to(login::code_form))
        .route("/admin/login/code", web::post().to(login::code_submit))
        .route("/admin/logout", web::post().to(login::logout))
        .route("/admin/policies", web::get().to(policies::list))
        .route("/admin/policies/new", web::get().to(policies::new_form))
        .route("/admin/policies/new", web::post().to(policies::new_submit))
        .route("/admin/policies/{id}", web::get().to(policies::edit_form))
        .route(
            "/admin/policies/{id}",
            web::post().to(policies::edit_submit),
        )
        .route(
            "/admin/policies/{id}/status",
            web::post().to(policies::set_status),
        )
        .route(
            "/admin/policies/{id}/delete",
            web::post().to(policies::delete),
        )
        .route(
            "/admin/policies/{id}/history",
            web::get().to(policies::history),
        )
        .route("/admin/gate", web::get().to(gate::page))
        .route("/admin/simulator", web::get().to(simulator::form))
        .route("/admin/simulator", web::post().to(simulator::submit))
        .route("/admin/users", web::get().to(users::list))
        .route("/admin/users/{id}", web::get().to(users::detail))
        .route("/admin/users/{id}", web::post().to(users::action))
        .route("/admin/webhooks", web::get().to(webhooks::list))
        .route("/admin/webhooks/{id}", web::get().to(webhooks::detail))
        .route("/admin/webhooks/{id}", web::post().to(webhooks::action))
        .route("/admin/audit", web::get().to(audit::list))
        .route("/admin/audit.csv", web::get().to(audit::csv));
}
