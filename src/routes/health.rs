//! Liveness (`/health`, and `/health/live` by the usual name) and readiness
//! (`/health/ready`) probes. All are cheap and exempt from rate limits.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::problem::{ApiError, Problem};
use crate::state::AppState;

/// A readiness probe must answer quickly even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessStatus {
    /// `ready` when every dependency answered.
    pub status: &'static str,
    /// Each dependency and its state.
    pub database: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthStatus))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// Liveness by the name probes usually look for (`/health` answers the same).
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthStatus))
)]
pub async fn live_by_name() -> HttpResponse {
    live().await
}

/// Readiness: the database answers and its schema is the one this binary expects.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = ReadinessStatus),
        (status = 503, description = "The database cannot answer", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.readiness(READY_TIMEOUT).await {
        Ok(()) => Ok(HttpResponse::Ok().json(ReadinessStatus {
            status: "ready",
            database: "ok",
        })),
        Err(problem) => {
            tracing::error!(%problem, "not ready");
            Err(ApiError::Unavailable {
                reason: "The database is not answering. Please try again later.",
                retry_after_seconds: Some(5),
            })
        }
    }
}
