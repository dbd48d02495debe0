//! The portal's own account page (`/gate/`) manages its account's passkeys as the
//! admin pages' account page does, through the same `routes::ceremony` steps:
//!
//! - `POST /gate/passkeys/start` and `/finish`: adding one through
//!   `static/passkeys.js` (the password again, and a code with MFA on, before the
//!   ceremony starts; the ceremony is the session's own, single-use, 5 minutes);
//! - `POST /gate/passkeys/rename`: a plain form;
//! - `POST /gate/passkeys/delete`: a plain form, then a page that asks first, with
//!   the password (and a code with MFA on) on it.
//!
//! Every post is refused (403) unless it comes from the portal's own origin and
//! carries the portal session's CSRF token (compared in constant time); without a
//! good portal session it goes to the sign-in page. Only the session's own
//! account's passkeys are touched, and the passkey service audits every change.
//! The outcome is shown once on `/gate/` by a flash cookie on the portal's own path.

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::portal::{from_the_portal, session_of, the_gate};
use crate::accounts::browser_sessions::BrowserSession;
use crate::audit::RequestMeta;
use crate::http::admin_page::{Confirmation, FLASH_COOKIE, Flash, Form, PageError, render};
use crate::http::json::Body;
use crate::routes::ceremony::{AccountPage, AccountPost, PageForm};
use crate::state::AppState;

/// Where the portal's flash cookie lives: its own pages, never an app's.
const FLASH_PATH: &str = "/gate/";

/// The portal's account page, as `ceremony` manages its passkeys.
pub(super) const ACCOUNT: AccountPage = AccountPage {
    back: "/gate/#passkeys",
    flash: flash_cookie,
    heading: "Your passkeys",
    rename: PageForm {
        action: "/gate/passkeys/rename",
        op: None,
    },
    delete: PageForm {
        action: "/gate/passkeys/delete",
        op: None,
    },
    add: "/gate/passkeys/start",
    start: "/gate/passkeys/start",
    finish: "/gate/passkeys/finish",
};

/// A one-time message for `/gate/`, encoded as the admin pages' own, on the
/// portal's path.
fn flash_cookie(message: &str, error: bool) -> Cookie<'static> {
    let mut cookie = crate::http::admin_page::flash_cookie(message, error);
    cookie.set_path(FLASH_PATH);
    cookie
}

/// The message a portal post left for `/gate/`, if any.
pub(super) fn flash_of(req: &HttpRequest) -> Option<Flash> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    let pair = format!("m={}", cookie.value());
    let (_, text) = url::form_urlencoded::parse(pair.as_bytes()).next()?;
    let (kind, message) = text.split_at_checked(1)?;
    (!message.is_empty()).then(|| Flash {
        message: message.to_owned(),
        error: kind == "e",
    })
}

/// A cookie that makes the browser forget the portal's flash message.
pub(super) fn flash_removal() -> Cookie<'static> {
    let mut gone = flash_cookie("", false);
    gone.make_removal();
    gone
}

/// A checked post to the account page: the portal session and the fields.
struct Post {
    session: BrowserSession,
    form: Form,
}

impl Post {
    /// From the portal's own origin, signed in, with the session's CSRF token; a
    /// signed-out post is `None` (to the sign-in page), anything else is 403.
    async fn check(
        req: &HttpRequest,
        state: &AppState,
        body: &Body,
    ) -> Result<Option<Self>, PageError> {
        let (gate, _) = the_gate(state)?;
        from_the_portal(req, gate)?;
        let Some(session) = session_of(req, state).await? else {
            return Ok(None);
        };
        let form = Form::parse(&body.0);
        if !session.csrf_matches(form.get("csrf").unwrap_or("")) {
            return Err(PageError::forbidden(
                "The form's security token is missing or wrong. Reload the page and try again.",
            ));
        }
        Ok(Some(Self { session, form }))
    }

    fn account<'a>(&'a self, state: &'a AppState, meta: &'a RequestMeta) -> AccountPost<'a> {
        AccountPost {
            state,
            session: &self.session,
            form: &self.form,
            meta,
            page: &ACCOUNT,
        }
    }
}

fn to_sign_in() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/gate/login"))
        .finish()
}

/// `POST /gate/passkeys/start`: the password again (and a code with MFA on), then
/// the creation options.
pub async fn register_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    match Post::check(&req, &state, &body).await? {
        Some(post) => post.account(&state, &meta).register_start().await,
        None => Ok(to_sign_in()),
    }
}

/// `POST /gate/passkeys/finish`: the new credential; back to `/gate/`, which says
/// so.
pub async fn register_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    match Post::check(&req, &state, &body).await? {
        Some(post) => post.account(&state, &meta).register_finish().await,
        None => Ok(to_sign_in()),
    }
}

/// `POST /gate/passkeys/rename`: one of the account's passkeys, a new name.
pub async fn rename(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    match Post::check(&req, &state, &body).await? {
        Some(post) => post.account(&state, &meta).rename().await,
        None => Ok(to_sign_in()),
    }
}

#[derive(Template)]
#[template(path = "gate/confirm.html")]
struct ConfirmPage<'a> {
    ask: Confirmation,
    csrf: &'a str,
    /// The passkey to delete, posted again.
    passkey: &'a str,
    /// A code is asked for too (MFA is on).
    with_code: bool,
}

/// `POST /gate/passkeys/delete`: asks first, with the password on the question's
/// page; confirmed, the password again and the passkey is gone.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Body,
) -> Result<HttpResponse, PageError> {
    let Some(post) = Post::check(&req, &state, &body).await? else {
        return Ok(to_sign_in());
    };
    let passkey = post.form.text("passkey");
    post.account(&state, &meta)
        .delete(|ask| {
            render(&ConfirmPage {
                ask,
                csrf: post.session.csrf(),
                passkey: &passkey,
                with_code: post.session.user.mfa_enabled,
            })
        })
        .await
}
