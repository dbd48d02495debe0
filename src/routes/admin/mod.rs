//! The admin pages: server-rendered with askama (which escapes all output), plain
//! HTML forms that work without JavaScript, a cookie session, a CSRF token in
//! every form, and every action decided by the policy engine and audited.

pub mod audit;
pub mod builder;
pub mod dashboard;
pub mod login;
pub mod policies;
pub mod simulator;
pub mod users;
pub mod webhooks;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::accounts::service::RequestMeta;
use crate::auth::admin_session::{AdminSession, COOKIE};
use crate::error::ACCESS_EVALUATION_FAILED;
use crate::policy::engine::{AccessRequest, Context, Reason, Resource, Subject};
use crate::state::AppState;

pub const FLASH_COOKIE: &str = "portcullis_flash";

/// Pages load only their own stylesheet, post only to themselves, and run no script.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// What goes wrong on a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not signed in")]
    SignedOut,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("access control evaluation failed")]
    EvaluationFailed,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::error::ApiError> for PageError {
    fn from(error: crate::error::ApiError) -> Self {
        use crate::error::ApiError;
        match error {
            ApiError::NotFound => PageError::NotFound,
            ApiError::Forbidden(reason) => PageError::Forbidden(reason),
            ApiError::AccessEvaluationFailed => PageError::EvaluationFailed,
            ApiError::Conflict(reason) => PageError::Conflict(reason),
            ApiError::Validation(errors) => PageError::Invalid(
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => PageError::Unexpected(anyhow::anyhow!(other.to_string())),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::EvaluationFailed | PageError::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignedOut = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin/login"))
                .finish();
        }
        if let PageError::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "admin page failed");
        }
        let (title, message) = match self {
            PageError::Forbidden(reason) => ("Forbidden", *reason),
            PageError::Conflict(reason) => ("Not possible", *reason),
            PageError::Invalid(reason) => ("Not saved", reason.as_str()),
            PageError::NotFound => ("Not found", "There is nothing here."),
            PageError::EvaluationFailed => ("Access denied", ACCESS_EVALUATION_FAILED),
            _ => (
                "Something went wrong",
                "An unexpected error occurred. Please try again later.",
            ),
        };
        let body = ErrorPage { title, message }
            .render()
            .unwrap_or_else(|_| message.to_owned());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                PAGE_CONTENT_SECURITY_POLICY,
            ))
            .body(body)
    }
}

/// Renders a page. An askama error (impossible for these templates) is a 500.
pub fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            PAGE_CONTENT_SECURITY_POLICY,
        ))
        .body(body))
}

/// POST-redirect-GET: a 303 to `to`, with a one-time message for the next page.
pub fn redirect_with(to: &str, message: &str) -> HttpResponse {
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let flash = Cookie::build(FLASH_COOKIE, encoded)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .cookie(flash)
        .finish()
}

/// The flash message a previous POST left, if any (the caller clears the cookie).
pub fn flash(req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    url::form_urlencoded::parse(format!("m={}", cookie.value()).as_bytes())
        .next()
        .map(|(_, message)| message.into_owned())
        .filter(|m| !m.is_empty())
}

/// Adds the flash-clearing cookie to a rendered page that showed one.
pub fn clear_flash(mut response: HttpResponse, shown: bool) -> HttpResponse {
    if shown {
        let _ = response.add_cookie(&removal(FLASH_COOKIE));
    }
    response
}

/// A cookie that makes the browser forget the admin cookie `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut gone = Cookie::build(name, "").path("/admin").finish();
    gone.make_removal();
    gone
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
    pub flash: Option<String>,
    /// Shown when administrators can sign in without MFA (the demo).
    pub mfa_banner: bool,
    pub section: &'static str,
}

/// The signed-in administrator of a request: the first thing every page does.
pub async fn session(req: &HttpRequest, state: &AppState) -> Result<AdminSession, PageError> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Err(PageError::SignedOut);
    };
    state
        .admin_sessions
        .resume(cookie.value())
        .await
        .map_err(|e| PageError::Unexpected(e.into()))?
        .ok_or(PageError::SignedOut)
}

pub fn chrome(
    req: &HttpRequest,
    state: &AppState,
    session: &AdminSession,
    section: &'static str,
) -> Chrome {
    Chrome {
        email: session.user.email.to_string(),
        csrf: session.csrf().to_owned(),
        flash: flash(req),
        mfa_banner: !state.admin_sessions.require_mfa(),
        section,
    }
}

/// Refuses a cross-site request: a browser says so in `Sec-Fetch-Site`, and an
/// `Origin` other than this server's own is refused too.
pub fn same_site_only(req: &HttpRequest) -> Result<(), PageError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(PageError::Forbidden("Cross-site requests are refused."));
    }
    // `Origin: null` is what a browser sends for a same-origin form under a strict
    // referrer policy; only `Sec-Fetch-Site` (checked above) can vouch for it.
    if header("origin") == Some("null") && header("sec-fetch-site").is_none() {
        return Err(PageError::Forbidden("Cross-site requests are refused."));
    }
    if let Some(origin) = header("origin").filter(|o| *o != "null") {
        let info = req.connection_info();
        let own = format!("{}://{}", info.scheme(), info.host());
        if origin != own {
            return Err(PageError::Forbidden("Cross-site requests are refused."));
        }
    }
    Ok(())
}

/// A submitted form: its fields in order (repeated names allowed).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_owned()
    }
}

/// Every form post starts here: a signed-in administrator, a same-site request and
/// the session's CSRF token (compared in constant time). Anything else is 403 (or
/// back to the sign-in page without a session).
pub async fn checked_post(
    req: &HttpRequest,
    state: &AppState,
    body: &web::Bytes,
) -> Result<(AdminSession, Form), PageError> {
    let session = session(req, state).await?;
    same_site_only(req)?;
    let form = parse_form(body)?;
    match form.get("csrf") {
        Some(token) if session.csrf_matches(token) => Ok((session, form)),
        _ => Err(PageError::Forbidden(
            "The form's security token is missing or wrong. Reload the page and try again.",
        )),
    }
}

pub fn parse_form(body: &web::Bytes) -> Result<Form, PageError> {
    Ok(Form(
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

/// Asks the policy engine whether the administrator may do `action` (resource type
/// `admin`). A deny is 403, an evaluation error the generic 500.
pub async fn authorize(
    state: &AppState,
    session: &AdminSession,
    req: &HttpRequest,
    meta: &RequestMeta,
    action: &str,
    target: Option<String>,
) -> Result<(), PageError> {
    let request = AccessRequest {
        subject: Subject::from(&session.user),
        action: action.to_owned(),
        resource: Resource {
            kind: "admin".to_owned(),
            id: target,
            owner_id: None,
            attributes: Default::default(),
        },
        context: Context {
            ip: meta.ip,
            method: Some(req.method().to_string()),
            path: Some(req.path().to_owned()),
            now: state.clock.now(),
        },
    };
    let decision = state.policies.decide(&request);
    match decision.reason {
        Reason::Error { .. } => {
            state
                .policies
                .audit_evaluation_failure(&request, &decision, meta)
                .await;
            Err(PageError::EvaluationFailed)
        }
        _ if decision.allowed => Ok(()),
        _ => Err(PageError::Forbidden(
            "The access policies do not allow this administrator action.",
        )),
    }
}

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
