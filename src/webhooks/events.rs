//! Which audited events become webhook events, and their payloads. The outbox is an
//! audit-log subscriber: each event is offered to it inside the transaction that
//! appends it, so a delivery is queued in the very transaction that made the change
//! it reports — committed together or not at all.

use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::audit::{Appended, AuditEvent, Subscriber};
use crate::db::DbError;
use crate::db::webhooks;
use crate::model::UserId;

/// The webhook event type for an audit event name, and whether it goes to
/// administrators' webhooks only.
fn webhook_type(audit_event: &str) -> Option<(&'static str, bool)> {
    Some(match audit_event {
        "auth.registered" => ("user.registered", false),
        "auth.login_failed" => ("auth.login_failed", false),
        "auth.account_locked" => ("auth.account_locked", false),
        "auth.logout" => ("auth.logout", false),
        "mfa.enabled" => ("mfa.enabled", false),
        "mfa.disabled" => ("mfa.disabled", false),
        "document.created" => ("document.created", false),
        "document.updated" => ("document.updated", false),
        "document.deleted" => ("document.deleted", false),
        "policy.created" => ("policy.created", true),
        "policy.updated" => ("policy.updated", true),
        "policy.deleted" => ("policy.deleted", true),
        _ => return None,
    })
}

fn user(id: Option<&String>) -> Option<UserId> {
    id.and_then(|id| id.parse::<Uuid>().ok()).map(UserId)
}

/// The user the event is about (whose webhooks receive it), and its `data`.
fn subject_and_data(event: &AuditEvent) -> (Option<UserId>, Value) {
    let (actor, target) = (event.actor.as_ref(), event.target.as_ref());
    match event.event.as_str() {
        "auth.logout" => (user(actor), json!({"user_id": actor, "session_id": target})),
        "auth.account_locked" => (
            user(target),
            json!({"user_id": target, "lock_seconds": event.details.get("lock_seconds")}),
        ),
        name if name.starts_with("document.") => (
            user(actor),
            json!({"document_id": target, "actor_id": actor,
                   "classification": event.details.get("classification")}),
        ),
        name if name.starts_with("policy.") => {
            (user(actor), json!({"policy_id": target, "actor_id": actor}))
        }
        _ => (user(target), json!({"user_id": target})),
    }
}

/// The body of a delivery: `{type, timestamp, data}`.
pub fn payload(event_type: &str, timestamp: &str, data: Value) -> String {
    json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

/// A new Standard Webhooks message id.
pub fn message_id() -> String {
    format!("msg_{}", Uuid::new_v4().simple())
}

/// The webhook outbox, subscribed to the audit log at start-up: queues each event
/// for every webhook that wants it, due at once, and wakes the delivery worker.
/// Waking inside the transaction is safe: the worker's claim needs the one writer,
/// so it runs after this transaction has committed (or rolled back).
pub struct Outbox {
    queued: Arc<Notify>,
}

impl Outbox {
    pub fn new(queued: Arc<Notify>) -> Self {
        Self { queued }
    }
}

impl Subscriber for Outbox {
    fn offer(
        &self,
        conn: &Connection,
        event: &AuditEvent,
        appended: &Appended,
    ) -> Result<(), DbError> {
        let Some((event_type, admin_only)) = webhook_type(&event.event) else {
            return Ok(());
        };
        let (subject, data) = subject_and_data(event);
        // About no known account (a login for an unknown e-mail): only administrators'
        // webhooks hear of it.
        let admin_only = admin_only || subject.is_none();
        let body = payload(event_type, &appended.occurred_at, data);
        let mut queued = false;
        for webhook in webhooks::subscribers(conn, event_type, subject, admin_only)? {
            webhooks::enqueue(conn, &message_id(), webhook, event_type, &body, appended.at)?;
            queued = true;
        }
        if queued {
            self.queued.notify_one();
        }
        Ok(())
    }
}
