//! The admin pages' passkey ceremonies, for `static/passkeys.js`: adding a passkey
//! on `/admin/account` (behind the session, its CSRF token and the password again,
//! as on the API), and signing in with one on `/admin/login` (the sign-in limits
//! apply; the session opens as after a password and a code, signed in to with
//! `passkey`, which counts as MFA for `ADMIN_REQUIRE_MFA`). Renaming and deleting
//! are the account page's plain forms.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;

use super::login::cookie;
use crate::accounts::AccountError;
use crate::accounts::browser_sessions::SignInError;
use crate::accounts::passkeys::PasskeyError;
use crate::accounts::service::Proof;
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::audit::RequestMeta;
use crate::http::ClientIp;
use crate::http::admin_page::{
    AdminForm, COOKIE, Form, PageError, end_previous, flash_cookie, return_path, same_site_only,
};
use crate::http::json::Body;
use crate::http::problem::ApiError;
use crate::routes::ceremony;
use crate::state::AppState;

/// A refusal as the script sees it (its status); anything unexpected is the error
/// page.
fn passkey_refusal(error: PasskeyError) -> Result<HttpResponse, PageError> {
    let status = match error {
        PasskeyError::NotConfigured => StatusCode::NOT_FOUND,
        PasskeyError::TooMany | PasskeyError::AlreadyRegistered => StatusCode::CONFLICT,
        PasskeyError::Validation(_)
        | PasskeyError::CeremonyInvalid
        | PasskeyError::CredentialRefused => StatusCode::UNPROCESSABLE_ENTITY,
        PasskeyError::SignInFailed => StatusCode::UNAUTHORIZED,
        other => return Err(ApiError::from(other).into()),
    };
    Ok(ceremony::refused(status))
}

/// `POST /admin/account/passkeys/start`: the password again (and a code with MFA
/// on), then the creation options.
pub async fn register_start(post: AdminForm) -> Result<HttpResponse, PageError> {
    if !post.state.passkeys.enabled() {
        return passkey_refusal(PasskeyError::NotConfigured);
    }
    let secret = |name| {
        post.form
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.to_owned()))
    };
    let proof = Proof {
        password: Some(secret("password").unwrap_or_else(|| SecretString::from(String::new()))),
        code: secret("code"),
    };
    let user = post.user().id;
    if let Err(error) = post
        .state
        .accounts
        .reauthenticate_session(user, post.session.session_id, proof, &post.meta)
        .await
    {
        let status = match error {
            AccountError::Validation(_) | AccountError::ReauthenticationRequired => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AccountError::TemporarilyLocked => StatusCode::FORBIDDEN,
            other => return Err(ApiError::from(other).into()),
        };
        return Ok(ceremony::refused(status));
    }
    match post
        .state
        .passkeys
        .start_registration(&post.session.principal())
        .await
    {
        Ok(started) => Ok(ceremony::options(started)),
        Err(error) => passkey_refusal(error),
    }
}

/// `POST /admin/account/passkeys/finish`: the new credential; back to the account
/// page, which says so.
pub async fn register_finish(post: AdminForm) -> Result<HttpResponse, PageError> {
    let Some(credential) = ceremony::credential(&post.form) else {
        return passkey_refusal(PasskeyError::CredentialRefused);
    };
    let name = post.form.get("name").filter(|n| !n.trim().is_empty());
    match post
        .state
        .passkeys
        .finish_registration(
            &post.session.principal(),
            &post.form.text("ceremony"),
            name,
            &credential,
            &post.meta,
        )
        .await
    {
        Ok(added) => {
            let mut answer = HttpResponse::Ok();
            answer.cookie(flash_cookie(
                &format!("Added the passkey “{}”.", added.name),
                false,
            ));
            Ok(ceremony::next(answer, "/admin/account#passkeys"))
        }
        Err(error) => passkey_refusal(error),
    }
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

/// `POST /admin/login/passkey/finish`: the assertion; signed in, on to `next`.
pub async fn sign_in_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    same_site_only(&req)?;
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
