//! CORS exactly as DESIGN.md says: configured origins only, a fixed header list.
//!
//! Only a request that names an `Origin` (or a preflight) is a CORS request;
//! actix-cors answers those. Every other request — most of them: proxies, API
//! clients, same-origin pages — goes straight on and gets only the `Vary` header
//! actix-cors would have added (caches must still tell the two apart), not the
//! CORS work and `Access-Control-Expose-Headers` that mean nothing without an
//! origin.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, header::HeaderName};
use futures_util::future::LocalBoxFuture;

/// Request headers a browser may send cross-origin.
pub const ALLOWED_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "x-requested-with",
    "x-request-id",
    "accept",
    "origin",
];

/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: [&str; 2] = ["x-process-time", "x-request-id"];

/// What actix-cors sends as `Vary` on every response.
const VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// Origins were validated at startup (no `*`, no `null`, exact `scheme://host[:port]`).
/// A request from any other origin is served without CORS headers, so the browser
/// withholds the response; a preflight from it is refused.
pub fn cors(allowed_origins: &[String]) -> CrossOrigin {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(600);
    CrossOrigin(
        allowed_origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    )
}

/// actix-cors for CORS requests, a `Vary` header for the rest.
pub struct CrossOrigin(Cors);

/// The inner service, shared by the CORS path and the direct one.
pub struct Shared<S>(Rc<S>);

impl<S: Service<ServiceRequest>> Service<ServiceRequest> for Shared<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        self.0.call(req)
    }
}

pub struct CrossOriginMiddleware<S, C> {
    direct: Rc<S>,
    cors: C,
}

impl<S, B> Transform<S, ServiceRequest> for CrossOrigin
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform =
        CrossOriginMiddleware<S, <Cors as Transform<Shared<S>, ServiceRequest>>::Transform>;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<Self::Transform, ()>>>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let direct = Rc::new(service);
        let cors = self.0.new_transform(Shared(Rc::clone(&direct)));
        Box::pin(async move {
            Ok(CrossOriginMiddleware {
                direct,
                cors: cors.await?,
            })
        })
    }
}

impl<S, B, C> Service<ServiceRequest> for CrossOriginMiddleware<S, C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
    C: Service<ServiceRequest, Response = ServiceResponse<EitherBody<B>>, Error = actix_web::Error>,
    C::Future: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(cors);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let cross_origin = req.headers().contains_key(header::ORIGIN)
            || (req.method() == Method::OPTIONS
                && req
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD));
        if cross_origin {
            return Box::pin(self.cors.call(req));
        }
        let direct = self.direct.call(req);
        Box::pin(async move {
            match direct.await {
                Ok(mut response) => {
                    add_vary(response.headers_mut());
                    Ok(response.map_into_left_body())
                }
                Err(mut error) => {
                    error.add_response_mapper(|mut response| {
                        add_vary(response.headers_mut());
                        response
                    });
                    Err(error)
                }
            }
        })
    }
}

/// Adds [`VARY`] to what the response varies on already.
fn add_vary(headers: &mut header::HeaderMap) {
    let value = match headers.get(header::VARY).and_then(|v| v.to_str().ok()) {
        Some(existing) => HeaderValue::from_str(&format!("{existing}, {VARY}")).ok(),
        None => Some(HeaderValue::from_static(VARY)),
    };
    if let Some(value) = value {
        headers.insert(header::VARY, value);
    }
}
