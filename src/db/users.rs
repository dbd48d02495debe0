//! SQL for the `users` table.

use super::invalid_column;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::model::{Email, Role, User, UserId, UserStatus};

const COLUMNS: &str = "id, email, password_hash, role, attributes, status, created_at, updated_at, tokens_valid_after, failed_logins, locked_until,
    EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = users.id AND f.enabled_at IS NOT NULL)";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let id: String = row.get(0)?;
    let role: String = row.get(3)?;
    let attributes: String = row.get(4)?;
    let status: String = row.get(5)?;
    Ok(User {
        id: id.parse().map_err(|_| invalid_column(0, "user id"))?,
        email: Email::from_trusted(row.get(1)?),
        password_hash: row.get(2)?,
        role: Role::parse(&role).ok_or_else(|| invalid_column(3, "role"))?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|_| invalid_column(4, "attributes"))?,
        status: UserStatus::parse(&status).ok_or_else(|| invalid_column(5, "status"))?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        tokens_valid_after: row.get(8)?,
        failed_logins: row.get(9)?,
        locked_until: row.get(10)?,
        mfa_enabled: row.get(11)?,
    })
}

/// Inserts a user with its e-mail's confusable skeleton; a duplicate e-mail is a
/// constraint violation the caller maps.
pub fn insert(conn: &Connection, user: &User) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, email, password_hash, role, attributes, status, created_at, updated_at, tokens_valid_after, email_skeleton)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        user.id.to_string(),
        user.email.as_str(),
        user.password_hash,
        user.role.as_str(),
        serde_json::Value::Object(user.attributes.clone()).to_string(),
        user.status.as_str(),
        user.created_at,
        user.updated_at,
        user.tokens_valid_after,
        user.email.skeleton(),
    ])?;
    Ok(())
}

/// Whether an account's address looks like `email` (same confusable skeleton).
pub fn look_alike_exists(conn: &Connection, email: &Email) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE email_skeleton = ?1)")?
        .query_row([email.skeleton()], |row| row.get(0))
}

/// What [`fill_missing_skeletons`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SkeletonFill {
    /// Accounts that got their skeleton.
    pub filled: usize,
    /// Addresses rewritten to their normalised form (so the account signs in as
    /// the address is now parsed).
    pub renormalised: usize,
    /// Accounts (by id) whose address was left as stored because its normalised
    /// form is another account's.
    pub collisions: Vec<String>,
}

/// Accounts from before look-alike detection: each address is rewritten to its
/// normalised form (unless another account already has that form) and gets its
/// skeleton, so the rule and sign-in cover them too.
pub fn fill_missing_skeletons(conn: &Connection) -> rusqlite::Result<SkeletonFill> {
    let missing: Vec<(String, String)> = conn
        .prepare("SELECT id, email FROM users WHERE email_skeleton IS NULL")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut fill = SkeletonFill::default();
    for (id, stored) in missing {
        let mut email = Email::from_trusted(stored.clone());
        if let Ok(normalised) = Email::parse(&stored)
            && normalised.as_str() != stored
        {
            let taken: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)")?
                .query_row([normalised.as_str()], |row| row.get(0))?;
            if taken {
                fill.collisions.push(id.clone());
            } else {
                conn.prepare_cached("UPDATE users SET email = ?2 WHERE id = ?1")?
                    .execute(params![id, normalised.as_str()])?;
                fill.renormalised += 1;
                email = normalised;
            }
        }
        conn.prepare_cached("UPDATE users SET email_skeleton = ?2 WHERE id = ?1")?
            .execute(params![id, email.skeleton()])?;
        fill.filled += 1;
    }
    Ok(fill)
}

pub fn find_by_email(conn: &Connection, email: &Email) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?
        .query_row([email.as_str()], from_row)
        .optional()
}

pub fn find(conn: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}

pub fn set_password_hash(
    conn: &Connection,
    id: UserId,
    hash: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), hash, now])?;
    Ok(())
}

/// Replaces the password hash only if it is still `expected`; false otherwise (it
/// changed since it was verified).
pub fn replace_password_hash(
    conn: &Connection,
    id: UserId,
    expected: &str,
    hash: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE id = ?1 AND password_hash = ?2")?
        .execute(params![id.to_string(), expected, hash, now])?;
    Ok(changed > 0)
}

/// Counts a failed login at `now`, unless the account is softlocked (a concurrent
/// attempt locked it: attempts during a lock do not count). A failure more than
/// `forget_after` seconds after the previous one — and after the end of the last
/// lock, so a long lock does not wipe the count that caused it — starts the count
/// afresh. `by` counts several at once (failures an outage kept in memory). Returns
/// the consecutive failures, or `None` when not counted.
pub fn count_failed_login(
    conn: &Connection,
    id: UserId,
    now: i64,
    forget_after: i64,
    by: u32,
) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached(
        "UPDATE users SET
             failed_logins = CASE
                 WHEN last_failed_login_at IS NULL
                   OR ?2 - max(last_failed_login_at, coalesce(locked_until, 0)) >= ?3 THEN ?4
                 ELSE failed_logins + ?4 END,
             last_failed_login_at = ?2
         WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?2)
         RETURNING failed_logins",
    )?
    .query_row(params![id.to_string(), now, forget_after, by], |row| {
        row.get(0)
    })
    .optional()
}

