//! The pages' passkey endpoints, black-box, with webauthn-authenticator-rs's soft
//! passkey in the browser's place (see `passkeys` for how it stands in for a
//! discoverable one): the admin sign-in (`/admin/login/passkey/*`), the admin
//! account page (`/admin/account/passkeys/*`), the portal's sign-in
//! (`/gate/login/passkey/*`) and the portal's account page (`/gate/passkeys/*`).
//!
//! Every post from another site is refused, whatever it carries; the account
//! pages' posts need the session's CSRF token; a passkey sign-in starts under the
//! address's passkey start limit, finishes as one of its sign-in attempts, and
//! lands where it may only: a safe `rd` or `next`,
//! never another site. On both sign-ins' code step, an account's passkey answers
//! in place of the code. The portal's account page adds, renames and deletes a
//! passkey end to end, runs this server's own script and no other, and asks for
//! the password again (and a code with MFA on).

use portcullis::clock::Clock;
use serde_json::Value;
use webauthn_authenticator_rs::prelude::RequestChallengeResponse;

use crate::helpers::{GOOD_PASSWORD, TestApp, spawn_with, test_settings};
use crate::passkeys::{
    Holder, ORIGIN, PASSKEYS, admin_holder, assert_with, create, holder, holder_with_token,
    json_of, origin, register,
};

/// Where the portal takes a sign-in with no (safe) `rd`.
const PORTAL_HOME: &str = "http://localhost:8080/gate/";

/// An app whose admin pages and gate portal are both at [`ORIGIN`] (where the
/// soft passkey runs), with passkeys on, on a manual clock; a client that keeps
/// cookies and follows no redirect.
async fn pages_app(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = portcullis::gate::assertion::generate_key().expect("key");
    let mut variables = vec![
        ("PUBLIC_URL", ORIGIN),
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_RP_ORIGINS", ORIGIN),
        ("GATE_PORTAL_URL", ORIGIN),
        ("GATE_HOSTS", "*.gate.test"),
        ("GATE_ASSERTION_KEY", key.as_str()),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    variables.extend_from_slice(overrides);
    let settings = test_settings(dir.path(), &variables);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, client, clock).await
}

/// A form post as the page's own script or form sends it (`Origin` = the page's),
/// with `headers` on top (which may replace it).
async fn post_form(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut replaced = reqwest::header::HeaderMap::new();
    replaced.insert("origin", reqwest::header::HeaderValue::from_static(ORIGIN));
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name");
        replaced.insert(name, value.parse().expect("value"));
    }
    app.client
        .post(app.url(path))
        .headers(replaced)
        .form(fields)
        .send()
        .await
        .expect("request")
}

/// A page's post from the page itself.
async fn post_page(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    post_form(app, path, fields, &[]).await
}

/// The first CSRF token on `html`.
fn csrf_of(html: &str) -> String {
    crate::gate::csrf_of(html)
}

