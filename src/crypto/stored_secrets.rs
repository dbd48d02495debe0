//! Secrets at rest, across the whole database: the key ring (one secret box per
//! purpose), the startup key check against a canary, and the re-sealing passes behind
//! `portcullis migrate-secrets` and `portcullis rotate-keys`.

use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::config::KeyPurpose;
use crate::config::Settings;
use crate::crypto::secret_box::{Sealing, SecretBox, SecretBoxError};
use crate::db::sealed::{self, SEALED_COLUMNS, SealedColumn};
use crate::db::{Database, DbError};

/// What the canary holds; only whether it opens matters.
const CANARY_PLAINTEXT: &[u8] = b"portcullis key canary";

/// One secret box per purpose, built from the configured key lists.
#[derive(Clone, Debug)]
pub struct Keyring {
    mfa: SecretBox,
    credential: SecretBox,
}

impl Keyring {
    pub fn new(settings: &Settings) -> Result<Self, SecretBoxError> {
        Ok(Self {
            mfa: SecretBox::new(KeyPurpose::Mfa, &settings.mfa_keys)?,
            credential: SecretBox::new(KeyPurpose::Credential, &settings.credential_keys)?,
        })
    }

    pub fn for_purpose(&self, purpose: KeyPurpose) -> &SecretBox {
        match purpose {
            KeyPurpose::Mfa => &self.mfa,
            KeyPurpose::Credential => &self.credential,
        }
    }
}

/// One key list that does not open what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub variable: &'static str,
    /// Stored secrets of its purpose that no key in the list opens.
    pub rows: u64,
    /// Whether the list's check value (the canary) opens: if not, the key is simply
    /// wrong; if so, only some secrets were sealed with a key missing from the list.
    pub canary_opens: bool,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variable = self.variable;
        if self.canary_opens {
            write!(
                f,
                "{} stored secret(s) cannot be decrypted with the keys in {variable}. Add the key they were encrypted with to {variable} (after the first), start again, and run `portcullis rotate-keys`",
                self.rows
            )
        } else {
            write!(
                f,
                "{variable} cannot decrypt the secrets already stored in this database ({} stored secret(s) do not open). Set it to the key used before, or list the new key first and the old one after it (comma-separated) and run `portcullis rotate-keys`",
                self.rows
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The configured keys cannot open what is stored: starting would fail every
    /// login (or delivery) that needs a secret, so startup refuses instead. Every
    /// key list at fault is named, with its count.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; and "))]
    Mismatch(Vec<KeyProblem>),
    #[error(transparent)]
    Seal(#[from] SecretBoxError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<rusqlite::Error> for KeyCheckError {
    fn from(error: rusqlite::Error) -> Self {
        KeyCheckError::Database(DbError::Sqlite(error))
    }
}

/// The state of the stored secrets, as startup and `check-config` report it.
#[derive(Debug, Default)]
pub struct KeyReport {
    /// Purposes whose canary did not exist and was (or would be) created.
    pub canaries_created: Vec<KeyPurpose>,
    /// (column, rows) still holding legacy plaintext.
    pub legacy: Vec<(String, i64)>,
}

impl KeyReport {
    pub fn legacy_rows(&self) -> i64 {
        self.legacy.iter().map(|(_, n)| n).sum()
    }
}

/// Rows read per query while scanning.
const SCAN_BATCH: usize = 1000;

/// Checks every purpose's keys against its canary and against every stored secret
/// (opening one costs microseconds). A missing canary is sealed now with the first
/// key when `create_missing` and nothing stored contradicts the keys. Also counts
/// legacy plaintext rows.
pub async fn check_keys(
    db: &Database,
    keyring: &Keyring,
    create_missing: bool,
) -> Result<KeyReport, KeyCheckError> {
    let keyring = keyring.clone();
    if create_missing {
        db.write(move |tx| check_keys_on(tx, &keyring, true)).await
    } else {
        db.read(move |conn| check_keys_on(conn, &keyring, false))
            .await
    }
}

/// [`check_keys`] on a connection of the caller's: what `portcullis restore` asks
/// of a backup before putting it in place (read-only, so `create_missing` false).
pub fn check_keys_on(
    conn: &rusqlite::Connection,
    keyring: &Keyring,
    create_missing: bool,
) -> Result<KeyReport, KeyCheckError> {
    let mut report = KeyReport::default();
    let mut problems = Vec::new();
    for purpose in KeyPurpose::ALL {
        let sealer = keyring.for_purpose(purpose);
        let variable = purpose.variable();
        let canary = sealed::canary(conn, purpose)?;
        let canary_opens = canary
            .as_ref()
            .is_none_or(|value| sealer.open(value).is_ok());
        let mut unreadable = 0;
        for col in SEALED_COLUMNS.iter().filter(|c| c.purpose == purpose) {
            let mut legacy = 0;
            scan(conn, col, |_, value| {
                match sealer.open(value).map(|o| o.sealing) {
                    Ok(Sealing::Legacy) => legacy += 1,
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            })?;
            if legacy > 0 {
                report.legacy.push((col.label(), legacy));
            }
        }
        match (unreadable, canary.is_some(), canary_opens) {
            (0, true, true) => {}
            (0, false, _) => {
                if create_missing {
                    sealed::put_canary(conn, purpose, &sealer.seal(CANARY_PLAINTEXT)?)?;
                }
                report.canaries_created.push(purpose);
            }
            // No canary yet and nothing opens, or a canary that does not open:
            // the key is simply wrong.
            (rows, false, _) | (rows, true, false) => problems.push(KeyProblem {
                variable,
                rows,
                canary_opens: false,
            }),
            (rows, true, true) => problems.push(KeyProblem {
                variable,
                rows,
                canary_opens: true,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(KeyCheckError::Mismatch(problems));
    }
    Ok(report)
}

/// Calls `f` with every (key, value) of `col`, in key order, a batch at a time.
fn scan(
    conn: &rusqlite::Connection,
    col: &SealedColumn,
    mut f: impl FnMut(&str, &str),
) -> rusqlite::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let rows = sealed::batch(conn, col, after.as_deref(), SCAN_BATCH)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        let last = last.clone();
        for (key, value) in &rows {
            f(key, value);
        }
        after = Some(last);
    }
}

/// Which stored values a re-sealing pass rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResealMode {
    /// `migrate-secrets`: legacy plaintext only.
    MigratePlaintext,
    /// `rotate-keys`: legacy plaintext and everything sealed with an older key.
    RotateKeys,
}

impl ResealMode {
    fn event(self) -> &'static str {
        match self {
            ResealMode::MigratePlaintext => "secrets.migrated",
            ResealMode::RotateKeys => "secrets.rotated",
        }
    }
}

/// How far a pass has got, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What a pass did, per column.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealCount {
    pub column: String,
    pub examined: u64,
    pub resealed: u64,
    pub legacy_sealed: u64,
    /// Rows no configured key opens: left as they are, and reported.
    pub unreadable: u64,
}

/// What a whole pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    pub columns: Vec<ResealCount>,
    /// False when `max_rows` stopped the pass early: run it again to go on.
    pub complete: bool,
}

