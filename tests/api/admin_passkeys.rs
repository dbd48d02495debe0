//! An administrator sees and removes an account's passkeys (a lost device, or a
//! passkey someone planted with a stolen session), on both doors: the API
//! (`/api/v1/admin/users/{id}/passkeys`, `user.view` to list, `user.reset_passkeys`
//! to remove) and the user's admin page. Removing them ends the sessions they
//! signed in, and nothing else; the passkey signs nobody in again; the reset is
//! audited. The soft passkey stands in for the browser's, as in `passkeys`.

use portcullis::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::{GOOD_PASSWORD, TestApp, Tokens, problem, spawn_with, test_settings};
use crate::passkeys::{
    ORIGIN, PASSKEYS, admin_holder, holder, json_of, origin, passkey_app, register, sign_in,
};

/// An id no account has.
const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

fn passkeys_of(id: impl std::fmt::Display) -> String {
    format!("/api/v1/admin/users/{id}/passkeys")
}

#[actix_web::test]
async fn an_administrator_lists_and_removes_a_users_passkeys_ending_their_sessions() {
    let app = passkey_app(&[]).await;
    let admin = app.admin_token("root@example.org").await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, Some("Laptop")).await;
    let signed_in = sign_in(&app, &mut alice, origin()).await;
    assert_eq!(signed_in.status(), 200);
    let by_passkey: Tokens = signed_in.json().await.expect("tokens");
    assert_eq!(app.me_status(&by_passkey.access_token).await, 200);
    let path = passkeys_of(alice.user_id);

    // Listed as the user sees them.
    let listed = app.get_with_token(&path, &admin).await;
    assert_eq!(listed.status(), 200);
    let listed = json_of(listed).await;
    let own = json_of(
        app.get_with_token(PASSKEYS, &alice.tokens.access_token)
            .await,
    )
    .await;
    assert_eq!(listed, own, "the same shape as the user's own list");
    let listed = listed.as_array().expect("an array").clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], alice.passkey_id.as_str());
    assert_eq!(listed[0]["name"], "Laptop");
    assert!(listed[0]["created_at"].is_string());
    assert!(listed[0]["last_used_at"].is_string(), "it signed in");
    // HEAD, as for every GET.
    let head = app
        .client
        .head(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(head.status(), 200);

    // Not an administrator: refused on both, and nothing is removed.
    for token in [&alice.tokens.access_token, &by_passkey.access_token] {
        problem(app.get_with_token(&path, token).await, 403).await;
        problem(app.delete_with_token(&path, token).await, 403).await;
    }
    // No such user (or no user id at all): 404 on both.
    for missing in [passkeys_of(NOBODY), passkeys_of("not-a-uuid")] {
        problem(app.get_with_token(&missing, &admin).await, 404).await;
        problem(app.delete_with_token(&missing, &admin).await, 404).await;
    }
    assert!(app.audit_events("passkey.reset").is_empty());
    assert_eq!(app.me_status(&by_passkey.access_token).await, 200);

    // Removed: every session of the account ends — the passkey's, and the
    // password's too, which could have planted it and could plant another.
    let reset = app.delete_with_token(&path, &admin).await;
    assert_eq!(reset.status(), 200);
    assert_eq!(json_of(reset).await, json!({"removed": 1}));
    assert_eq!(
        app.me_status(&by_passkey.access_token).await,
        401,
        "the session the passkey signed in has ended"
    );
    assert_ne!(
        app.refresh(&by_passkey.refresh_token).await.status(),
        200,
        "and its refresh token with it"
    );
    assert_eq!(
        app.me_status(&alice.tokens.access_token).await,
        401,
        "the password's session has ended too"
    );
    // The passkey signs nobody in again.
    let again = sign_in(&app, &mut alice, origin()).await;
    assert_eq!(
        problem(again, 401).await["detail"],
        "Passkey sign-in failed"
    );
    let listed = json_of(app.get_with_token(&path, &admin).await).await;
    assert_eq!(listed, json!([]));

    // Audited, naming the account and what was ended.
    let events = app.audit_events("passkey.reset");
    assert_eq!(events.len(), 1);
    let (outcome, target, details) = &events[0];
    assert_eq!(outcome, "success");
    assert_eq!(target.as_deref(), Some(alice.user_id.to_string().as_str()));
    let details: Value = serde_json::from_str(details).expect("details");
    assert_eq!(details["passkeys_removed"], 1);
    assert_eq!(details["sessions_ended"], 2);

    // An administrator's own passkeys are theirs to delete, with the password.
    let me = json_of(app.get_with_token("/api/v1/auth/me", &admin).await).await;
    let own = passkeys_of(me["id"].as_str().expect("id"));
    problem(app.delete_with_token(&own, &admin).await, 409).await;

    // Again: nothing left to remove, still an answer.
    let reset = app.delete_with_token(&path, &admin).await;
    assert_eq!(reset.status(), 200);
    assert_eq!(json_of(reset).await, json!({"removed": 0}));
}

