//! Every route the server answers, registered in one place.

pub mod health;
pub mod openapi;

use actix_web::http::header;
use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health", "GET").route(web::get().to(health::live)))
        .service(resource("/health/ready", "GET").route(web::get().to(health::ready)))
        .service(resource("/api/openapi.json", "GET").route(web::get().to(openapi::spec)));
}

/// A resource whose unsupported methods get 405 with an `Allow` header listing
/// `allow` (the methods its routes accept).
pub fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut response = HttpResponse::MethodNotAllowed();
        response.insert_header((header::ALLOW, allow));
        response.finish()
    }))
}

/// Any path no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
