//! `/admin/account`: the signed-in administrator's own account — enrol TOTP (the QR
//! code and the secret, then a code to confirm; backup codes shown once), change
//! the password (every session ends; this browser gets a new one), and the
//! account's own sessions, each with its own revoke, and its passkeys (listed,
//! renamed, deleted after the password again; added through `static/passkeys.js`
//! and `admin::passkeys`, the one script this page runs). Self-service, as on the API:
//! no administrator action is asked about, only the session's own account is
//! touched, and the account service audits every change.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::login::cookie;
use super::{SessionView, messages_for};
use crate::accounts::AccountError;
use crate::accounts::browser_sessions::SignInError;
use crate::accounts::passkeys::PasskeyError;
use crate::accounts::service::Proof;
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, COOKIE, Chrome, Confirmation, PageError, allow_own_scripts,
    redirect_with, redirect_with_error,
};
use crate::http::problem::ApiError;

/// The account page's CSP: the admin pages' own, plus the QR code's `data:` image
/// (and this server's own script when passkeys are on).
const ACCOUNT_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The MFA step the page is at.
pub enum MfaStep {
    /// Off; offers to set it up.
    Off,
    /// A secret was made; the page shows it and asks for a code from it.
    Confirm {
        qr_code: String,
        secret: String,
    },
    /// Just turned on: the backup codes, shown this once.
    BackupCodes(Vec<String>),
    On,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    mfa: MfaStep,
    sessions: Vec<SessionView>,
    /// The account's passkeys; `None` when passkeys are not configured.
    passkeys: Option<Vec<PasskeyLine>>,
    /// Adding a passkey asks for a code too (MFA is on).
    with_code: bool,
    /// (field, message) of the form that was refused.
    errors: Vec<(String, String)>,
}

/// One passkey as the page lists it.
pub struct PasskeyLine {
    id: Uuid,
    name: String,
    created: String,
    last_used: String,
}

impl AccountPage {
    fn errors_for(&self, field: &str) -> Vec<String> {
        messages_for(&self.errors, field)
    }
}

async fn render(
    page: &AdminPage,
    mfa: Option<MfaStep>,
    errors: Vec<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let user = page.user();
    let sessions = page
        .state
        .accounts
        .sessions_of(user.id, page.session.session_id)
        .await?
        .into_iter()
        .map(|info| SessionView::of(&info.session, info.current))
        .collect();
    let mfa = mfa.unwrap_or(if user.mfa_enabled {
        MfaStep::On
    } else {
        MfaStep::Off
    });
    let passkeys = if page.state.passkeys.enabled() {
        let listed = page
            .state
            .passkeys
            .list(&page.session.principal())
            .await
            .map_err(ApiError::from)?;
        Some(
            listed
                .into_iter()
                .map(|p| PasskeyLine {
                    id: p.id,
                    name: p.name,
                    created: rfc3339(p.created_at),
                    last_used: p.last_used_at.map(rfc3339).unwrap_or_default(),
                })
                .collect(),
        )
    } else {
        None
    };
    let refused = !errors.is_empty();
    let scripted = passkeys.is_some();
    let mut response = page.render(&AccountPage {
        chrome: page.chrome("account"),
        email: user.email.to_string(),
        with_code: user.mfa_enabled,
        mfa,
        sessions,
        passkeys,
        errors,
    })?;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(ACCOUNT_CONTENT_SECURITY_POLICY),
    );
    if scripted {
        allow_own_scripts(&mut response);
    }
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn page(page: AdminPage) -> Result<HttpResponse, PageError> {
    render(&page, None, Vec::new()).await
}

/// A refusal of the account service as (field, message) pairs for the form.
fn refusal(error: AccountError, field: &str) -> Result<Vec<(String, String)>, PageError> {
    Ok(match error {
        AccountError::Validation(errors) => {
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        }
        AccountError::WrongCurrentPassword => vec![(
            "current_password".to_owned(),
            "is not your current password".to_owned(),
        )],
        AccountError::TemporarilyLocked => vec![(
            field.to_owned(),
            "too many wrong attempts; try again in a few minutes".to_owned(),
        )],
        AccountError::MfaNotPending => vec![(
            field.to_owned(),
            "the setup expired; start it again".to_owned(),
        )],
        other => return Err(ApiError::from(other).into()),
    })
}

