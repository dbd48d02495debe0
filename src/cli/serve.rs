//! `portcullis serve`: the production server.

use std::process::ExitCode;

use super::{EXIT_FAILURE, load_settings};
use crate::config::{ConfigSources, Findings, Mode, Settings, Status};
use crate::startup::Application;
use crate::telemetry;

pub fn run(sources: ConfigSources) -> ExitCode {
    let (settings, findings) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    run_server(settings, &findings, |app| {
        println!("Portcullis listening on {}", app.base_url());
    })
}

/// Starts the server on an actix system, logs the configuration warnings, announces
/// the address, and serves until a shutdown signal.
pub fn run_server(
    settings: Settings,
    findings: &Findings,
    announce: impl FnOnce(&Application),
) -> ExitCode {
    telemetry::init(&settings.log);
    for warning in findings.with_status(Status::Warn) {
        tracing::warn!(variable = %warning.variable, "{}", warning.message);
    }
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("portcullis: cannot start: {error:#}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        announce(&app);
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "server stopped with an error");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}
