use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    for (path, method) in [
        ("/health", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/api/openapi.json", "get"),
        ("/api/v1/gate/forward-auth", "get"),
        ("/api/v1/gate/auth-request", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/logout-all", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/password", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{id}", "delete"),
        ("/api/v1/admin/users/{id}/lock", "post"),
        ("/api/v1/admin/users/{id}/unlock", "post"),
        ("/api/v1/admin/users/{id}/mfa/reset", "post"),
        ("/api/v1/admin/users/{id}/passkeys", "get"),
        ("/api/v1/admin/users/{id}/passkeys", "delete"),
        ("/api/v1/auth/mfa/setup", "post"),
        ("/api/v1/auth/mfa/enable", "post"),
        ("/api/v1/auth/mfa/disable", "post"),
        ("/api/v1/auth/mfa/verify-login", "post"),
        ("/api/v1/auth/passkeys", "get"),
        ("/api/v1/auth/passkeys/register/start", "post"),
        ("/api/v1/auth/passkeys/register/finish", "post"),
        ("/api/v1/auth/passkeys/{id}", "patch"),
        ("/api/v1/auth/passkeys/{id}", "delete"),
        ("/api/v1/auth/passkeys/verify-login/start", "post"),
        ("/api/v1/auth/passkeys/verify-login/finish", "post"),
        ("/api/v1/auth/passkeys/login/start", "post"),
        ("/api/v1/auth/passkeys/login/finish", "post"),
        ("/api/v1/documents", "get"),
        ("/api/v1/documents", "post"),
        ("/api/v1/documents/{id}", "get"),
        ("/api/v1/documents/{id}", "put"),
        ("/api/v1/documents/{id}", "patch"),
        ("/api/v1/documents/{id}", "delete"),
        ("/api/v1/authz/check", "post"),
        ("/api/v1/admin/policies", "get"),
        ("/api/v1/admin/policies", "post"),
        ("/api/v1/admin/policies/{id}", "get"),
        ("/api/v1/admin/policies/{id}", "put"),
        ("/api/v1/admin/policies/{id}", "patch"),
        ("/api/v1/admin/policies/{id}", "delete"),
        ("/api/v1/admin/policies/{id}/versions", "get"),
        ("/api/v1/admin/policies/simulate", "post"),
        ("/api/v1/admin/policies/export", "get"),
        ("/api/v1/admin/policies/import", "post"),
        ("/api/v1/admin/policies/vocabulary", "get"),
        ("/api/v1/webhooks", "get"),
        ("/api/v1/webhooks", "post"),
        ("/api/v1/webhooks/{id}", "get"),
        ("/api/v1/webhooks/{id}", "patch"),
        ("/api/v1/webhooks/{id}", "delete"),
        ("/api/v1/webhooks/{id}/rotate-secret", "post"),
        ("/api/v1/webhooks/{id}/test", "post"),
        ("/api/v1/webhooks/{id}/deliveries", "get"),
        (
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            "post",
        ),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["paths"]["/api/v1/auth/me"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let ready = &doc["paths"]["/health/ready"]["get"]["responses"];
    assert!(ready["503"]["content"]["application/problem+json"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // The operator list in the document is the engine's own.
    let operators = doc["components"]["schemas"]["Operator"]["enum"]
        .as_array()
        .expect("operator enum");
    assert_eq!(
        operators.len(),
        portcullis::policy::operator::Operator::ALL.len()
    );
}

/// Every answer the server can give is in the document: 401 where a token is
/// needed, the body refusals where a body is read, 429 and 503 beside the limiter
/// and the database, unique operation ids, HEAD beside GET, a required request_id.
/// (schemathesis, in the test command, holds the server to it.)
#[actix_web::test]
async fn the_document_names_every_shared_answer() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let mut ids = std::collections::HashSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let item = item.as_object().expect("path item");
        if item.contains_key("get") {
            assert!(item.contains_key("head"), "HEAD {path}");
        }
        for (method, operation) in item {
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "{id} twice");
            let responses = &operation["responses"];
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                assert!(responses["401"].is_object(), "401 on {method} {path}");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "408", "413", "415", "422"] {
                    assert!(responses[status].is_object(), "{status} on {method} {path}");
                }
            }
            if !path.starts_with("/health") {
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "429 on {method} {path}"
                );
                assert!(responses["503"].is_object(), "503 on {method} {path}");
            }
        }
    }
    assert!(
        doc["components"]["schemas"]["Problem"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::json!("request_id")))
    );
    let limit = doc["paths"]["/api/v1/documents"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("limit");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_i64(),
            limit["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(100))
    );
    let new_webhook = &doc["components"]["schemas"]["NewWebhookRequest"];
    assert_eq!(new_webhook["required"], serde_json::json!(["url"]));
    // The body parser refuses unknown fields: the request schemas say so.
    for name in [
        "LoginRequest",
        "RegisterRequest",
        "RefreshRequest",
        "DocumentRequest",
    ] {
        assert_eq!(
            doc["components"]["schemas"][name]["additionalProperties"], false,
            "{name}"
        );
    }
    let unknown = app
        .post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": "a@example.org", "password": "x", "extra": 1}),
        )
        .await;
    assert_eq!(unknown.status(), 422);
}
