//! Headers every response carries — including error responses that only take shape
//! in the server's dispatcher (a panic, a middleware error). A handler that needs a
//! different value (an admin page's CSP, a static file's Cache-Control) sets its own;
//! these fill in what is absent.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::Error;
use actix_web::HttpResponse;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;

use crate::config::HttpSettings;

/// For JSON responses: nothing may load, nothing may frame us.
pub const API_CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()";

type HeaderList = Rc<[(HeaderName, HeaderValue)]>;

#[derive(Clone)]
pub struct SecurityHeaders {
    headers: HeaderList,
}

impl SecurityHeaders {
    pub fn new(http: &HttpSettings) -> Self {
        let mut headers = vec![
            ("x-content-type-options", "nosniff".to_owned()),
            ("x-frame-options", "DENY".to_owned()),
            ("referrer-policy", "no-referrer".to_owned()),
            (
                "content-security-policy",
                API_CONTENT_SECURITY_POLICY.to_owned(),
            ),
            ("permissions-policy", PERMISSIONS_POLICY.to_owned()),
            ("cross-origin-opener-policy", "same-origin".to_owned()),
            ("cross-origin-resource-policy", "same-origin".to_owned()),
            ("x-permitted-cross-domain-policies", "none".to_owned()),
            // Responses carry tokens and account data: never cache them.
            ("cache-control", "no-store".to_owned()),
        ];
        if http.hsts_enabled() {
            headers.push((
                "strict-transport-security",
                format!("max-age={}; includeSubDomains", http.hsts_max_age_seconds),
            ));
        }
        let headers = headers
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect::<Vec<_>>();
        Self {
            headers: Rc::from(headers),
        }
    }
}

fn fill_in(headers: &[(HeaderName, HeaderValue)], target: &mut HeaderMap) {
    for (name, value) in headers {
        if !target.contains_key(name) {
            target.insert(name.clone(), value.clone());
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SecurityHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = SecurityHeadersMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersMiddleware {
            service,
            headers: Rc::clone(&self.headers),
        }))
    }
}

pub struct SecurityHeadersMiddleware<S> {
    service: S,
    headers: HeaderList,
}

impl<S, B> Service<ServiceRequest> for SecurityHeadersMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = Rc::clone(&self.headers);
        let fut = self.service.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(mut response) => {
                    fill_in(&headers, response.headers_mut());
                    Ok(response)
                }
                Err(mut error) => {
                    error.add_response_mapper(move |mut response: HttpResponse| {
                        fill_in(&headers, response.headers_mut());
                        response
                    });
                    Err(error)
                }
            }
        })
    }
}
