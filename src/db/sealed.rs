//! Every column that holds a secret-box value, and the generic SQL that key rotation,
//! plaintext migration and the startup key check run over them. Table and column
//! names come only from the constant list below, never from input.

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::KeyPurpose;

#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    /// A unique, orderable key, for batching.
    pub key: &'static str,
    pub column: &'static str,
    pub purpose: KeyPurpose,
}

impl SealedColumn {
    pub fn label(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "mfa_factors",
        key: "user_id",
        column: "secret",
        purpose: KeyPurpose::Mfa,
    },
    SealedColumn {
        table: "webhooks",
        key: "id",
        column: "credential",
        purpose: KeyPurpose::Credential,
    },
    SealedColumn {
        table: "webhooks",
        key: "id",
        column: "secret",
        purpose: KeyPurpose::Credential,
    },
    SealedColumn {
        table: "webhooks",
        key: "id",
        column: "previous_secret",
        purpose: KeyPurpose::Credential,
    },
];

/// Up to `limit` rows with a key after `after`, in key order.
pub fn batch(
    conn: &Connection,
    col: &SealedColumn,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT {key}, {column} FROM {table}
         WHERE {column} IS NOT NULL AND (?1 IS NULL OR {key} > ?1) ORDER BY {key} LIMIT ?2",
        key = col.key,
        column = col.column,
        table = col.table
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// Replaces one value, only if it is still the one that was read: a row changed
/// meanwhile (a user re-enrolled) keeps its newer value.
pub fn replace(
    conn: &Connection,
    col: &SealedColumn,
    key: &str,
    old: &str,
    new: &str,
) -> rusqlite::Result<bool> {
    let sql = format!(
        "UPDATE {table} SET {column} = ?3 WHERE {key} = ?1 AND {column} = ?2",
        key = col.key,
        column = col.column,
        table = col.table
    );
    Ok(conn.prepare_cached(&sql)?.execute(params![key, old, new])? == 1)
}

pub fn count(conn: &Connection, col: &SealedColumn) -> rusqlite::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {} IS NOT NULL",
        col.table, col.column
    );
    conn.prepare_cached(&sql)?.query_row([], |row| row.get(0))
}

pub fn canary(conn: &Connection, purpose: KeyPurpose) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM secret_canaries WHERE purpose = ?1")?
        .query_row([purpose.as_str()], |row| row.get(0))
        .optional()
}

pub fn put_canary(conn: &Connection, purpose: KeyPurpose, sealed: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO secret_canaries (purpose, value) VALUES (?1, ?2)
         ON CONFLICT (purpose) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![purpose.as_str(), sealed])?;
    Ok(())
}
