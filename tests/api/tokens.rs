//! Forged, expired, mistyped and misused tokens against a real server.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use portcullis::auth::tokens::key_id;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

/// The claims of a real token of `app`'s, as JSON, for tampering.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// Signs `claims` the way an attacker who knows (or guesses) `secret` would.
fn sign(claims: &Value, secret: &SecretString, alg: Algorithm) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(key_id(secret));
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .expect("encode")
}

async fn assert_rejected(app: &TestApp, token: &str, what: &str) {
    let response = app.get_with_token("/api/v1/auth/me", token).await;
    assert_eq!(response.status(), 401, "{what} was accepted");
    problem(response, 401).await;
}

async fn user_with_token(app: &TestApp) -> (String, Value) {
    let tokens = app.signed_up("token.tester@example.org").await;
    let claims = claims_of(&tokens.access_token);
    (tokens.access_token, claims)
}

#[actix_web::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, claims) = user_with_token(&app).await;
    let secret = &app.settings.jwt.secret;
    let now = app.clock.now();
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 60);
    let response = app
        .get_with_token("/api/v1/auth/me", &sign(&expired, secret, Algorithm::HS256))
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token expired");

    let mut early = claims.clone();
    early["nbf"] = json!(now + 3600);
    early["exp"] = json!(now + 7200);
    assert_rejected(
        &app,
        &sign(&early, secret, Algorithm::HS256),
        "nbf in the future",
    )
    .await;

    // A correctly signed copy of the real claims still works: the forger is exact.
    assert_eq!(
        app.me_status(&sign(&claims, secret, Algorithm::HS256))
            .await,
        200
    );
}

#[actix_web::test]
async fn tampered_none_and_wrong_algorithm_tokens_are_refused() {
    let app = spawn_app().await;
    let (token, claims) = user_with_token(&app).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut admin = claims.clone();
    admin["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin.to_string()),
        parts[2]
    );
    assert_rejected(&app, &tampered, "tampered payload").await;

    let kid = key_id(&app.settings.jwt.secret);
    for alg in ["none", "None", "NONE"] {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_rejected(&app, &format!("{header}.{payload}."), alg).await;
        assert_rejected(&app, &format!("{header}.{payload}.{}", parts[2]), alg).await;
    }
    let hs512 = sign(&claims, &app.settings.jwt.secret, Algorithm::HS512);
    assert_rejected(&app, &hs512, "HS512 with the same secret").await;
    let other_key = SecretString::from("Zq8Xw2Vb7Nm4Lk9Jh3Gf6Ds1Ap5Oi0Uy7Tr");
    assert_rejected(
        &app,
        &sign(&claims, &other_key, Algorithm::HS256),
        "another key",
    )
    .await;
    // Correctly signed, but padded past 4 KiB: refused before parsing.
    let mut padded = claims.clone();
    padded["pad"] = json!("x".repeat(4200));
    assert_rejected(
        &app,
        &sign(&padded, &app.settings.jwt.secret, Algorithm::HS256),
        "oversized",
    )
    .await;
    let mut fits = claims.clone();
    fits["pad"] = json!("x".repeat(2000));
    assert_eq!(
        app.me_status(&sign(&fits, &app.settings.jwt.secret, Algorithm::HS256))
            .await,
        200
    );
}

#[actix_web::test]
async fn missing_or_wrong_claims_are_refused() {
    let app = spawn_app().await;
    let (_, claims) = user_with_token(&app).await;
    let secret = &app.settings.jwt.secret;
    for missing in [
        "exp", "jti", "sub", "sid", "iat", "nbf", "iss", "aud", "typ", "role",
    ] {
        let mut forged = claims.clone();
        forged.as_object_mut().expect("object").remove(missing);
        assert_rejected(&app, &sign(&forged, secret, Algorithm::HS256), missing).await;
    }
    for (claim, value) in [
        ("iss", json!("https://evil.example.com")),
        ("aud", json!("some-other-api")),
        ("typ", json!("refresh")),
        ("typ", json!("mfa")),
        ("auth_method", json!("magic")),
    ] {
        let mut forged = claims.clone();
        forged[claim] = value;
        assert_rejected(&app, &sign(&forged, secret, Algorithm::HS256), claim).await;
    }
}

#[actix_web::test]
async fn a_refresh_token_is_not_a_bearer_token_and_vice_versa() {
    let app = spawn_app().await;
    let tokens = app.signed_up("swap@example.org").await;
    assert_rejected(&app, &tokens.refresh_token, "refresh token as bearer").await;
    problem(app.refresh(&tokens.access_token).await, 401).await;
}

#[actix_web::test]
async fn a_previous_key_verifies_only_while_listed() {
    let old_key = "Pv9Qw3Er8Ty2Ui7Op1As6Df4Gh0Jk5Lz3Xc";
    let old = SecretString::from(old_key);
    let rotating = spawn_app_with(&[("JWT_PREVIOUS_SECRET_KEYS", old_key)]).await;
    let (_, claims) = user_with_token(&rotating).await;
    let old_token = sign(&claims, &old, Algorithm::HS256);
    assert_eq!(
        rotating.me_status(&old_token).await,
        200,
        "listed previous key verifies"
    );
    // New tokens are always signed with the current key.
    let fresh = rotating
        .signed_in("token.tester@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(fresh.access_token.split('.').next().expect("header"))
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(header["kid"], key_id(&rotating.settings.jwt.secret));

    let finished = spawn_app().await;
    let (_, claims) = user_with_token(&finished).await;
    assert_rejected(
        &finished,
        &sign(&claims, &old, Algorithm::HS256),
        "unlisted previous key",
    )
    .await;
}

/// Signs a raw header and the claims with HS256, byte for byte as given.
fn sign_raw(header: &Value, claims: &Value, secret: &SecretString) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[actix_web::test]
async fn critical_headers_and_foreign_types_are_refused() {
    let app = spawn_app().await;
    let (_, claims) = user_with_token(&app).await;
    let secret = &app.settings.jwt.secret;
    let kid = key_id(secret);
    // The exact header, hand-signed, works: what follows differs only in one field.
    let plain = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    assert_eq!(app.me_status(&sign_raw(&plain, &claims, secret)).await, 200);
    let untyped = json!({"alg": "HS256", "kid": kid});
    assert_eq!(
        app.me_status(&sign_raw(&untyped, &claims, secret)).await,
        200
    );
    for (header, what) in [
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "crit": ["exp"]}),
            "an unknown critical header",
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "crit": []}),
            "an empty crit",
        ),
        (
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            "another typ",
        ),
        (
            json!({"alg": "HS256", "typ": 7, "kid": kid}),
            "a typ that is no string",
        ),
    ] {
        assert_rejected(&app, &sign_raw(&header, &claims, secret), what).await;
    }
}
