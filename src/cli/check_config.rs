//! `portcullis check-config`: every configuration check, one line each, a score, and
//! the state of the database and its audit chain. Exits 2 on any failure.

use std::process::ExitCode;

use super::EXIT_CONFIG;
use crate::audit::{AuditEvent, AuditLog, ChainReport, Outcome};
use crate::config::{ConfigSources, DatabaseSettings, Findings, Mode, Settings, Status};
use crate::db::{Database, SCHEMA_VERSION};

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
        let db_findings =
            actix_web::rt::System::new().block_on(check_database(database, &findings));
        findings.extend(db_findings);
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
async fn check_database(settings: DatabaseSettings, so_far: &Findings) -> Findings {
    const LABEL: &str = "database";
    let mut findings = Findings::default();
    let db = match Database::open(&settings).await {
        Ok(db) => db,
        Err(error) => {
            findings.fail(LABEL, format!("cannot be opened or migrated ({error}); check DATABASE_PATH and the file's integrity"));
            return findings;
        }
    };
    let audit = AuditLog::new(db);
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
