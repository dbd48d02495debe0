//! The admin pages' request context, as two extractors that make every page handler
//! as thin as an API handler:
//!
//! - [`AdminPage`] (a GET): the signed-in administrator of the cookie session, the
//!   request as the engine judges it, and the flash message a previous POST left.
//! - [`AdminForm`] (a POST): the same, after refusing cross-site requests and
//!   checking the session's CSRF token (constant time), with the submitted fields.
//!
//! Both [`authorize`](AdminPage::authorize) through the one question every
//! administrator operation asks on every door (`admin::AdminAccess`), and
//! [`render`](AdminPage::render) with the chrome; a rendered page that showed the
//! flash clears it. Errors are [`PageError`]s: a 303 to the sign-in page, or an
//! HTML error page showing the same problem the API would answer.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;

use super::json::Body;
use super::principal::app_state;
use super::problem::ApiError;
use super::request_context::policy_context;
use crate::accounts::browser_sessions::BrowserSession;
use crate::admin::AdminAction;
use crate::audit::{AdminActor, RequestMeta};
use crate::model::User;
use crate::state::AppState;

pub const FLASH_COOKIE: &str = "portcullis_flash";
/// The admin session's cookie.
pub const COOKIE: &str = "portcullis_admin";

/// Pages load only their own stylesheet, post only to themselves, and run no script.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Lets a rendered page run this server's own scripts (`static/passkeys.js`, for
/// the WebAuthn ceremonies) and nothing else: its CSP's `script-src 'none'`
/// becomes `script-src 'self'` — no inline script, no `eval`. Only the pages with
/// a passkey ceremony call this; every other page keeps `script-src 'none'`.
pub fn allow_own_scripts(response: &mut HttpResponse) {
    let relaxed = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|csp| csp.to_str().ok())
        .map(|csp| csp.replace("script-src 'none'", "script-src 'self'"))
        .and_then(|csp| header::HeaderValue::from_str(&csp).ok());
    if let Some(csp) = relaxed {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
}

/// What goes wrong on a page: no session (back to sign-in), or a problem, shown as
/// an HTML page with the status, title and text the API would answer with.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not signed in: back to the sign-in page, which returns to `next` (the page
    /// that was asked for) afterwards.
    #[error("not signed in")]
    SignedOut(Option<String>),
    #[error(transparent)]
    Problem(#[from] ApiError),
}

impl PageError {
    pub fn forbidden(reason: &'static str) -> Self {
        PageError::Problem(ApiError::Forbidden(reason))
    }

    pub fn not_found() -> Self {
        PageError::Problem(ApiError::NotFound)
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    /// (field, message) of a validation problem.
    fields: Vec<(String, String)>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut(_) => StatusCode::SEE_OTHER,
            PageError::Problem(problem) => problem.problem().status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let error = match self {
            PageError::SignedOut(next) => {
                let location = match next {
                    Some(next) => format!(
                        "/admin/login?next={}",
                        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                    ),
                    None => "/admin/login".to_owned(),
                };
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .finish();
            }
            PageError::Problem(error) => error,
        };
        if let ApiError::Unexpected(cause) = error {
            tracing::error!(error = ?cause, "admin page failed");
        }
        let problem = error.problem();
        let message = if problem.errors.is_empty() {
            problem.detail.as_str()
        } else {
            "These fields need attention:"
        };
        let body = ErrorPage {
            title: &problem.title,
            message,
            fields: problem
                .errors
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect(),
        }
        .render()
        .unwrap_or_else(|_| problem.detail.clone());
        let mut response = HttpResponse::build(problem.status_code())
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                PAGE_CONTENT_SECURITY_POLICY,
            ))
            .body(body);
        if let ApiError::RateLimited(decision) = error {
            super::rate_limit::write_headers(response.headers_mut(), decision);
        }
        response
    }
}

