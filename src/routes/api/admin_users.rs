//! `/api/v1/admin/users/*`: account administration: lock, unlock, MFA reset, the
//! account's passkeys (listed, all removed). Each asks the engine (resource type
//! `admin`, actions `user.*`) as the admin pages do.

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::auth::UserResponse;
use super::passkeys::PasskeyResponse;
use crate::admin::AdminAction;
use crate::audit::RequestMeta;
use crate::http::principal::AdminCaller;
use crate::http::problem::{ApiError, Problem};
use crate::model::UserId;
use crate::state::AppState;

fn user_id(path: web::Path<String>) -> Result<UserId, ApiError> {
    Uuid::parse_str(&path.into_inner())
        .map(UserId)
        .map_err(|_| ApiError::NotFound)
}

/// Lock an account: logins are refused and every session and token of it ends.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/lock",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Locked", body = UserResponse),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An administrator cannot lock their own account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn lock(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(path)?;
    let actor = admin
        .authorize(AdminAction::UserLock, Some(id.to_string()))
        .await?;
    // (One's own account is refused by the account service, with its own reason.)
    if actor.user_id() != Some(id) && state.policies.account_change_locks_out(id, None).await? {
        return Err(ApiError::Conflict(
            "Locking this account would leave no active administrator able to edit the policies.",
        ));
    }
    let user = state.accounts.lock(&actor, id, &meta).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

/// Unlock an account: active again, with its softlock and failure count cleared.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unlock",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Unlocked", body = UserResponse),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn unlock(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(path)?;
    let actor = admin
        .authorize(AdminAction::UserUnlock, Some(id.to_string()))
        .await?;
    let user = state.accounts.unlock(&actor, id, &meta).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MfaResetResponse {
    /// Whether the user had a TOTP factor (enabled or pending) that was removed.
    pub removed: bool,
}

/// Remove a user's MFA factor and backup codes (a lost authenticator). The user
/// signs in with the password alone until they set MFA up again.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/mfa/reset",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Reset (idempotent)", body = MfaResetResponse),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reset_mfa(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(path)?;
    let actor = admin
        .authorize(AdminAction::UserResetMfa, Some(id.to_string()))
        .await?;
    let removed = state.accounts.reset_mfa(&actor, id, &meta).await?;
    Ok(HttpResponse::Ok().json(MfaResetResponse { removed }))
}

/// A user's passkeys, oldest first, as the user sees them in
/// `GET /api/v1/auth/passkeys` (a part of viewing the user).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/passkeys",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user's passkeys", body = [PasskeyResponse]),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn passkeys(
    admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(path)?;
    admin
        .authorize(AdminAction::UserView, Some(id.to_string()))
        .await?;
    // An account without passkeys and no account at all must not look alike.
    state.accounts.find_user(id).await?;
    let passkeys: Vec<PasskeyResponse> = state
        .passkeys
        .of_user(id)
        .await?
        .into_iter()
        .map(PasskeyResponse::from)
        .collect();
    Ok(HttpResponse::Ok().json(passkeys))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PasskeysResetResponse {
    /// How many passkeys the account had, all removed.
    pub removed: usize,
}

/// Remove every passkey of a user (a lost device, or a passkey someone planted
/// with a stolen session), ending every session of the account.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/passkeys",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Removed (idempotent: 0 when there were none)", body = PasskeysResetResponse),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own account: its passkeys are deleted one by one, with the password (`DELETE /api/v1/auth/passkeys/{id}`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reset_passkeys(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(path)?;
    let actor = admin
        .authorize(AdminAction::UserResetPasskeys, Some(id.to_string()))
        .await?;
    let removed = state.passkeys.reset(&actor, id, &meta).await?;
    Ok(HttpResponse::Ok().json(PasskeysResetResponse { removed }))
}
