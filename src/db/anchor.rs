//! The anchor: a small file beside the database, `<DATABASE_PATH>.anchor`, holding
//! the newest audit event this server committed — its id and its hash. It is kept
//! outside the database on purpose, so that a database put back from an older copy
//! cannot bring back the anchor of its own time:
//!
//! - at start, a chain that does not hold the anchored event (or holds another one
//!   at that id) was rolled back or replaced: starting would revive what was ended
//!   since (sessions, revocations, locks), so start-up refuses;
//! - an anchor with no database beside it means the database that existed is gone:
//!   start-up refuses to create an empty one in its place.
//!
//! The file is rewritten after commits that moved the chain's head, by a thread of
//! its own (temporary file, fsync, rename), so a write never waits for it; it lags
//! the database by a few milliseconds at most, and a lagging anchor only means a
//! rollback to those last milliseconds goes unnoticed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

/// The audit chain's head, as the anchor file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The id of the newest audit event.
    pub event: i64,
    /// Its hash.
    pub hash: String,
}

impl Anchor {
    /// What a restore anchors while it puts a copy in place: no event has this id,
    /// so a plain start refuses the database until its sessions are ended.
    pub fn restore_pending() -> Self {
        Self {
            event: i64::MAX,
            hash: "restore in progress".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("cannot read the anchor {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the anchor {path} is not one this server wrote; move it away to start afresh")]
    Malformed { path: PathBuf },
}

/// Where the anchor of the database at `database` lives.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".anchor");
    PathBuf::from(name)
}

/// The anchor at `path`, if there is one.
pub fn read(path: &Path) -> Result<Option<Anchor>, AnchorError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| AnchorError::Malformed {
                path: path.to_owned(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AnchorError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// One anchor write at a time in this process: the writer's thread and a command
/// writing the anchor itself (`restore`) share the temporary file.
static WRITING: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// Writes the anchor: a temporary file beside it, synced, then renamed over it, so
/// a crash leaves the old anchor or the new one, never half of one.
pub fn write(path: &Path, anchor: &Anchor) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _one_at_a_time = WRITING.lock();
    let text = serde_json::to_vec(anchor).map_err(std::io::Error::other)?;
    // One temporary file per process: the server and a command may both write.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Feeds the anchor file from the database thread without making it wait: the
/// newest head is sent to a thread that writes it, skipping any overtaken meanwhile.
#[derive(Clone)]
pub struct AnchorWriter {
    heads: mpsc::Sender<Anchor>,
}

impl AnchorWriter {
    pub fn start(path: PathBuf) -> Self {
        let (heads, incoming) = mpsc::channel::<Anchor>();
        let spawned = std::thread::Builder::new()
            .name("portcullis-anchor".to_owned())
            .spawn(move || {
                while let Ok(mut head) = incoming.recv() {
                    // Only the newest matters.
                    while let Ok(newer) = incoming.try_recv() {
                        head = newer;
                    }
                    if let Err(error) = write(&path, &head) {
                        tracing::error!(%error, path = %path.display(), "cannot update the database anchor");
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the database anchor's writer");
        }
        Self { heads }
    }

    /// Records a new head (written shortly after, by the anchor's thread).
    pub fn publish(&self, head: Anchor) {
        // The thread ends only with the process; a send to it cannot fail before.
        let _ = self.heads.send(head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_round_trips_and_a_stranger_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_for(&dir.path().join("p.db"));
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("p.db.anchor")
        );
        assert_eq!(read(&path).expect("read"), None);
        let anchor = Anchor {
            event: 7,
            hash: "ab".repeat(32),
        };
        write(&path, &anchor).expect("write");
        assert_eq!(read(&path).expect("read"), Some(anchor));
        std::fs::write(&path, "not json").expect("write");
        assert!(matches!(read(&path), Err(AnchorError::Malformed { .. })));
    }
}
