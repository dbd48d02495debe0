//! The callers of the JSON API, as extractors: the first argument of every protected
//! handler.
//!
//! - [`Principal`]: a bearer token → signature, claims, type and time → revocation
//!   (cache, then the database when the cache cannot vouch; a database error denies
//!   with 503).
//! - [`AdminCaller`]: the same token, for `/api/v1/admin/*`. Its
//!   [`AdminCaller::authorize`] asks the one question every administrator operation
//!   asks on every door (`admin::AdminAccess`), so a deny policy on resource type
//!   `admin` stops the API as it stops the pages.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::problem::ApiError;
use super::request_context::policy_context;
use crate::admin::access::is_administrator;
use crate::admin::{AdminAccessError, AdminAction};
use crate::audit::{AdminActor, RequestMeta};
use crate::auth::tokens::{Claims, TokenType};
use crate::auth::{AuthError, Principal};
use crate::model::User;
use crate::policy::engine::Context;
use crate::state::AppState;

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive). Its
/// characters are checked by the token's own parsing, which refuses anything but
/// base64url and dots.
pub(crate) fn bearer_token_of(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, token) = (&value[..space], value[space + 1..].trim_ascii());
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty())
        .then(|| std::str::from_utf8(token).ok())
        .flatten()
}

/// Claims of the request's bearer token, verified earlier in the same request (by
/// the rate-limit middleware). Only the server puts this in request extensions.
pub(crate) struct VerifiedClaims {
    pub(crate) claims: Claims,
    /// Memory vouched, at that check, that the token is not refused (revoked, or
    /// its session ended): the extractor need not ask again for this request.
    pub(crate) vouched: bool,
}

/// The application state of a request; its absence is a wiring fault (500).
pub(crate) fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state missing")))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = match app_state(req) {
            Ok(state) => state,
            Err(error) => return Box::pin(async { Err(error) }),
        };
        let already = req
            .extensions()
            .get::<VerifiedClaims>()
            .map(|v| (v.claims.clone(), v.vouched));
        let (claims, vouched) = match already {
            Some((claims, vouched)) => (Ok(claims), vouched),
            None => match bearer_token_of(req.headers()) {
                None => (Err(AuthError::MissingToken), false),
                Some(token) => (
                    state
                        .tokens
                        .verify(token, TokenType::Access, state.clock.now())
                        .map_err(AuthError::from),
                    false,
                ),
            },
        };
        Box::pin(async move {
            let claims = claims?;
            if vouched {
                return Ok(Principal::from(claims));
            }
            if state
                .revocations
                .is_access_refused(&claims)
                .await
                .map_err(AuthError::from)?
            {
                return Err(AuthError::Revoked.into());
            }
            Ok(Principal::from(claims))
        })
    }
}

/// A caller of the admin API: a valid, unrevoked token, its account, and the
/// request the engine judges (address, method, path, time).
#[derive(Clone)]
pub struct AdminCaller {
    pub principal: Principal,
    user: User,
    context: Context,
    meta: RequestMeta,
    state: web::Data<AppState>,
}

impl AdminCaller {
    /// This request's context as the policy engine sees it.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The administrator, if the engine allows `action` (on `target`): anyone but an
    /// active administrator is 403, a policy's deny is 403, an evaluation error the
    /// generic 500.
    pub async fn authorize(
        &self,
        action: AdminAction,
        target: Option<String>,
    ) -> Result<AdminActor, ApiError> {
        self.state
            .admin_access
            .authorize(
                &self.user,
                self.principal.auth_method,
                action,
                target,
                self.context.clone(),
                &self.meta,
            )
            .await
            .map_err(ApiError::from)
    }
}

impl AdminCaller {
    /// The request's caller, if it is an active administrator; 401 without a good
    /// token, 403 for anyone else.
    async fn resolve(req: HttpRequest) -> Result<Self, ApiError> {
        let principal = Principal::extract(&req).await?;
        let meta = RequestMeta::extract(&req).await?;
        let state = app_state(&req)?;
        let user = state.accounts.me(&principal).await?;
        if !is_administrator(&user) {
            return Err(AdminAccessError::NotAdministrator.into());
        }
        let context = policy_context(&req, &meta, state.clock.now());
        Ok(Self {
            principal,
            user,
            context,
            meta,
            state,
        })
    }
}

/// Guards `/api/v1/admin/*`: only an active administrator's request reaches its
/// handler, so nobody else's body is read, parsed or answered about (a handler's
/// extractors run side by side, and a body's 422 could otherwise come before the
/// 403).
///
/// A refusal is answered here (not raised as an error), so the response keeps its
/// request and the request's log line names its route.
pub async fn admin_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match AdminCaller::resolve(req.request().clone()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(error) => Ok(req.error_response(error).map_into_right_body()),
    }
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolved = req.extensions().get::<AdminCaller>().cloned();
        let req = req.clone();
        Box::pin(async move {
            match resolved {
                Some(caller) => Ok(caller),
                None => AdminCaller::resolve(req).await,
            }
        })
    }
}
