//! `/admin/webhooks`: every endpoint, its deliveries and attempts; retry and
//! disable. Decided by the engine and audited.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{
    Chrome, PageError, authorize, checked_post, chrome, clear_flash, redirect_with, render, session,
};
use crate::accounts::service::RequestMeta;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhooks::model::Webhook;

pub struct HookRow {
    pub id: String,
    pub url: String,
    pub owner: String,
    pub events: String,
    pub enabled: bool,
    pub reason: Option<String>,
    pub failures: i64,
}

fn row(webhook: Webhook, owner: String) -> HookRow {
    HookRow {
        id: webhook.id.to_string(),
        url: webhook.url,
        owner,
        events: webhook.events.join(", "),
        enabled: webhook.enabled,
        reason: webhook.disabled_reason,
        failures: webhook.consecutive_failures,
    }
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    hooks: Vec<HookRow>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "webhook.list", None).await?;
    let hooks = state
        .webhooks
        .all()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|(w, owner)| row(w, owner))
        .collect();
    let chrome = chrome(&req, &state, &session, "webhooks");
    let shown = chrome.flash.is_some();
    Ok(clear_flash(render(&ListPage { chrome, hooks })?, shown))
}

pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    /// (attempt, when, status, ms, error class, excerpt)
    pub log: Vec<(i64, String, String, i64, String, String)>,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct DetailPage {
    chrome: Chrome,
    hook: HookRow,
    credential: String,
    deliveries: Vec<DeliveryView>,
}

fn webhook_id(text: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(text).map_err(|_| PageError::NotFound)
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    let id = webhook_id(&path)?;
    authorize(
        &state,
        &session,
        &req,
        &meta,
        "webhook.view",
        Some(id.to_string()),
    )
    .await?;
    let webhook = state.webhooks.find(id).await.map_err(ApiError::from)?;
    let owner = webhook.owner_id;
    let logs = state
        .webhooks
        .deliveries(owner, id, 50)
        .await
        .map_err(ApiError::from)?;
    let owner_email = state
        .webhooks
        .all()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .find(|(w, _)| w.id == id)
        .map(|(_, email)| email)
        .unwrap_or_default();
    let credential = match &webhook.credential_hint {
        Some(hint) => format!("{} ({hint})", webhook.credential_kind),
        None => webhook.credential_kind.clone(),
    };
    let deliveries = logs
        .into_iter()
        .map(|log| DeliveryView {
            id: log.delivery.id,
            event_type: log.delivery.event_type,
            status: log.delivery.status,
            attempts: log.delivery.attempts,
            log: log
                .attempts
                .into_iter()
                .map(|a| {
                    (
                        a.attempt,
                        rfc3339(a.attempted_at),
                        a.status_code
                            .map_or_else(|| "—".to_owned(), |c| c.to_string()),
                        a.duration_ms,
                        a.error_class,
                        a.response_excerpt,
                    )
                })
                .collect(),
        })
        .collect();
    let chrome = chrome(&req, &state, &session, "webhooks");
    let shown = chrome.flash.is_some();
    Ok(clear_flash(
        render(&DetailPage {
            chrome,
            hook: row(webhook, owner_email),
            credential,
            deliveries,
        })?,
        shown,
    ))
}

pub async fn action(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (session, form) = checked_post(&req, &state, &body).await?;
    let id = webhook_id(&path)?;
    let back = format!("/admin/webhooks/{id}");
    let op = form.text("op");
    let action = match op.as_str() {
        "enable" | "disable" => "webhook.update",
        "retry" => "webhook.retry",
        _ => return Err(PageError::NotFound),
    };
    authorize(&state, &session, &req, &meta, action, Some(id.to_string())).await?;
    let admin = session.user.id;
    let done = match op.as_str() {
        "retry" => state
            .webhooks
            .retry_by_admin(admin, id, form.text("delivery"), &meta)
            .await
            .map(|()| "Delivery queued again."),
        other => state
            .webhooks
            .set_enabled_by_admin(admin, id, other == "enable", &meta)
            .await
            .map(|()| {
                if other == "enable" {
                    "Webhook enabled."
                } else {
                    "Webhook disabled."
                }
            }),
    };
    Ok(redirect_with(&back, done.map_err(ApiError::from)?))
}
