//! What the pages' passkey ceremonies have in common: `static/passkeys.js` posts a
//! form (the page's CSRF token, the password again, the ceremony id, and the
//! browser's credential as `PublicKeyCredential.toJSON()` gives it, as text) and
//! reads a small JSON answer — the options to hand to `navigator.credentials`,
//! or where to go next. A refusal is its status alone (the server's problem
//! document, with a generic text): the page shows one generic message, as the
//! sign-in page tells no more than that a sign-in failed.
//!
//! The account pages (the admin pages' `/admin/account` and the portal's `/gate/`)
//! manage passkeys through one [`AccountPost`]: each page checks its own post
//! first (signed in, from its own origin, with the session's CSRF token), and
//! from there both ask the same: the password again (and a code with MFA on)
//! before a passkey is added or deleted, only the session's own account's
//! passkeys, every change audited by the service.
//!
//! The sign-in pages (the admin sign-in and the portal) share the sign-in: a
//! ceremony started counts toward the address's passkey start limit (a page
//! starts one as it loads, for the browser's autofill), a finish is a sign-in
//! attempt like a password's; and on the code step, a passkey may answer instead
//! of a code, under the code step's limits.

use std::net::IpAddr;

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::accounts::AccountError;
use crate::accounts::browser_sessions::{BrowserSession, BrowserSessions, SignInError};
use crate::accounts::passkeys::{PasskeyError, PasskeyInfo, Started};
use crate::accounts::service::Proof;
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::http::admin_page::{Confirmation, Form, PageError, end_previous};
use crate::http::problem::ApiError;
use crate::http::rate_limit::{enforce, enforce_code_limits};
use crate::limits::{LimitKey, RouteClass};
use crate::state::AppState;

#[derive(Serialize)]
struct Options<T> {
    ceremony: String,
    options: T,
}

#[derive(Serialize)]
struct Next<'a> {
    location: &'a str,
}

/// A ceremony begun: its id and the options for the browser.
pub fn options<T: Serialize>(started: Started<T>) -> HttpResponse {
    HttpResponse::Ok().json(Options {
        ceremony: started.ceremony,
        options: started.options,
    })
}

/// `Some(429)` when the address may not spend a call of `class` now (or it
/// cannot be told: refused as well).
fn limited(req: &HttpRequest, class: RouteClass, ip: IpAddr) -> Option<HttpResponse> {
    enforce(req, class, &LimitKey::ip(ip))
        .err()
        .map(|_| refused(StatusCode::TOO_MANY_REQUESTS))
}

