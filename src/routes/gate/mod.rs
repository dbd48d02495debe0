//! The gate's doors: the forward-auth endpoints the proxies ask, the published
//! assertion keys, and the sign-in portal (`portal`).
//!
//! - `/api/v1/gate/forward-auth` (Traefik `forwardAuth`, Caddy `forward_auth`):
//!   the original request in `X-Forwarded-Method/-Proto/-Host/-Uri`.
//! - `/api/v1/gate/auth-request` (nginx `auth_request`): in `X-Original-URL` and
//!   `X-Original-Method`; a sign-in is a 401 carrying the portal URL in `Location`
//!   (nginx cannot pass a 302 from a subrequest; its config turns this into one).
//!
//! Both answer any method, and only a `TRUSTED_PROXIES` peer: anyone else is 403,
//! so nobody can ask about a URL of their choosing. Every answer but a 2xx keeps
//! the upstream unreached — and so does a gate that errs (5xx) or is down.

pub mod handoff;
pub mod passkeys;
pub mod portal;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::accounts::AccountError;
use crate::auth::AuthError;
use crate::auth::tokens::TokenType;
use crate::gate::{Asker, GateError, GateService, OriginalRequest, Verdict};
use crate::http::ClientIp;
use crate::http::principal::{app_state, bearer_token_of};
use crate::http::problem::{ApiError, Problem};
use crate::http::rate_limit::enforce;
use crate::http::request_context::{RequestId, request_meta};
use crate::limits::{LimitKey, RouteClass};
use crate::model::{AuthMethod, User, UserStatus};
use crate::state::AppState;
use crate::validation::FieldError;

/// The portal session's cookie.
pub const COOKIE: &str = "portcullis_gate";

/// The doors the proxies ask, on every request to every app.
pub fn configure_doors(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/gate/forward-auth").to(forward_auth))
        .service(web::resource("/api/v1/gate/auth-request").to(auth_request));
}

/// The published keys, the portal's pages and the handoff.
pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(super::get("/.well-known/jwks.json", jwks))
        .configure(portal::configure)
        .configure(handoff::configure);
}

/// The gate, when it is on; a 404 otherwise (nothing to ask).
pub(crate) fn gate_of(state: &AppState) -> Result<&GateService, ApiError> {
    state.gate.as_ref().ok_or(ApiError::NotFound)
}

