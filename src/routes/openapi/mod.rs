//! The OpenAPI document. Every endpoint is listed here; a test checks that each
//! registered API route appears, and [`contract`] adds what every operation can
//! answer besides its own outcomes.

mod contract;

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::http::problem::Problem;
use crate::model::document::Classification;
use crate::model::policy::{Effect, PolicyStatus, Principals};
use crate::model::{AuthMethod, Role, UserStatus};
use crate::policy::as_code::{PolicyEntry, PolicyFile};
use crate::policy::attributes::{AttributeSpec, ValueKind};
use crate::policy::engine::{
    ConditionResult, ConditionTrace, Decision, EvaluationError, PolicyExplanation, Reason,
};
use crate::policy::operator::Operator;
use crate::policy::validate::PolicyDraft;
use crate::routes::api::admin_policies::{
    self, ImportResponse, OperatorSpec, PolicyResponse, PolicyStatusRequest, PolicyVersionResponse,
    ResourceDescription, SimulateRequest, SimulateResponse, SimulatedContext, SimulatedSubject,
    Vocabulary,
};
use crate::routes::api::admin_users::{self, MfaResetResponse};
use crate::routes::api::auth::{
    self, ChangePasswordRequest, LoginRequest, LoginResponse, MessageResponse,
    MfaChallengeResponse, RefreshRequest, RegisterRequest, SessionResponse, TokenResponse,
    UserResponse,
};
use crate::routes::api::authz::{self, CheckRequest, CheckResponse};
use crate::routes::api::documents::{
    self, DocumentListResponse, DocumentPatchRequest, DocumentRequest, DocumentResponse,
};
use crate::routes::api::mfa::{
    self, MfaDisableRequest, MfaEnableRequest, MfaEnabledResponse, MfaSetupResponse,
    MfaVerifyLoginRequest,
};
use crate::routes::api::passkeys::{
    self, PasskeyRenameRequest, PasskeyResponse, RegistrationFinishRequest,
    RegistrationOptionsResponse, SecondFactorFinishRequest, SecondFactorStartRequest,
    SignInFinishRequest, SignInOptionsResponse,
};
use crate::routes::api::webhooks::{
    self, AttemptResponse, CredentialSummary, DeliveryResponse, QueuedResponse, WebhookRequest,
    WebhookResponse, WebhookWithSecret,
};
use crate::routes::gate;
use crate::routes::health::{self, HealthStatus, ReadinessStatus};
use crate::validation::FieldError;
use crate::webhooks::model::Credential;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        version = "1",
        description = "Fail-closed accounts, tokens, MFA, rate limits, ABAC, webhooks and audit for single-host deployments. Every error is application/problem+json with a request_id."
    ),
    paths(
        health::live,
        health::live_by_name,
        health::ready,
        spec,
        gate::forward_auth,
        gate::auth_request,
        gate::jwks,
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::logout_all,
        auth::me,
        auth::change_password,
        auth::sessions,
        auth::revoke_session,
        mfa::setup,
        mfa::enable,
        mfa::disable,
        mfa::verify_login,
        passkeys::register_start,
        passkeys::register_finish,
        passkeys::list,
        passkeys::rename,
        passkeys::delete,
        passkeys::login_start,
        passkeys::login_finish,
        passkeys::verify_login_start,
        passkeys::verify_login_finish,
        admin_users::lock,
        admin_users::unlock,
        admin_users::reset_mfa,
        admin_users::passkeys,
        admin_users::reset_passkeys,
        admin_policies::list,
        admin_policies::create,
        admin_policies::get,
        admin_policies::update,
        admin_policies::set_status,
        admin_policies::delete,
        admin_policies::versions,
        admin_policies::export,
        admin_policies::import,
        admin_policies::vocabulary,
        admin_policies::simulate,
        authz::check,
        documents::list,
        documents::create,
        documents::get,
        documents::replace,
        documents::patch,
        documents::delete,
        webhooks::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate_secret,
        webhooks::test,
        webhooks::deliveries,
        webhooks::retry,
    ),
    components(schemas(
        Problem,
        FieldError,
        HealthStatus,
        ReadinessStatus,
        RegisterRequest,
        LoginRequest,
        RefreshRequest,
        ChangePasswordRequest,
        UserResponse,
        TokenResponse,
        LoginResponse,
        MfaChallengeResponse,
        MfaSetupResponse,
        MfaEnableRequest,
        MfaEnabledResponse,
        MfaDisableRequest,
        MfaVerifyLoginRequest,
        MfaResetResponse,
        admin_users::PasskeysResetResponse,
        PasskeyResponse,
        RegistrationOptionsResponse,
        RegistrationFinishRequest,
        PasskeyRenameRequest,
        SignInOptionsResponse,
        SignInFinishRequest,
        SecondFactorStartRequest,
        SecondFactorFinishRequest,
        PolicyResponse,
        PolicyDraft,
        Effect,
        PolicyStatus,
        Principals,
        Operator,
        ValueKind,
        AttributeSpec,
        PolicyVersionResponse,
        PolicyFile,
        PolicyEntry,
        ImportResponse,
        admin_policies::ImportChange,
        admin_policies::ImportFieldChange,
        admin_policies::ImportAdminLoss,
        Vocabulary,
        OperatorSpec,
        PolicyStatusRequest,
        SimulateRequest,
        SimulateResponse,
        SimulatedSubject,
        SimulatedContext,
        ResourceDescription,
        Decision,
        Reason,
        PolicyExplanation,
        ConditionTrace,
        ConditionResult,
        EvaluationError,
        CheckRequest,
        CheckResponse,
        DocumentRequest,
        DocumentPatchRequest,
        DocumentResponse,
        DocumentListResponse,
        Classification,
        WebhookRequest,
        WebhookResponse,
        WebhookWithSecret,
        CredentialSummary,
        Credential,
        DeliveryResponse,
        AttemptResponse,
        QueuedResponse,
        MessageResponse,
        SessionResponse,
        Role,
        UserStatus,
        AuthMethod,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "mfa", description = "TOTP second factor and backup codes"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, and signing in with a passkey alone"),
        (name = "documents", description = "Owned documents; every access decided by the policy engine"),
        (name = "authz", description = "The decision API"),
        (name = "webhooks", description = "Outgoing webhooks: signed, durable, SSRF-guarded"),
        (name = "policies", description = "ABAC policy administration; administrators the engine allows (resource type `admin`)"),
        (name = "admin", description = "Administration; administrators the engine allows (resource type `admin`)"),
        (name = "gate", description = "Forward-auth for reverse proxies (nginx, Caddy, Traefik) in front of other apps, and the keys that verify its assertions"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the protected operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Rendered once: the document never changes while the process runs.
fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        contract::complete(&mut doc);
        doc.to_string()
    })
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
