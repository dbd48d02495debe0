//! `/api/v1/documents`: owned documents. Every read, update and delete is decided
//! by the policy engine; a document the caller may not read is 404, never 403.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::RequestMeta;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::documents::service::{Caller, DocumentInput, DocumentPatch, MAX_PAGE};
use crate::http::json::Json;
use crate::http::problem::{ApiError, Problem};
use crate::http::request_context::policy_context;
use crate::model::document::{Classification, Document};
use crate::policy::engine::Subject;
use crate::state::AppState;
use crate::validation::FieldError;

/// Who is calling, as the policy engine sees them: the account (from the profile
/// cache), how its session was signed in to, and the request's address, method,
/// path and time.
pub async fn caller(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    meta: RequestMeta,
) -> Result<Caller, ApiError> {
    let user = state.accounts.me(principal).await?;
    Ok(Caller {
        subject: Subject::signed_in_with(&user, principal.auth_method),
        context: policy_context(req, &meta, state.clock.now()),
        meta,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    /// 1–200 characters once trimmed.
    pub title: String,
    /// At most 100,000 characters.
    #[serde(default)]
    pub body: String,
    pub classification: Classification,
    /// Flat key → string, number, boolean or list; readable by policies as
    /// `resource.attributes.<key>`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatchRequest {
    /// 1–200 characters once trimmed.
    pub title: Option<String>,
    /// At most 100,000 characters.
    pub body: Option<String>,
    pub classification: Option<Classification>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentResponse {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub body: String,
    pub classification: Classification,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Document> for DocumentResponse {
    fn from(d: Document) -> Self {
        Self {
            id: d.id,
            owner_id: d.owner_id.0,
            title: d.title,
            body: d.body,
            classification: d.classification,
            attributes: d.attributes,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DocumentListResponse {
    pub documents: Vec<DocumentResponse>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<Uuid>,
}

fn document_id(path: web::Path<String>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&path.into_inner()).map_err(|_| ApiError::NotFound)
}

/// `limit` (1–100, default 20) and `cursor` (a document id) from the query string.
fn page_params(req: &HttpRequest) -> Result<(usize, Option<Uuid>), ApiError> {
    let mut limit = 20;
    let mut cursor = None;
    let mut errors = Vec::new();
    for (key, value) in crate::http::query_pairs(req)? {
        match key.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => errors.push(FieldError::rule(
                    "limit",
                    "out_of_range",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )),
            },
            "cursor" => match Uuid::parse_str(&value) {
                Ok(id) => cursor = Some(id),
                Err(_) => errors.push(FieldError::rule(
                    "cursor",
                    "invalid",
                    "must be the next_cursor of a previous page",
                )),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok((limit, cursor))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The documents the caller may read, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/documents",
    tag = "documents",
    security(("bearer" = [])),
    params(
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "1–100, default 20"),
        ("cursor" = Option<Uuid>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "Readable documents", body = DocumentListResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`Access control evaluation failed. Please try again later.`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    let (limit, cursor) = page_params(&req)?;
    let caller = caller(&req, &state, &principal, meta).await?;
    let page = state.documents.list(&caller, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(DocumentListResponse {
        documents: page.documents.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a document owned by the caller.
#[utoipa::path(
    post,
    path = "/api/v1/documents",
    tag = "documents",
    security(("bearer" = [])),
    request_body = DocumentRequest,
    responses(
        (status = 201, description = "Created", body = DocumentResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The policies do not allow creating it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a named rule (or `owner_id` was sent)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<DocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, &state, &principal, meta).await?;
    let body = body.into_inner();
    let document = state
        .documents
        .create(
            &caller,
            DocumentInput {
                title: body.title,
                body: body.body,
                classification: body.classification,
                attributes: body.attributes,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(DocumentResponse::from(document)))
}

/// One document, if the caller may read it.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document", body = DocumentResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document, or one the caller may not read", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`Access control evaluation failed. Please try again later.`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(path)?;
    let caller = caller(&req, &state, &principal, meta).await?;
    let document = state.documents.get(&caller, id).await?;
    Ok(HttpResponse::Ok().json(DocumentResponse::from(document)))
}

/// Replace a document's fields.
#[utoipa::path(
    put,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    request_body = DocumentRequest,
    responses(
        (status = 200, description = "Updated", body = DocumentResponse),
        (status = 403, description = "Readable, but the policies do not allow this update", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document, or one the caller may not read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a named rule", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn replace(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<DocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(path)?;
    let caller = caller(&req, &state, &principal, meta).await?;
    let body = body.into_inner();
    let patch = DocumentPatch {
        title: Some(body.title),
        body: Some(body.body),
        classification: Some(body.classification),
        attributes: Some(body.attributes),
    };
    let document = state.documents.update(&caller, id, patch).await?;
    Ok(HttpResponse::Ok().json(DocumentResponse::from(document)))
}

/// Change some of a document's fields.
#[utoipa::path(
    patch,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    request_body = DocumentPatchRequest,
    responses(
        (status = 200, description = "Updated", body = DocumentResponse),
        (status = 403, description = "Readable, but the policies do not allow this update", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document, or one the caller may not read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a named rule", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn patch(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    body: Json<DocumentPatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(path)?;
    let caller = caller(&req, &state, &principal, meta).await?;
    let body = body.into_inner();
    let patch = DocumentPatch {
        title: body.title,
        body: body.body,
        classification: body.classification,
        attributes: body.attributes,
    };
    let document = state.documents.update(&caller, id, patch).await?;
    Ok(HttpResponse::Ok().json(DocumentResponse::from(document)))
}

/// Delete a document.
#[utoipa::path(
    delete,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Readable, but the policies do not allow deleting it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document, or one the caller may not read", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = document_id(path)?;
    let caller = caller(&req, &state, &principal, meta).await?;
    state.documents.delete(&caller, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
