//! Read-only counts for the admin dashboard and the metrics.

use rusqlite::{Connection, params};

fn count(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<i64> {
    conn.prepare_cached(sql)?.query_row(args, |row| row.get(0))
}

pub fn users(conn: &Connection) -> rusqlite::Result<i64> {
    count(conn, "SELECT count(*) FROM users", [])
}

/// Accounts locked by an administrator, disabled, or softlocked at `now`.
pub fn locked(conn: &Connection, now: i64) -> rusqlite::Result<i64> {
    count(
        conn,
        "SELECT count(*) FROM users WHERE status <> 'active' OR locked_until > ?1",
        [now],
    )
}

pub fn live_revocations(conn: &Connection, now: i64) -> rusqlite::Result<i64> {
    count(
        conn,
        "SELECT count(*) FROM revocations WHERE expires_at > ?1",
        [now],
    )
}

/// Webhooks disabled by failures or currently failing.
pub fn failing_webhooks(conn: &Connection) -> rusqlite::Result<i64> {
    count(
        conn,
        "SELECT count(*) FROM webhooks
         WHERE consecutive_failures > 0 OR (enabled = 0 AND disabled_reason <> 'disabled by its owner')",
        [],
    )
}

/// The times (RFC 3339, UTC) of failed logins since `since` (RFC 3339).
pub fn failed_login_times(conn: &Connection, since: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT occurred_at FROM audit_events WHERE event = 'auth.login_failed' AND occurred_at >= ?1",
    )?;
    let rows = stmt.query_map(params![since], |row| row.get(0))?;
    rows.collect()
}

/// Account sessions neither ended nor expired at `now`.
pub fn live_sessions(conn: &Connection, now: i64) -> rusqlite::Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM sessions WHERE ended_at IS NULL AND expires_at > ?1",
        [now],
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

/// Webhook deliveries not yet delivered nor given up: queued, in flight, or
/// waiting for a retry.
pub fn webhook_backlog(conn: &Connection) -> rusqlite::Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
        [],
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}
