//! Webhook management, owner-scoped: someone else's webhook does not exist for the
//! caller (404). Credentials and signing secrets are sealed with
//! CREDENTIAL_ENCRYPTION_KEY; a secret that cannot be sealed is an error, never
//! stored in plaintext. After creation the API shows a credential's kind and a
//! masked hint only, and a signing secret never again.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use uuid::Uuid;

use super::events::{message_id, payload};
use super::model::{Credential, MAX_DESCRIPTION_CHARS, MAX_URL_CHARS, check_events};
use super::signing::SigningSecret;
use super::ssrf::{Guard, Refusal};
use crate::audit::{AdminActor, AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::clock::{Clock, rfc3339};
use crate::config::WebhookSettings;
use crate::crypto::secret_box::{SecretBox, SecretBoxError};
use crate::db::webhooks::{self as sql, AttemptRow, DeliveryRow, SealedParts};
use crate::db::{Database, DbError};
use crate::model::UserId;
use crate::model::webhook::Webhook;
use crate::telemetry::metrics::WebhookMetrics;
use crate::validation::FieldError;

/// Webhooks one account may have: bounds how far one event fans out.
pub const MAX_WEBHOOKS_PER_OWNER: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook")]
    Validation(Vec<FieldError>),
    #[error("no such webhook")]
    NotFound,
    #[error("the webhook is disabled")]
    Disabled,
    #[error(transparent)]
    Seal(#[from] SecretBoxError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(WebhookError);

/// A webhook's editable fields; `None` leaves one as it is (on create: defaults).
#[derive(Debug, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub credential: Option<Credential>,
}

/// A new webhook and its signing secret, shown this once.
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: SecretString,
}

/// A delivery with its attempts.
pub struct DeliveryLog {
    pub delivery: DeliveryRow,
    pub attempts: Vec<AttemptRow>,
    /// Where it stands in the webhook's deliveries: the next page of older ones
    /// starts before it.
    pub position: i64,
}

/// Everything a delivery attempt needs, opened.
pub struct Target {
    pub webhook: Webhook,
    /// False when the owner's account is locked or disabled: nothing is sent.
    pub owner_active: bool,
    pub credential: Credential,
    /// The current secret, then the previous one while its grace lasts.
    pub secrets: Vec<SigningSecret>,
}

#[derive(Clone)]
pub struct WebhookService {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    sealer: SecretBox,
    guard: Guard,
    settings: WebhookSettings,
    /// Told whenever a delivery is queued: the worker claims at once instead of at
    /// its next poll.
    queued: Arc<Notify>,
    /// Delivery attempts, by where they left the delivery.
    metrics: WebhookMetrics,
}

fn event(name: &str, actor: String, target: Uuid, meta: &RequestMeta) -> AuditEvent {
    AuditEvent::of_request(name, Outcome::Success, meta)
        .with_actor(actor)
        .with_target(target.to_string())
}

