//! SQL for `webhooks`, `webhook_deliveries` (the outbox) and `webhook_attempts`.

use super::invalid_column as invalid;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::model::UserId;
use crate::model::webhook::Webhook;

const COLUMNS: &str = "id, owner_id, url, events, description, enabled, disabled_reason, credential_kind, credential_hint, previous_secret_until, consecutive_failures, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let id: String = row.get(0)?;
    let owner: String = row.get(1)?;
    let events: String = row.get(3)?;
    Ok(Webhook {
        id: id.parse().map_err(|_| invalid(0, "webhook id"))?,
        owner_id: UserId(owner.parse().map_err(|_| invalid(1, "owner id"))?),
        url: row.get(2)?,
        events: serde_json::from_str(&events).map_err(|_| invalid(3, "events"))?,
        description: row.get(4)?,
        enabled: row.get(5)?,
        disabled_reason: row.get(6)?,
        credential_kind: row.get(7)?,
        credential_hint: row.get(8)?,
        previous_secret_until: row.get(9)?,
        consecutive_failures: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

/// The sealed parts of a webhook, as stored.
pub struct SealedParts {
    pub credential: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
}

pub fn insert(conn: &Connection, w: &Webhook, sealed: &SealedParts) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhooks (id, owner_id, url, events, description, enabled, disabled_reason,
             credential_kind, credential, credential_hint, secret, previous_secret,
             previous_secret_until, consecutive_failures, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        w.id.to_string(),
        w.owner_id.to_string(),
        w.url,
        serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".to_owned()),
        w.description,
        w.enabled,
        w.disabled_reason,
        w.credential_kind,
        sealed.credential,
        w.credential_hint,
        sealed.secret,
        sealed.previous_secret,
        w.previous_secret_until,
        w.consecutive_failures,
        w.created_at,
        w.updated_at,
    ])?;
    Ok(())
}

/// Updates the editable fields (not secrets, not the failure count).
pub fn update(conn: &Connection, w: &Webhook) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET url = ?2, events = ?3, description = ?4, enabled = ?5,
             disabled_reason = ?6, consecutive_failures = ?7, updated_at = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        w.id.to_string(),
        w.url,
        serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".to_owned()),
        w.description,
        w.enabled,
        w.disabled_reason,
        w.consecutive_failures,
        w.updated_at,
    ])?;
    Ok(())
}

pub fn set_credential(
    conn: &Connection,
    id: Uuid,
    kind: &str,
    sealed: Option<&str>,
    hint: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET credential_kind = ?2, credential = ?3, credential_hint = ?4 WHERE id = ?1",
    )?
    .execute(params![id.to_string(), kind, sealed, hint])?;
    Ok(())
}

pub fn rotate_secret(
    conn: &Connection,
    id: Uuid,
    new_secret: &str,
    grace_until: i64,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?3, secret = ?2,
             updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id.to_string(), new_secret, grace_until, now])?;
    Ok(())
}

pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

pub fn sealed_parts(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<SealedParts>> {
    conn.prepare_cached("SELECT credential, secret, previous_secret FROM webhooks WHERE id = ?1")?
        .query_row([id.to_string()], |row| {
            Ok(SealedParts {
                credential: row.get(0)?,
                secret: row.get(1)?,
                previous_secret: row.get(2)?,
            })
        })
        .optional()
}

pub fn count_owned_by(conn: &Connection, owner: UserId) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM webhooks WHERE owner_id = ?1")?
        .query_row([owner.to_string()], |row| row.get(0))
}

/// Whether the account owning a webhook is active.
pub fn owner_active(conn: &Connection, webhook: Uuid) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM webhooks w JOIN users u ON u.id = w.owner_id
                        WHERE w.id = ?1 AND u.status = 'active')",
    )?
    .query_row([webhook.to_string()], |row| row.get(0))
}

pub fn owned_by(conn: &Connection, owner: UserId) -> rusqlite::Result<Vec<Webhook>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE owner_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([owner.to_string()], from_row)?;
    rows.collect()
}

pub fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
        .execute([id.to_string()])?
        == 1)
}

