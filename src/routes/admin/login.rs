//! `/admin/login`: e-mail and password, then a TOTP code (or one of the account's
//! passkeys instead) for an administrator with MFA. The login rate limits and the
//! softlock apply as on the API; only active administrators get in, and with
//! `ADMIN_REQUIRE_MFA` only those with MFA.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::AccountError;
use crate::accounts::browser_sessions::{PENDING_SECONDS, SignIn, SignInError};
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::audit::RequestMeta;
use crate::http::ClientIp;
use crate::http::admin_page::{
    AdminForm, COOKIE, Form, PageError, allow_own_scripts, end_previous, removal, render,
    return_path, same_site_only,
};
use crate::http::json::Body;
use crate::http::problem::ApiError;
use crate::http::rate_limit::{enforce, enforce_code_limits};
use crate::limits::{Decision, LimitKey, RouteClass};
use crate::model::Email;
use crate::routes::ceremony;
use crate::state::AppState;

/// The cookie of a sign-in waiting for its code.
pub(super) const PENDING_COOKIE: &str = "portcullis_admin_mfa";
/// The cookie of a sign-in waiting for an MFA enrolment.
const ENROL_COOKIE: &str = "portcullis_admin_enrol";

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    error: Option<String>,
    email: String,
    step: Step,
    mfa_banner: bool,
    /// The admin page to return to after signing in.
    next: String,
    /// Passkeys are configured: the page offers them (and runs `passkeys.js`).
    passkeys: bool,
}

/// Where a sign-in is.
enum Step {
    Password,
    /// The password was right; a code is owed (or, when `passkey`, one of the
    /// account's passkeys instead).
    Code {
        passkey: bool,
    },
    /// An administrator without the MFA admin sessions require: set it up now.
    Enrol {
        qr_code: String,
        secret: String,
    },
    /// Enrolled and signed in: the backup codes, shown this once.
    Enrolled {
        codes: Vec<String>,
    },
}

/// The sign-in page's CSP: the admin pages' own, plus the QR code's `data:` image.
const SIGN_IN_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(
    state: &AppState,
    error: Option<&str>,
    email: &str,
    step: Step,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let shows_qr = matches!(step, Step::Enrol { .. });
    let passkeys = state.passkeys.enabled() && matches!(step, Step::Password)
        || matches!(step, Step::Code { passkey: true });
    let mut response = render(&LoginPage {
        error: error.map(str::to_owned),
        email: email.to_owned(),
        step,
        mfa_banner: !state.admin_sessions.require_mfa(),
        next: return_path(Some(next)).to_owned(),
        passkeys,
    })?;
    if passkeys {
        allow_own_scripts(&mut response);
    }
    if shows_qr {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(SIGN_IN_CONTENT_SECURITY_POLICY),
        );
    }
    if error.is_some() {
        *response.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

/// The admin session cookie (or the pending sign-in's), `Secure` behind TLS.
pub(super) fn cookie(
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
    page(&state, None, "", Step::Password, &next_of(&req))
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
        SignInError::MfaNotSetUp => "Administrators need MFA to sign in. Please start again.",
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
        return too_many(&state, &decision, Step::Password, &next);
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
        Ok(SignIn::NeedsEnrolment(value)) => {
            let enrol = format!(
                "/admin/login/enrol?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            Ok(see_other(&enrol)
                .cookie(cookie(&req, ENROL_COOKIE, &value, PENDING_SECONDS as i64))
                .finish())
        }
        Err(error) => page(&state, Some(refusal(error)?), &email, Step::Password, &next),
    }
}

pub async fn code_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(pending) = req.cookie(PENDING_COOKIE) else {
        return Ok(see_other("/admin/login").finish());
    };
    let step = code_step(&state, pending.value()).await?;
    page(&state, None, "", step, &next_of(&req))
}

/// The code step of the sign-in `pending` names.
async fn code_step(state: &AppState, pending: &str) -> Result<Step, PageError> {
    let passkey = ceremony::code_step_offers_passkey(&state.admin_sessions, pending).await?;
    Ok(Step::Code { passkey })
}

fn too_many(
    state: &AppState,
    decision: &Decision,
    step: Step,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let mut response = page(
        state,
        Some("Too many attempts. Please wait a minute and try again."),
        "",
        step,
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
            Step::Password,
            &next,
        );
    };
    let account = state.admin_sessions.pending_user(pending.value());
    if let Err(ApiError::RateLimited(decision)) = enforce_code_limits(&req, ip.0, account) {
        return too_many(&state, &decision, Step::Code { passkey: false }, &next);
    }
    let step = code_step(&state, pending.value()).await?;
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
        Err(error) => page(&state, Some(refusal(error)?), "", step, &next),
    }
}

/// The enrolment step: a fresh authenticator secret, as a QR code and as text.
pub async fn enrol_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let Some(enrolment) = req.cookie(ENROL_COOKIE) else {
        return Ok(see_other("/admin/login").finish());
    };
    enrol_page(&state, enrolment.value(), &meta, None, &next_of(&req)).await
}

async fn enrol_page(
    state: &AppState,
    enrolment: &str,
    meta: &RequestMeta,
    error: Option<&str>,
    next: &str,
) -> Result<HttpResponse, PageError> {
    match state.admin_sessions.enrolment_setup(enrolment, meta).await {
        Ok(setup) => page(
            state,
            error,
            "",
            Step::Enrol {
                qr_code: setup.qr_code,
                secret: setup.secret_base32.expose_secret().to_owned(),
            },
            next,
        ),
        Err(error) => page(state, Some(refusal(error)?), "", Step::Password, next),
    }
}

/// A code from the new secret turns MFA on and starts the session; the backup
/// codes are shown this once. The code step's limits apply.
pub async fn enrol_submit(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    let form = Form::parse(&body.0);
    let next = return_path(form.get("next")).to_owned();
    let Some(enrolment) = req.cookie(ENROL_COOKIE) else {
        return page(
            &state,
            Some("The sign-in expired. Please start again."),
            "",
            Step::Password,
            &next,
        );
    };
    let account = state.admin_sessions.enrolling_user(enrolment.value());
    if let Err(ApiError::RateLimited(decision)) = enforce_code_limits(&req, ip.0, account) {
        return too_many(&state, &decision, Step::Password, &next);
    }
    match state
        .admin_sessions
        .enrolment_finish(enrolment.value(), &form.text("code"), &meta)
        .await
    {
        Ok((codes, value)) => {
            let codes = codes.iter().map(|c| c.expose_secret().to_owned()).collect();
            let mut response = page(&state, None, "", Step::Enrolled { codes }, &next)?;
            response
                .add_cookie(&cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS))
                .and_then(|()| response.add_cookie(&removal(ENROL_COOKIE)))
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
            Ok(response)
        }
        // A wrong code: a fresh secret to scan again, with the error.
        Err(SignInError::Account(AccountError::Validation(_))) => {
            enrol_page(
                &state,
                enrolment.value(),
                &meta,
                Some("That code did not match. Scan the new code and try again."),
                &next,
            )
            .await
        }
        Err(error) => page(&state, Some(refusal(error)?), "", Step::Password, &next),
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