impl ResealReport {
    pub fn unreadable(&self) -> u64 {
        self.columns.iter().map(|c| c.unreadable).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Seal(#[from] SecretBoxError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<rusqlite::Error> for ResealError {
    fn from(error: rusqlite::Error) -> Self {
        ResealError::Database(DbError::Sqlite(error))
    }
}

/// Options of a pass.
#[derive(Debug, Clone, Copy)]
pub struct ResealOptions {
    pub mode: ResealMode,
    /// Rows per transaction.
    pub batch_size: usize,
    /// Stop after examining this many rows (spreading a long pass over several
    /// runs); `None` for all.
    pub max_rows: Option<u64>,
}

/// Re-seals stored secrets with the first key of their purpose, `batch_size` rows
/// per transaction. A pass stopped anywhere (interrupted, or by `max_rows`) can
/// simply be run again: committed batches are already under the first key and are
/// skipped. A row no configured key opens is left as it is, counted, and reported;
/// nothing is ever re-sealed from a value that did not open. Canaries are re-sealed
/// only by a complete rotation that found no such row, so the old key stays
/// required until every secret has moved. Every pass is audited, a failed one too.
pub async fn reseal_all(
    db: &Database,
    audit: &AuditLog,
    keyring: &Keyring,
    options: ResealOptions,
    mut progress: impl FnMut(Progress),
) -> Result<ResealReport, ResealError> {
    let total = db
        .read(|conn| {
            Ok::<_, DbError>(
                SEALED_COLUMNS
                    .iter()
                    .map(|col| sealed::count(conn, col))
                    .sum::<rusqlite::Result<i64>>()?,
            )
        })
        .await?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut report = ResealReport::default();
    let passed = run_pass(db, keyring, options, total, &mut report, &mut progress).await;
    let outcome = match (&passed, report.unreadable()) {
        (Ok(()), 0) => Outcome::Success,
        _ => Outcome::Failure,
    };
    let columns: Vec<serde_json::Value> = report
        .columns
        .iter()
        .map(|count| {
            serde_json::json!({
                "column": count.column,
                "examined": count.examined,
                "resealed": count.resealed,
                "plaintext_sealed": count.legacy_sealed,
                "unreadable": count.unreadable,
            })
        })
        .collect();
    let event = AuditEvent::new(options.mode.event(), outcome)
        .with_actor("system")
        .with_detail("columns", columns)
        .with_detail("complete", report.complete);
    let audited = audit.record(event).await;
    passed?;
    audited?;
    Ok(report)
}

async fn run_pass(
    db: &Database,
    keyring: &Keyring,
    options: ResealOptions,
    total: u64,
    report: &mut ResealReport,
    progress: &mut impl FnMut(Progress),
) -> Result<(), ResealError> {
    let batch_size = options.batch_size.max(1);
    let mut done = 0;
    progress(Progress { done, total });
    for col in SEALED_COLUMNS {
        report.columns.push(ResealCount {
            column: col.label(),
            ..ResealCount::default()
        });
        let mut after: Option<String> = None;
        loop {
            let limit = match options.max_rows {
                Some(max) if done >= max => return Ok(()),
                Some(max) => batch_size.min(usize::try_from(max - done).unwrap_or(batch_size)),
                None => batch_size,
            };
            let sealer = keyring.for_purpose(col.purpose).clone();
            let cursor = after.clone();
            let mode = options.mode;
            let batch = db
                .write(move |tx| reseal_batch(tx, col, &sealer, mode, cursor, limit))
                .await?;
            let Some(last) = batch.last_key else { break };
            after = Some(last);
            if let Some(count) = report.columns.last_mut() {
                count.examined += batch.examined;
                count.resealed += batch.resealed;
                count.legacy_sealed += batch.legacy_sealed;
                count.unreadable += batch.unreadable;
            }
            done += batch.examined;
            progress(Progress { done, total });
        }
    }
    report.complete = true;
    if options.mode == ResealMode::RotateKeys && report.unreadable() == 0 {
        reseal_canaries(db, keyring).await?;
    }
    Ok(())
}

struct BatchResult {
    last_key: Option<String>,
    examined: u64,
    resealed: u64,
    legacy_sealed: u64,
    unreadable: u64,
}

fn reseal_batch(
    tx: &rusqlite::Connection,
    col: &SealedColumn,
    sealer: &SecretBox,
    mode: ResealMode,
    after: Option<String>,
    batch_size: usize,
) -> Result<BatchResult, ResealError> {
    let rows = sealed::batch(tx, col, after.as_deref(), batch_size)?;
    let mut result = BatchResult {
        last_key: rows.last().map(|(key, _)| key.clone()),
        examined: rows.len() as u64,
        resealed: 0,
        legacy_sealed: 0,
        unreadable: 0,
    };
    let include_older_keys = mode == ResealMode::RotateKeys;
    for (key, value) in rows {
        let resealed = match sealer.reseal(&value, include_older_keys) {
            Ok(resealed) => resealed,
            Err(SecretBoxError::Undecryptable { .. }) => {
                result.unreadable += 1;
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        let Some((new, was)) = resealed else { continue };
        if sealed::replace(tx, col, &key, &value, &new)? {
            result.resealed += 1;
            result.legacy_sealed += u64::from(was == Sealing::Legacy);
        }
    }
    Ok(result)
}

/// After a complete rotation every canary is sealed with its purpose's first key,
/// so the older keys can be dropped from the configuration.
async fn reseal_canaries(db: &Database, keyring: &Keyring) -> Result<(), DbError> {
    let keyring = keyring.clone();
    db.write(move |tx| {
        for purpose in KeyPurpose::ALL {
            let sealer = keyring.for_purpose(purpose);
            let Some(value) = sealed::canary(tx, purpose)? else {
                continue;
            };
            // A canary no key opens was refused at startup; leave it for that check.
            if let Ok(Some((new, _))) = sealer.reseal(&value, true) {
                sealed::put_canary(tx, purpose, &new)?;
            }
        }
        Ok::<_, DbError>(())
    })
    .await
}
