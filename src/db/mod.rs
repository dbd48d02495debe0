//! Embedded SQLite: one writer connection and a small pool of read-only connections,
//! WAL mode, every query run on the blocking thread pool so the async executor never
//! waits on disk. SQL lives in one module per table.
//!
//! Pool: `deadpool::unmanaged` holds the already-opened connections. (deadpool-sqlite
//! was considered; it runs a recycle query on every checkout, an extra blocking-pool
//! round trip per query.)

pub mod anchor;
pub mod audit_events;
pub mod browser_sessions;
pub mod documents;
pub mod lock;
pub mod mfa;
mod migrations;
pub mod passkeys;
pub mod policies;
pub mod refresh_tokens;
pub mod revocations;
pub mod sealed;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use deadpool::unmanaged::Pool;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::config::DatabaseSettings;
use crate::telemetry::metrics::StorageMetrics;

pub use migrations::SCHEMA_VERSION;

/// A stored value that does not read as what its column holds (a row edited
/// outside Portcullis): an error naming the column, never a panic.
pub(crate) fn invalid_column(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("invalid {what}").into(),
    )
}

/// Makes storage failures `Unexpected` in an area's error enum (which must have
/// `Unexpected(anyhow::Error)`): the cause goes to the log and the caller gets the
/// generic answer. One line per area instead of the same two impls in each.
macro_rules! storage_failures_are_unexpected {
    ($($error:ty),* $(,)?) => {
        $(
            impl From<$crate::db::DbError> for $error {
                fn from(error: $crate::db::DbError) -> Self {
                    Self::Unexpected(anyhow::Error::new(error))
                }
            }

            impl From<rusqlite::Error> for $error {
                fn from(error: rusqlite::Error) -> Self {
                    Self::Unexpected(anyhow::Error::new($crate::db::DbError::Sqlite(error)))
                }
            }
        )*
    };
}
pub(crate) use storage_failures_are_unexpected;

/// How long a query waits for SQLite locks, and for a pooled connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection became free within {0:?}")]
    Busy(Duration),
    #[error("the database connection pool is closed")]
    Closed,
    #[error("a database task panicked or was cancelled")]
    TaskFailed,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrations: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database file: {0}")]
    Io(#[from] std::io::Error),
    #[error("journal mode is {0}, WAL is required")]
    NoWal(String),
    /// The file this process opened was deleted or replaced: nothing written now
    /// would be where the next start looks.
    #[error("the database file was deleted or replaced while open")]
    Lost,
    #[error(
        "{} is missing, but a database was kept there before ({} remembers it). Put the database back (a backup: `portcullis restore`), or, to start over with an empty one, delete {}",
        .path.display(), .anchor.display(), .anchor.display()
    )]
    Missing { path: PathBuf, anchor: PathBuf },
    #[error(
        "{} is not the database this server last wrote: its audit chain {found}, where the anchor ({}) remembers event {} with hash {}. It was restored from an older copy or replaced, which would bring back sessions, tokens and locks ended since. If that is intended (a restored backup), start once with `--accept-rollback`: every session ends and the rollback is audited. Otherwise put back the database this server last used",
        .path.display(), .anchor_path.display(), .anchored.event, .anchored.hash
    )]
    RolledBack {
        path: PathBuf,
        anchor_path: PathBuf,
        anchored: anchor::Anchor,
        /// What the database holds at the anchored id, in words.
        found: String,
    },
    #[error(transparent)]
    Anchor(#[from] anchor::AnchorError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
}

impl DbError {
    /// Whether the file is not a database SQLite can use (corrupt, or not SQLite at
    /// all): a problem with what `DATABASE_PATH` points at, so start-up exits 2.
    pub fn is_unusable_file(&self) -> bool {
        let code = match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => Some(e.code),
            DbError::Migration(rusqlite_migration::Error::RusqliteError {
                err: rusqlite::Error::SqliteFailure(e, _),
                ..
            }) => Some(e.code),
            _ => None,
        };
        matches!(
            code,
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }

