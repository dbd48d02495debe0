//! Password storage and policy, seen from outside: the stored hash, its upgrade at
//! login, named policy rules, and the bounded hashing queue.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

use crate::helpers::{GOOD_PASSWORD, problem, spawn_app, spawn_app_with};

fn stored_hash(app: &crate::helpers::TestApp, email: &str) -> String {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.query_row(
        "SELECT password_hash FROM users WHERE email = ?1",
        [email],
        |r| r.get(0),
    )
    .expect("user")
}

fn set_hash(app: &crate::helpers::TestApp, email: &str, hash: &str) {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE email = ?1",
        [email, hash],
    )
    .expect("update");
}

#[actix_web::test]
async fn the_stored_hash_is_argon2id_with_the_configured_parameters() {
    let app = spawn_app().await;
    app.register("hash@example.org", GOOD_PASSWORD).await;
    let hash = stored_hash(&app, "hash@example.org");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(GOOD_PASSWORD));

    let stronger = spawn_app_with(&[
        ("PASSWORD_HASH_MEMORY_KIB", "24576"),
        ("PASSWORD_HASH_ITERATIONS", "3"),
    ])
    .await;
    stronger.register("hash@example.org", GOOD_PASSWORD).await;
    assert!(
        stored_hash(&stronger, "hash@example.org").starts_with("$argon2id$v=19$m=24576,t=3,p=1$")
    );
}

/// The right password signs in, and the stored hash is now the configured argon2id.
async fn assert_logs_in_and_upgrades(app: &crate::helpers::TestApp) {
    assert_eq!(
        app.login("legacy@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
    assert!(stored_hash(app, "legacy@example.org").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[actix_web::test]
async fn weaker_and_legacy_hashes_are_upgraded_at_login() {
    let app = spawn_app().await;
    app.register("legacy@example.org", GOOD_PASSWORD).await;
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8192, 1, 1, None).expect("params"),
    )
    .hash_password(GOOD_PASSWORD.as_bytes())
    .expect("hash")
    .to_string();
    set_hash(&app, "legacy@example.org", &weak);
    assert_logs_in_and_upgrades(&app).await;

    // An account imported from the bcrypt system being replaced.
    let bcrypt = bcrypt::hash(GOOD_PASSWORD, 10).expect("bcrypt");
    assert!(bcrypt.starts_with("$2b$10$"));
    set_hash(&app, "legacy@example.org", &bcrypt);
    assert_eq!(
        app.login("legacy@example.org", "wrong password entirely")
            .await
            .status(),
        401
    );
    assert_eq!(
        stored_hash(&app, "legacy@example.org"),
        bcrypt,
        "no upgrade on failure"
    );
    assert_logs_in_and_upgrades(&app).await;
    assert!(
        app.audit_events("auth.login_succeeded")
            .iter()
            .any(|(_, _, d)| d.contains("\"hash_upgraded\":true"))
    );
}

#[actix_web::test]
async fn policy_failures_are_422_naming_the_rule() {
    let app = spawn_app().await;
    for (password, rule) in [
        ("Sh0rt!pass", "min_length"),
        (&*"long enough phrase ".repeat(7), "max_length"),
        ("password12345", "too_weak"),
        ("qwertyuiop123", "too_weak"),
        ("frederick.lighthouse quartz", "contains_email"),
    ] {
        let response = app
            .register("frederick.lighthouse@example.org", password)
            .await;
        let body = problem(response, 422).await;
        let rules: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["rule"].as_str())
            .collect();
        assert!(rules.contains(&rule), "{password}: {body}");
        assert_eq!(body["errors"][0]["field"], "password");
    }
    let bad_email = problem(app.register("not an email", GOOD_PASSWORD).await, 422).await;
    assert_eq!(bad_email["errors"][0]["field"], "email");
}

#[actix_web::test]
async fn a_saturated_hashing_queue_answers_503_with_retry_after() {
    let app = spawn_app_with(&[
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_HASH_QUEUE_TIMEOUT_MS", "10"),
    ])
    .await;
    let emails: Vec<String> = (0..12).map(|i| format!("user{i}@example.org")).collect();
    let attempts = emails.iter().map(|email| app.login(email, GOOD_PASSWORD));
    let responses = futures_util::future::join_all(attempts).await;
    let busy: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 503).collect();
    assert!(
        !busy.is_empty(),
        "some logins must be turned away, not queued forever"
    );
    for response in &busy {
        assert!(response.headers().contains_key("retry-after"));
    }
    assert!(
        responses
            .iter()
            .all(|r| r.status() == 503 || r.status() == 401)
    );
}
