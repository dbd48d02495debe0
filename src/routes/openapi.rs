//! The OpenAPI document. Every endpoint is listed here; a test checks that each
//! registered API route appears.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;

use crate::error::{FieldError, Problem};
use crate::routes::health::{self, HealthStatus, ReadinessStatus};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        version = "1",
        description = "Fail-closed accounts, tokens, MFA, rate limits, ABAC, webhooks and audit for single-host deployments. Every error is application/problem+json with a request_id."
    ),
    paths(health::live, health::ready, spec),
    components(schemas(Problem, FieldError, HealthStatus, ReadinessStatus)),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// Rendered once: the document never changes while the process runs.
fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
