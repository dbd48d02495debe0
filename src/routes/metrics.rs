//! `GET /metrics`, served on the metrics listener only (`METRICS_BIND_ADDRESS`):
//! every metric in the Prometheus text format, with what is read at scrape time —
//! live sessions and the webhook outbox from the database, the limiters' overflow
//! counts from memory. A database reading that fails or takes too long is left
//! out (and counted), never waited for: a scrape answers within a few seconds
//! whatever the database does. One scrape reads the database at a time: a flood
//! of scrapes waits its turn instead of taking the read pool from the API.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::state::AppState;
use crate::telemetry::metrics::{CONTENT_TYPE, Readings};

/// How long a scrape waits for each database reading before leaving it out.
const READING_TIMEOUT: Duration = Duration::from_secs(2);

/// Held while a scrape reads the database (one per metrics listener).
#[derive(Default)]
pub struct ScrapeTurn(tokio::sync::Mutex<()>);

pub async fn scrape(state: web::Data<AppState>, turn: web::Data<ScrapeTurn>) -> HttpResponse {
    let my_turn = turn.0.lock().await;
    let (live_sessions, outbox_backlog) = tokio::join!(
        reading(
            &state,
            "live sessions",
            state.revocations.count_live_sessions()
        ),
        reading(&state, "webhook outbox backlog", state.webhooks.backlog()),
    );
    drop(my_turn);
    let readings = Readings {
        live_sessions,
        outbox_backlog,
        limiter_overflow: state.limits.overflow_totals(),
    };
    match state.metrics.encode(&readings) {
        Ok(text) => HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(text),
        Err(error) => {
            tracing::error!(%error, "the metrics could not be encoded");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("The metrics are unavailable. Please try again later.")
        }
    }
}

/// The value `read` gives within [`READING_TIMEOUT`]; `None` (logged, counted)
/// when it fails or takes longer.
async fn reading<E: Display>(
    state: &AppState,
    what: &'static str,
    read: impl Future<Output = Result<u64, E>>,
) -> Option<u64> {
    let failure = match tokio::time::timeout(READING_TIMEOUT, read).await {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {READING_TIMEOUT:?}"),
    };
    tracing::warn!(reading = what, error = %failure, "a metrics reading was left out");
    state.metrics.collection_failed();
    None
}
