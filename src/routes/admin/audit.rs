//! `/admin/audit`: the log, filtered by event, actor, outcome and date, with the
//! chain's verification status; and its CSV export.

use actix_web::HttpResponse;
use askama::Template;

use crate::admin::AdminAction;
use crate::audit::{AuditEvent, AuditFilter, AuditRow, ChainReport, Outcome};
use crate::http::admin_page::{AdminPage, Chrome, PageError};

pub struct Row {
    pub id: i64,
    pub occurred_at: String,
    pub event: String,
    pub outcome: String,
    pub actor: String,
    pub target: String,
    pub ip: String,
    pub details: String,
}

impl From<AuditRow> for Row {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            event: r.event,
            outcome: r.outcome,
            actor: r.actor.unwrap_or_default(),
            target: r.target.unwrap_or_default(),
            ip: r.ip.unwrap_or_default(),
            details: r.details,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    filter: AuditFilter,
    outcomes: Vec<String>,
    query: String,
    chain: String,
    chain_ok: bool,
    rows: Vec<Row>,
}

fn is_date(text: &str) -> bool {
    text.len() == 10
        && time::Date::parse(
            text,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok()
}

/// The filter from the query string; malformed dates are ignored.
fn filter(page: &AdminPage) -> Result<(AuditFilter, String), PageError> {
    let pairs = page.query()?;
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().chars().take(200).collect::<String>())
            .unwrap_or_default()
    };
    let date = |key: &str| Some(get(key)).filter(|d| is_date(d)).unwrap_or_default();
    let filter = AuditFilter {
        event: get("event"),
        actor: get("actor"),
        outcome: get("outcome"),
        from: date("from"),
        to: date("to"),
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("event", &filter.event)
        .append_pair("actor", &filter.actor)
        .append_pair("outcome", &filter.outcome)
        .append_pair("from", &filter.from)
        .append_pair("to", &filter.to)
        .finish();
    Ok((filter, query))
}

pub async fn list(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::AuditView, None).await?;
    let (filter, query) = filter(&page)?;
    let rows = page.state.audit.search(filter.clone(), 200).await?;
    let (chain, chain_ok) = match page.state.audit.verify().await {
        Ok(ChainReport::Intact { events, .. }) => (
            format!("Hash chain intact: {events} events verified."),
            true,
        ),
        Ok(ChainReport::Broken { at_id, reason, .. }) => (
            format!("Hash chain BROKEN at event {at_id}: {reason}."),
            false,
        ),
        Err(_) => ("The hash chain could not be verified.".to_owned(), false),
    };
    page.render(&AuditPage {
        chrome: page.chrome("audit"),
        filter,
        outcomes: ["success", "failure", "denied"].map(str::to_owned).to_vec(),
        query,
        chain,
        chain_ok,
        rows: rows.into_iter().map(Row::from).collect(),
    })
}

/// One CSV field: quoted, quotes doubled, and a leading `=`, `+`, `-`, `@`, tab or
/// carriage return defused so a spreadsheet does not run it as a formula.
fn csv_field(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

pub async fn csv(page: AdminPage) -> Result<HttpResponse, PageError> {
    let actor = page.authorize(AdminAction::AuditExport, None).await?;
    let (filter, _) = filter(&page)?;
    let rows = page.state.audit.search(filter.clone(), 10_000).await?;
    // Taking the log away is itself recorded.
    let exported = AuditEvent::of_request("audit.exported", Outcome::Success, &page.meta)
        .with_actor(actor.audit_name())
        .with_detail("rows", rows.len())
        .with_detail("event_filter", filter.event.as_str())
        .with_detail("actor_filter", filter.actor.as_str())
        .with_detail("outcome_filter", filter.outcome.as_str())
        .with_detail("from", filter.from.as_str())
        .with_detail("to", filter.to.as_str());
    page.state.audit.record(exported).await?;
    let mut out = String::from("id,occurred_at,event,outcome,actor,target,ip,request_id,details\n");
    for r in rows {
        let fields = [
            r.id.to_string(),
            r.occurred_at,
            r.event,
            r.outcome,
            r.actor.unwrap_or_default(),
            r.target.unwrap_or_default(),
            r.ip.unwrap_or_default(),
            r.request_id.unwrap_or_default(),
            r.details,
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"portcullis-audit.csv\"",
        ))
        .body(out))
}