pub fn softlock_until(conn: &Connection, id: UserId, until: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE users SET locked_until = ?2 WHERE id = ?1")?
        .execute(params![id.to_string(), until])?;
    Ok(())
}

/// A successful login: the failure count and any softlock are cleared.
pub fn clear_failed_logins(conn: &Connection, id: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET failed_logins = 0, last_failed_login_at = NULL, locked_until = NULL
         WHERE id = ?1 AND (failed_logins > 0 OR locked_until IS NOT NULL)",
    )?
    .execute([id.to_string()])?;
    Ok(())
}

/// Sets the account status; returns false when there is no such user.
pub fn set_status(
    conn: &Connection,
    id: UserId,
    status: UserStatus,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), status.as_str(), now])?;
    Ok(changed > 0)
}

/// Lifts a lock: an admin-`locked` account becomes active (a `disabled` one stays
/// disabled), and the softlock and failure count are cleared. False when there is
/// no such user.
pub fn unlock(conn: &Connection, id: UserId, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE users SET
                 status = CASE WHEN status = 'locked' THEN 'active' ELSE status END,
                 failed_logins = 0, last_failed_login_at = NULL, locked_until = NULL,
                 updated_at = ?2
             WHERE id = ?1",
        )?
        .execute(params![id.to_string(), now])?;
    Ok(changed > 0)
}

/// Turns a `disabled` account back on (any other status is left as it is). False
/// when there is no such disabled account.
pub fn enable(conn: &Connection, id: UserId, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE users SET status = 'active', updated_at = ?2 WHERE id = ?1 AND status = 'disabled'",
        )?
        .execute(params![id.to_string(), now])?;
    Ok(changed > 0)
}

/// Deletes an account; what it owns goes with it (the foreign keys cascade). False
/// when there is no such account.
pub fn delete(conn: &Connection, id: UserId) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([id.to_string()])?;
    Ok(changed > 0)
}

/// Moves the cut-off forward (never back): tokens issued before `at` die.
pub fn set_tokens_valid_after(conn: &Connection, id: UserId, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET tokens_valid_after = max(tokens_valid_after, ?2), updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id.to_string(), at])?;
    Ok(())
}

/// The cut-off of one user; `None` when the user no longer exists.
pub fn tokens_valid_after(conn: &Connection, id: UserId) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT tokens_valid_after FROM users WHERE id = ?1")?
        .query_row([id.to_string()], |row| row.get(0))
        .optional()
}

/// Every cut-off later than `since`: the ones that can still reject a live token.
pub fn recent_cutoffs(conn: &Connection, since: i64) -> rusqlite::Result<Vec<(UserId, i64)>> {
    let mut stmt =
        conn.prepare("SELECT id, tokens_valid_after FROM users WHERE tokens_valid_after > ?1")?;
    let rows = stmt.query_map([since], |row| {
        let id: String = row.get(0)?;
        Ok((
            id.parse().map_err(|_| invalid_column(0, "user id"))?,
            row.get(1)?,
        ))
    })?;
    rows.collect()
}

/// How the administrators' list orders accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    /// By e-mail, A to Z.
    Email,
    /// Newest first.
    Newest,
}

/// Where a page of the list starts: after this account, in the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub email: String,
    pub created_at: i64,
    pub id: UserId,
}

/// One page of accounts whose e-mail contains `needle` (empty: all), in `order`,
/// after `after` (keyset pagination: no OFFSET, so a page costs the same anywhere
/// in the list and an account added meanwhile neither repeats nor hides another).
pub fn page(
    conn: &Connection,
    needle: &str,
    order: UserOrder,
    after: Option<&UserCursor>,
    limit: usize,
) -> rusqlite::Result<Vec<User>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let matching = "(?1 = '' OR instr(email, ?1) > 0)";
    match order {
        UserOrder::Email => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE {matching} AND (?2 IS NULL OR email > ?2)
                 ORDER BY email LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                rusqlite::params![needle, after.map(|c| c.email.as_str()), limit],
                from_row,
            )?;
            rows.collect()
        }
        UserOrder::Newest => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE {matching}
                 AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
                 ORDER BY created_at DESC, id DESC LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                rusqlite::params![
                    needle,
                    after.map(|c| c.created_at),
                    after.map(|c| c.id.to_string()),
                    limit
                ],
                from_row,
            )?;
            rows.collect()
        }
    }
}

/// The first `limit` active administrators, by e-mail.
pub fn active_administrators(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE role = 'admin' AND status = 'active' ORDER BY email LIMIT ?1"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    rows.collect()
}

pub fn set_role_and_attributes(
    conn: &Connection,
    id: UserId,
    role: Role,
    attributes: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET role = ?2, attributes = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![
        id.to_string(),
        role.as_str(),
        serde_json::Value::Object(attributes.clone()).to_string(),
        now
    ])?;
    Ok(())
}
