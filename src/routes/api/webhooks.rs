//! `/api/v1/webhooks`: the caller's outgoing webhooks. Someone else's is 404.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Reauthentication, reauthenticated};
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::http::json::Json;
use crate::http::problem::{ApiError, Problem};
use crate::model::webhook::Webhook;
use crate::state::AppState;
use crate::webhooks::model::Credential;
use crate::webhooks::service::{DeliveryLog, WebhookChanges};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// https (plain http only to WEBHOOK_ALLOWED_PRIVATE_NETWORKS); a public target.
    /// Required when creating.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// Event types, or `["*"]` (the default).
    #[schema(min_items = 1)]
    pub events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
    /// Sent with every delivery; sealed at rest, never shown again.
    pub credential: Option<Credential>,
    /// The password again, when setting a credential or moving a webhook that has one
    /// (unless sent within the last 5 minutes on this session); never stored.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// With MFA on: a current code, alongside `password`.
    #[schema(value_type = Option<String>)]
    pub code: Option<SecretString>,
}

impl WebhookRequest {
    /// The changes, and the proof of the caller sent with them.
    fn split(self) -> (WebhookChanges, Reauthentication) {
        let changes = WebhookChanges {
            url: self.url,
            events: self.events,
            description: self.description,
            enabled: self.enabled,
            credential: self.credential,
        };
        let proof = Reauthentication {
            password: self.password,
            code: self.code,
        };
        (changes, proof)
    }
}

/// Whether the change hands a credential to a receiver: a credential set, or an
/// address changed while one is stored. Such a change needs the password again, so
/// a stolen token cannot send the owner's secrets somewhere new.
fn moves_a_credential(changes: &WebhookChanges, stored_credential: Option<&str>) -> bool {
    let sets = changes
        .credential
        .as_ref()
        .is_some_and(|c| c.kind() != "none");
    let moves = changes.url.is_some() && stored_credential.is_some_and(|kind| kind != "none");
    sets || moves
}

#[derive(Serialize, ToSchema)]
pub struct CredentialSummary {
    /// `none`, `bearer`, `basic`, `api_key` or `headers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A masked hint, e.g. `••••f00d`.
    pub hint: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub credential: CredentialSummary,
    pub consecutive_failures: i64,
    /// While set, the previous signing secret signs too.
    pub previous_secret_signs_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            credential: CredentialSummary {
                kind: w.credential_kind,
                hint: w.credential_hint,
            },
            consecutive_failures: w.consecutive_failures,
            previous_secret_signs_until: w.previous_secret_until.map(rfc3339),
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// `whsec_…`: verify deliveries with it. Shown only now.
    pub secret: String,
}

/// One logged delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct AttemptResponse {
    pub attempt: i64,
    /// RFC 3339.
    pub attempted_at: String,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// `none`, `timeout`, `connect`, `http_status`, `refused_target`, …
    pub error_class: String,
    /// The first 1 KiB of the response body.
    pub response_excerpt: String,
}

/// A delivery and its attempts, newest delivery first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// The `webhook-id` header: stable across retries.
    pub id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// How many attempts were made.
    pub attempt_count: i64,
    /// RFC 3339; when the next attempt is due (a pending delivery; one never
    /// attempted is due since it was queued).
    pub next_attempt_at: String,
    pub last_status_code: Option<i64>,
    /// RFC 3339.
    pub created_at: String,
    pub attempts: Vec<AttemptResponse>,
}

impl From<DeliveryLog> for DeliveryResponse {
    fn from(log: DeliveryLog) -> Self {
        let d = log.delivery;
        Self {
            id: d.id,
            event_type: d.event_type,
            status: d.status,
            attempt_count: d.attempts,
            // Queued deliveries are due at once (stored as 0): due since they
            // were queued.
            next_attempt_at: rfc3339(d.next_attempt_at.max(d.created_at)),
            last_status_code: d.last_status_code,
            created_at: rfc3339(d.created_at),
            attempts: log
                .attempts
                .into_iter()
                .map(|a| AttemptResponse {
                    attempt: a.attempt,
                    attempted_at: rfc3339(a.attempted_at),
                    status_code: a.status_code,
                    duration_ms: a.duration_ms,
                    error_class: a.error_class,
                    response_excerpt: a.response_excerpt,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct QueuedResponse {
    /// The `webhook-id` of the queued delivery.
    pub delivery_id: String,
}

fn webhook_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound)
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's webhooks", body = [WebhookResponse]),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all: Vec<WebhookResponse> = state
        .webhooks
        .list(principal.user_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(all))
}

/// Create a webhook. The response carries its signing secret, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "Created", body = WebhookWithSecret),
        (status = 403, description = "The account is softlocked after failed attempts (a wrong password here counts)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL (or a target the SSRF guard refuses), events or credential", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<WebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let (changes, proof) = body.into_inner().split();
    if moves_a_credential(&changes, None) {
        reauthenticated(&req, &state, &principal, &meta, proof).await?;
    }
    let created = state
        .webhooks
        .create(principal.user_id, changes, &meta)
        .await?;
    Ok(HttpResponse::Created().json(WebhookWithSecret {
        webhook: created.webhook.into(),
        secret: created.secret.expose_secret().to_owned(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookResponse),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let webhook = state
        .webhooks
        .get(principal.user_id, webhook_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

/// Change a webhook; fields left out stay. Enabling it again clears its failures.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = WebhookRequest,
    responses(
        (status = 200, description = "Updated", body = WebhookResponse),
        (status = 403, description = "The account is softlocked after failed attempts (a wrong password here counts)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL, events or credential", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<WebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let (changes, proof) = body.into_inner().split();
    let stored = state.webhooks.get(principal.user_id, id).await?;
    if moves_a_credential(&changes, Some(&stored.credential_kind)) {
        reauthenticated(&req, &state, &principal, &meta, proof).await?;
    }
    let webhook = state
        .webhooks
        .update(principal.user_id, id, changes, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted, with its pending deliveries"),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .webhooks
        .delete(principal.user_id, webhook_id(&path)?, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once; the old one keeps signing (a second `v1,`
/// signature) for the grace period.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Rotated", body = WebhookWithSecret),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn rotate_secret(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (webhook, secret) = state
        .webhooks
        .rotate_secret(principal.user_id, webhook_id(&path)?, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret {
        webhook: webhook.into(),
        secret: secret.expose_secret().to_owned(),
    }))
}

/// Queue a `webhook.test` delivery.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 202, description = "Queued", body = QueuedResponse),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The webhook is disabled", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn test(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let delivery_id = state
        .webhooks
        .send_test(principal.user_id, webhook_id(&path)?, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(QueuedResponse { delivery_id }))
}

/// The latest 100 deliveries, newest first, each with every attempt.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Deliveries", body = [DeliveryResponse]),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn deliveries(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let logs: Vec<DeliveryResponse> = state
        .webhooks
        .deliveries(principal.user_id, webhook_id(&path)?, None, 100)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(logs))
}

/// Send a delivery again now.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = String, Path, description = "Delivery (`webhook-id`)")
    ),
    responses(
        (status = 202, description = "Queued", body = QueuedResponse),
        (status = 404, description = "No such webhook or delivery of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The webhook is disabled", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn retry(
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery_id) = path.into_inner();
    state
        .webhooks
        .retry(
            principal.user_id,
            webhook_id(&id)?,
            delivery_id.clone(),
            &meta,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(QueuedResponse { delivery_id }))
}
