//! `/admin/audit`: the log, filtered by event, actor, outcome and date, with the
//! chain's verification status; and its CSV export.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{Chrome, PageError, authorize, chrome, render, session};
use crate::accounts::service::RequestMeta;
use crate::audit::ChainReport;
use crate::db::DbError;
use crate::db::audit_events::{self, AuditFilter, AuditRow};
use crate::state::AppState;

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
fn filter(req: &HttpRequest) -> Result<(AuditFilter, String), PageError> {
    let pairs = crate::routes::api::query_pairs(req)?;
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

async fn search(
    state: &AppState,
    filter: &AuditFilter,
    limit: usize,
) -> Result<Vec<AuditRow>, PageError> {
    let filter = filter.clone();
    state
        .db
        .read(move |conn| Ok::<_, DbError>(audit_events::search(conn, &filter, limit)?))
        .await
        .map_err(|e| PageError::Unexpected(e.into()))
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "audit.view", None).await?;
    let (filter, query) = filter(&req)?;
    let rows = search(&state, &filter, 200).await?;
    let (chain, chain_ok) = match state.audit.verify().await {
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
    render(&AuditPage {
        chrome: chrome(&req, &state, &session, "audit"),
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

pub async fn csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "audit.export", None).await?;
    let (filter, _) = filter(&req)?;
    let rows = search(&state, &filter, 10_000).await?;
    // Taking the log away is itself recorded.
    let mut exported =
        crate::audit::AuditEvent::new("audit.exported", crate::audit::Outcome::Success)
            .with_actor(session.user.id.to_string())
            .with_ip(meta.ip)
            .with_detail("rows", rows.len())
            .with_detail("event_filter", filter.event.as_str())
            .with_detail("actor_filter", filter.actor.as_str())
            .with_detail("outcome_filter", filter.outcome.as_str())
            .with_detail("from", filter.from.as_str())
            .with_detail("to", filter.to.as_str());
    if let Some(id) = &meta.request_id {
        exported = exported.with_request_id(id.clone());
    }
    state
        .audit
        .record(exported)
        .await
        .map_err(|e| PageError::Unexpected(e.into()))?;
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
