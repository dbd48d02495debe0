//! Rate limits from outside: the deployment checks of the service Portcullis
//! replaces, keys (client, proxy, IPv6 /64, user), the bounded key table, headers.

use crate::helpers::{GOOD_PASSWORD, TestApp, problem, spawn_app_with};

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn assert_limited(response: reqwest::Response) {
    let retry_after = header(&response, "retry-after").expect("Retry-After on 429");
    assert!(retry_after >= 1);
    assert_eq!(header(&response, "ratelimit-remaining"), Some(0));
    assert!(header(&response, "ratelimit-limit").is_some());
    assert!(header(&response, "ratelimit-reset").is_some_and(|r| r >= 1));
    let body = problem(response, 429).await;
    assert_eq!(body["title"], "Too many requests");
}

/// Login limits back at their defaults (the other tests run with generous ones).
async fn app_with_login_defaults(extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = vec![
        ("RATE_LIMIT_LOGIN_IP", "5/60"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "10/60"),
    ];
    overrides.extend_from_slice(extra);
    spawn_app_with(&overrides).await
}

#[actix_web::test]
async fn the_sixth_wrong_login_from_one_ip_within_a_minute_is_429() {
    let app = app_with_login_defaults(&[]).await;
    app.register("target@example.org", GOOD_PASSWORD).await;
    for attempt in 1..=5u64 {
        let response = app
            .login("target@example.org", "wrong password number x")
            .await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        assert_eq!(header(&response, "ratelimit-limit"), Some(5));
        assert_eq!(header(&response, "ratelimit-remaining"), Some(5 - attempt));
    }
    assert_limited(
        app.login("target@example.org", "wrong password number x")
            .await,
    )
    .await;
    // Even the right password waits: the limit is on attempts, not on failures.
    assert_limited(app.login("target@example.org", GOOD_PASSWORD).await).await;
}

#[actix_web::test]
async fn the_fourth_registration_from_one_ip_within_an_hour_is_429() {
    let app = spawn_app_with(&[("RATE_LIMIT_REGISTER_IP", "3/3600")]).await;
    for i in 1..=3 {
        let response = app
            .register(&format!("new{i}@example.org"), GOOD_PASSWORD)
            .await;
        assert_eq!(response.status(), 201);
    }
    let fourth = app.register("new4@example.org", GOOD_PASSWORD).await;
    assert!(
        header(&fourth, "retry-after").is_some_and(|s| s > 60),
        "most of an hour to wait"
    );
    assert_limited(fourth).await;
}

