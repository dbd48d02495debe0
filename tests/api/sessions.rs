//! Refresh rotation, reuse detection, ending sessions, and the sessions list.

use crate::helpers::{GOOD_PASSWORD, Tokens, problem, spawn_app};

#[actix_web::test]
async fn refresh_tokens_rotate_and_reuse_ends_the_session() {
    let app = spawn_app().await;
    let first = app.signed_up("rotate@example.org").await;
    let second: Tokens = app
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .expect("rotated");
    let third: Tokens = app
        .refresh(&second.refresh_token)
        .await
        .json()
        .await
        .expect("rotated");
    assert_eq!(app.me_status(&third.access_token).await, 200);

    // An attacker replays the first (spent) token: refused, and the session dies,
    // taking the legitimate holder's current tokens with it.
    let replay = app.refresh(&first.refresh_token).await;
    assert_eq!(
        problem(replay, 401).await["detail"],
        "Invalid refresh token"
    );
    problem(app.refresh(&third.refresh_token).await, 401).await;
    let response = app
        .get_with_token("/api/v1/auth/me", &third.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token revoked");

    let detected = app.audit_events("auth.refresh_reuse_detected");
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0].0, "denied");
    assert_eq!(detected[0].1.as_deref(), Some(first.session_id.as_str()));
}

#[actix_web::test]
async fn unknown_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    for token in ["", "prt_nothing", &"x".repeat(500)] {
        problem(app.refresh(token).await, 401).await;
    }
}

#[actix_web::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let laptop = app.signed_up("everywhere@example.org").await;
    let phone = app.signed_in("everywhere@example.org", GOOD_PASSWORD).await;
    let response = app
        .post_with_token("/api/v1/auth/logout-all", &laptop.access_token, None)
        .await;
    assert_eq!(response.status(), 200);
    for tokens in [&laptop, &phone] {
        assert_eq!(app.me_status(&tokens.access_token).await, 401);
        problem(app.refresh(&tokens.refresh_token).await, 401).await;
    }
    // Signing in again works and is unaffected by the cut-off.
    let fresh = app.signed_in("everywhere@example.org", GOOD_PASSWORD).await;
    assert_eq!(app.me_status(&fresh.access_token).await, 200);
}

