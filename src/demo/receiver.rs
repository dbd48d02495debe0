//! The demo's own webhook receiver, on loopback: the demo points an administrator's
//! webhook (every event) at it, and it checks each delivery's Standard Webhooks
//! signature and prints what arrived, so a user sees signed deliveries happen.
//! Registered by `portcullis demo` only.

use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::accounts::Role;
use crate::accounts::service::RequestMeta;
use crate::db::{DbError, users};
use crate::state::AppState;
use crate::webhooks::service::WebhookChanges;
use crate::webhooks::signing::verify;

pub const PATH: &str = "/demo/webhook-receiver";
const DESCRIPTION: &str = "Demo receiver (served by the demo itself)";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::post().to(receive));
}

/// Checks a delivery against the secrets of the webhook named in `?webhook=`.
async fn receive(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let webhook = req
        .query_string()
        .strip_prefix("webhook=")
        .and_then(|id| Uuid::parse_str(id).ok());
    let Some(Ok(Some(target))) = (match webhook {
        Some(id) => Some(state.webhooks.target(id).await),
        None => None,
    }) else {
        return HttpResponse::NotFound().finish();
    };
    // Only the demo's own webhook: the receiver is no oracle for anyone else's.
    let admin = demo_admin(&state).await.ok().flatten();
    if target.webhook.description != DESCRIPTION
        || admin.map(|a| a.id) != Some(target.webhook.owner_id)
    {
        return HttpResponse::NotFound().finish();
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = state.clock.now();
    let valid = target.secrets.iter().any(|secret| {
        verify(
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
            now,
        )
        .is_ok()
    });
    let event_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    println!(
        "demo receiver: {event_type} ({}) — signature {}",
        header("webhook-id").unwrap_or("?"),
        if valid { "verified" } else { "INVALID" }
    );
    if valid {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::Unauthorized().finish()
    }
}

async fn demo_admin(state: &AppState) -> Result<Option<crate::accounts::User>, DbError> {
    let email = crate::accounts::Email::from_trusted(super::ADMIN_EMAIL.to_owned());
    Ok(state
        .db
        .read(move |conn| Ok::<_, DbError>(users::find_by_email(conn, &email)?))
        .await?
        .filter(|u| u.role == Role::Admin))
}

/// Points the demo administrator's receiver webhook at `url` (the port may change
/// between runs), creating it the first time.
pub async fn ensure_webhook(state: &AppState, url: &str) -> anyhow::Result<()> {
    let admin = demo_admin(state)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no demo administrator"))?;
    let meta = RequestMeta::default();
    let existing = state
        .webhooks
        .list(admin.id)
        .await?
        .into_iter()
        .find(|w| w.description == DESCRIPTION);
    let (id, created) = match existing {
        Some(webhook) => (webhook.id, false),
        None => {
            let created = state
                .webhooks
                .create(
                    admin.id,
                    WebhookChanges {
                        url: Some(url.to_owned()),
                        events: Some(vec!["*".to_owned()]),
                        description: Some(DESCRIPTION.to_owned()),
                        ..WebhookChanges::default()
                    },
                    &meta,
                )
                .await?;
            // The receiver looks the secret up itself; it is not printed.
            (created.webhook.id, true)
        }
    };
    let with_id = format!("{url}?webhook={id}");
    state
        .webhooks
        .update(
            admin.id,
            id,
            WebhookChanges {
                url: Some(with_id),
                enabled: Some(true),
                ..WebhookChanges::default()
            },
            &meta,
        )
        .await?;
    if created {
        println!("Demo webhook {id} created: the administrator's webhook for every event.");
    }
    Ok(())
}
