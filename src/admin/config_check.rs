//! The configuration check's database part, shared by `portcullis check-config` and
//! the admin dashboard so that both show the same findings and the same score: the
//! configured keys open the secrets already stored, no plaintext secret is left
//! from an older system, and the audit chain is intact. Read-only: a missing key
//! canary is made at the next start, not here.

use crate::audit::{AuditLog, ChainReport};
use crate::config::{Findings, KeyPurpose, Settings};
use crate::crypto::stored_secrets::{self, KeyCheckError, Keyring};
use crate::db::{Database, SCHEMA_VERSION};

/// The label of the database's own findings.
pub const LABEL: &str = "database";

/// The findings about the stored data: the keys (when `settings` loaded) and the
/// audit chain.
pub async fn database_findings(
    db: &Database,
    audit: &AuditLog,
    settings: Option<&Settings>,
) -> Findings {
    let mut findings = Findings::default();
    if let Some(settings) = settings {
        findings.extend(check_keys(db, settings).await);
    }
    match audit.verify().await {
        Ok(ChainReport::Intact { events, .. }) => findings.pass(
            LABEL,
            format!("schema version {SCHEMA_VERSION}; audit chain intact ({events} events)"),
        ),
        Ok(ChainReport::Broken { at_id, reason, .. }) => findings.fail(
            LABEL,
            format!("audit chain broken at event {at_id}: {reason}; run `portcullis audit verify` and investigate"),
        ),
        Err(error) => findings.fail(LABEL, format!("audit log unreadable ({error})")),
    }
    findings
}

/// Whether the configured keys open the secrets already stored (their canaries),
/// and whether any secret is still plaintext.
async fn check_keys(db: &Database, settings: &Settings) -> Findings {
    let mut findings = Findings::default();
    let keyring = match Keyring::new(settings) {
        Ok(keyring) => keyring,
        // The key checks of the configuration already failed on this.
        Err(_) => return findings,
    };
    match stored_secrets::check_keys(db, &keyring, false).await {
        Ok(report) => {
            for purpose in KeyPurpose::ALL {
                let state = if report.canaries_created.contains(&purpose) {
                    "no secrets stored with it yet"
                } else {
                    "decrypts the stored secrets"
                };
                findings.pass(purpose.variable(), state.to_owned());
            }
            if report.legacy_rows() > 0 {
                let columns: Vec<String> = report
                    .legacy
                    .iter()
                    .map(|(column, rows)| format!("{column}: {rows}"))
                    .collect();
                findings.warn(
                    "stored secrets",
                    format!(
                        "plaintext secrets from an older system ({}); run `portcullis migrate-secrets`",
                        columns.join(", ")
                    ),
                );
            }
        }
        Err(KeyCheckError::Mismatch(problems)) => {
            for problem in problems {
                findings.fail(problem.variable, problem.to_string());
            }
        }
        Err(error) => findings.fail("stored secrets", format!("cannot be checked ({error})")),
    }
    findings
}
