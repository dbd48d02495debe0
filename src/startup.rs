//! Builds the running application: services, middleware, routes, listeners (the
//! API's, and the metrics' when `METRICS_BIND_ADDRESS` asks for one), and the
//! background work (limiter sweeps, revocation purges, webhook deliveries). The
//! wiring layer: the one place outside `http` and `routes` that knows actix.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, HttpServer, web};

use std::future::Future;

use crate::audit::{AuditEvent, Outcome};
use crate::clock::Clock;
use crate::config::{Findings, Mode, Settings, Status};
use crate::db::{Database, OpenOptions};
use crate::http::cors::cors;
use crate::http::json::BodyLimits;
use crate::http::rate_limit::RateLimit;
use crate::http::request_context::RequestContext;
use crate::http::security_headers::SecurityHeaders;
use crate::routes;
use crate::state::AppState;
use crate::telemetry;

/// Seconds in-flight requests get to finish on shutdown.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;
/// How often the rate limiters are swept (and overflow reported).
const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often the database file's identity is checked (deleted or replaced: writes
/// stop), and the stored policies for changes made outside this process (the
/// command-line break-glass, applied without a restart).
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Expired revocations are purged every this many sweeps (ten minutes).
const PURGE_EVERY_TICKS: u64 = 10;

pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    tls: bool,
    state: AppState,
    /// The metrics listener, when `METRICS_BIND_ADDRESS` turns it on.
    metrics: Option<MetricsListener>,
}

/// `GET /metrics` on an address of its own, apart from the API.
struct MetricsListener {
    server: Server,
    local_addr: SocketAddr,
}

impl MetricsListener {
    /// Serves `GET /metrics` on `listener`, and nothing else (404), on one worker.
    fn serve(listener: TcpListener, data: web::Data<AppState>) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr()?;
        let turn = web::Data::new(routes::metrics::ScrapeTurn::default());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(turn.clone())
                .service(routes::get("/metrics", routes::metrics::scrape))
                .default_service(web::to(HttpResponse::NotFound))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
        .listen(listener)?
        .run();
        Ok(Self { server, local_addr })
    }
}

