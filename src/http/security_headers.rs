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

/// Powerful features no response may use. (`interest-cohort`, for the FLoC trial
/// browsers dropped in 2022, is gone: browsers now warn about it as unknown.)
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";

type HeaderList = Rc<[(HeaderName, HeaderValue)]>;

#[derive(Clone)]
pub struct SecurityHeaders {
    headers: HeaderList,
}

/// The headers every response carries unless its handler set its own: HSTS with
/// `hsts_max_age_seconds` when it is on.
pub fn response_headers(hsts_max_age_seconds: Option<u64>) -> Vec<(HeaderName, HeaderValue)> {
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
    if let Some(max_age) = hsts_max_age_seconds {
        headers.push((
            "strict-transport-security",
            format!("max-age={max_age}; includeSubDomains"),
        ));
    }
    headers
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
}

impl SecurityHeaders {
    pub fn new(http: &HttpSettings) -> Self {
        let hsts = http.hsts_enabled().then_some(http.hsts_max_age_seconds);
        Self {
            headers: Rc::from(response_headers(hsts)),
        }
    }
}

/// Adds each header `target` lacks. A response has a handful of headers of its
/// own, so they are looked at once, rather than looking each of ours up in them.
fn fill_in(headers: &[(HeaderName, HeaderValue)], target: &mut HeaderMap) {
    // Bit i: the response has our header i already (we have fewer than 64).
    let mut present: u64 = 0;
    for name in target.keys() {
        if let Some(i) = headers.iter().position(|(ours, _)| ours == name) {
            present |= 1 << (i % 64);
        }
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        let has = if i < 64 {
            present & (1 << i) != 0
        } else {
            target.contains_key(name)
        };
        if !has {
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
