//! Where the database lives and how many read connections it gets.
use std::path::{Path, PathBuf};

use super::variables as v;
use super::{Reader, default_of};

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    pub read_connections: usize,
}

impl Reader<'_> {
    pub(super) fn database(&mut self) -> Option<DatabaseSettings> {
        let path = PathBuf::from(
            self.raw
                .get(v::DATABASE_PATH)
                .unwrap_or(default_of(v::DATABASE_PATH)),
        );
        let path_ok = match ensure_writable_parent(&path) {
            Ok(()) => {
                self.findings.pass(
                    v::DATABASE_PATH,
                    format!("{} (directory writable)", path.display()),
                );
                true
            }
            Err(problem) => {
                self.findings.fail(v::DATABASE_PATH, problem);
                false
            }
        };
        let read_connections = self.number(v::DATABASE_READ_CONNECTIONS, 1, 64);
        path_ok.then_some(())?;
        Some(DatabaseSettings {
            path,
            read_connections: read_connections?,
        })
    }
}

/// Creates the database's directory if needed and proves it accepts a new file.
fn ensure_writable_parent(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; point it at a file such as {}/portcullis.db",
            path.display(),
            path.display()
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "directory {} cannot be created ({}); choose a writable location",
            dir.display(),
            e.kind()
        )
    })?;
    let probe = dir.join(format!(".portcullis-write-check-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "directory {} is not writable ({}); fix its permissions or choose another path",
                dir.display(),
                e.kind()
            )
        })
}
