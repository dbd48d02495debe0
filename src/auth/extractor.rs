//! `Principal` as an actix extractor: the first line of every protected handler.
//! Bearer token → signature, claims, type and time → revocation (cache, then the
//! database when the cache cannot vouch; a database error denies with 503).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::tokens::{Claims, TokenType};
use super::{AuthError, Principal};
use crate::accounts::Role;
use crate::error::ApiError;
use crate::state::AppState;

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer_token_of(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Claims of the request's bearer token, verified earlier in the same request (by
/// the rate-limit middleware). Only the server puts this in request extensions.
pub(crate) struct VerifiedClaims(pub(crate) Claims);

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Box::pin(async {
                Err(ApiError::Unexpected(anyhow::anyhow!(
                    "application state missing"
                )))
            });
        };
        let already = req
            .extensions()
            .get::<VerifiedClaims>()
            .map(|v| v.0.clone());
        let claims = match (already, bearer_token_of(req.headers())) {
            (Some(claims), _) => Ok(claims),
            (None, None) => Err(AuthError::MissingToken),
            (None, Some(token)) => state
                .tokens
                .verify(token, TokenType::Access, state.clock.now())
                .map_err(AuthError::from),
        };
        Box::pin(async move {
            let claims = claims?;
            if state
                .revocations
                .is_revoked(&claims)
                .await
                .map_err(AuthError::from)?
            {
                return Err(AuthError::Revoked.into());
            }
            Ok(Principal::from(claims))
        })
    }
}

/// A caller with the `admin` role (from its valid, unrevoked token). Anyone else is
/// refused with 403 before the handler runs.
pub struct Admin(pub Principal);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            let principal = principal.await?;
            if principal.role == Role::Admin {
                Ok(Admin(principal))
            } else {
                Err(ApiError::Forbidden("This requires the administrator role."))
            }
        })
    }
}
