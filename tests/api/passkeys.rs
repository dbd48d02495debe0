//! Passkeys through the API, with webauthn-authenticator-rs's soft passkey in the
//! browser's place: registration behind the password again, listing, renaming and
//! deleting (which ends the sessions the passkey signed in), signing in with a
//! passkey alone (the same tokens as a password, a session that policies see as
//! `passkey` and as MFA) or instead of a code after the password, and every
//! refusal — a counter gone backwards (which puts the passkey out of use), another
//! origin or RP id, no user verification, a ceremony replayed, expired or started
//! for another challenge, a softlocked or disabled account, the limits.
//!
//! The soft passkey keeps no discoverable credentials: the tests ask it for a plain
//! one (`requireResidentKey` false) and, at sign-in, name the credential in
//! `allowCredentials` and put back the user handle a discoverable one would return.
//! The server checks none of that differently: the signature covers neither.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::Clock;
use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, UserVerificationPolicy};

use crate::helpers::{GOOD_PASSWORD, TestApp, Tokens, problem, spawn_with, test_settings};

pub(crate) const PASSKEYS: &str = "/api/v1/auth/passkeys";
const REGISTER_START: &str = "/api/v1/auth/passkeys/register/start";
const REGISTER_FINISH: &str = "/api/v1/auth/passkeys/register/finish";
const LOGIN_START: &str = "/api/v1/auth/passkeys/login/start";
const LOGIN_FINISH: &str = "/api/v1/auth/passkeys/login/finish";
const SECOND_START: &str = "/api/v1/auth/passkeys/verify-login/start";
const SECOND_FINISH: &str = "/api/v1/auth/passkeys/verify-login/finish";
/// Where the "browser" runs: the configured origin, whatever the test server's
/// real address (WebAuthn origins are names, and `localhost` is one, an IP is not).
pub(crate) const ORIGIN: &str = "http://localhost:8080";

pub(crate) fn origin() -> Url {
    Url::parse(ORIGIN).expect("origin")
}

/// An app with passkeys on (RP id `localhost`), on a manual clock, with `overrides`.
pub(crate) async fn passkey_app(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut variables = vec![
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_RP_ORIGINS", ORIGIN),
    ];
    variables.extend_from_slice(overrides);
    let settings = test_settings(dir.path(), &variables);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

/// Someone with an account, signed in with the password, and their authenticator.
pub(crate) struct Holder {
    pub(crate) email: String,
    pub(crate) tokens: Tokens,
    pub(crate) user_id: Uuid,
    pub(crate) authenticator: SoftPasskey,
    /// The raw id of the passkey registered last.
    pub(crate) credential_id: Vec<u8>,
    /// Its id in the API.
    pub(crate) passkey_id: String,
}

pub(crate) async fn holder(app: &TestApp, email: &str) -> Holder {
    let tokens = app.signed_up(email).await;
    holder_with(app, email, tokens).await
}

/// An administrator (an account made one, signed in with the password), and their
/// authenticator.
pub(crate) async fn admin_holder(app: &TestApp, email: &str) -> Holder {
    let access_token = app.admin_token(email).await;
    holder_with_token(app, email, access_token).await
}

/// The holder of `email`'s account, signed in with `access_token` (only), with a
/// new authenticator.
pub(crate) async fn holder_with_token(app: &TestApp, email: &str, access_token: String) -> Holder {
    let tokens = Tokens {
        access_token,
        refresh_token: String::new(),
        session_id: String::new(),
        expires_in: 0,
    };
    holder_with(app, email, tokens).await
}

async fn holder_with(app: &TestApp, email: &str, tokens: Tokens) -> Holder {
    let me = json_of(
        app.get_with_token("/api/v1/auth/me", &tokens.access_token)
            .await,
    )
    .await;
    let user_id = me["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    Holder {
        email: email.to_owned(),
        tokens,
        user_id,
        authenticator: SoftPasskey::new(true),
        credential_id: Vec::new(),
        passkey_id: String::new(),
    }
}

/// `register/start` with the password again: the ceremony and the options.
async fn registration_options(app: &TestApp, token: &str) -> (String, Value) {
    registration_options_proved(app, token, json!({"password": GOOD_PASSWORD})).await
}

/// `register/start` with `proof` (the password, and a code with MFA on).
async fn registration_options_proved(app: &TestApp, token: &str, proof: Value) -> (String, Value) {
    let response = app
        .post_with_token(REGISTER_START, token, Some(&proof))
        .await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let ceremony = body["ceremony"].as_str().expect("ceremony").to_owned();
    (ceremony, body["options"].clone())
}

/// What the soft passkey makes of creation options, as the browser at `at` would
/// hand it over.
pub(crate) fn create(
    authenticator: &mut SoftPasskey,
    options: &Value,
    at: Url,
) -> RegisterPublicKeyCredential {
    let mut options: CreationChallengeResponse =
        serde_json::from_value(options.clone()).expect("creation options");
    // The soft passkey cannot keep a discoverable credential: ask for a plain one.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.require_resident_key = false;
    }
    authenticator
        .do_registration(at, options)
        .expect("the soft passkey registers")
}

async fn finish_registration(
    app: &TestApp,
    token: &str,
    ceremony: &str,
    name: Option<&str>,
    credential: &RegisterPublicKeyCredential,
) -> reqwest::Response {
    let mut body = json!({"ceremony": ceremony, "credential": credential});
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    app.post_with_token(REGISTER_FINISH, token, Some(&body))
        .await
}