/// Renders a page. An askama error (impossible for these templates) is a 500.
pub fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            PAGE_CONTENT_SECURITY_POLICY,
        ))
        .body(body))
}

/// A one-time message for the next page: what was done, or why it was not (shown
/// as an error, so a refusal never looks like a success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub message: String,
    pub error: bool,
}

/// Where a sign-in may return to: an admin page on this server, never another
/// site (`//host`, `/\\host`), the sign-in itself, or anything a browser could
/// read as something else. Anything else returns to the dashboard.
pub fn return_path(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if (next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?"))
                && !next.starts_with("/admin/login")
                && !next.contains("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control)
                && !has_dot_segment(next) =>
        {
            next
        }
        _ => "/admin",
    }
}

/// Whether a path (before its query) has a `.` or `..` segment, escaped or not:
/// `/admin/../x` leaves the admin pages.
fn has_dot_segment(path_and_query: &str) -> bool {
    let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
    let decoded = url::form_urlencoded::parse(format!("p={path}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    [path, decoded.as_str()].iter().any(|p| {
        p.split('/')
            .any(|segment| segment == "." || segment == "..")
    })
}

/// POST-redirect-GET: a 303 to `to`, with a one-time message for the next page.
pub fn redirect_with(to: &str, message: &str) -> HttpResponse {
    redirect_flashing(to, message, false)
}

/// POST-redirect-GET after a refusal: the next page shows `message` as an error.
pub fn redirect_with_error(to: &str, message: &str) -> HttpResponse {
    redirect_flashing(to, message, true)
}

fn redirect_flashing(to: &str, message: &str, error: bool) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .cookie(flash_cookie(message, error))
        .finish()
}

/// The cookie that carries a one-time message to the next admin page (for an
/// answer that is not a redirect, such as a script's).
pub fn flash_cookie(message: &str, error: bool) -> Cookie<'static> {
    // The first character says which kind it is.
    let kind = if error { "e" } else { "s" };
    let encoded: String =
        url::form_urlencoded::byte_serialize(format!("{kind}{message}").as_bytes()).collect();
    Cookie::build(FLASH_COOKIE, encoded)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// The flash message a previous POST left, if any.
fn flash(req: &HttpRequest) -> Option<Flash> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    let pair = format!("m={}", cookie.value());
    let (_, text) = url::form_urlencoded::parse(pair.as_bytes()).next()?;
    let error = text.starts_with('e');
    let message = text.get(1..).unwrap_or_default().to_owned();
    (!message.is_empty()).then_some(Flash { message, error })
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
    pub flash: Option<Flash>,
    /// Shown when administrators can sign in without MFA (the demo).
    pub mfa_banner: bool,
    pub section: &'static str,
}

/// The origins this server is reached at: `PUBLIC_URL` when configured; otherwise
/// the request's scheme and `Host`, and the bind address. The forwarded headers
/// (`X-Forwarded-Host`, `X-Forwarded-Proto`, `Forwarded`) are believed only from a
/// trusted proxy, so a client cannot name its own origin as this server's.
fn own_origins(req: &HttpRequest) -> Vec<String> {
    let Ok(state) = app_state(req) else {
        return Vec::new();
    };
    let http = &state.settings.http;
    if let Some(public) = &http.public_url {
        return vec![public.clone()];
    }
    let from_proxy = req.peer_addr().is_some_and(|peer| {
        http.trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip().to_canonical()))
    });
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let scheme = match header("x-forwarded-proto").filter(|_| from_proxy) {
        Some(proto) => proto.trim().to_ascii_lowercase(),
        None if http.tls.is_some() => "https".to_owned(),
        None => "http".to_owned(),
    };
    let host = header("x-forwarded-host")
        .filter(|_| from_proxy)
        .or_else(|| header("host"))
        .map(|h| h.trim().to_ascii_lowercase());
    let mut origins: Vec<String> = host
        .map(|h| format!("{scheme}://{h}"))
        .into_iter()
        .collect();
    origins.push(format!("{scheme}://{}", http.bind_address));
    origins
}

