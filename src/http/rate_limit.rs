//! Rate limiting at the HTTP edge. The middleware limits every request but
//! `/health*` and the gate's decisions (limited by the gate's own classes): per user when it carries a validly signed access token (so the limit
//! follows the user across addresses), per client network otherwise. Handlers add
//! their route-class limits with [`enforce`] — or, where only some outcomes count,
//! with [`enforce_unspent`] before the work and [`record`] after it. Responses carry
//! the `RateLimit-*` headers of the tightest limit that applied; a denial is 429 with
//! `Retry-After`.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::ClientIp;
use super::principal::{VerifiedClaims, bearer_token_of};
use super::problem::ApiError;
use crate::auth::tokens::TokenType;
use crate::limits::{Decision, LimitKey, RateLimits, RouteClass};
use crate::state::AppState;

/// Adds the `RateLimit-*` headers (and `Retry-After` on a denial).
pub fn write_headers(headers: &mut HeaderMap, decision: &Decision) {
    let pairs = [
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", decision.reset_seconds.to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    if !decision.allowed
        && let Ok(value) = HeaderValue::from_str(&decision.retry_after_seconds.to_string())
    {
        headers.insert(actix_web::http::header::RETRY_AFTER, value);
    }
}

/// Counts this request against `class` for `key`; remembers the tightest verdict
/// for the response headers; refuses with 429 when the limit is spent.
pub fn enforce(req: &HttpRequest, class: RouteClass, key: &LimitKey) -> Result<(), ApiError> {
    let decision = limits_of(req)?.check(class, key);
    refuse_when_spent(req, decision)
}

/// The limits a second-factor code meets on the pages (the admin and portal code
/// steps, the admin enrolment), as on the API: per address, then per account when
/// the pending sign-in names one.
pub fn enforce_code_limits(
    req: &HttpRequest,
    ip: std::net::IpAddr,
    account: Option<crate::model::UserId>,
) -> Result<(), ApiError> {
    enforce(req, RouteClass::MfaIp, &LimitKey::ip(ip))?;
    match account {
        Some(user) => enforce(req, RouteClass::MfaAccount, &LimitKey::User(user)),
        None => Ok(()),
    }
}

/// Refuses with 429, before any work, when `key` has nothing left in `class`, but
/// spends nothing: the handler calls [`record`] once its outcome is one that counts.
pub fn enforce_unspent(
    req: &HttpRequest,
    class: RouteClass,
    key: &LimitKey,
) -> Result<(), ApiError> {
    let decision = limits_of(req)?.peek(class, key);
    refuse_when_spent(req, decision)
}

/// Spends one call of `class` for `key` on work already done (after
/// [`enforce_unspent`] let it in), and reports what is left in the headers. The
/// work's answer stands even when concurrent requests spent the last call meanwhile.
pub fn record(req: &HttpRequest, class: RouteClass, key: &LimitKey) -> Result<(), ApiError> {
    let decision = limits_of(req)?.record(class, key);
    remember(req, decision);
    Ok(())
}

fn limits_of(req: &HttpRequest) -> Result<&RateLimits, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|state| &state.limits)
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state missing")))
}

fn refuse_when_spent(req: &HttpRequest, decision: Decision) -> Result<(), ApiError> {
    remember(req, decision);
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited(decision))
    }
}

/// Keeps the tightest verdict so far for the response headers.
fn remember(req: &HttpRequest, decision: Decision) {
    let mut ext = req.extensions_mut();
    let tighter = ext
        .get::<Decision>()
        .is_none_or(|current| decision.tighter_than(current));
    if tighter {
        ext.insert(decision);
    }
}

/// `/health*` is never limited; the gate's decisions are limited by the gate's own
/// classes (per user and per client address), which its handler applies.
fn is_exempt(path: &str) -> bool {
    path == "/health" || path.starts_with("/health/") || path.starts_with("/api/v1/gate/")
}

pub struct RateLimit;

impl<S, B> Transform<S, ServiceRequest> for RateLimit
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RateLimitMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RateLimitMiddleware {
            service: Rc::new(service),
        }))
    }
}

pub struct RateLimitMiddleware<S> {
    service: Rc<S>,
}

/// The general limit of a request: per user for a validly signed access token not
/// known to be revoked, per client network otherwise. `None`: no key can be told.
fn general_key(req: &ServiceRequest, state: &AppState) -> Option<(RouteClass, LimitKey)> {
    // A token known to be revoked buys nothing: its bearer is anonymous here, so a
    // stolen, revoked token cannot spend its owner's budget.
    let verified = bearer_token_of(req.headers())
        .and_then(|token| {
            state
                .tokens
                .verify(token, TokenType::Access, state.clock.now())
                .ok()
        })
        .map(|claims| {
            let cached = state.revocations.check_access_cached(&claims);
            (claims, cached)
        })
        .filter(|(_, cached)| *cached != Some(true));
    match verified {
        // Left in the request for the `Principal` extractor: one verification and
        // one revocation check per request, not two.
        Some((claims, cached)) => {
            let key = LimitKey::User(claims.sub);
            req.extensions_mut().insert(VerifiedClaims {
                claims,
                vouched: cached == Some(false),
            });
            Some((RouteClass::Authenticated, key))
        }
        None => {
            let ip = req.extensions().get::<ClientIp>().copied()?;
            Some((RouteClass::Anonymous, LimitKey::ip(ip.0)))
        }
    }
}

impl<S, B> Service<ServiceRequest> for RateLimitMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if is_exempt(req.path()) {
            let fut = self.service.call(req);
            return Box::pin(async move { Ok(fut.await?.map_into_left_body()) });
        }
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            let response = req.error_response(ApiError::Unexpected(anyhow::anyhow!(
                "application state missing"
            )));
            return Box::pin(async move { Ok(response.map_into_right_body()) });
        };
        let Some((class, key)) = general_key(&req, &state) else {
            // Fail closed: no key, no service.
            let response = req.error_response(ApiError::BadRequest(
                "The client address could not be determined.".to_owned(),
            ));
            return Box::pin(async move { Ok(response.map_into_right_body()) });
        };
        let decision = state.limits.check(class, &key);
        if !decision.allowed {
            let response = req.error_response(ApiError::RateLimited(decision));
            return Box::pin(async move { Ok(response.map_into_right_body()) });
        }
        req.extensions_mut().insert(decision);
        let fut = self.service.call(req);
        Box::pin(async move {
            let mut response = fut.await?;
            let reported = response
                .request()
                .extensions()
                .get::<Decision>()
                .copied()
                .unwrap_or(decision);
            write_headers(response.headers_mut(), &reported);
            Ok(response.map_into_left_body())
        })
    }
}