/// A passkey sign-in begun on a sign-in page (after the page's own origin check):
/// the address's passkey start limit applies (429), passkeys off is 404,
/// otherwise the options. The admin sign-in and the portal both start here.
pub fn sign_in_start(
    req: &HttpRequest,
    ip: IpAddr,
    state: &AppState,
) -> Result<HttpResponse, PageError> {
    if let Some(refusal) = limited(req, RouteClass::PasskeyStartIp, ip) {
        return Ok(refusal);
    }
    match state.passkeys.start_sign_in() {
        Ok(started) => Ok(options(started)),
        Err(PasskeyError::NotConfigured) => Ok(refused(StatusCode::NOT_FOUND)),
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// A passkey sign-in finishing on a sign-in page: a sign-in attempt, which spends
/// one of the address's, as a password does. `Some(429)` when none is left.
pub fn sign_in_attempt(req: &HttpRequest, ip: IpAddr) -> Option<HttpResponse> {
    limited(req, RouteClass::LoginIp, ip)
}

/// A refusal of a sign-in step as the script sees it: every failure of the
/// sign-in itself is one 401; the rest is the error page.
fn sign_in_refusal(error: SignInError) -> Result<HttpResponse, PageError> {
    match error {
        SignInError::PendingExpired
        | SignInError::NotAdmin
        | SignInError::Passkey(
            PasskeyError::SignInFailed
            | PasskeyError::CeremonyInvalid
            | PasskeyError::Account(AccountError::InvalidMfaToken),
        )
        | SignInError::Account(
            AccountError::InvalidMfaToken
            | AccountError::InvalidCredentials
            | AccountError::TemporarilyLocked,
        ) => Ok(refused(StatusCode::UNAUTHORIZED)),
        SignInError::Passkey(error) => passkey_refusal(error),
        other => Err(ApiError::from(other).into()),
    }
}

/// Whether a code step offers a passkey instead: passkeys are on and the pending
/// sign-in's account has one in use.
pub async fn code_step_offers_passkey(
    sessions: &BrowserSessions,
    pending: &str,
) -> Result<bool, PageError> {
    sessions
        .pending_has_passkey(pending)
        .await
        .map_err(|error| ApiError::from(error).into())
}

/// A passkey in place of the code, begun on a sign-in page's code step (after the
/// page's own origin check), for the sign-in its cookie `pending_cookie` names:
/// the options, allowing that account's passkeys.
pub async fn code_start(
    req: &HttpRequest,
    ip: IpAddr,
    sessions: &BrowserSessions,
    pending_cookie: &str,
) -> Result<HttpResponse, PageError> {
    if let Some(refusal) = limited(req, RouteClass::PasskeyStartIp, ip) {
        return Ok(refusal);
    }
    let Some(pending) = req.cookie(pending_cookie) else {
        return Ok(refused(StatusCode::UNAUTHORIZED));
    };
    match sessions.start_passkey_code(pending.value()).await {
        Ok(started) => Ok(options(started)),
        Err(error) => sign_in_refusal(error),
    }
}

/// The code step answered with a passkey, for the sign-in its cookie
/// `pending_cookie` names: the new session's cookie value, or the refusal to
/// answer with. The code step's limits apply (per address and per account), as
/// for a code; only an answer that passes them ends the browser's earlier session
/// (its cookie `session_cookie`), as a sign-in does.
pub async fn code_finish(
    req: &HttpRequest,
    ip: IpAddr,
    sessions: &BrowserSessions,
    (session_cookie, pending_cookie): (&str, &str),
    form: &Form,
    meta: &RequestMeta,
) -> Result<Result<SecretString, HttpResponse>, PageError> {
    let Some(pending) = req.cookie(pending_cookie) else {
        return Ok(Err(refused(StatusCode::UNAUTHORIZED)));
    };
    let pending = pending.value();
    if enforce_code_limits(req, ip, sessions.pending_user(pending)).is_err() {
        return Ok(Err(refused(StatusCode::TOO_MANY_REQUESTS)));
    }
    let Some(credential) = credential(form) else {
        return Ok(Err(refused(StatusCode::UNAUTHORIZED)));
    };
    end_previous(req, sessions, session_cookie, meta).await?;
    match sessions
        .sign_in_passkey_code(pending, &form.text("ceremony"), &credential, meta)
        .await
    {
        Ok(cookie) => Ok(Ok(cookie)),
        Err(error) => sign_in_refusal(error).map(Err),
    }
}

/// A ceremony finished: where the browser goes now, with `builder`'s cookies.
pub fn next(mut builder: HttpResponseBuilder, location: &str) -> HttpResponse {
    builder.json(Next { location })
}

/// A refusal: the status alone.
pub fn refused(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status).finish()
}

/// The posted `credential`, read as webauthn-rs reads it; `None` when it is not one.
pub fn credential<T: DeserializeOwned>(form: &Form) -> Option<T> {
    serde_json::from_str(form.get("credential")?).ok()
}

/// `/static/passkeys.js`, cached by browsers for a day.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            "public, max-age=86400",
        ))
        .body(include_str!("../../static/passkeys.js"))
}

/// A refusal as the script sees it (its status); anything unexpected is the error
/// page.
pub fn passkey_refusal(error: PasskeyError) -> Result<HttpResponse, PageError> {
    let status = match error {
        PasskeyError::NotConfigured => StatusCode::NOT_FOUND,
        PasskeyError::TooMany | PasskeyError::AlreadyRegistered | PasskeyError::NoPasskeys => {
            StatusCode::CONFLICT
        }
        PasskeyError::Validation(_)
        | PasskeyError::CeremonyInvalid
        | PasskeyError::CredentialRefused => StatusCode::UNPROCESSABLE_ENTITY,
        PasskeyError::SignInFailed => StatusCode::UNAUTHORIZED,
        other => return Err(ApiError::from(other).into()),
    };
    Ok(refused(status))
}

