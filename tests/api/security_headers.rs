use portcullis::clock::Clock;

use crate::helpers::{spawn_app, spawn_app_with, spawn_with, test_settings};

const EXPECTED: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

fn assert_security_headers(response: &reqwest::Response, hsts: bool) {
    let headers = response.headers();
    for (name, value) in EXPECTED {
        assert_eq!(
            headers.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name} on {}",
            response.status()
        );
    }
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "CSP: {csp}");
    assert!(csp.contains("default-src"), "CSP: {csp}");
    assert!(headers.contains_key("permissions-policy"));
    assert!(headers.contains_key("x-request-id"));
    assert!(headers.contains_key("x-process-time"));
    assert_eq!(headers.contains_key("strict-transport-security"), hsts);
    if let Some(server) = headers.get("server").and_then(|v| v.to_str().ok()) {
        assert!(
            !server.chars().any(|c| c.is_ascii_digit()),
            "Server leaks a version: {server}"
        );
    }
}

#[actix_web::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = spawn_app_with(&[("MAX_JSON_BODY_BYTES", "1024")]).await;
    let ok = app.get("/health").await;
    assert_eq!(ok.status(), 200);
    assert_security_headers(&ok, false);

    let not_found = app.get("/no/such/thing").await;
    assert_eq!(not_found.status(), 404);
    assert_security_headers(&not_found, false);

    let too_large = app
        .post_echo(Some("application/json"), vec![b' '; 4096])
        .await;
    assert_eq!(too_large.status(), 413);
    assert_security_headers(&too_large, false);

    let panicked = app.get("/__test/panic").await;
    assert_eq!(panicked.status(), 500);
    assert_security_headers(&panicked, false);
}

#[actix_web::test]
async fn x_process_time_is_seconds() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    let value = response
        .headers()
        .get("x-process-time")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("numeric X-Process-Time");
    assert!((0.0..60.0).contains(&value));
}

#[actix_web::test]
async fn hsts_only_when_behind_a_tls_proxy_or_on_tls() {
    let app = spawn_app_with(&[("BEHIND_TLS_PROXY", "true")]).await;
    let ok = app.get("/health").await;
    assert_security_headers(&ok, true);
    let hsts = ok
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
    let not_found = app.get("/missing").await;
    assert_security_headers(&not_found, true);

    let off = spawn_app_with(&[("BEHIND_TLS_PROXY", "true"), ("HSTS_MAX_AGE_SECONDS", "0")]).await;
    assert_security_headers(&off.get("/health").await, false);
}

#[actix_web::test]
async fn tls_serves_https_with_hsts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
    let settings = test_settings(
        dir.path(),
        &[
            ("TLS_CERT_PATH", cert_path.to_str().expect("utf-8")),
            ("TLS_KEY_PATH", key_path.to_str().expect("utf-8")),
        ],
    );
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("root");
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .expect("client");
    let app = spawn_with(settings, dir, client, Clock::system()).await;
    assert!(app.address.starts_with("https://"));
    let port = app.address.rsplit(':').next().expect("port");
    let response = app
        .client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), 200);
    assert_security_headers(&response, true);
}
