//! The admin pages: server-rendered with askama (which escapes all output), plain
//! HTML forms that work without JavaScript, a cookie session, a CSRF token in
//! every form, and every action decided by the policy engine and audited. The
//! request context (session, CSRF, authorization, chrome, flash) is the
//! `http::admin_page` extractors'; these handlers only read, call and render.

pub mod account;
pub mod audit;
pub mod builder;
pub mod dashboard;
pub mod errors;
pub mod gate;
pub mod login;
pub mod passkeys;
pub mod policies;
pub mod simulator;
pub mod users;
pub mod webhooks;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::{get, get_post, post};

/// The messages of a refused form's errors, given as (field, message), for `field`.
pub(crate) fn messages_for(errors: &[(String, String)], field: &str) -> Vec<String> {
    errors
        .iter()
        .filter(|(f, _)| f == field)
        .map(|(_, m)| m.clone())
        .collect()
}

/// An account session as the account page and a user's page list it.
pub struct SessionView {
    pub id: uuid::Uuid,
    pub created: String,
    pub last_seen: String,
    pub address: String,
    pub user_agent: String,
    /// The session this browser rides on.
    pub current: bool,
}

impl SessionView {
    pub(crate) fn of(session: &crate::accounts::service::SessionRow, current: bool) -> Self {
        Self {
            id: session.id,
            created: crate::clock::rfc3339(session.created_at),
            last_seen: crate::clock::rfc3339(session.last_used_at),
            address: session.ip.clone().unwrap_or_default(),
            user_agent: session.user_agent.clone().unwrap_or_default(),
            current,
        }
    }
}

/// `/static/admin.css`, cached by browsers for a day.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(include_str!("../../../static/admin.css"))
}

/// Every page answers HEAD as GET (for probes and link checkers), and a method a
/// page does not take gets 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/static/admin.css", stylesheet))
        .service(get("/static/passkeys.js", crate::routes::ceremony::script))
        .service(get("/admin", dashboard::page))
        .service(get("/admin/", dashboard::page))
        .service(get_post("/admin/login", login::form, login::submit))
        .service(get_post(
            "/admin/login/code",
            login::code_form,
            login::code_submit,
        ))
        .service(get_post(
            "/admin/login/enrol",
            login::enrol_form,
            login::enrol_submit,
        ))
        .service(post("/admin/logout", login::logout))
        .service(post("/admin/login/passkey/start", passkeys::sign_in_start))
        .service(post(
            "/admin/login/passkey/finish",
            passkeys::sign_in_finish,
        ))
        .service(post(
            "/admin/login/code/passkey/start",
            passkeys::code_start,
        ))
        .service(post(
            "/admin/login/code/passkey/finish",
            passkeys::code_finish,
        ))
        .service(post(
            "/admin/account/passkeys/start",
            passkeys::register_start,
        ))
        .service(post(
            "/admin/account/passkeys/finish",
            passkeys::register_finish,
        ))
        .service(get_post("/admin/account", account::page, account::action))
        .service(get("/admin/policies", policies::list))
        .service(get("/admin/policies/export", policies::export))
        .service(get_post(
            "/admin/policies/import",
            policies::import_form,
            policies::import,
        ))
        .service(get_post(
            "/admin/policies/new",
            policies::new_form,
            policies::new_submit,
        ))
        .service(get_post(
            "/admin/policies/{id}",
            policies::edit_form,
            policies::edit_submit,
        ))
        .service(post("/admin/policies/{id}/status", policies::set_status))
        .service(post("/admin/policies/{id}/delete", policies::delete))
        .service(get("/admin/policies/{id}/history", policies::history))
        .service(post("/admin/policies/{id}/restore", policies::restore))
        .service(get("/admin/gate", gate::page))
        .service(get_post(
            "/admin/simulator",
            simulator::form,
            simulator::submit,
        ))
        .service(get_post("/admin/users", users::list, users::create))
        .service(get_post("/admin/users/{id}", users::detail, users::action))
        .service(get("/admin/webhooks", webhooks::list))
        .service(get_post(
            "/admin/webhooks/{id}",
            webhooks::detail,
            webhooks::action,
        ))
        .service(get("/admin/audit", audit::list))
        .service(get("/admin/audit.csv", audit::csv));
}
