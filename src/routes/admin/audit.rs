//! `/admin/audit`: the log, filtered by event (a name or a prefix such as `auth.`,
//! with the names the log holds offered), actor (an id, `system`, `cli`, or an
//! account's e-mail), outcome and date, with the chain's verification status. It is
//! read a page at a time, newest first: "Older" and "Newer" carry the filters and an
//! event id (keyset pagination). Accounts show as their e-mail, linked to their
//! page; a date that is not one is answered 422 beside its field. And its CSV
//! export of every match.

use std::collections::{BTreeSet, HashMap};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::admin::AdminAction;
use crate::audit::{AuditEvent, AuditFilter, AuditRow, ChainReport, Cursor, Listing, Outcome};
use crate::http::admin_page::{AdminPage, Chrome, PageError};
use crate::http::problem::ApiError;
use crate::validation::FieldError;

/// Events on one page.
const PAGE_SIZE: usize = 50;
/// Events in one CSV export.
const EXPORT_LIMIT: usize = 10_000;
/// Event names offered in the event filter's list.
const KNOWN_EVENTS: usize = 500;
/// Characters of the one-line summary of an event's details.
const SUMMARY_CHARS: usize = 80;

/// An actor or target: an account's e-mail with its id (for the link to its page),
/// or the stored text (`system`, `cli`, a session or policy id).
pub struct Party {
    pub text: String,
    pub user: Option<String>,
}

impl Party {
    fn of(stored: Option<String>, emails: &HashMap<String, String>) -> Self {
        let text = stored.unwrap_or_default();
        match emails.get(&text) {
            Some(email) => Self {
                text: email.clone(),
                user: Some(text),
            },
            None => Self { text, user: None },
        }
    }
}

pub struct Row {
    pub id: i64,
    pub when: String,
    pub event: String,
    pub outcome: String,
    pub actor: Party,
    pub target: Party,
    pub ip: String,
    /// One short line of the details, shown while they are collapsed; empty when
    /// there are none.
    pub summary: String,
    /// The details as indented JSON.
    pub details: String,
}

impl Row {
    fn of(r: AuditRow, emails: &HashMap<String, String>) -> Self {
        let (summary, details) = details_view(&r.details);
        Self {
            id: r.id,
            when: readable_time(&r.occurred_at),
            event: r.event,
            outcome: r.outcome,
            actor: Party::of(r.actor, emails),
            target: Party::of(r.target, emails),
            ip: r.ip.unwrap_or_default(),
            summary,
            details,
        }
    }
}

/// `2026-12-06 22:56:32 UTC` from a stored RFC 3339 time; the stored text as it is
/// when it is not one.
fn readable_time(stored: &str) -> String {
    OffsetDateTime::parse(stored, &Rfc3339)
        .ok()
        .and_then(|at| {
            at.to_offset(time::UtcOffset::UTC)
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                ))
                .ok()
        })
        .unwrap_or_else(|| stored.to_owned())
}

/// `text`, cut to `max` characters with an ellipsis when longer.
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The one-line summary (`key: value, …`) and the indented JSON of stored details;
/// both empty when there are none.
fn details_view(stored: &str) -> (String, String) {
    match serde_json::from_str::<Value>(stored) {
        Ok(Value::Object(map)) if map.is_empty() => (String::new(), String::new()),
        Ok(Value::Object(map)) => {
            let line = map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => format!("{key}: {text}"),
                    other => format!("{key}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let pretty = serde_json::to_string_pretty(&map).unwrap_or_else(|_| stored.to_owned());
            (shortened(&line, SUMMARY_CHARS), pretty)
        }
        _ => (shortened(stored, SUMMARY_CHARS), stored.to_owned()),
    }
}

/// The names the event filter offers: every family prefix (`auth.`) and every
/// name the log holds, in order.
fn offered_events(names: Vec<String>) -> Vec<String> {
    let families = names
        .iter()
        .filter_map(|name| name.find('.').map(|dot| name[..=dot].to_owned()));
    families
        .collect::<BTreeSet<_>>()
        .into_iter()
        .chain(names)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    filter: AuditFilter,
    outcomes: Vec<String>,
    events: Vec<String>,
    /// The filters as a query string, carried by the pager and the export.
    query: String,
    chain: String,
    chain_ok: bool,
    rows: Vec<Row>,
    /// What is wrong with the filters; no event is shown until it is fixed.
    errors: Vec<FieldError>,
    first_page: bool,
    /// The first page with these filters.
    newest: String,
    /// The older and newer pages, when there are any.
    older: Option<String>,
    newer: Option<String>,
}

impl AuditPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// A calendar date with a day after it (the `to` filter reads up to the end of
/// its day, so the last day there is would match nothing).
fn is_date(text: &str) -> bool {
    text.len() == 10
        && time::Date::parse(text, &format_description!("[year]-[month]-[day]"))
            .ok()
            .and_then(time::Date::next_day)
            .is_some()
}

/// The filters from the query string as typed (so the form shows them again), and
/// what is wrong with them.
fn filters(pairs: &[(String, String)]) -> (AuditFilter, Vec<FieldError>) {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().chars().take(200).collect::<String>())
            .unwrap_or_default()
    };
    let filter = AuditFilter {
        event: get("event"),
        actor: get("actor"),
        outcome: get("outcome"),
        from: get("from"),
        to: get("to"),
    };
    let mut errors = Vec::new();
    for (field, value) in [("from", &filter.from), ("to", &filter.to)] {
        if !value.is_empty() && !is_date(value) {
            errors.push(FieldError::new(
                field,
                "is not a date: use YYYY-MM-DD, e.g. 2026-12-06",
            ));
        }
    }
    // Both good dates are YYYY-MM-DD, so text order is date order.
    if errors.is_empty() && !filter.to.is_empty() && filter.to < filter.from {
        errors.push(FieldError::new("to", "is before the From date"));
    }
    (filter, errors)
}

