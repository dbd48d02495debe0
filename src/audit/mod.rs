//! The tamper-evident security log. Every event is appended in a write transaction
//! and chained to the one before it (see [`chain`]), so changing, removing or
//! reordering any stored event breaks the chain, and `portcullis audit verify` names
//! the first broken link.
//!
//! Other modules record events with [`AuditLog::record`], or with
//! [`AuditLog::append`] inside their own write transaction when the event must commit
//! together with a change. The log publishes and knows no reader: subscribers
//! registered at start-up (the webhook outbox) are offered each event inside the
//! same transaction, so a committed change is always announced and a rolled-back
//! one never is. Times come from the injected clock. Administrators read it a page
//! at a time ([`AuditLog::browse`]), with the accounts it names shown by e-mail.

pub mod actor;
pub mod chain;
pub mod request;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{Map, Value};

pub use actor::AdminActor;
pub use chain::{Break, ChainReport, GENESIS_HASH};
pub use request::RequestMeta;

use crate::clock::{Clock, rfc3339};
pub use crate::db::audit_events::{AuditFilter, AuditRow, Cursor};
use crate::db::{Database, DbError, audit_events, users};
use crate::model::Email;

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
    /// An event caused by a request, stamped with where it came from.
    pub fn of_request(event: impl Into<String>, outcome: Outcome, meta: &RequestMeta) -> Self {
        Self::new(event, outcome).with_request(meta)
    }

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

    /// Stamps where the request came from: its client address and its id.
    pub fn with_request(mut self, meta: &RequestMeta) -> Self {
        self.ip = meta.ip;
        self.request_id = meta.request_id.clone();
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

/// What the log tells a subscriber about an appended event, besides the event.
#[derive(Debug, Clone)]
pub struct Appended {
    pub id: i64,
    /// Unix seconds, from the injected clock.
    pub at: i64,
    /// The stored RFC 3339 form of `at`.
    pub occurred_at: String,
}

/// Hears every appended event, inside the transaction that appends it. An error
/// rolls that transaction back: the change and its event commit together or not
/// at all.
pub trait Subscriber: Send + Sync {
    fn offer(
        &self,
        conn: &Connection,
        event: &AuditEvent,
        appended: &Appended,
    ) -> Result<(), DbError>;
}

/// A page of the log as an administrator reads it: newest first, whether more
/// events match on either side, and who the accounts it names are.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub rows: Vec<AuditRow>,
    pub has_older: bool,
    pub has_newer: bool,
    /// The e-mails of the accounts the rows name as actor or target, by id.
    pub emails: HashMap<String, String>,
}

/// `filter` with an e-mail as the actor replaced by the id of its account: actors
/// are stored as ids. Anything else (an id, `system`, `cli`, an unknown address)
/// stays as typed.
fn actor_resolved(conn: &Connection, mut filter: AuditFilter) -> Result<AuditFilter, DbError> {
    if filter.actor.contains('@')
        && let Ok(email) = Email::parse(&filter.actor)
        && let Some(account) = users::find_by_email(conn, &email)?
    {
        filter.actor = account.id.to_string();
    }
    Ok(filter)
}

/// The audit log service: cheap to clone, shared by every service that records.
#[derive(Clone)]
pub struct AuditLog {
    db: Database,
    clock: Clock,
    subscribers: Arc<[Arc<dyn Subscriber>]>,
}

impl AuditLog {
    /// A log with no subscribers; add them with [`AuditLog::subscribe`] at start-up,
    /// before any service takes a copy.
    pub fn new(db: Database, clock: Clock) -> Self {
        Self {
            db,
            clock,
            subscribers: Arc::from(Vec::new()),
        }
    }

    pub fn subscribe(self, subscriber: Arc<dyn Subscriber>) -> Self {
        let mut subscribers = self.subscribers.to_vec();
        subscribers.push(subscriber);
        Self {
            subscribers: Arc::from(subscribers),
            ..self
        }
    }

