//! `portcullis serve`: the production server.

use std::process::ExitCode;

use super::{EXIT_FAILURE, exit_code_for, load_settings};
use crate::config::{ConfigSources, Mode};
use crate::db::OpenOptions;
use crate::startup::{ServeError, run_server};

/// `accept_rollback`: start on a database older than its anchor (a restored
/// backup), ending every session in it.
pub fn run(sources: ConfigSources, accept_rollback: bool) -> ExitCode {
    let (settings, findings) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    exit_code(run_server(
        settings,
        OpenOptions {
            accept_rollback,
            ..OpenOptions::default()
        },
        &findings,
        |_| async { Ok(()) },
        |_| {},
        |app| println!("Portcullis listening on {}", app.base_url()),
    ))
}

/// The exit code of a served process: 0 after a clean stop; 2 when the keys cannot
/// open the stored secrets; 1 otherwise.
pub fn exit_code(served: Result<(), ServeError>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::Start(error)) => {
            eprintln!("portcullis: cannot start: {error:#}");
            exit_code_for(&error)
        }
        Err(ServeError::Run(_)) => ExitCode::from(EXIT_FAILURE),
    }
}
