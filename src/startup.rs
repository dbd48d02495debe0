//! Builds the running application: database, services, middleware, routes, listener.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::config::{Mode, Settings};
use crate::db::Database;
use crate::http::cors::cors;
use crate::http::json::JsonLimit;
use crate::http::request_context::RequestContext;
use crate::http::security_headers::SecurityHeaders;
use crate::routes;
use crate::state::AppState;
use crate::telemetry::RequestSpan;

/// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    tls: bool,
    state: AppState,
}

impl Application {
    /// Opens the database, binds the listener (port 0 picks a free port) and records
    /// `app.started`. An audit log that cannot be written stops startup.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_routes(settings, |_| {}).await
    }

    /// As [`Application::build`], with extra routes (tests mount probes this way).
    pub async fn build_with_routes<F>(settings: Settings, extra_routes: F) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let settings = Arc::new(settings);
        let db = Database::open(&settings.database).await?;
        let audit = AuditLog::new(db.clone());
        let state = AppState {
            settings: Arc::clone(&settings),
            db,
            audit,
        };

        let listener = TcpListener::bind(settings.http.bind_address)?;
        let local_addr = listener.local_addr()?;
        let data = web::Data::new(state.clone());
        let http = settings.http.clone();
        let json_limit = web::Data::new(JsonLimit(http.max_json_body_bytes));
        let factory_http = http.clone();
        let mut server = HttpServer::new(move || {
            let http = &factory_http;
            App::new()
                .app_data(data.clone())
                .app_data(json_limit.clone())
                .app_data(web::PayloadConfig::new(http.max_json_body_bytes))
                .configure(routes::configure)
                .configure(extra_routes.clone())
                .default_service(web::to(routes::not_found))
                .wrap(cors(&http.cors_allowed_origins))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(RequestContext::new(&http.trusted_proxies))
                .wrap(SecurityHeaders::new(http))
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
        if let Some(workers) = http.workers {
            server = server.workers(workers);
        }
        let server = match &http.tls {
            Some(tls) => server.listen_rustls_0_23(listener, (*tls.server_config).clone())?,
            None => server.listen(listener)?,
        }
        .run();

        state
            .audit
            .record(
                AuditEvent::new("app.started", Outcome::Success)
                    .with_actor("system")
                    .with_detail("address", local_addr.to_string())
                    .with_detail("tls", http.tls.is_some())
                    .with_detail(
                        "mode",
                        match settings.mode {
                            Mode::Production => "production",
                            Mode::Demo => "demo",
                        },
                    ),
            )
            .await?;
        tracing::info!(address = %local_addr, tls = http.tls.is_some(), "listening");

        Ok(Self {
            server,
            local_addr,
            tls: http.tls.is_some(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients use, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn database(&self) -> &Database {
        &self.state.db
    }

    /// Serves until SIGTERM/SIGINT (or the handle stops it), lets in-flight requests
    /// finish, then records `app.stopped`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        self.state
            .audit
            .record(AuditEvent::new("app.stopped", Outcome::Success).with_actor("system"))
            .await?;
        tracing::info!("stopped");
        Ok(())
    }
}
