//! Liveness and readiness probes. Both are cheap and exempt from rate limits.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbError, SCHEMA_VERSION};
use crate::error::{ApiError, Problem};
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
    let probe = state.db.read(|conn| {
        conn.query_row("SELECT user_version FROM pragma_user_version", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(DbError::from)
    });
    let unavailable = ApiError::Unavailable {
        reason: "The database is not answering. Please try again later.",
        retry_after_seconds: Some(5),
    };
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(version)) if version == SCHEMA_VERSION => {
            Ok(HttpResponse::Ok().json(ReadinessStatus {
                status: "ready",
                database: "ok",
            }))
        }
        Ok(Ok(version)) => {
            tracing::error!(
                found = version,
                expected = SCHEMA_VERSION,
                "database schema version mismatch"
            );
            Err(unavailable)
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "readiness: database error");
            Err(unavailable)
        }
        Err(_) => {
            tracing::error!(timeout = ?READY_TIMEOUT, "readiness: database timed out");
            Err(unavailable)
        }
    }
}
