//! `/admin/policies`: list, create and edit with the condition builder, activate and
//! deactivate, delete, and each policy's history. Every action is decided by the
//! policy engine (resource type `admin`) and audited by the policy service.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde_json::Value;
use uuid::Uuid;

use super::builder::{self, Node, Row};
use crate::admin::AdminAction;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, Chrome, Confirmation, Form, PageError, redirect_with, redirect_with_error,
};
use crate::model::policy::{ADMIN_POLICY_ID, Effect, Policy, PolicyStatus, Principals};
use crate::model::{Role, UserId};
use crate::policy::attributes::ATTRIBUTES;
use crate::policy::operator::Operator;
use crate::policy::service::PolicyError;
use crate::policy::validate::PolicyDraft;
use crate::validation::FieldError;

pub struct PolicyRow {
    pub id: Uuid,
    pub name: String,
    pub effect: &'static str,
    pub resource_type: String,
    pub actions: String,
    pub priority: u16,
    pub status: &'static str,
    pub version: i64,
    pub system: bool,
    /// The built-in administrator policy: shown, never changed.
    pub read_only: bool,
}

#[derive(Template)]
#[template(path = "admin/policies.html")]
struct ListPage {
    chrome: Chrome,
    csrf: String,
    policies: Vec<PolicyRow>,
    status: String,
    resource_type: String,
}

pub async fn list(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::PolicyList, None).await?;
    let query = page.query()?;
    let find = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (status, resource_type) = (find("status"), find("resource_type"));
    let policies = page
        .state
        .policies
        .list()
        .into_iter()
        .filter(|p| status.is_empty() || p.status.as_str() == status)
        .filter(|p| resource_type.is_empty() || p.resource_type == resource_type)
        .map(|p| PolicyRow {
            id: p.id,
            name: p.name.clone(),
            effect: p.effect.as_str(),
            resource_type: p.resource_type.clone(),
            actions: p.actions.join(", "),
            priority: p.priority,
            status: p.status.as_str(),
            version: p.version,
            system: p.system,
            read_only: p.id == ADMIN_POLICY_ID,
        })
        .collect();
    let chrome = page.chrome("policies");
    let csrf = chrome.csrf.clone();
    page.render(&ListPage {
        chrome,
        csrf,
        policies,
        status,
        resource_type,
    })
}

#[derive(Template)]
#[template(path = "admin/policy_form.html")]
struct FormPage {
    chrome: Chrome,
    heading: String,
    action: String,
    name: String,
    description: String,
    effect: String,
    resource_type: String,
    actions: String,
    priority: String,
    status: String,
    principals_type: String,
    principals: String,
    rows: Vec<Row>,
    errors: Vec<FieldError>,
    operators: Vec<String>,
    /// (name, description) for the attribute picker.
    attributes: Vec<(String, &'static str)>,
    /// The built-in administrator policy: every field shown, none editable.
    read_only: bool,
    /// What saving would do to administrators, asked before it is done.
    warnings: Vec<String>,
}

impl FormPage {
    /// Whether an error names a field (others are about the policy as a whole).
    fn marks_fields(&self) -> bool {
        self.errors.iter().any(|e| e.field != "policy")
    }

