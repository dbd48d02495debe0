//! What the pages' passkey ceremonies have in common: `static/passkeys.js` posts a
//! form (the page's CSRF token, the password again, the ceremony id, and the
//! browser's credential as `PublicKeyCredential.toJSON()` gives it, as text) and
//! reads a small JSON answer — the options to hand to `navigator.credentials`,
//! or where to go next. A refusal is its status alone (the server's problem
//! document, with a generic text): the page shows one generic message, as the
//! sign-in page tells no more than that a sign-in failed.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::accounts::passkeys::{PasskeyError, Started};
use crate::http::admin_page::{Form, PageError};
use crate::http::problem::ApiError;
use crate::http::rate_limit::enforce;
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

/// A passkey sign-in begun on a sign-in page (after the page's own origin check):
/// the address's sign-in limit applies (429), passkeys off is 404, otherwise the
/// options. The admin sign-in and the portal both start here.
pub fn sign_in_start(
    req: &HttpRequest,
    ip: IpAddr,
    state: &AppState,
) -> Result<HttpResponse, PageError> {
    if let Err(ApiError::RateLimited(_)) = enforce(req, RouteClass::LoginIp, &LimitKey::ip(ip)) {
        return Ok(refused(StatusCode::TOO_MANY_REQUESTS));
    }
    match state.passkeys.start_sign_in() {
        Ok(started) => Ok(options(started)),
        Err(PasskeyError::NotConfigured) => Ok(refused(StatusCode::NOT_FOUND)),
        Err(other) => Err(ApiError::from(other).into()),
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
