//! SQL for the `passkeys` table: an account's WebAuthn credentials. The `passkey`
//! column is the webauthn-rs `Passkey` as JSON — a public key, a signature counter and
//! the backup flags, nothing secret — so it is stored as it is, unsealed; the private
//! key never leaves the user's authenticator. Every change is scoped to its owner:
//! another account's passkey id matches nothing.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::invalid_column;
use crate::model::UserId;

#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub user_id: UserId,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The webauthn-rs `Passkey`, as JSON.
    pub passkey: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// When its signature counter went backwards: it signs nobody in since.
    pub clone_suspected_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, credential_id, passkey, name, created_at, last_used_at, clone_suspected_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<PasskeyRow> {
    let uuid = |index: usize| -> rusqlite::Result<Uuid> {
        let text: String = row.get(index)?;
        Uuid::parse_str(&text).map_err(|_| invalid_column(index, "uuid"))
    };
    Ok(PasskeyRow {
        id: uuid(0)?,
        user_id: UserId(uuid(1)?),
        credential_id: row.get(2)?,
        passkey: row.get(3)?,
        name: row.get(4)?,
        created_at: row.get(5)?,
        last_used_at: row.get(6)?,
        clone_suspected_at: row.get(7)?,
    })
}

pub fn insert(conn: &Connection, passkey: &PasskeyRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO passkeys (id, user_id, credential_id, passkey, name, created_at, last_used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        passkey.id.to_string(),
        passkey.user_id.to_string(),
        passkey.credential_id,
        passkey.passkey,
        passkey.name,
        passkey.created_at,
        passkey.last_used_at,
    ])?;
    Ok(())
}

/// The account's passkeys, oldest first.
pub fn for_user(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<PasskeyRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE user_id = ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([user.to_string()], from_row)?;
    rows.collect()
}

/// How many passkeys the account has.
pub fn count_for_user(conn: &Connection, user: UserId) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM passkeys WHERE user_id = ?1")?
        .query_row([user.to_string()], |row| row.get(0))
}

/// The passkey with this credential id (base64url), whoever owns it.
pub fn find_by_credential_id(
    conn: &Connection,
    credential_id: &str,
) -> rusqlite::Result<Option<PasskeyRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE credential_id = ?1"
    ))?
    .query_row([credential_id], from_row)
    .optional()
}

/// The passkey with this id, whoever owns it.
pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<PasskeyRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM passkeys WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

/// Whether the passkey exists and may sign in (no copy of it is suspected).
pub fn in_use(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM passkeys WHERE id = ?1 AND clone_suspected_at IS NULL)",
    )?
    .query_row([id.to_string()], |row| row.get(0))
}

/// One of the account's passkeys.
pub fn find_for_user(
    conn: &Connection,
    user: UserId,
    id: Uuid,
) -> rusqlite::Result<Option<PasskeyRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![id.to_string(), user.to_string()], from_row)
    .optional()
}

/// Renames one of the account's passkeys; `false` when it has none with this id.
pub fn rename(conn: &Connection, user: UserId, id: Uuid, name: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE passkeys SET name = ?3 WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id.to_string(), user.to_string(), name])?;
    Ok(changed == 1)
}

/// Deletes one of the account's passkeys; `false` when it has none with this id.
pub fn delete(conn: &Connection, user: UserId, id: Uuid) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id.to_string(), user.to_string()])?;
    Ok(changed == 1)
}

/// Deletes every passkey of the account; returns the ones deleted.
pub fn delete_all_for_user(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<PasskeyRow>> {
    let deleted = for_user(conn, user)?;
    conn.prepare_cached("DELETE FROM passkeys WHERE user_id = ?1")?
        .execute([user.to_string()])?;
    Ok(deleted)
}

/// Marks the passkey as a suspected copy at `now` (the first time only); `false`
/// when it is gone.
pub fn suspect_clone(conn: &Connection, id: Uuid, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE passkeys SET clone_suspected_at = coalesce(clone_suspected_at, ?2) WHERE id = ?1",
        )?
        .execute(params![id.to_string(), now])?;
    Ok(changed == 1)
}

/// Records a sign-in with the passkey at `now`, and its updated state (a higher
/// counter, changed backup flags) when it changed. `false` when the passkey is gone.
pub fn record_use(
    conn: &Connection,
    id: Uuid,
    updated_passkey: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE passkeys SET last_used_at = ?2, passkey = coalesce(?3, passkey) WHERE id = ?1",
        )?
        .execute(params![id.to_string(), now, updated_passkey])?;
    Ok(changed == 1)
}