/// Registers a passkey on `holder`'s account; returns it as the API shows it.
pub(crate) async fn register(app: &TestApp, holder: &mut Holder, name: Option<&str>) -> Value {
    register_proved(app, holder, name, json!({"password": GOOD_PASSWORD})).await
}

/// [`register`], the account proved with `proof`.
pub(crate) async fn register_proved(
    app: &TestApp,
    holder: &mut Holder,
    name: Option<&str>,
    proof: Value,
) -> Value {
    let token = holder.tokens.access_token.clone();
    let (ceremony, options) = registration_options_proved(app, &token, proof).await;
    let credential = create(&mut holder.authenticator, &options, origin());
    let response = finish_registration(app, &token, &ceremony, name, &credential).await;
    assert_eq!(response.status(), 201);
    let passkey = json_of(response).await;
    holder.credential_id = credential.raw_id.clone();
    holder.passkey_id = passkey["id"].as_str().expect("id").to_owned();
    passkey
}

/// `login/start`: the ceremony and the request options.
async fn sign_in_options(app: &TestApp) -> (String, RequestChallengeResponse) {
    let response = app
        .client
        .post(app.url(LOGIN_START))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let options = serde_json::from_value(body["options"].clone()).expect("request options");
    (
        body["ceremony"].as_str().expect("ceremony").to_owned(),
        options,
    )
}

/// The soft passkey's answer, as a discoverable passkey would give it.
pub(crate) fn assert_with(
    holder: &mut Holder,
    mut options: RequestChallengeResponse,
    at: Url,
) -> PublicKeyCredential {
    options.public_key.allow_credentials.push(AllowCredentials {
        type_: "public-key".to_owned(),
        id: holder.credential_id.clone(),
        transports: None,
    });
    let mut credential = holder
        .authenticator
        .do_authentication(at, options)
        .expect("the soft passkey answers");
    credential.response.user_handle = Some(holder.user_id.as_bytes().to_vec());
    credential
}

