//! `portcullis backup FILE`: a consistent copy of the database while the server
//! runs, through SQLite's online backup API (a read transaction pins one snapshot,
//! so writes meanwhile neither tear the copy nor restart it), with a progress bar.
//! The copy is then checked — `PRAGMA integrity_check`, the audit chain walked end
//! to end — and `FILE.json` beside it says what a restore needs to know: the schema
//! version, the audit head, when it was taken, and which keys must go with it (the
//! database holds only sealed secrets).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rusqlite::backup::{Backup, StepResult};
use serde_json::json;

use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::audit::ChainReport;
use crate::audit::chain::verify_chain;
use crate::clock::{Clock, rfc3339};
use crate::db;

/// Pages copied a step (4 KiB pages: 4 MiB a step).
const PAGES_PER_STEP: i32 = 1024;

/// The metadata file written beside a backup.
pub fn metadata_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Copies `database` into the new file `partial` through the online backup API,
/// with a progress bar named `label`, mode 0600. Also what `restore` stages a
/// backup with.
pub fn copy(database: &Path, partial: &Path, label: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let source =
        db::open_read_only(database).map_err(|e| format!("cannot open the database: {e}"))?;
    // One read transaction: every step reads the same snapshot.
    source
        .execute_batch("BEGIN; SELECT COUNT(*) FROM sqlite_schema;")
        .map_err(|e| format!("cannot start reading the database: {e}"))?;
    // Owner-only from the first byte, like the database (it holds password hashes
    // and the audit log); a new file, never one already there or a symlink.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| format!("cannot create {}: {}", partial.display(), e.kind()))?;
    let mut target = rusqlite::Connection::open(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let backup =
        Backup::new(&source, &mut target).map_err(|e| format!("cannot start the backup: {e}"))?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(&format!(
            "{label} [{{bar:40}}] {{pos}}/{{len}} pages ({{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    loop {
        let step = backup
            .step(PAGES_PER_STEP)
            .map_err(|e| format!("the backup failed: {e}"))?;
        let progress = backup.progress();
        bar.set_length(u64::try_from(progress.pagecount).unwrap_or(0));
        bar.set_position(u64::try_from(progress.pagecount - progress.remaining).unwrap_or(0));
        match step {
            StepResult::Done => break,
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            _ => return Err("the backup stopped for an unknown reason".to_owned()),
        }
    }
    bar.finish_and_clear();
    drop(backup);
    // A copy is one self-contained file: out of WAL mode, so opening it (to check
    // it, or read-only anywhere) leaves no -wal and -shm files beside it. The
    // server puts its database back into WAL mode when it opens it.
    target
        .query_row("PRAGMA journal_mode = DELETE", [], |row| {
            row.get::<_, String>(0)
        })
        .map_err(|e| format!("cannot finish the copy: {e}"))?;
    Ok(())
}

/// Checks a copy: integrity, the audit chain; returns (schema version, events, head).
pub fn check(path: &Path) -> Result<(i64, u64, Option<String>), String> {
    let conn = db::open_read_only(path).map_err(|e| format!("cannot open the copy: {e}"))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| format!("cannot check its integrity: {e}"))?;
    if integrity != "ok" {
        return Err(format!("its integrity check failed: {integrity}"));
    }
    let version: i64 = conn
        .query_row("SELECT user_version FROM pragma_user_version", [], |row| {
            row.get(0)
        })
        .map_err(|e| format!("cannot read its schema version: {e}"))?;
    match verify_chain(&conn, |n| eprintln!("  … {n} audit events verified")) {
        Ok(ChainReport::Intact { events, head }) => Ok((version, events, head)),
        Ok(ChainReport::Broken { at_id, reason, .. }) => Err(format!(
            "its audit chain is broken at event {at_id}: {reason}"
        )),
        Err(error) => Err(format!("cannot read its audit log: {error}")),
    }
}

pub fn run(database: &Path, target: &Path) -> ExitCode {
    if target.exists() || metadata_path(target).exists() {
        eprintln!(
            "backup: {} (or its .json) exists already; choose a new file",
            target.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut partial_name = target.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let _ = std::fs::remove_file(&partial);
    let checked = copy(database, &partial, "backup").and_then(|()| check(&partial));
    let (version, events, head) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            let _ = std::fs::remove_file(&partial);
            eprintln!("backup: {problem}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let metadata = json!({
        "format": 1,
        "created_at": rfc3339(Clock::system().now()),
        "portcullis": env!("CARGO_PKG_VERSION"),
        "schema_version": version,
        "audit_events": events,
        "audit_head": head,
        "keys": "The database holds only sealed secrets: keep JWT_SECRET_KEY, CREDENTIAL_ENCRYPTION_KEY and MFA_ENCRYPTION_KEY (and GATE_ASSERTION_KEY with the gate) with this backup, apart from it; without them the copy cannot be used.",
    });
    let written = serde_json::to_string_pretty(&metadata)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(metadata_path(target), text + "\n"))
        .and_then(|()| std::fs::rename(&partial, target));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        eprintln!("backup: cannot write the backup: {}", error.kind());
        return ExitCode::from(EXIT_FAILURE);
    }
    println!(
        "Backed up to {}: schema version {version}, {events} audit events intact (head {}). Keep the keys with it, apart.",
        target.display(),
        head.as_deref().unwrap_or("none")
    );
    ExitCode::SUCCESS
}
