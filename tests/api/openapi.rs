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
        ("/health/ready", "get"),
        ("/api/openapi.json", "get"),
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
        ("/api/v1/auth/mfa/setup", "post"),
        ("/api/v1/auth/mfa/enable", "post"),
        ("/api/v1/auth/mfa/disable", "post"),
        ("/api/v1/auth/mfa/verify-login", "post"),
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
