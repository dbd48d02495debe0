use crate::helpers::{problem, run_binary, spawn_app};

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

#[actix_web::test]
async fn liveness_answers_by_its_usual_name_too() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let head = app
        .client
        .head(app.url("/health/live"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
}

/// `portcullis healthcheck` exits 0 while readiness answers 200 (at the configured
/// address, an unspecified one taken as loopback, or `--url`), 1 when it does not.
#[actix_web::test]
async fn the_healthcheck_command_follows_readiness() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The binary runs off the test's thread, which serves the app meanwhile.
    let check = |args: Vec<String>, vars: Vec<(&'static str, String)>| {
        let dir = dir.path().to_owned();
        async move {
            actix_web::rt::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
                run_binary(&dir, &args, &vars)
            })
            .await
            .expect("the binary ran")
        }
    };
    let ready = app.url("/health/ready");
    let url = |u: &str| vec!["healthcheck".to_owned(), "--url".to_owned(), u.to_owned()];
    let by_url = check(url(&ready), vec![]).await;
    assert!(by_url.status.success(), "{by_url:?}");
    let port = ready
        .split(':')
        .nth(2)
        .and_then(|rest| rest.split('/').next())
        .expect("a port")
        .to_owned();
    let by_address = check(
        vec!["healthcheck".to_owned()],
        vec![("BIND_ADDRESS", format!("0.0.0.0:{port}"))],
    )
    .await;
    assert!(by_address.status.success(), "{by_address:?}");
    app.db.inject_io_errors(true);
    let failing = check(url(&ready), vec![]).await;
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    app.db.inject_io_errors(false);
    let nobody = check(url("http://127.0.0.1:9/health/ready"), vec![]).await;
    assert_eq!(nobody.status.code(), Some(1));
    // Only the server's own readiness answer counts: not another 200 (here its
    // liveness), and not an answer from a proxy the environment names.
    let other = check(url(&app.url("/health")), vec![]).await;
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    let proxied = check(
        url("http://127.0.0.1:9/health/ready"),
        vec![("HTTP_PROXY", app.url("")), ("ALL_PROXY", app.url(""))],
    )
    .await;
    assert_eq!(proxied.status.code(), Some(1), "{proxied:?}");
    let tls = check(
        vec!["healthcheck".to_owned()],
        vec![("TLS_CERT_PATH", "/etc/ssl/certs/x.pem".to_owned())],
    )
    .await;
    assert_eq!(tls.status.code(), Some(2), "TLS on: the URL must be given");
}
