//! Authentication: access tokens, their revocation, refresh-token sessions and the
//! extractor every protected handler starts with.

pub mod live_sessions;
pub mod mfa;
pub mod refresh;
pub mod revocation;
pub mod tokens;

use uuid::Uuid;

use crate::model::{AuthMethod, Role, UserId};

/// Who is calling, proven by a valid, unrevoked access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: Uuid,
    pub role: Role,
    pub token_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
    /// How the token's session was signed in to.
    pub auth_method: AuthMethod,
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
            auth_method: claims.auth_method,
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