#[actix_web::test]
async fn a_password_change_ends_every_earlier_session() {
    let app = spawn_app().await;
    let mine = app.signed_up("changer@example.org").await;
    let other = app.signed_in("changer@example.org", GOOD_PASSWORD).await;
    let new_password = "quiet harbor tangerine bicycle 7";
    let response = app
        .post_with_token(
            "/api/v1/auth/password",
            &mine.access_token,
            Some(&serde_json::json!({"current_password": GOOD_PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let renewed: Tokens = response.json().await.expect("new tokens");
    assert_ne!(
        renewed.session_id, mine.session_id,
        "the caller continues in a new session"
    );
    assert_eq!(app.me_status(&renewed.access_token).await, 200);
    assert_eq!(
        app.me_status(&mine.access_token).await,
        401,
        "the old access token died"
    );
    problem(app.refresh(&mine.refresh_token).await, 401).await;
    let listed: Vec<serde_json::Value> = app
        .get_with_token("/api/v1/auth/sessions", &renewed.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1, "only the new session is live");
    assert_eq!(
        app.me_status(&other.access_token).await,
        401,
        "other sessions died"
    );
    problem(app.refresh(&other.refresh_token).await, 401).await;
    assert_eq!(
        app.login("changer@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login("changer@example.org", new_password)
            .await
            .status(),
        200
    );
    assert_eq!(app.audit_events("auth.password_changed").len(), 1);
}

#[actix_web::test]
async fn a_password_change_needs_the_current_password_and_a_good_new_one() {
    let app = spawn_app().await;
    let tokens = app.signed_up("careful@example.org").await;
    let attempt = |current: &str, new: &str| serde_json::json!({"current_password": current, "new_password": new});
    let wrong = app
        .post_with_token(
            "/api/v1/auth/password",
            &tokens.access_token,
            Some(&attempt(
                "not my password at all",
                "quiet harbor tangerine bicycle 7",
            )),
        )
        .await;
    assert_eq!(
        problem(wrong, 422).await["errors"][0]["field"],
        "current_password"
    );
    let weak = app
        .post_with_token(
            "/api/v1/auth/password",
            &tokens.access_token,
            Some(&attempt(GOOD_PASSWORD, "password123456")),
        )
        .await;
    let body = problem(weak, 422).await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(body["errors"][0]["rule"], "too_weak");
    let same = app
        .post_with_token(
            "/api/v1/auth/password",
            &tokens.access_token,
            Some(&attempt(GOOD_PASSWORD, GOOD_PASSWORD)),
        )
        .await;
    assert_eq!(problem(same, 422).await["errors"][0]["rule"], "unchanged");
    assert_eq!(
        app.me_status(&tokens.access_token).await,
        200,
        "failed changes end nothing"
    );
}

#[actix_web::test]
async fn sessions_are_listed_and_revocable_only_by_their_owner() {
    let app = spawn_app().await;
    let first = app.signed_up("lister@example.org").await;
    let second = app.signed_in("lister@example.org", GOOD_PASSWORD).await;
    let intruder = app.signed_up("intruder@example.org").await;

    let listed: Vec<serde_json::Value> = app
        .get_with_token("/api/v1/auth/sessions", &first.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 2);
    let current: Vec<&serde_json::Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], first.session_id.as_str());
    assert_eq!(current[0]["ip"], "127.0.0.1");

    // Someone else's session, a made-up one and a malformed id are all 404.
    let delete = |token: String, id: String| {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/auth/sessions/{id}"));
        async move {
            client
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    problem(
        delete(intruder.access_token.clone(), second.session_id.clone()).await,
        404,
    )
    .await;
    problem(
        delete(first.access_token.clone(), uuid::Uuid::new_v4().to_string()).await,
        404,
    )
    .await;
    problem(
        delete(first.access_token.clone(), "not-a-uuid".to_owned()).await,
        404,
    )
    .await;
    assert_eq!(app.me_status(&second.access_token).await, 200);

    let revoked = delete(first.access_token.clone(), second.session_id.clone()).await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(app.me_status(&second.access_token).await, 401);
    problem(app.refresh(&second.refresh_token).await, 401).await;
    problem(
        delete(first.access_token.clone(), second.session_id.clone()).await,
        404,
    )
    .await;
    assert_eq!(app.me_status(&first.access_token).await, 200);
    assert_eq!(app.audit_events("auth.session_revoked").len(), 1);
}

async fn manual_clock_app(overrides: &[(&str, &str)]) -> crate::helpers::TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = crate::helpers::test_settings(dir.path(), overrides);
    let clock = portcullis::clock::Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    crate::helpers::spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

/// Two tabs, or a retry after a lost answer: the same refresh token twice within the
/// grace window gets the same successor, and the session lives on. A third
/// presentation is reuse, as before.
#[actix_web::test]
async fn a_double_sent_refresh_gets_the_same_successor_and_a_third_is_reuse() {
    let app = manual_clock_app(&[]).await;
    let first = app.signed_up("tabs@example.org").await;
    let (a, b) = tokio::join!(
        app.refresh(&first.refresh_token),
        app.refresh(&first.refresh_token)
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let a: Tokens = a.json().await.expect("json");
    let b: Tokens = b.json().await.expect("json");
    assert_eq!(a.refresh_token, b.refresh_token, "one successor, not two");
    assert_eq!(a.access_token, b.access_token);
    assert_eq!(app.me_status(&a.access_token).await, 200);
    assert!(app.audit_events("auth.refresh_reuse_detected").is_empty());
    assert_eq!(app.audit_events("auth.refresh_repeated").len(), 1);
    // A third presentation is a replay: the session ends.
    problem(app.refresh(&first.refresh_token).await, 401).await;
    assert_eq!(app.me_status(&a.access_token).await, 401);
    assert_eq!(app.audit_events("auth.refresh_reuse_detected").len(), 1);
}

#[actix_web::test]
async fn a_refresh_presented_again_after_the_window_or_after_its_successor_is_reuse() {
    let app = manual_clock_app(&[]).await;
    let first = app.signed_up("late@example.org").await;
    let next: Tokens = app
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .expect("json");
    app.clock.advance(3);
    problem(app.refresh(&first.refresh_token).await, 401).await;
    assert_eq!(
        app.me_status(&next.access_token).await,
        401,
        "past the window"
    );

    // Within the window, but the successor was already spent: a replay.
    let first = app.signed_in("late@example.org", GOOD_PASSWORD).await;
    let second: Tokens = app
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .expect("json");
    let third: Tokens = app
        .refresh(&second.refresh_token)
        .await
        .json()
        .await
        .expect("json");
    problem(app.refresh(&first.refresh_token).await, 401).await;
    assert_eq!(app.me_status(&third.access_token).await, 401);

    // With the window turned off, the second presentation is already reuse.
    let strict = manual_clock_app(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let first = strict.signed_up("strict@example.org").await;
    let next: Tokens = strict
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .expect("json");
    problem(strict.refresh(&first.refresh_token).await, 401).await;
    assert_eq!(strict.me_status(&next.access_token).await, 401);
}
