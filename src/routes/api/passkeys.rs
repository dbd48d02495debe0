//! `/api/v1/auth/passkeys/*`: registering passkeys, listing, renaming and deleting
//! them, signing in with one alone, and answering a password sign-in's MFA
//! challenge with one instead of a code. The WebAuthn options go out, and the
//! browser's credentials come back, exactly as webauthn-rs serialises them (the
//! shapes of `PublicKeyCredential.toJSON()`).

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use super::auth::{Reauthentication, TokenResponse, reauthenticated};
use super::mfa::enforce_second_step_limits;
use crate::accounts::passkeys::{PasskeyError, PasskeyInfo, Started};
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::http::ClientIp;
use crate::http::json::{Json, OptionalJson};
use crate::http::problem::{ApiError, Problem};
use crate::http::rate_limit::enforce;
use crate::limits::{LimitKey, RouteClass};
use crate::state::AppState;
use crate::validation::FieldError;

#[derive(Serialize, ToSchema)]
pub struct PasskeyResponse {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null` until it first signs in.
    pub last_used_at: Option<String>,
    /// RFC 3339: when its signature counter went backwards, a sign that the key
    /// was copied. It signs nobody in since, and the sessions it had signed in
    /// ended; delete it and register the authenticator again. `null` normally.
    pub clone_suspected_at: Option<String>,
}

impl From<PasskeyInfo> for PasskeyResponse {
    fn from(passkey: PasskeyInfo) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name,
            created_at: rfc3339(passkey.created_at),
            last_used_at: passkey.last_used_at.map(rfc3339),
            clone_suspected_at: passkey.clone_suspected_at.map(rfc3339),
        }
    }
}

/// A registration begun: hand `options.publicKey` to `navigator.credentials.create`.
#[derive(Serialize, ToSchema)]
pub struct RegistrationOptionsResponse {
    /// Names this ceremony in `register/finish`; good once, for 5 minutes, on this
    /// session only.
    pub ceremony: String,
    /// `{"publicKey": {rp, user, challenge, pubKeyCredParams, timeout,
    /// excludeCredentials, authenticatorSelection, …}}`, binary members base64url.
    #[schema(value_type = Object)]
    pub options: CreationChallengeResponse,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFinishRequest {
    /// The `ceremony` from `register/start`.
    pub ceremony: String,
    /// 1–64 characters; by default "Passkey N".
    #[serde(default)]
    pub name: Option<String>,
    /// The new credential, as `PublicKeyCredential.toJSON()` gives it: `{id, rawId,
    /// type, response: {clientDataJSON, attestationObject, transports?},
    /// clientExtensionResults}`.
    #[schema(value_type = Object)]
    pub credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    /// 1–64 characters.
    pub name: String,
}

/// A sign-in begun: hand `options.publicKey` to `navigator.credentials.get`.
#[derive(Serialize, ToSchema)]
pub struct SignInOptionsResponse {
    /// Names this ceremony in `login/finish`; good once, for 5 minutes.
    pub ceremony: String,
    /// `{"publicKey": {challenge, timeout, rpId, allowCredentials: [],
    /// userVerification: "required"}, "mediation": "conditional"}`; `mediation` is
    /// for the browser's autofill (conditional UI), and may be left out for a
    /// sign-in button.
    #[schema(value_type = Object)]
    pub options: RequestChallengeResponse,
}

impl From<Started<RequestChallengeResponse>> for SignInOptionsResponse {
    fn from(started: Started<RequestChallengeResponse>) -> Self {
        Self {
            ceremony: started.ceremony,
            options: started.options,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorStartRequest {
    /// The `mfa_token` from the login response.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorFinishRequest {
    /// The `mfa_token` the ceremony was started with.
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
    /// The `ceremony` from `verify-login/start`.
    pub ceremony: String,
    /// The assertion, as `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInFinishRequest {
    /// The `ceremony` from `login/start`.
    pub ceremony: String,
    /// The assertion, as `PublicKeyCredential.toJSON()` gives it: `{id, rawId, type,
    /// response: {clientDataJSON, authenticatorData, signature, userHandle},
    /// clientExtensionResults}`.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// The browser's credential, read as webauthn-rs reads it (members it does not use,
/// such as `authenticatorAttachment`, are ignored).
fn credential<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|_| {
        ApiError::Validation(vec![FieldError::rule(
            "credential",
            "invalid",
            "is not a WebAuthn credential as PublicKeyCredential.toJSON() gives it",
        )])
    })
}

fn passkey_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| ApiError::NotFound)
}

/// Start registering a passkey on the caller's account: the password again (and a
/// code with MFA on), or a proof within the last 5 minutes on this session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/start",
    tag = "passkeys",
    security(("bearer" = [])),
    request_body = Reauthentication,
    responses(
        (status = 200, description = "The creation options and the ceremony that finishes them", body = RegistrationOptionsResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The password is needed again, or the account is softlocked", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has 20 passkeys already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong `password` or `code` (counts toward the softlock)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 passwords entered again a minute for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn register_start(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<Reauthentication>,
) -> Result<HttpResponse, ApiError> {
    // Said before any proof is asked: there is nothing to register with.
    if !state.passkeys.enabled() {
        return Err(PasskeyError::NotConfigured.into());
    }
    reauthenticated(&req, &state, &principal, &meta, body.into_inner()).await?;
    let started = state.passkeys.start_registration(&principal).await?;
    Ok(HttpResponse::Ok().json(RegistrationOptionsResponse {
        ceremony: started.ceremony,
        options: started.options,
    }))
}

/// Finish registering: the authenticator's new credential for the ceremony this
/// session started.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/finish",
    tag = "passkeys",
    security(("bearer" = [])),
    request_body = RegistrationFinishRequest,
    responses(
        (status = 201, description = "The passkey is registered", body = PasskeyResponse),
        (status = 400, description = "The ceremony is unknown, finished, expired or another session's", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The passkey is registered already, or the account has 20", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `name`, or a `credential` that is malformed or refused (wrong origin or RP id, another challenge, no user verification)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn register_finish(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<RegistrationFinishRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let credential = credential(body.credential)?;
    let passkey = state
        .passkeys
        .finish_registration(
            &principal,
            &body.ceremony,
            body.name.as_deref(),
            &credential,
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(PasskeyResponse::from(passkey)))
}

/// The caller's passkeys, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/auth/passkeys",
    tag = "passkeys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The passkeys", body = [PasskeyResponse]),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let passkeys: Vec<PasskeyResponse> = state
        .passkeys
        .list(&principal)
        .await?
        .into_iter()
        .map(PasskeyResponse::from)
        .collect();
    Ok(HttpResponse::Ok().json(passkeys))
}

/// Rename one of the caller's passkeys. Someone else's is 404.
#[utoipa::path(
    patch,
    path = "/api/v1/auth/passkeys/{id}",
    tag = "passkeys",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Passkey id")),
    request_body = PasskeyRenameRequest,
    responses(
        (status = 200, description = "Renamed", body = PasskeyResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such passkey of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `name`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn rename(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<PasskeyRenameRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = passkey_id(&path)?;
    let passkey = state
        .passkeys
        .rename(&principal, id, &body.name, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(PasskeyResponse::from(passkey)))
}

/// Delete one of the caller's passkeys: the password again (and a code with MFA on)
/// as the JSON body, or no body within 5 minutes of a proof on this session.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/passkeys/{id}",
    tag = "passkeys",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Passkey id")),
    request_body(content = Option<Reauthentication>, description = "The password again; may be left out within 5 minutes of a proof on this session"),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The password is needed again, or the account is softlocked", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such passkey of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong `password` or `code` (counts toward the softlock)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 passwords entered again a minute for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: OptionalJson<Reauthentication>,
) -> Result<HttpResponse, ApiError> {
    let id = passkey_id(&path)?;
    let proof = body.0.unwrap_or_default();
    reauthenticated(&req, &state, &principal, &meta, proof).await?;
    state.passkeys.delete(&principal, id, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start signing in with a passkey alone (no account named). Each `login/finish`
/// needs a ceremony of its own.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/login/start",
    tag = "passkeys",
    responses(
        (status = 200, description = "The request options and the ceremony that finishes them", body = SignInOptionsResponse),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 30 passkey ceremonies started a minute from this address", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.passkeys.enabled() {
        return Err(PasskeyError::NotConfigured.into());
    }
    enforce(&req, RouteClass::PasskeyStartIp, &LimitKey::ip(ip.0))?;
    let started = state.passkeys.start_sign_in()?;
    Ok(HttpResponse::Ok().json(SignInOptionsResponse::from(started)))
}

/// Finish signing in with a passkey: the same tokens as a password sign-in, for a
/// session signed in to with `passkey` (which counts as MFA). A sign-in attempt
/// like a password's: it spends one of this address's.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/login/finish",
    tag = "passkeys",
    request_body = SignInFinishRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "The ceremony is unknown, finished or expired", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`Passkey sign-in failed` — the same for every cause: an unknown passkey, a refused answer (counts toward the account's softlock), a locked or disabled account", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `credential` that is not a WebAuthn assertion", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 5 sign-in attempts a minute from this address (passwords and passkeys together)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<SignInFinishRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(&req, RouteClass::LoginIp, &LimitKey::ip(ip.0))?;
    let body = body.into_inner();
    let credential = credential(body.credential)?;
    let pair = state
        .passkeys
        .finish_sign_in(&body.ceremony, &credential, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::new(pair, state.clock.now())))
}

/// Answer a password sign-in's MFA challenge with one of the account's passkeys
/// instead of a code: the request options, allowing the account's passkeys.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/verify-login/start",
    tag = "passkeys",
    request_body = SecondFactorStartRequest,
    responses(
        (status = 200, description = "The request options and the ceremony that finishes them", body = SignInOptionsResponse),
        (status = 401, description = "`Invalid token`: the mfa_token is invalid, expired or used", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has no passkey in use: answer with a code", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 30 passkey ceremonies started a minute from this address", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn verify_login_start(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    body: Json<SecondFactorStartRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.passkeys.enabled() {
        return Err(PasskeyError::NotConfigured.into());
    }
    enforce(&req, RouteClass::PasskeyStartIp, &LimitKey::ip(ip.0))?;
    let started = state
        .passkeys
        .start_second_factor(body.mfa_token.expose_secret())
        .await?;
    Ok(HttpResponse::Ok().json(SignInOptionsResponse::from(started)))
}

/// Finish answering the MFA challenge with a passkey: the same tokens as
/// `mfa/verify-login`, for a session signed in to with `passkey`. A refused answer
/// counts toward the account's softlock and leaves the challenge unspent, as a
/// wrong code does; the code limits apply.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/verify-login/finish",
    tag = "passkeys",
    request_body = SecondFactorFinishRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "The ceremony is unknown, finished, expired, or was started for another challenge", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`Invalid token` (the mfa_token is invalid, expired or used) or `Passkey sign-in failed` (the same for every refusal)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Passkeys are not configured on this server", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `credential` that is not a WebAuthn assertion", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 10 second-step answers a minute from this address, or 5 for this account", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn verify_login_finish(
    req: HttpRequest,
    ip: ClientIp,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<SecondFactorFinishRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let token = body.mfa_token.expose_secret();
    enforce_second_step_limits(&req, ip, &state, token)?;
    let credential = credential(body.credential)?;
    let pair = state
        .passkeys
        .finish_second_factor(token, &body.ceremony, &credential, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::new(pair, state.clock.now())))
}
