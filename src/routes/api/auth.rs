//! `/api/v1/auth/*`: registration, login, refresh, logout, the caller's account,
//! password change and sessions.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::AccountError;
use crate::accounts::service::{LoginOutcome, Proof, SessionInfo, TokenPair};
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::http::ClientIp;
use crate::http::json::Json;
use crate::http::problem::{ApiError, Problem};
use crate::http::rate_limit::{enforce, enforce_unspent, record};
use crate::limits::{LimitKey, RouteClass};
use crate::model::{AuthMethod, Email, Role, User, UserStatus};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "alice@example.org")]
    pub email: String,
    /// 12–128 characters, hard to guess, not containing the e-mail's name part.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; each is good once.
    #[schema(value_type = String, format = Password)]
    pub refresh_token: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// The password again — and, with MFA on, a current code — for a sensitive change.
/// Both may be left out within 5 minutes of sending them on the same session.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Reauthentication {
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// A current 6-digit code (or a backup code), when MFA is on.
    #[schema(value_type = Option<String>)]
    pub code: Option<SecretString>,
}

/// The caller proves the account again (see [`Reauthentication`]), within the
/// per-account limit on passwords entered again.
pub(crate) async fn reauthenticated(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    proof: Reauthentication,
) -> Result<(), ApiError> {
    if proof.password.is_some() {
        enforce(
            req,
            RouteClass::PasswordAccount,
            &LimitKey::User(principal.user_id),
        )?;
    }
    let proof = Proof {
        password: proof.password,
        code: proof.code,
    };
    Ok(state
        .accounts
        .reauthenticate(principal, proof, meta)
        .await?)
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub status: UserStatus,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Whether logins need a TOTP code after the password.
    pub mfa_enabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id.0,
            email: user.email.to_string(),
            role: user.role,
            status: user.status,
            attributes: user.attributes,
            mfa_enabled: user.mfa_enabled,
            created_at: rfc3339(user.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Exchange at `/api/v1/auth/refresh`; good once.
    pub refresh_token: String,
    /// Seconds until the session (and so every refresh token) expires.
    pub refresh_expires_in: i64,
    pub session_id: Uuid,
}

impl TokenResponse {
    pub(crate) fn new(pair: TokenPair, now: i64) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.access_expires_at - now,
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
            refresh_expires_in: pair.session_expires_at - now,
            session_id: pair.session_id,
        }
    }
}

/// The login answer for an account with MFA: no tokens yet, a challenge instead.
#[derive(Serialize, ToSchema)]
pub struct MfaChallengeResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Send to `/api/v1/auth/mfa/verify-login` with a code. Useless as an access
    /// token; good for one successful verification.
    pub mfa_token: String,
    /// Seconds until the challenge expires.
    pub expires_in: i64,
}

/// Either tokens, or (for an account with MFA) a challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Signed(TokenResponse),
    MfaRequired(MfaChallengeResponse),
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub message: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    pub id: Uuid,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    /// How the session was signed in to: `password`, `password+totp` or `passkey`.
    pub auth_method: AuthMethod,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

impl From<SessionInfo> for SessionResponse {
    fn from(info: SessionInfo) -> Self {
        let s = info.session;
        Self {
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            auth_method: s.auth_method,
            current: info.current,
        }
    }
}

/// Create an account (role `user`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserResponse),
        (status = 409, description = "E-mail already registered", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 3 registrations per hour from this address (only those answered 201 or 409 count)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail or a password breaking a named rule", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn register(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    // Only answers that create an account or find one taken (201, 409) spend the
    // address's budget; a refused password or e-mail does not. An address with
    // nothing left is refused before any work.
    let key = LimitKey::ip(ip.0);
    enforce_unspent(&req, RouteClass::Register, &key)?;
    let body = body.into_inner();
    let registered = state
        .accounts
        .register(&body.email, body.password, &meta)
        .await;
    if matches!(registered, Ok(_) | Err(AccountError::EmailTaken)) {
        record(&req, RouteClass::Register, &key)?;
    }
    Ok(HttpResponse::Created().json(UserResponse::from(registered?)))
}

/// Exchange e-mail and password for an access token and a refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; or, for an account with MFA, `mfa_required` and an `mfa_token` for `/api/v1/auth/mfa/verify-login`", body = LoginResponse),
        (status = 401, description = "`Invalid email or password` — the same for every kind of failure, a locked account included", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 attempts a minute from this address, or 10 for this account", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins at once; retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // Both limits count every attempt: one address trying many accounts, and many
    // addresses trying one account.
    enforce(&req, RouteClass::LoginIp, &LimitKey::ip(ip.0))?;
    // An e-mail that does not parse names no account: only the address limit applies.
    if let Ok(email) = Email::parse(&body.email) {
        enforce(&req, RouteClass::LoginAccount, &LimitKey::account(&email))?;
    }
    let outcome = state
        .accounts
        .login(&body.email, body.password, &meta)
        .await?;
    let now = state.clock.now();
    Ok(HttpResponse::Ok().json(match outcome {
        LoginOutcome::Signed(pair) => LoginResponse::Signed(TokenResponse::new(pair, now)),
        LoginOutcome::MfaRequired(challenge) => LoginResponse::MfaRequired(MfaChallengeResponse {
            mfa_required: true,
            mfa_token: challenge.mfa_token,
            expires_in: challenge.expires_at - now,
        }),
    }))
}

/// Exchange a refresh token for a new pair. Presenting an already-used refresh
/// token ends the whole session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the presented refresh token is spent", body = TokenResponse),
        (status = 401, description = "Unknown, spent, or expired refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 30 refreshes a minute from this address", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn refresh(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(&req, RouteClass::Refresh, &LimitKey::ip(ip.0))?;
    let pair = state
        .accounts
        .refresh(body.into_inner().refresh_token, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::new(pair, state.clock.now())))
}

/// Revoke the calling access token and end its session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out", body = MessageResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn logout(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    state.accounts.logout(&principal, &meta).await?;
    Ok(HttpResponse::Ok().json(MessageResponse {
        message: "Successfully logged out",
    }))
}

/// End every session of the caller's account.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every session ended", body = MessageResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn logout_all(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    state.accounts.logout_all(&principal, &meta).await?;
    Ok(HttpResponse::Ok().json(MessageResponse {
        message: "Successfully logged out of every session",
    }))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserResponse),
        (status = 401, description = "Missing, invalid or revoked token (`Token revoked`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Token status cannot be checked", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn me(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.me(&principal).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

/// Change the caller's password. Every other session ends; the caller gets a fresh
/// pair for its own session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Password changed; use the new tokens", body = TokenResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is softlocked after failed attempts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password (counts toward the softlock), or a new password breaking a named rule", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 passwords entered again a minute for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn change_password(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(
        &req,
        RouteClass::PasswordAccount,
        &LimitKey::User(principal.user_id),
    )?;
    let body = body.into_inner();
    let pair = state
        .accounts
        .change_password(&principal, body.current_password, body.new_password, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::new(pair, state.clock.now())))
}

/// The caller's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = [SessionResponse]),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn sessions(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sessions: Vec<SessionResponse> = state
        .accounts
        .sessions(&principal)
        .await?
        .into_iter()
        .map(SessionResponse::from)
        .collect();
    Ok(HttpResponse::Ok().json(sessions))
}

/// End one of the caller's sessions. Someone else's session is 404.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn revoke_session(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session_id = Uuid::parse_str(&path.into_inner()).map_err(|_| ApiError::NotFound)?;
    state
        .accounts
        .revoke_session(&principal, session_id, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