impl Application {
    /// Opens the database, builds the services, binds the listener (port 0 picks a
    /// free port) and records `app.started`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Clock::system(), |_| {}).await
    }

    /// As [`Application::build`], with an injected clock and extra routes (tests
    /// mount probes this way).
    pub async fn build_with<F>(
        settings: Settings,
        clock: Clock,
        extra_routes: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let state = AppState::open(settings, clock).await?;
        Self::from_state(state, extra_routes).await
    }

    /// Serves already-built services (the demo seeds its data first).
    pub async fn from_state<F>(state: AppState, extra_routes: F) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let settings = &state.settings;
        let listener = TcpListener::bind(settings.http.bind_address)?;
        let local_addr = listener.local_addr()?;
        let http = settings.http.clone();
        let tls = http.tls.is_some();
        // Bound now, so an address taken stops startup before `app.started`; served
        // once the API is.
        let metrics_listener = match settings.metrics.bind_address {
            Some(address) => Some(TcpListener::bind(address).map_err(|error| {
                anyhow::anyhow!(
                    "cannot listen for metrics on {address} (METRICS_BIND_ADDRESS): {error}"
                )
            })?),
            None => None,
        };

        // Checked and recorded before the first connection is accepted: an audit log
        // that cannot be written stops startup.
        state.audit.check_tail().await?;
        state
            .audit
            .record(
                AuditEvent::new("app.started", Outcome::Success)
                    .with_actor("system")
                    .with_detail("address", local_addr.to_string())
                    .with_detail("tls", tls)
                    .with_detail(
                        "mode",
                        match settings.mode {
                            Mode::Production => "production",
                            Mode::Demo => "demo",
                        },
                    ),
            )
            .await?;

        let data = web::Data::new(state.clone());
        let metrics_data = data.clone();
        let mut server = HttpServer::new(move || app(data.clone(), extra_routes.clone()))
            // Signals are handled by `run_until_signalled`, so that SIGINT drains
            // in-flight requests like SIGTERM does (actix treats SIGINT as "stop now").
            .disable_signals()
            .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
        if let Some(workers) = http.workers {
            server = server.workers(workers);
        }
        let server = match &http.tls {
            Some(tls) => server.listen_rustls_0_23(listener, (*tls.server_config).clone())?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(address = %local_addr, tls, "listening");
        let metrics = metrics_listener
            .map(|listener| MetricsListener::serve(listener, metrics_data))
            .transpose()?;
        if let Some(metrics) = &metrics {
            tracing::info!(address = %metrics.local_addr, "serving metrics at /metrics");
        }
        Ok(Self {
            server,
            local_addr,
            tls,
            state,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `GET /metrics` is served, when the metrics listener is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr)
    }

    /// The base URL clients use, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn database(&self) -> &Database {
        self.state.database()
    }

    /// Stops the server: `graceful` lets in-flight requests finish first.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests (up to the
    /// grace period) and records `app.stopped`.
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (up to the
    /// grace period) and records `app.stopped`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let signals = actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown signal received; draining in-flight requests");
            handle.stop(true).await;
        });
        let result = self.run_until_stopped().await;
        signals.abort();
        result
    }

    /// Serves until the handle stops the server, then records `app.stopped`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let maintenance =
            actix_web::rt::spawn(maintain(self.state.clone(), LIMITER_SWEEP_INTERVAL));
        let deliveries =
            actix_web::rt::spawn(crate::webhooks::worker::run(self.state.webhooks.clone()));
        let watch = actix_web::rt::spawn(watch_the_store(self.state.clone(), WATCH_INTERVAL));
        let metrics = self.metrics.map(|metrics| {
            let handle = metrics.server.handle();
            (handle, actix_web::rt::spawn(metrics.server))
        });
        let served = self.server.await;
        // The metrics listener stops with the API (and after it: a scrape still
        // sees the last requests).
        if let Some((handle, metrics)) = metrics {
            handle.stop(true).await;
            if let Ok(Err(error)) = metrics.await {
                tracing::warn!(%error, "the metrics listener stopped with an error");
            }
        }
        maintenance.abort();
        watch.abort();
        // An attempt cut short here is leased, not lost: it is retried after restart.
        deliveries.abort();
        served?;
        self.state
            .audit
            .record(AuditEvent::new("app.stopped", Outcome::Success).with_actor("system"))
            .await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The application one worker serves: every route and, outermost first, the
/// security headers, the request context (id, client address, timing, log
/// fields), CORS and the rate limits. `benches/http.rs` drives it in-process.
pub fn app<F>(
    data: web::Data<AppState>,
    extra_routes: F,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let settings = &data.settings;
    let http = &settings.http;
    let json_limit = web::Data::new(BodyLimits {
        max_bytes: http.max_json_body_bytes,
        timeout: http.body_timeout,
    });
    App::new()
        .app_data(web::PayloadConfig::new(http.max_json_body_bytes))
        .app_data(json_limit)
        .configure(routes::configure)
        .configure(extra_routes)
        .default_service(web::to(routes::not_found))
        .wrap(RateLimit)
        .wrap(cors(&http.cors_allowed_origins))
        .wrap(RequestContext::new(
            &http.trusted_proxies,
            settings.log.requests,
            data.metrics.http().clone(),
        ))
        .wrap(SecurityHeaders::new(http))
        .app_data(data)
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when it is
/// first polled: a signal sent as soon as the address is announced is not missed.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match streams {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::error!(
                    "cannot listen for shutdown signals; stop the process with SIGKILL"
                );
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Every `every`: checks that the database file is still the one opened (writes
/// stop once it is not), and reloads the policies when the database holds a newer
/// generation than the live set, so a change made on the command line takes effect.
async fn watch_the_store(state: AppState, every: Duration) {
    let mut interval = actix_web::rt::time::interval(every);
    loop {
        interval.tick().await;
        if !state.database().check_file() {
            continue;
        }
        if let Err(error) = state.policies.reload_if_changed().await {
            tracing::warn!(%error, "cannot check the stored policies for changes");
        }
    }
}

/// Sweeps the limiters and reports overflow use: a warning in the log and a
/// `limits.overflow` audit event per class that used its overflow bucket since the
/// last sweep. The maintenance task runs this once a minute.
pub async fn sweep_limiters(state: &AppState) {
    for report in state.limits.sweep() {
        tracing::warn!(
            limiter = report.class.name(),
            hits = report.hits,
            "rate limiter key table full: newcomers share the overflow bucket"
        );
        let event = AuditEvent::new("limits.overflow", Outcome::Denied)
            .with_actor("system")
            .with_target(report.class.name())
            .with_detail("hits", report.hits);
        if let Err(error) = state.audit.record(event).await {
            tracing::error!(%error, "cannot audit limiter overflow");
        }
    }
}

/// Rows kept only for a while, deleted this many a transaction.
const PRUNE_BATCH: usize = 500;

/// Retention: delivered webhook deliveries older than `WEBHOOK_RETENTION_DAYS`,
/// and account sessions over for longer than their tokens can live, deleted in
/// small batches. The audit log is never pruned.
pub async fn prune_retained(state: &AppState) {
    match state.webhooks.prune_delivered(PRUNE_BATCH).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            "delivered webhook deliveries past retention deleted"
        ),
        Err(error) => tracing::warn!(%error, "webhook delivery pruning failed"),
    }
    match state.revocations.prune_sessions(PRUNE_BATCH).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            "sessions over for longer than their tokens live deleted"
        ),
        Err(error) => tracing::warn!(%error, "session pruning failed"),
    }
}

