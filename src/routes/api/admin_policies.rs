//! `/api/v1/admin/policies`: policy administration, the simulator, export and
//! import. Administrators only.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::service::RequestMeta;
use crate::accounts::{Role, UserId};
use crate::auth::extractor::Admin;
use crate::db::DbError;
use crate::db::policies::VersionRow;
use crate::db::users;
use crate::error::{ApiError, FieldError, Problem};
use crate::http::json::Json;
use crate::policy::attributes::{ATTRIBUTES, AttributeSpec};
use crate::policy::engine::{AccessRequest, Context, Decision, Resource, Subject};
use crate::policy::model::{Policy, PolicyStatus};
use crate::policy::operator::Operator;
use crate::policy::service::ImportedPolicy;
use crate::policy::validate::{PolicyDraft, is_name};
use crate::state::AppState;

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
        (status = 200, description = "Policies", body = [Policy]),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    _admin: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut status = None;
    let mut resource_type = None;
    for (key, value) in super::query_pairs(&req)? {
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
    let policies: Vec<Policy> = state
        .policies
        .list()
        .into_iter()
        .filter(|p| status.is_none_or(|s| p.status == s))
        .filter(|p| {
            resource_type
                .as_deref()
                .is_none_or(|t| p.resource_type == t)
        })
        .map(|p| (*p).clone())
        .collect();
    Ok(HttpResponse::Ok().json(policies))
}

/// Create a policy (validated; 422 names each bad field by its JSON path).
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies",
    tag = "policies",
    security(("bearer" = [])),
    request_body = PolicyDraft,
    responses(
        (status = 201, description = "Created", body = Policy),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named by JSON path (e.g. `conditions.all[1].value`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<PolicyDraft>,
) -> Result<HttpResponse, ApiError> {
    let policy = state
        .policies
        .create(body.into_inner(), admin.0.user_id, &meta)
        .await?;
    Ok(HttpResponse::Created().json(&*policy))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/{id}",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    responses(
        (status = 200, description = "The policy", body = Policy),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let policy = state.policies.get(policy_id(path)?)?;
    Ok(HttpResponse::Ok().json(&*policy))
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
        (status = 200, description = "Updated", body = Policy),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named by JSON path", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update(
    admin: Admin,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<PolicyDraft>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    let policy = state
        .policies
        .update(id, body.into_inner(), admin.0.user_id, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(&*policy))
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
        (status = 200, description = "Updated", body = Policy),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn set_status(
    admin: Admin,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<PolicyStatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    let policy = state
        .policies
        .set_status(id, body.status, admin.0.user_id, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(&*policy))
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
    admin: Admin,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = policy_id(path)?;
    state.policies.delete(id, admin.0.user_id, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every version of a policy, newest first (deleted ones too).
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/{id}/versions",
    tag = "policies",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Policy id")),
    responses(
        (status = 200, description = "Versions", body = [VersionRow]),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy, ever", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn versions(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rows = state.policies.history(policy_id(path)?).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Every policy, for `import` elsewhere.
#[utoipa::path(
    get,
    path = "/api/v1/admin/policies/export",
    tag = "policies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All policies", body = [Policy]),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn export(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all: Vec<Policy> = state
        .policies
        .list()
        .into_iter()
        .map(|p| (*p).clone())
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((
            "content-disposition",
            "attachment; filename=\"portcullis-policies.json\"",
        ))
        .json(all))
}

#[derive(Serialize, ToSchema)]
pub struct ImportResponse {
    pub imported: usize,
}

/// Import policies: a list of drafts (an `id` keeps or updates that policy). All or
/// nothing: one invalid entry rejects the whole import, naming `[i].field`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies/import",
    tag = "policies",
    security(("bearer" = [])),
    request_body = [ImportedPolicy],
    responses(
        (status = 200, description = "Imported", body = ImportResponse),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing imported; each bad field named as `[i].path`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn import(
    admin: Admin,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<Vec<ImportedPolicy>>,
) -> Result<HttpResponse, ApiError> {
    let imported = state
        .policies
        .import(body.into_inner(), admin.0.user_id, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(ImportResponse { imported }))
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
pub async fn vocabulary(_admin: Admin) -> Result<HttpResponse, ApiError> {
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

/// Checks the names a request may carry; `*` is for policies, not requests.
pub fn check_names(action: &str, kind: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if !is_name(action) {
        errors.push(FieldError::rule(
            "action",
            "invalid",
            "must be a name of lower-case letters, digits, `_`, `-`, `.` or `:`",
        ));
    }
    if !is_name(kind) {
        errors.push(FieldError::rule(
            "resource.type",
            "invalid",
            "must be a name of lower-case letters, digits, `_`, `-`, `.` or `:`",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// What the engine would decide, and why, condition by condition.
#[utoipa::path(
    post,
    path = "/api/v1/admin/policies/simulate",
    tag = "policies",
    security(("bearer" = [])),
    request_body = SimulateRequest,
    responses(
        (status = 200, description = "The decision and its explanation", body = Decision),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad names, unknown user, or a bad time", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn simulate(
    _admin: Admin,
    state: web::Data<AppState>,
    body: Json<SimulateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_names(&body.action, &body.resource.kind)?;
    let subject = match body.subject.user_id {
        Some(id) => {
            let user = state
                .db
                .read(move |conn| Ok::<_, DbError>(users::find(conn, id)?))
                .await
                .map_err(|e| ApiError::Unexpected(e.into()))?
                .ok_or_else(|| {
                    ApiError::Validation(vec![FieldError::rule(
                        "subject.user_id",
                        "unknown",
                        "names no user",
                    )])
                })?;
            Subject::from(&user)
        }
        None => Subject {
            id: UserId(Uuid::nil()),
            email: body.subject.email,
            role: body.subject.role,
            mfa: body.subject.mfa,
            attributes: body.subject.attributes,
        },
    };
    let now = match body.context.time.as_deref() {
        None => state.clock.now(),
        Some(text) => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| {
                    ApiError::Validation(vec![FieldError::rule(
                        "context.time",
                        "invalid",
                        "must be an RFC 3339 time, e.g. 2026-11-23T10:30:00Z",
                    )])
                })?
        }
    };
    let request = AccessRequest {
        subject,
        action: body.action,
        resource: Resource {
            kind: body.resource.kind,
            id: body.resource.id,
            owner_id: body.resource.owner_id,
            attributes: body.resource.attributes,
        },
        context: Context {
            ip: body.context.ip,
            method: body.context.method,
            path: body.context.path,
            now,
        },
    };
    Ok(HttpResponse::Ok().json(state.policies.explain(&request)))
}
