//! The admin pages' passkey ceremonies, for `static/passkeys.js`: adding a passkey
//! on `/admin/account` (behind the session, its CSRF token and the password again,
//! as on the API), and signing in with one on `/admin/login` — alone, or in place
//! of the code after the password (the sign-in limits apply; the session opens as
//! after a password and a code, signed in to with `passkey`, which counts as MFA
//! for `ADMIN_REQUIRE_MFA`). Renaming and deleting are the account page's plain
//! forms.

use actix_web::{HttpRequest, HttpResponse, web};

use super::login::{PENDING_COOKIE, cookie};
use crate::accounts::browser_sessions::SignInError;
use crate::accounts::passkeys::PasskeyError;
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::audit::RequestMeta;
use crate::http::ClientIp;
use crate::http::admin_page::{
    AdminForm, COOKIE, Form, PageError, end_previous, flash_cookie, removal, return_path,
    same_site_only,
};
use crate::http::json::Body;
use crate::http::problem::ApiError;
use crate::routes::ceremony::{self, AccountPage, AccountPost, PageForm, passkey_refusal};
use crate::state::AppState;

/// The account page's passkeys, as `ceremony` manages them: back to its passkey
/// section, with the admin pages' one-time message.
pub(super) const ACCOUNT: AccountPage = AccountPage {
    back: "/admin/account#passkeys",
    flash: flash_cookie,
    heading: "Passkeys",
    rename: PageForm {
        action: "/admin/account#passkeys",
        op: Some("passkey_rename"),
    },
    delete: PageForm {
        action: "/admin/account#passkeys",
        op: Some("passkey_delete"),
    },
    add: "/admin/account#passkeys",
    start: "/admin/account/passkeys/start",
    finish: "/admin/account/passkeys/finish",
};

/// An account page post's passkey part (the extractor checked the session, the
/// origin and the CSRF token).
pub(super) fn account_post(post: &AdminForm) -> AccountPost<'_> {
    AccountPost {
        state: &post.state,
        session: &post.session,
        form: &post.form,
        meta: &post.meta,
        page: &ACCOUNT,
    }
}

/// `POST /admin/account/passkeys/start`: the password again (and a code with MFA
/// on), then the creation options.
pub async fn register_start(post: AdminForm) -> Result<HttpResponse, PageError> {
    account_post(&post).register_start().await
}

/// `POST /admin/account/passkeys/finish`: the new credential; back to the account
/// page, which says so.
pub async fn register_finish(post: AdminForm) -> Result<HttpResponse, PageError> {
    account_post(&post).register_finish().await
}

/// `POST /admin/login/passkey/start`: options for a passkey sign-in (the sign-in
/// limit of the address applies).
pub async fn sign_in_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    ceremony::sign_in_start(&req, ip.0, &state)
}

/// `POST /admin/login/passkey/finish`: the assertion (a sign-in attempt of the
/// address's); signed in, on to `next`.
pub async fn sign_in_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    if let Some(refusal) = ceremony::sign_in_attempt(&req, ip.0) {
        return Ok(refusal);
    }
    let form = Form::parse(&body.0);
    let next = return_path(form.get("next")).to_owned();
    let Some(credential) = ceremony::credential(&form) else {
        return passkey_refusal(PasskeyError::SignInFailed);
    };
    end_previous(&req, &state.admin_sessions, COOKIE, &meta).await?;
    match state
        .admin_sessions
        .sign_in_passkey(&form.text("ceremony"), &credential, &meta)
        .await
    {
        Ok(value) => {
            let mut answer = HttpResponse::Ok();
            answer.cookie(cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS));
            Ok(ceremony::next(answer, &next))
        }
        // Not an administrator: the same answer as any failure (the audit log
        // keeps the reason).
        Err(SignInError::NotAdmin | SignInError::PendingExpired) => {
            passkey_refusal(PasskeyError::SignInFailed)
        }
        Err(SignInError::Passkey(PasskeyError::CeremonyInvalid)) => {
            passkey_refusal(PasskeyError::SignInFailed)
        }
        Err(SignInError::Passkey(error)) => passkey_refusal(error),
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// `POST /admin/login/code/passkey/start`: options for answering the pending
/// sign-in's code step with one of the account's passkeys.
pub async fn code_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    ceremony::code_start(&req, ip.0, &state.admin_sessions, PENDING_COOKIE).await
}

/// `POST /admin/login/code/passkey/finish`: the assertion in place of the code;
/// signed in, on to `next`.
pub async fn code_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
    let form = Form::parse(&body.0);
    let next = return_path(form.get("next")).to_owned();
    let cookies = (COOKIE, PENDING_COOKIE);
    let finished =
        ceremony::code_finish(&req, ip.0, &state.admin_sessions, cookies, &form, &meta).await?;
    match finished {
        Ok(value) => {
            let mut answer = HttpResponse::Ok();
            answer
                .cookie(cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS))
                .cookie(removal(PENDING_COOKIE));
            Ok(ceremony::next(answer, &next))
        }
        Err(refusal) => Ok(refusal),
    }
}
