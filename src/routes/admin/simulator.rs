//! `/admin/simulator`: pick a user (or describe one), an action and a resource; see
//! the decision and the explanation, condition by condition.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Chrome, Form, PageError, authorize, checked_post, chrome, render, session};
use crate::accounts::service::RequestMeta;
use crate::accounts::{Role, UserId};
use crate::db::{DbError, users};
use crate::policy::engine::{
    AccessRequest, ConditionResult, Context, Decision, Reason, Resource, Subject,
};
use crate::state::AppState;

pub struct Explained {
    pub name: String,
    pub effect: &'static str,
    pub outcome: &'static str,
    /// (path, attribute, operator, result)
    pub conditions: Vec<(String, String, &'static str, &'static str)>,
}

pub struct Outcome {
    pub allowed: bool,
    pub reason: String,
    pub policies: Vec<Explained>,
}

#[derive(Template)]
#[template(path = "admin/simulator.html")]
struct SimulatorPage {
    chrome: Chrome,
    users: Vec<(String, String)>,
    user: String,
    role: String,
    subject_attributes: String,
    action: String,
    resource_type: String,
    resource_id: String,
    owner_id: String,
    resource_attributes: String,
    ip: String,
    time: String,
    errors: Vec<String>,
    outcome: Option<Outcome>,
}

async fn user_choices(state: &AppState) -> Result<Vec<crate::accounts::User>, PageError> {
    state
        .db
        .read(|conn| Ok::<_, DbError>(users::list(conn, 500)?))
        .await
        .map_err(|e| PageError::Unexpected(e.into()))
}

fn page(
    chrome: Chrome,
    users: &[crate::accounts::User],
    form: Option<&Form>,
    errors: Vec<String>,
    outcome: Option<Outcome>,
) -> Result<HttpResponse, PageError> {
    let field = |name: &str, default: &str| {
        form.map(|f| f.text(name))
            .unwrap_or_else(|| default.to_owned())
    };
    render(&SimulatorPage {
        chrome,
        users: users
            .iter()
            .map(|u| (u.id.to_string(), u.email.to_string()))
            .collect(),
        user: field("user", ""),
        role: field("role", "user"),
        subject_attributes: field("subject_attributes", ""),
        action: field("action", "read"),
        resource_type: field("resource_type", "document"),
        resource_id: field("resource_id", ""),
        owner_id: field("owner_id", ""),
        resource_attributes: field("resource_attributes", ""),
        ip: field("ip", ""),
        time: field("time", ""),
        errors,
        outcome,
    })
}

pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, PageError> {
    let session = session(&req, &state).await?;
    authorize(&state, &session, &req, &meta, "policy.simulate", None).await?;
    let users = user_choices(&state).await?;
    page(
        chrome(&req, &state, &session, "simulator"),
        &users,
        None,
        Vec::new(),
        None,
    )
}

fn object(text: &str, what: &str, errors: &mut Vec<String>) -> Map<String, Value> {
    if text.is_empty() {
        return Map::new();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        _ => {
            errors.push(format!(
                "{what} must be a JSON object, like {{\"department\": \"sales\"}}"
            ));
            Map::new()
        }
    }
}

fn describe(decision: Decision) -> Outcome {
    let reason = match &decision.reason {
        Reason::DefaultDeny => "Denied by default: no applicable allow policy matched.".to_owned(),
        Reason::AllowedBy { policies } => format!(
            "Allowed by {} policy(ies); no deny applied.",
            policies.len()
        ),
        Reason::DeniedBy { policies } => format!(
            "Denied by {} deny policy(ies), which override any allow.",
            policies.len()
        ),
        Reason::Error { error, .. } => format!(
            "Denied: a policy could not be evaluated ({} at {}).",
            error.message, error.path
        ),
    };
    let policies = decision
        .policies
        .into_iter()
        .map(|p| Explained {
            name: p.name,
            effect: p.effect.as_str(),
            outcome: match p.matched {
                Some(true) => "takes effect",
                Some(false) => "does not take effect",
                None => "could not be evaluated",
            },
            conditions: p
                .conditions
                .into_iter()
                .map(|c| {
                    let result = match c.result {
                        ConditionResult::True => "true",
                        ConditionResult::False => "false",
                        ConditionResult::Missing => "missing",
                        ConditionResult::Error => "error",
                        ConditionResult::NotEvaluated => "not evaluated",
                    };
                    (c.path, c.attribute, c.operator.as_str(), result)
                })
                .collect(),
        })
        .collect();
    Outcome {
        allowed: decision.allowed,
        reason,
        policies,
    }
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (session, form) = checked_post(&req, &state, &body).await?;
    authorize(&state, &session, &req, &meta, "policy.simulate", None).await?;
    let users = user_choices(&state).await?;
    let mut errors = Vec::new();
    let chosen = Uuid::parse_str(&form.text("user")).ok().map(UserId);
    let subject = match chosen.and_then(|id| users.iter().find(|u| u.id == id)) {
        Some(user) => Subject::from(user),
        None => Subject {
            id: UserId(Uuid::nil()),
            email: String::new(),
            role: Role::parse(&form.text("role")).unwrap_or(Role::User),
            mfa: false,
            attributes: object(
                &form.text("subject_attributes"),
                "Subject attributes",
                &mut errors,
            ),
        },
    };
    let (action, kind) = (form.text("action"), form.text("resource_type"));
    for (value, what) in [(&action, "Action"), (&kind, "Resource type")] {
        if !crate::policy::validate::is_name(value) {
            errors.push(format!(
                "{what} must be a name of lower-case letters, digits, `_`, `-`, `.` or `:`"
            ));
        }
    }
    let ip_text = form.text("ip");
    let ip = if ip_text.is_empty() {
        None
    } else {
        ip_text
            .parse()
            .map_err(|_| errors.push("Client IP is not an IP address".to_owned()))
            .ok()
    };
    let time_text = form.text("time");
    let now = if time_text.is_empty() {
        state.clock.now()
    } else {
        match time::OffsetDateTime::parse(
            &time_text,
            &time::format_description::well_known::Rfc3339,
        ) {
            Ok(t) => t.unix_timestamp(),
            Err(_) => {
                errors.push("Time must be RFC 3339, like 2026-11-23T10:30:00Z".to_owned());
                state.clock.now()
            }
        }
    };
    let resource = Resource {
        kind,
        id: Some(form.text("resource_id")).filter(|s| !s.is_empty()),
        owner_id: Some(form.text("owner_id")).filter(|s| !s.is_empty()),
        attributes: object(
            &form.text("resource_attributes"),
            "Resource attributes",
            &mut errors,
        ),
    };
    let chrome = chrome(&req, &state, &session, "simulator");
    if !errors.is_empty() {
        return page(chrome, &users, Some(&form), errors, None);
    }
    let request = AccessRequest {
        subject,
        action,
        resource,
        context: Context {
            ip,
            method: None,
            path: None,
            now,
        },
    };
    let outcome = describe(state.policies.explain(&request));
    page(chrome, &users, Some(&form), Vec::new(), Some(outcome))
}
