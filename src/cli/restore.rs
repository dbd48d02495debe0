//! `portcullis restore FILE`: puts a backup in the database's place, so that
//! nothing from after the backup can come back to life and nothing is lost by
//! mistake:
//!
//! - it refuses while a server (or any command) has the database open — the lock
//!   file every opener holds shared, taken here exclusively and kept until the end,
//!   so no server starts half-way through either;
//! - it stages the backup beside the database and checks the staged copy as
//!   `backup` checked it (integrity, the audit chain, the head `FILE.json` names),
//!   that this binary knows its schema, and that the configured keys open its
//!   sealed secrets — all before anything is moved;
//! - it points the anchor at no event before anything moves, so that whatever
//!   interrupts it, a plain start refuses the file in place until its sessions
//!   are ended (`serve --accept-rollback`);
//! - it keeps the replaced database (and its write-ahead log) beside it, renamed
//!   to `<DATABASE_PATH>.replaced-<time>`, which works for a corrupt one too;
//! - it ends every session in the restored copy, moves every account's token
//!   cut-off to now and audits the restore in one transaction, then anchors the new
//!   head: nothing handed out before the backup (or after it, for sessions the copy
//!   never knew) is honoured, and the next start needs no `--accept-rollback`.
//!
//! What it cannot tell is whether the backup is authentic: whoever can write where
//! backups are kept can hand it any database. Keep backups where only operators
//! write.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::backup::{check, copy, metadata_path};
use super::{EXIT_CONFIG, EXIT_FAILURE, block_on, load_settings};
use crate::audit::{AuditEvent, Outcome};
use crate::clock::{Clock, rfc3339};
use crate::config::{ConfigSources, Mode, Settings};
use crate::crypto::stored_secrets::{KeyCheckError, Keyring, check_keys_on};
use crate::db::{self, Database, DbError, OpenOptions, SCHEMA_VERSION, anchor, lock, sessions};
use crate::state::audit_log;

/// A refusal: what to say, and the exit code (2 when the configuration is what is
/// wrong for this backup, 1 otherwise).
struct Refusal {
    message: String,
    code: u8,
}

impl Refusal {
    fn failure(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_FAILURE,
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self::failure(message)
    }
}

/// What was done, for the closing line.
struct Restored {
    events: u64,
    head: Option<String>,
    sessions_ended: usize,
    kept: Option<PathBuf>,
}

pub fn run(sources: ConfigSources, backup: &Path, database: Option<PathBuf>) -> ExitCode {
    let (mut settings, _) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Some(database) = database {
        settings.database.path = database;
    }
    match restore(settings, backup) {
        Ok(done) => {
            let kept = match &done.kept {
                Some(kept) => format!("the replaced database is kept at {}", kept.display()),
                None => "there was no database to replace".to_owned(),
            };
            println!(
                "Restored {}: {} audit events intact (head {}), {} sessions ended, so no token from before comes back; {kept}. Start the server as usual.",
                backup.display(),
                done.events,
                done.head.as_deref().unwrap_or("none"),
                done.sessions_ended,
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            eprintln!("restore: {}", refusal.message);
            ExitCode::from(refusal.code)
        }
    }
}

fn restore(settings: Settings, backup: &Path) -> Result<Restored, Refusal> {
    let configured = settings.database.path.clone();
    // Files are moved where the database really is (DATABASE_PATH may be a
    // symlink); the anchor stays where the server looks for it.
    let database = lock::real_path(&configured);
    let held = lock::take_exclusive(&database).map_err(|e| Refusal::failure(e.to_string()))?;
    if !backup.is_file() {
        return Err(Refusal {
            message: format!("{} is not a file", backup.display()),
            code: EXIT_CONFIG,
        });
    }
    // Staged first, then the staged copy is what gets checked: the file that goes
    // in place is the one that passed.
    let staged = beside(&database, ".restoring");
    remove_if_there(&staged)?;
    eprintln!("checking {} …", backup.display());
    let checked = copy(backup, &staged, "staging")
        .map_err(|problem| {
            Refusal::failure(format!("{} is not usable: {problem}", backup.display()))
        })
        .and_then(|()| check_backup(backup, &staged))
        .and_then(|checked| check_keys(&settings, &staged).map(|()| checked));
    let (events, head) = checked.inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })?;
    let anchor_path = anchor::path_for(&configured);
    let kept = swap_in(&database, &staged, &anchor_path).inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })?;
    let sessions_ended = block_on(seal_restore(settings, backup, Arc::new(held)))
        .map_err(|_| Refusal::failure("cannot start the async runtime"))?
        .map_err(|e| {
            Refusal::failure(format!(
                "the backup is in place, but ending its sessions failed: {e}. A plain start is refused until `portcullis serve --accept-rollback` ends them; {}",
                undo_hint(kept.as_deref())
            ))
        })?;
    Ok(Restored {
        events,
        head,
        sessions_ended,
        kept,
    })
}