impl WebhookService {
    pub fn new(
        db: Database,
        audit: AuditLog,
        clock: Clock,
        sealer: SecretBox,
        settings: WebhookSettings,
        queued: Arc<Notify>,
        metrics: WebhookMetrics,
    ) -> Self {
        Self {
            queued,
            metrics,
            audit,
            guard: Guard::new(&settings.allowed_private_networks),
            db,
            clock,
            sealer,
            settings,
        }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Told whenever a delivery is queued.
    pub fn queued(&self) -> &Notify {
        &self.queued
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn metrics(&self) -> &WebhookMetrics {
        &self.metrics
    }

    /// Deliveries not yet delivered nor given up (for the metrics).
    pub async fn backlog(&self) -> Result<u64, DbError> {
        self.db
            .read(|conn| Ok::<_, DbError>(crate::db::stats::webhook_backlog(conn)?))
            .await
    }

    /// Checks a URL: http(s), no credentials in it, and a target the SSRF guard
    /// permits now (it is checked again at every delivery).
    async fn check_url(&self, url: &str) -> Vec<FieldError> {
        let problem = |message: &str| vec![FieldError::rule("url", "invalid", message)];
        if url.chars().count() > MAX_URL_CHARS {
            return problem("must be at most 2048 characters");
        }
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return problem("must be an absolute http(s) URL");
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return problem("must not carry credentials; use `credential`");
        }
        if parsed.fragment().is_some() {
            return problem("must not have a #fragment");
        }
        match self.guard.check_url(&parsed).await {
            Ok(()) => Vec::new(),
            Err(Refusal::BadUrl) => problem("must be an absolute http(s) URL"),
            Err(Refusal::InsecureScheme) => vec![FieldError::rule(
                "url",
                "https_required",
                "must use https (plain http only to WEBHOOK_ALLOWED_PRIVATE_NETWORKS)",
            )],
            Err(Refusal::Unresolvable) => vec![FieldError::rule(
                "url",
                "unresolvable",
                "names a host that does not resolve; check its spelling",
            )],
            Err(Refusal::NotPublic(_) | Refusal::NoPublicAddress) => vec![FieldError::rule(
                "url",
                "not_public",
                "must reach a public address: loopback, private, link-local and similar targets are refused",
            )],
        }
    }

    async fn validate(&self, changes: &WebhookChanges) -> Result<(), WebhookError> {
        let mut errors = Vec::new();
        if let Some(url) = &changes.url {
            errors.extend(self.check_url(url).await);
        }
        if let Some(events) = &changes.events {
            errors.extend(check_events(events));
        }
        if let Some(description) = &changes.description
            && description.chars().count() > MAX_DESCRIPTION_CHARS
        {
            errors.push(FieldError::rule(
                "description",
                "max_length",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if let Some(credential) = &changes.credential {
            errors.extend(credential.validate());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(WebhookError::Validation(errors))
        }
    }

    /// Seals a credential: `(kind, sealed, hint)`.
    fn seal_credential(
        &self,
        credential: &Credential,
    ) -> Result<(String, Option<String>, Option<String>), WebhookError> {
        let sealed = match credential.to_stored() {
            Some(text) => Some(self.sealer.seal(text.expose_secret().as_bytes())?),
            None => None,
        };
        Ok((credential.kind().to_owned(), sealed, credential.hint()))
    }

    pub async fn create(
        &self,
        owner: UserId,
        changes: WebhookChanges,
        meta: &RequestMeta,
    ) -> Result<CreatedWebhook, WebhookError> {
        let audit = self.audit.clone();
        let Some(url) = changes.url.clone() else {
            return Err(WebhookError::Validation(vec![FieldError::rule(
                "url",
                "required",
                "is required",
            )]));
        };
        self.validate(&changes).await?;
        let owned = self
            .db
            .read(move |conn| Ok::<_, WebhookError>(sql::count_owned_by(conn, owner)?))
            .await?;
        if owned >= MAX_WEBHOOKS_PER_OWNER {
            return Err(WebhookError::Validation(vec![FieldError::rule(
                "url",
                "too_many",
                format!("an account may have at most {MAX_WEBHOOKS_PER_OWNER} webhooks"),
            )]));
        }
        let credential = changes.credential.unwrap_or(Credential::None);
        let (kind, sealed_credential, hint) = self.seal_credential(&credential)?;
        let (_, secret_text) =
            SigningSecret::generate().map_err(|e| WebhookError::Unexpected(e.into()))?;
        let sealed_secret = self.sealer.seal(secret_text.expose_secret().as_bytes())?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: Uuid::new_v4(),
            owner_id: owner,
            url,
            events: changes.events.unwrap_or_else(|| vec!["*".to_owned()]),
            description: changes.description.unwrap_or_default(),
            enabled: changes.enabled.unwrap_or(true),
            disabled_reason: None,
            credential_kind: kind,
            credential_hint: hint,
            previous_secret_until: None,
            consecutive_failures: 0,
            created_at: now,
            updated_at: now,
        };
        let record = event("webhook.created", owner.to_string(), webhook.id, meta)
            .with_detail("credential_kind", webhook.credential_kind.as_str());
        let stored = webhook.clone();
        self.db
            .write(move |tx| {
                let sealed = SealedParts {
                    credential: sealed_credential,
                    secret: sealed_secret,
                    previous_secret: None,
                };
                sql::insert(tx, &stored, &sealed)?;
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(())
            })
            .await?;
        Ok(CreatedWebhook {
            webhook,
            secret: secret_text,
        })
    }

    /// The caller's webhook; someone else's is `NotFound`.
    pub async fn get(&self, owner: UserId, id: Uuid) -> Result<Webhook, WebhookError> {
        self.db
            .read(move |conn| Ok::<_, WebhookError>(sql::find(conn, id)?))
            .await?
            .filter(|w| w.owner_id == owner)
            .ok_or(WebhookError::NotFound)
    }

    pub async fn list(&self, owner: UserId) -> Result<Vec<Webhook>, WebhookError> {
        self.db
            .read(move |conn| Ok::<_, WebhookError>(sql::owned_by(conn, owner)?))
            .await
    }

    pub async fn update(
        &self,
        owner: UserId,
        id: Uuid,
        changes: WebhookChanges,
        meta: &RequestMeta,
    ) -> Result<Webhook, WebhookError> {
        let audit = self.audit.clone();
        self.get(owner, id).await?;
        self.validate(&changes).await?;
        let sealed_credential = match &changes.credential {
            Some(credential) => Some(self.seal_credential(credential)?),
            None => None,
        };
        let record = event("webhook.updated", owner.to_string(), id, meta)
            .with_detail("credential_changed", sealed_credential.is_some());
        let now = self.clock.now();
        // Read and written in one transaction: the worker may have just disabled the
        // webhook or counted a failure, and a stale copy must not undo that.
        self.db
            .write(move |tx| {
                let mut webhook = sql::find(tx, id)?
                    .filter(|w| w.owner_id == owner)
                    .ok_or(WebhookError::NotFound)?;
                if let Some(url) = changes.url {
                    webhook.url = url;
                }
                if let Some(events) = changes.events {
                    webhook.events = events;
                }
                if let Some(description) = changes.description {
                    webhook.description = description;
                }
                if let Some(enabled) = changes.enabled {
                    webhook.set_enabled(enabled, "disabled by its owner");
                }
                webhook.updated_at = now;
                sql::update(tx, &webhook)?;
                if let Some((kind, sealed, hint)) = &sealed_credential {
                    sql::set_credential(tx, id, kind, sealed.as_deref(), hint.as_deref())?;
                    webhook.credential_kind = kind.clone();
                    webhook.credential_hint = hint.clone();
                }
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(webhook)
            })
            .await
    }

    pub async fn delete(
        &self,
        owner: UserId,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), WebhookError> {
        let audit = self.audit.clone();
        self.get(owner, id).await?;
        let record = event("webhook.deleted", owner.to_string(), id, meta);
        self.db
            .write(move |tx| {
                sql::delete(tx, id)?;
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(())
            })
            .await
    }

    /// A new signing secret, shown once. The old one keeps signing too (a second
    /// `v1,` signature) for `WEBHOOK_SECRET_GRACE_HOURS`, so receivers can switch.
    pub async fn rotate_secret(
        &self,
        owner: UserId,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(Webhook, SecretString), WebhookError> {
        let audit = self.audit.clone();
        self.get(owner, id).await?;
        let (_, secret_text) =
            SigningSecret::generate().map_err(|e| WebhookError::Unexpected(e.into()))?;
        let sealed = self.sealer.seal(secret_text.expose_secret().as_bytes())?;
        let now = self.clock.now();
        let until = now + self.settings.secret_grace_seconds;
        let record = event("webhook.secret_rotated", owner.to_string(), id, meta)
            .with_detail("previous_signs_until", rfc3339(until));
        self.db
            .write(move |tx| {
                sql::rotate_secret(tx, id, &sealed, until, now)?;
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(())
            })
            .await?;
        Ok((self.get(owner, id).await?, secret_text))
    }

    /// Queues a `webhook.test` delivery to this webhook.
    pub async fn send_test(
        &self,
        owner: UserId,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<String, WebhookError> {
        let audit = self.audit.clone();
        let webhook = self.get(owner, id).await?;
        if !webhook.enabled {
            return Err(WebhookError::Disabled);
        }
        let msg_id = message_id();
        let body = payload(
            "webhook.test",
            &rfc3339(self.clock.now()),
            serde_json::json!({"webhook_id": id}),
        );
        let record = event("webhook.test_sent", owner.to_string(), id, meta);
        let queued = msg_id.clone();
        let now = self.clock.now();
        self.db
            .write(move |tx| {
                sql::enqueue(tx, &queued, id, "webhook.test", &body, now)?;
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(())
            })
            .await?;
        self.queued.notify_one();
        Ok(msg_id)
    }

    /// The webhook's latest deliveries, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        owner: UserId,
        id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeliveryLog>, WebhookError> {
        self.get(owner, id).await?;
        self.db
            .read(move |conn| {
                let mut logs = Vec::new();
                for (position, delivery) in sql::deliveries(conn, id, before, limit)? {
                    let attempts = sql::attempts(conn, &delivery.id)?;
                    logs.push(DeliveryLog {
                        delivery,
                        attempts,
                        position,
                    });
                }
                Ok::<_, WebhookError>(logs)
            })
            .await
    }

    /// Sends a delivery again now (after a failure, or to replay a success).
    pub async fn retry(
        &self,
        owner: UserId,
        id: Uuid,
        delivery: String,
        meta: &RequestMeta,
    ) -> Result<(), WebhookError> {
        let webhook = self.get(owner, id).await?;
        self.requeue(owner.to_string(), &webhook, delivery, meta)
            .await
    }

    /// Queues one of `webhook`'s deliveries again, due now, recording who asked.
    /// A disabled webhook sends nothing.
    async fn requeue(
        &self,
        actor: String,
        webhook: &Webhook,
        delivery: String,
        meta: &RequestMeta,
    ) -> Result<(), WebhookError> {
        let audit = self.audit.clone();
        if !webhook.enabled {
            return Err(WebhookError::Disabled);
        }
        let id = webhook.id;
        let record =
            event("webhook.retried", actor, id, meta).with_detail("delivery", delivery.as_str());
        self.db
            .write(move |tx| {
                if !sql::requeue(tx, id, &delivery, 0)? {
                    return Err(WebhookError::NotFound);
                }
                audit.append(tx, &record)?;
                Ok::<_, WebhookError>(())
            })
            .await?;
        self.queued.notify_one();
        Ok(())
    }

    /// One page of every webhook with its owner's e-mail, newest first, after
    /// `after` (a webhook's creation time and id).
    pub async fn page_with_owner(
        &self,
        after: Option<(i64, Uuid)>,
        limit: usize,
    ) -> Result<Vec<(Webhook, String)>, WebhookError> {
        self.db
            .read(move |conn| Ok::<_, WebhookError>(sql::page_with_owner(conn, after, limit)?))
            .await
    }

    /// Deletes, `batch` a transaction, delivered deliveries (and their attempts)
    /// older than `WEBHOOK_RETENTION_DAYS`. Failed and pending ones stay, and the
    /// audit log is never pruned. Returns how many went.
    pub async fn prune_delivered(&self, batch: usize) -> Result<usize, WebhookError> {
        let before = self.clock.now() - self.settings.retention_seconds;
        self.db
            .delete_in_batches(batch, move |tx, batch| {
                Ok::<_, WebhookError>(sql::prune_delivered(tx, before, batch)?)
            })
            .await
    }

    /// Any webhook by id with its owner's e-mail (administrators).
    pub async fn find_with_owner(&self, id: Uuid) -> Result<(Webhook, String), WebhookError> {
        self.db
            .read(move |conn| Ok::<_, WebhookError>(sql::find_with_owner(conn, id)?))
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// Any webhook by id (administrators).
    pub async fn find(&self, id: Uuid) -> Result<Webhook, WebhookError> {
        self.db
            .read(move |conn| Ok::<_, WebhookError>(sql::find(conn, id)?))
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// An administrator enables or disables someone's webhook.
    pub async fn set_enabled_by_admin(
        &self,
        admin: &AdminActor,
        id: Uuid,
        enabled: bool,
        meta: &RequestMeta,
    ) -> Result<(), WebhookError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let record = event(
            if enabled {
                "webhook.enabled_by_admin"
            } else {
                "webhook.disabled_by_admin"
            },
            admin.audit_name(),
            id,
            meta,
        );
        self.db
            .write(move |tx| {
                let mut webhook = sql::find(tx, id)?.ok_or(WebhookError::NotFound)?;
                webhook.set_enabled(enabled, "disabled by an administrator");
                webhook.updated_at = now;
                sql::update(tx, &webhook)?;
                audit.append(tx, &record)?;
                Ok(())
            })
            .await
    }

    /// An administrator sends a delivery again.
    pub async fn retry_by_admin(
        &self,
        admin: &AdminActor,
        id: Uuid,
        delivery: String,
        meta: &RequestMeta,
    ) -> Result<(), WebhookError> {
        let webhook = self.find(id).await?;
        self.requeue(admin.audit_name(), &webhook, delivery, meta)
            .await
    }

    /// Opens what a delivery to `id` needs. A credential or secret that does not
    /// open is an error: the delivery fails, nothing is sent without it.
    pub async fn target(&self, id: Uuid) -> Result<Option<Target>, WebhookError> {
        let ((webhook, sealed), owner_active) = match self
            .db
            .read(move |conn| {
                let found = sql::find(conn, id)?.zip(sql::sealed_parts(conn, id)?);
                Ok::<_, WebhookError>(found.map(|f| (f, sql::owner_active(conn, id))))
            })
            .await?
        {
            Some((found, active)) => (found, active?),
            None => return Ok(None),
        };
        let credential = match &sealed.credential {
            None => Credential::None,
            Some(value) => {
                let opened = self.sealer.open(value)?;
                Credential::from_stored(opened.plaintext.expose_secret()).ok_or(
                    SecretBoxError::Undecryptable {
                        variable: crate::config::variables::CREDENTIAL_ENCRYPTION_KEY,
                    },
                )?
            }
        };
        let open_secret = |value: &str| -> Result<SigningSecret, WebhookError> {
            let opened = self.sealer.open(value)?;
            let text = std::str::from_utf8(opened.plaintext.expose_secret()).unwrap_or("");
            SigningSecret::parse(text).map_err(|_| {
                WebhookError::Seal(SecretBoxError::Undecryptable {
                    variable: crate::config::variables::CREDENTIAL_ENCRYPTION_KEY,
                })
            })
        };
        let mut secrets = vec![open_secret(&sealed.secret)?];
        let grace = webhook
            .previous_secret_until
            .is_some_and(|until| until > self.clock.now());
        if let (true, Some(previous)) = (grace, &sealed.previous_secret) {
            secrets.push(open_secret(previous)?);
        }
        Ok(Some(Target {
            webhook,
            owner_active,
            credential,
            secrets,
        }))
    }
}
