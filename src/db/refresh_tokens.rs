//! SQL for the `refresh_tokens` table: SHA-256 hashes only, never the tokens.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub session_id: Uuid,
    pub rotated_at: Option<i64>,
}

pub fn insert(
    conn: &Connection,
    token_hash: &str,
    session_id: Uuid,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![token_hash, session_id.to_string(), now])?;
    Ok(())
}

pub fn find(conn: &Connection, token_hash: &str) -> rusqlite::Result<Option<RefreshTokenRow>> {
    conn.prepare_cached("SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash = ?1")?
        .query_row([token_hash], |row| {
            let session: String = row.get(0)?;
            Ok(RefreshTokenRow {
                session_id: Uuid::parse_str(&session).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                rotated_at: row.get(1)?,
            })
        })
        .optional()
}

/// Marks a token as exchanged; false when it already was (a concurrent reuse).
pub fn mark_rotated(conn: &Connection, token_hash: &str, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL")?
        .execute(params![token_hash, now])?;
    Ok(changed > 0)
}

/// Drops the tokens of sessions that ended, or expired, before `before`: they can
/// never be exchanged again, and reuse of one is moot once its session is over.
pub fn purge_for_sessions_over_before(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM refresh_tokens WHERE session_id IN (
             SELECT id FROM sessions WHERE ended_at < ?1 OR expires_at < ?1)",
        [before],
    )
}
