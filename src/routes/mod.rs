//! Every route the server answers, registered in one place, and the API door's
//! mapping of domain errors to problems (`errors`). `metrics` is served on a
//! listener of its own, not here.

pub mod admin;
pub mod api;
pub mod ceremony;
pub mod demo_receiver;
pub mod errors;
pub mod gate;
pub mod health;
pub mod metrics;
pub mod openapi;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header;
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, web};

use crate::http::problem::ApiError;

/// The router tries services in this order, so the ones every request of a kind
/// meets come first: the health probe, the gate's doors (asked for every request
/// to every app; before the `/api/v1` scope, which would take their paths), and
/// the API; pages after them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/health", health::live))
        .configure(gate::configure_doors)
        .service(api::scope())
        .service(get("/health/live", health::live_by_name))
        .service(get("/health/ready", health::ready))
        .service(get("/api/openapi.json", openapi::spec))
        .configure(gate::configure_pages)
        .configure(admin::configure);
}

/// A resource whose other methods get 405 with an `Allow` header listing `allow`.
pub(crate) fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut response = HttpResponse::MethodNotAllowed();
        response.insert_header((header::ALLOW, allow));
        response.finish()
    }))
}

/// A GET resource (HEAD answered too, for probes).
pub fn get<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource(path, "GET, HEAD")
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}

/// A page with a form: GET (and HEAD) shows it, POST submits it.
pub fn get_post<G, GArgs, P, PArgs>(path: &str, show: G, submit: P) -> impl HttpServiceFactory
where
    G: Handler<GArgs>,
    GArgs: FromRequest + 'static,
    G::Output: Responder + 'static,
    P: Handler<PArgs>,
    PArgs: FromRequest + 'static,
    P::Output: Responder + 'static,
{
    resource(path, "GET, HEAD, POST")
        .route(web::get().to(show.clone()))
        .route(web::head().to(show))
        .route(web::post().to(submit))
}

pub fn post<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource(path, "POST").route(web::post().to(handler))
}

pub fn delete<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource(path, "DELETE").route(web::delete().to(handler))
}

/// Any path no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