/// Periodic housekeeping, every `every` (a minute when serving): the rate limiters
/// drop refilled buckets and report overflow use (logged and audited); every tenth
/// round, expired revocations and spent refresh tokens are deleted, and what is
/// past its retention (see [`prune_retained`]).
pub async fn maintain(state: AppState, every: Duration) {
    let mut interval = actix_web::rt::time::interval(every);
    let mut ticks: u64 = 0;
    loop {
        interval.tick().await;
        sweep_limiters(&state).await;
        let malformed = telemetry::take_malformed_requests();
        if malformed > 0 {
            tracing::warn!(
                refused = malformed,
                "requests the HTTP parser refused (bad request lines or headers) since the last report"
            );
        }
        if ticks.is_multiple_of(PURGE_EVERY_TICKS) {
            match state.revocations.purge_expired().await {
                Ok(purged) if purged > 0 => {
                    tracing::info!(
                        purged,
                        "expired revocations and spent refresh tokens purged"
                    )
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "revocation purge failed"),
            }
            prune_retained(&state).await;
        }
        ticks += 1;
    }
}

/// Why [`run_server`] ended without a clean stop.
#[derive(Debug)]
pub enum ServeError {
    /// The services or the listener could not start.
    Start(anyhow::Error),
    /// The server stopped with an error.
    Run(anyhow::Error),
}

/// Starts the server on an actix system: logs the configuration warnings, builds
/// the services, runs `prepare` on them (the demo seeds data there), starts
/// listening with `routes` added (the demo's receiver), announces the address, and
/// serves until SIGTERM or SIGINT.
pub fn run_server<P, F, R>(
    settings: Settings,
    options: OpenOptions,
    findings: &Findings,
    prepare: P,
    routes: R,
    announce: impl FnOnce(&Application),
) -> Result<(), ServeError>
where
    P: FnOnce(AppState) -> F,
    F: Future<Output = anyhow::Result<()>>,
    R: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let _log_guard = telemetry::init(&settings.log);
    for warning in findings.with_status(Status::Warn) {
        tracing::warn!(variable = %warning.variable, "{}", warning.message);
    }
    actix_web::rt::System::new().block_on(async move {
        let started = async {
            let state = AppState::open_with(settings, Clock::system(), options).await?;
            prepare(state.clone()).await?;
            Application::from_state(state, routes).await
        };
        let app = started.await.map_err(ServeError::Start)?;
        let shutdown = shutdown_signal();
        announce(&app);
        app.run_until(shutdown).await.map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), "server stopped with an error");
            ServeError::Run(error)
        })
    })
}
