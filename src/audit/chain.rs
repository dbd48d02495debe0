//! The hash chain: `hash = SHA-256(previous hash || canonical content)`, so changing,
//! removing or reordering any stored event breaks the chain from that event on.
//! [`verify_chain`] walks it all and names the first broken link; [`tail_problem`] is
//! the quick check of its end run at every start.

use std::ops::ControlFlow;

use rusqlite::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::DbError;
use crate::db::audit_events::{self, AuditRow};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The bytes a row's hash covers: the previous hash, then every column but the hash
/// as a JSON array (JSON escaping makes the encoding unambiguous).
pub(super) fn chain_hash(prev_hash: &str, row: &AuditRow) -> String {
    let content = Value::Array(vec![
        Value::from(row.id),
        Value::from(row.occurred_at.as_str()),
        row.actor.as_deref().map_or(Value::Null, Value::from),
        row.ip.as_deref().map_or(Value::Null, Value::from),
        Value::from(row.event.as_str()),
        row.target.as_deref().map_or(Value::Null, Value::from),
        Value::from(row.outcome.as_str()),
        row.request_id.as_deref().map_or(Value::Null, Value::from),
        Value::from(row.details.as_str()),
    ]);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(content.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// Why the chain is broken at an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's content no longer matches its hash: it was edited.
    ContentAltered,
    /// The row does not chain to the row before it: rows were removed, inserted or
    /// reordered, or the row before was edited and re-hashed.
    LinkBroken,
    /// Ids jump: rows in between were removed.
    Gap { expected_id: i64 },
    /// Rows were removed from the end (SQLite once assigned a higher id).
    TailTruncated { highest_assigned_id: i64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::ContentAltered => write!(
                f,
                "its content does not match its hash (the event was edited)"
            ),
            Break::LinkBroken => write!(
                f,
                "it does not chain to the event before it (an event was removed, reordered, or edited and re-hashed)"
            ),
            Break::Gap { expected_id } => {
                write!(f, "event {expected_id} is missing (events were removed)")
            }
            Break::TailTruncated {
                highest_assigned_id,
            } => write!(
                f,
                "events up to id {highest_assigned_id} once existed (the newest events were removed)"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact {
        events: u64,
        head: Option<String>,
    },
    Broken {
        at_id: i64,
        reason: Break,
        verified: u64,
    },
}

/// Walks the whole chain; `progress` is called with the count every 100,000 events.
pub fn verify_chain(
    conn: &Connection,
    mut progress: impl FnMut(u64),
) -> Result<ChainReport, DbError> {
    let mut expected_prev = GENESIS_HASH.to_owned();
    let mut expected_id = 1_i64;
    let mut verified = 0_u64;
    let mut broken = None;
    audit_events::for_each_in_order(conn, |row| {
        let fault = if row.id != expected_id {
            Some(Break::Gap { expected_id })
        } else if row.prev_hash != expected_prev {
            Some(Break::LinkBroken)
        } else if chain_hash(&row.prev_hash, &row) != row.hash {
            Some(Break::ContentAltered)
        } else {
            None
        };
        if let Some(reason) = fault {
            broken = Some((row.id, reason));
            return ControlFlow::Break(());
        }
        verified += 1;
        if verified.is_multiple_of(100_000) {
            progress(verified);
        }
        expected_prev = row.hash;
        expected_id = row.id + 1;
        ControlFlow::Continue(())
    })?;
    if let Some((at_id, reason)) = broken {
        return Ok(ChainReport::Broken {
            at_id,
            reason,
            verified,
        });
    }
    if let Some(highest) = audit_events::highest_assigned_id(conn)?
        && highest >= expected_id
    {
        return Ok(ChainReport::Broken {
            at_id: expected_id,
            reason: Break::TailTruncated {
                highest_assigned_id: highest,
            },
            verified,
        });
    }
    Ok(ChainReport::Intact {
        events: verified,
        head: (verified > 0).then_some(expected_prev),
    })
}

/// A quick check of the chain's end, run at startup: the newest event matches its
/// hash and no newer event was removed. `None` when it is sound.
pub fn tail_problem(conn: &Connection) -> Result<Option<Break>, DbError> {
    let Some(last) = audit_events::last(conn)? else {
        return Ok(audit_events::highest_assigned_id(conn)?
            .filter(|&highest| highest > 0)
            .map(|highest_assigned_id| Break::TailTruncated {
                highest_assigned_id,
            }));
    };
    if chain_hash(&last.prev_hash, &last) != last.hash {
        return Ok(Some(Break::ContentAltered));
    }
    Ok(audit_events::highest_assigned_id(conn)?
        .filter(|&highest| highest > last.id)
        .map(|highest_assigned_id| Break::TailTruncated {
            highest_assigned_id,
        }))
}

/// What an exported stretch of the chain came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportReport {
    /// Every event chains to the one before and matches its hash: the stretch from
    /// `first_id` (chained to `anchor`) to `last_id` (whose hash is `head`).
    Intact {
        events: u64,
        first_id: i64,
        anchor: String,
        last_id: i64,
        head: String,
    },
    Empty,
    /// Line `line` (from 1) breaks the chain, or is not an event.
    Broken {
        line: u64,
        reason: String,
    },
}

/// Verifies an exported stretch of the chain on its own: ids consecutive, each event
/// chained to the one before, each matching its hash. The first event's
/// `prev_hash` is the anchor to compare with the live chain (the hash of the event
/// before it there); the last event's hash with the live head.
pub fn verify_rows(rows: impl IntoIterator<Item = Result<AuditRow, String>>) -> ExportReport {
    let mut first: Option<(i64, String)> = None;
    let mut last: Option<(i64, String)> = None;
    let mut events = 0_u64;
    for (index, row) in rows.into_iter().enumerate() {
        let line = index as u64 + 1;
        let row = match row {
            Ok(row) => row,
            Err(reason) => return ExportReport::Broken { line, reason },
        };
        if let Some((id, hash)) = &last {
            if row.id != id + 1 {
                return ExportReport::Broken {
                    line,
                    reason: format!("event {} is missing (events were removed)", id + 1),
                };
            }
            if &row.prev_hash != hash {
                return ExportReport::Broken {
                    line,
                    reason: Break::LinkBroken.to_string(),
                };
            }
        }
        if chain_hash(&row.prev_hash, &row) != row.hash {
            return ExportReport::Broken {
                line,
                reason: Break::ContentAltered.to_string(),
            };
        }
        first.get_or_insert_with(|| (row.id, row.prev_hash.clone()));
        last = Some((row.id, row.hash));
        events += 1;
    }
    match (first, last) {
        (Some((first_id, anchor)), Some((last_id, head))) => ExportReport::Intact {
            events,
            first_id,
            anchor,
            last_id,
            head,
        },
        _ => ExportReport::Empty,
    }
}
