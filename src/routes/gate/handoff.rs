//! `GET /.portcullis/handoff` on every app host (the proxy configurations hand this
//! one path to Portcullis): a portal sign-in carried to a host the portal's cookie
//! does not reach. The rules are `crate::gate::handoff`'s; here are its two legs:
//!
//! - `?rd=URL` (sent here by the gate): a state cookie for this host, on to the
//!   portal, which comes back with a code. `rd` must pass the `rd` rules and be on
//!   the host the request came to.
//! - `?code=C` (sent here by the portal): redeemed once, here only, by the browser
//!   holding the state: the host's own session cookie, and on to the URL the
//!   handoff started from.
//!
//! Anything refused is a small page with a link to start again — never a redirect
//! loop, and never a session.

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;

use super::COOKIE;
use super::portal::{host_cookie, the_gate};
use crate::accounts::browser_sessions::SignInError;
use crate::audit::RequestMeta;
use crate::gate::handoff;
use crate::http::admin_page::PageError;
use crate::http::problem::ApiError;
use crate::state::AppState;

/// The state of a handoff this browser started on this host.
const STATE_COOKIE: &str = "portcullis_gate_handoff";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::get(handoff::PATH, handoff));
}

#[derive(Template)]
#[template(path = "gate/handoff.html")]
struct RefusedPage<'a> {
    message: &'a str,
    again: &'a str,
    portal: &'a str,
}

/// The host the browser asked for: `Host` (HTTP/1.1) or the `:authority` (HTTP/2).
fn request_host(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(ToString::to_string))
}

fn refused(portal: &str, message: &str, again: &str) -> Result<HttpResponse, PageError> {
    let body = RefusedPage {
        message,
        again,
        portal,
    }
    .render()
    .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
    Ok(HttpResponse::build(StatusCode::BAD_REQUEST)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; style-src {portal}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            ),
        ))
        .body(body))
}

pub async fn handoff(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(&state)?;
    let portal = gate.portal_url();
    let host = request_host(&req).unwrap_or_default();
    let (mut code, mut rd) = (None, None);
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "rd" => rd = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(code) = code {
        return redeem(&req, &state, &code, &host, &meta).await;
    }
    // The first leg: where to end must be on this very host.
    let Some(rd) = rd.and_then(|rd| gate.safe_return(&rd)).filter(|rd| {
        handoff::origin_of(rd).is_some_and(|origin| handoff::host_matches(origin, &host))
    }) else {
        return refused(portal, "This sign-in link is not for this site.", "/");
    };
    // A new state for every start, spent at the redemption: a state lives only
    // as long as the handoff it guards. (Of two handoffs started at once on one
    // host, the later one's state wins; the other finds its "try again" link
    // leads in, the host being signed in by then.)
    let state_value = handoff::random_token().map_err(|e| ApiError::Unexpected(e.into()))?;
    let back = handoff::portal_return(&rd, &state_value)
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("a safe return has an origin")))?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, gate.login_url(&back)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(host_cookie(
            STATE_COOKIE,
            state_value,
            handoff::PREFIX,
            rd.starts_with("https://"),
            handoff::STATE_SECONDS,
        ))
        .finish())
}

/// The second leg: the code, this host, this browser's state; then a session.
async fn redeem(
    req: &HttpRequest,
    state: &AppState,
    code: &str,
    host: &str,
    meta: &RequestMeta,
) -> Result<HttpResponse, PageError> {
    let (gate, _) = the_gate(state)?;
    let held = req.cookie(STATE_COOKIE);
    let grant = match gate
        .handoffs()
        .redeem(code, host, held.as_ref().map(Cookie::value))
    {
        Ok(grant) => grant,
        Err(why) => {
            tracing::warn!(reason = %why, "a gate handoff was refused");
            return refused(
                gate.portal_url(),
                "The sign-in could not be carried over to this site.",
                "/",
            );
        }
    };
    let https = grant.origin.starts_with("https://");
    let (name, port) = handoff::host_and_port(&grant.origin)
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("a minted origin has a host")))?;
    let value = match state
        .gate_sessions
        .hand_off(&grant.source, (&name, port), meta)
        .await
    {
        Ok(value) => value,
        Err(SignInError::PendingExpired) => {
            return refused(
                gate.portal_url(),
                "Your sign-in at the portal has ended meanwhile.",
                &grant.rd,
            );
        }
        Err(other) => return Err(ApiError::from(other).into()),
    };
    let mut gone = host_cookie(STATE_COOKIE, String::new(), handoff::PREFIX, https, 0);
    gone.make_removal();
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, grant.rd.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(host_cookie(
            COOKIE,
            value.expose_secret().to_owned(),
            "/",
            https,
            grant.source.expires_at - state.clock.now(),
        ))
        .cookie(gone)
        .finish())
}
