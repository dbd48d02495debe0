//! `/admin/login`: e-mail and password, then a TOTP code for an administrator with
//! MFA. The login rate limits and the softlock apply as on the API; only active
//! administrators get in, and with `ADMIN_REQUIRE_MFA` only those with MFA.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::AccountError;
use crate::accounts::browser_sessions::{PENDING_SECONDS, SignIn, SignInError};
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::audit::RequestMeta;
use crate::http::ClientIp;
use crate::http::admin_page::{
    AdminForm, COOKIE, Form, PageError, end_previous, removal, render, return_path, same_site_only,
};
use crate::http::json::Body;
use crate::http::problem::ApiError;
use crate::http::rate_limit::enforce;
use crate::limits::{Decision, LimitKey, RouteClass};
use crate::model::Email;
use crate::state::AppState;

/// The cookie of a sign-in waiting for its code.
const PENDING_COOKIE: &str = "portcullis_admin_mfa";

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    error: Option<String>,
    email: String,
    code_step: bool,
    mfa_banner: bool,
    /// The admin page to return to after signing in.
    next: String,
}

fn page(
    state: &AppState,
    error: Option<&str>,
    email: &str,
    code_step: bool,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let mut response = render(&LoginPage {
        error: error.map(str::to_owned),
        email: email.to_owned(),
        code_step,
        mfa_banner: !state.admin_sessions.require_mfa(),
        next: return_path(Some(next)).to_owned(),
    })?;
    if error.is_some() {
        *response.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

fn cookie(
    req: &HttpRequest,
    name: &'static str,
    value: &SecretString,
    max_age: i64,
) -> Cookie<'static> {
    let state = req.app_data::<web::Data<AppState>>();
    let secure =
        state.is_some_and(|s| s.settings.http.tls.is_some() || s.settings.http.behind_tls_proxy);
    Cookie::build(name, value.expose_secret().to_owned())
        .path("/admin")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish()
}

/// The `next` a sign-in page was sent with (checked by [`return_path`] wherever
/// it is used).
fn next_of(req: &HttpRequest) -> String {
    crate::http::query_pairs(req)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "next"))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::SeeOther();
    builder.insert_header(("location", location.to_owned()));
    builder
}

pub async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page(&state, None, "", false, &next_of(&req))
}

/// Why a sign-in failed, in the words the page shows.
fn refusal(error: SignInError) -> Result<&'static str, PageError> {
    Ok(match error {
        SignInError::Account(AccountError::InvalidCredentials) => "Invalid email or password.",
        SignInError::Account(AccountError::InvalidMfaCode | AccountError::InvalidMfaToken) => {
            "Invalid authentication code."
        }
        // As for a wrong password: the page must not tell that a password was
        // right (the audit log keeps the reason).
        SignInError::NotAdmin => "Invalid email or password.",
        SignInError::MfaNotSetUp => {
            "Administrators need MFA to sign in. Set it up with /api/v1/auth/mfa/setup, then sign in again."
        }
        SignInError::PendingExpired => "The sign-in expired. Please start again.",
        SignInError::Account(AccountError::Password(_)) => {
            "Too many sign-ins are being processed. Please try again shortly."
        }
        other => return Err(ApiError::Unexpected(anyhow::anyhow!(other)).into()),
    })
}

pub async fn submit(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    let form = Form::parse(&body.0);
    let email = form.text("email");
    let next = return_path(form.get("next")).to_owned();
    let limited = enforce(&req, RouteClass::LoginIp, &LimitKey::ip(ip.0)).and_then(|()| {
        match Email::parse(&email) {
            Ok(parsed) => enforce(&req, RouteClass::LoginAccount, &LimitKey::account(&parsed)),
            Err(_) => Ok(()),
        }
    });
    if let Err(ApiError::RateLimited(decision)) = limited {
        return too_many(&state, &decision, false, &next);
    }
    let password = SecretString::from(form.get("password").unwrap_or("").to_owned());
    end_previous(&req, &state.admin_sessions, COOKIE, &meta).await?;
    match state.admin_sessions.sign_in(&email, password, &meta).await {
        Ok(SignIn::Done(value)) => Ok(see_other(&next)
            .cookie(cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS))
            .finish()),
        Ok(SignIn::NeedsCode(value)) => {
            let code_step = format!(
                "/admin/login/code?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            Ok(see_other(&code_step)
                .cookie(cookie(&req, PENDING_COOKIE, &value, PENDING_SECONDS as i64))
                .finish())
        }
        Err(error) => page(&state, Some(refusal(error)?), &email, false, &next),
    }
}

pub async fn code_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if req.cookie(PENDING_COOKIE).is_none() {
        return Ok(see_other("/admin/login").finish());
    }
    page(&state, None, "", true, &next_of(&req))
}

fn too_many(
    state: &AppState,
    decision: &Decision,
    code_step: bool,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let mut response = page(
        state,
        Some("Too many attempts. Please wait a minute and try again."),
        "",
        code_step,
        next,
    )?;
    *response.status_mut() = actix_web::http::StatusCode::TOO_MANY_REQUESTS;
    crate::http::rate_limit::write_headers(response.headers_mut(), decision);
    Ok(response)
}

pub async fn code_submit(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    let form = Form::parse(&body.0);
    let next = return_path(form.get("next")).to_owned();
    let Some(pending) = req.cookie(PENDING_COOKIE) else {
        return page(
            &state,
            Some("The sign-in expired. Please start again."),
            "",
            false,
            &next,
        );
    };
    // The API's limits for a code: per address, and per account.
    let mut limited = enforce(&req, RouteClass::MfaIp, &LimitKey::ip(ip.0));
    if let (Ok(()), Some(user)) = (&limited, state.admin_sessions.pending_user(pending.value())) {
        limited = enforce(&req, RouteClass::MfaAccount, &LimitKey::User(user));
    }
    if let Err(ApiError::RateLimited(decision)) = limited {
        return too_many(&state, &decision, true, &next);
    }
    end_previous(&req, &state.admin_sessions, COOKIE, &meta).await?;
    match state
        .admin_sessions
        .sign_in_code(pending.value(), &form.text("code"), &meta)
        .await
    {
        Ok(value) => Ok(see_other(&next)
            .cookie(cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS))
            .cookie(removal(PENDING_COOKIE))
            .finish()),
        Err(error) => page(&state, Some(refusal(error)?), "", true, &next),
    }
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    match AdminForm::check(&req, &body.0).await {
        Ok(post) => state
            .admin_sessions
            .sign_out(&post.session, &meta)
            .await
            .map_err(ApiError::from)?,
        // Already over (expired or ended): nothing to protect, just forget it.
        Err(PageError::SignedOut(_)) => {}
        Err(other) => return Err(other),
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/login"))
        .cookie(removal(COOKIE))
        .finish())
}
