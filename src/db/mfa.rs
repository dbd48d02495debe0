//! SQL for `mfa_factors` and `mfa_backup_codes`. Secrets arrive here already sealed.

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::UserId;

/// A user's TOTP factor as stored.
#[derive(Debug, Clone)]
pub struct FactorRow {
    /// A secret-box value.
    pub secret: String,
    pub enabled_at: Option<i64>,
    pub last_used_step: Option<i64>,
}

pub fn find(conn: &Connection, user: UserId) -> rusqlite::Result<Option<FactorRow>> {
    conn.prepare_cached(
        "SELECT secret, enabled_at, last_used_step FROM mfa_factors WHERE user_id = ?1",
    )?
    .query_row([user.to_string()], |row| {
        Ok(FactorRow {
            secret: row.get(0)?,
            enabled_at: row.get(1)?,
            last_used_step: row.get(2)?,
        })
    })
    .optional()
}

/// Stores a pending (not yet enabled) factor, replacing an earlier pending one. An
/// enabled factor is left alone: `false` then.
pub fn put_pending(
    conn: &Connection,
    user: UserId,
    sealed_secret: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO mfa_factors (user_id, secret, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,
                 created_at = excluded.created_at, last_used_step = NULL
             WHERE mfa_factors.enabled_at IS NULL",
        )?
        .execute(params![user.to_string(), sealed_secret, now])?;
    Ok(changed == 1)
}

/// Enables a pending factor and records the step its confirming code used.
pub fn enable(conn: &Connection, user: UserId, step: i64, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE mfa_factors SET enabled_at = ?2, last_used_step = ?3
             WHERE user_id = ?1 AND enabled_at IS NULL",
        )?
        .execute(params![user.to_string(), now, step])?;
    Ok(changed == 1)
}

/// Records `step` as used, only if it is later than every step used before: the
/// compare-and-set that makes each code good once, even under concurrent requests.
pub fn use_step(conn: &Connection, user: UserId, step: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE mfa_factors SET last_used_step = ?2
             WHERE user_id = ?1 AND (last_used_step IS NULL OR last_used_step < ?2)",
        )?
        .execute(params![user.to_string(), step])?;
    Ok(changed == 1)
}

/// Removes the factor and every backup code; `false` when there was no factor.
pub fn remove(conn: &Connection, user: UserId) -> rusqlite::Result<bool> {
    let id = user.to_string();
    conn.prepare_cached("DELETE FROM mfa_backup_codes WHERE user_id = ?1")?
        .execute([&id])?;
    let removed = conn
        .prepare_cached("DELETE FROM mfa_factors WHERE user_id = ?1")?
        .execute([&id])?;
    Ok(removed == 1)
}

pub fn replace_backup_codes(
    conn: &Connection,
    user: UserId,
    hashes: &[String],
) -> rusqlite::Result<()> {
    let id = user.to_string();
    conn.prepare_cached("DELETE FROM mfa_backup_codes WHERE user_id = ?1")?
        .execute([&id])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO mfa_backup_codes (user_id, code_hash) VALUES (?1, ?2)")?;
    for hash in hashes {
        insert.execute(params![id, hash])?;
    }
    Ok(())
}

/// Marks an unused backup code used; `false` when no such unused code exists.
pub fn use_backup_code(
    conn: &Connection,
    user: UserId,
    hash: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE mfa_backup_codes SET used_at = ?3
             WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        )?
        .execute(params![user.to_string(), hash, now])?;
    Ok(changed == 1)
}

/// Whether this code existed and was already used (a replay, not a guess).
pub fn backup_code_was_used(conn: &Connection, user: UserId, hash: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM mfa_backup_codes
           WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NOT NULL)",
    )?
    .query_row(params![user.to_string(), hash], |row| row.get(0))
}

pub fn unused_backup_codes(conn: &Connection, user: UserId) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM mfa_backup_codes WHERE user_id = ?1 AND used_at IS NULL",
    )?
    .query_row([user.to_string()], |row| row.get(0))
}
