//! The demo's webhook: an administrator's webhook for every event, pointed at the
//! receiver the demo serves on loopback (`routes::demo_receiver`), which checks each
//! delivery's signature and prints it.

use crate::accounts::AccountError;
use crate::audit::RequestMeta;
use crate::model::webhook::Webhook;
use crate::model::{Email, Role, User};
use crate::state::AppState;
use crate::webhooks::service::WebhookChanges;

const DESCRIPTION: &str = "Demo receiver (served by the demo itself)";

async fn demo_admin(state: &AppState) -> Result<Option<User>, AccountError> {
    let email = Email::parse(super::ADMIN_EMAIL)
        .map_err(|e| AccountError::Unexpected(anyhow::anyhow!("demo e-mail {e}")))?;
    Ok(state
        .accounts
        .find_by_email(&email)
        .await?
        .filter(|u| u.role == Role::Admin))
}

/// Whether `webhook` is the demo administrator's receiver webhook.
pub async fn is_demo_webhook(state: &AppState, webhook: &Webhook) -> bool {
    let admin = demo_admin(state).await.ok().flatten();
    webhook.description == DESCRIPTION && admin.map(|a| a.id) == Some(webhook.owner_id)
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
