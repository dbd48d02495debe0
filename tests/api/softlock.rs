//! Account softlock: consecutive failures lock an account for a while; it answers
//! exactly like a wrong password; time (injected) or an administrator unlocks it.

use portcullis::clock::Clock;

use crate::helpers::{GOOD_PASSWORD, TestApp, problem, spawn_with, test_settings};

async fn app_on_manual_clock() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), &[("SOFTLOCK_STEPS", "5:60,10:300")]);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

async fn fail_logins(app: &TestApp, email: &str, times: usize) {
    for _ in 0..times {
        assert_eq!(
            app.login(email, "not the password at all").await.status(),
            401
        );
    }
}

/// The body of a failed login without its request id.
async fn failure_body(response: reqwest::Response) -> serde_json::Value {
    let mut body = problem(response, 401).await;
    body.as_object_mut().expect("object").remove("request_id");
    body
}

async fn make_admin(app: &TestApp, email: &str) -> String {
    assert_eq!(app.register(email, GOOD_PASSWORD).await.status(), 201);
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute("UPDATE users SET role = 'admin' WHERE email = ?1", [email])
        .expect("promote");
    app.signed_in(email, GOOD_PASSWORD).await.access_token
}

fn user_id(app: &TestApp, email: &str) -> String {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
        r.get(0)
    })
    .expect("user")
}

