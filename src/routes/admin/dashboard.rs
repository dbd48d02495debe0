//! `/admin`: the configuration check and the state of things at a glance.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Chrome, PageError, authorize, chrome, clear_flash, render, session};
use crate::accounts::service::RequestMeta;
use crate::config::Status;
use crate::db::{DbError, stats};
use crate::state::AppState;

pub struct Bar {
    pub x: usize,
    pub y: usize,
    pub height: usize,
    pub label: String,
    pub count: usize,
    pub show_label: bool,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    users: i64,
    locked: i64,
    failed_logins: usize,
    rate_limited: u64,
    revocations: i64,
    failing_webhooks: i64,
    bars: Vec<Bar>,
    chart_width: usize,
    score: u8,
    /// (status, setting, finding)
    findings: Vec<(&'static str, String, String)>,
}

/// 24 hourly bars ending with the current hour, scaled to the busiest.
fn bars(times: &[String], now: OffsetDateTime) -> (Vec<Bar>, usize) {
    let mut counts = [0usize; 24];
    for time in times {
        if let Ok(at) = OffsetDateTime::parse(time, &Rfc3339) {
            let hours_ago = (now - at).whole_hours();
            if let Ok(ago) = usize::try_from(hours_ago)
                && ago < 24
            {
                counts[23 - ago] += 1;
            }
        }
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let height = count * 110 / top;
            let hour = (now - time::Duration::hours(23 - i as i64)).hour();
            Bar {
                x: i * 24 + 4,
                y: 120 - height,
                height,
                label: format!("{hour:02}:00"),
                count,
                show_label: i % 4 == 3,
            }
        })
        .collect();
    (bars, 24 * 24 + 8)
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "dashboard.view", None).await?;
    let now = state.clock.now();
    let wall =
        OffsetDateTime::from_unix_timestamp(now).map_err(|e| PageError::Unexpected(e.into()))?;
    let since = (wall - time::Duration::hours(24))
        .format(&Rfc3339)
        .map_err(|e| PageError::Unexpected(e.into()))?;
    let (users, locked, revocations, failing_webhooks, times) = state
        .db
        .read(move |conn| {
            Ok::<_, DbError>((
                stats::users(conn)?,
                stats::locked(conn, now)?,
                stats::live_revocations(conn, now)?,
                stats::failing_webhooks(conn)?,
                stats::failed_login_times(conn, &since)?,
            ))
        })
        .await
        .map_err(|e| PageError::Unexpected(e.into()))?;
    let (bars, chart_width) = bars(&times, wall);
    let findings = state
        .settings
        .findings
        .iter()
        .map(|f| {
            let status = match f.status {
                Status::Pass => "pass",
                Status::Warn => "warn",
                Status::Fail => "fail",
            };
            (status, f.variable.clone(), f.message.clone())
        })
        .collect();
    let chrome = chrome(&req, &state, &session, "dashboard");
    let shown = chrome.flash.is_some();
    let response = render(&Dashboard {
        chrome,
        users,
        locked,
        failed_logins: times.len(),
        rate_limited: state.limits.denied_total(),
        revocations,
        failing_webhooks,
        bars,
        chart_width,
        score: state.settings.findings.score(),
        findings,
    })?;
    Ok(clear_flash(response, shown))
}
