//! SQL for the `revocations` table: revoked token ids and ended session ids, kept
//! until every access token they could match has expired.

use rusqlite::{Connection, params};

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// An access token, by `jti`.
    Token,
    /// Every access token of a session, by `sid`.
    Session,
}

impl RevocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Token => "token",
            RevocationKind::Session => "session",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "token" => Some(RevocationKind::Token),
            "session" => Some(RevocationKind::Session),
            _ => None,
        }
    }
}

/// Inserts (or extends) a revocation.
pub fn insert(
    conn: &Connection,
    kind: RevocationKind,
    value: &str,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO revocations (kind, value, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, value) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    )?
    .execute(params![kind.as_str(), value, expires_at])?;
    Ok(())
}

/// Whether either the token or its session is revoked and still in force at `now`.
pub fn is_revoked(conn: &Connection, jti: &str, sid: &str, now: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM revocations WHERE expires_at > ?3
           AND ((kind = 'token' AND value = ?1) OR (kind = 'session' AND value = ?2)))",
    )?
    .query_row(params![jti, sid, now], |row| row.get(0))
}

/// Every revocation still in force at `now`, for warming the cache at startup.
pub fn live(conn: &Connection, now: i64) -> rusqlite::Result<Vec<(RevocationKind, String, i64)>> {
    let mut stmt =
        conn.prepare("SELECT kind, value, expires_at FROM revocations WHERE expires_at > ?1")?;
    let rows = stmt.query_map([now], |row| {
        let kind: String = row.get(0)?;
        let kind = RevocationKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                "invalid kind".into(),
            )
        })?;
        Ok((kind, row.get(1)?, row.get(2)?))
    })?;
    rows.collect()
}

pub fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM revocations WHERE expires_at <= ?1", [now])
}
