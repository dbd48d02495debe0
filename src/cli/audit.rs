//! `portcullis audit verify` walks the hash chain of an existing database,
//! read-only, or of an export file on its own (`--file`); `portcullis audit export`
//! writes the events as JSON lines for a SIEM, each with its chain hashes, so the
//! export can be verified without the database and its ends compared with the live
//! chain.

use std::io::{BufRead, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::audit::ChainReport;
use crate::audit::chain::{ExportReport, verify_chain, verify_rows};
use crate::db;
use crate::db::audit_events::{self, AuditRow};

pub fn verify(database: &Path) -> ExitCode {
    let conn = match db::open_read_only(database) {
        Ok(conn) => conn,
        Err(error) => {
            eprintln!("audit verify: cannot open the database: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let report = verify_chain(&conn, |count| eprintln!("  … {count} events verified"));
    match report {
        Ok(ChainReport::Intact { events, head }) => {
            match head {
                Some(head) => {
                    println!("Audit chain intact: {events} events verified (head {head}).")
                }
                None => println!("Audit chain intact: the log is empty."),
            }
            ExitCode::SUCCESS
        }
        Ok(ChainReport::Broken {
            at_id,
            reason,
            verified,
        }) => {
            println!(
                "Audit chain BROKEN at event {at_id}: {reason}. The {verified} events before it verified."
            );
            ExitCode::from(EXIT_FAILURE)
        }
        Err(error) => {
            eprintln!("audit verify: cannot read the audit log: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The lower bound `--since` names, as the stored times compare: RFC 3339 in UTC
/// (a date means its start). `None` when it is neither.
fn since_bound(text: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok();
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    date.midnight().assume_utc().format(&Rfc3339).ok()
}

pub fn export(database: &Path, since: Option<&str>, output: Option<&Path>) -> ExitCode {
    let bound = match since.map(since_bound) {
        None => String::new(),
        Some(Some(bound)) => bound,
        Some(None) => {
            eprintln!("audit export: --since must be an RFC 3339 time or a date (YYYY-MM-DD)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let conn = match db::open_read_only(database) {
        Ok(conn) => conn,
        Err(error) => {
            eprintln!("audit export: cannot open the database: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let sink: Box<dyn Write> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(file),
            Err(error) => {
                eprintln!(
                    "audit export: cannot write {}: {}",
                    path.display(),
                    error.kind()
                );
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let mut written = 0_u64;
    let mut failure: Option<std::io::Error> = None;
    let walked = audit_events::for_each_since(&conn, &bound, |row| {
        let line = serde_json::to_string(&row).map_err(std::io::Error::other);
        match line.and_then(|line| writeln!(out, "{line}")) {
            Ok(()) => {
                written += 1;
                if written.is_multiple_of(100_000) {
                    eprintln!("  … {written} events written");
                }
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    });
    let flushed = out.flush();
    match (walked, failure.map_or(flushed, Err)) {
        (Ok(()), Ok(())) => {
            eprintln!("audit export: {written} events written");
            ExitCode::SUCCESS
        }
        (Err(error), _) => {
            eprintln!("audit export: cannot read the audit log: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
        (_, Err(error)) => {
            eprintln!("audit export: cannot write the export: {}", error.kind());
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

pub fn verify_file(path: &Path) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!(
                "audit verify: cannot read {}: {}",
                path.display(),
                error.kind()
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let rows = std::io::BufReader::new(file).lines().map(|line| {
        let line = line.map_err(|e| format!("cannot be read ({})", e.kind()))?;
        serde_json::from_str::<AuditRow>(&line)
            .map_err(|_| "is not an exported audit event".to_owned())
    });
    match verify_rows(rows) {
        ExportReport::Intact {
            events,
            first_id,
            anchor,
            last_id,
            head,
        } => {
            println!(
                "Export intact: {events} events, ids {first_id} to {last_id}; it chains to {anchor} and ends at {head}."
            );
            println!(
                "Compare the end with `portcullis audit verify` on the database (its head), or with a later export."
            );
            ExitCode::SUCCESS
        }
        ExportReport::Empty => {
            println!("Export empty: no events to verify.");
            ExitCode::SUCCESS
        }
        ExportReport::Broken { line, reason } => {
            println!("Export BROKEN at line {line}: {reason}.");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