/// The password again, and a code for an account with MFA, as a form carries
/// them (an empty field is none; no password is an empty one, which is wrong).
pub fn proof(form: &Form) -> Proof {
    let secret = |name| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.to_owned()))
    };
    Proof {
        password: Some(secret("password").unwrap_or_else(|| SecretString::from(String::new()))),
        code: secret("code"),
    }
}

/// One passkey as an account page lists it.
pub struct PasskeyLine {
    pub id: Uuid,
    pub name: String,
    pub created: String,
    /// Empty when it never signed in.
    pub last_used: String,
    /// When its signature counter went backwards: it signs nobody in since.
    pub clone_suspected: Option<String>,
}

impl From<PasskeyInfo> for PasskeyLine {
    fn from(passkey: PasskeyInfo) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name,
            created: rfc3339(passkey.created_at),
            last_used: passkey.last_used_at.map(rfc3339).unwrap_or_default(),
            clone_suspected: passkey.clone_suspected_at.map(rfc3339),
        }
    }
}

/// The session's account's passkeys as its page lists them; `None` when passkeys
/// are not configured.
pub async fn passkey_lines(
    state: &AppState,
    session: &BrowserSession,
) -> Result<Option<Vec<PasskeyLine>>, PageError> {
    if !state.passkeys.enabled() {
        return Ok(None);
    }
    let listed = state
        .passkeys
        .list(&session.principal())
        .await
        .map_err(ApiError::from)?;
    Ok(Some(listed.into_iter().map(PasskeyLine::from).collect()))
}

/// An account page that manages passkeys: where its passkey forms post and lead
/// back to, and how it carries a one-time message there. Its section is
/// `templates/passkeys.html`, one for both pages.
pub struct AccountPage {
    /// The page's passkey section, e.g. `/admin/account#passkeys`.
    pub back: &'static str,
    /// The cookie that shows `message` once on the page (as an error when `true`).
    pub flash: fn(&str, bool) -> Cookie<'static>,
    /// The section's heading.
    pub heading: &'static str,
    pub rename: PageForm,
    pub delete: PageForm,
    /// Where the add form posts without the script (which posts to `start`, then
    /// `finish`).
    pub add: &'static str,
    pub start: &'static str,
    pub finish: &'static str,
}

/// Where one of an account page's passkey forms posts, and the `op` it carries on
/// a page whose forms all post to one address.
pub struct PageForm {
    pub action: &'static str,
    pub op: Option<&'static str>,
}

impl AccountPage {
    /// POST-redirect-GET back to the page, which shows `message` once.
    fn back_with(&self, message: &str, error: bool) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, self.back))
            .cookie((self.flash)(message, error))
            .finish()
    }
}

/// A post to an account page's passkeys, which the page has already checked: a
/// signed-in session, from the page's own origin, with the session's CSRF token.
pub struct AccountPost<'a> {
    pub state: &'a AppState,
    pub session: &'a BrowserSession,
    pub form: &'a Form,
    pub meta: &'a RequestMeta,
    pub page: &'a AccountPage,
}

