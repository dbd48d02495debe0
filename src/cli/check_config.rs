//! `portcullis check-config`: every configuration check, one line each, a score, and
//! the state of the database and its audit chain. Exits 2 on any failure.

use std::process::ExitCode;

use super::EXIT_CONFIG;
use crate::audit::{AuditEvent, ChainReport, Outcome};
use crate::clock::Clock;
use crate::config::KeyPurpose;
use crate::config::{ConfigSources, DatabaseSettings, Findings, Mode, Settings, Status};
use crate::crypto::stored_secrets::{self, KeyCheckError, Keyring};
use crate::db::{Database, SCHEMA_VERSION};
use crate::state::audit_log;

pub fn run(sources: ConfigSources) -> ExitCode {
    let (settings, mut findings) = match Settings::load(&sources, Mode::Production) {
        Ok((settings, findings)) => (Some(settings), findings),
        Err(findings) => (None, findings),
    };
    // The database is checked whenever its path is usable, even if other checks
    // failed, so one run shows everything to fix.
    let database = settings.as_ref().map(|s| s.database.clone()).or_else(|| {
        let path_failed = findings
            .with_status(Status::Fail)
            .any(|f| f.variable == crate::config::variables::DATABASE_PATH);
        (!path_failed).then(|| DatabaseSettings {
            path: Settings::database_path(&sources),
            read_connections: 1,
        })
    });
    if let Some(database) = database {
        match super::block_on(check_database(database, settings.as_ref(), &findings)) {
            Ok(db_findings) => findings.extend(db_findings),
            Err(code) => return code,
        }
    }

    println!("Portcullis configuration check");
    for finding in findings.iter() {
        println!("  {:<4}  {finding}", finding.status.label());
    }
    println!(
        "Score: {}/100 ({} pass, {} warn, {} fail)",
        findings.score(),
        findings.count(Status::Pass),
        findings.count(Status::Warn),
        findings.count(Status::Fail)
    );
    if findings.has_failures() {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

/// Opens and migrates the database, verifies the audit chain, and records the check
/// itself as a `config.checked` event.
async fn check_database(
    settings: DatabaseSettings,
    config: Option<&Settings>,
    so_far: &Findings,
) -> Findings {
    const LABEL: &str = "database";
    let mut findings = Findings::default();
    let db = match Database::open(&settings).await {
        Ok(db) => db,
        Err(error) => {
            findings.fail(LABEL, format!("cannot be opened or migrated ({error}); check DATABASE_PATH and the file's integrity"));
            return findings;
        }
    };
    if let Some(config) = config {
        findings.extend(check_keys(&db, config).await);
    }
    let audit = audit_log(&db, &Clock::system(), Default::default());
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
    let mut all = so_far.clone();
    all.extend(findings.clone());
    let outcome = if all.has_failures() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let event = AuditEvent::new("config.checked", outcome)
        .with_actor("system")
        .with_detail("score", all.score())
        .with_detail("pass", all.count(Status::Pass))
        .with_detail("warn", all.count(Status::Warn))
        .with_detail("fail", all.count(Status::Fail));
    if let Err(error) = audit.record(event).await {
        findings.fail(LABEL, format!("the audit log cannot be written ({error})"));
    }
    findings
}

/// Whether the configured keys open the secrets already stored (their canaries),
/// and whether any secret is still plaintext. Read-only: a missing canary is made
/// at the next start, not here.
async fn check_keys(db: &Database, settings: &Settings) -> Findings {
    let mut findings = Findings::default();
    let keyring = match Keyring::new(settings) {
        Ok(keyring) => keyring,
        // The key checks above already failed on this; nothing more to say.
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
