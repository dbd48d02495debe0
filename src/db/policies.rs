//! SQL for `policies` and `policy_versions`.

use super::invalid_column as invalid;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use uuid::Uuid;

use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};

const COLUMNS: &str = "id, name, description, effect, resource_type, actions, conditions, priority, status, principals, version, system, created_by, created_at, updated_by, updated_at";

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, column: usize) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|_| invalid(column, "JSON"))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Policy> {
    let id: String = row.get(0)?;
    let effect: String = row.get(3)?;
    let status: String = row.get(8)?;
    let conditions: Option<String> = row.get(6)?;
    Ok(Policy {
        id: id.parse().map_err(|_| invalid(0, "policy id"))?,
        name: row.get(1)?,
        description: row.get(2)?,
        effect: match effect.as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            _ => return Err(invalid(3, "effect")),
        },
        resource_type: row.get(4)?,
        actions: json(row, 5)?,
        conditions: conditions
            .map(|c| serde_json::from_str::<Value>(&c).map_err(|_| invalid(6, "conditions")))
            .transpose()?,
        priority: row.get(7)?,
        status: match status.as_str() {
            "active" => PolicyStatus::Active,
            "inactive" => PolicyStatus::Inactive,
            _ => return Err(invalid(8, "status")),
        },
        principals: json::<Principals>(row, 9)?,
        version: row.get(10)?,
        system: row.get(11)?,
        created_by: row.get(12)?,
        created_at: row.get(13)?,
        updated_by: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Policy>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM policies ORDER BY priority DESC, name"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

/// A number that grows with every stored change (each adds a version row): a
/// different value means the policies changed, in this process or another.
pub fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(rowid), 0) FROM policy_versions")?
        .query_row([], |row| row.get(0))
}

pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Policy>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM policies WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

/// Inserts or replaces a policy (every column).
pub fn put(conn: &Connection, p: &Policy) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO policies (id, name, description, effect, resource_type, actions, conditions,
             priority, status, principals, version, system, created_by, created_at, updated_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
             effect = excluded.effect, resource_type = excluded.resource_type,
             actions = excluded.actions, conditions = excluded.conditions,
             priority = excluded.priority, status = excluded.status,
             principals = excluded.principals, version = excluded.version,
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )?
    .execute(params![
        p.id.to_string(),
        p.name,
        p.description,
        p.effect.as_str(),
        p.resource_type,
        to_json(&p.actions)?,
        p.conditions.as_ref().map(Value::to_string),
        p.priority,
        p.status.as_str(),
        to_json(&p.principals)?,
        p.version,
        p.system,
        p.created_by,
        p.created_at,
        p.updated_by,
        p.updated_at,
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM policies WHERE id = ?1")?
        .execute([id.to_string()])?
        == 1)
}

/// One entry of a policy's history.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i64,
    /// `created`, `updated` or `deleted`.
    pub change: String,
    pub snapshot: Value,
    pub changed_by: Option<String>,
    pub changed_at: i64,
}

pub fn add_version(
    conn: &Connection,
    policy: &Policy,
    change: &str,
    by: Option<&str>,
    at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO policy_versions (policy_id, version, change, snapshot, changed_by, changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        policy.id.to_string(),
        policy.version,
        change,
        to_json(policy)?,
        by,
        at
    ])?;
    Ok(())
}

/// The highest version ever recorded for a policy (0 for none), deleted ones too.
pub fn last_version(conn: &Connection, id: Uuid) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT coalesce(max(version), 0) FROM policy_versions WHERE policy_id = ?1",
    )?
    .query_row([id.to_string()], |row| row.get(0))
}

pub fn versions(conn: &Connection, id: Uuid) -> rusqlite::Result<Vec<VersionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, change, snapshot, changed_by, changed_at FROM policy_versions
         WHERE policy_id = ?1 ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([id.to_string()], |row| {
        Ok(VersionRow {
            version: row.get(0)?,
            change: row.get(1)?,
            snapshot: json(row, 2)?,
            changed_by: row.get(3)?,
            changed_at: row.get(4)?,
        })
    })?;
    rows.collect()
}
