//! Headers every response carries. A handler that needs a different value (an admin
//! page's CSP, a static file's Cache-Control) sets its own; these fill in the rest.

use actix_web::middleware::DefaultHeaders;

use crate::config::HttpSettings;

/// For JSON responses: nothing may load, nothing may frame us.
pub const API_CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()";

pub fn security_headers(http: &HttpSettings) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Content-Security-Policy", API_CONTENT_SECURITY_POLICY))
        .add(("Permissions-Policy", PERMISSIONS_POLICY))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add(("X-Permitted-Cross-Domain-Policies", "none"))
        // Responses carry tokens and account data: never cache them.
        .add(("Cache-Control", "no-store"));
    if http.hsts_enabled() {
        headers.add((
            "Strict-Transport-Security",
            format!("max-age={}; includeSubDomains", http.hsts_max_age_seconds),
        ))
    } else {
        headers
    }
}