/// The keys that verify `Portcullis-Assertion` (the current one and
/// `GATE_ASSERTION_PREVIOUS_KEYS`), as a JSON Web Key Set of Ed25519 keys.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "gate",
    responses(
        (status = 200, description = "`{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\", \"kid\", \"alg\": \"EdDSA\", \"use\": \"sig\"}]}`, cacheable for 5 minutes", body = Object),
        (status = 404, description = "The gate is off (no `GATE_PORTAL_URL`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let gate = gate_of(&state)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(gate.signer().jwks()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Door {
    ForwardAuth,
    AuthRequest,
}

/// For Traefik `forwardAuth` and Caddy `forward_auth`: may the request the proxy
/// names (`X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`, and the client in
/// `X-Forwarded-For`) pass? Asked by the portal cookie or a bearer access token;
/// any method is taken. Only a `TRUSTED_PROXIES` peer may ask. Anything but a 2xx
/// keeps the upstream unreached.
#[utoipa::path(
    get,
    path = "/api/v1/gate/forward-auth",
    tag = "gate",
    params(
        ("X-Forwarded-Method" = String, Header, description = "The original request's method"),
        ("X-Forwarded-Proto" = String, Header, description = "`http` or `https`"),
        ("X-Forwarded-Host" = String, Header, description = "The original host (a `GATE_HOSTS` entry), with its port if any"),
        ("X-Forwarded-Uri" = String, Header, description = "The original path and query"),
    ),
    responses(
        (status = 200, description = "Allowed: pass it upstream with these headers (empty for a signed-out visitor a public policy lets in)", headers(
            ("Remote-User" = String, description = "The account id"),
            ("Remote-Email" = String, description = "The account's e-mail"),
            ("Remote-Role" = String, description = "`admin` or `user`"),
            ("Remote-Name" = String, description = "The account's `name` attribute, where set"),
            ("Portcullis-Assertion" = String, description = "An EdDSA JWT (60 s, `aud` the host) the upstream can check against `/.well-known/jwks.json`"),
            ("Cookie" = String, description = "The request's cookies without Portcullis's own (`portcullis_gate*`), absent when none is left: the `Cookie` header the app is to receive (Traefik's configuration sets it)")
        )),
        (status = 302, description = "A signed-out browser (`Accept: text/html`): on to sign in, with `rd` the original URL", headers(("Location" = String, description = "`GATE_PORTAL_URL/gate/login?rd=…` when the portal's cookie reaches the host; otherwise the host's own `/.portcullis/handoff?rd=…`, which brings the portal's sign-in to it"))),
        (status = 401, description = "Signed out (an API client), or a bad or revoked bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Refused: by the policies (an HTML page for browsers), or the asker is not a trusted proxy, or the host is not one the gate protects, or the path is the gate's own (`/.portcullis/…`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The gate is off (no `GATE_PORTAL_URL`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A forwarded header is missing or invalid, named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The policies could not be evaluated: the upstream is not reached", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn forward_auth(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    judge(&req, Door::ForwardAuth).await
}

/// For nginx `auth_request`: may the request in `X-Original-URL` and
/// `X-Original-Method` (the client in `X-Forwarded-For`) pass? As
/// `forward-auth`, except that a signed-out browser gets a 401 carrying the
/// portal's sign-in URL in `Location` (nginx cannot pass a 302 on; its
/// configuration turns this 401 into the redirect).
#[utoipa::path(
    get,
    path = "/api/v1/gate/auth-request",
    tag = "gate",
    params(
        ("X-Original-URL" = String, Header, description = "The original URL, scheme and host included"),
        ("X-Original-Method" = String, Header, description = "The original request's method"),
    ),
    responses(
        (status = 200, description = "Allowed: pass it upstream with `Remote-User`, `Remote-Email`, `Remote-Role`, `Remote-Name` and `Portcullis-Assertion` (as `forward-auth`)"),
        (status = 401, description = "Signed out (for a browser, `Location` names the portal's sign-in), or a bad or revoked bearer token", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`"), ("Location" = String, description = "For a browser: `GATE_PORTAL_URL/gate/login?rd=…`, or the host's own `/.portcullis/handoff?rd=…` when the portal's cookie does not reach it"))),
        (status = 403, description = "Refused: by the policies, or the asker is not a trusted proxy, or the host is not one the gate protects, or the path is the gate's own (`/.portcullis/…`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The gate is off (no `GATE_PORTAL_URL`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A forwarded header is missing or invalid, named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The policies could not be evaluated: the upstream is not reached", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn auth_request(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    judge(&req, Door::AuthRequest).await
}

fn header_text<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn required<'r>(req: &'r HttpRequest, name: &'static str) -> Result<&'r str, ApiError> {
    header_text(req, name).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::rule(
            name,
            "required",
            "the proxy must send this header",
        )])
    })
}

/// The request the proxy asks about, from the door's headers.
fn original(req: &HttpRequest, door: Door) -> Result<OriginalRequest, ApiError> {
    let parsed = match door {
        Door::ForwardAuth => OriginalRequest::from_forwarded(
            required(req, "X-Forwarded-Method")?,
            required(req, "X-Forwarded-Proto")?,
            required(req, "X-Forwarded-Host")?,
            required(req, "X-Forwarded-Uri")?,
        ),
        Door::AuthRequest => OriginalRequest::from_original_url(
            required(req, "X-Original-Method")?,
            required(req, "X-Original-URL")?,
        ),
    };
    parsed.map_err(|e| ApiError::Validation(vec![FieldError::rule(e.field, "invalid", e.message)]))
}

const ASSERTION: &str = "portcullis-assertion";

/// An identity header's name; the fixed ones without parsing (every allowed
/// request answers them).
fn header_name(name: &str) -> Option<header::HeaderName> {
    Some(header::HeaderName::from_static(match name {
        "Remote-User" => "remote-user",
        "Remote-Email" => "remote-email",
        "Remote-Role" => "remote-role",
        "Remote-Name" => "remote-name",
        "Portcullis-Assertion" => ASSERTION,
        other => return header::HeaderName::try_from(other).ok(),
    }))
}

fn wants_html(req: &HttpRequest) -> bool {
    header_text(req, "accept").is_some_and(|accept| accept.contains("text/html"))
}

/// Who is asking: a bearer token (API clients) wins over the portal cookie
/// (browsers). A bad or dead token is a 401, whatever else the request carries; a
/// cookie that names no good session is a signed-out visitor. A store that
/// cannot answer is a 503. With the account, how its session was signed in to. A
/// cookie the handoff made for one app host is a signed-out visitor on any other.
async fn asker(
    req: &HttpRequest,
    state: &AppState,
    original: &OriginalRequest,
) -> Result<Option<(User, AuthMethod)>, ApiError> {
    if let Some(token) = bearer_token_of(req.headers()) {
        let claims = state
            .tokens
            .verify(token, TokenType::Access, state.clock.now())
            .map_err(AuthError::from)?;
        if state
            .revocations
            .is_access_refused(&claims)
            .await
            .map_err(AuthError::from)?
        {
            return Err(AuthError::Revoked.into());
        }
        let user = match state.accounts.account(claims.sub).await {
            Ok(user) => user,
            Err(AccountError::AccountGone) => return Err(AuthError::Revoked.into()),
            Err(other) => return Err(other.into()),
        };
        if user.status != UserStatus::Active {
            return Err(AuthError::Revoked.into());
        }
        return Ok(Some((user, claims.auth_method)));
    }
    let Some(cookie) = session_cookie(req) else {
        return Ok(None);
    };
    let account = state
        .gate_sessions
        .resume_account(cookie, (&original.host.name, original.port()))
        .await
        .map_err(|cause| {
            tracing::error!(error = %cause, "gate session check failed closed");
            ApiError::Unavailable {
                reason: "The sign-in cannot be checked right now. Please try again later.",
                retry_after_seconds: Some(5),
            }
        })?;
    Ok(account)
}

/// The value of the first `portcullis_gate` cookie the request carries. Read off
/// the `Cookie` header directly: this is asked on every request to every app, and
/// actix's `cookie()` parses every cookie of the request into a list first.
fn session_cookie(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter(|value| value.to_str().is_ok())
        .flat_map(|value| cookie_pairs(value.as_bytes()))
        .find_map(|(name, pair)| {
            let at = pair.iter().position(|b| *b == b'=')?;
            let value = pair.get(at + 1..)?.trim_ascii();
            (name == COOKIE.as_bytes())
                .then(|| std::str::from_utf8(value).ok())
                .flatten()
        })
}

/// The cookies of one `Cookie` header value: each `name=value` pair, trimmed,
/// with its name.
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    value.split(|b| *b == b';').map(|pair| {
        let pair = pair.trim_ascii();
        let name = pair
            .split(|b| *b == b'=')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        (name, pair)
    })
}

/// The request's cookies without the gate's own (`portcullis_gate*`), as the
/// `Cookie` header the app is to receive; `None` when none is left (or the
/// result is not a valid header value). Traefik has no middleware that edits a
/// cookie: its `forwardAuth` configuration removes the request's `Cookie` and
/// sets it from this answer, so one compromised app cannot replay the portal's
/// session at the others. Caddy copies only the headers it names, and nginx asks
/// at the other door.
fn app_cookies(req: &HttpRequest) -> Option<header::HeaderValue> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for value in req.headers().get_all(header::COOKIE) {
        for (name, pair) in cookie_pairs(value.as_bytes()) {
            let the_gates = name == COOKIE.as_bytes()
                || name
                    .strip_prefix(COOKIE.as_bytes())
                    .is_some_and(|rest| rest.starts_with(b"_"));
            if !pair.is_empty() && !the_gates {
                kept.push(pair);
            }
        }
    }
    if kept.is_empty() {
        return None;
    }
    header::HeaderValue::from_bytes(&kept.join(&b"; "[..])).ok()
}

#[derive(Template)]
#[template(path = "gate/denied.html")]
struct DeniedPage<'a> {
    email: &'a str,
    url: &'a str,
    portal: &'a str,
    request_id: &'a str,
}

async fn judge(req: &HttpRequest, door: Door) -> Result<HttpResponse, ApiError> {
    let state = app_state(req)?;
    let gate = gate_of(&state)?;
    let trusted = &state.settings.http.trusted_proxies;
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    if !peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip))) {
        if let Some(ip) = peer {
            enforce(req, RouteClass::Anonymous, &LimitKey::ip(ip))?;
        }
        return Err(ApiError::Forbidden(
            "Only a trusted proxy may ask the gate.",
        ));
    }
    let original = original(req, door)?;
    let entry = gate.entry_for(&original.host).ok_or(ApiError::Forbidden(
        "This host is not protected by the gate.",
    ))?;
    if original.is_gate_own() {
        // The proxy sends this path here, never to an app; one that asks about it
        // would pass it (and the handoff's code) to the app.
        return Err(ApiError::Forbidden(
            "This path is the gate's own: the proxy must send it to Portcullis.",
        ));
    }
    let client = req.extensions().get::<ClientIp>().copied().ok_or_else(|| {
        ApiError::BadRequest("The client address could not be determined.".to_owned())
    })?;
    enforce(req, RouteClass::GateIp, &LimitKey::ip(client.0))?;
    let asked = asker(req, &state, &original).await?;
    if let Some((user, _)) = &asked {
        enforce(req, RouteClass::GateUser, &LimitKey::User(user.id))?;
    }
    let asking = match &asked {
        Some((user, method)) => Asker::SignedIn(user, *method),
        None => Asker::SignedOut,
    };
    let verdict = gate
        .decide(entry, &original, asking, Some(client.0), || {
            request_meta(req)
        })
        .await
        .map_err(|error| match error {
            GateError::Evaluation => ApiError::AccessEvaluationFailed,
            GateError::Assertion(cause) => ApiError::Unexpected(anyhow::Error::new(cause)),
        })?;
    match verdict {
        Verdict::Allowed(identity) => {
            let mut response = HttpResponse::Ok();
            response.insert_header((header::CACHE_CONTROL, "no-store"));
            let mut response = response.finish();
            let headers = response.headers_mut();
            match identity {
                Some(identity) => {
                    for (name, value) in &identity.headers {
                        if let (Some(name), Ok(value)) =
                            (header_name(name), header::HeaderValue::from_str(value))
                        {
                            headers.insert(name, value);
                        }
                    }
                    if let Ok(value) = header::HeaderValue::from_str(&identity.assertion) {
                        headers.insert(header::HeaderName::from_static(ASSERTION), value);
                    }
                }
                None => {
                    for name in gate.identity_header_names() {
                        if let Some(name) = header_name(&name) {
                            headers.insert(name, header::HeaderValue::from_static(""));
                        }
                    }
                }
            }
            if door == Door::ForwardAuth
                && let Some(cookies) = app_cookies(req)
            {
                headers.insert(header::COOKIE, cookies);
            }
            Ok(response)
        }
        Verdict::SignInFirst => {
            let login = gate.sign_in_url(&original);
            match (door, wants_html(req)) {
                (Door::ForwardAuth, true) => Ok(HttpResponse::Found()
                    .insert_header((header::LOCATION, login))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()),
                (Door::AuthRequest, true) => {
                    let mut response =
                        ApiError::Unauthorized("Sign in at the portal first.").error_response();
                    if let Ok(value) = header::HeaderValue::from_str(&login) {
                        response.headers_mut().insert(header::LOCATION, value);
                    }
                    Ok(response)
                }
                _ => Err(ApiError::Unauthorized(
                    "A bearer access token or a portal sign-in is required.",
                )),
            }
        }
        Verdict::Denied if wants_html(req) => {
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            let email = asked
                .as_ref()
                .map(|(u, _)| u.email.to_string())
                .unwrap_or_default();
            let body = DeniedPage {
                email: &email,
                url: &original.url(),
                portal: gate.portal_url(),
                request_id: &request_id,
            }
            .render()
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!(e)))?;
            Ok(HttpResponse::build(StatusCode::FORBIDDEN)
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((
                    header::CONTENT_SECURITY_POLICY,
                    crate::http::admin_page::PAGE_CONTENT_SECURITY_POLICY,
                ))
                .body(body))
        }
        Verdict::Denied => Err(ApiError::Forbidden("Access to this address was refused.")),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn cookies_for(values: &[&str]) -> Option<String> {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((header::COOKIE, *value));
        }
        app_cookies(&req.to_http_request()).map(|v| v.to_str().unwrap_or("?").to_owned())
    }

    fn session_for(values: &[&str]) -> Option<String> {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((header::COOKIE, *value));
        }
        session_cookie(&req.to_http_request()).map(str::to_owned)
    }

    #[test]
    fn the_session_cookie_is_found_by_its_exact_name() {
        assert_eq!(
            session_for(&["a=1; portcullis_gate=abc; b=2"]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_for(&["a=1", "portcullis_gate=abc"]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_for(&["portcullis_gate_handoff=x; portcullis_gateway=y"]),
            None
        );
        assert_eq!(session_for(&["xportcullis_gate=abc"]), None);
        assert_eq!(
            session_for(&["portcullis_gate=first; portcullis_gate=second"]).as_deref(),
            Some("first")
        );
        assert_eq!(session_for(&[]), None);
    }

    #[test]
    fn the_app_gets_every_cookie_but_the_gates() {
        assert_eq!(
            cookies_for(&["theme=dark; portcullis_gate=abc;lang=en"]).as_deref(),
            Some("theme=dark; lang=en")
        );
        assert_eq!(
            cookies_for(&["portcullis_gate=abc", "a=1", "portcullis_gate_mfa=x; b=2"]).as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            cookies_for(&["portcullis_gate=abc; portcullis_gate_mfa=x"]),
            None
        );
        assert_eq!(
            cookies_for(&["portcullis_gateway=app; portcullis_gate=abc"]).as_deref(),
            Some("portcullis_gateway=app"),
            "an app's cookie that only starts alike is the app's"
        );
        assert_eq!(cookies_for(&[]), None);
        assert_eq!(cookies_for(&[" ; ;"]), None);
    }
}