    /// Appends `event` to the chain inside the caller's write transaction and offers
    /// it to every subscriber there.
    pub fn append(&self, conn: &Connection, event: &AuditEvent) -> Result<i64, DbError> {
        // Never reuse an id SQLite once assigned: rows removed from the end stay a
        // visible gap instead of being papered over by new events.
        let highest = audit_events::highest_assigned_id(conn)?.unwrap_or(0);
        let (id, prev_hash) = match audit_events::last_link(conn)? {
            Some((last_id, last_hash)) => (last_id.max(highest) + 1, last_hash),
            None => (highest + 1, GENESIS_HASH.to_owned()),
        };
        let at = self.clock.now();
        let mut row = AuditRow {
            id,
            occurred_at: rfc3339(at),
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
        row.hash = chain::chain_hash(&row.prev_hash, &row);
        audit_events::insert(conn, &row)?;
        let appended = Appended {
            id,
            at,
            occurred_at: row.occurred_at,
        };
        for subscriber in self.subscribers.iter() {
            subscriber.offer(conn, event, &appended)?;
        }
        Ok(id)
    }

    /// Appends one event in its own transaction.
    pub async fn record(&self, event: AuditEvent) -> Result<i64, DbError> {
        let log = self.clone();
        self.db.write(move |tx| log.append(tx, &event)).await
    }

    pub async fn verify(&self) -> Result<ChainReport, DbError> {
        self.db.read(|conn| chain::verify_chain(conn, |_| {})).await
    }

    /// The newest events matching `filter`, at most `limit`.
    pub async fn search(
        &self,
        filter: AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRow>, DbError> {
        self.db
            .read(move |conn| {
                let filter = actor_resolved(conn, filter)?;
                Ok(audit_events::search(conn, &filter, limit)?)
            })
            .await
    }

    /// The page of at most `limit` events matching `filter` that starts at
    /// `cursor`, with the e-mails of the accounts it names (one query per page).
    pub async fn browse(
        &self,
        filter: AuditFilter,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Listing, DbError> {
        self.db
            .read(move |conn| {
                let filter = actor_resolved(conn, filter)?;
                let page = audit_events::page(conn, &filter, cursor, limit)?;
                let named: BTreeSet<&str> = page
                    .rows
                    .iter()
                    .flat_map(|row| [row.actor.as_deref(), row.target.as_deref()])
                    .flatten()
                    .collect();
                let emails = audit_events::account_emails(conn, &Vec::from_iter(named))?;
                Ok(Listing {
                    rows: page.rows,
                    has_older: page.has_older,
                    has_newer: page.has_newer,
                    emails,
                })
            })
            .await
    }

    /// The event names that occur in the log, in order, at most `limit`.
    pub async fn event_names(&self, limit: usize) -> Result<Vec<String>, DbError> {
        self.db
            .read(move |conn| Ok(audit_events::event_names(conn, limit)?))
            .await
    }

    /// Checks the chain's end and, if it was tampered with, says so loudly: an
    /// error log line and an `audit.chain_broken` event (which chains on, so the
    /// damage stays visible to `audit verify`).
    pub async fn check_tail(&self) -> Result<Option<Break>, DbError> {
        let problem = self.db.read(chain::tail_problem).await?;
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
    use std::ops::ControlFlow;

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
        let log = AuditLog::new(db.clone(), Clock::system());
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

    /// Writes what it hears into a table of its own, inside the appending
    /// transaction; refuses events named `refused`.
    struct Listener;

    impl Subscriber for Listener {
        fn offer(
            &self,
            conn: &Connection,
            event: &AuditEvent,
            appended: &Appended,
        ) -> Result<(), DbError> {
            if event.event == "refused" {
                return Err(DbError::Closed);
            }
            conn.execute(
                "INSERT INTO heard (event, at) VALUES (?1, ?2)",
                rusqlite::params![event.event, appended.at],
            )?;
            Ok(())
        }
    }

    fn count(db: &Database, sql: &str) -> i64 {
        let conn = Connection::open(db.path()).expect("open");
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    #[tokio::test]
    async fn subscribers_hear_what_commits_and_nothing_that_rolls_back() {
        let (_dir, db, _) = log_with(0).await;
        Connection::open(db.path())
            .expect("open")
            .execute_batch("CREATE TABLE heard (event TEXT NOT NULL, at INTEGER NOT NULL)")
            .expect("table");
        let clock = Clock::manual(1_800_000_000);
        let log = AuditLog::new(db.clone(), clock.clone()).subscribe(Arc::new(Listener));
        // A change that fails after its event was appended: neither stays.
        let appending = log.clone();
        let failed: Result<(), DbError> = db
            .write(move |tx| {
                appending.append(tx, &AuditEvent::new("doomed", Outcome::Success))?;
                Err(DbError::Closed)
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(count(&db, "SELECT count(*) FROM heard"), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM audit_events"), 0);
        // A subscriber that cannot take the event rolls the event back too.
        assert!(
            log.record(AuditEvent::new("refused", Outcome::Success))
                .await
                .is_err()
        );
        assert_eq!(count(&db, "SELECT count(*) FROM audit_events"), 0);
        // A committed event is heard once, at the injected clock's time.
        log.record(AuditEvent::new("kept", Outcome::Success))
            .await
            .expect("record");
        assert_eq!(
            count(&db, "SELECT count(*) FROM heard WHERE event = 'kept'"),
            1
        );
        assert_eq!(count(&db, "SELECT max(at) FROM heard"), 1_800_000_000);
        let conn = Connection::open(db.path()).expect("open");
        let stored: String = conn
            .query_row("SELECT occurred_at FROM audit_events", [], |r| r.get(0))
            .expect("row");
        assert_eq!(stored, rfc3339(1_800_000_000));
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
        let forged = chain::chain_hash(&row.prev_hash, &row);
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
    #[tokio::test]
    async fn browsing_pages_through_every_match_once_by_prefix() {
        let (_dir, _db, log) = log_with(7).await;
        log.record(AuditEvent::new("other.event", Outcome::Success).with_actor("cli"))
            .await
            .expect("record");
        let filter = AuditFilter {
            event: "test.".to_owned(),
            ..AuditFilter::default()
        };
        let ids = |listing: &Listing| listing.rows.iter().map(|r| r.id).collect::<Vec<_>>();
        let first = log
            .browse(filter.clone(), Cursor::Newest, 3)
            .await
            .expect("browse");
        assert_eq!(ids(&first), [7, 6, 5]);
        assert!(first.has_older && !first.has_newer);
        let second = log
            .browse(filter.clone(), Cursor::Before(5), 3)
            .await
            .expect("browse");
        assert_eq!(ids(&second), [4, 3, 2]);
        assert!(second.has_older && second.has_newer);
        let last = log
            .browse(filter.clone(), Cursor::Before(2), 3)
            .await
            .expect("browse");
        assert_eq!(ids(&last), [1]);
        assert!(!last.has_older && last.has_newer);
        let back = log
            .browse(filter.clone(), Cursor::After(4), 3)
            .await
            .expect("browse");
        assert_eq!(ids(&back), [7, 6, 5]);
        let exact = AuditFilter {
            event: "test.even".to_owned(),
            actor: "system".to_owned(),
            ..AuditFilter::default()
        };
        assert_eq!(log.search(exact, 100).await.expect("search").len(), 7);
        let wildcard = AuditFilter {
            event: "test_".to_owned(),
            ..AuditFilter::default()
        };
        assert!(log.search(wildcard, 100).await.expect("search").is_empty());
        assert_eq!(
            log.event_names(10).await.expect("names"),
            ["other.event", "test.event"]
        );
    }
}
