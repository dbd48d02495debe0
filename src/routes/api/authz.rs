//! `POST /api/v1/authz/check`: the decision API, for services that ask Portcullis
//! whether a user may do something. Programmatic, so it never fails open: an
//! evaluation error is `allowed: false` (and audited).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::admin_policies::{ResourceDescription, check_names};
use super::documents::caller;
use crate::accounts::service::RequestMeta;
use crate::accounts::{Role, UserId};
use crate::auth::Principal;
use crate::db::{DbError, documents, users};
use crate::documents::RESOURCE_TYPE;
use crate::error::{ApiError, FieldError, Problem};
use crate::http::json::Json;
use crate::policy::engine::{AccessRequest, Resource, Subject};
use crate::state::AppState;

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
        (status = 403, description = "`subject_id` names someone else and the caller is not an administrator", body = Problem, content_type = "application/problem+json"),
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
    check_names(&body.action, &body.resource.kind)?;
    let mut asking = caller(&req, &state, &principal, meta).await?;
    if let Some(other) = body.subject_id.filter(|id| *id != principal.user_id) {
        if principal.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "Only administrators may ask about another user.",
            ));
        }
        let user = state
            .db
            .read(move |conn| Ok::<_, DbError>(users::find(conn, other)?))
            .await
            .map_err(|e| ApiError::Unexpected(e.into()))?
            .ok_or_else(|| {
                ApiError::Validation(vec![FieldError::rule(
                    "subject_id",
                    "unknown",
                    "names no user",
                )])
            })?;
        asking.subject = Subject::from(&user);
    }
    let described = body.resource;
    // A stored document is judged as it is stored, not as described.
    let stored = match (described.kind.as_str(), described.id.as_deref()) {
        (RESOURCE_TYPE, Some(id)) => match Uuid::parse_str(id) {
            Ok(id) => Some(
                state
                    .db
                    .read(move |conn| Ok::<_, DbError>(documents::find(conn, id)?))
                    .await
                    .map_err(|e| ApiError::Unexpected(e.into()))?,
            ),
            Err(_) => Some(None),
        },
        _ => None,
    };
    let resource = match &stored {
        Some(Some(document)) => document.as_resource(),
        // No such document: nothing to allow.
        Some(None) => return Ok(HttpResponse::Ok().json(CheckResponse { allowed: false })),
        None => Resource {
            kind: described.kind,
            id: described.id,
            owner_id: described.owner_id,
            attributes: described.attributes,
        },
    };
    // A stored document the subject may not read does not exist for them: no
    // other action on it is allowed either, so no answer reveals it.
    if matches!(stored, Some(Some(_))) && body.action != "read" {
        let read = AccessRequest {
            subject: asking.subject.clone(),
            action: "read".to_owned(),
            resource: resource.clone(),
            context: asking.context.clone(),
        };
        if !state.policies.is_allowed(&read, &asking.meta).await {
            return Ok(HttpResponse::Ok().json(CheckResponse { allowed: false }));
        }
    }
    let request = AccessRequest {
        subject: asking.subject,
        action: body.action,
        resource,
        context: asking.context,
    };
    let allowed = state.policies.is_allowed(&request, &asking.meta).await;
    Ok(HttpResponse::Ok().json(CheckResponse { allowed }))
}
