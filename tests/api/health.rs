use crate::helpers::{problem, spawn_app};

#[actix_web::test]
async fn liveness_answers() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readiness_is_503_while_the_database_fails_and_recovers_after() {
    let app = spawn_app().await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");

    app.db.inject_io_errors(true);
    let failing = app.get("/health/ready").await;
    assert!(failing.headers().contains_key("retry-after"));
    let body = problem(failing, 503).await;
    assert_eq!(body["title"], "Service unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status(), 200);

    app.db.inject_io_errors(false);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[actix_web::test]
async fn readiness_is_503_when_the_schema_is_not_this_binarys() {
    let app = spawn_app().await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.pragma_update(None, "user_version", 999)
        .expect("bump version");
    problem(app.get("/health/ready").await, 503).await;
}