/// Listing is a part of viewing the user; removing is its own action, which a
/// policy can deny alone.
#[actix_web::test]
async fn removing_passkeys_is_its_own_administrator_action() {
    let app = passkey_app(&[]).await;
    let admin = app.admin_token("root@example.org").await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;
    let path = passkeys_of(alice.user_id);
    let deny = app
        .post_with_token(
            "/api/v1/admin/policies",
            &admin,
            Some(&json!({"name": "Nobody removes passkeys", "effect": "deny",
                         "resource_type": "admin", "actions": ["user.reset_passkeys"]})),
        )
        .await;
    assert_eq!(
        deny.status(),
        201,
        "{}",
        deny.text().await.unwrap_or_default()
    );
    assert_eq!(app.get_with_token(&path, &admin).await.status(), 200);
    let refused = problem(app.delete_with_token(&path, &admin).await, 403).await;
    assert_eq!(
        refused["detail"],
        "The access policies do not allow this administrator action."
    );
    let listed = json_of(app.get_with_token(&path, &admin).await).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "nothing removed");
    assert!(app.audit_events("passkey.reset").is_empty());
}

/// The CSRF token of the page's first form.
fn csrf(html: &str) -> String {
    html.split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_owned()
}

/// The page's one-time message: (is an error, text).
fn flash_of(html: &str) -> Option<(bool, String)> {
    let at = html.find(r#"<p class="flash"#)?;
    let rest = &html[at..];
    let error = rest.starts_with(r#"<p class="flash flash-error""#);
    let text = rest.split_once('>')?.1.split_once("</p>")?.0.to_owned();
    Some((error, text))
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
async fn the_user_page_lists_passkeys_and_removes_them_after_asking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(
        dir.path(),
        &[
            ("WEBAUTHN_RP_ID", "localhost"),
            ("WEBAUTHN_RP_ORIGINS", ORIGIN),
            ("ADMIN_REQUIRE_MFA", "false"),
        ],
    );
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    let app = spawn_with(settings, dir, client, clock).await;
    admin_holder(&app, "root@example.org").await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, Some("Planted <key>")).await;
    let signed_in = sign_in(&app, &mut alice, origin()).await;
    let by_passkey: Tokens = signed_in.json().await.expect("tokens");
    let dashboard = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("email", "root@example.org"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(dashboard.url().path(), "/admin");
    let user_page = format!("/admin/users/{}", alice.user_id);

    // Listed, escaped, with the action offered.
    let html = app.get(&user_page).await.text().await.expect("html");
    assert!(html.contains("Passkeys (1)"), "{html}");
    assert!(html.contains("Planted &#60;key&#62;"), "{html}");
    assert!(!html.contains("Planted <key>"));
    assert!(html.contains(r#"value="reset_passkeys""#), "{html}");
    assert!(html.contains("Remove passkeys"));
    assert!(!html.contains("suspected copy"));
    let token = csrf(&html);

    // A suspected copy is shown as refused.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute("UPDATE passkeys SET clone_suspected_at = 1700000000", [])
        .expect("suspect");
    let html = app.get(&user_page).await.text().await.expect("html");
    assert!(
        html.contains("suspected copy — refused since 2023-11-14T22:13:20Z"),
        "{html}"
    );

    // Without CSRF, refused.
    let forged = post_form(&app, &user_page, &[("op", "reset_passkeys")]).await;
    assert_eq!(forged.status(), 403);

    // It asks first, saying what happens, and does nothing yet.
    let asked = post_form(
        &app,
        &user_page,
        &[("csrf", token.as_str()), ("op", "reset_passkeys")],
    )
    .await;
    assert_eq!(asked.status(), 200);
    let page = asked.text().await.expect("html");
    assert!(
        page.contains("Remove every passkey of alice@example.org?"),
        "{page}"
    );
    assert!(page.contains("every session of the account ends"), "{page}");
    assert!(
        page.contains(r#"name="op" value="reset_passkeys""#),
        "{page}"
    );
    assert!(page.contains(r#"name="confirm" value="yes""#));
    assert!(app.audit_events("passkey.reset").is_empty());
    assert_eq!(app.me_status(&by_passkey.access_token).await, 200);

    // Confirmed: removed, named in the message, the passkey's session ended.
    let done = post_form(
        &app,
        &user_page,
        &[
            ("csrf", token.as_str()),
            ("op", "reset_passkeys"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.url().path(), user_page);
    let html = done.text().await.expect("html");
    assert_eq!(
        flash_of(&html),
        Some((
            false,
            "Removed 1 passkey(s) of alice@example.org; every session of it ended.".to_owned()
        ))
    );
    assert!(!html.contains("Passkeys ("), "no list left: {html}");
    assert!(!html.contains(r#"value="reset_passkeys""#));
    assert_eq!(app.me_status(&by_passkey.access_token).await, 401);
    assert_eq!(app.me_status(&alice.tokens.access_token).await, 401);
    assert_eq!(app.audit_events("passkey.reset").len(), 1);
}
