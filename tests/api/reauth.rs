//! The password again: a stolen access token alone can neither guess the password
//! through the password change, nor enrol its own authenticator, nor send the
//! owner's webhook credential somewhere new.

use portcullis::auth::mfa::TotpSecret;
use portcullis::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::{GOOD_PASSWORD, TestApp, problem, spawn_with, test_settings};

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), overrides);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

const WRONG: &str = "not the password at all";

#[actix_web::test]
async fn the_password_change_is_no_guessing_oracle() {
    let app = app_with(&[("SOFTLOCK_STEPS", "3:600")]).await;
    let tokens = app.signed_up("oracle@example.org").await;
    let change = |current: &'static str| {
        let (app, token) = (&app, tokens.access_token.clone());
        async move {
            app.post_with_token(
                "/api/v1/auth/password",
                &token,
                Some(&json!({"current_password": current,
                             "new_password": "another long secret phrase 77"})),
            )
            .await
        }
    };
    for _ in 0..3 {
        problem(change(WRONG).await, 422).await;
    }
    // Softlocked now: even the right current password is refused, and so is a login.
    problem(change(GOOD_PASSWORD).await, 403).await;
    problem(app.login("oracle@example.org", GOOD_PASSWORD).await, 401).await;
    assert_eq!(app.audit_events("auth.account_locked").len(), 1);

    // And there is a per-account rate limit on passwords entered again.
    let limited = app_with(&[("RATE_LIMIT_PASSWORD_ACCOUNT", "2/60")]).await;
    let tokens = limited.signed_up("limited@example.org").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = limited
            .post_with_token(
                "/api/v1/auth/password",
                &tokens.access_token,
                Some(&json!({"current_password": WRONG,
                             "new_password": "another long secret phrase 77"})),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![422, 422, 429]);
}

#[actix_web::test]
async fn a_stolen_token_cannot_enrol_an_authenticator() {
    let app = app_with(&[("SOFTLOCK_STEPS", "3:600")]).await;
    let tokens = app.signed_up("enrol@example.org").await;
    const SETUP: &str = "/api/v1/auth/mfa/setup";
    let token = &tokens.access_token;
    let refused = problem(
        app.post_with_token(SETUP, token, Some(&json!({}))).await,
        403,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("password again"))
    );
    problem(
        app.post_with_token(SETUP, token, Some(&json!({"password": WRONG})))
            .await,
        422,
    )
    .await;
    assert_eq!(
        app.post_with_token(SETUP, token, Some(&json!({"password": GOOD_PASSWORD})))
            .await
            .status(),
        200
    );
    // Proved on this session: for five minutes, no new proof is asked.
    app.clock.advance(240);
    assert_eq!(
        app.post_with_token(SETUP, token, Some(&json!({})))
            .await
            .status(),
        200
    );
    app.clock.advance(120);
    problem(
        app.post_with_token(SETUP, token, Some(&json!({}))).await,
        403,
    )
    .await;
    // Wrong passwords here count toward the softlock like any login's.
    for _ in 0..2 {
        problem(
            app.post_with_token(SETUP, token, Some(&json!({"password": WRONG})))
                .await,
            422,
        )
        .await;
    }
    problem(
        app.post_with_token(SETUP, token, Some(&json!({"password": GOOD_PASSWORD})))
            .await,
        403,
    )
    .await;
}

#[actix_web::test]
async fn a_webhook_credential_is_set_or_moved_only_with_the_password_again() {
    let app = app_with(&[("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8")]).await;
    let tokens = app.signed_up("hooks@example.org").await;
    let token = &tokens.access_token;
    let credential = json!({"type": "bearer", "token": "tok-0123456789abcdef"});
    let without = app
        .post_with_token(
            "/api/v1/webhooks",
            token,
            Some(&json!({"url": "http://127.0.0.1:9/hook", "credential": credential})),
        )
        .await;
    problem(without, 403).await;
    // Without a credential, nothing to protect: no password needed.
    let plain = app
        .post_with_token(
            "/api/v1/webhooks",
            token,
            Some(&json!({"url": "http://127.0.0.1:9/plain"})),
        )
        .await;
    assert_eq!(plain.status(), 201);
    let created: Value = app
        .post_with_token(
            "/api/v1/webhooks",
            token,
            Some(
                &json!({"url": "http://127.0.0.1:9/hook", "credential": credential,
                         "password": GOOD_PASSWORD}),
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().expect("id"));
    app.clock.advance(301);
    // Moving it (its credential would go along) needs the proof again; other
    // changes do not.
    problem(
        app.patch_with_token(
            &path,
            token,
            &json!({"url": "http://127.0.0.1:9/elsewhere"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(
        app.patch_with_token(&path, token, &json!({"description": "renamed"}))
            .await
            .status(),
        200
    );
    // With MFA on, the password alone is not enough: a code goes with it.
    let setup: Value = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            token,
            Some(&json!({"password": GOOD_PASSWORD})),
        )
        .await
        .json()
        .await
        .expect("json");
    let secret =
        TotpSecret::from_base32(setup["secret"].as_str().expect("secret").as_bytes()).expect("b32");
    let code = secret.code_at(app.clock.now()).expect("code");
    app.post_with_token(
        "/api/v1/auth/mfa/enable",
        token,
        Some(&json!({"code": code})),
    )
    .await;
    app.clock.advance(301);
    let moved = json!({"url": "http://127.0.0.1:9/elsewhere", "password": GOOD_PASSWORD});
    problem(app.patch_with_token(&path, token, &moved).await, 403).await;
    app.clock.advance(31);
    let code = secret.code_at(app.clock.now()).expect("code");
    let mut with_code = moved.clone();
    with_code["code"] = json!(code);
    assert_eq!(
        app.patch_with_token(&path, token, &with_code)
            .await
            .status(),
        200
    );
}