    fn field_errors(&self, field: &str) -> Vec<String> {
        self.errors
            .iter()
            .filter(|e| {
                e.field == field
                    || e.field.starts_with(&format!("{field}."))
                    || e.field.starts_with(&format!("{field}["))
            })
            .filter(|e| field != "conditions" || !e.field.starts_with("conditions."))
            .map(|e| e.message.clone())
            .collect()
    }
}

/// The editable state of the form, from a policy or from a post.
struct Fields {
    name: String,
    description: String,
    effect: String,
    resource_type: String,
    actions: String,
    priority: String,
    status: String,
    principals_type: String,
    principals: String,
    tree: Option<Node>,
}

impl Fields {
    fn blank() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            effect: "allow".to_owned(),
            resource_type: "document".to_owned(),
            actions: "read".to_owned(),
            priority: "0".to_owned(),
            status: "active".to_owned(),
            principals_type: "everyone".to_owned(),
            principals: String::new(),
            tree: None,
        }
    }

    fn of(policy: &Policy) -> Self {
        let (principals_type, principals) = match &policy.principals {
            Principals::Public => ("public", String::new()),
            Principals::Everyone => ("everyone", String::new()),
            Principals::Roles { roles } => (
                "roles",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Principals::Users { ids } => (
                "users",
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        Self {
            name: policy.name.clone(),
            description: policy.description.clone(),
            effect: policy.effect.as_str().to_owned(),
            resource_type: policy.resource_type.clone(),
            actions: policy.actions.join(", "),
            priority: policy.priority.to_string(),
            status: policy.status.as_str().to_owned(),
            principals_type: principals_type.to_owned(),
            principals,
            tree: policy.conditions.as_ref().map(builder::from_json),
        }
    }

    fn posted(form: &Form) -> Self {
        Self {
            name: form.text("name"),
            description: form.text("description"),
            effect: form.text("effect"),
            resource_type: form.text("resource_type"),
            actions: form.text("actions"),
            priority: form.text("priority"),
            status: form.text("status"),
            principals_type: form.text("principals_type"),
            principals: form.text("principals"),
            tree: builder::from_form(form),
        }
    }

    /// The draft to save, or the errors of fields that do not even parse.
    fn draft(&self) -> Result<PolicyDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let effect = match self.effect.as_str() {
            "deny" => Effect::Deny,
            _ => Effect::Allow,
        };
        let status = match self.status.as_str() {
            "inactive" => PolicyStatus::Inactive,
            _ => PolicyStatus::Active,
        };
        let priority = self.priority.parse::<u16>().unwrap_or_else(|_| {
            errors.push(FieldError::rule(
                "priority",
                "invalid",
                "must be a whole number from 0 to 1000",
            ));
            0
        });
        let list: Vec<&str> = self
            .principals
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let principals = match self.principals_type.as_str() {
            "roles" => Principals::Roles {
                roles: list
                    .iter()
                    .filter_map(|r| {
                        let role = Role::parse(r);
                        if role.is_none() {
                            errors.push(FieldError::rule(
                                "principals",
                                "invalid",
                                format!("`{r}` is not a role (admin, user)"),
                            ));
                        }
                        role
                    })
                    .collect(),
            },
            "users" => Principals::Users {
                ids: list
                    .iter()
                    .filter_map(|id| match Uuid::parse_str(id) {
                        Ok(id) => Some(UserId(id)),
                        Err(_) => {
                            errors.push(FieldError::rule(
                                "principals",
                                "invalid",
                                format!("`{id}` is not a user id"),
                            ));
                            None
                        }
                    })
                    .collect(),
            },
            "public" => Principals::Public,
            _ => Principals::Everyone,
        };
        let draft = PolicyDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            effect,
            resource_type: self.resource_type.clone(),
            actions: self
                .actions
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            conditions: self.tree.as_ref().map(builder::to_json),
            priority,
            status,
            principals,
        };
        if errors.is_empty() {
            Ok(draft)
        } else {
            Err(errors)
        }
    }
}

/// What the form page says beyond its fields.
#[derive(Default)]
struct Notes {
    errors: Vec<FieldError>,
    warnings: Vec<String>,
    read_only: bool,
}

impl Notes {
    fn errors(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::default()
        }
    }
}

