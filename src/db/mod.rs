//! Embedded SQLite: one writer connection and a small pool of read-only connections,
//! WAL mode, every query run on the blocking thread pool so the async executor never
//! waits on disk. SQL lives in one module per table.
//!
//! Pool: `deadpool::unmanaged` holds the already-opened connections. (deadpool-sqlite
//! was considered; it runs a recycle query on every checkout, an extra blocking-pool
//! round trip per query.)

pub mod admin_sessions;
pub mod audit_events;
pub mod documents;
pub mod mfa;
mod migrations;
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
use std::time::Duration;

use deadpool::unmanaged::Pool;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::config::DatabaseSettings;

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
}

/// Why the database is not ready to serve.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the schema version is {found}, this binary expects {SCHEMA_VERSION}")]
    Schema { found: i64 },
    #[error("the database failed: {0}")]
    Failed(DbError),
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    writer: Pool<Connection>,
    readers: Pool<Connection>,
    path: Arc<PathBuf>,
    #[cfg(feature = "fault-injection")]
    faults: faults::Faults,
}

impl Database {
    /// Opens (creating if needed, mode 0600) and migrates the database.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let path = settings.path.clone();
        let readers = settings.read_connections;
        let (writer_conn, reader_conns) = tokio::task::spawn_blocking(move || {
            create_private_file(&path)?;
            let mut writer = open_connection(&path, Role::Writer)?;
            migrations::run(&mut writer)?;
            let readers = (0..readers)
                .map(|_| open_connection(&path, Role::Reader))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>((writer, readers))
        })
        .await
        .map_err(|_| DbError::TaskFailed)??;
        Ok(Self {
            writer: Pool::from(vec![writer_conn]),
            readers: Pool::from(reader_conns),
            path: Arc::new(settings.path.clone()),
            #[cfg(feature = "fault-injection")]
            faults: faults::Faults::default(),
        })
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
        self.check_faults()?;
        let mut conn = tokio::time::timeout(BUSY_TIMEOUT, self.writer.get())
            .await
            .map_err(|_| DbError::Busy(BUSY_TIMEOUT))?
            .map_err(|_| DbError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            after_commit(&value);
            Ok(value)
        })
        .await
        .map_err(|_| DbError::TaskFailed)?
    }

    /// Whether the database answers within `within` with the schema this binary
    /// expects (the readiness probe).
    pub async fn readiness(&self, within: Duration) -> Result<(), NotReady> {
        let probe = self.read(|conn| {
            conn.query_row("SELECT user_version FROM pragma_user_version", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(DbError::from)
        });
        match tokio::time::timeout(within, probe).await {
            Ok(Ok(version)) if version == SCHEMA_VERSION => Ok(()),
            Ok(Ok(found)) => Err(NotReady::Schema { found }),
            Ok(Err(error)) => Err(NotReady::Failed(error)),
            Err(_) => Err(NotReady::TimedOut(within)),
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn check_faults(&self) -> Result<(), DbError> {
        Ok(())
    }
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
    //! Test-only switch that makes every query fail as if the disk returned an I/O
    //! error, so the fail-closed paths can be proven against a real running app.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{Database, DbError};

    #[derive(Clone, Default)]
    pub struct Faults(Arc<AtomicBool>);

    impl Database {
        /// While on, every read and write fails with SQLITE_IOERR.
        pub fn inject_io_errors(&self, on: bool) {
            self.faults.0.store(on, Ordering::SeqCst);
        }

        pub(super) fn check_faults(&self) -> Result<(), DbError> {
            if self.faults.0.load(Ordering::SeqCst) {
                return Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    Some("injected fault".to_owned()),
                )));
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
