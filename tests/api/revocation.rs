//! The revocation store's defined fallback, with the fault injected: a complete
//! cache answers alone; an incomplete one asks the database, and a database error
//! there denies with 503.

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_complete_cache_answers_alone_when_the_database_fails() {
    let app = spawn_app().await;
    let live = app.signed_up("cache.live@example.org").await;
    let dead = app
        .signed_in("cache.live@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    app.post_with_token("/api/v1/auth/logout", &dead.access_token, None)
        .await;

    app.db.inject_io_errors(true);
    // Revoked stays revoked, valid stays valid: no database needed for either.
    let response = app
        .get_with_token("/__test/whoami", &dead.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token revoked");
    let response = app
        .get_with_token("/__test/whoami", &live.access_token)
        .await;
    assert_eq!(response.status(), 200);
    app.db.inject_io_errors(false);
}

#[actix_web::test]
async fn a_cache_miss_with_a_database_error_is_denied_with_503() {
    // A one-entry cache is full after the first revocation: from then on it cannot
    // vouch for a miss.
    let app = spawn_app_with(&[("REVOCATION_CACHE_CAPACITY", "1")]).await;
    let victim = app.signed_up("cache.miss@example.org").await;
    let live = app
        .signed_in("cache.miss@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    app.post_with_token("/api/v1/auth/logout", &victim.access_token, None)
        .await;
    assert_eq!(
        app.get_with_token("/__test/whoami", &live.access_token)
            .await
            .status(),
        200
    );

    app.db.inject_io_errors(true);
    let response = app
        .get_with_token("/__test/whoami", &live.access_token)
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let body = problem(response, 503).await;
    assert_eq!(body["title"], "Service unavailable");

    app.db.inject_io_errors(false);
    assert_eq!(
        app.get_with_token("/__test/whoami", &live.access_token)
            .await
            .status(),
        200
    );
    // The revoked token is still revoked through the database path.
    assert_eq!(
        app.get_with_token("/__test/whoami", &victim.access_token)
            .await
            .status(),
        401
    );
}

/// Signs `claims` with the app's own key (as only the server could).
fn sign(app: &crate::helpers::TestApp, claims: &serde_json::Value) -> String {
    use secrecy::ExposeSecret;
    let secret = &app.settings.jwt.secret;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(portcullis::auth::tokens::key_id(secret));
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .expect("sign")
}

fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json")
}

#[actix_web::test]
async fn a_token_naming_no_session_is_refused() {
    // Correctly signed, with a session id that names no session at all: live sessions
    // are the allow-list, so it is dead from the start — whether memory answers
    // (a complete set) or the database must (a set with no room), and after a
    // restart.
    for capacity in ["100000", "1"] {
        let app = spawn_app_with(&[
            ("REVOCATION_CACHE_CAPACITY", capacity),
            ("SESSION_CACHE_CAPACITY", capacity),
        ])
        .await;
        app.signed_up("other@example.org").await;
        let tokens = app.signed_up("cutoff@example.org").await;
        assert_eq!(app.me_status(&tokens.access_token).await, 200);
        let mut stray = claims_of(&tokens.access_token);
        stray["sid"] = serde_json::json!(uuid::Uuid::new_v4());
        stray["jti"] = serde_json::json!(uuid::Uuid::new_v4());
        stray["iat"] = serde_json::json!(app.clock.now() - 5);
        stray["nbf"] = stray["iat"].clone();
        let stray = sign(&app, &stray);
        let response = app.get_with_token("/__test/whoami", &stray).await;
        assert_eq!(
            problem(response, 401).await["detail"],
            "Token revoked",
            "capacity {capacity}"
        );
        // Someone else's live session does not do either.
        let mut borrowed = claims_of(&tokens.access_token);
        let others = app
            .signed_in("other@example.org", crate::helpers::GOOD_PASSWORD)
            .await;
        borrowed["sid"] = claims_of(&others.access_token)["sid"].clone();
        borrowed["jti"] = serde_json::json!(uuid::Uuid::new_v4());
        let borrowed = sign(&app, &borrowed);
        assert_eq!(app.me_status(&borrowed).await, 401, "capacity {capacity}");
        let app = app.restart().await;
        assert_eq!(
            app.get_with_token("/__test/whoami", &stray).await.status(),
            401,
            "after restart"
        );
        assert_eq!(
            app.me_status(&tokens.access_token).await,
            200,
            "after restart"
        );
    }
}

#[actix_web::test]
async fn revocations_last_through_the_expiry_leeway() {
    // Manual time, and a restart in between, so what is tested is how long the
    // stored revocation lasts (the restarted cache is filled from the database).
    let dir = tempfile::tempdir().expect("tempdir");
    let settings =
        crate::helpers::test_settings(dir.path(), &[("ACCESS_TOKEN_EXPIRE_MINUTES", "1")]);
    let clock = portcullis::clock::Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    let app =
        crate::helpers::spawn_with(settings, dir, reqwest::Client::new(), clock.clone()).await;
    let first = app.signed_up("leeway@example.org").await;
    // A second token of the same session, then logout with it: the first token's
    // session is ended, though the first token itself was never named.
    let second: crate::helpers::Tokens = app
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .expect("refresh");
    app.post_with_token("/api/v1/auth/logout", &second.access_token, None)
        .await;
    // Past `exp` but inside the leeway: the token would still verify.
    clock.advance(60 + portcullis::auth::tokens::LEEWAY_SECONDS - 2);
    let app = app.restart().await;
    let response = app
        .get_with_token("/__test/whoami", &first.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token revoked");
    clock.advance(5);
    let response = app
        .get_with_token("/__test/whoami", &first.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token expired");
}

#[actix_web::test]
async fn a_logout_whose_client_disconnects_still_revokes() {
    let app = spawn_app().await;
    let tokens = app.signed_up("hangup@example.org").await;
    let address = app.address.clone();
    let token = tokens.access_token.clone();
    // Send the logout and hang up at once, without reading the answer.
    actix_web::rt::task::spawn_blocking(move || {
        use std::io::Write;
        let host = address.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        write!(
            stream,
            "POST /api/v1/auth/logout HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("write");
        let _ = stream.shutdown(std::net::Shutdown::Both);
    })
    .await
    .expect("raw logout");
    // Once the logout has committed, the token must be dead in memory too.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    for _ in 0..100 {
        let ended: bool = conn
            .query_row(
                "SELECT ended_at IS NOT NULL FROM sessions WHERE id = ?1",
                [&tokens.session_id],
                |r| r.get(0),
            )
            .expect("session");
        if ended {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.me_status(&tokens.access_token).await, 401);
}
