//! A webhook as stored: its target, the events it wants, its state and the kind of
//! credential it sends (the credential itself is sealed, elsewhere).

use uuid::Uuid;

use super::user::UserId;

/// A stored webhook, without its secrets.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: Uuid,
    pub owner_id: UserId,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub credential_kind: String,
    pub credential_hint: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Webhook {
    /// Enables (a fresh start: failures and reason cleared) or disables it,
    /// recording `reason` when it was enabled.
    pub fn set_enabled(&mut self, enabled: bool, reason: &str) {
        if enabled && !self.enabled {
            self.consecutive_failures = 0;
            self.disabled_reason = None;
        }
        if !enabled && self.enabled {
            self.disabled_reason = Some(reason.to_owned());
        }
        self.enabled = enabled;
    }
}