    /// Whether this is the storage being unavailable (busy, closed, failing, gone)
    /// rather than a fault in what was asked: the caller gets 503 and may retry.
    pub fn is_outage(&self) -> bool {
        match self {
            DbError::Busy(_) | DbError::Closed | DbError::Lost | DbError::Io(_) => true,
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::DatabaseCorrupt
                    | rusqlite::ErrorCode::NotADatabase
            ),
            _ => false,
        }
    }
}

/// How the database is opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Open a database whose audit chain lacks the anchored head (a restored
    /// backup), instead of refusing; [`Database::rolled_back`] then says so.
    pub accept_rollback: bool,
    /// The lock already held on the database (a restore's exclusive one); without
    /// it, opening takes a shared lock of its own.
    pub held_lock: Option<Arc<lock::DatabaseLock>>,
}

/// Which file was opened: a path that later names another file (or none) means
/// the database was deleted or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }
}

/// The file's identity and whether it was lost, and the last readiness answer.
struct FileWatch {
    identity: FileIdentity,
    lost: AtomicBool,
    /// The last readiness probe: when, and whether it passed (a failure's text).
    last_probe: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Why the database is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the schema version is {found}, this binary expects {SCHEMA_VERSION}")]
    Schema { found: i64 },
    #[error("the database file was deleted or replaced")]
    Lost,
    #[error("the database failed: {0}")]
    Failed(String),
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
}

/// How long a readiness answer is reused: probes, however many, cannot load the
/// server.
const PROBE_REUSE: Duration = Duration::from_millis(1500);
/// The tables a request needs; readiness reads a row of each, from the file.
const PROBED_TABLES: &[&str] = &[
    "users",
    "sessions",
    "revocations",
    "policies",
    "documents",
    "webhooks",
    "audit_events",
];

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    writer: Pool<Connection>,
    readers: Pool<Connection>,
    path: Arc<PathBuf>,
    watch: Arc<FileWatch>,
    anchor: anchor::AnchorWriter,
    /// The audit event last sent to the anchor.
    anchored_head: Arc<AtomicI64>,
    /// Set when a rollback was accepted at open: what the anchor remembered.
    rolled_back: Option<Arc<anchor::Anchor>>,
    /// Held while any clone is alive, so a restore waits for this process to let go.
    _lock: Arc<lock::DatabaseLock>,
    /// Write latency and failures, and the audit events commits carried.
    metrics: StorageMetrics,
    #[cfg(feature = "fault-injection")]
    faults: faults::Faults,
}