/// The filters as a query string; empty ones are left out.
fn query_of(filter: &AuditFilter) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("event", &filter.event),
        ("actor", &filter.actor),
        ("outcome", &filter.outcome),
        ("from", &filter.from),
        ("to", &filter.to),
    ] {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    query.finish()
}

/// The page with these filters that starts at `cursor` (`before` or `after` an id).
fn page_link(filter: &AuditFilter, cursor: Option<(&str, i64)>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(query_of(filter));
    if let Some((key, id)) = cursor {
        query.append_pair(key, &id.to_string());
    }
    match query.finish() {
        query if query.is_empty() => "/admin/audit".to_owned(),
        query => format!("/admin/audit?{query}"),
    }
}

/// Where the page starts: `before` or `after` an event id, or the newest events.
/// Only the pager's own links carry them, so a bad one is an error page.
fn cursor(pairs: &[(String, String)]) -> Result<Cursor, PageError> {
    let id = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| FieldError::new(key, "is not an event number"))
            })
            .transpose()
    };
    let invalid = |error: FieldError| PageError::Problem(ApiError::Validation(vec![error]));
    match (
        id("before").map_err(invalid)?,
        id("after").map_err(invalid)?,
    ) {
        (None, None) => Ok(Cursor::Newest),
        (Some(before), None) => Ok(Cursor::Before(before)),
        (None, Some(after)) => Ok(Cursor::After(after)),
        (Some(_), Some(_)) => Err(invalid(FieldError::new(
            "after",
            "cannot be given with before",
        ))),
    }
}

pub async fn list(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::AuditView, None).await?;
    let pairs = page.query()?;
    let (filter, errors) = filters(&pairs);
    let cursor = cursor(&pairs)?;
    let audit = &page.state.audit;
    let listing = if errors.is_empty() {
        audit.browse(filter.clone(), cursor, PAGE_SIZE).await?
    } else {
        Listing::default()
    };
    let (chain, chain_ok) = match audit.verify().await {
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
    let events = offered_events(audit.event_names(KNOWN_EVENTS).await?);
    let Listing {
        rows,
        has_older,
        has_newer,
        emails,
    } = listing;
    let older = rows.last().filter(|_| has_older);
    let older = older.map(|r| page_link(&filter, Some(("before", r.id))));
    let newer = rows.first().filter(|_| has_newer);
    let newer = newer.map(|r| page_link(&filter, Some(("after", r.id))));
    let refused = !errors.is_empty();
    let mut response = page.render(&AuditPage {
        chrome: page.chrome("audit"),
        query: query_of(&filter),
        newest: page_link(&filter, None),
        filter,
        outcomes: ["success", "failure", "denied"].map(str::to_owned).to_vec(),
        events,
        chain,
        chain_ok,
        rows: rows.into_iter().map(|r| Row::of(r, &emails)).collect(),
        errors,
        first_page: cursor == Cursor::Newest,
        older,
        newer,
    })?;
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
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
    let (filter, errors) = filters(&page.query()?);
    if !errors.is_empty() {
        return Err(PageError::Problem(ApiError::Validation(errors)));
    }
    let rows = page
        .state
        .audit
        .search(filter.clone(), EXPORT_LIMIT)
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_whole_seconds_with_the_zone() {
        assert_eq!(
            readable_time("2026-12-06T22:56:32.123456789Z"),
            "2026-12-06 22:56:32 UTC"
        );
        assert_eq!(
            readable_time("2026-12-06T23:56:32+01:00"),
            "2026-12-06 22:56:32 UTC"
        );
        assert_eq!(readable_time("yesterday"), "yesterday");
    }

    #[test]
    fn details_collapse_to_one_short_line() {
        assert_eq!(details_view("{}"), (String::new(), String::new()));
        let (summary, pretty) = details_view(r#"{"reason":"bad password","failures":3}"#);
        assert_eq!(summary, "failures: 3, reason: bad password");
        assert!(pretty.contains("\n  \"failures\": 3"));
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(200));
        let (summary, _) = details_view(&long);
        assert_eq!(summary.chars().count(), SUMMARY_CHARS);
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn bad_dates_are_named_and_the_rest_is_kept() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (filter, errors) = filters(&pairs(&[
            ("event", "auth."),
            ("from", "2026-13-01"),
            ("to", "2026-12-06"),
        ]));
        assert_eq!(filter.event, "auth.");
        assert_eq!(filter.from, "2026-13-01");
        assert_eq!(
            errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            ["from"]
        );
        let (_, errors) = filters(&pairs(&[("from", "2026-12-07"), ("to", "2026-12-06")]));
        assert_eq!(errors.first().map(|e| e.field.as_str()), Some("to"));
        let (_, errors) = filters(&pairs(&[("from", "2026-12-06"), ("to", "2026-12-06")]));
        assert!(errors.is_empty());
        // The last day there is has no end to read up to: said, not silently empty.
        let (_, errors) = filters(&pairs(&[("to", "9999-12-31")]));
        assert_eq!(errors.first().map(|e| e.field.as_str()), Some("to"));
    }

    #[test]
    fn the_event_list_offers_families_and_names() {
        let names = ["auth.login", "auth.registered", "app.started"].map(str::to_owned);
        assert_eq!(
            offered_events(names.to_vec()),
            [
                "app.",
                "app.started",
                "auth.",
                "auth.login",
                "auth.registered"
            ]
        );
    }
}
