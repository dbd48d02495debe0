//! Retention: delivered webhook deliveries older than `WEBHOOK_RETENTION_DAYS` and
//! sessions over for longer than their tokens live are deleted in batches; failed
//! and pending deliveries, live sessions and the audit log are kept.

use portcullis::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_with, test_settings};

async fn app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(
        dir.path(),
        &[
            ("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8"),
            ("WEBHOOK_RETENTION_DAYS", "30"),
        ],
    );
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

fn count(app: &TestApp, sql: &str) -> i64 {
    rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .query_row(sql, [], |r| r.get(0))
        .expect("count")
}

#[actix_web::test]
async fn what_is_past_its_retention_goes_and_the_rest_stays() {
    let app = app().await;
    let owner = app.signed_up("hooks@example.org").await.access_token;
    let hook: Value = app
        .post_with_token(
            "/api/v1/webhooks",
            &owner,
            Some(&json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await
        .json()
        .await
        .expect("json");
    let hook_id = hook["id"].as_str().expect("id").to_owned();
    let now = app.clock.now();
    {
        let conn = rusqlite::Connection::open(&app.db_path).expect("open");
        // Disabled, so the worker leaves these rows alone.
        conn.execute("UPDATE webhooks SET enabled = 0 WHERE id = ?1", [&hook_id])
            .expect("disable");
        for (id, status, age_days) in [
            ("msg_old_delivered_1", "delivered", 31),
            ("msg_old_delivered_2", "delivered", 45),
            ("msg_old_delivered_3", "delivered", 400),
            ("msg_old_failed", "failed", 400),
            ("msg_old_pending", "pending", 400),
            ("msg_new_delivered", "delivered", 29),
        ] {
            let at = now - age_days * 86_400;
            conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_type, payload, status,
                 attempts, next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, 'document.created', '{}', ?3, 1, 0, ?4, ?4)",
                rusqlite::params![id, hook_id, status, at],
            )
            .expect("delivery");
            conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code,
                 duration_ms, error_class) VALUES (?1, 1, ?2, 200, 3, 'none')",
                rusqlite::params![id, at],
            )
            .expect("attempt");
        }
    }
    // Sessions: one ended now, one still live.
    let ended = app
        .signed_in("hooks@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    let out = app
        .post_with_token("/api/v1/auth/logout", &ended.access_token, None)
        .await;
    assert!(out.status().is_success(), "{}", out.status());
    let sessions_before = count(&app, "SELECT COUNT(*) FROM sessions");
    let audit_before = count(&app, "SELECT COUNT(*) FROM audit_events");

    // Batches of two: every old delivered one goes, with its attempts.
    let pruned = app.state.webhooks.prune_delivered(2).await.expect("prune");
    assert_eq!(pruned, 3);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE id LIKE 'msg_old_delivered%'"
        ),
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM webhook_deliveries"), 3);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM webhook_attempts"), 3);

    // A session just ended may still have unexpired tokens: kept for now.
    assert_eq!(
        app.state
            .revocations
            .prune_sessions(2)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions"),
        sessions_before
    );
    // Once every token it issued is dead, it goes; the live ones stay and work.
    app.clock.advance(15 * 60 + 3600);
    let live = app
        .signed_in("hooks@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    assert_eq!(
        app.state
            .revocations
            .prune_sessions(2)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions"),
        sessions_before
    );
    assert_eq!(app.me_status(&live.access_token).await, 200);
    assert_eq!(app.me_status(&ended.access_token).await, 401);
    // The audit log is never pruned.
    assert!(count(&app, "SELECT COUNT(*) FROM audit_events") >= audit_before);
}
