//! SQL for `browser_sessions`: the admin pages' and the gate portal's cookie
//! sessions, told apart by `kind` (a cookie of one kind never opens the other).

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::model::{AuthMethod, UserId};

#[derive(Debug, Clone)]
pub struct BrowserSessionRow {
    pub user_id: UserId,
    pub session_id: Uuid,
    /// How the account session under it was signed in to (`password` when that
    /// session is gone: the least it could have been).
    pub auth_method: AuthMethod,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// The one app host (`name:port`) a handed-off gate session is good on.
    pub host: Option<String>,
}

pub struct NewBrowserSession<'a> {
    pub id_hash: &'a str,
    pub kind: &'static str,
    pub user: UserId,
    pub session: Uuid,
    pub now: i64,
    pub expires_at: i64,
    /// For a session the gate handed to an app host: that host, `name:port`.
    pub host: Option<&'a str>,
}

pub fn insert(conn: &Connection, new: &NewBrowserSession<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO browser_sessions (id_hash, kind, user_id, session_id, created_at, last_seen_at, expires_at, host)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.id_hash,
        new.kind,
        new.user.to_string(),
        new.session.to_string(),
        new.now,
        new.expires_at,
        new.host
    ])?;
    Ok(())
}

pub fn find(
    conn: &Connection,
    kind: &str,
    id_hash: &str,
) -> rusqlite::Result<Option<BrowserSessionRow>> {
    conn.prepare_cached(
        "SELECT b.user_id, b.session_id, b.created_at, b.last_seen_at, b.expires_at, b.ended_at,
                (SELECT s.auth_method FROM sessions s WHERE s.id = b.session_id), b.host
         FROM browser_sessions b WHERE b.id_hash = ?1 AND b.kind = ?2",
    )?
    .query_row(params![id_hash, kind], |row| {
        let user: String = row.get(0)?;
        let session: String = row.get(1)?;
        let bad = |i| super::invalid_column(i, "id");
        Ok(BrowserSessionRow {
            user_id: UserId(user.parse().map_err(|_| bad(0))?),
            session_id: session.parse().map_err(|_| bad(1))?,
            auth_method: row
                .get::<_, Option<String>>(6)?
                .as_deref()
                .and_then(AuthMethod::parse)
                .unwrap_or(AuthMethod::Password),
            created_at: row.get(2)?,
            last_seen_at: row.get(3)?,
            expires_at: row.get(4)?,
            ended_at: row.get(5)?,
            host: row.get(7)?,
        })
    })
    .optional()
}

pub fn touch(conn: &Connection, id_hash: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE browser_sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, now])?;
    Ok(())
}

pub fn end(conn: &Connection, id_hash: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE browser_sessions SET ended_at = ?2 WHERE id_hash = ?1 AND ended_at IS NULL",
        )?
        .execute(params![id_hash, now])?
        == 1)
}
