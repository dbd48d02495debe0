//! The admin pages, as a browser without JavaScript uses them: sign-in (and MFA),
//! CSRF on every form, cross-site refusal, idle expiry, escaping, the condition
//! builder and the simulator.

use portcullis::auth::mfa::TotpSecret;
use portcullis::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::{
    GOOD_PASSWORD, TestApp, binary_vars, problem, run_binary, spawn_with, test_settings,
    test_variables,
};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), overrides);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, browser(), clock).await
}

const NO_MFA: &[(&str, &str)] = &[("ADMIN_REQUIRE_MFA", "false")];

/// The CSRF token of the page's first form.
fn csrf(html: &str) -> String {
    html.split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_owned()
}

async fn sign_in(app: &TestApp, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/admin/login"))
        .form(&[("email", email), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("request")
}

/// An administrator signed in to the pages; returns the dashboard's HTML.
async fn signed_in_admin(app: &TestApp) -> String {
    app.admin_token("root@example.org").await;
    let response = sign_in(app, "root@example.org").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/admin");
    response.text().await.expect("html")
}

async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .expect("request")
}

#[actix_web::test]
async fn an_administrator_signs_in_and_sees_the_dashboard() {
    let app = app_with(NO_MFA).await;
    let first = app.get("/admin").await;
    assert_eq!(
        first.url().path(),
        "/admin/login",
        "signed out: to the sign-in page"
    );
    let html = signed_in_admin(&app).await;
    assert!(html.contains("<h1>Dashboard</h1>"), "{html}");
    assert!(html.contains("Configuration check"));
    assert!(html.contains("<svg class=\"chart\""));
    assert!(
        html.contains("Demo mode"),
        "the MFA banner shows while MFA is off"
    );
    let page = app.get("/admin/policies").await;
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'none'"));
    let css = app.get("/static/admin.css").await;
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age")
    );
    // The session cookie is HttpOnly and SameSite=Strict.
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url("/admin/login"))
        .form(&[("email", "root@example.org"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("request");
    let set_cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(set_cookie.starts_with("portcullis_admin="), "{set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    // Signing out ends it.
    let csrf = csrf(&html);
    let out = post_form(&app, "/admin/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.url().path(), "/admin/login");
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
}

#[actix_web::test]
async fn non_administrators_and_admins_without_mfa_get_no_access() {
    let app = app_with(&[]).await;
    app.signed_up("user@example.org").await;
    // A non-administrator's right password reads exactly as a wrong one; the audit
    // log keeps the reason.
    let refused = sign_in(&app, "user@example.org").await;
    assert_eq!(refused.status(), 401);
    let right = refused.text().await.expect("html");
    let wrong = app
        .client
        .post(app.url("/admin/login"))
        .form(&[
            ("email", "user@example.org"),
            ("password", "a wrong password!"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    assert_eq!(right, wrong.text().await.expect("html"));
    assert!(right.contains("Invalid email or password"), "{right}");
    let refusals = app.audit_events("admin.sign_in_refused");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].2.contains("not_admin"), "{refusals:?}");
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
    // MFA is required by default: an administrator without it gets no session,
    // only the enrolment step (see the test of it below).
    app.admin_token("root@example.org").await;
    let enrol = sign_in(&app, "root@example.org").await;
    assert_eq!(enrol.url().path(), "/admin/login/enrol");
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
    // A wrong password reads like any other failure.
    let wrong = app
        .client
        .post(app.url("/admin/login"))
        .form(&[
            ("email", "root@example.org"),
            ("password", "not the password at all"),
        ])
        .send()
        .await
        .expect("request");
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("Invalid email or password")
    );
}

#[actix_web::test]
async fn an_administrator_with_mfa_signs_in_with_a_code() {
    let app = app_with(&[]).await;
    let token = app.admin_token("root@example.org").await;
    let setup: Value = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            &token,
            Some(&json!({"password": GOOD_PASSWORD})),
        )
        .await
        .json()
        .await
        .expect("json");
    let secret =
        TotpSecret::from_base32(setup["secret"].as_str().expect("secret").as_bytes()).expect("b32");
    let code = secret.code_at(app.clock.now()).expect("code");
    let enabled = app
        .post_with_token(
            "/api/v1/auth/mfa/enable",
            &token,
            Some(&json!({"code": code})),
        )
        .await;
    assert_eq!(enabled.status(), 200);
    app.clock.advance(30);
    let step = sign_in(&app, "root@example.org").await;
    assert_eq!(step.url().path(), "/admin/login/code");
    let code = secret.code_at(app.clock.now()).expect("code");
    let done = post_form(&app, "/admin/login/code", &[("code", code.as_str())]).await;
    assert_eq!(done.url().path(), "/admin");
    assert!(
        done.text()
            .await
            .expect("html")
            .contains("<h1>Dashboard</h1>")
    );
}

#[actix_web::test]
async fn every_form_post_needs_the_csrf_token_and_the_same_site() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let owner_policy = "/admin/policies/00000000-0000-4000-8000-000000000001";
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let admin_id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'root@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let forms = [
        "/admin/logout".to_owned(),
        format!("/admin/users/{admin_id}"),
        "/admin/webhooks/00000000-0000-4000-8000-000000000009".to_owned(),
        "/admin/policies/new".to_owned(),
        owner_policy.to_owned(),
        format!("{owner_policy}/status"),
        format!("{owner_policy}/delete"),
        "/admin/simulator".to_owned(),
    ];
    for path in &forms {
        for fields in [vec![], vec![("csrf", "wrong-token")]] {
            let refused = post_form(&app, path, &fields).await;
            assert_eq!(refused.status(), 403, "{path} {fields:?}");
        }
        let cross_site = app
            .client
            .post(app.url(path))
            .header("origin", "https://evil.example")
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .expect("request");
        assert_eq!(cross_site.status(), 403, "{path} from another origin");
        let fetched_cross = app
            .client
            .post(app.url(path))
            .header("sec-fetch-site", "cross-site")
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .expect("request");
        assert_eq!(fetched_cross.status(), 403, "{path} cross-site");
    }
    // Nothing changed: the owner policy is still there and active.
    let page = app.get("/admin/policies").await.text().await.expect("html");
    assert!(page.contains("Owners may do anything"));
    assert_eq!(
        app.get("/admin").await.url().path(),
        "/admin",
        "still signed in"
    );
}

#[actix_web::test]
async fn sessions_expire_after_thirty_idle_minutes() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    app.clock.advance(29 * 60);
    assert_eq!(
        app.get("/admin").await.url().path(),
        "/admin",
        "active use keeps it"
    );
    app.clock.advance(29 * 60);
    assert_eq!(app.get("/admin").await.url().path(), "/admin");
    app.clock.advance(30 * 60 + 1);
    assert_eq!(
        app.get("/admin").await.url().path(),
        "/admin/login",
        "idle: expired"
    );
}

#[actix_web::test]
async fn a_policy_name_with_markup_renders_escaped() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    let token = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let created = app
        .post_with_token(
            "/api/v1/admin/policies",
            &token,
            Some(
                &json!({"name": "<script>alert(1)</script>", "effect": "allow",
                         "resource_type": "report", "actions": ["read"]}),
            ),
        )
        .await;
    assert_eq!(created.status(), 201);
    let page = app.get("/admin/policies").await.text().await.expect("html");
    assert!(
        !page.contains("<script>alert(1)</script>"),
        "unescaped markup"
    );
    let escaped = [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
    ];
    assert!(escaped.iter().any(|e| page.contains(e)), "{page}");
}