/// Puts `staged` in the database's place, the database it replaces (with its
/// write-ahead log) renamed aside — a rename, so a corrupt database is kept as
/// well as a sound one. Before anything moves, the anchor is pointed at no event:
/// whatever stops the restore from here on, a plain start refuses the file in
/// place until its sessions are ended. On a failure the old files are put back.
fn swap_in(database: &Path, staged: &Path, anchor_path: &Path) -> Result<Option<PathBuf>, Refusal> {
    let previous_anchor = match std::fs::read(anchor_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Refusal::failure(format!(
                "cannot read the anchor {}: {}",
                anchor_path.display(),
                e.kind()
            )));
        }
    };
    anchor::write(anchor_path, &anchor::Anchor::restore_pending()).map_err(|e| {
        format!(
            "cannot write the anchor {}: {}",
            anchor_path.display(),
            e.kind()
        )
    })?;
    let kept = if database.exists() {
        Some(free_name(database)?)
    } else {
        None
    };
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut step = || -> std::io::Result<()> {
        if let Some(kept) = &kept {
            for suffix in ["", "-wal", "-shm"] {
                let from = beside(database, suffix);
                if from.exists() {
                    let to = beside(kept, suffix);
                    std::fs::rename(&from, &to)?;
                    moved.push((to, from));
                }
            }
        }
        std::fs::rename(staged, database)?;
        sync_directory(database)
    };
    if let Err(error) = step() {
        for (now_at, was_at) in moved.iter().rev() {
            let _ = std::fs::rename(now_at, was_at);
        }
        let _ = match &previous_anchor {
            Some(bytes) => std::fs::write(anchor_path, bytes),
            None => std::fs::remove_file(anchor_path),
        };
        return Err(Refusal::failure(format!(
            "cannot put the backup in place ({}); the database was left as it was",
            error.kind()
        )));
    }
    Ok(kept)
}

