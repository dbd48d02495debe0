use crate::helpers::{problem, spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_paths_are_404_problems() {
    let app = spawn_app().await;
    let body = problem(app.get("/api/v1/nothing-here").await, 404).await;
    assert_eq!(body["title"], "Not found");
}

#[actix_web::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    problem(response, 405).await;
    let head = app
        .client
        .head(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(head.status(), 200, "probes may use HEAD");
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    // Default limit: 64 KiB.
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(70 * 1024));
    let body = problem(app.post_echo(Some("application/json"), big).await, 413).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("65536")
    );
    let fits = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(60 * 1024));
    assert_eq!(
        app.post_echo(Some("application/json"), fits).await.status(),
        200
    );
}

#[actix_web::test]
async fn the_body_limit_is_configurable() {
    let app = spawn_app_with(&[("MAX_JSON_BODY_BYTES", "2048")]).await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(3000));
    problem(app.post_echo(Some("application/json"), big).await, 413).await;
}

#[actix_web::test]
async fn other_content_types_are_415() {
    let app = spawn_app().await;
    let json = r#"{"name":"a","count":1}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let body = problem(app.post_echo(content_type, json).await, 415).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("application/json")
        );
    }
    let ok = app
        .post_echo(Some("application/json; charset=utf-8"), json)
        .await;
    assert_eq!(ok.status(), 200);
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for bad in [
        r#"{"name": "a", "count": "#,
        "not json",
        "{'name': 'a'}",
        "",
    ] {
        let body = problem(app.post_echo(Some("application/json"), bad).await, 400).await;
        assert!(body.get("errors").is_none());
    }
}

#[actix_web::test]
async fn wrong_or_unknown_fields_are_422_naming_each_field() {
    let app = spawn_app().await;
    let response = app
        .post_echo(
            Some("application/json"),
            r#"{"name": 42, "count": "three", "tags": ["a", 1], "is_admin": true}"#,
        )
        .await;
    let body = problem(response, 422).await;
    let mut fields: Vec<String> = body["errors"]
        .as_array()
        .expect("errors list")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["count", "is_admin", "name", "tags[1]"]);
    assert_eq!(body["detail"], "4 fields need attention; see `errors`.");

    let missing = problem(
        app.post_echo(Some("application/json"), r#"{"name": "a"}"#)
            .await,
        422,
    )
    .await;
    assert_eq!(missing["errors"][0]["field"], "count");
    assert_eq!(missing["errors"][0]["message"], "is required");
}

#[actix_web::test]
async fn a_hostile_body_gets_a_bounded_answer() {
    let app = spawn_app().await;
    let fields: Vec<String> = (0..3000).map(|i| format!("\"f{i}\":1")).collect();
    let body = format!("{{\"name\":\"a\",\"count\":1,{}}}", fields.join(","));
    let response = app.post_echo(Some("application/json"), body).await;
    let body = problem(response, 422).await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(20));
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let app = spawn_app_with(&[("MAX_JSON_BODY_BYTES", "2048")]).await;
    let address = app.address.clone();
    let response = actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let host = address.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        let mut request = format!(
            "POST /__test/echo HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let chunk = "x".repeat(1000);
        for _ in 0..4 {
            request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        request.push_str("0\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .expect("raw request");
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
}

#[actix_web::test]
async fn a_handler_panic_is_an_opaque_500_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let response = app
            .client
            .get(app.url("/__test/panic"))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("the connection survives a panic");
        let body = problem(response, 500).await;
        assert_eq!(body["request_id"], "trace-me-42");
        assert_eq!(body["title"], "Internal server error");
        assert!(!body.to_string().contains("secret_module"));
    }
    assert_eq!(app.get("/health").await.status(), 200);
}

/// Writes a request whose body stops short of its Content-Length, then waits for the
/// answer (on a thread: the server runs on this test's runtime).
async fn stalled_body(address: &str, path: &str, content_type: &str) -> String {
    let host = address.trim_start_matches("http://").to_owned();
    let path = path.to_owned();
    let content_type = content_type.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&host).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{\"email\""
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = vec![0u8; 4096];
        let read = stream.read(&mut response).unwrap_or(0);
        String::from_utf8_lossy(&response[..read]).into_owned()
    })
    .await
    .expect("thread")
}

#[actix_web::test]
async fn a_body_that_stalls_is_cut_off_with_408() {
    let app = spawn_app_with(&[("REQUEST_BODY_TIMEOUT_SECONDS", "1")]).await;
    for (path, content_type) in [
        ("/api/v1/auth/login", "application/json"),
        ("/admin/login", "application/x-www-form-urlencoded"),
    ] {
        let response = stalled_body(&app.address, path, content_type).await;
        assert!(response.starts_with("HTTP/1.1 408"), "{path}: {response}");
        assert!(
            response.contains("did not arrive within 1 seconds"),
            "{path}: {response}"
        );
    }
}

#[actix_web::test]
async fn one_json_value_and_nothing_after_it_everywhere() {
    let app = spawn_app().await;
    let tokens = app.signed_up("trailing@example.org").await;
    let login = format!(
        r#"{{"email":"trailing@example.org","password":"{}"}} {{"x":1}} GARBAGE"#,
        crate::helpers::GOOD_PASSWORD
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(login)
        .send()
        .await
        .expect("request");
    let body = problem(response, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("more than one JSON value"))
    );
    let created: serde_json::Value = app
        .post_with_token(
            "/api/v1/documents",
            &tokens.access_token,
            Some(&serde_json::json!({"title": "t", "classification": "public"})),
        )
        .await
        .json()
        .await
        .expect("json");
    let response = app
        .client
        .patch(app.url(&format!(
            "/api/v1/documents/{}",
            created["id"].as_str().expect("id")
        )))
        .bearer_auth(&tokens.access_token)
        .header("content-type", "application/json")
        .body(r#"{"title": "changed"}}"#)
        .send()
        .await
        .expect("request");
    problem(response, 400).await;
}

#[actix_web::test]
async fn field_errors_say_json_not_rust() {
    let app = spawn_app().await;
    for (body, field) in [
        ("null", "body"),
        ("[]", "body"),
        (r#"{"email": 5, "password": "x"}"#, "email"),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let problem_body = problem(response, 422).await;
        let text = problem_body.to_string();
        for rust in ["struct", "LoginRequest", "sequence", "u16", "String"] {
            assert!(!text.contains(rust), "{body}: {text}");
        }
        assert_eq!(problem_body["errors"][0]["field"], field, "{body}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .expect("request");
    assert_eq!(
        problem(response, 422).await["errors"][0]["message"],
        "invalid type: null, expected a JSON object"
    );
}
