//! `portcullis audit verify`: walks the hash chain of an existing database, read-only.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_FAILURE;
use crate::audit::ChainReport;
use crate::audit::chain::verify_chain;
use crate::db;

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
