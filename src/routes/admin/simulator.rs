//! `/admin/simulator`: name an account by its e-mail (or describe a subject, or a
//! signed-out visitor), an action and a resource; see the decision and the
//! explanation, condition by condition.

use actix_web::HttpResponse;
use askama::Template;
use serde_json::{Map, Value};

use crate::admin::AdminAction;
use crate::http::admin_page::{AdminForm, AdminPage, Chrome, Form, PageError};
use crate::model::{Email, Role};
use crate::policy::engine::{ConditionResult, Decision, Reason, Resource};
use crate::policy::service::PolicyError;
use crate::policy::simulation::{SimulatedSubject, Simulation};

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
    /// Where the subject, the resource's owner and each attribute came from:
    /// `stored` or `typed`.
    pub subject_source: &'static str,
    pub owner_source: &'static str,
    pub attribute_sources: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "admin/simulator.html")]
struct SimulatorPage {
    chrome: Chrome,
    /// `described`, `account` or `signed-out`.
    subject: String,
    /// The account's e-mail, when the subject is a stored account.
    user: String,
    role: String,
    subject_attributes: String,
    action: String,
    resource_type: String,
    resource_id: String,
    owner_id: String,
    resource_attributes: String,
    /// A request through the gate, instead of the resource fields.
    url: String,
    ip: String,
    time: String,
    errors: Vec<String>,
    outcome: Option<Outcome>,
}

fn render(
    page: &AdminPage,
    form: Option<&Form>,
    errors: Vec<String>,
    outcome: Option<Outcome>,
) -> Result<HttpResponse, PageError> {
    let field = |name: &str, default: &str| {
        form.map(|f| f.text(name))
            .unwrap_or_else(|| default.to_owned())
    };
    page.render(&SimulatorPage {
        chrome: page.chrome("simulator"),
        subject: field("subject", "described"),
        user: field("user", ""),
        role: field("role", "user"),
        subject_attributes: field("subject_attributes", ""),
        action: field("action", "read"),
        resource_type: field("resource_type", "document"),
        resource_id: field("resource_id", ""),
        owner_id: field("owner_id", ""),
        resource_attributes: field("resource_attributes", ""),
        url: field("url", ""),
        ip: field("ip", ""),
        time: field("time", ""),
        errors,
        outcome,
    })
}

pub async fn form(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::PolicySimulate, None).await?;
    render(&page, None, Vec::new(), None)
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
        subject_source: "typed",
        owner_source: "typed",
        attribute_sources: Vec::new(),
    }
}

pub async fn submit(post: AdminForm) -> Result<HttpResponse, PageError> {
    post.authorize(AdminAction::PolicySimulate, None).await?;
    let form = &post.form;
    let mut errors = Vec::new();
    let subject = match form.text("subject").as_str() {
        "signed-out" => SimulatedSubject::SignedOut,
        "account" => {
            let email = form.text("user");
            let found = match Email::parse(&email) {
                Ok(parsed) => post.state.accounts.find_by_email(&parsed).await?,
                Err(_) => None,
            };
            match found {
                Some(user) => SimulatedSubject::User(user.id),
                None => {
                    errors.push(format!("User: no account has the e-mail “{email}”"));
                    SimulatedSubject::SignedOut
                }
            }
        }
        _ => SimulatedSubject::Described {
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
    let ip_text = form.text("ip");
    let ip = if ip_text.is_empty() {
        None
    } else {
        ip_text
            .parse()
            .map_err(|_| errors.push("Client IP is not an IP address".to_owned()))
            .ok()
    };
    // A request through the gate: its URL and method make the `route` resource.
    let url = form.text("url");
    let route = if url.is_empty() {
        None
    } else {
        crate::gate::OriginalRequest::from_original_url(&form.text("action"), &url)
            .map_err(|e| {
                errors.push(format!(
                    "Request URL: {} (with the action as its method, e.g. get)",
                    e.message
                ))
            })
            .ok()
    };
    let resource = Resource {
        kind: form.text("resource_type"),
        id: Some(form.text("resource_id")).filter(|s| !s.is_empty()),
        owner_id: Some(form.text("owner_id")).filter(|s| !s.is_empty()),
        attributes: object(
            &form.text("resource_attributes"),
            "Resource attributes",
            &mut errors,
        ),
    };
    if !errors.is_empty() {
        return render(&post, Some(form), errors, None);
    }
    let (resource, method, path) = match &route {
        Some(request) => (
            request.resource(),
            Some(request.method.clone()),
            Some(request.path.clone()),
        ),
        None => (resource, None, None),
    };
    let simulation = Simulation {
        subject,
        action: form.text("action").to_ascii_lowercase(),
        resource,
        ip,
        method,
        path,
        time: Some(form.text("time")).filter(|t| !t.is_empty()),
    };
    match post.state.decisions.simulate(simulation).await {
        Ok(simulated) => {
            let mut outcome = describe(simulated.decision);
            outcome.subject_source = simulated.subject.as_str();
            outcome.owner_source = simulated.owner.as_str();
            outcome.attribute_sources = simulated
                .attributes
                .into_iter()
                .map(|(name, source)| (name, source.as_str()))
                .collect();
            render(&post, Some(form), Vec::new(), Some(outcome))
        }
        Err(PolicyError::Validation(found)) => {
            let errors = found
                .into_iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect();
            render(&post, Some(form), errors, None)
        }
        Err(other) => Err(other.into()),
    }
}