pub async fn action(req: HttpRequest, post: AdminForm) -> Result<HttpResponse, PageError> {
    let (accounts, meta) = (&post.state.accounts, &post.meta);
    let user = post.user().id;
    match post.form.text("op").as_str() {
        "mfa_setup" => {
            // As on the API: a stolen session alone must not enrol the thief's
            // authenticator, so the password comes first (wrong ones count toward
            // the softlock).
            let proof = Proof {
                password: Some(SecretString::from(
                    post.form.get("password").unwrap_or("").to_owned(),
                )),
                code: None,
            };
            if let Err(error) = accounts
                .reauthenticate_session(user, post.session.session_id, proof, meta)
                .await
            {
                let errors = refusal(error, "password")?;
                return render(&post, None, errors).await;
            }
            match accounts.setup_mfa(user, meta).await {
                Ok(setup) => {
                    let step = MfaStep::Confirm {
                        qr_code: setup.qr_code,
                        secret: setup.secret_base32.expose_secret().to_owned(),
                    };
                    render(&post, Some(step), Vec::new()).await
                }
                Err(AccountError::MfaAlreadyEnabled) => Ok(redirect_with_error(
                    "/admin/account",
                    "MFA is already on for this account.",
                )),
                Err(other) => Err(ApiError::from(other).into()),
            }
        }
        "mfa_enable" => match accounts
            .enable_mfa(user, &post.form.text("code"), meta)
            .await
        {
            Ok(codes) => {
                let codes = codes.iter().map(|c| c.expose_secret().to_owned()).collect();
                render(&post, Some(MfaStep::BackupCodes(codes)), Vec::new()).await
            }
            Err(AccountError::MfaAlreadyEnabled) => Ok(redirect_with_error(
                "/admin/account",
                "MFA is already on for this account.",
            )),
            // A wrong code: set up again (a fresh secret), with the error beside it.
            Err(error) => {
                let errors = refusal(error, "code")?;
                let setup = accounts.setup_mfa(user, meta).await?;
                let step = MfaStep::Confirm {
                    qr_code: setup.qr_code,
                    secret: setup.secret_base32.expose_secret().to_owned(),
                };
                render(&post, Some(step), errors).await
            }
        },
        "password" => {
            let current =
                SecretString::from(post.form.get("current_password").unwrap_or("").to_owned());
            let new = SecretString::from(post.form.get("new_password").unwrap_or("").to_owned());
            match post
                .state
                .admin_sessions
                .change_password(&post.session, current, new, meta)
                .await
            {
                Ok(value) => {
                    let mut response = redirect_with(
                        "/admin/account",
                        "Password changed. Every other session of this account has ended.",
                    );
                    response
                        .add_cookie(&cookie(&req, COOKIE, &value, SESSION_ABSOLUTE_SECONDS))
                        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
                    Ok(response)
                }
                Err(SignInError::Account(error)) => {
                    let errors = refusal(error, "current_password")?;
                    render(&post, None, errors).await
                }
                Err(other) => Err(ApiError::from(other).into()),
            }
        }
        "revoke_session" => {
            let Ok(session) = Uuid::parse_str(&post.form.text("session")) else {
                return Err(PageError::not_found());
            };
            if session == post.session.session_id {
                return Ok(redirect_with_error(
                    "/admin/account",
                    "This is the session you are using; sign out instead.",
                ));
            }
            let named = accounts
                .sessions_of(user, post.session.session_id)
                .await?
                .into_iter()
                .find(|info| info.session.id == session)
                .map(|info| {
                    format!(
                        "Ended the session started {} from {}.",
                        rfc3339(info.session.created_at),
                        info.session.ip.as_deref().unwrap_or("an unknown address")
                    )
                });
            match accounts.end_session(user, session, meta).await {
                Ok(()) => Ok(redirect_with(
                    "/admin/account",
                    named.as_deref().unwrap_or("Session ended."),
                )),
                Err(AccountError::SessionNotFound) => Ok(redirect_with_error(
                    "/admin/account",
                    "That session had already ended.",
                )),
                Err(other) => Err(ApiError::from(other).into()),
            }
        }
        "passkey_rename" => {
            let id = passkey_of(&post)?;
            let principal = post.session.principal();
            match post
                .state
                .passkeys
                .rename(&principal, id, &post.form.text("name"), meta)
                .await
            {
                Ok(renamed) => Ok(redirect_with(
                    "/admin/account#passkeys",
                    &format!("Renamed the passkey to “{}”.", renamed.name),
                )),
                Err(PasskeyError::Validation(_)) => Ok(redirect_with_error(
                    "/admin/account#passkeys",
                    "A passkey's name must be 1 to 64 characters.",
                )),
                Err(other) => Err(ApiError::from(other).into()),
            }
        }
        "passkey_delete" => {
            let id = passkey_of(&post)?;
            let principal = post.session.principal();
            let name = post
                .state
                .passkeys
                .list(&principal)
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .find(|p| p.id == id)
                .map(|p| p.name)
                .ok_or_else(PageError::not_found)?;
            if !post.confirmed() {
                return post.ask_reauthenticating(
                    "account",
                    Confirmation {
                        question: format!("Delete the passkey “{name}”?"),
                        consequence: "It can no longer sign in to this account. Sessions it opened stay signed in. Enter your password to confirm.".to_owned(),
                        button: format!("Delete “{name}”"),
                        cancel: "/admin/account#passkeys".to_owned(),
                    },
                );
            }
            let secret = |field| {
                post.form
                    .get(field)
                    .filter(|v| !v.is_empty())
                    .map(|v| SecretString::from(v.to_owned()))
            };
            let proof = Proof {
                password: Some(
                    secret("password").unwrap_or_else(|| SecretString::from(String::new())),
                ),
                code: secret("code"),
            };
            match accounts
                .reauthenticate_session(user, post.session.session_id, proof, meta)
                .await
            {
                Ok(()) => {}
                Err(AccountError::Validation(_) | AccountError::ReauthenticationRequired) => {
                    return Ok(redirect_with_error(
                        "/admin/account#passkeys",
                        &format!(
                            "The passkey “{name}” was not deleted: the password or code was wrong."
                        ),
                    ));
                }
                Err(AccountError::TemporarilyLocked) => {
                    return Ok(redirect_with_error(
                        "/admin/account#passkeys",
                        "Too many wrong attempts; try again in a few minutes.",
                    ));
                }
                Err(other) => return Err(ApiError::from(other).into()),
            }
            match post.state.passkeys.delete(&principal, id, meta).await {
                Ok(()) => Ok(redirect_with(
                    "/admin/account#passkeys",
                    &format!("Deleted the passkey “{name}”."),
                )),
                Err(PasskeyError::NotFound) => Ok(redirect_with_error(
                    "/admin/account#passkeys",
                    "That passkey had already been deleted.",
                )),
                Err(other) => Err(ApiError::from(other).into()),
            }
        }
        _ => Err(PageError::not_found()),
    }
}

/// The passkey a form names: one of the account's own, or 404.
fn passkey_of(post: &AdminForm) -> Result<Uuid, PageError> {
    Uuid::parse_str(&post.form.text("passkey")).map_err(|_| PageError::not_found())
}
