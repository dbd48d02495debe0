//! `/api/v1/admin/policies`: policy administration, the simulator, export and
//! import. Every operation asks the engine (resource type `admin`) through
//! `AdminCaller::authorize`, as the admin pages do.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::admin::AdminAction;
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::http::json::Json;
use crate::http::principal::AdminCaller;
use crate::http::problem::{ApiError, Problem};
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};
use crate::model::{Role, UserId};
use crate::policy::as_code::{self, FileFormat, PolicyFile};
use crate::policy::attributes::{ATTRIBUTES, AttributeSpec};
use crate::policy::engine::{Decision, Resource};
use crate::policy::operator::Operator;
use crate::policy::plan::ImportPlan;
use crate::policy::service::{PolicyError, PolicyVersion};
use crate::policy::simulation::{self, Simulation};
use crate::policy::validate::PolicyDraft;
use crate::state::AppState;
use crate::validation::FieldError;

/// A policy as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct PolicyResponse {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub effect: Effect,
    /// `document`, `webhook`, `policy`, `user`, `admin`, `route`, a custom type, or `*`.
    pub resource_type: String,
    /// Action names, or `["*"]` for every action.
    pub actions: Vec<String>,
    /// Nested `all` / `any` / `not` groups of `{attribute, operator, value}`; `null`
    /// means "always" (as for the built-in policies).
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Value>,
    /// 0–1000; orders the list and the explanation, never the outcome.
    pub priority: u16,
    pub status: PolicyStatus,
    pub principals: Principals,
    pub version: i64,
    /// Built in: may be deactivated (the owner policy) or not even that (the
    /// administrator policy), never deleted.
    pub system: bool,
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_by: Option<String>,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&Policy> for PolicyResponse {
    fn from(p: &Policy) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            effect: p.effect,
            resource_type: p.resource_type.clone(),
            actions: p.actions.clone(),
            conditions: p.conditions.clone(),
            priority: p.priority,
            status: p.status,
            principals: p.principals.clone(),
            version: p.version,
            system: p.system,
            created_by: p.created_by.clone(),
            created_at: rfc3339(p.created_at),
            updated_by: p.updated_by.clone(),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// One version of a policy.
#[derive(Serialize, ToSchema)]
pub struct PolicyVersionResponse {
    pub version: i64,
    /// `created`, `updated` or `deleted`.
    pub change: String,
    /// The policy as it was at this version.
    #[schema(value_type = Object)]
    pub snapshot: Value,
    pub changed_by: Option<String>,
    /// RFC 3339.
    pub changed_at: String,
}

impl From<PolicyVersion> for PolicyVersionResponse {
    fn from(v: PolicyVersion) -> Self {
        // Stored snapshots keep Unix seconds; the API shows them as RFC 3339 like
        // every other time.
        let snapshot = match v.policy {
            Some(policy) => {
                serde_json::to_value(PolicyResponse::from(&policy)).unwrap_or(v.snapshot)
            }
            None => v.snapshot,
        };
        Self {
            version: v.version,
            change: v.change,
            snapshot,
            changed_by: v.changed_by,
            changed_at: rfc3339(v.changed_at),
        }
    }
}

fn responses<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Vec<PolicyResponse> {
    policies.into_iter().map(PolicyResponse::from).collect()
}

fn policy_id(path: web::Path<String>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&path.into_inner()).map_err(|_| ApiError::NotFound)
}

/// The policies, by priority; `status` and `resource_type` filter.
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies",
    tag = "policies",
    security(("bearer" = [])),
    params(
        ("status" = Option<PolicyStatus>, Query, description = "active or inactive"),
        ("resource_type" = Option<String>, Query, description = "exact resource type (`*` included)")
    ),
    responses(
        (status = 200, description = "Policies", body = [PolicyResponse]),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin.authorize(AdminAction::PolicyList, None).await?;
    let mut status = None;
    let mut resource_type = None;
    for (key, value) in crate::http::query_pairs(&req)? {
        match (key.as_str(), value.as_str()) {
            ("status", "active") => status = Some(PolicyStatus::Active),
            ("status", "inactive") => status = Some(PolicyStatus::Inactive),
            ("status", _) => {
                return Err(ApiError::Validation(vec![FieldError::rule(
                    "status",
                    "invalid",
                    "must be `active` or `inactive`",
                )]));
            }
            ("resource_type", _) if !value.is_empty() => resource_type = Some(value),
            _ => {}
        }
    }
    let all = state.policies.list();
    let policies = all
        .iter()
        .map(|p| &**p)
        .filter(|p| status.is_none_or(|s| p.status == s))
        .filter(|p| {
            resource_type
                .as_deref()
                .is_none_or(|t| p.resource_type == t)
        });
    Ok(HttpResponse::Ok().json(responses(policies)))
}