/// Webhooks that want `event_type` about `subject`: enabled, subscribed to it (or
/// `*`), owned by an active account, and owned by the subject — or by an
/// administrator, who sees every user's events. `admin_only` events (policy changes) go to administrators' webhooks only.
pub fn subscribers(
    conn: &Connection,
    event_type: &str,
    subject: Option<UserId>,
    admin_only: bool,
) -> rusqlite::Result<Vec<Uuid>> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id FROM webhooks w JOIN users u ON u.id = w.owner_id
         WHERE w.enabled = 1 AND u.status = 'active'
           AND EXISTS (SELECT 1 FROM json_each(w.events) e WHERE e.value IN (?1, '*'))
           AND (u.role = 'admin' OR (?3 = 0 AND w.owner_id = ?2))",
    )?;
    let rows = stmt.query_map(
        params![event_type, subject.map(|s| s.to_string()), admin_only],
        |row| row.get::<_, String>(0),
    )?;
    rows.map(|id| id.and_then(|id| id.parse().map_err(|_| invalid(0, "webhook id"))))
        .collect()
}

/// A queued delivery.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// The `webhook-id` header: stable across retries.
    pub id: String,
    pub webhook_id: Uuid,
    pub event_type: String,
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub created_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_type, payload, status, attempts, next_attempt_at, last_status_code, created_at";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let webhook: String = row.get(1)?;
    Ok(DeliveryRow {
        id: row.get(0)?,
        webhook_id: webhook.parse().map_err(|_| invalid(1, "webhook id"))?,
        event_type: row.get(2)?,
        payload: row.get(3)?,
        status: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_at: row.get(6)?,
        last_status_code: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// Queues a delivery, due at once (`next_attempt_at` 0: the worker's clock decides
/// retries, not the caller's).
pub fn enqueue(
    conn: &Connection,
    id: &str,
    webhook: Uuid,
    event_type: &str,
    payload: &str,
    created_at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_type, payload, status, attempts,
             next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, 0, ?5, ?5)",
    )?
    .execute(params![
        id,
        webhook.to_string(),
        event_type,
        payload,
        created_at
    ])?;
    Ok(())
}

/// How much one claim may take.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    pub now: i64,
    /// Seconds a claimed delivery stays reserved before it is due again.
    pub lease: i64,
    /// Deliveries in all.
    pub total: usize,
    /// Deliveries in flight per webhook, counting those already in flight.
    pub per_webhook: usize,
    /// A webhook's failure limit: its failures so far, plus those in flight, plus
    /// those claimed now stay within it.
    pub max_failures: i64,
}

/// What the worker has in flight, as JSON the claim reads: `per_webhook` is an
/// object of webhook id → attempts in flight, `deliveries` an array of their ids.
#[derive(Debug, Clone)]
pub struct Busy {
    pub per_webhook: String,
    pub deliveries: String,
}

/// Disables every enabled webhook whose failures in a row reached `max` (the limit
/// was lowered since it failed); returns how many.
pub fn disable_over_limit(conn: &Connection, max: i64, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE webhooks SET enabled = 0, updated_at = ?2,
             disabled_reason = consecutive_failures || ' failed attempts in a row'
         WHERE enabled = 1 AND consecutive_failures >= ?1",
    )?
    .execute(params![max, now])
}

/// Leases due deliveries of enabled webhooks, the oldest of each webhook first and
/// the webhooks in turn (the first of each, then the second of each, …), so one
/// webhook's backlog cannot keep another's waiting. A delivery in flight is never
/// claimed again (a retry asked for meanwhile waits for the attempt under way).
pub fn claim_due(
    conn: &Connection,
    limits: &ClaimLimits,
    busy: &Busy,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "UPDATE webhook_deliveries SET next_attempt_at = ?1 + ?2
         WHERE id IN (
             SELECT id FROM (
                 SELECT d.id, d.next_attempt_at, w.consecutive_failures AS failures,
                        ROW_NUMBER() OVER (PARTITION BY d.webhook_id
                                           ORDER BY d.next_attempt_at, d.rowid) AS place,
                        COALESCE(json_extract(?6, '$.\"' || d.webhook_id || '\"'), 0) AS busy
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND w.enabled = 1
                   AND d.id NOT IN (SELECT value FROM json_each(?7)))
             WHERE place + busy <= ?4 AND failures + busy + place <= ?5
             ORDER BY place, next_attempt_at
             LIMIT ?3)
         RETURNING {DELIVERY_COLUMNS}"
    ))?;
    let total = i64::try_from(limits.total).unwrap_or(i64::MAX);
    let per_webhook = i64::try_from(limits.per_webhook).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        params![
            limits.now,
            limits.lease,
            total,
            per_webhook,
            limits.max_failures,
            busy.per_webhook,
            busy.deliveries
        ],
        delivery_from_row,
    )?;
    rows.collect()
}