/// Refuses a cross-site request: a browser says so in `Sec-Fetch-Site`, and an
/// `Origin` other than this server's own is refused too.
pub fn same_site_only(req: &HttpRequest) -> Result<(), PageError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let refused = || PageError::forbidden("Cross-site requests are refused.");
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused());
    }
    // `Origin: null` is what a browser sends for a same-origin form under a strict
    // referrer policy; only `Sec-Fetch-Site` (checked above) can vouch for it.
    if header("origin") == Some("null") && header("sec-fetch-site").is_none() {
        return Err(refused());
    }
    if let Some(origin) = header("origin").filter(|o| *o != "null") {
        let origin = origin.to_ascii_lowercase();
        if !own_origins(req).contains(&origin) {
            return Err(refused());
        }
    }
    Ok(())
}

/// Ends the session a browser still holds in cookie `name` (of `sessions`) before
/// a new sign-in starts: a new sign-in never leaves the previous one alive.
pub async fn end_previous(
    req: &HttpRequest,
    sessions: &crate::accounts::browser_sessions::BrowserSessions,
    name: &str,
    meta: &RequestMeta,
) -> Result<(), PageError> {
    match req.cookie(name) {
        Some(old) => sessions
            .end_by_cookie(old.value(), meta)
            .await
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)).into()),
        None => Ok(()),
    }
}

/// A submitted form: its fields in order (repeated names allowed).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

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

/// A signed-in administrator's GET.
pub struct AdminPage {
    pub session: BrowserSession,
    pub state: web::Data<AppState>,
    pub meta: RequestMeta,
    req: HttpRequest,
    flash: Option<Flash>,
}

impl AdminPage {
    /// The session a request's cookie names, if it is still good.
    async fn resume(req: &HttpRequest) -> Result<Self, PageError> {
        let state = app_state(req)?;
        // A page asked for while signed out is where the sign-in returns to.
        let signed_out = || {
            let asked = req.uri().path_and_query().map(|p| p.as_str().to_owned());
            PageError::SignedOut(asked.filter(|_| req.method() == actix_web::http::Method::GET))
        };
        let Some(cookie) = req.cookie(COOKIE) else {
            return Err(signed_out());
        };
        let session = state
            .admin_sessions
            .resume(cookie.value())
            .await
            .map_err(|e| ApiError::Unexpected(e.into()))?
            .ok_or_else(signed_out)?;
        let meta = RequestMeta::extract(req)
            .await
            .map_err(PageError::Problem)?;
        Ok(Self {
            flash: flash(req),
            session,
            state,
            meta,
            req: req.clone(),
        })
    }

    pub fn user(&self) -> &User {
        &self.session.user
    }

    /// The administrator, if the engine allows `action` (on `target`). A deny is a
    /// 403 page, an evaluation error the generic 500 page.
    pub async fn authorize(
        &self,
        action: AdminAction,
        target: Option<String>,
    ) -> Result<AdminActor, PageError> {
        let context = self.policy_context();
        self.state
            .admin_access
            .authorize(
                &self.session.user,
                // How this browser session was signed in to (a passkey, or the
                // password and a code with MFA on).
                self.session.auth_method,
                action,
                target,
                context,
                &self.meta,
            )
            .await
            .map_err(|e| PageError::Problem(e.into()))
    }

    /// This request's context as the policy engine sees it.
    pub fn policy_context(&self) -> crate::policy::engine::Context {
        policy_context(&self.req, &self.meta, self.state.clock.now())
    }

