//! `portcullis check-config`: every configuration check, one line each, a score, and
//! the state of the database and its audit chain. Exits 2 on any failure.

use std::process::ExitCode;

use super::EXIT_CONFIG;
use crate::admin::config_check::{LABEL, database_findings};
use crate::audit::{AuditEvent, Outcome};
use crate::clock::Clock;
use crate::config::{ConfigSources, DatabaseSettings, Findings, Mode, Settings, Status};
use crate::db::Database;
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
    let origins = Settings::secret_origins(&sources);
    if !origins.is_empty() {
        println!("Secrets (where each came from; never their values):");
        for (name, origin) in origins {
            println!("        {name}: {origin}");
        }
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

/// Opens and migrates the database, then its findings (keys, audit chain), and
/// records the check itself as a `config.checked` event.
async fn check_database(
    settings: DatabaseSettings,
    config: Option<&Settings>,
    so_far: &Findings,
) -> Findings {
    let db = match Database::open(&settings).await {
        Ok(db) => db,
        Err(error) => {
            let mut findings = Findings::default();
            findings.fail(LABEL, format!("cannot be opened or migrated ({error}); check DATABASE_PATH and the file's integrity"));
            return findings;
        }
    };
    let audit = audit_log(&db, &Clock::system(), Default::default());
    let mut findings = database_findings(&db, &audit, config).await;
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