/// The backup's own check (on `staged`, the copy that goes in place), held to what
/// `FILE.json` beside the backup says of it and to the schema versions this
/// binary knows.
fn check_backup(backup: &Path, staged: &Path) -> Result<(u64, Option<String>), Refusal> {
    let (version, events, head) = check(staged)
        .map_err(|problem| format!("{} is not usable: {problem}", backup.display()))?;
    if version > SCHEMA_VERSION {
        return Err(Refusal::failure(format!(
            "{} has schema version {version}, newer than this Portcullis knows ({SCHEMA_VERSION}): restore it with the version that made it",
            backup.display()
        )));
    }
    match std::fs::read(metadata_path(backup)) {
        Ok(bytes) => {
            let metadata: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
                format!(
                    "{} is not the metadata `portcullis backup` writes",
                    metadata_path(backup).display()
                )
            })?;
            let described = metadata["audit_head"].as_str();
            if described != head.as_deref() {
                return Err(Refusal::failure(format!(
                    "{} names the audit head {}, but the file ends at {}: it describes another copy",
                    metadata_path(backup).display(),
                    described.unwrap_or("none"),
                    head.as_deref().unwrap_or("none")
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "  (no {} beside it: the file itself was checked)",
                metadata_path(backup).display()
            );
        }
        Err(e) => {
            return Err(Refusal::failure(format!(
                "cannot read {}: {}",
                metadata_path(backup).display(),
                e.kind()
            )));
        }
    }
    Ok((events, head))
}

/// The configured keys must open the backup's sealed secrets, or the restored
/// database would not start (and its MFA secrets and webhook credentials would be
/// lost for good).
fn check_keys(settings: &Settings, staged: &Path) -> Result<(), Refusal> {
    let keyring = Keyring::new(settings).map_err(|e| Refusal {
        message: format!("the configured keys are not usable: {e}"),
        code: EXIT_CONFIG,
    })?;
    let conn = db::open_read_only(staged).map_err(|e| format!("cannot open the backup: {e}"))?;
    match check_keys_on(&conn, &keyring, false) {
        Ok(_) => Ok(()),
        Err(KeyCheckError::Mismatch(problems)) => Err(Refusal {
            message: format!(
                "the configured keys do not open this backup's secrets: {}. Configure the keys kept with the backup",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; and ")
            ),
            code: EXIT_CONFIG,
        }),
        Err(other) => Err(Refusal::failure(format!(
            "cannot check the backup's secrets: {other}"
        ))),
    }
}

/// Opens the restored database (migrating it if it is older), ends every session
/// and audits the restore in one transaction, then anchors the new head.
async fn seal_restore(
    settings: Settings,
    backup: &Path,
    held: Arc<lock::DatabaseLock>,
) -> Result<usize, DbError> {
    let db = Database::open_with(
        &settings.database,
        OpenOptions {
            accept_rollback: true,
            held_lock: Some(held),
        },
    )
    .await?;
    let clock = Clock::system();
    let audit = audit_log(&db, &clock, Default::default());
    let now = clock.now();
    let event = AuditEvent::new("database.restored", Outcome::Success)
        .with_actor("cli")
        .with_detail(
            "backup",
            backup
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    let ended = db
        .write(move |tx| {
            let ended = sessions::end_everything(tx, now, "restored")?;
            audit.append(tx, &event.with_detail("sessions_ended", ended))?;
            Ok::<_, DbError>(ended)
        })
        .await?;
    // The anchor's own thread may not get to it before this process ends: write it
    // here, so the next start finds the restored chain's head.
    let path = settings.database.path.clone();
    let head = db
        .read(|conn| Ok::<_, DbError>(db::audit_events::last_link(conn)?))
        .await?;
    if let Some((event, hash)) = head {
        anchor::write(&anchor::path_for(&path), &anchor::Anchor { event, hash })?;
    }
    Ok(ended)
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<database>.replaced-<UTC time>`, or with `-2`, `-3`… after it if taken.
fn free_name(database: &Path) -> Result<PathBuf, Refusal> {
    let stamp: String = rfc3339(Clock::system().now())
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = beside(database, &format!(".replaced-{stamp}"));
    (1..100)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                beside(&base, &format!("-{n}"))
            }
        })
        .find(|candidate| !candidate.exists())
        .ok_or_else(|| Refusal::failure("too many replaced databases kept with this time"))
}

fn remove_if_there(path: &Path) -> Result<(), Refusal> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Refusal::failure(format!(
            "cannot remove {}: {}",
            path.display(),
            e.kind()
        ))),
    }
}

fn sync_directory(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

fn undo_hint(kept: Option<&Path>) -> String {
    match kept {
        Some(kept) => format!(
            "the database it replaced is kept at {}: move it back to undo",
            kept.display()
        ),
        None => "there was no database before".to_owned(),
    }
}