fn form_page(
    page: &AdminPage,
    heading: String,
    action: String,
    fields: Fields,
    notes: Notes,
) -> Result<HttpResponse, PageError> {
    let rows = builder::rows(&fields.tree, &notes.errors);
    let refused = !notes.errors.is_empty();
    let mut response = page.render(&FormPage {
        chrome: page.chrome("policies"),
        heading,
        action,
        name: fields.name,
        description: fields.description,
        effect: fields.effect,
        resource_type: fields.resource_type,
        actions: fields.actions,
        priority: fields.priority,
        status: fields.status,
        principals_type: fields.principals_type,
        principals: fields.principals,
        rows,
        operators: Operator::ALL
            .iter()
            .map(|op| op.as_str().to_owned())
            .collect(),
        attributes: ATTRIBUTES
            .iter()
            .map(|a| (a.name.replace(".*", ".department"), a.description))
            .collect(),
        errors: notes.errors,
        read_only: notes.read_only,
        warnings: notes.warnings,
    })?;
    if refused {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

fn policy_id(text: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(text).map_err(|_| PageError::not_found())
}

pub async fn new_form(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::PolicyCreate, None).await?;
    form_page(
        &page,
        "New policy".to_owned(),
        "/admin/policies/new".to_owned(),
        Fields::blank(),
        Notes::default(),
    )
}

/// The built-in administrator policy, shown read-only (with why a change was
/// refused, after one).
fn read_only_page(
    page: &AdminPage,
    policy: &Policy,
    errors: Vec<FieldError>,
) -> Result<HttpResponse, PageError> {
    form_page(
        page,
        format!("“{}” (built in, read-only)", policy.name),
        format!("/admin/policies/{}", policy.id),
        Fields::of(policy),
        Notes {
            read_only: true,
            errors,
            ..Notes::default()
        },
    )
}

pub async fn edit_form(
    page: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    if id == ADMIN_POLICY_ID {
        page.authorize(AdminAction::PolicyView, Some(id.to_string()))
            .await?;
        let policy = page.state.policies.get(id)?;
        return read_only_page(&page, &policy, Vec::new());
    }
    page.authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
        .await?;
    let policy = page.state.policies.get(id)?;
    form_page(
        &page,
        format!("Edit “{}”", policy.name),
        format!("/admin/policies/{id}"),
        Fields::of(&policy),
        Notes::default(),
    )
}

/// A builder button re-renders the form; "save" validates, says first what the
/// policy would take from administrators, and saves.
async fn submit(post: AdminForm, existing: Option<Uuid>) -> Result<HttpResponse, PageError> {
    if existing == Some(ADMIN_POLICY_ID) {
        post.authorize(AdminAction::PolicyView, Some(ADMIN_POLICY_ID.to_string()))
            .await?;
        let policy = post.state.policies.get(ADMIN_POLICY_ID)?;
        let mut response = read_only_page(
            &post,
            &policy,
            vec![FieldError::rule(
                "policy",
                "read_only",
                PolicyError::ReadOnly.to_string(),
            )],
        )?;
        *response.status_mut() = actix_web::http::StatusCode::CONFLICT;
        return Ok(response);
    }
    let actor = match existing {
        Some(id) => {
            post.authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
                .await?
        }
        None => post.authorize(AdminAction::PolicyCreate, None).await?,
    };
    let mut fields = Fields::posted(&post.form);
    let (heading, target) = match existing {
        Some(id) => (
            format!("Edit “{}”", fields.name),
            format!("/admin/policies/{id}"),
        ),
        None => ("New policy".to_owned(), "/admin/policies/new".to_owned()),
    };
    let op = post.form.text("op");
    if op != "save" && op != "save_anyway" {
        builder::apply(&mut fields.tree, &op);
        return form_page(&post, heading, target, fields, Notes::default());
    }
    let draft = match fields.draft() {
        Ok(draft) => draft,
        Err(errors) => return form_page(&post, heading, target, fields, Notes::errors(errors)),
    };
    let policies = &post.state.policies;
    if op == "save" {
        let context = post.policy_context();
        let taken = match existing {
            Some(id) => {
                policies
                    .admin_impact(Some(id), Some(&draft), &context)
                    .await
            }
            None => policies.admin_impact(None, Some(&draft), &context).await,
        };
        match taken {
            Ok(taken) if !taken.is_empty() => {
                let notes = Notes {
                    warnings: taken.iter().map(ToString::to_string).collect(),
                    ..Notes::default()
                };
                return form_page(&post, heading, target, fields, notes);
            }
            Ok(_) => {}
            Err(PolicyError::Validation(errors)) => {
                return form_page(&post, heading, target, fields, Notes::errors(errors));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let saved = match existing {
        Some(id) => policies.update(id, draft, &actor, &post.meta).await,
        None => policies.create(draft, &actor, &post.meta).await,
    };
    match saved {
        Ok(policy) => Ok(redirect_with(
            "/admin/policies",
            &format!("Saved “{}” (version {}).", policy.name, policy.version),
        )),
        Err(PolicyError::Validation(errors)) => {
            form_page(&post, heading, target, fields, Notes::errors(errors))
        }
        Err(refused @ (PolicyError::BuiltInRule | PolicyError::LocksOutAdministrators)) => {
            let errors = vec![FieldError::rule("policy", "refused", refused.to_string())];
            form_page(&post, heading, target, fields, Notes::errors(errors))
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn new_submit(post: AdminForm) -> Result<HttpResponse, PageError> {
    submit(post, None).await
}

pub async fn edit_submit(
    post: AdminForm,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    submit(post, Some(id)).await
}

pub async fn set_status(
    post: AdminForm,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    let actor = post
        .authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
        .await?;
    let status = match post.form.get("status") {
        Some("inactive") => PolicyStatus::Inactive,
        _ => PolicyStatus::Active,
    };
    match post
        .state
        .policies
        .set_status(id, status, &actor, &post.meta)
        .await
    {
        Ok(policy) => Ok(redirect_with(
            "/admin/policies",
            &format!("“{}” is now {}.", policy.name, policy.status.as_str()),
        )),
        Err(refused @ (PolicyError::ReadOnly | PolicyError::LocksOutAdministrators)) => Ok(
            redirect_with_error("/admin/policies", &format!("Not changed: {refused}.")),
        ),
        Err(other) => Err(other.into()),
    }
}

/// Deleting asks first, naming the policy; the flash names it too.
pub async fn delete(post: AdminForm, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    let actor = post
        .authorize(AdminAction::PolicyDelete, Some(id.to_string()))
        .await?;
    let policy = post.state.policies.get(id)?;
    if policy.system {
        return Ok(redirect_with_error(
            "/admin/policies",
            &format!("“{}” is built in and cannot be deleted.", policy.name),
        ));
    }
    if !post.confirmed() {
        return post.ask(
            "policies",
            Confirmation {
                question: format!("Delete the policy “{}”?", policy.name),
                consequence: format!(
                    "Its {} decisions stop at once. The policy cannot be restored; its versions stay in its history and the audit log.",
                    policy.effect.as_str()
                ),
                button: format!("Delete “{}”", policy.name),
                cancel: "/admin/policies".to_owned(),
            },
        );
    }
    match post.state.policies.delete(id, &actor, &post.meta).await {
        Ok(()) => Ok(redirect_with(
            "/admin/policies",
            &format!("Deleted the policy “{}”.", policy.name),
        )),
        Err(PolicyError::LocksOutAdministrators) => Ok(redirect_with_error(
            "/admin/policies",
            &format!(
                "Not deleted: “{}”: {}.",
                policy.name,
                PolicyError::LocksOutAdministrators
            ),
        )),
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/policy_history.html")]
struct HistoryPage {
    chrome: Chrome,
    name: String,
    /// (version, change, by, when, snapshot)
    versions: Vec<(i64, String, String, String, String)>,
}

pub async fn history(page: AdminPage, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    page.authorize(AdminAction::PolicyHistory, Some(id.to_string()))
        .await?;
    let rows = page.state.policies.history(id).await?;
    let name = rows
        .first()
        .and_then(|v| v.snapshot.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("policy")
        .to_owned();
    let versions = rows
        .into_iter()
        .map(|v| {
            (
                v.version,
                v.change,
                v.changed_by.unwrap_or_default(),
                rfc3339(v.changed_at),
                serde_json::to_string_pretty(&v.snapshot).unwrap_or_default(),
            )
        })
        .collect();
    page.render(&HistoryPage {
        chrome: page.chrome("policies"),
        name,
        versions,
    })
}
