//! The tamper-evident security log. Every event is appended in a write transaction
//! with `hash = SHA-256(previous hash || canonical content)`, so changing, removing or
//! reordering any stored event breaks the chain from that event on, and
//! `portcullis audit verify` names the first broken link.
//!
//! Other modules record events with [`AuditLog::record`], or with [`append`] inside
//! their own write transaction when the event must commit together with a change.

use std::net::IpAddr;
use std::ops::ControlFlow;

use rusqlite::Connection;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::db::audit_events::{self, AuditRow};
use crate::db::{Database, DbError};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An event to record. Build it with [`AuditEvent::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub event: String,
    pub outcome: Outcome,
    pub actor: Option<String>,
    pub ip: Option<IpAddr>,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub details: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(event: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            event: event.into(),
            outcome,
            actor: None,
            ip: None,
            target: None,
            request_id: None,
            details: Map::new(),
        }
    }

    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Adds one detail. Values under secret-looking keys are replaced by
    /// `[redacted]` (see [`redact`]): details never hold secrets.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Keys whose values must never be stored, whatever a caller passes. Broad on
/// purpose: a redacted harmless value costs nothing, a stored secret costs a lot.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const FRAGMENTS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "authorization",
        "cookie",
        "credential",
        "token",
        "jwt",
        "bearer",
        "otp",
        "totp",
        "recovery",
        "backup",
        "apikey",
        "api_key",
        "private",
    ];
    FRAGMENTS.iter().any(|f| key.contains(f))
        || key == "key"
        || key.ends_with("_key")
        || key == "code"
        || key == "codes"
        || (key.ends_with("_code") || key.ends_with("_codes")) && key != "status_code"
}

/// Replaces secret-looking values, recursively.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(&k) {
                        Value::String("[redacted]".to_owned())
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// The bytes a row's hash covers: the previous hash, then every column but the hash
/// as a JSON array (JSON escaping makes the encoding unambiguous).
fn chain_hash(prev_hash: &str, row: &AuditRow) -> String {
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

/// Appends `event` to the chain inside the caller's write transaction.
pub fn append(conn: &Connection, event: &AuditEvent) -> Result<i64, DbError> {
    // Never reuse an id SQLite once assigned: rows removed from the end stay a
    // visible gap instead of being papered over by new events.
    let highest = audit_events::highest_assigned_id(conn)?.unwrap_or(0);
    let (id, prev_hash) = match audit_events::last_link(conn)? {
        Some((last_id, last_hash)) => (last_id.max(highest) + 1, last_hash),
        None => (highest + 1, GENESIS_HASH.to_owned()),
    };
    let occurred_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| DbError::Io(std::io::Error::other(e)))?;
    let mut row = AuditRow {
        id,
        occurred_at,
        actor: event.actor.clone(),
        ip: event.ip.map(|ip| ip.to_string()),
        event: event.event.clone(),
        target: event.target.clone(),
        outcome: event.outcome.as_str().to_owned(),
        request_id: event.request_id.clone(),
        details: redact(Value::Object(event.details.clone())).to_string(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = chain_hash(&row.prev_hash, &row);
    audit_events::insert(conn, &row)?;
    // Webhook events enter the outbox in this same transaction.
    crate::webhooks::events::offer(conn, event, &row.occurred_at)?;
    Ok(id)
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

/// The audit log service, shared through the application state.
#[derive(Clone)]
pub struct AuditLog {
    db: Database,
}

impl AuditLog {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Appends one event in its own transaction.
    pub async fn record(&self, event: AuditEvent) -> Result<i64, DbError> {
        self.db.write(move |tx| append(tx, &event)).await
    }

    pub async fn verify(&self) -> Result<ChainReport, DbError> {
        self.db.read(|conn| verify_chain(conn, |_| {})).await
    }

    /// Checks the chain's end and, if it was tampered with, says so loudly: an
    /// error log line and an `audit.chain_broken` event (which chains on, so the
    /// damage stays visible to `audit verify`).
    pub async fn check_tail(&self) -> Result<Option<Break>, DbError> {
        let problem = self.db.read(tail_problem).await?;
        if let Some(problem) = &problem {
            tracing::error!(%problem, "the audit log was tampered with; run `portcullis audit verify`");
            self.record(
                AuditEvent::new("audit.chain_broken", Outcome::Failure)
                    .with_actor("system")
                    .with_detail("problem", problem.to_string()),
            )
            .await?;
        }
        Ok(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;
    use serde_json::json;

    async fn log_with(events: usize) -> (tempfile::TempDir, Database, AuditLog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&DatabaseSettings {
            path: dir.path().join("a.db"),
            read_connections: 1,
        })
        .await
        .expect("open");
        let log = AuditLog::new(db.clone());
        for i in 0..events {
            log.record(
                AuditEvent::new("test.event", Outcome::Success)
                    .with_actor("system")
                    .with_detail("n", i),
            )
            .await
            .expect("record");
        }
        (dir, db, log)
    }

    /// Opens a side connection that, like an attacker with file access, drops the
    /// append-only triggers before tampering.
    fn tamper(db: &Database, sql: &str) {
        let conn = Connection::open(db.path()).expect("open");
        conn.execute_batch(&format!(
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; {sql}"
        ))
        .expect("tamper");
    }

    #[test]
    fn secrets_are_redacted_recursively() {
        let v = redact(json!({
            "password": "hunter2", "refresh_token": "abc", "status_code": 200,
            "nested": [{"client_secret": "x", "email": "a@b.c"}], "code": "123456",
            "backup_codes": ["a"], "recovery_codes": ["b"], "signing_key": "k", "key": "k",
            "totp_uri": "otpauth://x", "jwt": "e", "tokens": ["t"], "session_id": "s"
        }));
        for key in [
            "backup_codes",
            "recovery_codes",
            "signing_key",
            "key",
            "totp_uri",
            "jwt",
            "tokens",
        ] {
            assert_eq!(v[key], "[redacted]", "{key}");
        }
        assert_eq!(v["session_id"], "s");
        assert_eq!(v["password"], "[redacted]");
        assert_eq!(v["refresh_token"], "[redacted]");
        assert_eq!(v["status_code"], 200);
        assert_eq!(v["nested"][0]["client_secret"], "[redacted]");
        assert_eq!(v["nested"][0]["email"], "a@b.c");
        assert_eq!(v["code"], "[redacted]");
    }

    #[tokio::test]
    async fn intact_chain_verifies() {
        let (_dir, _db, log) = log_with(5).await;
        match log.verify().await.expect("verify") {
            ChainReport::Intact { events, head } => {
                assert_eq!(events, 5);
                assert!(head.is_some());
            }
            broken => panic!("unexpected {broken:?}"),
        }
    }

    #[tokio::test]
    async fn triggers_refuse_updates_and_deletes() {
        let (_dir, db, _log) = log_with(1).await;
        let conn = Connection::open(db.path()).expect("open");
        assert!(
            conn.execute("UPDATE audit_events SET outcome = 'failure'", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM audit_events", []).is_err());
    }

    #[tokio::test]
    async fn edited_row_is_found() {
        let (_dir, db, log) = log_with(5).await;
        tamper(
            &db,
            "UPDATE audit_events SET actor = 'mallory' WHERE id = 3;",
        );
        assert_eq!(
            log.verify().await.expect("verify"),
            ChainReport::Broken {
                at_id: 3,
                reason: Break::ContentAltered,
                verified: 2
            }
        );
    }

    #[tokio::test]
    async fn edited_and_rehashed_row_breaks_the_next_link() {
        let (_dir, db, log) = log_with(5).await;
        let conn = Connection::open(db.path()).expect("open");
        let mut row = None;
        audit_events::for_each_in_order(&conn, |r| {
            if r.id == 2 {
                row = Some(r);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .expect("read");
        let mut row = row.expect("row 2");
        row.actor = Some("mallory".to_owned());
        let forged = chain_hash(&row.prev_hash, &row);
        tamper(
            &db,
            &format!("UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE id = 2;"),
        );
        assert_eq!(
            log.verify().await.expect("verify"),
            ChainReport::Broken {
                at_id: 3,
                reason: Break::LinkBroken,
                verified: 2
            }
        );
    }

    #[tokio::test]
    async fn removed_rows_are_found() {
        let (_dir, db, log) = log_with(5).await;
        tamper(&db, "DELETE FROM audit_events WHERE id = 2;");
        assert!(matches!(
            log.verify().await.expect("verify"),
            ChainReport::Broken {
                at_id: 3,
                reason: Break::Gap { expected_id: 2 },
                ..
            }
        ));
        let (_dir, db, log) = log_with(5).await;
        tamper(&db, "DELETE FROM audit_events WHERE id >= 4;");
        assert!(matches!(
            log.verify().await.expect("verify"),
            ChainReport::Broken {
                at_id: 4,
                reason: Break::TailTruncated {
                    highest_assigned_id: 5
                },
                ..
            }
        ));
    }
}
