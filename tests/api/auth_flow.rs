//! Accounts end to end: register, login, me, refresh, logout, and tokens that stay
//! dead — across a restart too.

use serde_json::json;

use crate::helpers::{GOOD_PASSWORD, Tokens, assert_bearer_challenge, problem, spawn_app};

#[actix_web::test]
async fn the_full_flow() {
    let app = spawn_app().await;
    let registered = app.register("  Alice@Example.ORG ", GOOD_PASSWORD).await;
    assert_eq!(registered.status(), 201);
    let user: serde_json::Value = registered.json().await.expect("json");
    assert_eq!(user["email"], "alice@example.org");
    assert_eq!(user["role"], "user");
    assert!(user.get("password_hash").is_none());

    let tokens = app.signed_in("alice@example.org", GOOD_PASSWORD).await;
    assert_eq!(tokens.expires_in, 900);
    assert!(tokens.refresh_token.starts_with("prt_"));
    let me: serde_json::Value = app
        .get_with_token("/api/v1/auth/me", &tokens.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], user["id"]);

    let refreshed = app.refresh(&tokens.refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Tokens = refreshed.json().await.expect("json");
    assert_eq!(refreshed.session_id, tokens.session_id);
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    assert_eq!(app.me_status(&refreshed.access_token).await, 200);

    let logout = app
        .post_with_token("/api/v1/auth/logout", &refreshed.access_token, None)
        .await;
    assert_eq!(logout.status(), 200);
    let body: serde_json::Value = logout.json().await.expect("json");
    assert_eq!(body, json!({"message": "Successfully logged out"}));

    for event in ["auth.registered", "auth.login_succeeded", "auth.logout"] {
        assert_eq!(app.audit_events(event).len(), 1, "{event}");
    }
}

#[actix_web::test]
async fn a_logged_out_token_is_revoked_even_after_a_restart() {
    let app = spawn_app().await;
    let tokens = app.signed_up("bob@example.org").await;
    let other = app.signed_in("bob@example.org", GOOD_PASSWORD).await;
    app.post_with_token("/api/v1/auth/logout", &tokens.access_token, None)
        .await;
    let response = app
        .get_with_token("/api/v1/auth/me", &tokens.access_token)
        .await;
    let body = problem(response, 401).await;
    assert_eq!(body["detail"], "Token revoked");
    // The session's refresh token died with it.
    problem(app.refresh(&tokens.refresh_token).await, 401).await;

    let app = app.restart().await;
    let response = app
        .get_with_token("/api/v1/auth/me", &tokens.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token revoked");
    assert_eq!(
        app.me_status(&other.access_token).await,
        200,
        "other sessions live on"
    );
}

#[actix_web::test]
async fn duplicate_registration_is_a_conflict() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("carol@example.org", GOOD_PASSWORD)
            .await
            .status(),
        201
    );
    problem(app.register("CAROL@example.org", GOOD_PASSWORD).await, 409).await;
}

/// Addresses that read like an existing account's are taken, with the same answer
/// as the account's own address: no two accounts may look alike in the pages.
#[actix_web::test]
async fn look_alike_addresses_are_taken() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("alice@rt.test", GOOD_PASSWORD).await.status(),
        201
    );
    let taken = problem(app.register("alice@rt.test", GOOD_PASSWORD).await, 409).await;
    for look_alike in [
        "\u{430}lice@rt.test",  // Cyrillic a
        "\u{ff41}lice@rt.test", // fullwidth a
        "alice@rt.t\u{435}st",  // Cyrillic e in the domain
        "al\u{131}ce@rt.test",  // dotless i
    ] {
        let body = problem(app.register(look_alike, GOOD_PASSWORD).await, 409).await;
        assert_eq!(body["detail"], taken["detail"], "{look_alike}");
    }
    // The fullwidth form is the same address once normalised: it signs in.
    assert_eq!(
        app.login("\u{ff41}lice@rt.test", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.register("alicia@rt.test", GOOD_PASSWORD).await.status(),
        201
    );
}

/// Accounts from before skeletons were stored are covered after the next start.
#[actix_web::test]
async fn look_alikes_of_older_accounts_are_taken_after_a_restart() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("erin@example.org", GOOD_PASSWORD)
            .await
            .status(),
        201
    );
    rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .execute("UPDATE users SET email_skeleton = NULL", [])
        .expect("forget skeletons");
    let app = app.restart().await;
    problem(
        app.register("\u{435}rin@example.org", GOOD_PASSWORD).await,
        409,
    )
    .await;
}

#[actix_web::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let app = spawn_app().await;
    app.register("dave@example.org", GOOD_PASSWORD).await;
    app.register("locked@example.org", GOOD_PASSWORD).await;
    app.register("disabled@example.org", GOOD_PASSWORD).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute_batch(
        "UPDATE users SET status = 'locked' WHERE email = 'locked@example.org';
         UPDATE users SET status = 'disabled' WHERE email = 'disabled@example.org';",
    )
    .expect("set statuses");
    let unknown = app.login("nobody@example.org", GOOD_PASSWORD).await;
    let wrong = app.login("dave@example.org", "definitely not it 99").await;
    let malformed = app.login("not-an-email", "whatever").await;
    // The right password for a locked or disabled account: the same answer again.
    let locked = app.login("locked@example.org", GOOD_PASSWORD).await;
    let disabled = app.login("disabled@example.org", GOOD_PASSWORD).await;
    let mut bodies = Vec::new();
    for response in [unknown, wrong, malformed, locked, disabled] {
        assert_eq!(response.status(), 401);
        assert_bearer_challenge(&response);
        let mut body = problem(response, 401).await;
        body.as_object_mut().expect("object").remove("request_id");
        bodies.push(body);
    }
    for body in &bodies[1..] {
        assert_eq!(&bodies[0], body);
    }
    assert_eq!(bodies[0]["detail"], "Invalid email or password");
    // Only the audit log knows the difference.
    let reasons: Vec<String> = app
        .audit_events("auth.login_failed")
        .into_iter()
        .map(|(_, _, details)| details)
        .collect();
    assert!(
        reasons[0].contains("unknown_email") && reasons[1].contains("wrong_password"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("locked") && reasons[4].contains("disabled"),
        "{reasons:?}"
    );
}

#[actix_web::test]
async fn protected_routes_need_a_bearer_token() {
    let app = spawn_app().await;
    for path in ["/api/v1/auth/me", "/api/v1/auth/sessions"] {
        let response = app.get(path).await;
        assert_bearer_challenge(&response);
        problem(response, 401).await;
    }
    let basic = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .expect("request");
    problem(basic, 401).await;
}