impl AccountPost<'_> {
    /// The password again (and a code with MFA on), counted toward the softlock
    /// when wrong, and toward the account's limit on passwords entered again
    /// (`RATE_LIMIT_PASSWORD_ACCOUNT`, as on the API), whose refusal reads as a
    /// softlock's: too many attempts.
    async fn reauthenticate(&self) -> Result<(), AccountError> {
        let key = LimitKey::User(self.session.user.id);
        if !self
            .state
            .limits
            .check(RouteClass::PasswordAccount, &key)
            .allowed
        {
            return Err(AccountError::TemporarilyLocked);
        }
        self.state
            .accounts
            .reauthenticate_session(
                self.session.user.id,
                self.session.session_id,
                proof(self.form),
                self.meta,
            )
            .await
    }

    /// The script's first step of adding a passkey: the password again (and a
    /// code with MFA on), then the creation options.
    pub async fn register_start(&self) -> Result<HttpResponse, PageError> {
        if !self.state.passkeys.enabled() {
            return passkey_refusal(PasskeyError::NotConfigured);
        }
        if let Err(error) = self.reauthenticate().await {
            let status = match error {
                AccountError::Validation(_) | AccountError::ReauthenticationRequired => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                AccountError::TemporarilyLocked => StatusCode::FORBIDDEN,
                other => return Err(ApiError::from(other).into()),
            };
            return Ok(refused(status));
        }
        match self
            .state
            .passkeys
            .start_registration(&self.session.principal())
            .await
        {
            Ok(started) => Ok(options(started)),
            Err(error) => passkey_refusal(error),
        }
    }

    /// The script's second step: the new credential, for the ceremony this session
    /// started; back to the page, which says so.
    pub async fn register_finish(&self) -> Result<HttpResponse, PageError> {
        let Some(credential) = credential(self.form) else {
            return passkey_refusal(PasskeyError::CredentialRefused);
        };
        let name = self.form.get("name").filter(|n| !n.trim().is_empty());
        match self
            .state
            .passkeys
            .finish_registration(
                &self.session.principal(),
                &self.form.text("ceremony"),
                name,
                &credential,
                self.meta,
            )
            .await
        {
            Ok(added) => {
                let mut answer = HttpResponse::Ok();
                answer.cookie((self.page.flash)(
                    &format!("Added the passkey “{}”.", added.name),
                    false,
                ));
                Ok(next(answer, self.page.back))
            }
            Err(error) => passkey_refusal(error),
        }
    }

    /// The passkey the form names, one of the account's own; 404 otherwise.
    fn passkey(&self) -> Result<Uuid, PageError> {
        Uuid::parse_str(&self.form.text("passkey")).map_err(|_| PageError::not_found())
    }

    /// Renames a passkey of the account (the form's `passkey`, to its `name`).
    pub async fn rename(&self) -> Result<HttpResponse, PageError> {
        let id = self.passkey()?;
        match self
            .state
            .passkeys
            .rename(
                &self.session.principal(),
                id,
                &self.form.text("name"),
                self.meta,
            )
            .await
        {
            Ok(renamed) => Ok(self.page.back_with(
                &format!("Renamed the passkey to “{}”.", renamed.name),
                false,
            )),
            Err(PasskeyError::Validation(_)) => Ok(self
                .page
                .back_with("A passkey's name must be 1 to 64 characters.", true)),
            Err(other) => Err(ApiError::from(other).into()),
        }
    }

    /// Deletes a passkey of the account: first the question, through `ask` (a
    /// page of the account page's own that asks for the password, and a code with
    /// MFA on, and posts the form again with `confirm=yes`); then, confirmed, the
    /// password again, and the passkey is gone.
    pub async fn delete(
        &self,
        ask: impl FnOnce(Confirmation) -> Result<HttpResponse, PageError>,
    ) -> Result<HttpResponse, PageError> {
        let id = self.passkey()?;
        let principal = self.session.principal();
        let name = self
            .state
            .passkeys
            .list(&principal)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.name)
            .ok_or_else(PageError::not_found)?;
        if self.form.get("confirm") != Some("yes") {
            return ask(Confirmation {
                question: format!("Delete the passkey “{name}”?"),
                consequence: "It can no longer sign in to this account, and every session it signed in to ends — this one too, if you signed in with it. Enter your password to confirm.".to_owned(),
                button: format!("Delete “{name}”"),
                cancel: self.page.back.to_owned(),
            });
        }
        match self.reauthenticate().await {
            Ok(()) => {}
            Err(AccountError::Validation(_) | AccountError::ReauthenticationRequired) => {
                return Ok(self.page.back_with(
                    &format!(
                        "The passkey “{name}” was not deleted: the password or code was wrong."
                    ),
                    true,
                ));
            }
            Err(AccountError::TemporarilyLocked) => {
                return Ok(self
                    .page
                    .back_with("Too many wrong attempts; try again in a few minutes.", true));
            }
            Err(other) => return Err(ApiError::from(other).into()),
        }
        match self.state.passkeys.delete(&principal, id, self.meta).await {
            Ok(()) => Ok(self
                .page
                .back_with(&format!("Deleted the passkey “{name}”."), false)),
            Err(PasskeyError::NotFound) => Ok(self
                .page
                .back_with("That passkey had already been deleted.", true)),
            Err(other) => Err(ApiError::from(other).into()),
        }
    }
}