/// Where a redirect points.
fn location(response: &reqwest::Response) -> String {
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

/// The page at `path`, as text, after checking it answered 200.
async fn html_of(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

/// Signs in at the portal with the password; the CSRF token of `/gate/`.
async fn portal_signed_in(app: &TestApp, email: &str) -> String {
    let response = post_page(
        app,
        "/gate/login",
        &[("email", email), ("password", GOOD_PASSWORD), ("rd", "")],
    )
    .await;
    assert_eq!(response.status(), 303);
    csrf_of(&html_of(app, "/gate/").await)
}

/// Signs in to the admin pages with the password (MFA not required); the CSRF
/// token of the account page.
async fn admin_signed_in(app: &TestApp, email: &str) -> String {
    let response = post_page(
        app,
        "/admin/login",
        &[("email", email), ("password", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin");
    csrf_of(&html_of(app, "/admin/account").await)
}

/// A sign-in ceremony's start at `path`: the ceremony and the request options.
async fn sign_in_started(app: &TestApp, path: &str) -> (String, RequestChallengeResponse) {
    let response = post_page(app, path, &[]).await;
    assert_eq!(response.status(), 200, "{path}");
    let body = json_of(response).await;
    let options = serde_json::from_value(body["options"].clone()).expect("request options");
    (
        body["ceremony"].as_str().expect("ceremony").to_owned(),
        options,
    )
}

/// A whole passkey sign-in through a sign-in page's endpoints (`{prefix}/start`
/// and `/finish`), with the page's `extra` fields (`rd`, `next`).
async fn page_sign_in(
    app: &TestApp,
    holder: &mut Holder,
    prefix: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (ceremony, options) = sign_in_started(app, &format!("{prefix}/start")).await;
    let credential = serde_json::to_string(&assert_with(holder, options, origin())).expect("json");
    let mut fields = vec![
        ("ceremony", ceremony.as_str()),
        ("credential", credential.as_str()),
    ];
    fields.extend_from_slice(extra);
    post_page(app, &format!("{prefix}/finish"), &fields).await
}

/// Where a finished ceremony sends the browser.
async fn next_location(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = json_of(response).await;
    body["location"].as_str().expect("location").to_owned()
}

/// Adds a passkey on the portal's account page as its script does; the answer
/// to `finish`.
async fn add_on_the_portal(
    app: &TestApp,
    holder: &mut Holder,
    csrf: &str,
    proof: &[(&str, &str)],
    name: &str,
) -> reqwest::Response {
    let mut fields = vec![("csrf", csrf)];
    fields.extend_from_slice(proof);
    let started = post_page(app, "/gate/passkeys/start", &fields).await;
    assert_eq!(started.status(), 200);
    let started = json_of(started).await;
    let credential = create(&mut holder.authenticator, &started["options"], origin());
    holder.credential_id = credential.raw_id.clone();
    let credential = serde_json::to_string(&credential).expect("json");
    post_page(
        app,
        "/gate/passkeys/finish",
        &[
            ("csrf", csrf),
            ("name", name),
            ("ceremony", started["ceremony"].as_str().expect("ceremony")),
            ("credential", &credential),
        ],
    )
    .await
}

/// The names of `holder`'s passkeys, through the API.
async fn names(app: &TestApp, holder: &Holder) -> Vec<String> {
    json_of(
        app.get_with_token(PASSKEYS, &holder.tokens.access_token)
            .await,
    )
    .await
    .as_array()
    .expect("list")
    .iter()
    .map(|p| p["name"].as_str().expect("name").to_owned())
    .collect()
}

#[actix_web::test]
async fn page_ceremonies_refuse_posts_from_another_site() {
    let app = pages_app(&[("ADMIN_REQUIRE_MFA", "false")]).await;
    let mut admin = admin_holder(&app, "root@example.org").await;
    register(&app, &mut admin, Some("Laptop")).await;
    let admin_csrf = admin_signed_in(&app, "root@example.org").await;
    let mut user = holder(&app, "user@example.org").await;
    register(&app, &mut user, Some("Phone")).await;
    let portal_csrf = portal_signed_in(&app, "user@example.org").await;

    let sign_in = [
        "/admin/login/passkey/start",
        "/admin/login/passkey/finish",
        "/gate/login/passkey/start",
        "/gate/login/passkey/finish",
        "/admin/login/code/passkey/start",
        "/admin/login/code/passkey/finish",
        "/gate/login/code/passkey/start",
        "/gate/login/code/passkey/finish",
    ];
    let admin_account = [
        "/admin/account/passkeys/start",
        "/admin/account/passkeys/finish",
    ];
    let portal_account = [
        "/gate/passkeys/start",
        "/gate/passkeys/finish",
        "/gate/passkeys/rename",
        "/gate/passkeys/delete",
    ];
    let with_token = |path: &str| {
        if admin_account.contains(&path) {
            admin_csrf.as_str()
        } else {
            portal_csrf.as_str()
        }
    };
    for path in sign_in.iter().chain(&admin_account).chain(&portal_account) {
        // Everything else as the page would send it: the token, the password,
        // a passkey and a name.
        let fields = [
            ("csrf", with_token(path)),
            ("password", GOOD_PASSWORD),
            ("passkey", user.passkey_id.as_str()),
            ("name", "Renamed"),
            ("confirm", "yes"),
        ];
        for headers in [
            vec![("origin", "https://evil.example")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("origin", "null")],
        ] {
            let refused = post_form(&app, path, &fields, &headers).await;
            assert_eq!(refused.status(), 403, "{path} {headers:?}");
        }
    }
    // Nothing was done: no ceremony ran, the passkeys are as they were, and both
    // sessions are still signed in.
    assert!(app.audit_events("passkey.sign_in").is_empty());
    assert!(app.audit_events("passkey.renamed").is_empty());
    assert!(app.audit_events("passkey.deleted").is_empty());
    assert_eq!(names(&app, &user).await, vec!["Phone"]);
    assert_eq!(names(&app, &admin).await, vec!["Laptop"]);
    assert_eq!(app.get("/gate/").await.status(), 200);
    assert_eq!(app.get("/admin/account").await.status(), 200);
}

#[actix_web::test]
async fn account_page_ceremonies_need_the_sessions_csrf_token() {
    let app = pages_app(&[("ADMIN_REQUIRE_MFA", "false")]).await;
    admin_holder(&app, "root@example.org").await;
    let admin_csrf = admin_signed_in(&app, "root@example.org").await;
    let mut user = holder(&app, "user@example.org").await;
    register(&app, &mut user, Some("Phone")).await;
    let portal_csrf = portal_signed_in(&app, "user@example.org").await;

    let pages = [
        ("/admin/account/passkeys/start", &portal_csrf),
        ("/admin/account/passkeys/finish", &portal_csrf),
        ("/gate/passkeys/start", &admin_csrf),
        ("/gate/passkeys/finish", &admin_csrf),
        ("/gate/passkeys/rename", &admin_csrf),
        ("/gate/passkeys/delete", &admin_csrf),
    ];
    // Missing, wrong, and another session's (the other page's) token.
    for (path, others) in pages {
        for token in [None, Some("wrong-token"), Some(others.as_str())] {
            let mut fields = vec![
                ("password", GOOD_PASSWORD),
                ("passkey", user.passkey_id.as_str()),
                ("name", "Renamed"),
                ("confirm", "yes"),
            ];
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let refused = post_page(&app, path, &fields).await;
            assert_eq!(refused.status(), 403, "{path} {token:?}");
        }
    }
    assert!(app.audit_events("passkey.renamed").is_empty());
    assert!(app.audit_events("passkey.deleted").is_empty());
    assert_eq!(names(&app, &user).await, vec!["Phone"]);
    // With the right token, the same post goes through.
    let renamed = post_page(
        &app,
        "/gate/passkeys/rename",
        &[
            ("csrf", &portal_csrf),
            ("passkey", &user.passkey_id),
            ("name", "Renamed"),
        ],
    )
    .await;
    assert_eq!(renamed.status(), 303);
    assert_eq!(names(&app, &user).await, vec!["Renamed"]);
}

#[actix_web::test]
async fn signed_out_account_page_posts_go_to_sign_in() {
    let app = pages_app(&[]).await;
    for path in [
        "/gate/passkeys/start",
        "/gate/passkeys/finish",
        "/gate/passkeys/rename",
        "/gate/passkeys/delete",
    ] {
        let response = post_page(&app, path, &[("csrf", "x")]).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(location(&response), "/gate/login", "{path}");
    }
    for path in [
        "/admin/account/passkeys/start",
        "/admin/account/passkeys/finish",
    ] {
        let response = post_page(&app, path, &[("csrf", "x")]).await;
        assert_eq!(response.status(), 303, "{path}");
        assert!(location(&response).starts_with("/admin/login"), "{path}");
    }
}

#[actix_web::test]
async fn a_passkey_sign_in_starts_under_the_addresss_limit() {
    // The passkey starts' own quota, two a minute here.
    let app = pages_app(&[("RATE_LIMIT_PASSKEY_START_IP", "2/60")]).await;
    sign_in_started(&app, "/admin/login/passkey/start").await;
    sign_in_started(&app, "/gate/login/passkey/start").await;
    // The address's one limit, whichever sign-in page asks.
    for path in ["/admin/login/passkey/start", "/gate/login/passkey/start"] {
        let limited = post_page(&app, path, &[]).await;
        assert_eq!(limited.status(), 429, "{path}");
    }
    app.clock.advance(61);
    sign_in_started(&app, "/gate/login/passkey/start").await;
}

#[actix_web::test]
async fn a_passkey_sign_in_on_the_portal_lands_on_a_safe_rd_only() {
    let app = pages_app(&[]).await;
    let mut user = holder(&app, "user@example.org").await;
    register(&app, &mut user, None).await;
    for (rd, lands) in [
        (
            "http://app.gate.test/reports?q=1",
            "http://app.gate.test/reports?q=1",
        ),
        ("", PORTAL_HOME),
        ("https://evil.example/", PORTAL_HOME),
        ("//evil", PORTAL_HOME),
        ("//evil.example/", PORTAL_HOME),
        ("/\\evil.example", PORTAL_HOME),
        ("javascript:alert(1)", PORTAL_HOME),
        ("http://app.gate.test@evil.example/", PORTAL_HOME),
    ] {
        let finished = page_sign_in(&app, &mut user, "/gate/login/passkey", &[("rd", rd)]).await;
        assert!(
            finished
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.starts_with("portcullis_gate=") && v.contains("HttpOnly")),
            "{rd}: a portal session"
        );
        assert_eq!(next_location(finished).await, lands, "{rd}");
        let home = html_of(&app, "/gate/").await;
        assert!(home.contains("user@example.org"), "{rd}");
    }
    // An answer that is not a credential, or to no ceremony, signs nobody in.
    let refused = post_page(
        &app,
        "/gate/login/passkey/finish",
        &[("ceremony", "none"), ("credential", "not a credential")],
    )
    .await;
    assert_eq!(refused.status(), 401);
}

#[actix_web::test]
async fn a_passkey_sign_in_on_the_admin_pages_lands_on_the_dashboard_or_a_safe_next() {
    // ADMIN_REQUIRE_MFA is on: a passkey meets it.
    let app = pages_app(&[]).await;
    let mut admin = admin_holder(&app, "root@example.org").await;
    register(&app, &mut admin, None).await;
    for (next, lands) in [
        (None, "/admin"),
        (Some("/admin/users"), "/admin/users"),
        (Some("/admin/account#passkeys"), "/admin/account#passkeys"),
        (Some("https://evil.example/"), "/admin"),
        (Some("//evil"), "/admin"),
        (Some("//evil.example/admin"), "/admin"),
        (Some("/\\evil.example"), "/admin"),
        (Some("/admin/../../evil"), "/admin"),
    ] {
        let extra: Vec<(&str, &str)> = next.map(|n| ("next", n)).into_iter().collect();
        let finished = page_sign_in(&app, &mut admin, "/admin/login/passkey", &extra).await;
        assert_eq!(next_location(finished).await, lands, "{next:?}");
        let dashboard = app.get("/admin").await;
        assert_eq!(dashboard.status(), 200, "{next:?}: signed in");
    }
    // Someone who is not an administrator is refused, as any failure is.
    let mut user = holder(&app, "user@example.org").await;
    register(&app, &mut user, None).await;
    let refused = page_sign_in(&app, &mut user, "/admin/login/passkey", &[]).await;
    assert_eq!(refused.status(), 401);
}

/// The portal's account page, end to end: add a passkey (the password again, the
/// ceremony), sign in with it, rename it, and delete it after a question that
/// asks for the password.
#[actix_web::test]
async fn the_portal_account_page_adds_renames_and_deletes_a_passkey() {
    let app = pages_app(&[]).await;
    let mut user = holder(&app, "user@example.org").await;
    let csrf = portal_signed_in(&app, "user@example.org").await;

    // The page runs this server's own script, and only that.
    let home = app.get("/gate/").await;
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = home.text().await.expect("html");
    assert!(html.contains("No passkeys yet."), "{html}");
    assert!(html.contains(r#"data-start="/gate/passkeys/start""#));
    assert!(html.contains(r#"<script src="/static/passkeys.js" defer></script>"#));
    assert!(!html.contains(r#"id="passkey-code""#), "no MFA, no code");
    let sign_in_page = app.get("/gate/login").await;
    assert_eq!(sign_in_page.status(), 303, "signed in already");

    // The password again first.
    for wrong in [vec![], vec![("password", "not it at all 42")]] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(&wrong);
        let refused = post_page(&app, "/gate/passkeys/start", &fields).await;
        assert_eq!(refused.status(), 422, "{wrong:?}");
    }
    let finished = add_on_the_portal(
        &app,
        &mut user,
        &csrf,
        &[("password", GOOD_PASSWORD)],
        "Laptop",
    )
    .await;
    assert_eq!(next_location(finished).await, "/gate/#passkeys");
    let home = html_of(&app, "/gate/").await;
    assert!(home.contains("Added the passkey “Laptop”."), "{home}");
    assert!(home.contains(r#"value="Laptop""#), "{home}");
    assert!(home.contains("<td>never</td>"), "{home}");
    let again = html_of(&app, "/gate/").await;
    assert!(!again.contains("Added the passkey"), "shown once");
    assert_eq!(names(&app, &user).await, vec!["Laptop"]);
    let registered = app.audit_events("passkey.registered");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].0, "success");
    let id = json_of(
        app.get_with_token(PASSKEYS, &user.tokens.access_token)
            .await,
    )
    .await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    user.passkey_id = id.clone();

    // It signs in to the portal by itself; the page shows when.
    let finished = page_sign_in(&app, &mut user, "/gate/login/passkey", &[("rd", "")]).await;
    assert_eq!(next_location(finished).await, PORTAL_HOME);
    assert!(!html_of(&app, "/gate/").await.contains("<td>never</td>"));
    // The rest from a password sign-in (deleting a passkey may end the sessions
    // it signed in).
    let csrf = portal_signed_in(&app, "user@example.org").await;

    // Renamed.
    let renamed = post_page(
        &app,
        "/gate/passkeys/rename",
        &[("csrf", &csrf), ("passkey", &id), ("name", " Work laptop ")],
    )
    .await;
    assert_eq!(renamed.status(), 303);
    assert_eq!(location(&renamed), "/gate/#passkeys");
    let home = html_of(&app, "/gate/").await;
    assert!(
        home.contains("Renamed the passkey to “Work laptop”."),
        "{home}"
    );
    let too_long = "x".repeat(65);
    let refused = post_page(
        &app,
        "/gate/passkeys/rename",
        &[("csrf", &csrf), ("passkey", &id), ("name", &too_long)],
    )
    .await;
    assert_eq!(refused.status(), 303);
    assert!(html_of(&app, "/gate/").await.contains("1 to 64 characters"));
    assert_eq!(names(&app, &user).await, vec!["Work laptop"]);
    // Someone else's passkey, or none, is not found.
    let unknown = post_page(
        &app,
        "/gate/passkeys/rename",
        &[
            ("csrf", &csrf),
            ("passkey", "00000000-0000-4000-8000-000000000001"),
            ("name", "Mine now"),
        ],
    )
    .await;
    assert_eq!(unknown.status(), 404);

    // Deleting asks first, with the password on the question's page.
    let delete = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![("csrf", csrf.as_str()), ("passkey", id.as_str())];
        fields.extend_from_slice(extra);
        fields
    };
    let asked = post_page(&app, "/gate/passkeys/delete", &delete(&[])).await;
    assert_eq!(asked.status(), 200);
    let asked = asked.text().await.expect("html");
    assert!(
        asked.contains("Delete the passkey “Work laptop”?"),
        "{asked}"
    );
    assert!(asked.contains(r#"name="password" type="password""#));
    assert!(asked.contains(r#"name="confirm" value="yes""#));
    assert!(asked.contains(&format!(r#"name="csrf" value="{csrf}""#)));
    assert!(asked.contains(r##"href="/gate/#passkeys""##));
    let refused = post_page(
        &app,
        "/gate/passkeys/delete",
        &delete(&[("confirm", "yes"), ("password", "not it at all 42")]),
    )
    .await;
    assert_eq!(refused.status(), 303);
    assert!(html_of(&app, "/gate/").await.contains("was not deleted"));
    assert_eq!(names(&app, &user).await, vec!["Work laptop"]);
    let deleted = post_page(
        &app,
        "/gate/passkeys/delete",
        &delete(&[("confirm", "yes"), ("password", GOOD_PASSWORD)]),
    )
    .await;
    assert_eq!(deleted.status(), 303);
    let home = html_of(&app, "/gate/").await;
    assert!(
        home.contains("Deleted the passkey “Work laptop”."),
        "{home}"
    );
    assert!(home.contains("No passkeys yet."));
    assert!(names(&app, &user).await.is_empty());
    assert_eq!(app.audit_events("passkey.deleted").len(), 1);
    // The password's session lives on.
    assert!(html_of(&app, "/gate/").await.contains("user@example.org"));
}

/// With MFA on, adding or deleting a passkey on the portal needs a code as well as
/// the password, on the page and on the question's page.
#[actix_web::test]
async fn with_mfa_on_the_portal_asks_for_a_code_too() {
    let app = pages_app(&[]).await;
    let email = "mfa@example.org";
    let enrolled = crate::mfa::enrolled(&app, email).await;
    let mut user = holder_with_token(&app, email, enrolled.access_token.clone()).await;
    // The code that turned MFA on is spent; the next one registers a passkey
    // through the API, and it signs in to the portal.
    assert!(app.clock.advance(30));
    let token = user.tokens.access_token.clone();
    let start = app
        .post_with_token(
            "/api/v1/auth/passkeys/register/start",
            &token,
            Some(&serde_json::json!({"password": GOOD_PASSWORD, "code": enrolled.code(&app)})),
        )
        .await;
    assert_eq!(start.status(), 200);
    let start = json_of(start).await;
    let credential = create(&mut user.authenticator, &start["options"], origin());
    user.credential_id = credential.raw_id.clone();
    let finish = app
        .post_with_token(
            "/api/v1/auth/passkeys/register/finish",
            &token,
            Some(&serde_json::json!({"ceremony": start["ceremony"], "credential": credential})),
        )
        .await;
    assert_eq!(finish.status(), 201);
    let finished = page_sign_in(&app, &mut user, "/gate/login/passkey", &[("rd", "")]).await;
    assert_eq!(next_location(finished).await, PORTAL_HOME);

    let html = html_of(&app, "/gate/").await;
    assert!(html.contains(r#"id="passkey-code""#), "{html}");
    let csrf = csrf_of(&html);
    let password_only = post_page(
        &app,
        "/gate/passkeys/start",
        &[("csrf", &csrf), ("password", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(password_only.status(), 422);
    assert!(app.clock.advance(30));
    let code = enrolled.code(&app);
    let mut phone = holder_with_token(&app, email, token.clone()).await;
    let added = add_on_the_portal(
        &app,
        &mut phone,
        &csrf,
        &[("password", GOOD_PASSWORD), ("code", &code)],
        "Phone",
    )
    .await;
    assert_eq!(next_location(added).await, "/gate/#passkeys");

    // The question's page asks for the code too.
    let id = json_of(app.get_with_token(PASSKEYS, &token).await).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let asked = post_page(
        &app,
        "/gate/passkeys/delete",
        &[("csrf", &csrf), ("passkey", &id)],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(asked.contains(r#"name="code""#), "{asked}");
}

/// Without passkeys, the portal's account page runs no script and offers none;
/// its passkey posts are 404.
#[actix_web::test]
async fn without_passkeys_the_portal_account_page_runs_no_script() {
    let app = crate::gate::gate_app().await;
    app.signed_up("user@example.com").await;
    let (cookie, _) = crate::gate::portal_sign_in(&app, "user@example.com", "").await;
    let home = app
        .client
        .get(app.url("/gate/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(home.status(), 200);
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    let html = home.text().await.expect("html");
    assert!(!html.contains("passkeys.js"), "{html}");
    assert!(!html.contains("passkey"), "{html}");
    let csrf = csrf_of(&html);
    let start = app
        .client
        .post(app.url("/gate/passkeys/start"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(start.status(), 404);
}

/// The code step's passkey, through `{prefix}/start` and `/finish` with the page's
/// `extra` fields: the answer to `finish`.
async fn code_step_passkey(
    app: &TestApp,
    holder: &mut Holder,
    prefix: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (ceremony, options) = sign_in_started(app, &format!("{prefix}/start")).await;
    let allowed = &options.public_key.allow_credentials;
    assert_eq!(allowed.len(), 1, "the account's own passkey, named");
    let credential = serde_json::to_string(&assert_with(holder, options, origin())).expect("json");
    let mut fields = vec![
        ("ceremony", ceremony.as_str()),
        ("credential", credential.as_str()),
    ];
    fields.extend_from_slice(extra);
    post_page(app, &format!("{prefix}/finish"), &fields).await
}

#[actix_web::test]
async fn the_code_step_takes_a_passkey_instead_on_both_sign_ins() {
    let app = pages_app(&[]).await;
    let (_, mut root) =
        crate::passkeys::mfa_holder_with_role(&app, "root@example.org", "admin").await;

    // The admin sign-in: the password, then the code step offers the passkey.
    let password = post_page(
        &app,
        "/admin/login",
        &[("email", "root@example.org"), ("password", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(password.status(), 303);
    let code_page = html_of(&app, "/admin/login/code").await;
    assert!(
        code_page.contains(r#"data-start="/admin/login/code/passkey/start""#),
        "{code_page}"
    );
    let finished = code_step_passkey(
        &app,
        &mut root,
        "/admin/login/code/passkey",
        &[("next", "/admin/users")],
    )
    .await;
    assert_eq!(next_location(finished).await, "/admin/users");
    assert_eq!(app.get("/admin/users").await.status(), 200);
    // The sign-in is spent: no pending sign-in is left to answer.
    let spent = post_page(&app, "/admin/login/code/passkey/start", &[]).await;
    assert_eq!(spent.status(), 401);

    // The portal: the same, back to a safe `rd`.
    let password = post_page(
        &app,
        "/gate/login",
        &[
            ("email", "root@example.org"),
            ("password", GOOD_PASSWORD),
            ("rd", "http://app.gate.test/x"),
        ],
    )
    .await;
    assert_eq!(password.status(), 303);
    let code_page = html_of(&app, &location(&password)).await;
    assert!(
        code_page.contains(r#"data-start="/gate/login/code/passkey/start""#),
        "{code_page}"
    );
    let finished = code_step_passkey(
        &app,
        &mut root,
        "/gate/login/code/passkey",
        &[("rd", "http://app.gate.test/x")],
    )
    .await;
    assert_eq!(next_location(finished).await, "http://app.gate.test/x");
    assert!(html_of(&app, "/gate/").await.contains("root@example.org"));
    let steps: Vec<Value> = app
        .audit_events("passkey.sign_in")
        .into_iter()
        .filter(|(outcome, _, _)| outcome == "success")
        .map(|(_, _, details)| serde_json::from_str(&details).expect("details"))
        .collect();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|d| d["step"] == "second_factor"));

    // An account without a passkey is offered none; a made-up answer signs
    // nobody in.
    crate::mfa::enrolled(&app, "coder@example.org").await;
    let password = post_page(
        &app,
        "/gate/login",
        &[
            ("email", "coder@example.org"),
            ("password", GOOD_PASSWORD),
            ("rd", ""),
        ],
    )
    .await;
    let code_page = html_of(&app, &location(&password)).await;
    assert!(code_page.contains(r#"name="code""#));
    assert!(!code_page.contains("code/passkey"), "{code_page}");
    let refused = post_page(
        &app,
        "/gate/login/code/passkey/finish",
        &[("ceremony", "none"), ("credential", "not a credential")],
    )
    .await;
    assert_eq!(refused.status(), 401);
}

#[actix_web::test]
async fn a_passkey_sign_in_on_a_page_spends_a_sign_in_attempt() {
    let app = pages_app(&[("RATE_LIMIT_LOGIN_IP", "1/60")]).await;
    let mut user = holder(&app, "user@example.org").await;
    register(&app, &mut user, None).await;
    app.clock.advance(61);
    // Starts are not attempts: a page load may start one for the autofill.
    for _ in 0..3 {
        sign_in_started(&app, "/gate/login/passkey/start").await;
    }
    let finished = page_sign_in(&app, &mut user, "/gate/login/passkey", &[("rd", "")]).await;
    assert_eq!(next_location(finished).await, PORTAL_HOME);
    // The finish was the address's one attempt this minute: the password waits.
    let password = post_page(
        &app,
        "/gate/login",
        &[
            ("email", "user@example.org"),
            ("password", GOOD_PASSWORD),
            ("rd", ""),
        ],
    )
    .await;
    assert_eq!(password.status(), 429);
    let again = page_sign_in(&app, &mut user, "/admin/login/passkey", &[]).await;
    assert_eq!(again.status(), 429);
}

#[actix_web::test]
async fn passwords_entered_again_on_an_account_page_count_toward_the_accounts_limit() {
    let app = pages_app(&[("RATE_LIMIT_PASSWORD_ACCOUNT", "2/60")]).await;
    holder(&app, "user@example.org").await;
    let csrf = portal_signed_in(&app, "user@example.org").await;
    let fields = [("csrf", csrf.as_str()), ("password", GOOD_PASSWORD)];
    for _ in 0..2 {
        let started = post_page(&app, "/gate/passkeys/start", &fields).await;
        assert_eq!(started.status(), 200);
    }
    // The right password all the same: the account's budget is spent.
    let limited = post_page(&app, "/gate/passkeys/start", &fields).await;
    assert_eq!(limited.status(), 403);
    app.clock.advance(61);
    let again = post_page(&app, "/gate/passkeys/start", &fields).await;
    assert_eq!(again.status(), 200);
}

#[actix_web::test]
async fn a_code_step_answer_without_a_pending_sign_in_ends_no_session() {
    let app = pages_app(&[]).await;
    holder(&app, "user@example.org").await;
    portal_signed_in(&app, "user@example.org").await;
    let refused = post_page(
        &app,
        "/gate/login/code/passkey/finish",
        &[("ceremony", "none"), ("credential", "{}")],
    )
    .await;
    assert_eq!(refused.status(), 401);
    assert!(
        html_of(&app, "/gate/").await.contains("user@example.org"),
        "still signed in"
    );
}
