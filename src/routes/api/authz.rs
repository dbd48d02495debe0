//! `POST /api/v1/authz/check`: the decision API, for services that ask Portcullis
//! whether a user may do something. Programmatic, so it never fails open: an
//! evaluation error is `allowed: false` (and audited).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin_policies::ResourceDescription;
use super::documents::caller;
use crate::accounts::AccountError;
use crate::admin::AdminAction;
use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::authz::ResourceSource;
use crate::http::json::Json;
use crate::http::problem::{ApiError, Problem};
use crate::model::{Role, UserId};
use crate::policy::engine::Subject;
use crate::policy::simulation::check_request_names;
use crate::state::AppState;
use crate::validation::FieldError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub action: String,
    /// A resource by type and id (a stored document is looked up), or described by
    /// its owner and attributes.
    pub resource: ResourceDescription,
    /// Administrators may ask about another user.
    #[schema(value_type = Option<Uuid>)]
    pub subject_id: Option<UserId>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    /// `server`: a resource of a type the server owns, judged as stored (its owner
    /// and attributes as the server holds them). `caller`: a custom type, judged as
    /// described.
    pub resource_source: &'static str,
}

/// May the caller (or, for an administrator, `subject_id`) do `action` on the
/// resource?
#[utoipa::path(
    post,
    path = "/api/v1/authz/check",
    tag = "authz",
    security(("bearer" = [])),
    request_body = CheckRequest,
    responses(
        (status = 200, description = "The decision; `false` on any evaluation error", body = CheckResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`subject_id` names someone else and the caller is not an administrator the engine lets simulate them", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A resource of a server-owned type (document, webhook, user, policy) that does not exist, or that the subject may not read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad action or resource type, or an unknown `subject_id`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn check(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let errors = check_request_names(&body.action, &body.resource.kind);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let meta_for_admin = meta.clone();
    let mut asking = caller(&req, &state, &principal, meta).await?;
    if let Some(other) = body.subject_id.filter(|id| *id != principal.user_id) {
        if principal.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "Only administrators may ask about another user.",
            ));
        }
        // Asking what someone else may do is simulating them: the same question as
        // the simulator's, on every door.
        let administrator = state.accounts.me(&principal).await?;
        state
            .admin_access
            .authorize(
                &administrator,
                principal.auth_method,
                AdminAction::PolicySimulate,
                Some(other.to_string()),
                asking.context.clone(),
                &meta_for_admin,
            )
            .await?;
        let user = match state.accounts.find_user(other).await {
            Err(AccountError::UserNotFound) => {
                return Err(ApiError::Validation(vec![FieldError::rule(
                    "subject_id",
                    "unknown",
                    "names no user",
                )]));
            }
            found => found?,
        };
        asking.subject = Subject::from(&user);
    }
    let answer = state
        .decisions
        .check(&asking, &body.action, body.resource.into())
        .await?;
    Ok(HttpResponse::Ok().json(CheckResponse {
        allowed: answer.allowed,
        resource_source: match answer.source {
            ResourceSource::Server => "server",
            ResourceSource::Caller => "caller",
        },
    }))
}
