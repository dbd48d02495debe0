use std::collections::BTreeSet;

use crate::helpers::{problem, spawn_app_with};

const ALLOWED: &str = "https://app.example.org";

fn header_set(response: &reqwest::Response, name: &str) -> BTreeSet<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/health"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

#[actix_web::test]
async fn preflight_from_an_allowed_origin_gets_the_exact_header_list() {
    let app = spawn_app_with(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://App.Example.org, http://localhost:3000",
    )])
    .await;
    let response = preflight(&app, ALLOWED).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ALLOWED)
    );
    let expected: BTreeSet<String> = [
        "authorization",
        "content-type",
        "x-requested-with",
        "x-request-id",
        "accept",
        "origin",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        header_set(&response, "access-control-allow-headers"),
        expected
    );
    let methods = header_set(&response, "access-control-allow-methods");
    for method in ["get", "post", "put", "patch", "delete"] {
        assert!(
            methods.contains(method),
            "{method} missing from {methods:?}"
        );
    }
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert!(header_set(&response, "vary").contains("origin"));
}

#[actix_web::test]
async fn preflight_from_a_disallowed_origin_gets_no_allow_origin() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", ALLOWED)]).await;
    for origin in [
        "https://evil.example.com",
        "null",
        "https://app.example.org.evil.com",
    ] {
        let response = preflight(&app, origin).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin} was allowed"
        );
        problem(response, 400).await;
    }
}

#[actix_web::test]
async fn simple_requests_expose_only_for_allowed_origins() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", ALLOWED)]).await;
    let allowed = app
        .client
        .get(app.url("/health"))
        .header("origin", ALLOWED)
        .send()
        .await
        .expect("request");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ALLOWED)
    );
    let exposed: BTreeSet<String> = ["x-process-time", "x-request-id"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header_set(&allowed, "access-control-expose-headers"),
        exposed
    );

    let other = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 200, "non-browser clients still work");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn no_configured_origins_means_no_cross_origin_access() {
    let app = spawn_app_with(&[]).await;
    let response = preflight(&app, ALLOWED).await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