impl Database {
    /// Opens (creating if needed, mode 0600) and migrates the database, refusing a
    /// database that is missing where one was kept, or older than its anchor.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, DbError> {
        Self::open_with(settings, OpenOptions::default()).await
    }

    pub async fn open_with(
        settings: &DatabaseSettings,
        options: OpenOptions,
    ) -> Result<Self, DbError> {
        let path = settings.path.clone();
        let readers = settings.read_connections;
        let anchor_path = anchor::path_for(&path);
        let held_lock = options.held_lock.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let lock = match held_lock {
                Some(held) => held,
                None => Arc::new(lock::hold_shared(&path)?),
            };
            let anchored = anchor::read(&anchor_path)?;
            if anchored.is_some() && !path.exists() {
                return Err(DbError::Missing {
                    path,
                    anchor: anchor_path,
                });
            }
            create_private_file(&path)?;
            let identity = FileIdentity::of(&path)?;
            let mut writer = open_connection(&path, Role::Writer)?;
            migrations::run(&mut writer)?;
            let head = audit_events::last_link(&writer)?;
            let rolled_back = match &anchored {
                Some(anchored) => match rollback_seen(&writer, anchored)? {
                    None => None,
                    Some(_) if options.accept_rollback => Some(anchored.clone()),
                    Some(found) => {
                        return Err(DbError::RolledBack {
                            path,
                            anchor_path,
                            anchored: anchored.clone(),
                            found,
                        });
                    }
                },
                None => None,
            };
            let readers = (0..readers)
                .map(|_| open_connection(&path, Role::Reader))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>((
                writer,
                readers,
                identity,
                head,
                rolled_back,
                anchor_path,
                lock,
            ))
        })
        .await
        .map_err(|_| DbError::TaskFailed)??;
        let (writer_conn, reader_conns, identity, head, rolled_back, anchor_path, lock) = opened;
        let anchor = anchor::AnchorWriter::start(anchor_path);
        let anchored_head = Arc::new(AtomicI64::new(0));
        // From the first start on, the anchor holds the head (a database without
        // events yet anchors event 0). Not for a rollback being accepted: until the
        // commit that ends its sessions moves the head, the anchor keeps refusing
        // a plain start, so a failure in between revives nothing.
        let (event, hash) = head.unwrap_or((0, String::new()));
        if rolled_back.is_none() {
            anchor.publish(anchor::Anchor { event, hash });
        }
        anchored_head.store(event, Ordering::SeqCst);
        Ok(Self {
            writer: Pool::from(vec![writer_conn]),
            readers: Pool::from(reader_conns),
            path: Arc::new(settings.path.clone()),
            watch: Arc::new(FileWatch {
                identity,
                lost: AtomicBool::new(false),
                last_probe: tokio::sync::Mutex::new(None),
            }),
            anchor,
            anchored_head,
            rolled_back: rolled_back.map(Arc::new),
            _lock: lock,
            metrics: StorageMetrics::default(),
            #[cfg(feature = "fault-injection")]
            faults: faults::Faults::default(),
        })
    }

    /// Records write latency and failures, and the audit events each commit
    /// carried, into `metrics` (set before the handle is cloned).
    pub fn with_metrics(mut self, metrics: StorageMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// When a rollback was accepted at open: the head the anchor remembered.
    pub fn rolled_back(&self) -> Option<&anchor::Anchor> {
        self.rolled_back.as_deref()
    }

    /// Whether the path still names the file this process opened. Once it does not
    /// (deleted, or replaced by another file), writes are refused for good: what
    /// they wrote would not be where the next start looks.
    pub fn check_file(&self) -> bool {
        if self.watch.lost.load(Ordering::SeqCst) {
            return false;
        }
        let same = FileIdentity::of(&self.path).is_ok_and(|now| now == self.watch.identity);
        if !same {
            tracing::error!(path = %self.path.display(), "the database file was deleted or replaced; refusing writes");
            self.watch.lost.store(true, Ordering::SeqCst);
        }
        same
    }

    /// Sends a new audit head to the anchor, after a commit.
    fn anchor_head(&self, conn: &Connection) {
        match audit_events::last_link(conn) {
            Ok(Some((event, hash))) => {
                let before = self.anchored_head.swap(event, Ordering::SeqCst);
                if before != event {
                    // Ids grow by one per event: the commit carried the difference.
                    self.metrics
                        .audit_appended(u64::try_from(event - before).unwrap_or(0));
                    self.anchor.publish(anchor::Anchor { event, hash });
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the audit head for the anchor"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read-only connection.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.check_faults()?;
        self.check_read_faults()?;
        let conn = tokio::time::timeout(BUSY_TIMEOUT, self.readers.get())
            .await
            .map_err(|_| DbError::Busy(BUSY_TIMEOUT))?
            .map_err(|_| DbError::Closed)?;
        tokio::task::spawn_blocking(move || f(&conn))
            .await
            .map_err(|_| DbError::TaskFailed)?
    }

    /// Runs `f` inside `BEGIN IMMEDIATE` on the single writer; commits when `f`
    /// returns `Ok`, rolls back otherwise. IMMEDIATE takes the write lock up front,
    /// so a transaction never fails half-way on a lock upgrade.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.write_then(f, |_| {}).await
    }

    /// Runs `step` (which deletes at most `batch` rows and says how many) in one
    /// write transaction after another until a step deletes fewer: housekeeping in
    /// small transactions, the writer free for requests between them. Returns how
    /// many rows went in all.
    pub async fn delete_in_batches<E, F>(&self, batch: usize, step: F) -> Result<usize, E>
    where
        F: Fn(&Transaction<'_>, usize) -> Result<usize, E> + Clone + Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let mut total = 0;
        loop {
            let step = step.clone();
            let deleted = self.write(move |tx| step(tx, batch)).await?;
            total += deleted;
            if deleted < batch {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// As [`Database::write`], then runs `after_commit` on the committed value —
    /// on the blocking thread, right after the commit. It runs even if the caller
    /// stops waiting (a client that disconnects mid-request), so in-memory state
    /// that mirrors the database (the revocation cache) can never miss a commit.
    pub async fn write_then<T, E, F, A>(&self, f: F, after_commit: A) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let started = Instant::now();
        let ran = self.run_write(f, after_commit).await;
        self.metrics.wrote(started.elapsed(), ran.is_err());
        ran?
    }

    /// [`Database::write_then`]'s work: `Err` when the storage failed the write
    /// (no writer, the file lost, BEGIN or COMMIT failed), `Ok(Err)` when `f`
    /// refused and the transaction rolled back.
    async fn run_write<T, E, F, A>(&self, f: F, after_commit: A) -> Result<Result<T, E>, DbError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.check_faults()?;
        self.check_write_faults()?;
        if self.watch.lost.load(Ordering::SeqCst) {
            return Err(DbError::Lost);
        }
        let mut conn = tokio::time::timeout(BUSY_TIMEOUT, self.writer.get())
            .await
            .map_err(|_| DbError::Busy(BUSY_TIMEOUT))?
            .map_err(|_| DbError::Closed)?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = match f(&tx) {
                Ok(value) => value,
                Err(refused) => return Ok(Err(refused)),
            };
            tx.commit()?;
            after_commit(&value);
            db.anchor_head(&conn);
            Ok(Ok(value))
        })
        .await
        .map_err(|_| DbError::TaskFailed)?
    }

    /// Whether the database can serve what requests need, within `within`: the
    /// file is still the one opened; the serving connections answer with this
    /// binary's schema; and — reused for a second and a half, so probes cannot load
    /// the server — a fresh connection reads a row of every main table from the file
    /// itself, and a write commits (a rolled-back write never reaches the disk, so it
    /// could not tell a full disk or an unwritable journal).
    pub async fn readiness(&self, within: Duration) -> Result<(), NotReady> {
        if !self.check_file() {
            return Err(NotReady::Lost);
        }
        let version = self.read(|conn| {
            conn.query_row("SELECT user_version FROM pragma_user_version", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(DbError::from)
        });
        match tokio::time::timeout(within, version).await {
            Ok(Ok(version)) if version == SCHEMA_VERSION => {}
            Ok(Ok(found)) => return Err(NotReady::Schema { found }),
            Ok(Err(error)) => return Err(NotReady::Failed(error.to_string())),
            Err(_) => return Err(NotReady::TimedOut(within)),
        }
        let mut last = self.watch.last_probe.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < PROBE_REUSE
        {
            return answer.clone().map_err(NotReady::Failed);
        }
        let answer = match tokio::time::timeout(within, self.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(NotReady::Failed(text))) => Err(text),
            Ok(Err(other)) => return Err(other),
            Err(_) => Err(format!("no answer within {within:?}")),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer.map_err(NotReady::Failed)
    }

    async fn probe(&self) -> Result<(), NotReady> {
        let path = Arc::clone(&self.path);
        self.read(move |_| {
            let conn = open_read_only(&path)?;
            for table in PROBED_TABLES {
                conn.query_row(
                    &format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"),
                    [],
                    |r| r.get::<_, i64>(0),
                )?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .map_err(|e| NotReady::Failed(e.to_string()))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO health_probe (id, checked_at) VALUES (1, unixepoch())
                 ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                [],
            )?;
            Ok::<_, DbError>(())
        })
        .await
        .map_err(|e| NotReady::Failed(e.to_string()))
    }

    #[cfg(not(feature = "fault-injection"))]
    fn check_faults(&self) -> Result<(), DbError> {
        Ok(())
    }

    #[cfg(not(feature = "fault-injection"))]
    fn check_write_faults(&self) -> Result<(), DbError> {
        Ok(())
    }

    #[cfg(not(feature = "fault-injection"))]
    fn check_read_faults(&self) -> Result<(), DbError> {
        Ok(())
    }
}

/// What the database's chain holds where the anchor remembers its head, when that
/// is not the anchored event: `None` when the chain contains it.
fn rollback_seen(conn: &Connection, anchored: &anchor::Anchor) -> Result<Option<String>, DbError> {
    if anchored.event == 0 {
        return Ok(None);
    }
    Ok(match audit_events::hash_of(conn, anchored.event)? {
        Some(hash) if hash == anchored.hash => None,
        Some(_) => Some(format!("holds another event at id {}", anchored.event)),
        None => {
            let head = audit_events::last_link(conn)?.map_or(0, |(id, _)| id);
            Some(format!("ends at event {head}"))
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

/// The database file holds password hashes and audit records: owner-only from the
/// first byte. SQLite gives its -wal and -shm files the same mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: a committed logout (revocation) or audit record survives power loss.
    // See the README, "Storage", for the trade-off.
    conn.pragma_update(None, "synchronous", "FULL")?;
    match role {
        Role::Writer => {
            let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                let mode: String =
                    conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(DbError::NoWal(mode));
                }
            }
        }
        Role::Reader => conn.pragma_update(None, "query_only", "ON")?,
    }
    Ok(conn)
}

/// A read-only connection to an existing database, for offline commands such as
/// `audit verify` that must not create or migrate anything.
pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    if !path.is_file() {
        return Err(DbError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no database at {}", path.display()),
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

#[cfg(feature = "fault-injection")]
pub mod faults {
    //! Test-only switches that make queries (all, writes only, or reads only) fail as
    //! if the disk returned an I/O error, so the fail-closed paths can be proven
    //! against a real running app.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{Database, DbError};

    #[derive(Clone, Default)]
    pub struct Faults {
        all: Arc<AtomicBool>,
        writes: Arc<AtomicBool>,
        reads: Arc<AtomicBool>,
    }

    fn io_error() -> DbError {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some("injected fault".to_owned()),
        ))
    }

    impl Database {
        /// While on, every read and write fails with SQLITE_IOERR.
        pub fn inject_io_errors(&self, on: bool) {
            self.faults.all.store(on, Ordering::SeqCst);
        }

        /// While on, every write fails with SQLITE_IOERR (reads still work): a full
        /// disk, an unwritable journal.
        pub fn inject_write_errors(&self, on: bool) {
            self.faults.writes.store(on, Ordering::SeqCst);
        }

        /// While on, every read through the reader pool fails with SQLITE_IOERR
        /// (writes still work): a reader that cannot answer.
        pub fn inject_read_errors(&self, on: bool) {
            self.faults.reads.store(on, Ordering::SeqCst);
        }

        pub(super) fn check_read_faults(&self) -> Result<(), DbError> {
            if self.faults.reads.load(Ordering::SeqCst) {
                return Err(io_error());
            }
            Ok(())
        }

        pub(super) fn check_faults(&self) -> Result<(), DbError> {
            if self.faults.all.load(Ordering::SeqCst) {
                return Err(io_error());
            }
            Ok(())
        }

        pub(super) fn check_write_faults(&self) -> Result<(), DbError> {
            if self.faults.writes.load(Ordering::SeqCst) {
                return Err(io_error());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_temp() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = DatabaseSettings {
            path: dir.path().join("t.db"),
            read_connections: 2,
        };
        let db = Database::open(&settings).await.expect("open");
        (dir, db)
    }

    #[tokio::test]
    async fn pragmas_and_modes() {
        let (_dir, db) = open_temp().await;
        let (mode, fk, sync): (String, i64, i64) = db
            .write(|tx| {
                Ok::<_, DbError>((
                    tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                    tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                    tx.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                ))
            })
            .await
            .expect("pragmas");
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
        assert_eq!(sync, 2, "synchronous=FULL");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(db.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn readers_cannot_write_and_failed_writes_roll_back() {
        let (_dir, db) = open_temp().await;
        let err = db
            .read(|c| c.execute("CREATE TABLE x(a)", []).map_err(DbError::from))
            .await;
        assert!(err.is_err(), "reader connections are query_only");
        let failed: Result<(), DbError> = db
            .write(|tx| {
                tx.execute("CREATE TABLE y(a)", [])?;
                Err(DbError::Closed)
            })
            .await;
        assert!(failed.is_err());
        let exists: i64 = db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'y'",
                    [],
                    |r| r.get(0),
                )
                .map_err(DbError::from)
            })
            .await
            .expect("query");
        assert_eq!(exists, 0, "the failed transaction was rolled back");
    }
}
