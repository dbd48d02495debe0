//! `portcullis serve`: the production server.

use std::future::Future;
use std::process::ExitCode;

use super::{EXIT_FAILURE, exit_code_for, load_settings};
use crate::clock::Clock;
use crate::config::{ConfigSources, Findings, Mode, Settings, Status};
use crate::startup::Application;
use crate::state::AppState;
use crate::telemetry;

pub fn run(sources: ConfigSources) -> ExitCode {
    let (settings, findings) = match load_settings(&sources, Mode::Production) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    run_server(
        settings,
        &findings,
        |_| async { Ok(()) },
        |_| {},
        |app| println!("Portcullis listening on {}", app.base_url()),
    )
}

/// Starts the server on an actix system: logs the configuration warnings, builds
/// the services, runs `prepare` on them (the demo seeds data there), starts
/// listening with `routes` added (the demo's receiver), announces the address, and
/// serves until SIGTERM or SIGINT.
pub fn run_server<P, F, R>(
    settings: Settings,
    findings: &Findings,
    prepare: P,
    routes: R,
    announce: impl FnOnce(&Application),
) -> ExitCode
where
    P: FnOnce(AppState) -> F,
    F: Future<Output = anyhow::Result<()>>,
    R: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let _log_guard = telemetry::init(&settings.log);
    for warning in findings.with_status(Status::Warn) {
        tracing::warn!(variable = %warning.variable, "{}", warning.message);
    }
    actix_web::rt::System::new().block_on(async move {
        let started = async {
            let state = AppState::open(settings, Clock::system()).await?;
            prepare(state.clone()).await?;
            Application::from_state(state, routes).await
        };
        let app = match started.await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("portcullis: cannot start: {error:#}");
                return exit_code_for(&error);
            }
        };
        announce(&app);
        match app.run_until_signalled().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "server stopped with an error");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}
