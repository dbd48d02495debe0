//! `/admin/policies`: list, create and edit with the condition builder, activate and
//! deactivate, delete, and each policy's history as a diff between versions, with
//! the restore of an old version. Before saving, the form says what the policy
//! would take from administrators and which existing policies it is shadowed by or
//! overlaps. Policies as code too: export every policy as a file (the one
//! `portcullis policies export` writes), and import one, pasted, shown first as
//! the plan of what it creates, changes and deletes and applied only once that plan
//! is confirmed. Every action is decided by the policy engine (resource type
//! `admin`) and audited by the policy service.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use similar::{ChangeTag, TextDiff};
use uuid::Uuid;

use super::builder::{self, Node, Row};
use crate::admin::AdminAction;
use crate::clock::rfc3339;
use crate::http::admin_page::{
    AdminForm, AdminPage, Chrome, Confirmation, Form, PageError, redirect_with, redirect_with_error,
};
use crate::http::problem::ApiError;
use crate::model::policy::{ADMIN_POLICY_ID, Effect, Policy, PolicyStatus, Principals};
use crate::model::{Role, UserId};
use crate::policy::as_code::{self, FileFormat, PolicyFile};
use crate::policy::attributes::ATTRIBUTES;
use crate::policy::operator::Operator;
use crate::policy::overlap::{self, Candidate};
use crate::policy::plan::ImportPlan;
use crate::policy::service::{PolicyError, PolicyVersion};
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
    /// `name` or `priority`.
    sort: &'static str,
    /// The next page's link, when there is one.
    next: Option<String>,
    paged: bool,
}

impl ListPage {
    /// The list's link with these filters, in `sort` order, from the start.
    fn sorted_by(&self, sort: &str) -> String {
        list_link(&self.status, &self.resource_type, sort, None)
    }
}

/// Policies on one page of the list.
const POLICIES_PER_PAGE: usize = 50;

fn list_link(status: &str, resource_type: &str, sort: &str, after: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("status", status), ("resource_type", resource_type)] {
        if !value.is_empty() {
            query.append_pair(key, value);
        }
    }
    query.append_pair("sort", sort);
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    format!("/admin/policies?{}", query.finish())
}

/// A policy's place in the list's order: (name, id) by name, (1000 − priority,
/// name, id) by priority (highest first). Written as the `after` of a page link.
fn sort_key(policy: &Policy, by_priority: bool) -> String {
    let name = policy.name.to_lowercase();
    if by_priority {
        format!(
            "{:04}\t{name}\t{}",
            1000 - u32::from(policy.priority.min(1000)),
            policy.id
        )
    } else {
        format!("{name}\t{}", policy.id)
    }
}

/// The policies, filtered by status and resource type, sorted by name or by
/// priority, a page at a time (the list is held in memory; the page link carries
/// the last row's place, so a policy added meanwhile neither repeats nor hides
/// another).
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
    let by_priority = find("sort") == "priority";
    let sort = if by_priority { "priority" } else { "name" };
    let after = Some(find("after")).filter(|a| !a.is_empty());
    let mut matching: Vec<(String, std::sync::Arc<Policy>)> = page
        .state
        .policies
        .list()
        .into_iter()
        .filter(|p| status.is_empty() || p.status.as_str() == status)
        .filter(|p| resource_type.is_empty() || p.resource_type == resource_type)
        .map(|p| (sort_key(&p, by_priority), p))
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    let more = matching.len() > POLICIES_PER_PAGE;
    matching.truncate(POLICIES_PER_PAGE);
    let next = matching
        .last()
        .filter(|_| more)
        .map(|(key, _)| list_link(&status, &resource_type, sort, Some(key)));
    let policies = matching
        .into_iter()
        .map(|(_, p)| PolicyRow {
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
        sort,
        next,
        paged: after.is_some(),
    })
}

