//! `/admin/webhooks`: every endpoint, its deliveries and attempts; retry and
//! disable. Decided by the engine and audited.

use actix_web::{HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use crate::admin::AdminAction;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, Chrome, Confirmation, PageError, redirect_with,
};
use crate::model::webhook::Webhook;

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
    /// The next page's link, when there is one.
    next: Option<String>,
    paged: bool,
}

/// Webhooks on one page of the list.
const WEBHOOKS_PER_PAGE: usize = 50;

/// Every webhook, newest first, a page at a time (`after` = `<created>:<id>` of
/// the previous page's last).
pub async fn list(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::WebhookList, None).await?;
    let after = page
        .query()?
        .into_iter()
        .find(|(k, _)| k == "after")
        .and_then(|(_, v)| {
            let (created, id) = v.split_once(':')?;
            Some((created.parse::<i64>().ok()?, Uuid::parse_str(id).ok()?))
        });
    let mut found = page
        .state
        .webhooks
        .page_with_owner(after, WEBHOOKS_PER_PAGE + 1)
        .await?;
    let more = found.len() > WEBHOOKS_PER_PAGE;
    found.truncate(WEBHOOKS_PER_PAGE);
    let next = found
        .last()
        .filter(|_| more)
        .map(|(w, _)| format!("/admin/webhooks?after={}:{}", w.created_at, w.id));
    page.render(&ListPage {
        chrome: page.chrome("webhooks"),
        hooks: found.into_iter().map(|(w, owner)| row(w, owner)).collect(),
        next,
        paged: after.is_some(),
    })
}

pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    /// When a pending delivery that failed before is tried again.
    pub next_attempt: Option<String>,
    /// The last attempt's error class and response excerpt, after a failure.
    pub last_error: Option<(String, String)>,
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
    /// The link to older deliveries, when there are more.
    older: Option<String>,
    /// Whether this page starts after the newest (offers the newest again).
    paged: bool,
}

/// Deliveries on one page of a webhook's detail.
const DELIVERIES_PER_PAGE: usize = 10;

fn webhook_id(text: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(text).map_err(|_| PageError::not_found())
}

pub async fn detail(page: AdminPage, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = webhook_id(&path)?;
    page.authorize(AdminAction::WebhookView, Some(id.to_string()))
        .await?;
    let webhooks = &page.state.webhooks;
    let (webhook, owner_email) = webhooks.find_with_owner(id).await?;
    let before = page
        .query()?
        .into_iter()
        .find(|(k, _)| k == "before")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let mut logs = webhooks
        .deliveries(webhook.owner_id, id, before, DELIVERIES_PER_PAGE + 1)
        .await?;
    let more = logs.len() > DELIVERIES_PER_PAGE;
    logs.truncate(DELIVERIES_PER_PAGE);
    let older = logs
        .last()
        .filter(|_| more)
        .map(|last| format!("/admin/webhooks/{id}?before={}", last.position));
    let credential = match &webhook.credential_hint {
        Some(hint) => format!("{} ({hint})", webhook.credential_kind),
        None => webhook.credential_kind.clone(),
    };
    let deliveries = logs
        .into_iter()
        .map(|log| DeliveryView {
            next_attempt: (log.delivery.status == "pending" && log.delivery.attempts > 0)
                .then(|| rfc3339(log.delivery.next_attempt_at)),
            last_error: log
                .attempts
                .last()
                .filter(|a| a.error_class != "none")
                .map(|a| (a.error_class.clone(), a.response_excerpt.clone())),
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
    page.render(&DetailPage {
        chrome: page.chrome("webhooks"),
        hook: row(webhook, owner_email),
        credential,
        deliveries,
        older,
        paged: before.is_some(),
    })
}

/// Disabling asks first, naming the endpoint; every message names it.
pub async fn action(post: AdminForm, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = webhook_id(&path)?;
    let back = format!("/admin/webhooks/{id}");
    let op = post.form.text("op");
    let action = match op.as_str() {
        "enable" | "disable" => AdminAction::WebhookUpdate,
        "retry" => AdminAction::WebhookRetry,
        _ => return Err(PageError::not_found()),
    };
    let admin = post.authorize(action, Some(id.to_string())).await?;
    let (webhooks, meta) = (&post.state.webhooks, &post.meta);
    let url = webhooks.find(id).await?.url;
    if op == "disable" && !post.confirmed() {
        return post.ask(
            "webhooks",
            Confirmation {
                question: format!("Disable the webhook to {url}?"),
                consequence: "Nothing is delivered to it while it is disabled, and events meanwhile are not queued for it; deliveries already queued wait until it is enabled again.".to_owned(),
                button: "Disable the webhook".to_owned(),
                cancel: back,
            },
        );
    }
    let done = match op.as_str() {
        "retry" => webhooks
            .retry_by_admin(&admin, id, post.form.text("delivery"), meta)
            .await
            .map(|()| format!("Delivery to {url} queued again.")),
        other => webhooks
            .set_enabled_by_admin(&admin, id, other == "enable", meta)
            .await
            .map(|()| {
                if other == "enable" {
                    format!("Enabled the webhook to {url}.")
                } else {
                    format!("Disabled the webhook to {url}.")
                }
            }),
    };
    Ok(redirect_with(&back, &done?))
}
