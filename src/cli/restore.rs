//! `portcullis restore FILE`: puts a backup in the database's place, so that
//! nothing from after the backup can come back to life and nothing is lost by
//! mistake:
//!
//! - it refuses while a server (or any command) has the database open — the lock
//!   file every opener holds shared, taken here exclusively and kept until the end,
//!   so no server starts half-way through either;
//! - it checks the backup as `backup` checked it (integrity, the audit chain, the
//!   head `FILE.json` names), that this binary knows its schema, and that the
//!   configured keys open its sealed secrets — all before anything is touched;
//! - it keeps the replaced database beside it (`<DATABASE_PATH>.replaced-<time>`),
//!   copied through the online backup API so its write-ahead log comes along;
//! - it ends every session in the restored copy and audits the restore in one
//!   transaction, and anchors the new head: tokens handed out before the backup
//!   (or after it, for sessions the copy never knew) are refused from then on, and
//!   the next start needs no `--accept-rollback`.

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
    let database = settings.database.path.clone();
    let held = lock::take_exclusive(&database).map_err(|e| Refusal::failure(e.to_string()))?;
    eprintln!("checking {} …", backup.display());
    let (events, head) = check_backup(backup)?;
    check_keys(&settings, backup)?;
    let staged = beside(&database, ".restoring");
    remove_if_there(&staged)?;
    copy(backup, &staged, "staging").inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })?;
    let kept = if database.exists() {
        let kept = free_name(&database)?;
        copy(&database, &kept, "keeping the replaced database").inspect_err(|_| {
            let _ = std::fs::remove_file(&kept);
            let _ = std::fs::remove_file(&staged);
        })?;
        Some(kept)
    } else {
        None
    };
    // The old write-ahead log must not meet the new file: it is in the kept copy.
    for suffix in ["-wal", "-shm"] {
        remove_if_there(&beside(&database, suffix))?;
    }
    std::fs::rename(&staged, &database)
        .and_then(|()| sync_directory(&database))
        .map_err(|e| {
            format!(
                "cannot put the backup in place ({}); {}",
                e.kind(),
                undo_hint(kept.as_deref())
            )
        })?;
    let sessions_ended = block_on(seal_restore(settings, backup, Arc::new(held)))
        .map_err(|_| Refusal::failure("cannot start the async runtime"))?
        .map_err(|e| {
            Refusal::failure(format!(
                "the backup is in place, but ending its sessions failed: {e}; {}",
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

/// The backup's own check, held to what `FILE.json` says of it and to the schema
/// versions this binary knows.
fn check_backup(backup: &Path) -> Result<(u64, Option<String>), Refusal> {
    if !backup.is_file() {
        return Err(Refusal::failure(format!(
            "{} is not a file",
            backup.display()
        )));
    }
    let (version, events, head) = check(backup)
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
fn check_keys(settings: &Settings, backup: &Path) -> Result<(), Refusal> {
    let keyring = Keyring::new(settings).map_err(|e| Refusal {
        message: format!("the configured keys are not usable: {e}"),
        code: EXIT_CONFIG,
    })?;
    let conn = db::open_read_only(backup).map_err(|e| format!("cannot open the backup: {e}"))?;
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
            let ended = sessions::end_every(tx, now, "restored")?;
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