#[actix_web::test]
async fn the_per_user_limit_follows_the_user_across_addresses() {
    let app = spawn_app_with(&[
        ("DEFAULT_RATE_LIMIT_CALLS", "5"),
        ("DEFAULT_RATE_LIMIT_PERIOD", "60"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let tokens = app.signed_up("roamer@example.org").await;
    let me = |ip: String| {
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(&tokens.access_token)
            .header("x-forwarded-for", ip)
            .send()
    };
    for i in 1..=5u64 {
        let response = me(format!("198.51.100.{i}")).await.expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit"), Some(5));
        assert_eq!(header(&response, "ratelimit-remaining"), Some(5 - i));
    }
    assert_limited(me("203.0.113.77".to_owned()).await.expect("request")).await;
    // Another user is unaffected.
    let other = app.signed_up("homebody@example.org").await;
    assert_eq!(app.me_status(&other.access_token).await, 200);
}

#[actix_web::test]
async fn a_spoofed_forwarded_for_is_ignored_unless_a_trusted_proxy_sent_it() {
    let untrusted = app_with_login_defaults(&[]).await;
    for i in 1..=5 {
        let response = untrusted
            .login_from(
                &format!("192.0.2.{i}"),
                "spoof@example.org",
                "whatever it is 1",
            )
            .await;
        assert_eq!(response.status(), 401);
    }
    assert_limited(
        untrusted
            .login_from("192.0.2.99", "spoof@example.org", "whatever it is 1")
            .await,
    )
    .await;

    let behind_proxy = app_with_login_defaults(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    for i in 1..=8 {
        let response = behind_proxy
            .login_from(
                &format!("192.0.2.{i}"),
                "spoof@example.org",
                "whatever it is 1",
            )
            .await;
        assert_eq!(
            response.status(),
            401,
            "each real client has its own bucket"
        );
    }
}

#[actix_web::test]
async fn two_ipv6_addresses_in_one_64_share_a_bucket() {
    let app = app_with_login_defaults(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    for i in 1..=5 {
        let response = app
            .login_from(
                &format!("2001:db8:aa:1::{i:x}"),
                &format!("v6user{i}@example.org"),
                "nope nope nope 1",
            )
            .await;
        assert_eq!(response.status(), 401);
    }
    let same_64 = app
        .login_from(
            "2001:db8:aa:1:ffff:ffff:ffff:ffff",
            "v6user9@example.org",
            "nope nope nope 1",
        )
        .await;
    assert_limited(same_64).await;
    let next_64 = app
        .login_from(
            "2001:db8:aa:2::1",
            "v6user9@example.org",
            "nope nope nope 1",
        )
        .await;
    assert_eq!(next_64.status(), 401);
}

#[actix_web::test]
async fn beyond_a_tiny_key_cap_newcomers_share_a_strict_overflow_bucket() {
    let app = app_with_login_defaults(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("RATE_LIMIT_MAX_KEYS", "2"),
    ])
    .await;
    let mut statuses = Vec::new();
    for i in 1..=12 {
        let response = app
            .login_from(
                &format!("203.0.113.{i}"),
                &format!("spray{i}@example.org"),
                "spray spray spray 1",
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    // Two addresses got their own buckets; the other ten share one bucket of five.
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    assert!(statuses[..7].iter().all(|s| *s == 401), "{statuses:?}");

    // The overflow is reported: a log line and an audit event, once per sweep.
    // (Every limiter has the tiny cap: the anonymous and per-account ones
    // overflowed too.)
    portcullis::startup::sweep_limiters(&app.state).await;
    let events = app.audit_events("limits.overflow");
    let login_ip: Vec<_> = events
        .iter()
        .filter(|e| e.1.as_deref() == Some("login_ip"))
        .collect();
    assert_eq!(login_ip.len(), 1, "{events:?}");
    assert!(login_ip[0].2.contains("\"hits\":10"), "{}", login_ip[0].2);
    portcullis::startup::sweep_limiters(&app.state).await;
    assert_eq!(
        app.audit_events("limits.overflow").len(),
        events.len(),
        "nothing new to report"
    );
}

#[actix_web::test]
async fn health_is_exempt_and_other_anonymous_requests_are_limited() {
    let app = spawn_app_with(&[("RATE_LIMIT_ANONYMOUS", "2/60")]).await;
    for _ in 0..10 {
        assert_eq!(app.get("/health").await.status(), 200);
        assert_eq!(app.get("/health/ready").await.status(), 200);
    }
    assert_eq!(app.get("/api/openapi.json").await.status(), 200);
    let second = app.get("/api/openapi.json").await;
    assert_eq!(header(&second, "ratelimit-remaining"), Some(0));
    assert_limited(app.get("/api/openapi.json").await).await;
    // A forged token does not escape the anonymous limit.
    let forged = app
        .get_with_token("/api/openapi.json", "eyJhbGciOiJub25lIn0.e30.")
        .await;
    assert_eq!(forged.status(), 429);
}

#[actix_web::test]
async fn the_eleventh_attempt_on_one_account_from_anywhere_is_429() {
    let app = app_with_login_defaults(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.register("popular@example.org", GOOD_PASSWORD).await;
    for i in 1..=10 {
        let response = app
            .login_from(
                &format!("198.51.100.{i}"),
                "Popular@Example.org",
                "a wrong guess 123",
            )
            .await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    let eleventh = app
        .login_from("198.51.100.11", "popular@example.org", "a wrong guess 123")
        .await;
    assert_eq!(header(&eleventh, "ratelimit-limit"), Some(10));
    assert_limited(eleventh).await;
}

#[actix_web::test]
async fn oversized_emails_make_no_account_keys() {
    let app = app_with_login_defaults(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let huge = format!("{}@example.org", "x".repeat(60_000));
    let response = app
        .login_from("198.51.100.1", &huge, "whatever whatever 1")
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.state
            .limits
            .tracked_keys(portcullis::limits::RouteClass::LoginAccount),
        0
    );
    app.login_from("198.51.100.2", "real@example.org", "whatever whatever 1")
        .await;
    assert_eq!(
        app.state
            .limits
            .tracked_keys(portcullis::limits::RouteClass::LoginAccount),
        1
    );
}

#[actix_web::test]
async fn the_registration_limit_is_per_address_not_global() {
    let app = spawn_app_with(&[
        ("RATE_LIMIT_REGISTER_IP", "3/3600"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let register_from = |ip: &'static str, email: String| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": email, "password": GOOD_PASSWORD}))
            .send()
    };
    for i in 1..=3 {
        assert_eq!(
            register_from("192.0.2.1", format!("a{i}@example.org"))
                .await
                .expect("request")
                .status(),
            201
        );
    }
    assert_eq!(
        register_from("192.0.2.1", "a4@example.org".to_owned())
            .await
            .expect("request")
            .status(),
        429
    );
    assert_eq!(
        register_from("192.0.2.2", "b1@example.org".to_owned())
            .await
            .expect("request")
            .status(),
        201
    );
}

#[actix_web::test]
async fn a_revoked_token_does_not_spend_its_owners_budget() {
    let app = spawn_app_with(&[
        ("DEFAULT_RATE_LIMIT_CALLS", "3"),
        ("DEFAULT_RATE_LIMIT_PERIOD", "60"),
    ])
    .await;
    let stolen = app.signed_up("owner@example.org").await;
    let mine = app.signed_in("owner@example.org", GOOD_PASSWORD).await;
    app.post_with_token("/api/v1/auth/logout", &stolen.access_token, None)
        .await;
    for _ in 0..6 {
        assert_eq!(app.me_status(&stolen.access_token).await, 401);
    }
    for _ in 0..2 {
        assert_eq!(
            app.me_status(&mine.access_token).await,
            200,
            "the owner keeps their budget"
        );
    }
}

#[actix_web::test]
async fn the_maintenance_task_sweeps_and_reports_overflow() {
    let app = app_with_login_defaults(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("RATE_LIMIT_MAX_KEYS", "2"),
    ])
    .await;
    for i in 1..=6 {
        app.login_from(
            &format!("203.0.113.{i}"),
            &format!("m{i}@example.org"),
            "spray spray spray 1",
        )
        .await;
    }
    let task = actix_web::rt::spawn(portcullis::startup::maintain(
        app.state.clone(),
        std::time::Duration::from_millis(20),
    ));
    let mut reported = false;
    for _ in 0..100 {
        if !app.audit_events("limits.overflow").is_empty() {
            reported = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(
        reported,
        "the running maintenance task audited the overflow"
    );
}