#[actix_web::test]
async fn failures_lock_the_account_like_a_wrong_password_until_the_window_passes() {
    let app = app_on_manual_clock().await;
    app.register("victim@example.org", GOOD_PASSWORD).await;
    fail_logins(&app, "victim@example.org", 4).await;
    let wrong = failure_body(
        app.login("victim@example.org", "not the password at all")
            .await,
    )
    .await;
    // Five failures: locked. The right password now gets the very same answer.
    let locked = failure_body(app.login("victim@example.org", GOOD_PASSWORD).await).await;
    assert_eq!(locked, wrong);
    let events = app.audit_events("auth.account_locked");
    assert_eq!(events.len(), 1);
    assert!(
        events[0].2.contains("\"lock_seconds\":60"),
        "{}",
        events[0].2
    );

    app.clock.advance(59);
    assert_eq!(
        app.login("victim@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    app.clock.advance(2);
    assert_eq!(
        app.login("victim@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
    // Success reset the count: four new failures do not lock.
    fail_logins(&app, "victim@example.org", 4).await;
    assert_eq!(
        app.login("victim@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn further_failures_escalate_the_lock() {
    let app = app_on_manual_clock().await;
    app.register("stubborn@example.org", GOOD_PASSWORD).await;
    fail_logins(&app, "stubborn@example.org", 5).await;
    // Attempts during a lock do not count (and cannot succeed); once it passes,
    // each failure locks again: one guess a minute, until the next step.
    fail_logins(&app, "stubborn@example.org", 3).await;
    for _ in 0..5 {
        app.clock.advance(61);
        fail_logins(&app, "stubborn@example.org", 1).await;
    }
    let events = app.audit_events("auth.account_locked");
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(
        events[4]
            .2
            .contains("\"consecutive_failures\":9,\"lock_seconds\":60"),
        "{events:?}"
    );
    assert!(
        events[5]
            .2
            .contains("\"consecutive_failures\":10,\"lock_seconds\":300"),
        "{events:?}"
    );
    app.clock.advance(61);
    assert_eq!(
        app.login("stubborn@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401,
        "5 minutes now"
    );
    app.clock.advance(300);
    assert_eq!(
        app.login("stubborn@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn an_administrator_unlocks_and_locks_accounts() {
    let app = app_on_manual_clock().await;
    let admin = make_admin(&app, "root@example.org").await;
    app.register("locked.out@example.org", GOOD_PASSWORD).await;
    fail_logins(&app, "locked.out@example.org", 5).await;
    assert_eq!(
        app.login("locked.out@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );

    let id = user_id(&app, "locked.out@example.org");
    let unlocked = app
        .post_with_token(&format!("/api/v1/admin/users/{id}/unlock"), &admin, None)
        .await;
    assert_eq!(unlocked.status(), 200);
    let tokens = app.signed_in("locked.out@example.org", GOOD_PASSWORD).await;
    assert_eq!(app.audit_events("admin.user_unlocked").len(), 1);

    // An admin lock ends the account's sessions and refuses logins, like a wrong password.
    let locked = app
        .post_with_token(&format!("/api/v1/admin/users/{id}/lock"), &admin, None)
        .await;
    assert_eq!(locked.status(), 200);
    let body: serde_json::Value = locked.json().await.expect("json");
    assert_eq!(body["status"], "locked");
    assert_eq!(app.me_status(&tokens.access_token).await, 401);
    problem(app.refresh(&tokens.refresh_token).await, 401).await;
    assert_eq!(
        app.login("locked.out@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    app.post_with_token(&format!("/api/v1/admin/users/{id}/unlock"), &admin, None)
        .await;
    assert_eq!(
        app.login("locked.out@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn only_administrators_may_lock_or_unlock() {
    let app = app_on_manual_clock().await;
    let admin = make_admin(&app, "boss@example.org").await;
    let user = app.signed_up("pleb@example.org").await;
    let target = user_id(&app, "boss@example.org");
    for action in ["lock", "unlock"] {
        let response = app
            .post_with_token(
                &format!("/api/v1/admin/users/{target}/{action}"),
                &user.access_token,
                None,
            )
            .await;
        problem(response, 403).await;
    }
    let missing = uuid::Uuid::new_v4();
    problem(
        app.post_with_token(&format!("/api/v1/admin/users/{missing}/lock"), &admin, None)
            .await,
        404,
    )
    .await;
    problem(
        app.post_with_token("/api/v1/admin/users/not-a-uuid/lock", &admin, None)
            .await,
        404,
    )
    .await;
    problem(
        app.post_with_token(&format!("/api/v1/admin/users/{target}/lock"), &admin, None)
            .await,
        409,
    )
    .await;
}

#[actix_web::test]
async fn failures_far_apart_are_forgotten() {
    let app = app_on_manual_clock().await;
    app.register("forgetful@example.org", GOOD_PASSWORD).await;
    fail_logins(&app, "forgetful@example.org", 4).await;
    app.clock.advance(3601);
    // Four more failures: the count started again at one, so no lock.
    fail_logins(&app, "forgetful@example.org", 4).await;
    assert_eq!(
        app.login("forgetful@example.org", GOOD_PASSWORD)
            .await
            .status(),
        200
    );
    assert!(app.audit_events("auth.account_locked").is_empty());
}

#[actix_web::test]
async fn concurrent_failures_cannot_overshoot_a_step() {
    let app = app_on_manual_clock().await;
    app.register("stampede@example.org", GOOD_PASSWORD).await;
    let attempts = (0..10).map(|_| app.login("stampede@example.org", "not the password at all"));
    let responses = futures_util::future::join_all(attempts).await;
    assert!(responses.iter().all(|r| r.status() == 401));
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let failures: u32 = conn
        .query_row(
            "SELECT failed_logins FROM users WHERE email = 'stampede@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("user");
    assert_eq!(
        failures, 5,
        "attempts finishing after the lock do not count"
    );
    let events = app.audit_events("auth.account_locked");
    assert_eq!(events.len(), 1);
    assert!(events[0].2.contains("\"lock_seconds\":60"));
}

#[actix_web::test]
async fn unlocking_does_not_reactivate_a_disabled_account() {
    let app = app_on_manual_clock().await;
    let admin = make_admin(&app, "keeper@example.org").await;
    app.register("gone@example.org", GOOD_PASSWORD).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE users SET status = 'disabled' WHERE email = 'gone@example.org'",
        [],
    )
    .expect("disable");
    let id = user_id(&app, "gone@example.org");
    let response = app
        .post_with_token(&format!("/api/v1/admin/users/{id}/unlock"), &admin, None)
        .await;
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "disabled");
    assert_eq!(
        app.login("gone@example.org", GOOD_PASSWORD).await.status(),
        401
    );
}

#[actix_web::test]
async fn a_lock_as_long_as_the_forget_window_does_not_wipe_the_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(
        dir.path(),
        &[
            ("SOFTLOCK_STEPS", "3:100"),
            ("SOFTLOCK_FORGET_AFTER_SECONDS", "100"),
        ],
    );
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    let app = spawn_with(settings, dir, reqwest::Client::new(), clock).await;
    app.register("patient@example.org", GOOD_PASSWORD).await;
    fail_logins(&app, "patient@example.org", 3).await;
    assert_eq!(app.audit_events("auth.account_locked").len(), 1);
    // The lock ends as the forget window would: the next failure still follows
    // the three before it, and locks again at once.
    app.clock.advance(101);
    fail_logins(&app, "patient@example.org", 1).await;
    let locks = app.audit_events("auth.account_locked");
    assert_eq!(locks.len(), 2, "{locks:?}");
    assert!(
        locks[1].2.contains("\"consecutive_failures\":4"),
        "{locks:?}"
    );
    // Quiet for the whole window after the lock: forgotten.
    app.clock.advance(201);
    fail_logins(&app, "patient@example.org", 1).await;
    assert_eq!(app.audit_events("auth.account_locked").len(), 2);
}
