//! Secrets at rest, across the whole database: the key ring (one secret box per
//! purpose), the startup key check against a canary, and the re-sealing passes behind
//! `portcullis migrate-secrets` and `portcullis rotate-keys`.

use crate::audit::{self, AuditEvent, Outcome};
use crate::config::Settings;
use crate::crypto::secret_box::{KeyPurpose, Sealing, SecretBox, SecretBoxError};
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

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The configured keys cannot open what is stored: starting would fail every
    /// login (or delivery) that needs a secret, so startup refuses instead.
    #[error(
        "{variable} cannot decrypt the secrets already stored in this database. Set it to the key used before, or list the new key first and the old one after it (comma-separated) and run `portcullis rotate-keys`"
    )]
    WrongKey { variable: &'static str },
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

/// Checks every purpose's keys against its canary. A missing canary is checked
/// against any sealed row instead and, when `create_missing`, sealed now with the
/// first key. Also counts legacy plaintext rows.
pub async fn check_keys(
    db: &Database,
    keyring: &Keyring,
    create_missing: bool,
) -> Result<KeyReport, KeyCheckError> {
    let keyring = keyring.clone();
    let work = move |conn: &rusqlite::Connection| {
        let mut report = KeyReport::default();
        for purpose in KeyPurpose::ALL {
            let sealer = keyring.for_purpose(purpose);
            let wrong = || KeyCheckError::WrongKey {
                variable: purpose.variable(),
            };
            match sealed::canary(conn, purpose)? {
                Some(value) => {
                    sealer.open(&value).map_err(|_| wrong())?;
                }
                None => {
                    for col in SEALED_COLUMNS.iter().filter(|c| c.purpose == purpose) {
                        if let Some(value) = sealed::any_sealed(conn, col)? {
                            sealer.open(&value).map_err(|_| wrong())?;
                        }
                    }
                    if create_missing {
                        let value = sealer.seal(CANARY_PLAINTEXT)?;
                        sealed::put_canary(conn, purpose, &value)?;
                    }
                    report.canaries_created.push(purpose);
                }
            }
        }
        for col in SEALED_COLUMNS {
            let legacy = sealed::count_legacy(conn, col)?;
            if legacy > 0 {
                report.legacy.push((col.label(), legacy));
            }
        }
        Ok::<_, KeyCheckError>(report)
    };
    if create_missing {
        db.write(move |tx| work(tx)).await
    } else {
        db.read(move |conn| work(conn)).await
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
}

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error("{column}, row {key}: {source}")]
    Unreadable {
        column: String,
        key: String,
        source: SecretBoxError,
    },
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<rusqlite::Error> for ResealError {
    fn from(error: rusqlite::Error) -> Self {
        ResealError::Database(DbError::Sqlite(error))
    }
}

/// Re-seals stored secrets with the first key of their purpose, `batch_size` rows
/// per transaction. A pass interrupted anywhere can simply be run again: committed
/// batches are already under the first key and are skipped. A row no configured key
/// opens stops the pass (nothing is ever re-sealed as plaintext); the batches
/// before it stay committed. The pass is audited.
pub async fn reseal_all(
    db: &Database,
    keyring: &Keyring,
    mode: ResealMode,
    batch_size: usize,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<ResealCount>, ResealError> {
    let batch_size = batch_size.max(1);
    let total = db
        .read(|conn| {
            Ok::<_, ResealError>(
                SEALED_COLUMNS
                    .iter()
                    .map(|col| sealed::count(conn, col))
                    .sum::<rusqlite::Result<i64>>()?,
            )
        })
        .await?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut done = 0;
    progress(Progress { done, total });
    let mut counts = Vec::new();
    for col in SEALED_COLUMNS {
        let mut count = ResealCount {
            column: col.label(),
            ..ResealCount::default()
        };
        let mut after: Option<String> = None;
        loop {
            let sealer = keyring.for_purpose(col.purpose).clone();
            let cursor = after.clone();
            let batch = db
                .write(move |tx| reseal_batch(tx, col, &sealer, mode, cursor, batch_size))
                .await?;
            let Some(last) = batch.last_key else { break };
            after = Some(last);
            count.examined += batch.examined;
            count.resealed += batch.resealed;
            count.legacy_sealed += batch.legacy_sealed;
            done += batch.examined;
            progress(Progress { done, total });
        }
        counts.push(count);
    }
    if mode == ResealMode::RotateKeys {
        reseal_canaries(db, keyring).await?;
    }
    let columns: Vec<serde_json::Value> = counts
        .iter()
        .map(|count| {
            serde_json::json!({
                "column": count.column,
                "examined": count.examined,
                "resealed": count.resealed,
                "plaintext_sealed": count.legacy_sealed,
            })
        })
        .collect();
    let event = AuditEvent::new(mode.event(), Outcome::Success)
        .with_actor("system")
        .with_detail("columns", columns);
    db.write(move |tx| audit::append(tx, &event)).await?;
    Ok(counts)
}

struct BatchResult {
    last_key: Option<String>,
    examined: u64,
    resealed: u64,
    legacy_sealed: u64,
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
    };
    let include_older_keys = mode == ResealMode::RotateKeys;
    for (key, value) in rows {
        let unreadable = |source| ResealError::Unreadable {
            column: col.label(),
            key: key.clone(),
            source,
        };
        let Some((new, was)) = sealer
            .reseal(&value, include_older_keys)
            .map_err(unreadable)?
        else {
            continue;
        };
        if sealed::replace(tx, col, &key, &value, &new)? {
            result.resealed += 1;
            result.legacy_sealed += u64::from(was == Sealing::Legacy);
        }
    }
    Ok(result)
}

/// After a rotation every canary is sealed with its purpose's first key, so the
/// older keys can be dropped from the configuration.
async fn reseal_canaries(db: &Database, keyring: &Keyring) -> Result<(), ResealError> {
    let keyring = keyring.clone();
    db.write(move |tx| {
        for purpose in KeyPurpose::ALL {
            let sealer = keyring.for_purpose(purpose);
            let Some(value) = sealed::canary(tx, purpose)? else {
                continue;
            };
            let unreadable = |source| ResealError::Unreadable {
                column: "secret_canaries.value".to_owned(),
                key: purpose.as_str().to_owned(),
                source,
            };
            if let Some((new, _)) = sealer.reseal(&value, true).map_err(unreadable)? {
                sealed::put_canary(tx, purpose, &new)?;
            }
        }
        Ok::<_, ResealError>(())
    })
    .await
}