/// Create a policy (validated; 422 names each bad field by its JSON path).
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies",
    tag = "policies",
    security(("bearer" = [])),
    request_body = PolicyDraft,
    responses(
        (status = 201, description = "Created", body = PolicyResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named by JSON path (e.g. `conditions.all[1].value`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<PolicyDraft>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.authorize(AdminAction::PolicyCreate, None).await?;
    let policy = state
        .policies
        .create(body.into_inner(), &actor, &meta)
        .await?;
    Ok(HttpResponse::Created().json(PolicyResponse::from(&*policy)))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    responses(
        (status = 200, description = "The policy", body = PolicyResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    admin
        .authorize(AdminAction::PolicyView, Some(id.to_string()))
        .await?;
    let policy = state.policies.get(id)?;
    Ok(HttpResponse::Ok().json(PolicyResponse::from(&*policy)))
}

/// Replace a policy; its version goes up by one.
#[utoipa::path(
    put,
    path = "/api/v1/admin/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    request_body = PolicyDraft,
    responses(
        (status = 200, description = "Updated", body = PolicyResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in policy: the administrator policy cannot change, the owner policy only its status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named by JSON path", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<PolicyDraft>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    let actor = admin
        .authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
        .await?;
    let policy = state
        .policies
        .update(id, body.into_inner(), &actor, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(PolicyResponse::from(&*policy)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyStatusRequest {
    pub status: PolicyStatus,
}

/// Activate or deactivate a policy (the built-in owner policy included).
#[utoipa::path(
    patch,
    path = "/api/v1/admin/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    request_body = PolicyStatusRequest,
    responses(
        (status = 200, description = "Updated", body = PolicyResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The built-in administrator policy cannot be switched off", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn set_status(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<PolicyStatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    let actor = admin
        .authorize(AdminAction::PolicyUpdate, Some(id.to_string()))
        .await?;
    let policy = state
        .policies
        .set_status(id, body.status, &actor, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(PolicyResponse::from(&*policy)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in policy: deactivate it instead", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete(
    admin: AdminCaller,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    let actor = admin
        .authorize(AdminAction::PolicyDelete, Some(id.to_string()))
        .await?;
    state.policies.delete(id, &actor, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every version of a policy, newest first; a built-in policy never edited has
/// one. A deleted policy is 404 here as everywhere (the audit log keeps its changes).
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/{id}/versions",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    responses(
        (status = 200, description = "Versions", body = [PolicyVersionResponse]),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy (or deleted)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn versions(
    admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    admin
        .authorize(AdminAction::PolicyHistory, Some(id.to_string()))
        .await?;
    let versions: Vec<PolicyVersionResponse> = state
        .policies
        .history(id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(versions))
}

/// Every policy as a policy file (`{"policies": [...]}`): the bytes `portcullis
/// policies export` writes, stable-ordered for a diff, to keep in git and import
/// again.
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/export",
    tag = "policies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy file", body = PolicyFile),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn export(
    admin: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin.authorize(AdminAction::PolicyExport, None).await?;
    let all = state.policies.list();
    let text = as_code::render(
        &as_code::file_of(all.iter().map(|p| &**p)),
        FileFormat::Json,
    )
    .map_err(ApiError::Unexpected)?;
    Ok(HttpResponse::Ok()
        .content_type(FileFormat::Json.media_type())
        .insert_header((
            "content-disposition",
            "attachment; filename=\"policies.json\"",
        ))
        .body(text))
}

/// One field a change changes.
#[derive(Serialize, ToSchema)]
pub struct ImportFieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// One policy an import creates, changes or deletes.
#[derive(Serialize, ToSchema)]
pub struct ImportChange {
    pub id: Uuid,
    pub name: String,
    /// `create`, `change` or `delete`.
    pub kind: &'static str,
    /// For a change: the fields it changes.
    pub fields: Vec<ImportFieldChange>,
}

/// The administrator actions one administrator loses by the import.
#[derive(Serialize, ToSchema)]
pub struct ImportAdminLoss {
    pub email: String,
    pub actions: Vec<&'static str>,
}

/// What an import does, or did: its plan, as `policies import --dry-run` and the
/// Policies page show it.
#[derive(Serialize, ToSchema)]
pub struct ImportResponse {
    /// Whether it was applied: false for `?dry_run=true`, and when the policies
    /// already are what the file says.
    pub applied: bool,
    pub created: usize,
    pub changed: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// Creates and changes in the file's order, then deletes.
    pub changes: Vec<ImportChange>,
    pub administrators_losing: Vec<ImportAdminLoss>,
    /// Things worth a second look that are not errors.
    pub notes: Vec<String>,
}

impl ImportResponse {
    fn of(plan: &ImportPlan, applied: bool) -> Self {
        let counts = plan.counts();
        Self {
            applied,
            created: counts.created,
            changed: counts.changed,
            deleted: counts.deleted,
            unchanged: counts.unchanged,
            changes: plan
                .changes
                .iter()
                .map(|change| ImportChange {
                    id: change.id,
                    name: change.name.clone(),
                    kind: change.kind.as_str(),
                    fields: change
                        .fields
                        .iter()
                        .map(|f| ImportFieldChange {
                            field: f.field,
                            before: f.before.clone(),
                            after: f.after.clone(),
                        })
                        .collect(),
                })
                .collect(),
            administrators_losing: plan
                .admin_losses
                .iter()
                .map(|loss| ImportAdminLoss {
                    email: loss.email.clone(),
                    actions: loss.actions.clone(),
                })
                .collect(),
            notes: plan.notes.clone(),
        }
    }
}

/// Import a policy file (what `export` gives): the stored policies become what it
/// says — a policy it does not list is deleted, one without an `id` is created,
/// the built-in ones are kept. All or nothing, in one audited transaction;
/// `?dry_run=true` only answers the plan. Asks `policy.import`, then each change as
/// it would be asked on its own.
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies/import",
    tag = "policies",
    security(("bearer" = [])),
    params(("dry_run" = Option<bool>, Query, description = "Only answer what the import would do")),
    request_body = PolicyFile,
    responses(
        (status = 200, description = "The plan, applied unless a dry run", body = ImportResponse),
        (status = 403, description = "Not an administrator, or a change it makes is denied", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave no administrator able to mend the policies, or the policies changed while it was planned; nothing applied", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing imported; each bad field named as `policies[i].path`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn import(
    admin: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<PolicyFile>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.authorize(AdminAction::PolicyImport, None).await?;
    let mut dry_run = false;
    for (key, value) in crate::http::query_pairs(&req)? {
        match (key.as_str(), value.as_str()) {
            ("dry_run", "true") => dry_run = true,
            ("dry_run", "false") => dry_run = false,
            ("dry_run", _) => {
                return Err(ApiError::Validation(vec![FieldError::rule(
                    "dry_run",
                    "invalid",
                    "must be `true` or `false`",
                )]));
            }
            _ => {}
        }
    }
    let plan = state
        .policies
        .plan_import(body.into_inner(), &actor, admin.context())
        .await?;
    for (action, target) in plan.questions() {
        admin.authorize(action, target).await?;
    }
    if plan.locks_out_administrators {
        return Err(PolicyError::LocksOutAdministrators.into());
    }
    let applied = !dry_run && !plan.is_empty();
    if applied {
        state
            .policies
            .apply_plan(&plan, &actor, &meta, "admin API")
            .await?;
    }
    Ok(HttpResponse::Ok().json(ImportResponse::of(&plan, applied)))
}

#[derive(Serialize, ToSchema)]
pub struct OperatorSpec {
    pub name: Operator,
    pub value: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Vocabulary {
    pub attributes: Vec<AttributeSpec>,
    pub operators: Vec<OperatorSpec>,
}

/// The attribute names and operators conditions may use: the engine's own lists.
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/vocabulary",
    tag = "policies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Attributes and operators", body = Vocabulary),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn vocabulary(admin: AdminCaller) -> Result<HttpResponse, ApiError> {
    admin.authorize(AdminAction::PolicyList, None).await?;
    Ok(HttpResponse::Ok().json(Vocabulary {
        attributes: ATTRIBUTES.to_vec(),
        operators: Operator::ALL
            .iter()
            .map(|op| OperatorSpec {
                name: *op,
                value: op.value_help(),
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedSubject {
    /// `false`: a signed-out visitor of the gate (everything else here is ignored).
    #[serde(default = "signed_in")]
    pub authenticated: bool,
    /// An existing user: their e-mail, role, MFA state and attributes are used.
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<UserId>,
    /// Otherwise, a subject described here.
    #[serde(default)]
    pub email: String,
    #[serde(default = "user_role")]
    pub role: Role,
    #[serde(default)]
    pub mfa: bool,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

fn signed_in() -> bool {
    true
}

fn user_role() -> Role {
    Role::User
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceDescription {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub owner_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl From<ResourceDescription> for Resource {
    fn from(r: ResourceDescription) -> Self {
        Resource {
            kind: r.kind,
            id: r.id,
            owner_id: r.owner_id,
            attributes: r.attributes,
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SimulatedContext {
    #[schema(value_type = Option<String>)]
    pub ip: Option<std::net::IpAddr>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// RFC 3339; default now.
    pub time: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    pub subject: SimulatedSubject,
    pub action: String,
    pub resource: ResourceDescription,
    #[serde(default)]
    pub context: SimulatedContext,
}

/// What the engine would decide, and why, condition by condition.
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies/simulate",
    tag = "policies",
    security(("bearer" = [])),
    request_body = SimulateRequest,
    responses(
        (status = 200, description = "The decision and its explanation", body = SimulateResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad names, unknown user, or a bad time", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn simulate(
    admin: AdminCaller,
    state: web::Data<AppState>,
    body: Json<SimulateRequest>,
) -> Result<HttpResponse, ApiError> {
    admin.authorize(AdminAction::PolicySimulate, None).await?;
    let body = body.into_inner();
    let subject = match body.subject.user_id {
        _ if !body.subject.authenticated => simulation::SimulatedSubject::SignedOut,
        Some(id) => simulation::SimulatedSubject::User(id),
        None => simulation::SimulatedSubject::Described {
            email: body.subject.email,
            role: body.subject.role,
            mfa: body.subject.mfa,
            attributes: body.subject.attributes,
        },
    };
    let simulated = state
        .decisions
        .simulate(Simulation {
            subject,
            action: body.action,
            resource: body.resource.into(),
            ip: body.context.ip,
            method: body.context.method,
            path: body.context.path,
            time: body.context.time,
        })
        .await?;
    Ok(HttpResponse::Ok().json(SimulateResponse {
        subject_source: simulated.subject.as_str(),
        owner_source: simulated.owner.as_str(),
        attribute_sources: simulated
            .attributes
            .iter()
            .map(|(name, source)| (name.clone(), source.as_str()))
            .collect(),
        decision: simulated.decision,
    }))
}

/// The decision and its explanation, and where its inputs came from: a stored user
/// or resource (given by id) is used as stored, so the simulator agrees with the
/// system.
#[derive(Serialize, ToSchema)]
pub struct SimulateResponse {
    #[serde(flatten)]
    pub decision: Decision,
    /// `stored` (a `user_id`) or `typed`.
    pub subject_source: &'static str,
    /// `stored` (a stored resource, by id) or `typed`.
    pub owner_source: &'static str,
    /// Each resource attribute and where it came from: `stored` or `typed`.
    #[schema(value_type = Object)]
    pub attribute_sources: std::collections::BTreeMap<String, &'static str>,
}
