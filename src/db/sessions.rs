//! SQL for the `sessions` table: one row per login.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::model::{AuthMethod, UserId};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub family: Uuid,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// How the session was signed in to; every access token of it carries this.
    pub auth_method: AuthMethod,
    /// The passkey that signed it in, if one did: the session ends with it.
    pub passkey_id: Option<Uuid>,
}

impl SessionRow {
    pub fn is_live(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str = "id, user_id, family, ip, user_agent, created_at, last_used_at, expires_at, ended_at, auth_method, passkey_id";

fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: uuid_column(row, 0)?,
        user_id: UserId(uuid_column(row, 1)?),
        family: uuid_column(row, 2)?,
        ip: row.get(3)?,
        user_agent: row.get(4)?,
        created_at: row.get(5)?,
        last_used_at: row.get(6)?,
        expires_at: row.get(7)?,
        ended_at: row.get(8)?,
        auth_method: {
            let text: String = row.get(9)?;
            AuthMethod::parse(&text).ok_or_else(|| crate::db::invalid_column(9, "auth_method"))?
        },
        passkey_id: row
            .get::<_, Option<String>>(10)?
            .map(|text| Uuid::parse_str(&text).map_err(|_| crate::db::invalid_column(10, "uuid")))
            .transpose()?,
    })
}

pub fn insert(conn: &Connection, session: &SessionRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, user_id, family, ip, user_agent, created_at, last_used_at, expires_at, auth_method, passkey_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        session.id.to_string(),
        session.user_id.to_string(),
        session.family.to_string(),
        session.ip,
        session.user_agent,
        session.created_at,
        session.last_used_at,
        session.expires_at,
        session.auth_method.as_str(),
        session.passkey_id.map(|id| id.to_string()),
    ])?;
    Ok(())
}

/// Every live session: (id, user, expires_at), for the in-memory allow-list.
pub fn all_live(conn: &Connection, now: i64) -> rusqlite::Result<Vec<(Uuid, UserId, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, expires_at FROM sessions WHERE ended_at IS NULL AND expires_at > ?1",
    )?;
    let rows = stmt.query_map([now], |row| {
        Ok((
            uuid_column(row, 0)?,
            UserId(uuid_column(row, 1)?),
            row.get(2)?,
        ))
    })?;
    rows.collect()
}

/// What a database put back from an older copy needs (a restore, a rollback
/// accepted at start-up): every live session ends and every account's token
/// cut-off moves to `now`, so nothing handed out before — access and refresh
/// tokens, browser sessions, MFA challenges — is honoured again. Returns the
/// sessions ended.
pub fn end_everything(conn: &Connection, now: i64, reason: &str) -> rusqlite::Result<usize> {
    let ended = conn
        .prepare_cached(
            "UPDATE sessions SET ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL",
        )?
        .execute(params![now, reason])?;
    conn.prepare_cached(
        "UPDATE users SET tokens_valid_after = max(tokens_valid_after, ?1), updated_at = ?1",
    )?
    .execute(params![now])?;
    Ok(ended)
}

pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<SessionRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

/// The live sessions of one user, newest first.
pub fn live_for_user(
    conn: &Connection,
    user_id: UserId,
    now: i64,
) -> rusqlite::Result<Vec<SessionRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map(params![user_id.to_string(), now], from_row)?;
    rows.collect()
}

/// The live sessions a passkey signed in.
pub fn live_for_passkey(
    conn: &Connection,
    passkey: Uuid,
    now: i64,
) -> rusqlite::Result<Vec<SessionRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE passkey_id = ?1 AND ended_at IS NULL AND expires_at > ?2"
    ))?;
    let rows = stmt.query_map(params![passkey.to_string(), now], from_row)?;
    rows.collect()
}

/// When `user` last signed in: the start of their newest session, ended or not.
pub fn last_started(conn: &Connection, user: UserId) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT MAX(created_at) FROM sessions WHERE user_id = ?1")?
        .query_row([user.to_string()], |row| row.get(0))
}

pub fn touch(
    conn: &Connection,
    id: Uuid,
    now: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE sessions SET last_used_at = ?2, ip = coalesce(?3, ip), user_agent = coalesce(?4, user_agent) WHERE id = ?1",
    )?
    .execute(params![id.to_string(), now, ip, user_agent])?;
    Ok(())
}

/// Records that the session's holder proved the password again at `now`.
pub fn set_reauthenticated(conn: &Connection, id: Uuid, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE sessions SET reauthenticated_at = ?2 WHERE id = ?1")?
        .execute(params![id.to_string(), now])?;
    Ok(())
}

/// Every session of `user` forgets that its holder proved the password again (MFA
/// was just turned on: those proofs lack the code).
pub fn forget_reauthentications(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE sessions SET reauthenticated_at = NULL WHERE user_id = ?1")?
        .execute(params![user.to_string()])?;
    Ok(())
}

/// When the session's holder last proved the password again, if ever.
pub fn reauthenticated_at(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT reauthenticated_at FROM sessions WHERE id = ?1")?
        .query_row([id.to_string()], |row| row.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// Ends a session if it is still open; returns whether it was.
pub fn end(conn: &Connection, id: Uuid, now: i64, reason: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
        )?
        .execute(params![id.to_string(), now, reason])?;
    Ok(changed > 0)
}

/// Deletes up to `batch` account sessions that ended, or expired, before `before`,
/// with their refresh tokens (the foreign key cascades) and the browser sessions
/// that rode on them. Returns how many account sessions went.
pub fn prune_over(conn: &Connection, before: i64, batch: usize) -> rusqlite::Result<usize> {
    let over: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM sessions
             WHERE (ended_at IS NOT NULL AND ended_at < ?1) OR expires_at < ?1 LIMIT ?2",
        )?
        .query_map(
            rusqlite::params![before, i64::try_from(batch).unwrap_or(i64::MAX)],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for id in &over {
        conn.prepare_cached("DELETE FROM browser_sessions WHERE session_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(over.len())
}
