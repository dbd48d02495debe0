//! `/admin/account`: the signed-in administrator's own account — enrol TOTP (the QR
//! code and the secret, then a code to confirm; backup codes shown once), change
//! the password (every session ends; this browser gets a new one), and the
//! account's own sessions, each with its own revoke, and its passkeys (listed,
//! renamed, deleted after the password again; added through `static/passkeys.js`
//! and `admin::passkeys`, the one script this page runs — all as `routes::ceremony`
//! manages an account page's passkeys, the portal's `/gate/` alike). Self-service, as on the API:
//! no administrator action is asked about, only the session's own account is
//! touched, and the account service audits every change.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::login::cookie;
use super::passkeys::account_post;
use super::{SessionView, messages_for};
use crate::accounts::AccountError;
use crate::accounts::browser_sessions::SignInError;
use crate::accounts::service::Proof;
use crate::admin::SESSION_ABSOLUTE_SECONDS;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, COOKIE, Chrome, PageError, allow_own_scripts, redirect_with,
    redirect_with_error,
};
use crate::http::problem::ApiError;
use crate::routes::ceremony::{self, PasskeyLine};

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
    /// Where the passkey section's forms post.
    section: &'static ceremony::AccountPage,
    /// (field, message) of the form that was refused.
    errors: Vec<(String, String)>,
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
    let passkeys = ceremony::passkey_lines(&page.state, &page.session).await?;
    let refused = !errors.is_empty();
    let scripted = passkeys.is_some();
    let mut response = page.render(&AccountPage {
        chrome: page.chrome("account"),
        email: user.email.to_string(),
        with_code: user.mfa_enabled,
        section: &super::passkeys::ACCOUNT,
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
        "passkey_rename" => account_post(&post).rename().await,
        "passkey_delete" => {
            account_post(&post)
                .delete(|question| post.ask_reauthenticating("account", question))
                .await
        }
        _ => Err(PageError::not_found()),
    }
}
