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

#[actix_web::test]
async fn only_registrations_that_find_or_create_an_account_spend_the_budget() {
    let app = spawn_app_with(&[("RATE_LIMIT_REGISTER_IP", "3/3600")]).await;
    // Refused passwords and e-mails cost nothing, however many.
    for i in 1..=5 {
        let weak = app
            .register(&format!("typo{i}@example.org"), "password")
            .await;
        assert_eq!(weak.status(), 422, "attempt {i}");
        assert_eq!(header(&weak, "ratelimit-limit"), Some(3));
        assert_eq!(header(&weak, "ratelimit-remaining"), Some(3));
    }
    let malformed = app.register("not an e-mail", GOOD_PASSWORD).await;
    assert_eq!(malformed.status(), 422);
    // An account created, an e-mail found taken, a typo (free), an account created:
    // three counted.
    let expected = [
        ("first@example.org", GOOD_PASSWORD, 201, 2),
        ("first@example.org", GOOD_PASSWORD, 409, 1),
        ("second@example.org", "password", 422, 1),
        ("second@example.org", GOOD_PASSWORD, 201, 0),
    ];
    for (email, password, status, remaining) in expected {
        let response = app.register(email, password).await;
        assert_eq!(response.status(), status, "{email}");
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            Some(remaining),
            "{email} {status}"
        );
    }
    // The fourth counting attempt is refused before any work: nothing is created,
    // and a typo is refused too.
    assert_limited(app.register("third@example.org", GOOD_PASSWORD).await).await;
    assert_limited(app.register("first@example.org", GOOD_PASSWORD).await).await;
    assert_limited(app.register("third@example.org", "password").await).await;
    assert_eq!(app.audit_events("auth.registered").len(), 2);
}

/// The second sign-in step: the challenge from the password step, and a code.
async fn verify_login(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/mfa/verify-login",
        &serde_json::json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

async fn mfa_token(app: &TestApp, email: &str) -> String {
    let response = app.login(email, GOOD_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

#[actix_web::test]
async fn login_attempts_and_mfa_codes_have_separate_budgets() {
    let app = crate::mfa::app_with(&[
        ("RATE_LIMIT_LOGIN_IP", "5/60"),
        ("RATE_LIMIT_MFA_IP", "3/60"),
    ])
    .await;
    // Signing up signs in once: one login attempt of five.
    let user = crate::mfa::enrolled(&app, "two-step@example.org").await;

    // Logins spent: the codes still have their budget.
    let token = mfa_token(&app, "two-step@example.org").await;
    for _ in 0..3 {
        let response = app.login("nobody@example.org", "a wrong guess 123").await;
        assert_eq!(response.status(), 401);
    }
    assert_limited(app.login("two-step@example.org", GOOD_PASSWORD).await).await;
    let wrong = verify_login(&app, &token, "000000").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(header(&wrong, "ratelimit-limit"), Some(3));
    assert_eq!(header(&wrong, "ratelimit-remaining"), Some(2));
    // The next TOTP step: enabling MFA used this one's code.
    app.clock.advance(30);
    let signed_in = verify_login(&app, &token, &user.code(&app)).await;
    assert_eq!(signed_in.status(), 200);

    // A minute later, codes spent: the logins still have theirs.
    app.clock.advance(61);
    let token = mfa_token(&app, "two-step@example.org").await;
    for _ in 0..3 {
        assert_eq!(verify_login(&app, &token, "000000").await.status(), 401);
    }
    assert_limited(verify_login(&app, &token, "000000").await).await;
    let login = app.login("two-step@example.org", GOOD_PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_eq!(header(&login, "ratelimit-limit"), Some(5));
}

#[actix_web::test]
async fn the_code_pages_of_the_admin_sign_in_and_the_gate_portal_have_their_own_budget() {
    let mut vars = crate::gate::gate_vars("127.0.0.1");
    vars.push(("RATE_LIMIT_LOGIN_IP", "5/3600".to_owned()));
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = crate::mfa::app_with(&overrides).await;
    let token = app.admin_token("root@example.org").await;
    let setup: serde_json::Value = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            &token,
            Some(&serde_json::json!({"password": GOOD_PASSWORD})),
        )
        .await
        .json()
        .await
        .expect("json");
    let secret = portcullis::auth::mfa::TotpSecret::from_base32(
        setup["secret"].as_str().expect("secret").as_bytes(),
    )
    .expect("base32");
    let code = |app: &TestApp| secret.code_at(app.clock.now()).expect("code");
    let enabled = app
        .post_with_token(
            "/api/v1/auth/mfa/enable",
            &token,
            Some(&serde_json::json!({"code": code(&app)})),
        )
        .await;
    assert_eq!(enabled.status(), 200);

    // The password step on both doors, then the address's login attempts spent.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let admin = browser
        .post(app.url("/admin/login"))
        .form(&[("email", "root@example.org"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(admin.url().path(), "/admin/login/code");
    let rd = "http://one.gate.test/";
    let portal = crate::gate::no_redirects()
        .post(app.url("/gate/login"))
        .form(&[
            ("email", "root@example.org"),
            ("password", GOOD_PASSWORD),
            ("rd", rd),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(portal.status(), 303);
    let pending = portal
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portcullis_gate_mfa="))
        .and_then(|v| v.split(';').next())
        .map(|v| format!("portcullis_gate_mfa={v}"))
        .expect("pending cookie");
    let mut statuses = Vec::new();
    while statuses.last() != Some(&429) && statuses.len() < 6 {
        let response = app.login("nobody@example.org", "a wrong guess 123").await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // The codes still have their own budget, on both doors (each in a step of its
    // own: a code counts once).
    app.clock.advance(30);
    let admin = browser
        .post(app.url("/admin/login/code"))
        .form(&[("code", code(&app).as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(admin.status(), 200);
    assert_eq!(admin.url().path(), "/admin");
    app.clock.advance(30);
    let portal = crate::gate::no_redirects()
        .post(app.url("/gate/login/code"))
        .header("Cookie", &pending)
        .form(&[("code", code(&app).as_str()), ("rd", rd)])
        .send()
        .await
        .expect("request");
    assert_eq!(portal.status(), 303);
    assert_eq!(portal.headers()["location"], rd);
}
