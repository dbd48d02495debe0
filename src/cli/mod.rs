//! The command implementations behind `main.rs`'s argument parsing. Each returns the
//! process exit code: 0 success, 1 runtime failure, 2 configuration refused.

pub mod audit;
pub mod backup;
pub mod check_config;
pub mod create_admin;
pub mod demo;
pub mod gate_config;
pub mod healthcheck;
pub mod keygen;
pub mod policies;
pub mod restore;
pub mod secrets;
pub mod serve;

use std::process::ExitCode;

use crate::config::{ConfigSources, Findings, Mode, Settings, Status};
use crate::crypto::stored_secrets::KeyCheckError;
use crate::db::DbError;

/// Exit code for a refused configuration (and for command-line misuse, as clap does).
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_FAILURE: u8 = 1;

/// Runs a command's async work to completion on a single-threaded runtime (the
/// server's own runtime is `startup::run_server`'s). A runtime that cannot start is
/// a failure of the command: exit 1, said on stderr.
pub fn block_on<F: std::future::Future>(work: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok(runtime.block_on(work)),
        Err(error) => {
            eprintln!("portcullis: cannot start the async runtime: {error}");
            Err(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// Loads settings, or prints one line per failed check on stderr and returns the
/// exit code 2. Messages name the variable and the fix, never a secret value.
pub fn load_settings(
    sources: &ConfigSources,
    mode: Mode,
) -> Result<(Settings, Findings), ExitCode> {
    Settings::load(sources, mode).map_err(|findings| {
        for finding in findings.with_status(Status::Fail) {
            eprintln!("config error: {finding}");
        }
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The exit code for a failure to open the services: 2 when the configuration or the
/// database's place is what is wrong (keys that cannot open the stored secrets; a
/// database missing where one was kept, or older than its anchor), 1 otherwise.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    let key_mismatch = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<KeyCheckError>(),
            Some(KeyCheckError::Mismatch(_))
        ) || matches!(
            cause.downcast_ref::<DbError>(),
            Some(DbError::Missing { .. } | DbError::RolledBack { .. } | DbError::Anchor(_))
        ) || cause
            .downcast_ref::<DbError>()
            .is_some_and(DbError::is_unusable_file)
    });
    ExitCode::from(if key_mismatch {
        EXIT_CONFIG
    } else {
        EXIT_FAILURE
    })
}