    /// The chrome of a page in `section`, with the flash message, if any.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            email: self.session.user.email.to_string(),
            csrf: self.session.csrf().to_owned(),
            flash: self.flash.clone(),
            mfa_banner: !self.state.admin_sessions.require_mfa(),
            section,
        }
    }

    /// Renders `page` (built with [`AdminPage::chrome`]); the flash it showed is
    /// cleared.
    pub fn render(&self, page: &impl Template) -> Result<HttpResponse, PageError> {
        let mut response = render(page)?;
        if self.flash.is_some() {
            let _ = response.add_cookie(&removal(FLASH_COOKIE));
        }
        Ok(response)
    }

    /// The query string's pairs, percent-decoded.
    pub fn query(&self) -> Result<Vec<(String, String)>, PageError> {
        Ok(super::query_pairs(&self.req)?)
    }
}

impl FromRequest for AdminPage {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { AdminPage::resume(&req).await })
    }
}

/// A signed-in administrator's form post: same-site, with the session's CSRF token.
pub struct AdminForm {
    pub page: AdminPage,
    pub form: Form,
}

impl AdminForm {
    /// Every form post starts here: a signed-in administrator, a same-site request
    /// and the session's CSRF token (compared in constant time). Anything else is
    /// 403 (or back to the sign-in page without a session).
    pub async fn check(req: &HttpRequest, body: &[u8]) -> Result<Self, PageError> {
        let page = AdminPage::resume(req).await?;
        same_site_only(req)?;
        let form = Form::parse(body);
        match form.get("csrf") {
            Some(token) if page.session.csrf_matches(token) => Ok(Self { page, form }),
            _ => Err(PageError::forbidden(
                "The form's security token is missing or wrong. Reload the page and try again.",
            )),
        }
    }
}

/// A destructive action's question, asked on a page of its own before anything is
/// done: "Confirm" posts the same form again with `confirm=yes`, "Cancel" leads
/// away. Plain HTML, so it works without JavaScript.
pub struct Confirmation {
    /// The page's heading, naming the object: "Delete the policy “Office hours”?"
    pub question: String,
    /// What happens, and whether it can be undone.
    pub consequence: String,
    /// The confirming button: "Delete “Office hours”".
    pub button: String,
    /// Where "Cancel" leads.
    pub cancel: String,
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    action: String,
    /// The post's own fields, sent again as they came.
    fields: Vec<(String, String)>,
    ask: Confirmation,
    /// The password is asked for again on the page (`Some`), and a code too when
    /// the account has MFA (`Some(true)`).
    reauthenticate: Option<bool>,
}

impl AdminForm {
    /// Whether this post is the confirmed one its confirmation page sends.
    pub fn confirmed(&self) -> bool {
        self.form.get("confirm") == Some("yes")
    }

    /// The confirmation page for this post, in the navigation's `section`.
    pub fn ask(&self, section: &'static str, ask: Confirmation) -> Result<HttpResponse, PageError> {
        self.ask_with(section, ask, None)
    }

    /// The confirmation page for a post that needs the password again (and a
    /// code, for an account with MFA): the fields are on the page itself, never
    /// carried over in hidden fields.
    pub fn ask_reauthenticating(
        &self,
        section: &'static str,
        ask: Confirmation,
    ) -> Result<HttpResponse, PageError> {
        self.ask_with(section, ask, Some(self.user().mfa_enabled))
    }

    fn ask_with(
        &self,
        section: &'static str,
        ask: Confirmation,
        reauthenticate: Option<bool>,
    ) -> Result<HttpResponse, PageError> {
        let fields = self
            .form
            .0
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "csrf" | "confirm" | "password" | "code"))
            .cloned()
            .collect();
        self.page.render(&ConfirmPage {
            chrome: self.page.chrome(section),
            action: self.page.req.path().to_owned(),
            fields,
            ask,
            reauthenticate,
        })
    }
}

impl std::ops::Deref for AdminForm {
    type Target = AdminPage;

    fn deref(&self) -> &AdminPage {
        &self.page
    }
}

impl FromRequest for AdminForm {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await?;
            AdminForm::check(&req, &body.0).await
        })
    }
}
