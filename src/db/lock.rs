//! The database's lock file, `<DATABASE_PATH>.lock`: every process that opens the
//! database through [`super::Database`] (the server, and the commands that write)
//! holds a shared lock on it for as long as it has the database open, and
//! `portcullis restore` takes it exclusively. So a restore never swaps the file
//! under a running server (whose writes would then land in a file nobody reads),
//! and no server starts half-way through a restore.
//!
//! The locks are the kernel's (`flock`): they go with the process, so a server
//! killed with `-9` leaves no stale lock behind. The file itself stays; deleting
//! a lock file while others may open it would let two holders lock two files.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// A held lock on the database's lock file; released when dropped.
#[derive(Debug)]
pub struct DatabaseLock {
    // Held only for its lock: closing the file releases it.
    _file: File,
}

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it in a way that excludes us.
    #[error(
        "{} is in use: {}",
        .database.display(),
        if *.exclusive_wanted {
            "a Portcullis server (or another portcullis command) has it open; stop it first"
        } else {
            "`portcullis restore` is replacing it; start again when the restore is over"
        }
    )]
    InUse {
        database: PathBuf,
        exclusive_wanted: bool,
    },
    #[error("cannot open the lock file {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the lock file of the database at `database` lives: beside the real file,
/// so every spelling of one database (a symlink, a relative path) shares one lock.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = real_path(database).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// The database's real place: symlinks resolved (the file's, or its directory's
/// while the file does not exist yet); as given when neither resolves.
pub fn real_path(database: &Path) -> PathBuf {
    std::fs::canonicalize(database)
        .ok()
        .or_else(|| {
            let name = database.file_name()?;
            let dir = match database.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            std::fs::canonicalize(dir).ok().map(|dir| dir.join(name))
        })
        .unwrap_or_else(|| database.to_owned())
}

fn open(database: &Path) -> Result<File, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path_for(database);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| LockError::Open { path, source })
}

fn taken(
    database: &Path,
    exclusive_wanted: bool,
    attempt: Result<(), TryLockError>,
    file: File,
) -> Result<DatabaseLock, LockError> {
    match attempt {
        Ok(()) => Ok(DatabaseLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::InUse {
            database: database.to_owned(),
            exclusive_wanted,
        }),
        Err(TryLockError::Error(source)) => Err(LockError::Open {
            path: path_for(database),
            source,
        }),
    }
}

/// The lock every process that opens the database holds: many at once, never
/// beside a restore. Does not wait.
pub fn hold_shared(database: &Path) -> Result<DatabaseLock, LockError> {
    let file = open(database)?;
    let attempt = file.try_lock_shared();
    taken(database, false, attempt, file)
}

/// The lock a restore holds: only when nobody else has the database open. Does
/// not wait.
pub fn take_exclusive(database: &Path) -> Result<DatabaseLock, LockError> {
    let file = open(database)?;
    let attempt = file.try_lock();
    taken(database, true, attempt, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_coexist_and_keep_a_restore_out_until_the_last_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("p.db");
        let server = hold_shared(&database).expect("shared");
        let command = hold_shared(&database).expect("a second shared holder");
        assert!(matches!(
            take_exclusive(&database),
            Err(LockError::InUse {
                exclusive_wanted: true,
                ..
            })
        ));
        drop(server);
        assert!(take_exclusive(&database).is_err(), "one holder is left");
        drop(command);
        let restore = take_exclusive(&database).expect("nobody has it open");
        let refused = hold_shared(&database).expect_err("a restore is running");
        assert!(refused.to_string().contains("restore"), "{refused}");
        drop(restore);
        hold_shared(&database).expect("the restore is over");
    }

    #[test]
    fn a_symlink_to_the_database_shares_its_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("p.db");
        std::fs::write(&database, b"").expect("write");
        let alias = dir.path().join("alias.db");
        std::os::unix::fs::symlink(&database, &alias).expect("symlink");
        let _server = hold_shared(&alias).expect("shared");
        assert!(take_exclusive(&database).is_err(), "the real path is held");
        assert_eq!(path_for(&alias), path_for(&database));
    }
}