#[actix_web::test]
async fn the_condition_builder_and_the_simulator_work_with_plain_forms() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let base = [
        ("csrf", token.as_str()),
        ("name", "Sales reads engineering"),
        ("effect", "allow"),
        ("resource_type", "document"),
        ("actions", "read"),
        ("priority", "100"),
        ("status", "active"),
        ("principals_type", "everyone"),
        ("principals", ""),
    ];
    // "Add an ALL group": the form comes back with one condition in the group.
    let mut fields = base.to_vec();
    fields.push(("op", "root:all"));
    let step = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(step.status(), 200);
    let page = step.text().await.expect("html");
    assert!(page.contains(r#"name="node.0.kind" value="all""#), "{page}");
    assert!(page.contains(r#"name="node.0.0.attribute""#));
    // Save it with a bad attribute: the error shows beside the condition.
    let mut fields = base.to_vec();
    fields.extend([
        ("node.0.kind", "all"),
        ("node.0.0.kind", "cond"),
        ("node.0.0.attribute", "subject.nope"),
        ("node.0.0.operator", "eq"),
        ("node.0.0.value", "sales"),
        ("node.0.0.value_type", "literal"),
        ("op", "save"),
    ]);
    let invalid = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(invalid.status(), 422);
    let page = invalid.text().await.expect("html");
    assert!(
        page.contains("attribute: `subject.nope` is not a known attribute"),
        "{page}"
    );
    // Fixed, saved: a real policy with the built conditions.
    let mut fields = base.to_vec();
    fields.extend([
        ("node.0.kind", "all"),
        ("node.0.0.kind", "cond"),
        ("node.0.0.attribute", "subject.attributes.department"),
        ("node.0.0.operator", "eq"),
        ("node.0.0.value", "sales"),
        ("node.0.0.value_type", "literal"),
        ("node.0.1.kind", "cond"),
        ("node.0.1.attribute", "resource.attributes.department"),
        ("node.0.1.operator", "in"),
        ("node.0.1.value", "engineering, sales"),
        ("node.0.1.value_type", "literal"),
        ("op", "save"),
    ]);
    let saved = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(saved.url().path(), "/admin/policies");
    let list = saved.text().await.expect("html");
    assert!(list.contains("Saved “Sales reads engineering”"), "{list}");
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let policies: Vec<Value> = app
        .get_with_token("/api/v1/admin/policies", &api)
        .await
        .json()
        .await
        .expect("json");
    let built = policies
        .iter()
        .find(|p| p["name"] == "Sales reads engineering")
        .expect("saved");
    assert_eq!(
        built["conditions"],
        json!({"all": [
            {"attribute": "subject.attributes.department", "operator": "eq", "value": "sales"},
            {"attribute": "resource.attributes.department", "operator": "in", "value": ["engineering", "sales"]}
        ]})
    );
    assert_eq!(app.audit_events("policy.created").len(), 1);

    // The simulator: a sales subject reading an engineering document.
    let simulate = |department: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("subject", "described".to_owned()),
            ("role", "user".to_owned()),
            (
                "subject_attributes",
                format!(r#"{{"department": "{department}"}}"#),
            ),
            ("action", "read".to_owned()),
            ("resource_type", "document".to_owned()),
            ("resource_id", "doc-1".to_owned()),
            ("owner_id", "someone-else".to_owned()),
            (
                "resource_attributes",
                r#"{"department": "engineering"}"#.to_owned(),
            ),
            ("ip", String::new()),
            ("time", String::new()),
        ]
    };
    let allowed = app
        .client
        .post(app.url("/admin/simulator"))
        .form(&simulate("sales"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("html");
    assert!(
        allowed.contains(r#"<h2 id="decision">Allowed</h2>"#),
        "{allowed}"
    );
    assert!(allowed.contains("Sales reads engineering"));
    let denied = app
        .client
        .post(app.url("/admin/simulator"))
        .form(&simulate("legal"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("html");
    assert!(denied.contains(r#"<h2 id="decision">Denied</h2>"#));
}

#[actix_web::test]
async fn users_webhooks_and_audit_pages() {
    let app = app_with(&[
        ("ADMIN_REQUIRE_MFA", "false"),
        ("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let user = app.signed_up("member@example.org").await.access_token;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'member@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let list = app
        .get("/admin/users?q=member")
        .await
        .text()
        .await
        .expect("html");
    // root@example.org shows once: in the header, as the signed-in account.
    assert!(
        list.contains(">member@example.org</a>")
            && list.matches(">root@example.org</a>").count() == 1
    );
    // Attributes and role from the page; then lock, which ends the sessions.
    let saved = post_form(
        &app,
        &format!("/admin/users/{id}"),
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "user"),
            ("attributes", r#"{"department": "sales"}"#),
        ],
    )
    .await;
    assert!(
        saved
            .text()
            .await
            .expect("html")
            .contains("Saved the role and attributes of member@example.org.")
    );
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let stored: String = conn
        .query_row("SELECT attributes FROM users WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .expect("attributes");
    assert_eq!(stored, r#"{"department":"sales"}"#);
    let bad = post_form(
        &app,
        &format!("/admin/users/{id}"),
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "user"),
            ("attributes", "[1]"),
        ],
    )
    .await;
    assert_eq!(bad.status(), 422);
    let locked = post_form(
        &app,
        &format!("/admin/users/{id}"),
        &[("csrf", token.as_str()), ("op", "lock"), ("confirm", "yes")],
    )
    .await;
    assert!(
        locked
            .text()
            .await
            .expect("html")
            .contains("Locked member@example.org; its sessions ended.")
    );
    assert_eq!(app.me_status(&user).await, 401);
    assert_eq!(app.audit_events("admin.user_locked").len(), 1);

    // Webhooks: listed with their owner; disabled from the page.
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
    let hook_id = hook["id"].as_str().expect("id");
    let page = app.get("/admin/webhooks").await.text().await.expect("html");
    assert!(page.contains("hooks@example.org") && page.contains("http://127.0.0.1:9/hook"));
    let disabled = post_form(
        &app,
        &format!("/admin/webhooks/{hook_id}"),
        &[
            ("csrf", token.as_str()),
            ("op", "disable"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert!(
        disabled
            .text()
            .await
            .expect("html")
            .contains("Disabled the webhook to http://127.0.0.1:9/hook.")
    );
    let shown: Value = app
        .get_with_token(&format!("/api/v1/webhooks/{hook_id}"), &owner)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["enabled"], false);
    // A disabled webhook sends nothing, not even on an administrator's retry.
    let retry = post_form(
        &app,
        &format!("/admin/webhooks/{hook_id}"),
        &[
            ("csrf", token.as_str()),
            ("op", "retry"),
            ("delivery", "msg_x"),
        ],
    )
    .await;
    assert_eq!(retry.status(), 409);

    // Audit: filtered, chain status shown, CSV export with formula cells defused.
    let audit = app
        .get("/admin/audit?event=admin.user_locked")
        .await
        .text()
        .await
        .expect("html");
    assert!(audit.contains("Hash chain intact"));
    assert!(
        audit.contains("<code>admin.user_locked</code>")
            && !audit.contains("<code>auth.registered</code>")
    );
    let csv = app.get("/admin/audit.csv?event=auth.registered").await;
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("csv");
    assert!(text.starts_with("id,occurred_at,event"));
    assert_eq!(text.lines().count(), 1 + 3, "three registrations");
    assert_eq!(
        app.audit_events("audit.exported").len(),
        1,
        "an export is itself audited"
    );
    let _ = api;
}

#[actix_web::test]
async fn sessions_end_after_twelve_hours_and_at_a_new_sign_in() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    // A second sign-in ends the first session.
    sign_in(&app, "root@example.org").await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let live: i64 = conn
        .query_row(
            "SELECT count(*) FROM browser_sessions WHERE ended_at IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(live, 1);
    // Busy all day, every 25 minutes: still out once 12 hours have passed.
    let started = app.clock.now();
    for _ in 0..40 {
        app.clock.advance(25 * 60);
        if app.get("/admin").await.url().path() != "/admin" {
            break;
        }
    }
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
    let lasted = app.clock.now() - started;
    assert!(
        (12 * 3600..=12 * 3600 + 25 * 60).contains(&lasted),
        "{lasted}"
    );
}

#[actix_web::test]
async fn the_code_step_has_the_login_limits_and_refusals_are_pages_not_errors() {
    let app = app_with(&[
        ("RATE_LIMIT_MFA_ACCOUNT", "3/60"),
        ("ADMIN_REQUIRE_MFA", "true"),
    ])
    .await;
    let token = app.admin_token("root@example.org").await;
    let setup: Value = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            &token,
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
        &token,
        Some(&json!({"code": code})),
    )
    .await;
    assert_eq!(
        sign_in(&app, "root@example.org").await.url().path(),
        "/admin/login/code"
    );
    // Enabling used one of the three checks; two wrong codes, then the limit.
    for _ in 0..2 {
        assert_eq!(
            post_form(&app, "/admin/login/code", &[("code", "000000")])
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        post_form(&app, "/admin/login/code", &[("code", "000000")])
            .await
            .status(),
        429
    );
    // Signed in (after the minute), the read-only administrator policy cannot be
    // saved from its page: a clear 409 page, not an error.
    app.clock.advance(61);
    sign_in(&app, "root@example.org").await;
    let code = secret.code_at(app.clock.now()).expect("code");
    let done = post_form(&app, "/admin/login/code", &[("code", code.as_str())]).await;
    let html = done.text().await.expect("html");
    let token = csrf(&html);
    let save = post_form(
        &app,
        "/admin/policies/00000000-0000-4000-8000-000000000002",
        &[
            ("csrf", token.as_str()),
            ("name", "x"),
            ("effect", "allow"),
            ("resource_type", "admin"),
            ("actions", "*"),
            ("priority", "0"),
            ("status", "active"),
            ("principals_type", "everyone"),
            ("op", "save"),
        ],
    )
    .await;
    assert_eq!(save.status(), 409);
    assert!(
        save.text()
            .await
            .expect("html")
            .contains("cannot be changed")
    );
}

/// One question for every door: a deny policy on resource type `admin` stops the
/// same action on the admin pages and on the admin API, and the operator on the host
/// lifts it with `portcullis policies deactivate` while the server runs.
#[actix_web::test]
async fn a_deny_policy_on_admin_stops_both_doors_and_the_host_lifts_it() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    app.signed_up("member@example.org").await;
    let member = user_id(&app, "member@example.org");
    let deny: Value = app
        .post_with_token(
            "/api/v1/admin/policies",
            &api,
            Some(&json!({"name": "Nobody locks accounts", "effect": "deny",
                         "resource_type": "admin", "actions": ["user.lock"]})),
        )
        .await
        .json()
        .await
        .expect("json");
    let deny_id = deny["id"].as_str().expect("id").to_owned();
    let lock_path = format!("/api/v1/admin/users/{member}/lock");

    // The API door refuses, naming no internals.
    let refused = problem(app.post_with_token(&lock_path, &api, None).await, 403).await;
    assert_eq!(
        refused["detail"],
        "The access policies do not allow this administrator action."
    );
    // The page door refuses the same action.
    let page = post_form(
        &app,
        &format!("/admin/users/{member}"),
        &[("csrf", token.as_str()), ("op", "lock")],
    )
    .await;
    assert_eq!(page.status(), 403);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("do not allow this administrator action")
    );
    assert_eq!(user_status(&app, "member@example.org"), "active");
    // Other actions are still allowed on both doors.
    let unlock = format!("/api/v1/admin/users/{member}/unlock");
    assert_eq!(app.post_with_token(&unlock, &api, None).await.status(), 200);

    // The host's break-glass: list, then deactivate, while the server runs.
    let vars = binary_vars(&app.settings);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let listed = run_binary(app.dir.path(), &["policies", "list"], &vars);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&deny_id) && l.split_whitespace().nth(1) == Some("active")),
        "{listed}"
    );
    let lifted = run_binary(app.dir.path(), &["policies", "deactivate", &deny_id], &vars);
    assert!(lifted.status.success(), "{lifted:?}");
    // The running server picks it up by itself (it checks every two seconds).
    let mut status = 0;
    for _ in 0..200 {
        status = app
            .post_with_token(&lock_path, &api, None)
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "the deactivation took effect without a restart"
    );
    assert_eq!(user_status(&app, "member@example.org"), "locked");
    // Audited, with the command line as the actor.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let actor: String = conn
        .query_row(
            "SELECT actor FROM audit_events WHERE event = 'policy.updated' AND target = ?1",
            [&deny_id],
            |r| r.get(0),
        )
        .expect("audited");
    assert_eq!(actor, "cli");
    // The built-in administrator policy cannot be switched off, even from the host.
    let refused = run_binary(
        app.dir.path(),
        &[
            "policies",
            "deactivate",
            "00000000-0000-4000-8000-000000000002",
        ],
        &vars,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("read-only"));
    let unknown = run_binary(
        app.dir.path(),
        &[
            "policies",
            "deactivate",
            "00000000-0000-4000-8000-00000000beef",
        ],
        &vars,
    );
    assert_eq!(unknown.status.code(), Some(1));
}

fn user_id(app: &TestApp, email: &str) -> String {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
        r.get(0)
    })
    .expect("id")
}

fn user_status(app: &TestApp, email: &str) -> String {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.query_row("SELECT status FROM users WHERE email = ?1", [email], |r| {
        r.get(0)
    })
    .expect("status")
}

/// The admin pages' origin check believes forwarded host headers only from a trusted
/// proxy: a client naming its own site as this server's is still cross-site. With
/// `PUBLIC_URL`, that origin alone is this server's.
#[actix_web::test]
async fn forwarded_host_headers_from_anyone_do_not_make_a_site_this_one() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let spoofed = app
        .client
        .post(app.url("/admin/simulator"))
        .header("origin", "https://evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=evil.example;proto=https")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(spoofed.status(), 403);
    // Its own origin, by the Host it was reached at, is fine.
    let own = app
        .client
        .post(app.url("/admin/simulator"))
        .header("origin", app.address.as_str())
        .form(&[
            ("csrf", token.as_str()),
            ("action", "read"),
            ("resource_type", "document"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), 200);

    let public = app_with(&[
        ("ADMIN_REQUIRE_MFA", "false"),
        ("PUBLIC_URL", "https://auth.example.org"),
    ])
    .await;
    let html = signed_in_admin(&public).await;
    let token = csrf(&html);
    let post = |origin: &'static str| {
        let (public, token) = (&public, token.clone());
        async move {
            public
                .client
                .post(public.url("/admin/simulator"))
                .header("origin", origin)
                .form(&[
                    ("csrf", token.as_str()),
                    ("action", "read"),
                    ("resource_type", "document"),
                ])
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    assert_eq!(post("https://auth.example.org").await, 200);
    let by_host = public.address.clone();
    let status = public
        .client
        .post(public.url("/admin/simulator"))
        .header("origin", by_host.as_str())
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 403, "only the public URL is this server's origin");
}

#[actix_web::test]
async fn the_gate_page_lists_the_hosts_and_what_the_gate_did() {
    let vars = crate::gate::gate_vars("127.0.0.1");
    let mut pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(NO_MFA);
    let app = app_with(&pairs).await;
    signed_in_admin(&app).await;
    for _ in 0..2 {
        let response = crate::gate::no_redirects()
            .get(app.url("/api/v1/gate/forward-auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "http")
            .header("X-Forwarded-Host", "app.gate.test")
            .header("X-Forwarded-Uri", "/")
            .header("Accept", "text/html")
            .send()
            .await
            .expect("ask");
        assert_eq!(response.status(), 302);
    }
    let html = app.get("/admin/gate").await.text().await.expect("html");
    assert!(html.contains("<code>*.gate.test</code>"), "{html}");
    assert!(html.contains("<td>0</td><td>0</td><td>2</td>"), "{html}");
    // The simulator asks about a request through the gate, signed out.
    let admin = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    crate::gate::route_policy(
        &app,
        &admin,
        serde_json::json!({"name": "Health is public", "effect": "allow", "resource_type": "route",
            "actions": ["get"], "principals": {"type": "public"},
            "conditions": {"attribute": "resource.attributes.path", "operator": "eq", "value": "/healthz"}}),
    )
    .await;
    let form = app
        .get("/admin/simulator")
        .await
        .text()
        .await
        .expect("html");
    for (url, verdict) in [
        ("https://app.gate.test/healthz", "Allowed"),
        ("https://app.gate.test/private", "Denied"),
    ] {
        let html = post_form(
            &app,
            "/admin/simulator",
            &[
                ("csrf", csrf(&form).as_str()),
                ("subject", "signed-out"),
                ("action", "GET"),
                ("resource_type", "document"),
                ("url", url),
            ],
        )
        .await
        .text()
        .await
        .expect("html");
        assert!(
            html.contains(&format!("<h2 id=\"decision\">{verdict}</h2>")),
            "{url}: {html}"
        );
    }
    // Without the gate, the page says how to turn it on.
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    let html = app.get("/admin/gate").await.text().await.expect("html");
    assert!(html.contains("GATE_PORTAL_URL"));
}

/// The text of the flash message a page shows, if any, and whether it is an error.
fn flash_of(html: &str) -> Option<(bool, String)> {
    let at = html.find(r#"<p class="flash"#)?;
    let rest = &html[at..];
    let error = rest.starts_with(r#"<p class="flash flash-error""#);
    let text = rest.split_once('>')?.1.split_once("</p>")?.0.to_owned();
    Some((error, text))
}

/// Destructive actions ask first on a page of their own (no JavaScript), name the
/// object, and do nothing until confirmed; every message names what it did.
#[actix_web::test]
async fn destructive_actions_ask_first_and_name_what_they_did() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let policy: Value = app
        .post_with_token(
            "/api/v1/admin/policies",
            &api,
            Some(&json!({"name": "Sales reads reports", "effect": "allow",
                         "resource_type": "report", "actions": ["read"]})),
        )
        .await
        .json()
        .await
        .expect("json");
    let policy_path = format!(
        "/api/v1/admin/policies/{}",
        policy["id"].as_str().expect("id")
    );
    let delete = format!(
        "/admin/policies/{}/delete",
        policy["id"].as_str().expect("id")
    );

    // One click asks; the policy is still there.
    let asked = post_form(&app, &delete, &[("csrf", token.as_str())]).await;
    assert_eq!(asked.status(), 200);
    let page = asked.text().await.expect("html");
    assert!(
        page.contains("Delete the policy “Sales reads reports”?"),
        "{page}"
    );
    assert!(page.contains(r#"name="confirm" value="yes""#));
    assert!(page.contains(r#"<a href="/admin/policies">Cancel</a>"#));
    assert_eq!(app.get_with_token(&policy_path, &api).await.status(), 200);
    // Confirming deletes it, and the message names it.
    let done = post_form(
        &app,
        &delete,
        &[("csrf", csrf(&page).as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(done.url().path(), "/admin/policies");
    assert_eq!(
        flash_of(&done.text().await.expect("html")),
        Some((
            false,
            "Deleted the policy “Sales reads reports”.".to_owned()
        ))
    );
    assert_eq!(app.get_with_token(&policy_path, &api).await.status(), 404);

    // Accounts: lock, end every session, a role change — each asks first.
    let member = app.signed_up("member@example.org").await.access_token;
    let id = user_id(&app, "member@example.org");
    let user_page = format!("/admin/users/{id}");
    for (fields, question) in [
        (vec![("op", "lock")], "Lock member@example.org?"),
        (
            vec![("op", "revoke_sessions")],
            "End every session of member@example.org?",
        ),
        (
            vec![("op", "update"), ("role", "admin"), ("attributes", "{}")],
            "Make member@example.org an admin?",
        ),
    ] {
        let mut posted = vec![("csrf", token.as_str())];
        posted.extend(fields.iter().copied());
        let asked = post_form(&app, &user_page, &posted).await;
        assert_eq!(asked.status(), 200, "{fields:?}");
        let page = asked.text().await.expect("html");
        assert!(page.contains(question), "{page}");
        // The confirmation carries the post's own fields.
        for (name, value) in &fields {
            assert!(
                page.contains(&format!(r#"name="{name}" value="{value}""#)),
                "{name} in {page}"
            );
        }
    }
    assert_eq!(user_status(&app, "member@example.org"), "active");
    assert_eq!(app.me_status(&member).await, 200, "nothing was done");
    // Attributes alone are saved at once, role unchanged.
    let saved = post_form(
        &app,
        &user_page,
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "user"),
            ("attributes", r#"{"team": "ops"}"#),
        ],
    )
    .await;
    assert_eq!(
        flash_of(&saved.text().await.expect("html")),
        Some((
            false,
            "Saved the role and attributes of member@example.org.".to_owned()
        ))
    );
    // Bad attributes keep what was typed.
    let typed = r#"{"team": "ops""#;
    let bad = post_form(
        &app,
        &user_page,
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "user"),
            ("attributes", typed),
        ],
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text()
            .await
            .expect("html")
            .contains("{&#34;team&#34;: &#34;ops&#34;</textarea>"),
        "the typed text comes back"
    );
    // Confirmed, it ends the sessions and says whose.
    let ended = post_form(
        &app,
        &user_page,
        &[
            ("csrf", token.as_str()),
            ("op", "revoke_sessions"),
            ("confirm", "yes"),
        ],
    )
    .await;
    let (error, message) = flash_of(&ended.text().await.expect("html")).expect("a flash");
    assert!(
        !error && message.ends_with("session(s) of member@example.org."),
        "{message}"
    );
    assert_eq!(app.me_status(&member).await, 401);

    // A refusal shows as an error, not in the success style.
    let root = user_id(&app, "root@example.org");
    let own = post_form(
        &app,
        &format!("/admin/users/{root}"),
        &[("csrf", token.as_str()), ("op", "lock"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(
        flash_of(&own.text().await.expect("html")),
        Some((true, "You cannot lock your own account.".to_owned()))
    );
}

/// The built-in administrator policy is shown read-only: no Deactivate, a form
/// with nothing to edit, and a refusal shown as an error that keeps the page.
#[actix_web::test]
async fn the_built_in_administrator_policy_is_shown_read_only() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let admin_policy = "/admin/policies/00000000-0000-4000-8000-000000000002";
    let list = app.get("/admin/policies").await.text().await.expect("html");
    assert!(list.contains("built in, read-only"), "{list}");
    assert!(
        !list.contains(&format!(r#"action="{admin_policy}/status""#)),
        "no Deactivate for the read-only policy"
    );
    assert!(
        list.contains(r#"action="/admin/policies/00000000-0000-4000-8000-000000000001/status""#),
        "the owner policy can still be switched"
    );
    let form = app.get(admin_policy).await.text().await.expect("html");
    assert!(form.contains("(built in, read-only)"), "{form}");
    assert!(form.contains("<fieldset disabled>"));
    assert!(!form.contains(r#"value="save""#), "no Save button");
    let status = post_form(
        &app,
        &format!("{admin_policy}/status"),
        &[("csrf", token.as_str()), ("status", "inactive")],
    )
    .await;
    let (error, message) = flash_of(&status.text().await.expect("html")).expect("flash");
    assert!(error, "a refusal is an error: {message}");
    assert!(message.contains("read-only"), "{message}");
}

/// A policy that would take admin actions from administrators is shown before it
/// is saved; one that would leave nobody able to edit policies is refused on
/// every door.
#[actix_web::test]
async fn a_policy_that_would_lock_administrators_out_is_shown_then_refused() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let deny = |actions: &'static str, op: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("name", "Freeze".to_owned()),
            ("effect", "deny".to_owned()),
            ("resource_type", "admin".to_owned()),
            ("actions", actions.to_owned()),
            ("priority", "10".to_owned()),
            ("status", "active".to_owned()),
            ("principals_type", "everyone".to_owned()),
            ("principals", String::new()),
            ("op", op.to_owned()),
        ]
    };
    let count = || {
        rusqlite::Connection::open(&app.db_path)
            .expect("open")
            .query_row(
                "SELECT COUNT(*) FROM policies WHERE name = 'Freeze'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count")
    };
    // A deny on locking accounts: shown, not saved, until "Save anyway".
    let shown = post_form(
        &app,
        "/admin/policies/new",
        &borrowed(&deny("user.lock", "save")),
    )
    .await;
    assert_eq!(shown.status(), 200);
    let page = shown.text().await.expect("html");
    assert!(
        page.contains("root@example.org could no longer: user.lock"),
        "{page}"
    );
    assert!(page.contains(r#"value="save_anyway""#));
    assert_eq!(count(), 0);
    let saved = post_form(
        &app,
        "/admin/policies/new",
        &borrowed(&deny("user.lock", "save_anyway")),
    )
    .await;
    assert_eq!(saved.url().path(), "/admin/policies");
    assert_eq!(count(), 1);

    // A deny on editing policies for everyone: refused even when asked to save anyway.
    let refused = post_form(
        &app,
        "/admin/policies/new",
        &borrowed(&deny("policy.update", "save_anyway")),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("html");
    assert!(
        page.contains("would leave no active administrator able to edit policies"),
        "{page}"
    );
    assert_eq!(count(), 1);
    // The API door refuses it too.
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let body = json!({"name": "Freeze", "effect": "deny", "resource_type": "admin",
                      "actions": ["*"]});
    let problem = problem(
        app.post_with_token("/api/v1/admin/policies", &api, Some(&body))
            .await,
        409,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no active administrator able to edit policies")),
        "{problem}"
    );
    assert_eq!(count(), 1);
    // With a second administrator outside the deny, the same policy is allowed.
    app.admin_token("keeper@example.org").await;
    let keeper = user_id(&app, "keeper@example.org");
    let scoped = json!({"name": "Freeze", "effect": "deny", "resource_type": "admin",
                        "actions": ["*"],
                        "conditions": {"attribute": "subject.id", "operator": "ne", "value": keeper}});
    assert_eq!(
        app.post_with_token("/api/v1/admin/policies", &api, Some(&scoped))
            .await
            .status(),
        201
    );
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A page asked for while signed out is where the sign-in returns to — an admin
/// page on this server only.
#[actix_web::test]
async fn the_sign_in_returns_to_the_page_asked_for() {
    let app = app_with(NO_MFA).await;
    app.admin_token("root@example.org").await;
    let first = app.get("/admin/users?q=root").await;
    assert_eq!(first.url().path(), "/admin/login");
    assert_eq!(
        first.url().query(),
        Some("next=%2Fadmin%2Fusers%3Fq%3Droot")
    );
    let page = first.text().await.expect("html");
    assert!(
        page.contains(r#"name="next" value="/admin/users?q=root""#),
        "{page}"
    );
    let back = app
        .client
        .post(app.url("/admin/login"))
        .form(&[
            ("email", "root@example.org"),
            ("password", GOOD_PASSWORD),
            ("next", "/admin/users?q=root"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(back.url().path(), "/admin/users");
    assert_eq!(back.url().query(), Some("q=root"));
    // Anywhere else lands on the dashboard.
    for next in [
        "//evil.example/admin",
        "/\\evil.example",
        "https://evil.example/admin",
        "/admin//evil.example",
        "/admin/login",
        "/api/v1/auth/me",
        "/admin/../../evil",
        "/admin/%2e%2e/%2E%2E/evil",
        "/admin/./users",
    ] {
        let landed = app
            .client
            .post(app.url("/admin/login"))
            .form(&[
                ("email", "root@example.org"),
                ("password", GOOD_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(landed.url().as_str(), app.url("/admin"), "{next}");
    }
}

/// Pages and their stylesheet answer HEAD as GET; a method a page does not take is
/// 405 with `Allow`; every page starts with a skip link to its content.
#[actix_web::test]
async fn pages_answer_head_and_start_with_a_skip_link() {
    let app = app_with(NO_MFA).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (path, status) in [
        ("/static/admin.css", 200),
        ("/admin/login", 200),
        ("/admin/policies", 303),
    ] {
        let head = plain.head(app.url(path)).send().await.expect("head");
        assert_eq!(head.status(), status, "HEAD {path}");
    }
    let put = plain
        .put(app.url("/admin/login"))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, HEAD, POST");
    let html = signed_in_admin(&app).await;
    assert!(
        html.contains(r##"<a class="skip" href="#main">Skip to content</a>"##),
        "{html}"
    );
    assert!(html.contains(r#"<main id="main">"#));
}

/// The secret an enrolment page shows as text.
fn secret_on(html: &str) -> TotpSecret {
    let text = html
        .split(r#"<code class="secret">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the key on the page");
    TotpSecret::from_base32(text.as_bytes()).expect("base32")
}

/// With MFA required, an administrator without it enrols on the way in: the QR
/// code and key, a wrong code refused, then the backup codes once and a session.
#[actix_web::test]
async fn an_administrator_without_mfa_enrols_it_at_sign_in() {
    let app = app_with(&[]).await;
    app.admin_token("root@example.org").await;
    let step = sign_in(&app, "root@example.org").await;
    assert_eq!(step.url().path(), "/admin/login/enrol");
    let csp = step.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("img-src 'self' data:") && csp.contains("script-src 'none'"));
    let page = step.text().await.expect("html");
    assert!(
        page.contains(r#"src="data:image/svg+xml;base64,"#),
        "{page}"
    );
    let wrong = post_form(&app, "/admin/login/enrol", &[("code", "000000")]).await;
    let page = wrong.text().await.expect("html");
    assert!(page.contains("did not match"), "{page}");
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
    let code = secret_on(&page).code_at(app.clock.now()).expect("code");
    let done = post_form(&app, "/admin/login/enrol", &[("code", code.as_str())]).await;
    assert_eq!(done.status(), 200);
    let page = done.text().await.expect("html");
    assert!(page.contains("shown only this once"), "{page}");
    assert_eq!(page.matches("<li><code>").count(), 10, "{page}");
    assert_eq!(app.audit_events("mfa.enabled").len(), 1);
    let dashboard = app.get("/admin").await;
    assert_eq!(dashboard.url().path(), "/admin");
    // Signing in again now asks for a code.
    let again = browser();
    let step = again
        .post(app.url("/admin/login"))
        .form(&[("email", "root@example.org"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(step.url().path(), "/admin/login/code");
}

/// The account page: TOTP enrolment (backup codes once), own sessions with their
/// own revoke, and a password change that ends every other session but keeps this
/// browser signed in.
#[actix_web::test]
async fn the_account_page_enrols_mfa_lists_sessions_and_changes_the_password() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    assert!(html.contains(r#"href="/admin/account""#));
    let other = app.signed_in("root@example.org", GOOD_PASSWORD).await;
    let page = app.get("/admin/account").await.text().await.expect("html");
    assert!(page.contains("Set up an authenticator"), "{page}");
    assert!(page.contains("this session"));
    // The API sign-in's session has its own End button, naming it.
    assert!(page.contains(r#"aria-label="End the session started"#));
    // Ending the API session from the page.
    let sessions: Value = app
        .get_with_token("/api/v1/auth/sessions", &other.access_token)
        .await
        .json()
        .await
        .expect("json");
    let api_session = sessions
        .as_array()
        .and_then(|all| all.iter().find(|s| s["current"] == true))
        .and_then(|s| s["id"].as_str())
        .expect("the API session")
        .to_owned();
    let ended = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "revoke_session"),
            ("session", api_session.as_str()),
        ],
    )
    .await;
    let (error, message) = flash_of(&ended.text().await.expect("html")).expect("flash");
    assert!(
        !error && message.starts_with("Ended the session started"),
        "{message}"
    );
    assert_eq!(app.me_status(&other.access_token).await, 401);
    // A wrong current password is refused beside its field.
    let wrong = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "password"),
            ("current_password", "not my password at all"),
            ("new_password", "a brand new passphrase 42"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 422);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("is not your current password")
    );
    // The change ends every other session and keeps this browser signed in.
    let api = app.signed_in("root@example.org", GOOD_PASSWORD).await;
    let changed = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "password"),
            ("current_password", GOOD_PASSWORD),
            ("new_password", "a brand new passphrase 42"),
        ],
    )
    .await;
    assert_eq!(changed.url().path(), "/admin/account");
    let page = changed.text().await.expect("html");
    assert!(page.contains("Password changed."), "{page}");
    assert_eq!(app.me_status(&api.access_token).await, 401);
    let page = app.get("/admin/account").await;
    assert_eq!(page.url().path(), "/admin/account");
    // A new session, a new form token.
    let token = csrf(&page.text().await.expect("html"));
    // Setting up needs the password first (a stolen session alone is not enough).
    let bare = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "mfa_setup"),
            ("password", "not it at all"),
        ],
    )
    .await;
    assert_eq!(bare.status(), 422);
    assert!(
        bare.text()
            .await
            .expect("html")
            .contains(r#"id="mfa-password-error""#)
    );
    let setup = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "mfa_setup"),
            ("password", "a brand new passphrase 42"),
        ],
    )
    .await;
    let page = setup.text().await.expect("html");
    let code = secret_on(&page).code_at(app.clock.now()).expect("code");
    let on = post_form(
        &app,
        "/admin/account",
        &[
            ("csrf", token.as_str()),
            ("op", "mfa_enable"),
            ("code", code.as_str()),
        ],
    )
    .await;
    let page = on.text().await.expect("html");
    assert!(page.contains("shown only this once"), "{page}");
    assert_eq!(page.matches("<li><code>").count(), 10);
}

/// The dashboard's configuration score is the one `check-config` prints for the
/// same configuration and database, and its chart has a scale.
#[actix_web::test]
async fn the_dashboard_shows_the_check_config_score_and_a_scaled_chart() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let shown: u8 = html
        .split("Configuration check: ")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .expect("a score on the dashboard");
    assert!(
        html.contains("audit chain intact"),
        "the database's findings show"
    );
    assert!(html.contains(r#"text-anchor="end">0</text>"#), "{html}");
    assert!(html.contains("hour of the day (UTC)"));
    // The binary reads exactly the variables the server was configured from.
    let mut vars = test_variables(app.dir.path(), NO_MFA);
    vars.extend(binary_vars(&app.settings));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let checked = run_binary(app.dir.path(), &["check-config"], &vars);
    let out = String::from_utf8_lossy(&checked.stdout).into_owned();
    let printed: u8 = out
        .split("Score: ")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .expect("a score printed");
    assert_eq!(shown, printed, "{out}");
}

/// The users list: a search in the database (not among the first rows), sorted by
/// e-mail or newest, a page at a time with nothing repeated or skipped; a user's
/// page shows the last sign-in, failures and each session with its own end; the
/// simulator names an account by e-mail.
#[actix_web::test]
async fn users_are_paged_searched_and_shown_with_their_sessions() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let member = app.signed_up("member-00@example.org").await.access_token;
    {
        let conn = rusqlite::Connection::open(&app.db_path).expect("open");
        for n in 1..60 {
            conn.execute(
                "INSERT INTO users (id, email, password_hash, role, attributes, status, created_at, updated_at)
                 SELECT ?1, ?2, password_hash, 'user', '{}', 'active', created_at + ?3, updated_at
                 FROM users WHERE email = 'member-00@example.org'",
                rusqlite::params![
                    uuid::Uuid::new_v4().to_string(),
                    format!("member-{n:02}@example.org"),
                    n
                ],
            )
            .expect("insert");
        }
    }
    let rows = |html: &str| -> Vec<String> {
        html.split(r#"<tr><td><a href="/admin/users/"#)
            .skip(1)
            .filter_map(|row| {
                row.split_once("\">")?
                    .1
                    .split_once('<')
                    .map(|(e, _)| e.to_owned())
            })
            .collect()
    };
    let first = app
        .get("/admin/users?q=member")
        .await
        .text()
        .await
        .expect("html");
    let mut seen = rows(&first);
    assert_eq!(seen.len(), 50);
    assert_eq!(seen[0], "member-00@example.org");
    let next = first
        .split(r#"<a href=""#)
        .filter_map(|a| a.split_once("\">Next page</a>"))
        .map(|(href, _)| href.replace("&#38;", "&"))
        .next()
        .expect("a next page");
    let second = app.get(&next).await.text().await.expect("html");
    assert!(!second.contains("Next page"), "{second}");
    assert!(second.contains("First page"));
    seen.extend(rows(&second));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (60, 60), "{seen:?}");
    let newest = app
        .get("/admin/users?q=member&sort=newest")
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(rows(&newest)[0], "member-59@example.org");
    let one = app
        .get("/admin/users?q=MEMBER-07")
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(rows(&one), vec!["member-07@example.org".to_owned()]);

    // The user's page: failures, last sign-in, and each session with its own end.
    let wrong = app
        .login("member-00@example.org", "not the password at all")
        .await;
    assert_eq!(wrong.status(), 401);
    let id = user_id(&app, "member-00@example.org");
    let page = app
        .get(&format!("/admin/users/{id}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("<td>1 since the last success</td>"), "{page}");
    assert!(!page.contains("<td>never</td>"), "a last sign-in is shown");
    let session = page
        .split(r#"name="session" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a session's End button")
        .to_owned();
    let ended = post_form(
        &app,
        &format!("/admin/users/{id}"),
        &[
            ("csrf", token.as_str()),
            ("op", "end_session"),
            ("session", session.as_str()),
        ],
    )
    .await;
    assert_eq!(
        flash_of(&ended.text().await.expect("html")),
        Some((
            false,
            "Ended one session of member-00@example.org.".to_owned()
        ))
    );
    assert_eq!(app.me_status(&member).await, 401);

    // The simulator names an account by e-mail; an unknown one is said so.
    let simulate = |email: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("subject", "account".to_owned()),
            ("user", email.to_owned()),
            ("action", "read".to_owned()),
            ("resource_type", "document".to_owned()),
        ]
    };
    let known = post_form(
        &app,
        "/admin/simulator",
        &borrowed(&simulate("member-03@example.org")),
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(known.contains("Subject: stored"), "{known}");
    let unknown = post_form(
        &app,
        "/admin/simulator",
        &borrowed(&simulate("nobody@example.org")),
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(unknown.contains("no account has the e-mail"), "{unknown}");
}

/// The event ids of an audit page's rows, in order.
fn audit_row_ids(html: &str) -> Vec<i64> {
    html.split("<tr><td>")
        .skip(1)
        .map(|row| {
            row.split("</td>")
                .next()
                .and_then(|id| id.parse().ok())
                .expect("an event id")
        })
        .collect()
}

/// The target of the audit pager's link with `rel`, unescaped.
fn pager_link(html: &str, rel: &str) -> Option<String> {
    html.split(&format!(r#"rel="{rel}" href=""#))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|link| link.replace("&#38;", "&").replace("&amp;", "&"))
}

async fn audit_page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("html"))
}

#[actix_web::test]
async fn the_audit_log_names_accounts_and_filters_by_prefix_and_e_mail() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    app.signed_up("member@example.org").await;
    let member = user_id(&app, "member@example.org");
    let root = user_id(&app, "root@example.org");

    // Accounts show as their e-mail, linked to their page; `system` stays text.
    let (status, all) = audit_page(&app, "/admin/audit").await;
    assert_eq!(status, 200);
    assert!(
        all.contains(&format!(
            r#"<a href="/admin/users/{member}">member@example.org</a>"#
        )),
        "{all}"
    );
    assert!(!all.contains(&format!("<code>{member}</code>")));
    assert!(all.contains("<code>system</code>"));
    // Whole seconds with the zone, never the stored RFC 3339 text.
    let when = regex::Regex::new(r#"<td class="when">([^<]*)</td>"#).expect("regex");
    let seconds = regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$").expect("regex");
    let times: Vec<&str> = when
        .captures_iter(&all)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    assert!(!times.is_empty());
    assert!(times.iter().all(|t| seconds.is_match(t)), "{times:?}");
    // Details are collapsed to one line, the JSON inside.
    assert!(all.contains("<details><summary>"));
    // The event filter offers the names in the log and their families.
    assert!(all.contains(r#"<datalist id="audit-events">"#));
    assert!(all.contains(r#"<option value="auth.">"#));
    assert!(all.contains(r#"<option value="auth.registered">"#));

    // A prefix finds every event of the family, and nothing else.
    let (_, auth) = audit_page(&app, "/admin/audit?event=auth.").await;
    assert!(
        auth.contains("<code>auth.registered</code>")
            && auth.contains("<code>auth.login_succeeded</code>")
    );
    assert!(!auth.contains("<code>app.started</code>"));
    let (_, exact) = audit_page(&app, "/admin/audit?event=auth.registered").await;
    assert!(!exact.contains("<code>auth.login_succeeded</code>"));

    // The actor filter takes an e-mail, as typed in any case, as well as an id.
    for actor in ["member@example.org", "Member@Example.org", member.as_str()] {
        let (status, by) = audit_page(
            &app,
            &format!("/admin/audit?event=auth.registered&actor={actor}"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(audit_row_ids(&by).len(), 1, "{actor}: {by}");
        assert!(by.contains(&format!(r#"href="/admin/users/{member}""#)));
        assert!(!by.contains(&format!(r#"href="/admin/users/{root}""#)));
    }
    let (_, nobody) = audit_page(&app, "/admin/audit?actor=nobody@example.org").await;
    assert!(nobody.contains("No event matches."));

    // A bad date is named beside its field, with every other filter kept.
    let (status, bad) = audit_page(
        &app,
        "/admin/audit?event=auth.&actor=member@example.org&outcome=success&from=2026-13-45&to=2026-12-06",
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        bad.contains(r#"<p class="field-error" id="from-error">From is not a date"#),
        "{bad}"
    );
    assert!(bad.contains(r#"name="from" type="date" value="2026-13-45" aria-invalid="true" aria-describedby="from-error""#));
    assert!(!bad.contains(r#"id="to-error""#));
    assert!(bad.contains(r#"name="event" value="auth.""#));
    assert!(bad.contains(r#"name="actor" value="member@example.org""#));
    assert!(bad.contains(r#"<option value="success" selected>"#));
    assert!(bad.contains(r#"name="to" type="date" value="2026-12-06""#));
    assert!(audit_row_ids(&bad).is_empty());
    let (status, reversed) = audit_page(&app, "/admin/audit?from=2026-12-07&to=2026-12-06").await;
    assert_eq!(status, 422);
    assert!(reversed.contains(r#"id="to-error">To is before the From date"#));
    // The export refuses it too, naming the field, and records nothing.
    let (status, refused) = audit_page(&app, "/admin/audit.csv?to=someday").await;
    assert_eq!(status, 422);
    assert!(refused.contains("<code>to</code>"), "{refused}");
    assert!(app.audit_events("audit.exported").is_empty());
}

#[actix_web::test]
async fn the_audit_log_pages_through_every_event_once() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    for _ in 0..60 {
        let failed = app.login("nobody@example.org", "not the password").await;
        assert_eq!(failed.status(), 401);
    }
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let ids = |sql: &str| -> Vec<i64> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("ids")
    };
    let failures =
        ids("SELECT id FROM audit_events WHERE event = 'auth.login_failed' ORDER BY id DESC");
    assert_eq!(failures.len(), 60);

    // Older and Newer carry the filter and an event id.
    let (_, first) = audit_page(&app, "/admin/audit?event=auth.login_failed").await;
    assert_eq!(audit_row_ids(&first), failures[..50]);
    assert!(pager_link(&first, "prev").is_none());
    let older = pager_link(&first, "next").expect("an Older link");
    assert_eq!(
        older,
        format!(
            "/admin/audit?event=auth.login_failed&before={}",
            failures[49]
        )
    );
    let (_, second) = audit_page(&app, &older).await;
    assert_eq!(audit_row_ids(&second), failures[50..]);
    assert!(pager_link(&second, "next").is_none());
    assert!(second.contains(r#"<a href="/admin/audit?event=auth.login_failed">Newest</a>"#));
    let newer = pager_link(&second, "prev").expect("a Newer link");
    let (_, back) = audit_page(&app, &newer).await;
    assert_eq!(audit_row_ids(&back), failures[..50]);

    // The whole log, page by page: every event once, none skipped (viewing may
    // add newer events; the pages walked stay the same).
    let mut seen = Vec::new();
    let mut next = Some("/admin/audit".to_owned());
    while let Some(path) = next {
        let (status, html) = audit_page(&app, &path).await;
        assert_eq!(status, 200);
        let rows = audit_row_ids(&html);
        assert!(rows.len() <= 50);
        seen.extend(rows);
        next = pager_link(&html, "next");
    }
    let newest = seen.first().copied().expect("events");
    let stored = ids(&format!(
        "SELECT id FROM audit_events WHERE id <= {newest} ORDER BY id DESC"
    ));
    assert!(stored.len() > 50, "more than one page");
    assert_eq!(seen, stored);
    // The export still has every match, not one page.
    let csv = app
        .get("/admin/audit.csv?event=auth.login_failed")
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(csv.lines().count(), 1 + 60);
}

/// A webhook's deliveries come a page at a time; a failed one shows its error
/// class, the response excerpt and when it is tried next.
#[actix_web::test]
async fn webhook_deliveries_are_paged_and_failures_explained() {
    let app = app_with(&[
        ("ADMIN_REQUIRE_MFA", "false"),
        ("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    signed_in_admin(&app).await;
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
    {
        // Disabled, so the worker leaves these deliveries alone.
        let conn = rusqlite::Connection::open(&app.db_path).expect("open");
        conn.execute("UPDATE webhooks SET enabled = 0 WHERE id = ?1", [&hook_id])
            .expect("disable");
        for n in 0..12 {
            let id = format!("msg_test{n:02}");
            conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_type, payload, status, attempts,
                 next_attempt_at, last_status_code, created_at, updated_at)
                 VALUES (?1, ?2, 'document.created', '{}', 'pending', 1, 4102444800, 502, ?3, ?3)",
                rusqlite::params![id, hook_id, n],
            )
            .expect("delivery");
            conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code,
                 duration_ms, error_class, response_excerpt)
                 VALUES (?1, 1, ?2, 502, 12, 'http_status', 'upstream <b>down</b>')",
                rusqlite::params![id, n],
            )
            .expect("attempt");
        }
    }
    let page = app
        .get(&format!("/admin/webhooks/{hook_id}"))
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(page.matches(r#"<section class="delivery">"#).count(), 10);
    assert!(page.contains("msg_test11") && !page.contains("msg_test01"));
    assert!(page.contains("Last attempt failed: http_status"), "{page}");
    assert!(
        page.contains("upstream &#60;b&#62;down&#60;/b&#62;"),
        "escaped: {page}"
    );
    assert!(
        page.contains("Next attempt at 2100-01-01T00:00:00Z"),
        "{page}"
    );
    let older = page
        .split(r#"<a href=""#)
        .filter_map(|a| a.split_once("\">Older deliveries</a>"))
        .map(|(href, _)| href.replace("&#38;", "&"))
        .next()
        .expect("older deliveries");
    let rest = app.get(&older).await.text().await.expect("html");
    assert_eq!(rest.matches(r#"<section class="delivery">"#).count(), 2);
    assert!(rest.contains("msg_test01") && rest.contains("msg_test00"));
    assert!(!rest.contains("Older deliveries") && rest.contains("Newest deliveries"));
}

/// A policy's history shows what each version changed, field by field, newest
/// first with who and when; "Restore this version" asks, then saves the old
/// version again as a new one, audited. Built-in policies: the read-only one is
/// refused, the owner policy may only get its status back.
#[actix_web::test]
async fn the_history_is_a_diff_and_an_old_version_can_be_restored() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let first = json!({"name": "Reports for users", "effect": "allow",
                       "resource_type": "report", "actions": ["read"], "priority": 10,
                       "principals": {"type": "roles", "roles": ["user"]}});
    let created: Value = app
        .post_with_token("/api/v1/admin/policies", &api, Some(&first))
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let api_path = format!("/api/v1/admin/policies/{id}");
    let second = json!({"name": "Reports for users", "effect": "allow",
                        "resource_type": "report", "actions": ["read", "export"],
                        "priority": 20,
                        "principals": {"type": "roles", "roles": ["user"]},
                        "conditions": {"attribute": "subject.mfa", "operator": "eq",
                                       "value": true}});
    assert_eq!(
        app.put_with_token(&api_path, &api, &second).await.status(),
        200
    );

    let history = format!("/admin/policies/{id}/history");
    let page = app.get(&history).await.text().await.expect("html");
    let newest = page.find("Version 2").expect("version 2");
    let oldest = page.find("Version 1").expect("version 1");
    assert!(newest < oldest, "newest first: {page}");
    let v2 = &page[newest..oldest];
    let root = user_id(&app, "root@example.org");
    assert!(
        v2.contains(&format!(
            r#"by <a href="/admin/users/{root}">root@example.org</a>, "#
        )),
        "who, linked: {v2}"
    );
    assert!(v2.contains(r#"<dt>priority</dt>"#), "{v2}");
    assert!(
        v2.contains(r#"<span class="diff-removed">- 10</span>"#),
        "{v2}"
    );
    assert!(
        v2.contains(r#"<span class="diff-added">+ 20</span>"#),
        "{v2}"
    );
    assert!(
        v2.contains(r#"<span class="diff-added">+ read, export</span>"#),
        "{v2}"
    );
    assert!(v2.contains("<dt>conditions</dt>"), "{v2}");
    assert!(
        v2.contains(
            r#"<span class="diff-added">+   &#34;attribute&#34;: &#34;subject.mfa&#34;,</span>"#
        ) || v2.contains(
            r#"<span class="diff-added">+   &quot;attribute&quot;: &quot;subject.mfa&quot;,</span>"#
        ),
        "the conditions as JSON lines: {v2}"
    );
    assert!(
        !v2.contains("<dt>name</dt>"),
        "unchanged fields are not shown"
    );
    assert!(
        !v2.contains("Restore this version"),
        "the newest is current"
    );
    assert!(page[oldest..].contains("Restore this version"), "{page}");

    // Restoring asks first, naming what it changes back.
    let restore = format!("/admin/policies/{id}/restore");
    let asked = post_form(
        &app,
        &restore,
        &[("csrf", token.as_str()), ("version", "1")],
    )
    .await;
    assert_eq!(asked.status(), 200);
    let question = asked.text().await.expect("html");
    assert!(
        question.contains("Restore version 1 of “Reports for users”?"),
        "{question}"
    );
    assert!(question.contains("actions, priority"), "{question}");
    assert!(question.contains(r#"name="version" value="1""#));
    let unchanged: Value = app
        .get_with_token(&api_path, &api)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unchanged["version"], 2, "nothing until confirmed");
    let done = post_form(
        &app,
        &restore,
        &[
            ("csrf", token.as_str()),
            ("version", "1"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.url().path(), history);
    let page = done.text().await.expect("html");
    assert_eq!(
        flash_of(&page),
        Some((
            false,
            "Restored version 1 of “Reports for users” as version 3.".to_owned()
        ))
    );
    assert!(page.contains("Version 3"), "{page}");
    let restored: Value = app
        .get_with_token(&api_path, &api)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(restored["version"], 3);
    for field in [
        "name",
        "effect",
        "resource_type",
        "actions",
        "priority",
        "principals",
        "status",
    ] {
        assert_eq!(restored[field], created[field], "{field}");
    }
    assert!(restored["conditions"].is_null(), "{restored}");
    let audited = app.audit_events("policy.restored");
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(
        audited[0].2.contains(r#""restored_version":1"#),
        "{audited:?}"
    );
    assert!(audited[0].2.contains(&id), "{audited:?}");
    let updates = app.audit_events("policy.updated");
    assert_eq!(updates.len(), 2, "the edit and the restore: {updates:?}");
    assert_eq!(updates[1].1.as_deref(), Some(id.as_str()));

    // The read-only administrator policy is never restored.
    let admin_policy = "00000000-0000-4000-8000-000000000002";
    let admin_history = app
        .get(&format!("/admin/policies/{admin_policy}/history"))
        .await
        .text()
        .await
        .expect("html");
    assert!(!admin_history.contains("Restore this version"));
    let refused = post_form(
        &app,
        &format!("/admin/policies/{admin_policy}/restore"),
        &[
            ("csrf", token.as_str()),
            ("version", "1"),
            ("confirm", "yes"),
        ],
    )
    .await;
    let (error, message) = flash_of(&refused.text().await.expect("html")).expect("flash");
    assert!(error && message.contains("read-only"), "{message}");

    // The owner policy, deactivated, gets its status back from version 1.
    let owner = "00000000-0000-4000-8000-000000000001";
    post_form(
        &app,
        &format!("/admin/policies/{owner}/status"),
        &[("csrf", token.as_str()), ("status", "inactive")],
    )
    .await;
    let owner_history = app
        .get(&format!("/admin/policies/{owner}/history"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        owner_history.contains(r#"<span class="diff-added">+ inactive</span>"#),
        "{owner_history}"
    );
    assert!(owner_history.contains("Restore this version"));
    let back = post_form(
        &app,
        &format!("/admin/policies/{owner}/restore"),
        &[
            ("csrf", token.as_str()),
            ("version", "1"),
            ("confirm", "yes"),
        ],
    )
    .await;
    let (error, message) = flash_of(&back.text().await.expect("html")).expect("flash");
    assert!(!error, "{message}");
    let owner_now: Value = app
        .get_with_token(&format!("/api/v1/admin/policies/{owner}"), &api)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(owner_now["status"], "active");
    assert_eq!(owner_now["version"], 3);
}

/// A new policy that an existing one shadows or overlaps is shown with a warning
/// naming the other policy and why, and saved only with "Save anyway".
#[actix_web::test]
async fn a_shadowed_policy_gets_a_warning_naming_the_other() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let deny = json!({"name": "Nobody reads drafts", "effect": "deny",
                      "resource_type": "draft", "actions": ["read"], "priority": 1});
    assert_eq!(
        app.post_with_token("/api/v1/admin/policies", &api, Some(&deny))
            .await
            .status(),
        201
    );
    let allow = |op: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("name", "Users read drafts".to_owned()),
            ("effect", "allow".to_owned()),
            ("resource_type", "draft".to_owned()),
            ("actions", "read, update".to_owned()),
            ("priority", "900".to_owned()),
            ("status", "active".to_owned()),
            ("principals_type", "roles".to_owned()),
            ("principals", "user".to_owned()),
            ("op", op.to_owned()),
        ]
    };
    let count = || {
        rusqlite::Connection::open(&app.db_path)
            .expect("open")
            .query_row(
                "SELECT COUNT(*) FROM policies WHERE name = 'Users read drafts'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count")
    };
    let shown = post_form(&app, "/admin/policies/new", &borrowed(&allow("save"))).await;
    assert_eq!(shown.status(), 200);
    let page = shown.text().await.expect("html");
    assert!(
        page.contains("shadowed by or overlaps existing active policies"),
        "{page}"
    );
    assert!(
        page.contains("“Nobody reads drafts” already denies read on `draft`"),
        "{page}"
    );
    assert!(page.contains("never allow read"), "{page}");
    assert!(page.contains(r#"value="save_anyway""#));
    assert!(!page.contains("would take administrator actions away"));
    assert_eq!(count(), 0, "a warning, not a save");
    let saved = post_form(
        &app,
        "/admin/policies/new",
        &borrowed(&allow("save_anyway")),
    )
    .await;
    assert_eq!(saved.url().path(), "/admin/policies");
    assert_eq!(count(), 1);
}

/// The builder's traps: "Add a condition" on a lone condition makes a group of
/// two, each button returns to its node (a fragment), lists read `6, 7`, Remove
/// buttons say what they remove, and errors are tied to their inputs.
#[actix_web::test]
async fn the_builder_grows_a_lone_condition_and_returns_to_the_node() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let base = [
        ("csrf", token.as_str()),
        ("name", "Levels"),
        ("effect", "allow"),
        ("resource_type", "ticket"),
        ("actions", "read"),
        ("priority", "5"),
        ("status", "active"),
        ("principals_type", "everyone"),
        ("principals", ""),
    ];
    let lone = [
        ("node.0.kind", "cond"),
        ("node.0.attribute", "subject.attributes.department"),
        ("node.0.operator", "eq"),
        ("node.0.value", "sales"),
        ("node.0.value_type", "literal"),
    ];
    let blank = app
        .get("/admin/policies/new")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        blank.contains(r#"value="root:cond" formaction="/admin/policies/new#node-0""#),
        "{blank}"
    );
    let mut fields = base.to_vec();
    fields.push(("op", "root:cond"));
    let one = post_form(&app, "/admin/policies/new", &fields)
        .await
        .text()
        .await
        .expect("html");
    assert!(
        one.contains(r#"value="add_condition:0" formaction="/admin/policies/new#node-0.1""#),
        "a lone condition offers to add one: {one}"
    );
    let mut fields = base.to_vec();
    fields.extend(lone);
    fields.push(("op", "add_condition:0"));
    let grown = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(grown.status(), 200);
    let page = grown.text().await.expect("html");
    assert!(page.contains(r#"name="node.0.kind" value="all""#), "{page}");
    assert!(
        page.contains(r#"name="node.0.0.attribute" value="subject.attributes.department""#),
        "{page}"
    );
    assert!(
        page.contains(r#"name="node.0.1.attribute" value="""#),
        "{page}"
    );
    assert!(!page.contains(r#"name="node.0.2."#));
    // The form goes back to the node just added; every button to its own node.
    assert!(
        page.contains(r#"action="/admin/policies/new#node-0.1""#),
        "{page}"
    );
    assert!(page.contains(r#"value="add_condition:0" formaction="/admin/policies/new#node-0.2""#));
    assert!(page.contains(r#"value="remove:0.1" formaction="/admin/policies/new#node-0""#));
    assert!(page.contains(r#"value="remove:0" formaction="/admin/policies/new#conditions""#));
    assert!(page.contains(r#"id="conditions""#));
    // Remove buttons say what they remove.
    assert!(
        page.contains(
            r#"aria-label="Remove the condition subject.attributes.department eq sales""#
        ),
        "{page}"
    );
    assert!(page.contains(r#"aria-label="Remove the ALL group""#));
    assert!(page.contains(r#"aria-label="Remove the condition with no attribute yet""#));

    // A list typed as `6, 7` is saved as numbers.
    let mut fields = base.to_vec();
    fields.extend([
        ("node.0.kind", "cond"),
        ("node.0.attribute", "resource.attributes.level"),
        ("node.0.operator", "in"),
        ("node.0.value", "6, 7"),
        ("node.0.value_type", "literal"),
        ("op", "save"),
    ]);
    let saved = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(saved.url().path(), "/admin/policies", "saved");
    let conditions: String = rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .query_row(
            "SELECT conditions FROM policies WHERE name = 'Levels'",
            [],
            |r| r.get(0),
        )
        .expect("saved");
    let conditions: Value = serde_json::from_str(&conditions).expect("json");
    assert_eq!(conditions["value"], json!([6, 7]));

    // Errors are tied to their inputs.
    let mut fields = base.to_vec();
    fields[1] = ("name", " ");
    fields.extend([
        ("node.0.kind", "cond"),
        ("node.0.attribute", "subject.nope"),
        ("node.0.operator", "eq"),
        ("node.0.value", "x"),
        ("node.0.value_type", "literal"),
        ("op", "save"),
    ]);
    let invalid = post_form(&app, "/admin/policies/new", &fields).await;
    assert_eq!(invalid.status(), 422);
    let page = invalid.text().await.expect("html");
    assert!(
        page.contains(r#"aria-invalid="true" aria-describedby="name-error""#),
        "{page}"
    );
    assert!(page.contains(r#"<div class="field-errors" id="name-error">"#));
    assert!(page.contains(r#"<div class="field-errors" id="node-0-error">"#));
    assert!(
        page.contains(r#"class="attribute" aria-invalid="true" aria-describedby="node-0-error""#),
        "{page}"
    );
}

/// Administrators create, disable, enable and delete accounts from the pages; a
/// disabled account cannot sign in and keeps its data, a deleted one is gone with
/// its tokens, and nobody disables or deletes their own account.
#[actix_web::test]
async fn accounts_are_created_disabled_and_deleted_from_the_pages() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    // A weak first password is refused beside its field, the e-mail kept.
    let weak = post_form(
        &app,
        "/admin/users",
        &[
            ("csrf", token.as_str()),
            ("email", "new@example.org"),
            ("password", "short"),
            ("role", "user"),
        ],
    )
    .await;
    assert_eq!(weak.status(), 422);
    let page = weak.text().await.expect("html");
    assert!(page.contains(r#"id="new-password-error""#), "{page}");
    assert!(page.contains(r#"value="new@example.org""#));
    let created = post_form(
        &app,
        "/admin/users",
        &[
            ("csrf", token.as_str()),
            ("email", "new@example.org"),
            ("password", GOOD_PASSWORD),
            ("role", "user"),
        ],
    )
    .await;
    let id = user_id(&app, "new@example.org");
    assert_eq!(created.url().path(), format!("/admin/users/{id}"));
    assert_eq!(
        flash_of(&created.text().await.expect("html")),
        Some((false, "Created new@example.org (user).".to_owned()))
    );
    assert_eq!(app.audit_events("admin.user_created").len(), 1);
    let tokens = app.signed_in("new@example.org", GOOD_PASSWORD).await;
    let page_path = format!("/admin/users/{id}");

    // Disable: asked first; then no sign-in, sessions ended, data kept.
    let asked = post_form(
        &app,
        &page_path,
        &[("csrf", token.as_str()), ("op", "disable")],
    )
    .await;
    assert!(
        asked
            .text()
            .await
            .expect("html")
            .contains("Disable new@example.org?")
    );
    assert_eq!(user_status(&app, "new@example.org"), "active");
    post_form(
        &app,
        &page_path,
        &[
            ("csrf", token.as_str()),
            ("op", "disable"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(user_status(&app, "new@example.org"), "disabled");
    assert_eq!(app.me_status(&tokens.access_token).await, 401);
    assert_eq!(
        app.login("new@example.org", GOOD_PASSWORD).await.status(),
        401
    );
    post_form(
        &app,
        &page_path,
        &[("csrf", token.as_str()), ("op", "enable")],
    )
    .await;
    assert_eq!(user_status(&app, "new@example.org"), "active");
    let again = app.signed_in("new@example.org", GOOD_PASSWORD).await;

    // Delete: asked first; then the account and its tokens are gone.
    let asked = post_form(
        &app,
        &page_path,
        &[("csrf", token.as_str()), ("op", "delete")],
    )
    .await;
    assert!(
        asked
            .text()
            .await
            .expect("html")
            .contains("Delete new@example.org for good?")
    );
    let deleted = post_form(
        &app,
        &page_path,
        &[
            ("csrf", token.as_str()),
            ("op", "delete"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(deleted.url().path(), "/admin/users");
    assert_eq!(
        flash_of(&deleted.text().await.expect("html")),
        Some((
            false,
            "Deleted new@example.org and everything it owned.".to_owned()
        ))
    );
    assert_eq!(app.me_status(&again.access_token).await, 401);
    assert_eq!(app.get(&page_path).await.status(), 404);
    let events = app.audit_events("admin.user_deleted");
    assert_eq!(events.len(), 1);
    assert!(events[0].2.contains("new@example.org"), "{events:?}");

    // Not one's own account.
    let root = user_id(&app, "root@example.org");
    for op in ["disable", "delete"] {
        let own = post_form(
            &app,
            &format!("/admin/users/{root}"),
            &[("csrf", token.as_str()), ("op", op), ("confirm", "yes")],
        )
        .await;
        let (error, _) = flash_of(&own.text().await.expect("html")).expect("flash");
        assert!(error, "{op} of one's own account is refused");
    }
    assert_eq!(user_status(&app, "root@example.org"), "active");
}

/// The lock-out guard asks about every request, and about changes to the
/// administrators too: a deny that bites only on the real doors (through `exists`
/// on the method), and an administrator changing away the attribute that let them
/// in, are both refused.
#[actix_web::test]
async fn lock_outs_through_request_conditions_or_account_changes_are_refused() {
    let app = app_with(NO_MFA).await;
    let html = signed_in_admin(&app).await;
    let token = csrf(&html);
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    for condition in [
        json!({"attribute": "context.method", "operator": "exists"}),
        json!({"attribute": "resource.id", "operator": "exists"}),
        json!({"attribute": "context.time.hour", "operator": "in", "value": [0, 1, 2, 3]}),
    ] {
        let body = json!({"name": "Sneaky", "effect": "deny", "resource_type": "admin",
                          "actions": ["*"], "conditions": condition});
        problem(
            app.post_with_token("/api/v1/admin/policies", &api, Some(&body))
                .await,
            409,
        )
        .await;
    }
    // Only the security department administers; the one administrator is in it.
    let root = user_id(&app, "root@example.org");
    let attributes = post_form(
        &app,
        &format!("/admin/users/{root}"),
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "admin"),
            ("attributes", r#"{"department": "security"}"#),
        ],
    )
    .await;
    assert!(flash_of(&attributes.text().await.expect("html")).is_some_and(|(e, _)| !e));
    let body = json!({"name": "Security only", "effect": "deny", "resource_type": "admin",
                      "actions": ["*"],
                      "conditions": {"attribute": "subject.attributes.department",
                                     "operator": "ne", "value": "security"}});
    assert_eq!(
        app.post_with_token("/api/v1/admin/policies", &api, Some(&body))
            .await
            .status(),
        201
    );
    // Moving the only administrator out of security would lock everyone out.
    let moved = post_form(
        &app,
        &format!("/admin/users/{root}"),
        &[
            ("csrf", token.as_str()),
            ("op", "update"),
            ("role", "admin"),
            ("attributes", r#"{"department": "sales"}"#),
        ],
    )
    .await;
    let (error, message) = flash_of(&moved.text().await.expect("html")).expect("flash");
    assert!(
        error && message.contains("no active administrator"),
        "{message}"
    );
    assert_eq!(app.get("/admin/policies").await.status(), 200, "still in");
}

/// An enrolment at sign-in rides on its account session: ended meanwhile (here by
/// logout-all), the enrolment is over and no factor is set.
#[actix_web::test]
async fn an_enrolment_ends_with_its_account_session() {
    let app = app_with(&[]).await;
    app.admin_token("root@example.org").await;
    let step = sign_in(&app, "root@example.org").await;
    assert_eq!(step.url().path(), "/admin/login/enrol");
    let page = step.text().await.expect("html");
    let code = secret_on(&page).code_at(app.clock.now()).expect("code");
    let api = app.signed_in("root@example.org", GOOD_PASSWORD).await;
    let all = app
        .post_with_token("/api/v1/auth/logout-all", &api.access_token, None)
        .await;
    assert!(all.status().is_success(), "{}", all.status());
    app.clock.advance(1);
    let late = post_form(&app, "/admin/login/enrol", &[("code", code.as_str())]).await;
    let page = late.text().await.expect("html");
    assert!(page.contains("expired"), "{page}");
    assert!(app.audit_events("mfa.enabled").is_empty());
    assert_eq!(app.get("/admin").await.url().path(), "/admin/login");
}

/// The policies list sorts by name or by priority (highest first), a page at a time.
#[actix_web::test]
async fn policies_are_sorted_and_paged() {
    let app = app_with(NO_MFA).await;
    signed_in_admin(&app).await;
    let api = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    for n in 0..52u16 {
        let body = json!({"name": format!("Report {n:02}"), "effect": "allow",
                          "resource_type": "report", "actions": ["read"], "priority": n});
        assert_eq!(
            app.post_with_token("/api/v1/admin/policies", &api, Some(&body))
                .await
                .status(),
            201
        );
    }
    let names = |html: &str| -> Vec<String> {
        html.split(r#"<td><a href="/admin/policies/"#)
            .skip(1)
            .filter(|row| {
                !row.split('"')
                    .next()
                    .unwrap_or_default()
                    .ends_with("/history")
            })
            .filter_map(|row| {
                row.split_once("\">")?
                    .1
                    .split_once('<')
                    .map(|(n, _)| n.to_owned())
            })
            .collect()
    };
    let by_priority = app
        .get("/admin/policies?resource_type=report&sort=priority")
        .await
        .text()
        .await
        .expect("html");
    let first = names(&by_priority);
    assert_eq!(first.len(), 50);
    assert_eq!(&first[..2], ["Report 51", "Report 50"]);
    let next = by_priority
        .split(r#"<a href=""#)
        .filter_map(|a| a.split_once("\">Next page</a>"))
        .map(|(href, _)| href.replace("&#38;", "&"))
        .next()
        .expect("a next page");
    let rest = names(&app.get(&next).await.text().await.expect("html"));
    assert_eq!(rest, ["Report 01", "Report 00"]);
}