/// Records an attempt and the delivery's new state.
#[allow(clippy::too_many_arguments)]
pub fn record_attempt(
    conn: &Connection,
    delivery: &str,
    attempt: i64,
    at: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error_class: &str,
    excerpt: &str,
    new_status: &str,
    next_attempt_at: i64,
) -> rusqlite::Result<()> {
    // A delivery deleted meanwhile (its webhook or owner removed) is skipped, not
    // an error that would lose the rest of the batch.
    conn.prepare_cached(
        "INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code,
             duration_ms, error_class, response_excerpt)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
         WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = ?1)",
    )?
    .execute(params![
        delivery,
        attempt,
        at,
        status_code,
        duration_ms,
        error_class,
        excerpt
    ])?;
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4,
             last_status_code = ?5, updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![
        delivery,
        new_status,
        attempt,
        next_attempt_at,
        status_code,
        at
    ])?;
    Ok(())
}

/// Updates a webhook's failure count after an attempt; returns the new count.
pub fn count_outcome(conn: &Connection, webhook: Uuid, success: bool) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE webhooks SET consecutive_failures = CASE WHEN ?2 THEN 0 ELSE consecutive_failures + 1 END
         WHERE id = ?1 RETURNING consecutive_failures",
    )?
    .query_row(params![webhook.to_string(), success], |row| row.get(0))
    .optional()
    .map(|n| n.unwrap_or(0))
}

pub fn disable(conn: &Connection, webhook: Uuid, reason: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![webhook.to_string(), reason, now])?;
    Ok(())
}

pub fn deliveries(
    conn: &Connection,
    webhook: Uuid,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, DeliveryRow)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS}, rowid FROM webhook_deliveries
         WHERE webhook_id = ?1 AND (?2 IS NULL OR rowid < ?2)
         ORDER BY rowid DESC LIMIT ?3"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![webhook.to_string(), before, limit], |row| {
        Ok((row.get(9)?, delivery_from_row(row)?))
    })?;
    rows.collect()
}

/// One logged attempt.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: i64,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error_class: String,
    /// The first 1 KiB of the response body.
    pub response_excerpt: String,
}

pub fn attempts(conn: &Connection, delivery: &str) -> rusqlite::Result<Vec<AttemptRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, attempted_at, status_code, duration_ms, error_class, response_excerpt
         FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map([delivery], |row| {
        Ok(AttemptRow {
            attempt: row.get(0)?,
            attempted_at: row.get(1)?,
            status_code: row.get(2)?,
            duration_ms: row.get(3)?,
            error_class: row.get(4)?,
            response_excerpt: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// Puts a delivery of `webhook` back in the queue, due now; `false` if none.
pub fn requeue(
    conn: &Connection,
    webhook: Uuid,
    delivery: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?3, updated_at = ?3
             WHERE id = ?2 AND webhook_id = ?1",
        )?
        .execute(params![webhook.to_string(), delivery, now])?
        == 1)
}

fn owner_columns() -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("w.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One page of every webhook with its owner's e-mail, newest first (the admin
/// view), after `after` (its creation time and id; keyset pagination).
pub fn page_with_owner(
    conn: &Connection,
    after: Option<(i64, Uuid)>,
    limit: usize,
) -> rusqlite::Result<Vec<(Webhook, String)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, u.email FROM webhooks w JOIN users u ON u.id = w.owner_id
         WHERE ?1 IS NULL OR w.created_at < ?1 OR (w.created_at = ?1 AND w.id < ?2)
         ORDER BY w.created_at DESC, w.id DESC LIMIT ?3",
        owner_columns()
    ))?;
    let rows = stmt.query_map(
        params![
            after.map(|a| a.0),
            after.map(|a| a.1.to_string()),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| Ok((from_row(row)?, row.get(13)?)),
    )?;
    rows.collect()
}

/// One webhook with its owner's e-mail.
pub fn find_with_owner(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<(Webhook, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {}, u.email FROM webhooks w JOIN users u ON u.id = w.owner_id WHERE w.id = ?1",
        owner_columns()
    ))?
    .query_row([id.to_string()], |row| Ok((from_row(row)?, row.get(13)?)))
    .optional()
}

/// Deletes up to `batch` delivered deliveries last changed before `before` (their
/// attempts go with them: the foreign key cascades). Failed and pending ones stay.
pub fn prune_delivered(conn: &Connection, before: i64, batch: usize) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE rowid IN (
             SELECT rowid FROM webhook_deliveries
             WHERE status = 'delivered' AND updated_at < ?1 LIMIT ?2)",
    )?
    .execute(params![before, i64::try_from(batch).unwrap_or(i64::MAX)])
}
