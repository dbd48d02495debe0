//! `/admin`: the configuration check and the state of things at a glance.

use actix_web::HttpResponse;
use askama::Template;

use crate::admin::AdminAction;
use crate::admin::overview::HourlyCounts;
use crate::config::Status;
use crate::http::admin_page::{AdminPage, Chrome, PageError};

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
    /// The scale's marks: (y, value), from 0 to the busiest hour.
    scale: Vec<(usize, usize)>,
    score: u8,
    /// (status, setting, finding)
    findings: Vec<(&'static str, String, String)>,
}

/// Left of the bars: the scale's numbers.
const SCALE_WIDTH: usize = 36;

/// 24 hourly bars ending with the current hour, scaled to the busiest, and the
/// scale's marks (0, half and the busiest hour's count).
fn bars(counts: &HourlyCounts, now: i64) -> (Vec<Bar>, usize, Vec<(usize, usize)>) {
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let mut scale = vec![(120, 0), (10, top)];
    if top >= 2 {
        scale.insert(1, (120 - (top / 2) * 110 / top, top / 2));
    }
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let height = count * 110 / top;
            let at = now - (23 - i as i64) * 3600;
            let hour = at.rem_euclid(86_400) / 3600;
            Bar {
                x: SCALE_WIDTH + i * 24 + 4,
                y: 120 - height,
                height,
                label: format!("{hour:02}:00"),
                count,
                show_label: i % 4 == 3,
            }
        })
        .collect();
    (bars, SCALE_WIDTH + 24 * 24 + 8, scale)
}

pub async fn page(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::DashboardView, None).await?;
    let state = &page.state;
    let overview = state.admin_overview.read().await?;
    let (bars, chart_width, scale) = bars(&overview.failed_logins_by_hour, overview.at);
    let all = state.admin_overview.config_findings(&state.settings).await;
    let findings = all
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
    page.render(&Dashboard {
        chrome: page.chrome("dashboard"),
        users: overview.users,
        locked: overview.locked,
        failed_logins: overview.failed_logins(),
        rate_limited: state.limits.denied_total(),
        revocations: overview.live_revocations,
        failing_webhooks: overview.failing_webhooks,
        bars,
        chart_width,
        scale,
        score: all.score(),
        findings,
    })
}
