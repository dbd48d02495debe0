//! SQL for the `audit_events` table. The chain logic lives in `crate::audit`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use rusqlite::{Connection, OptionalExtension, Row, params};

/// One stored audit event, exactly as in the table (and as `audit export` writes
/// it, one JSON object a line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: String,
    pub actor: Option<String>,
    pub ip: Option<String>,
    pub event: String,
    pub target: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str =
    "id, occurred_at, actor, ip, event, target, outcome, request_id, details, prev_hash, hash";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: row.get(0)?,
        occurred_at: row.get(1)?,
        actor: row.get(2)?,
        ip: row.get(3)?,
        event: row.get(4)?,
        target: row.get(5)?,
        outcome: row.get(6)?,
        request_id: row.get(7)?,
        details: row.get(8)?,
        prev_hash: row.get(9)?,
        hash: row.get(10)?,
    })
}

/// The id and hash of the newest event, the link the next event chains to.
pub fn last_link(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    conn.prepare_cached("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// The hash of event `id`, if there is one.
pub fn hash_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT hash FROM audit_events WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()
}

pub fn insert(conn: &Connection, row: &AuditRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_events (id, occurred_at, actor, ip, event, target, outcome, request_id, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        row.id,
        row.occurred_at,
        row.actor,
        row.ip,
        row.event,
        row.target,
        row.outcome,
        row.request_id,
        row.details,
        row.prev_hash,
        row.hash,
    ])?;
    Ok(())
}

/// The newest event.
pub fn last(conn: &Connection) -> rusqlite::Result<Option<AuditRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events ORDER BY id DESC LIMIT 1"
    ))?
    .query_row([], from_row)
    .optional()
}

/// Visits every event in chain order until `visit` breaks.
pub fn for_each_in_order(
    conn: &Connection,
    mut visit: impl FnMut(AuditRow) -> ControlFlow<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if visit(from_row(row)?).is_break() {
            break;
        }
    }
    Ok(())
}

/// Every event that occurred at or after `since` (RFC 3339 text, compared as
/// stored), oldest first.
pub fn for_each_since(
    conn: &Connection,
    since: &str,
    mut visit: impl FnMut(AuditRow) -> ControlFlow<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE occurred_at >= ?1 ORDER BY id"
    ))?;
    let mut rows = stmt.query([since])?;
    while let Some(row) = rows.next()? {
        if visit(from_row(row)?).is_break() {
            break;
        }
    }
    Ok(())
}

/// The highest id SQLite ever assigned (AUTOINCREMENT remembers it even when the
/// rows are gone), to detect a truncated tail.
pub fn highest_assigned_id(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'",
        [],
        |row| row.get(0),
    )
    .optional()
}

/// Filters for browsing the log; empty strings match everything. `event` matches by
/// prefix (`auth.` finds every auth event), `actor` exactly. Dates are `YYYY-MM-DD`
/// (UTC), `to` inclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: String,
    pub actor: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
}

/// The condition a filter sets, on parameters `?1` to `?5`. The event prefix is
/// compared with `substr`, not `LIKE`, so the `_` in event names is no wildcard.
const MATCHES: &str = "(?1 = '' OR substr(event, 1, length(?1)) = ?1)
    AND (?2 = '' OR actor = ?2) AND (?3 = '' OR outcome = ?3)
    AND (?4 = '' OR occurred_at >= ?4) AND (?5 = '' OR occurred_at < date(?5, '+1 day'))";

/// The newest events matching `filter`, at most `limit`.
pub fn search(
    conn: &Connection,
    filter: &AuditFilter,
    limit: usize,
) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {MATCHES} ORDER BY id DESC LIMIT ?6"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.event,
            filter.actor,
            filter.outcome,
            filter.from,
            filter.to,
            sql_limit(limit)
        ],
        from_row,
    )?;
    rows.collect()
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Where a page of the log starts, by event id (keyset pagination, no OFFSET).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cursor {
    /// The newest matching events.
    #[default]
    Newest,
    /// The matching events older than this one (the next page).
    Before(i64),
    /// The matching events newer than this one (the previous page).
    After(i64),
}

/// One page of matching events, newest first, and whether more match on either
/// side of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    pub rows: Vec<AuditRow>,
    pub has_older: bool,
    pub has_newer: bool,
}

/// The page of at most `limit` events matching `filter` that starts at `cursor`.
pub fn page(
    conn: &Connection,
    filter: &AuditFilter,
    cursor: Cursor,
    limit: usize,
) -> rusqlite::Result<LogPage> {
    let (condition, order, bound) = match cursor {
        Cursor::Newest => ("id < ?6", "DESC", i64::MAX),
        Cursor::Before(id) => ("id < ?6", "DESC", id),
        Cursor::After(id) => ("id > ?6", "ASC", id),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {MATCHES} AND {condition}
         ORDER BY id {order} LIMIT ?7"
    ))?;
    let mut rows = stmt
        .query_map(
            params![
                filter.event,
                filter.actor,
                filter.outcome,
                filter.from,
                filter.to,
                bound,
                sql_limit(limit)
            ],
            from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    let (has_older, has_newer) = match (rows.last(), rows.first()) {
        (Some(oldest), Some(newest)) => (
            any_match(conn, filter, "id < ?6", oldest.id)?,
            any_match(conn, filter, "id > ?6", newest.id)?,
        ),
        _ => (false, false),
    };
    Ok(LogPage {
        rows,
        has_older,
        has_newer,
    })
}

/// Whether any event matching `filter` meets `condition` on `?6`.
fn any_match(
    conn: &Connection,
    filter: &AuditFilter,
    condition: &str,
    bound: i64,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM audit_events WHERE {MATCHES} AND {condition})"
    ))?
    .query_row(
        params![
            filter.event,
            filter.actor,
            filter.outcome,
            filter.from,
            filter.to,
            bound
        ],
        |row| row.get(0),
    )
}

/// The event names that occur in the log, in order, at most `limit` (read from the
/// event index).
pub fn event_names(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT DISTINCT event FROM audit_events ORDER BY event LIMIT ?1")?
        .query_map([sql_limit(limit)], |row| row.get(0))?
        .collect()
}

/// The e-mails of the accounts among `ids` (the actors and targets of a page of
/// the log), by id, in one query; ids that are no account are left out.
pub fn account_emails(
    conn: &Connection,
    ids: &[&str],
) -> rusqlite::Result<HashMap<String, String>> {
    let ids = serde_json::Value::from(ids.to_vec()).to_string();
    conn.prepare_cached(
        "SELECT id, email FROM users WHERE id IN (SELECT value FROM json_each(?1))",
    )?
    .query_map([ids], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}
