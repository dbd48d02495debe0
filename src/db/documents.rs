//! SQL for `documents`.

use super::invalid_column as invalid;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::UserId;
use crate::model::document::{Classification, Document};

const COLUMNS: &str =
    "id, owner_id, title, body, classification, attributes, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Document> {
    let id: String = row.get(0)?;
    let owner: String = row.get(1)?;
    let classification: String = row.get(4)?;
    let attributes: String = row.get(5)?;
    Ok(Document {
        id: id.parse().map_err(|_| invalid(0, "document id"))?,
        owner_id: UserId(owner.parse().map_err(|_| invalid(1, "owner id"))?),
        title: row.get(2)?,
        body: row.get(3)?,
        classification: Classification::parse(&classification)
            .ok_or_else(|| invalid(4, "classification"))?,
        attributes: serde_json::from_str::<Map<String, Value>>(&attributes)
            .map_err(|_| invalid(5, "attributes"))?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Document>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM documents WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

pub fn insert(conn: &Connection, d: &Document) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO documents (id, owner_id, title, body, classification, attributes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.id.to_string(),
        d.owner_id.to_string(),
        d.title,
        d.body,
        d.classification.as_str(),
        Value::Object(d.attributes.clone()).to_string(),
        d.created_at,
        d.updated_at,
    ])?;
    Ok(())
}

/// Writes an update — only over the exact row that was read (`old`), so a
/// concurrent change or delete is never silently undone or re-created. `false` when
/// the document changed or went meanwhile.
pub fn update(conn: &Connection, new: &Document, old: &Document) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE documents SET title = ?2, body = ?3, classification = ?4, attributes = ?5,
                 updated_at = ?6
             WHERE id = ?1 AND title = ?7 AND body = ?8 AND classification = ?9
               AND attributes = ?10 AND updated_at = ?11",
        )?
        .execute(params![
            new.id.to_string(),
            new.title,
            new.body,
            new.classification.as_str(),
            Value::Object(new.attributes.clone()).to_string(),
            new.updated_at,
            old.title,
            old.body,
            old.classification.as_str(),
            Value::Object(old.attributes.clone()).to_string(),
            old.updated_at,
        ])?
        == 1)
}

pub fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM documents WHERE id = ?1")?
        .execute([id.to_string()])?
        == 1)
}

/// Up to `limit` documents with an id after `after`, in id order.
pub fn page(
    conn: &Connection,
    after: Option<Uuid>,
    limit: usize,
) -> rusqlite::Result<Vec<Document>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM documents WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after.map(|a| a.to_string()), limit], from_row)?;
    rows.collect()
}