async fn finish_sign_in(
    app: &TestApp,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> reqwest::Response {
    app.post_json(
        LOGIN_FINISH,
        &json!({"ceremony": ceremony, "credential": credential}),
    )
    .await
}

/// A whole passkey sign-in from `at`.
pub(crate) async fn sign_in(app: &TestApp, holder: &mut Holder, at: Url) -> reqwest::Response {
    let (ceremony, options) = sign_in_options(app).await;
    let credential = assert_with(holder, options, at);
    finish_sign_in(app, &ceremony, &credential).await
}

/// The claims of an access token (its signature is the server's business).
fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

/// The `reason` details of the `passkey.sign_in` failures, in order.
fn sign_in_failures(app: &TestApp) -> Vec<String> {
    app.audit_events("passkey.sign_in")
        .into_iter()
        .filter(|(outcome, _, _)| outcome == "failure")
        .map(|(_, _, details)| {
            serde_json::from_str::<Value>(&details).expect("details")["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn registration_needs_the_password_again_and_asks_for_a_discoverable_passkey() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    let token = alice.tokens.access_token.clone();

    // A token alone cannot enrol the thief's authenticator.
    problem(
        app.post_with_token(REGISTER_START, &token, Some(&json!({})))
            .await,
        403,
    )
    .await;
    let wrong = app
        .post_with_token(
            REGISTER_START,
            &token,
            Some(&json!({"password": "not it at all 42"})),
        )
        .await;
    let body = problem(wrong, 422).await;
    assert_eq!(body["errors"][0]["field"], "password");

    let (ceremony, options) = registration_options(&app, &token).await;
    assert_eq!(ceremony.len(), 43, "256 random bits");
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(
        public_key["user"]["id"],
        URL_SAFE_NO_PAD.encode(alice.user_id.as_bytes())
    );
    assert_eq!(public_key["user"]["name"], "alice@example.org");
    assert!(
        public_key["challenge"]
            .as_str()
            .is_some_and(|c| c.len() >= 43)
    );
    assert!(
        public_key["pubKeyCredParams"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    let selection = &public_key["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");

    let credential = create(&mut alice.authenticator, &options, origin());
    let response =
        finish_registration(&app, &token, &ceremony, Some(" Laptop "), &credential).await;
    assert_eq!(response.status(), 201);
    let laptop = json_of(response).await;
    assert_eq!(laptop["name"], "Laptop");
    assert!(laptop["created_at"].is_string());
    assert!(laptop["last_used_at"].is_null());
    assert!(laptop.get("passkey").is_none() && laptop.get("credential_id").is_none());

    // A second passkey, unnamed; the first is excluded from its options.
    let mut phone = SoftPasskey::new(true);
    let (ceremony, options) = registration_options(&app, &token).await;
    let excluded = options["publicKey"]["excludeCredentials"][0]["id"].clone();
    assert_eq!(excluded, URL_SAFE_NO_PAD.encode(&credential.raw_id));
    let second = create(&mut phone, &options, origin());
    let response = finish_registration(&app, &token, &ceremony, None, &second).await;
    assert_eq!(response.status(), 201);
    assert_eq!(json_of(response).await["name"], "Passkey 2");

    let listed = json_of(app.get_with_token(PASSKEYS, &token).await).await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["Laptop", "Passkey 2"]);
    let registered = app.audit_events("passkey.registered");
    assert_eq!(registered.len(), 2);
    assert!(
        registered
            .iter()
            .all(|(outcome, _, _)| outcome == "success")
    );

    // An answer made for an earlier ceremony does not answer a new one.
    let (ceremony, _) = registration_options(&app, &token).await;
    let again = finish_registration(&app, &token, &ceremony, None, &second).await;
    assert_eq!(
        problem(again, 422).await["errors"][0]["field"],
        "credential"
    );
    assert_eq!(app.audit_events("passkey.registered").len(), 3);
}

#[actix_web::test]
async fn passkeys_are_renamed_and_deleted_by_their_owner_only() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    let bob = holder(&app, "bob@example.org").await;
    register(&app, &mut alice, Some("Laptop")).await;
    let token = alice.tokens.access_token.clone();
    let path = format!("{PASSKEYS}/{}", alice.passkey_id);

    let renamed = app
        .patch_with_token(&path, &token, &json!({"name": "Work key"}))
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(json_of(renamed).await["name"], "Work key");
    let blank = app
        .patch_with_token(&path, &token, &json!({"name": "  "}))
        .await;
    assert_eq!(problem(blank, 422).await["errors"][0]["field"], "name");
    let long = app
        .patch_with_token(&path, &token, &json!({"name": "x".repeat(65)}))
        .await;
    assert_eq!(problem(long, 422).await["errors"][0]["field"], "name");
    // Someone else's passkey does not exist for Bob.
    let bobs = app
        .patch_with_token(&path, &bob.tokens.access_token, &json!({"name": "Mine"}))
        .await;
    problem(bobs, 404).await;
    let bobs = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&bob.tokens.access_token)
        .json(&json!({"password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("request");
    problem(bobs, 404).await;
    assert!(
        json_of(app.get_with_token(PASSKEYS, &bob.tokens.access_token).await)
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // Deleting needs the account proved again: registering proved it minutes ago;
    // once that is stale, the password again.
    app.clock.advance(6 * 60);
    problem(app.delete_with_token(&path, &token).await, 403).await;
    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .json(&json!({"password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), 204);
    assert!(
        json_of(app.get_with_token(PASSKEYS, &token).await)
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    problem(app.delete_with_token(&path, &token).await, 404).await;
    assert_eq!(app.audit_events("passkey.renamed").len(), 1);
    assert_eq!(app.audit_events("passkey.deleted").len(), 1);
    // The deleted passkey signs in no more.
    let response = sign_in(&app, &mut alice, origin()).await;
    assert_eq!(
        problem(response, 401).await["detail"],
        "Passkey sign-in failed"
    );
    assert_eq!(sign_in_failures(&app), vec!["unknown_passkey"]);
}

#[actix_web::test]
async fn a_passkey_alone_signs_in_to_a_passkey_session_that_counts_as_mfa() {
    let app = passkey_app(&[]).await;
    let admin = app.admin_token("root@example.org").await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, Some("Laptop")).await;

    let (ceremony, options) = sign_in_options(&app).await;
    let json_options = serde_json::to_value(&options).expect("json");
    assert_eq!(json_options["publicKey"]["userVerification"], "required");
    assert_eq!(json_options["publicKey"]["rpId"], "localhost");
    assert_eq!(json_options["publicKey"]["timeout"], 300_000);
    assert_eq!(json_options["mediation"], "conditional");
    assert!(json_options["publicKey"]["challenge"].is_string());
    assert!(
        json_options["publicKey"]["allowCredentials"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "no account is named"
    );
    let credential = assert_with(&mut alice, options, origin());
    let response = finish_sign_in(&app, &ceremony, &credential).await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.expect("tokens");
    assert_eq!(claims(&tokens.access_token)["auth_method"], "passkey");
    let me = json_of(
        app.get_with_token("/api/v1/auth/me", &tokens.access_token)
            .await,
    )
    .await;
    assert_eq!(me["email"], alice.email);
    assert_eq!(me["mfa_enabled"], false, "the account has no TOTP factor");
    let sessions = json_of(
        app.get_with_token("/api/v1/auth/sessions", &tokens.access_token)
            .await,
    )
    .await;
    let current = sessions
        .as_array()
        .and_then(|all| all.iter().find(|s| s["current"] == true))
        .expect("current session")
        .clone();
    assert_eq!(current["auth_method"], "passkey");
    // The refreshed tokens of the session keep its method.
    let refreshed = app.refresh(&tokens.refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Tokens = refreshed.json().await.expect("tokens");
    assert_eq!(claims(&refreshed.access_token)["auth_method"], "passkey");
    assert_eq!(
        claims(&alice.tokens.access_token)["auth_method"],
        "password"
    );
    // The passkey remembers its use; the sign-in is audited.
    let listed = json_of(app.get_with_token(PASSKEYS, &refreshed.access_token).await).await;
    assert!(listed[0]["last_used_at"].is_string());
    let signed_in = app.audit_events("passkey.sign_in");
    assert_eq!(signed_in.len(), 1);
    assert_eq!(signed_in[0].0, "success");
    assert_eq!(signed_in[0].1.as_deref(), Some(alice.passkey_id.as_str()));
    let logins = app.audit_events("auth.login_succeeded");
    assert!(
        logins
            .last()
            .is_some_and(|(_, _, details)| details.contains("\"passkey\""))
    );

    // Policies see the method, and a passkey as MFA.
    for (resource, condition) in [
        (
            "report",
            json!({"attribute": "subject.auth_method", "operator": "eq", "value": "passkey"}),
        ),
        (
            "vault",
            json!({"attribute": "subject.mfa", "operator": "eq", "value": true}),
        ),
    ] {
        let policy = json!({"name": format!("{resource} needs a strong sign-in"), "effect": "allow",
                            "resource_type": resource, "actions": ["read"], "conditions": condition});
        let created = app
            .post_with_token("/api/v1/admin/policies", &admin, Some(&policy))
            .await;
        assert_eq!(
            created.status(),
            201,
            "{}",
            created.text().await.unwrap_or_default()
        );
    }
    for resource in ["report", "vault"] {
        assert!(
            allowed(&app, &refreshed.access_token, resource).await,
            "{resource}"
        );
        assert!(
            !allowed(&app, &alice.tokens.access_token, resource).await,
            "{resource}"
        );
    }
}

/// Whether the decision API lets `token`'s caller read a `resource`.
async fn allowed(app: &TestApp, token: &str, resource: &str) -> bool {
    let ask = json!({"action": "read", "resource": {"type": resource}});
    let answer = app
        .post_with_token("/api/v1/authz/check", token, Some(&ask))
        .await;
    assert_eq!(answer.status(), 200);
    json_of(answer).await["allowed"] == true
}

#[actix_web::test]
async fn a_counter_gone_backwards_puts_the_passkey_and_its_sessions_out_of_use() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;
    let signed_in = sign_in(&app, &mut alice, origin()).await;
    assert_eq!(signed_in.status(), 200);
    let by_passkey: Tokens = signed_in.json().await.expect("tokens");
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let counter = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT json_extract(passkey, '$.cred.counter') FROM passkeys",
            [],
            |row| row.get(0),
        )
        .expect("counter")
    };
    assert_eq!(
        counter(&conn),
        1,
        "the new counter is stored with the sign-in"
    );
    // Another copy of the key has signed far more often than this one.
    conn.execute(
        "UPDATE passkeys SET passkey = json_set(passkey, '$.cred.counter', 100)",
        [],
    )
    .expect("raise the counter");
    app.clock.advance(60);
    let response = sign_in(&app, &mut alice, origin()).await;
    assert_eq!(
        problem(response, 401).await["detail"],
        "Passkey sign-in failed"
    );
    let suspected = app.audit_events("passkey.clone_suspected");
    assert_eq!(suspected.len(), 1);
    assert_eq!(suspected[0].0, "denied");
    assert_eq!(suspected[0].1.as_deref(), Some(alice.passkey_id.as_str()));
    assert_eq!(sign_in_failures(&app), vec!["counter_regressed"]);
    assert_eq!(counter(&conn), 100, "a refused answer changes nothing");
    let failed: i64 = conn
        .query_row(
            "SELECT failed_logins FROM users WHERE email = 'alice@example.org'",
            [],
            |row| row.get(0),
        )
        .expect("failures");
    assert_eq!(failed, 1, "counts toward the softlock");

    // Which copy is the owner's nobody can tell: the session the passkey signed in
    // has ended, and the passkey signs nobody in, even with a counter that would
    // pass; the password session lives on, and its owner sees why.
    problem(
        app.get_with_token("/api/v1/auth/me", &by_passkey.access_token)
            .await,
        401,
    )
    .await;
    problem(app.refresh(&by_passkey.refresh_token).await, 401).await;
    conn.execute(
        "UPDATE passkeys SET passkey = json_set(passkey, '$.cred.counter', 0)",
        [],
    )
    .expect("lower the counter");
    problem(sign_in(&app, &mut alice, origin()).await, 401).await;
    assert_eq!(
        sign_in_failures(&app).last().map(String::as_str),
        Some("clone_suspected")
    );
    let listed = json_of(
        app.get_with_token(PASSKEYS, &alice.tokens.access_token)
            .await,
    )
    .await;
    assert!(listed[0]["clone_suspected_at"].is_string(), "{listed}");
    assert_eq!(app.audit_events("passkey.clone_suspected").len(), 1);
}

#[actix_web::test]
async fn two_tabs_finishing_out_of_order_race_and_suspect_no_copy() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;
    // Two answers made one after the other (counters 1 and 2), finished in the
    // other order: the late one carries a counter the other already passed, but
    // the passkey signed in since its ceremony began — a race, not a copy.
    let (first_ceremony, first_options) = sign_in_options(&app).await;
    let first = assert_with(&mut alice, first_options, origin());
    let (second_ceremony, second_options) = sign_in_options(&app).await;
    let second = assert_with(&mut alice, second_options, origin());
    assert_eq!(
        finish_sign_in(&app, &second_ceremony, &second)
            .await
            .status(),
        200
    );
    let late = finish_sign_in(&app, &first_ceremony, &first).await;
    assert_eq!(problem(late, 401).await["detail"], "Passkey sign-in failed");
    assert_eq!(sign_in_failures(&app), vec!["counter_raced"]);
    assert!(app.audit_events("passkey.clone_suspected").is_empty());
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let failed: i64 = conn
        .query_row(
            "SELECT failed_logins FROM users WHERE email = 'alice@example.org'",
            [],
            |row| row.get(0),
        )
        .expect("failures");
    assert_eq!(failed, 0, "a race is no guess");
    app.clock.advance(60);
    assert_eq!(sign_in(&app, &mut alice, origin()).await.status(), 200);
}

#[actix_web::test]
async fn another_origin_or_rp_id_and_a_missing_user_verification_are_refused() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    let elsewhere = Url::parse("http://localhost:9999").expect("url");
    // Registration from another origin (the same host, another port).
    let token = alice.tokens.access_token.clone();
    let (ceremony, options) = registration_options(&app, &token).await;
    let credential = create(&mut alice.authenticator, &options, elsewhere.clone());
    let refused = finish_registration(&app, &token, &ceremony, None, &credential).await;
    let body = problem(refused, 422).await;
    assert_eq!(body["errors"][0]["field"], "credential");
    assert!(
        !body.to_string().contains("Origin"),
        "no library text: {body}"
    );
    let registered = app.audit_events("passkey.registered");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].0, "failure");
    assert!(registered[0].2.contains("wrong_origin"));

    register(&app, &mut alice, None).await;
    let response = sign_in(&app, &mut alice, elsewhere).await;
    assert_eq!(
        problem(response, 401).await["detail"],
        "Passkey sign-in failed"
    );

    // No user verification: the authenticator signs with user presence only.
    let (ceremony, mut options) = sign_in_options(&app).await;
    options.public_key.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let credential = assert_with(&mut alice, options, origin());
    problem(finish_sign_in(&app, &ceremony, &credential).await, 401).await;
    assert_eq!(
        sign_in_failures(&app),
        vec!["wrong_origin", "user_not_verified"]
    );

    // Another RP id: a passkey made for a sub-domain of the configured one.
    let domain = passkey_app(&[
        ("WEBAUTHN_RP_ID", "example.test"),
        ("WEBAUTHN_RP_ORIGINS", "https://portal.example.test"),
    ])
    .await;
    let mut bob = holder(&domain, "bob@example.org").await;
    let token = bob.tokens.access_token.clone();
    let (ceremony, mut options) = registration_options(&domain, &token).await;
    assert_eq!(options["publicKey"]["rp"]["id"], "example.test");
    options["publicKey"]["rp"]["id"] = json!("portal.example.test");
    let portal = Url::parse("https://portal.example.test").expect("url");
    let credential = create(&mut bob.authenticator, &options, portal);
    let refused = finish_registration(&domain, &token, &ceremony, None, &credential).await;
    assert_eq!(
        problem(refused, 422).await["errors"][0]["field"],
        "credential"
    );
    assert!(
        domain.audit_events("passkey.registered")[0]
            .2
            .contains("wrong_rp_id")
    );
}

#[actix_web::test]
async fn a_ceremony_is_good_once_for_five_minutes_on_its_own_session() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;

    let (ceremony, options) = sign_in_options(&app).await;
    let credential = assert_with(&mut alice, options, origin());
    assert_eq!(
        finish_sign_in(&app, &ceremony, &credential).await.status(),
        200
    );
    let replayed = finish_sign_in(&app, &ceremony, &credential).await;
    assert!(
        problem(replayed, 400).await["detail"]
            .as_str()
            .is_some_and(|d| d.contains("start a new one"))
    );

    let (ceremony, options) = sign_in_options(&app).await;
    let credential = assert_with(&mut alice, options, origin());
    app.clock.advance(5 * 60 + 1);
    problem(finish_sign_in(&app, &ceremony, &credential).await, 400).await;
    problem(finish_sign_in(&app, "made-up", &credential).await, 400).await;

    // A registration expires too, and only the session that started it finishes it.
    let token = alice.tokens.access_token.clone();
    let (ceremony, options) = registration_options(&app, &token).await;
    let credential = create(&mut SoftPasskey::new(true), &options, origin());
    app.clock.advance(5 * 60 + 1);
    problem(
        finish_registration(&app, &token, &ceremony, None, &credential).await,
        400,
    )
    .await;
    let (ceremony, options) = registration_options(&app, &token).await;
    let credential = create(&mut SoftPasskey::new(true), &options, origin());
    let other_session = app
        .signed_in(&alice.email, GOOD_PASSWORD)
        .await
        .access_token;
    let response = finish_registration(&app, &other_session, &ceremony, None, &credential).await;
    problem(response, 400).await;
    // Malformed answers are named, and spend nothing.
    let (ceremony, _) = sign_in_options(&app).await;
    let malformed = app
        .post_json(
            LOGIN_FINISH,
            &json!({"ceremony": ceremony, "credential": {"id": 7}}),
        )
        .await;
    assert_eq!(
        problem(malformed, 422).await["errors"][0]["field"],
        "credential"
    );
}

#[actix_web::test]
async fn passkey_sign_ins_meet_the_softlock_the_account_state_and_the_address_limit() {
    let app = passkey_app(&[("SOFTLOCK_STEPS", "3:60")]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;
    let elsewhere = Url::parse("http://localhost:9999").expect("url");
    for _ in 0..3 {
        problem(sign_in(&app, &mut alice, elsewhere.clone()).await, 401).await;
    }
    assert_eq!(app.audit_events("auth.account_locked").len(), 1);
    // Softlocked: the right passkey is refused too, and so is the password.
    problem(sign_in(&app, &mut alice, origin()).await, 401).await;
    problem(app.login(&alice.email, GOOD_PASSWORD).await, 401).await;
    assert_eq!(
        sign_in_failures(&app).last().map(String::as_str),
        Some("softlocked")
    );
    app.clock.advance(61);
    assert_eq!(sign_in(&app, &mut alice, origin()).await.status(), 200);

    // A disabled account cannot sign in with its passkey.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE users SET status = 'disabled' WHERE email = 'alice@example.org'",
        [],
    )
    .expect("disable");
    problem(sign_in(&app, &mut alice, origin()).await, 401).await;
    assert_eq!(
        sign_in_failures(&app).last().map(String::as_str),
        Some("disabled")
    );

    // Starting ceremonies has its own limit per address (a sign-in page starts
    // one as it loads), apart from the sign-in attempts.
    let limited = passkey_app(&[
        ("RATE_LIMIT_PASSKEY_START_IP", "2/60"),
        ("RATE_LIMIT_LOGIN_IP", "1/60"),
    ])
    .await;
    for _ in 0..2 {
        sign_in_options(&limited).await;
    }
    let response = limited
        .client
        .post(limited.url(LOGIN_START))
        .send()
        .await
        .expect("request");
    problem(response, 429).await;

    // Finishing one is a sign-in attempt: it spends the address's budget that
    // passwords spend too.
    let mut bob = holder(&limited, "bob@example.org").await;
    register(&limited, &mut bob, None).await;
    limited.clock.advance(60);
    assert_eq!(sign_in(&limited, &mut bob, origin()).await.status(), 200);
    problem(limited.login(&bob.email, GOOD_PASSWORD).await, 429).await;
    limited.clock.advance(60);
    assert_eq!(limited.login(&bob.email, GOOD_PASSWORD).await.status(), 200);
    let (ceremony, options) = sign_in_options(&limited).await;
    let credential = assert_with(&mut bob, options, origin());
    problem(finish_sign_in(&limited, &ceremony, &credential).await, 429).await;
}

/// Someone with MFA on (a TOTP code) and a passkey registered with the password
/// and a code.
async fn mfa_holder(app: &TestApp, email: &str) -> (crate::mfa::Enrolled, Holder) {
    mfa_holder_with_role(app, email, "user").await
}

/// [`mfa_holder`], with the account's `role`.
pub(crate) async fn mfa_holder_with_role(
    app: &TestApp,
    email: &str,
    role: &str,
) -> (crate::mfa::Enrolled, Holder) {
    let enrolled = crate::mfa::enrolled(app, email).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute("UPDATE users SET role = ?2 WHERE email = ?1", [email, role])
        .expect("role");
    // The code that turned MFA on is spent; the next one proves the account.
    app.clock.advance(30);
    let mut holder = holder_with_token(app, email, enrolled.access_token.clone()).await;
    let proof = json!({"password": GOOD_PASSWORD, "code": enrolled.code(app)});
    register_proved(app, &mut holder, Some("Key"), proof).await;
    (enrolled, holder)
}

/// `verify-login/start` for challenge `mfa_token`.
async fn second_factor_options(app: &TestApp, mfa_token: &str) -> reqwest::Response {
    app.post_json(SECOND_START, &json!({"mfa_token": mfa_token}))
        .await
}

async fn second_factor_finish(
    app: &TestApp,
    mfa_token: &str,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> reqwest::Response {
    app.post_json(
        SECOND_FINISH,
        &json!({"mfa_token": mfa_token, "ceremony": ceremony, "credential": credential}),
    )
    .await
}

/// A second-factor ceremony for `mfa_token`, and the holder's answer from `at`.
async fn second_factor_answer(
    app: &TestApp,
    holder: &mut Holder,
    mfa_token: &str,
    at: Url,
) -> (String, PublicKeyCredential) {
    let response = second_factor_options(app, mfa_token).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let options: RequestChallengeResponse =
        serde_json::from_value(body["options"].clone()).expect("request options");
    let ceremony = body["ceremony"].as_str().expect("ceremony").to_owned();
    (ceremony, assert_with(holder, options, at))
}

#[actix_web::test]
async fn a_passkey_answers_the_mfa_challenge_instead_of_a_code() {
    let app = passkey_app(&[]).await;
    let (enrolled, mut bob) = mfa_holder(&app, "bob@example.org").await;
    let mfa_token = crate::mfa::challenge(&app, &bob.email).await;

    let options = json_of(second_factor_options(&app, &mfa_token).await).await;
    let public_key = &options["options"]["publicKey"];
    assert_eq!(public_key["userVerification"], "required");
    assert_eq!(
        public_key["allowCredentials"][0]["id"],
        URL_SAFE_NO_PAD.encode(&bob.credential_id),
        "the account's own passkeys, named"
    );

    // A ceremony answers the challenge it was started for, and no other.
    let other_challenge = crate::mfa::challenge(&app, &bob.email).await;
    let (ceremony, credential) = second_factor_answer(&app, &mut bob, &mfa_token, origin()).await;
    let crossed = second_factor_finish(&app, &other_challenge, &ceremony, &credential).await;
    problem(crossed, 400).await;

    // A challenge has one ceremony at a time: starting again replaces it.
    let (replaced, _) = second_factor_answer(&app, &mut bob, &mfa_token, origin()).await;
    let (_, credential) = second_factor_answer(&app, &mut bob, &mfa_token, origin()).await;
    let stale = second_factor_finish(&app, &mfa_token, &replaced, &credential).await;
    problem(stale, 400).await;

    let (ceremony, credential) = second_factor_answer(&app, &mut bob, &mfa_token, origin()).await;
    let response = second_factor_finish(&app, &mfa_token, &ceremony, &credential).await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.expect("tokens");
    assert_eq!(claims(&tokens.access_token)["auth_method"], "passkey");
    let me = json_of(
        app.get_with_token("/api/v1/auth/me", &tokens.access_token)
            .await,
    )
    .await;
    assert_eq!(me["email"], bob.email);
    let accepted: Vec<Value> = app
        .audit_events("passkey.sign_in")
        .into_iter()
        .filter(|(outcome, _, _)| outcome == "success")
        .map(|(_, _, details)| serde_json::from_str(&details).expect("details"))
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["step"], "second_factor");

    // The challenge is spent, for a code as for a passkey.
    let code = app
        .post_json(
            "/api/v1/auth/mfa/verify-login",
            &json!({"mfa_token": mfa_token, "code": enrolled.code(&app)}),
        )
        .await;
    problem(code, 401).await;
    problem(second_factor_options(&app, &mfa_token).await, 401).await;
}

#[actix_web::test]
async fn a_refused_passkey_answer_counts_like_a_wrong_code_and_spends_nothing() {
    let app = passkey_app(&[("SOFTLOCK_STEPS", "2:60")]).await;
    let (enrolled, mut bob) = mfa_holder(&app, "bob@example.org").await;
    let mfa_token = crate::mfa::challenge(&app, &bob.email).await;
    let elsewhere = Url::parse("http://localhost:9999").expect("url");
    let (ceremony, credential) = second_factor_answer(&app, &mut bob, &mfa_token, elsewhere).await;
    let refused = second_factor_finish(&app, &mfa_token, &ceremony, &credential).await;
    assert_eq!(
        problem(refused, 401).await["detail"],
        "Passkey sign-in failed"
    );
    assert_eq!(sign_in_failures(&app), vec!["wrong_origin"]);
    // Not spent: the right code still answers the same challenge.
    app.clock.advance(30);
    let code = app
        .post_json(
            "/api/v1/auth/mfa/verify-login",
            &json!({"mfa_token": mfa_token, "code": enrolled.code(&app)}),
        )
        .await;
    assert_eq!(code.status(), 200);

    // Refusals count toward the softlock, which then refuses the right passkey.
    let mfa_token = crate::mfa::challenge(&app, &bob.email).await;
    let before_the_lock = crate::mfa::challenge(&app, &bob.email).await;
    for _ in 0..2 {
        let elsewhere = Url::parse("http://localhost:9999").expect("url");
        let (ceremony, credential) =
            second_factor_answer(&app, &mut bob, &mfa_token, elsewhere).await;
        problem(
            second_factor_finish(&app, &mfa_token, &ceremony, &credential).await,
            401,
        )
        .await;
    }
    assert_eq!(app.audit_events("auth.account_locked").len(), 1);
    // Softlocked: no options (they would name the account's passkeys), and a
    // ceremony started before the lock is refused at its finish.
    problem(second_factor_options(&app, &before_the_lock).await, 401).await;
    app.clock.advance(61);
    let (ceremony, credential) = second_factor_answer(&app, &mut bob, &mfa_token, origin()).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE users SET status = 'locked' WHERE email = 'bob@example.org'",
        [],
    )
    .expect("lock");
    problem(
        second_factor_finish(&app, &mfa_token, &ceremony, &credential).await,
        401,
    )
    .await;
}

#[actix_web::test]
async fn an_account_without_a_passkey_answers_its_challenge_with_a_code() {
    let app = passkey_app(&[]).await;
    crate::mfa::enrolled(&app, "carol@example.org").await;
    let mfa_token = crate::mfa::challenge(&app, "carol@example.org").await;
    problem(second_factor_options(&app, &mfa_token).await, 409).await;
    problem(second_factor_options(&app, "not a token").await, 401).await;
}

#[actix_web::test]
async fn deleting_a_passkey_ends_every_session_it_signed_in() {
    let app = passkey_app(&[]).await;
    let mut alice = holder(&app, "alice@example.org").await;
    register(&app, &mut alice, None).await;
    let response = sign_in(&app, &mut alice, origin()).await;
    let by_passkey: Tokens = response.json().await.expect("tokens");
    // A password change on the passkey's session keeps it the passkey's.
    let changed = app
        .post_with_token(
            "/api/v1/auth/password",
            &by_passkey.access_token,
            Some(&json!({"current_password": GOOD_PASSWORD,
                         "new_password": "another long secret phrase 77"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let after_change: Tokens = changed.json().await.expect("tokens");
    let by_password: Tokens = app
        .login(&alice.email, "another long secret phrase 77")
        .await
        .json()
        .await
        .expect("tokens");

    let deleted = app
        .client
        .delete(app.url(&format!("{PASSKEYS}/{}", alice.passkey_id)))
        .bearer_auth(&by_password.access_token)
        .json(&json!({"password": "another long secret phrase 77"}))
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), 204);
    problem(
        app.get_with_token("/api/v1/auth/me", &after_change.access_token)
            .await,
        401,
    )
    .await;
    problem(app.refresh(&after_change.refresh_token).await, 401).await;
    let me = app
        .get_with_token("/api/v1/auth/me", &by_password.access_token)
        .await;
    assert_eq!(me.status(), 200, "the password's session lives on");
    let deleted = app.audit_events("passkey.deleted");
    let details: Value = serde_json::from_str(&deleted[0].2).expect("details");
    assert_eq!(details["sessions_ended"], 1);
}

#[actix_web::test]
async fn without_a_relying_party_passkeys_are_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), &[]);
    assert!(settings.webauthn.is_none(), "no PUBLIC_URL, no passkeys");
    let app = spawn_with(settings, dir, reqwest::Client::new(), Clock::system()).await;
    let tokens = app.signed_up("alice@example.org").await;
    problem(
        app.client
            .post(app.url(LOGIN_START))
            .send()
            .await
            .expect("request"),
        404,
    )
    .await;
    let start = app
        .post_with_token(
            REGISTER_START,
            &tokens.access_token,
            Some(&json!({"password": GOOD_PASSWORD})),
        )
        .await;
    problem(start, 404).await;
    let listed = json_of(app.get_with_token(PASSKEYS, &tokens.access_token).await).await;
    assert_eq!(listed, json!([]));
}

/// The admin account page's passkeys: listed with their times, renamed, and
/// deleted after a confirmation that asks for the password; the script's
/// registration endpoint needs the CSRF token and the password again. The pages
/// with a ceremony allow this server's own scripts, and only those pages.
#[actix_web::test]
async fn the_admin_account_page_manages_passkeys_behind_csrf_and_the_password() {
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
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .expect("client");
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    let app = spawn_with(settings, dir, client, clock).await;
    let email = "root@example.org";
    let mut admin = admin_holder(&app, email).await;
    let token = admin.tokens.access_token.clone();
    register(&app, &mut admin, Some("Laptop")).await;
    let signed_in = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("email", email), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.url().path(), "/admin");

    // Only the ceremony pages run a script, and only this server's own.
    let csp = |response: &reqwest::Response| {
        response.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .to_owned()
    };
    let dashboard = app.get("/admin").await;
    assert!(csp(&dashboard).contains("script-src 'none'"));
    let account = app.get("/admin/account").await;
    let policy = csp(&account);
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = account.text().await.expect("html");
    assert!(html.contains(r#"value="Laptop""#), "{html}");
    assert!(html.contains("never"));
    assert!(html.contains(r#"<script src="/static/passkeys.js" defer></script>"#));
    let csrf = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_owned();
    let script = app.get("/static/passkeys.js").await;
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/javascript"))
    );

    // Starting a registration: the CSRF token, then the password again.
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        app.client.post(app.url(path)).form(&fields).send()
    };
    let no_csrf = post(
        "/admin/account/passkeys/start",
        vec![("password", GOOD_PASSWORD.to_owned())],
    )
    .await
    .expect("post");
    assert_eq!(no_csrf.status(), 403);
    let wrong = post(
        "/admin/account/passkeys/start",
        vec![("csrf", csrf.clone()), ("password", "not it".to_owned())],
    )
    .await
    .expect("post");
    assert_eq!(wrong.status(), 422);
    assert_eq!(
        problem(wrong, 422).await["type"],
        "urn:portcullis:problem:validation"
    );
    let started = post(
        "/admin/account/passkeys/start",
        vec![
            ("csrf", csrf.clone()),
            ("password", GOOD_PASSWORD.to_owned()),
        ],
    )
    .await
    .expect("post");
    assert_eq!(started.status(), 200);
    let started = json_of(started).await;
    assert!(started["ceremony"].is_string());
    assert_eq!(
        started["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );

    // Renaming.
    let id = admin.passkey_id.clone();
    let renamed = post(
        "/admin/account",
        vec![
            ("csrf", csrf.clone()),
            ("op", "passkey_rename".to_owned()),
            ("passkey", id.clone()),
            ("name", "Work laptop".to_owned()),
        ],
    )
    .await
    .expect("post")
    .text()
    .await
    .expect("html");
    assert!(
        renamed.contains("Renamed the passkey to “Work laptop”."),
        "{renamed}"
    );

    // Deleting asks first, with the password on the question's page.
    let delete = |confirm: bool, password: &str| {
        let mut fields = vec![
            ("csrf", csrf.clone()),
            ("op", "passkey_delete".to_owned()),
            ("passkey", id.clone()),
        ];
        if confirm {
            fields.push(("confirm", "yes".to_owned()));
            fields.push(("password", password.to_owned()));
        }
        post("/admin/account", fields)
    };
    let asked = delete(false, "")
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    assert!(
        asked.contains("Delete the passkey “Work laptop”?"),
        "{asked}"
    );
    assert!(asked.contains(r#"name="password" type="password""#));
    let refused = delete(true, "not it")
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    assert!(refused.contains("was not deleted"), "{refused}");
    let deleted = delete(true, GOOD_PASSWORD)
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    assert!(
        deleted.contains("Deleted the passkey “Work laptop”."),
        "{deleted}"
    );
    let listed = json_of(app.get_with_token(PASSKEYS, &token).await).await;
    assert_eq!(listed, json!([]));
}

/// A proof of the password made before MFA was turned on is no proof afterwards:
/// registering a passkey (a way in that skips the code) then needs the code too.
#[actix_web::test]
async fn a_proof_from_before_mfa_was_on_registers_no_passkey() {
    let app = passkey_app(&[]).await;
    // Setting MFA up proved the password on this session, minutes ago at most.
    let enrolled = crate::mfa::enrolled(&app, "proved@example.org").await;
    problem(
        app.post_with_token(REGISTER_START, &enrolled.access_token, Some(&json!({})))
            .await,
        403,
    )
    .await;
    // The next step's code: the one that turned MFA on is spent.
    assert!(app.clock.advance(30));
    let with_code = app
        .post_with_token(
            REGISTER_START,
            &enrolled.access_token,
            Some(&json!({"password": GOOD_PASSWORD, "code": enrolled.code(&app)})),
        )
        .await;
    assert_eq!(with_code.status(), 200);
}
