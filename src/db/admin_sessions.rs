//! SQL for `admin_sessions`.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::model::UserId;

#[derive(Debug, Clone)]
pub struct AdminSessionRow {
    pub user_id: UserId,
    pub session_id: Uuid,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
}

pub fn insert(
    conn: &Connection,
    id_hash: &str,
    user: UserId,
    session: Uuid,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO admin_sessions (id_hash, user_id, session_id, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
    )?
    .execute(params![id_hash, user.to_string(), session.to_string(), now, expires_at])?;
    Ok(())
}

pub fn find(conn: &Connection, id_hash: &str) -> rusqlite::Result<Option<AdminSessionRow>> {
    conn.prepare_cached(
        "SELECT user_id, session_id, created_at, last_seen_at, expires_at, ended_at
         FROM admin_sessions WHERE id_hash = ?1",
    )?
    .query_row([id_hash], |row| {
        let user: String = row.get(0)?;
        let session: String = row.get(1)?;
        let bad = |i| super::invalid_column(i, "id");
        Ok(AdminSessionRow {
            user_id: UserId(user.parse().map_err(|_| bad(0))?),
            session_id: session.parse().map_err(|_| bad(1))?,
            created_at: row.get(2)?,
            last_seen_at: row.get(3)?,
            expires_at: row.get(4)?,
            ended_at: row.get(5)?,
        })
    })
    .optional()
}

pub fn touch(conn: &Connection, id_hash: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE admin_sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, now])?;
    Ok(())
}

pub fn end(conn: &Connection, id_hash: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE admin_sessions SET ended_at = ?2 WHERE id_hash = ?1 AND ended_at IS NULL",
        )?
        .execute(params![id_hash, now])?
        == 1)
}
