//! `/api/v1/auth/mfa/*`: TOTP setup, enable, disable, and the second login step.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{MessageResponse, Reauthentication, TokenResponse, reauthenticated};
use crate::accounts::AccountError;
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::auth::tokens::TokenType;
use crate::http::ClientIp;
use crate::http::json::Json;
use crate::http::problem::{ApiError, Problem};
use crate::http::rate_limit::enforce;
use crate::limits::{LimitKey, RouteClass};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct MfaSetupResponse {
    /// The shared secret, base32, for typing into an authenticator app. Shown only
    /// here.
    pub secret: String,
    /// The `otpauth://totp/...` URI an authenticator app scans.
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG `data:` URL, usable as an `<img src>`.
    pub qr_code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaEnableRequest {
    /// The current 6-digit code from the authenticator app. It proves the caller
    /// holds the pending secret, which only the re-authenticated `setup` showed, so
    /// no password is asked again here.
    #[schema(value_type = String, example = "123456")]
    pub code: SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct MfaEnabledResponse {
    /// Ten single-use backup codes. Shown only here; store them somewhere safe.
    pub backup_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaDisableRequest {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// A current 6-digit code, or an unused backup code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaVerifyLoginRequest {
    /// The `mfa_token` from the login response.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// A current 6-digit code, or an unused backup code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// Start MFA setup: a new secret, pending until `enable` confirms a code from it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/setup",
    tag = "mfa",
    security(("bearer" = [])),
    request_body = Reauthentication,
    responses(
        (status = 200, description = "A pending secret, its URI and QR code", body = MfaSetupResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The password is needed again, or the account is softlocked", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is already enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong `password` (counts toward the softlock)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn setup(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<Reauthentication>,
) -> Result<HttpResponse, ApiError> {
    // Nothing to set up on an account that has MFA: said before any proof is asked.
    if state.accounts.me(&principal).await?.mfa_enabled {
        return Err(AccountError::MfaAlreadyEnabled.into());
    }
    reauthenticated(&req, &state, &principal, &meta, body.into_inner()).await?;
    let setup = state.accounts.setup_mfa(principal.user_id, &meta).await?;
    Ok(HttpResponse::Ok().json(MfaSetupResponse {
        secret: setup.secret_base32.expose_secret().to_owned(),
        otpauth_uri: setup.otpauth_uri.expose_secret().to_owned(),
        qr_code: setup.qr_code,
    }))
}

/// Confirm the pending setup with a current code. Returns the backup codes once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/enable",
    tag = "mfa",
    security(("bearer" = [])),
    request_body = MfaEnableRequest,
    responses(
        (status = 200, description = "MFA enabled", body = MfaEnabledResponse),
        (status = 403, description = "The account is softlocked after failed attempts (a wrong password here counts)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No setup pending, or MFA already enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`code` is not a current code of the pending secret", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 code checks a minute for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn enable(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<MfaEnableRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(
        &req,
        RouteClass::MfaAccount,
        &LimitKey::User(principal.user_id),
    )?;
    let codes = state
        .accounts
        .enable_mfa(principal.user_id, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(MfaEnabledResponse {
        backup_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
    }))
}

/// Turn MFA off: the password and a current code (or a backup code) are required.
#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/disable",
    tag = "mfa",
    security(("bearer" = [])),
    request_body = MfaDisableRequest,
    responses(
        (status = 200, description = "MFA disabled", body = MessageResponse),
        (status = 403, description = "The account is softlocked after failed attempts (a wrong password here counts)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "MFA is not enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong `password` or `code`; counts toward the account's lockout", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 code checks a minute for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn disable(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<MfaDisableRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(
        &req,
        RouteClass::MfaAccount,
        &LimitKey::User(principal.user_id),
    )?;
    enforce(
        &req,
        RouteClass::PasswordAccount,
        &LimitKey::User(principal.user_id),
    )?;
    let body = body.into_inner();
    state
        .accounts
        .disable_mfa(&principal, body.password, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(MessageResponse {
        message: "MFA disabled",
    }))
}

/// The second login step: the `mfa_token` from login and a code (TOTP or backup)
/// for an access token and a refresh token. Each code, and each `mfa_token`, is
/// good once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/verify-login",
    tag = "mfa",
    request_body = MfaVerifyLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "`Invalid token` (the mfa_token is invalid, expired or used) or `Invalid authentication code` (wrong or already used; counts toward the account's lockout)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 10 code checks a minute from this address, or 5 for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn verify_login(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<MfaVerifyLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let token = body.mfa_token.expose_secret();
    enforce_second_step_limits(&req, ip, &state, token)?;
    let pair = state
        .accounts
        .verify_mfa_login(token, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::new(pair, state.clock.now())))
}

/// The limits on answering an MFA challenge (with a code or a passkey): per
/// address — its own budget, apart from the password step's, so a sign-in spends
/// one of each — and per account, which the challenge token names. (The service
/// checks the token again, with revocation.)
pub(super) fn enforce_second_step_limits(
    req: &HttpRequest,
    ip: ClientIp,
    state: &AppState,
    mfa_token: &str,
) -> Result<(), ApiError> {
    enforce(req, RouteClass::MfaIp, &LimitKey::ip(ip.0))?;
    let claims = state
        .tokens
        .verify(mfa_token, TokenType::Mfa, state.clock.now())
        .map_err(|_| ApiError::Unauthorized("Invalid token"))?;
    enforce(req, RouteClass::MfaAccount, &LimitKey::User(claims.sub))
}