#[derive(Template)]
#[template(path = "admin/policy_form.html")]
struct FormPage {
    chrome: Chrome,
    heading: String,
    /// Where the form posts: `target`, with the fragment of the node a builder
    /// button just changed.
    action: String,
    /// The form's address without a fragment; each builder button adds the
    /// fragment of the node it changes.
    target: String,
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
    /// The existing policies it is shadowed by or overlaps: (id, name, why).
    overlaps: Vec<(Uuid, String, String)>,
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
    overlaps: Vec<(Uuid, String, String)>,
    read_only: bool,
    /// The fragment id of the node a builder button just changed.
    anchor: Option<String>,
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
    target: String,
    fields: Fields,
    notes: Notes,
) -> Result<HttpResponse, PageError> {
    let rows = builder::rows(&fields.tree, &notes.errors);
    let refused = !notes.errors.is_empty();
    let action = match &notes.anchor {
        Some(anchor) => format!("{target}#{anchor}"),
        None => target.clone(),
    };
    let mut response = page.render(&FormPage {
        chrome: page.chrome("policies"),
        heading,
        action,
        target,
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
        overlaps: notes.overlaps,
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
        let notes = Notes {
            anchor: builder::apply(&mut fields.tree, &op),
            ..Notes::default()
        };
        return form_page(&post, heading, target, fields, notes);
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
        let taken = match taken {
            Ok(taken) => taken,
            Err(PolicyError::Validation(errors)) => {
                return form_page(&post, heading, target, fields, Notes::errors(errors));
            }
            Err(other) => return Err(other.into()),
        };
        let stored = policies.list();
        let overlaps: Vec<(Uuid, String, String)> = overlap::overlaps(
            &Candidate::of_draft(existing, &draft),
            stored.iter().map(|p| &**p),
        )
        .into_iter()
        .map(|o| (o.other_id, o.other_name.clone(), o.to_string()))
        .collect();
        if !taken.is_empty() || !overlaps.is_empty() {
            let notes = Notes {
                warnings: taken.iter().map(ToString::to_string).collect(),
                overlaps,
                ..Notes::default()
            };
            return form_page(&post, heading, target, fields, notes);
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

/// One line of a field's diff.
pub struct DiffLine {
    /// `added`, `removed` or `same`.
    pub class: &'static str,
    /// `+`, `-` or a space.
    pub mark: &'static str,
    pub text: String,
}

/// A field that a version changed, line by line.
pub struct FieldDiff {
    pub field: &'static str,
    pub lines: Vec<DiffLine>,
}

/// One version as the history shows it.
pub struct VersionView {
    pub version: i64,
    pub change: String,
    /// Who saved it: an administrator's e-mail, or the stored text (`cli`,
    /// `system`).
    pub by: String,
    /// The administrator's id, for the link to their page.
    pub by_user: Option<String>,
    pub when: String,
    /// What it changed from the version before (the first: every field).
    pub changes: Vec<FieldDiff>,
    /// Whether "Restore this version" is offered.
    pub restorable: bool,
}

#[derive(Template)]
#[template(path = "admin/policy_history.html")]
struct HistoryPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    /// Newest first.
    versions: Vec<VersionView>,
}

/// A version's fields as text, in the order the history shows them; the
/// conditions as pretty JSON, one line each. A snapshot that no longer reads as
/// a policy is shown whole.
fn version_fields(version: &PolicyVersion, current: &Policy) -> Vec<(&'static str, String)> {
    let Some(policy) = version.policy_over(current) else {
        return vec![(
            "snapshot",
            serde_json::to_string_pretty(&version.snapshot).unwrap_or_default(),
        )];
    };
    vec![
        ("name", policy.name.clone()),
        ("description", policy.description.clone()),
        ("effect", policy.effect.as_str().to_owned()),
        ("resource type", policy.resource_type.clone()),
        ("actions", policy.actions.join(", ")),
        ("priority", policy.priority.to_string()),
        ("status", policy.status.as_str().to_owned()),
        ("principals", policy.principals.in_full()),
        (
            "conditions",
            match &policy.conditions {
                Some(conditions) if !conditions.is_null() => {
                    serde_json::to_string_pretty(conditions).unwrap_or_default()
                }
                _ => "(none: always)".to_owned(),
            },
        ),
    ]
}

/// The fields that differ between `before` (none for the first version) and
/// `after`, each as a line diff.
fn field_diffs(
    before: Option<&[(&'static str, String)]>,
    after: &[(&'static str, String)],
) -> Vec<FieldDiff> {
    after
        .iter()
        .filter_map(|(field, new)| {
            let old = before
                .and_then(|fields| fields.iter().find(|(f, _)| f == field))
                .map(|(_, text)| text.as_str());
            if old == Some(new.as_str()) || (old.is_none() && new.is_empty()) {
                return None;
            }
            let (old, new) = (format!("{}\n", old.unwrap_or("")), format!("{new}\n"));
            let diff = TextDiff::from_lines(old.as_str(), new.as_str());
            let lines = diff
                .iter_all_changes()
                .filter(|change| !(change.tag() == ChangeTag::Delete && change.value() == "\n"))
                .map(|change| {
                    let (class, mark) = match change.tag() {
                        ChangeTag::Insert => ("added", "+"),
                        ChangeTag::Delete => ("removed", "-"),
                        ChangeTag::Equal => ("same", " "),
                    };
                    DiffLine {
                        class,
                        mark,
                        text: change.value().trim_end_matches('\n').to_owned(),
                    }
                })
                .collect();
            Some(FieldDiff { field, lines })
        })
        .collect()
}

/// The names of the fields whose text differs.
fn changed_fields(
    before: &[(&'static str, String)],
    after: &[(&'static str, String)],
) -> Vec<&'static str> {
    after
        .iter()
        .filter(|(field, text)| !before.iter().any(|(f, t)| f == field && t == text))
        .map(|(field, _)| *field)
        .collect()
}

pub async fn history(page: AdminPage, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    page.authorize(AdminAction::PolicyHistory, Some(id.to_string()))
        .await?;
    let current = page.state.policies.get(id)?;
    let rows = page.state.policies.history(id).await?;
    let mut emails: HashMap<String, String> = HashMap::new();
    for by in rows.iter().filter_map(|v| v.changed_by.as_deref()) {
        if emails.contains_key(by) {
            continue;
        }
        if let Ok(user_id) = Uuid::parse_str(by)
            && let Ok(user) = page.state.accounts.find_user(UserId(user_id)).await
        {
            emails.insert(by.to_owned(), user.email.to_string());
        }
    }
    let fields: Vec<Vec<(&'static str, String)>> =
        rows.iter().map(|v| version_fields(v, &current)).collect();
    let versions = rows
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // A built-in policy may only get its status back; the administrator
            // policy nothing.
            let restorable = i > 0
                && id != ADMIN_POLICY_ID
                && v.change != "deleted"
                && v.policy_over(&current)
                    .is_some_and(|old| !current.system || current.same_rule_as(&old));
            VersionView {
                version: v.version,
                change: v.change.clone(),
                by: v
                    .changed_by
                    .as_ref()
                    .map(|by| emails.get(by).unwrap_or(by).clone())
                    .unwrap_or_default(),
                by_user: v.changed_by.clone().filter(|by| emails.contains_key(by)),
                when: rfc3339(v.changed_at),
                changes: field_diffs(fields.get(i + 1).map(Vec::as_slice), &fields[i]),
                restorable,
            }
        })
        .collect();
    page.render(&HistoryPage {
        chrome: page.chrome("policies"),
        id,
        name: current.name.clone(),
        versions,
    })
}

/// Restoring an old version asks first, saying what it changes back; it is saved
/// through the policy service as a new version, audited like any edit.
pub async fn restore(post: AdminForm, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = policy_id(&path)?;
    let actor = post
        .authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
        .await?;
    let policy = post.state.policies.get(id)?;
    let back = format!("/admin/policies/{id}/history");
    let not_restored = |why: String| {
        Ok(redirect_with_error(
            &back,
            &format!("Not restored: “{}”: {why}.", policy.name),
        ))
    };
    if id == ADMIN_POLICY_ID {
        return not_restored(PolicyError::ReadOnly.to_string());
    }
    let versions = post.state.policies.history(id).await?;
    let asked = post.form.text("version").trim().parse::<i64>().ok();
    let Some(old) = versions.iter().find(|v| Some(v.version) == asked) else {
        return not_restored("it has no such version".to_owned());
    };
    let version = old.version;
    if !post.confirmed() {
        let now = version_fields(versions.first().unwrap_or(old), &policy);
        let changed = changed_fields(&now, &version_fields(old, &policy));
        let consequence = if changed.is_empty() {
            format!(
                "Version {version} says the same as the current one: restoring it adds a version that changes nothing."
            )
        } else {
            format!(
                "It changes back: {}. It is saved as a new version; every version stays in the history and the change is audited.",
                changed.join(", ")
            )
        };
        return post.ask(
            "policies",
            Confirmation {
                question: format!("Restore version {version} of “{}”?", policy.name),
                consequence,
                button: format!("Restore version {version}"),
                cancel: back.clone(),
            },
        );
    }
    match post
        .state
        .policies
        .restore(id, version, &actor, &post.meta)
        .await
    {
        Ok(restored) => Ok(redirect_with(
            &back,
            &format!(
                "Restored version {version} of “{}” as version {}.",
                restored.name, restored.version
            ),
        )),
        Err(
            refused @ (PolicyError::ReadOnly
            | PolicyError::BuiltInRule
            | PolicyError::LocksOutAdministrators),
        ) => not_restored(refused.to_string()),
        Err(PolicyError::Validation(errors)) => not_restored(format!(
            "version {version} is no longer valid ({})",
            errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(other) => Err(other.into()),
    }
}

/// Every policy as a policy file (`?format=toml` for TOML, JSON otherwise), as a
/// download: the same bytes `portcullis policies export` writes.
pub async fn export(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::PolicyExport, None).await?;
    let format = page
        .query()?
        .iter()
        .find(|(key, _)| key == "format")
        .and_then(|(_, value)| FileFormat::parse(value))
        .unwrap_or(FileFormat::Json);
    let policies = page.state.policies.list();
    let text = as_code::render(&as_code::file_of(policies.iter().map(|p| &**p)), format)
        .map_err(|cause| PageError::Problem(ApiError::Unexpected(cause)))?;
    Ok(HttpResponse::Ok()
        .content_type(format!("{}; charset=utf-8", format.media_type()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"policies.{}\"", format.as_str()),
        ))
        .body(text))
}

#[derive(Template)]
#[template(path = "admin/policies_import.html")]
struct ImportPage {
    chrome: Chrome,
    /// The pasted file, as posted.
    text: String,
    /// Why nothing was imported, with the problems that say where.
    refusal: Option<String>,
    errors: Vec<FieldError>,
    /// Said above the form or the plan (nothing to do; the policies changed).
    notice: Option<String>,
    /// The plan to confirm; without one, the form.
    plan: Option<ImportPlan>,
}

impl ImportPage {
    fn form(page: &AdminPage, text: String) -> Self {
        Self {
            chrome: page.chrome("policies"),
            text,
            refusal: None,
            errors: Vec::new(),
            notice: None,
            plan: None,
        }
    }
}

/// Renders the import page; with a refusal, as 422.
fn import_page(page: &AdminPage, import: ImportPage) -> Result<HttpResponse, PageError> {
    let refused = import.refusal.is_some();
    let mut response = page.render(&import)?;
    if refused {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn import_form(page: AdminPage) -> Result<HttpResponse, PageError> {
    page.authorize(AdminAction::PolicyImport, None).await?;
    import_page(&page, ImportPage::form(&page, String::new()))
}

/// A pasted policy file (JSON or TOML) is read and planned, and the plan shown;
/// the plan's page posts the file again with `confirm=yes` and the store's
/// generation it was planned against. It is applied only when planning it again
/// gives the plan that was shown (the policies did not change meanwhile), in one
/// audited transaction. Importing asks `policy.import`, then each change as it
/// would be asked on its own (`policy.create`, `policy.update`, `policy.delete`):
/// an import is no way around a deny on any of them.
pub async fn import(post: AdminForm) -> Result<HttpResponse, PageError> {
    let actor = post.authorize(AdminAction::PolicyImport, None).await?;
    let text = post.form.text("policies");
    let mut page = ImportPage::form(&post, text);
    if post.form.get("op") == Some("edit") {
        return import_page(&post, page);
    }
    let file: PolicyFile = match as_code::read(&page.text, FileFormat::detect(None, &page.text)) {
        Ok(file) => file,
        Err(problem) => {
            page.refusal = Some("the file does not read.".to_owned());
            page.errors = vec![problem];
            return import_page(&post, page);
        }
    };
    let plan = match post
        .state
        .policies
        .plan_import(file, &actor, &post.policy_context())
        .await
    {
        Ok(plan) => plan,
        Err(PolicyError::Validation(errors)) => {
            page.refusal = Some("these policies are not valid.".to_owned());
            page.errors = errors;
            return import_page(&post, page);
        }
        Err(other) => return Err(other.into()),
    };
    for (action, target) in plan.questions() {
        post.authorize(action, target).await?;
    }
    if plan.is_empty() {
        page.notice =
            Some("Nothing to do: the policies already are what this file says.".to_owned());
        return import_page(&post, page);
    }
    let reviewed = post
        .form
        .get("generation")
        .and_then(|text| text.parse::<i64>().ok());
    if plan.locks_out_administrators {
        page.refusal = Some(format!("{}.", PolicyError::LocksOutAdministrators));
        page.plan = Some(plan);
        return import_page(&post, page);
    }
    if !post.confirmed() || reviewed != Some(plan.generation()) {
        if post.confirmed() {
            page.notice = Some(
                "The policies changed since you reviewed this import. Nothing was applied; this is what it does now."
                    .to_owned(),
            );
        }
        page.plan = Some(plan);
        return import_page(&post, page);
    }
    match post
        .state
        .policies
        .apply_plan(&plan, &actor, &post.meta, "admin page")
        .await
    {
        Ok(()) => {
            let counts = plan.counts();
            Ok(redirect_with(
                "/admin/policies",
                &format!(
                    "Imported: {} created, {} changed, {} deleted, {} unchanged.",
                    counts.created, counts.changed, counts.deleted, counts.unchanged
                ),
            ))
        }
        Err(refused @ (PolicyError::LocksOutAdministrators | PolicyError::Stale)) => {
            page.refusal = Some(format!("{refused}."));
            page.plan = Some(plan);
            import_page(&post, page)
        }
        Err(other) => Err(other.into()),
    }
}
