//! Authentication: access tokens, their revocation, refresh-token sessions and the
//! extractor every protected handler starts with.

pub mod admin_session;
pub mod extractor;
pub mod mfa;
pub mod refresh;
pub mod revocation;
pub mod tokens;

use uuid::Uuid;

use crate::accounts::{Role, UserId};
use crate::error::ApiError;

/// Who is calling, proven by a valid, unrevoked access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: Uuid,
    pub role: Role,
    pub token_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl From<tokens::Claims> for Principal {
    fn from(claims: tokens::Claims) -> Self {
        Self {
            user_id: claims.sub,
            session_id: claims.sid,
            role: claims.role,
            token_id: claims.jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    MissingToken,
    #[error(transparent)]
    InvalidToken(#[from] tokens::TokenError),
    #[error("token revoked")]
    Revoked,
    #[error(transparent)]
    StoreUnavailable(#[from] revocation::RevocationUnavailable),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingToken => ApiError::Unauthorized("A bearer access token is required."),
            AuthError::InvalidToken(tokens::TokenError::Expired) => {
                ApiError::Unauthorized("Token expired")
            }
            AuthError::InvalidToken(_) => ApiError::Unauthorized("Invalid token"),
            AuthError::Revoked => ApiError::Unauthorized("Token revoked"),
            AuthError::StoreUnavailable(cause) => {
                tracing::error!(error = %cause, "token check failed closed");
                ApiError::Unavailable {
                    reason: "The token cannot be checked right now. Please try again later.",
                    retry_after_seconds: Some(5),
                }
            }
        }
    }
}
