//! The gate, asked directly as a proxy would (the test client is the trusted
//! proxy at 127.0.0.1): who gets through, who is sent to sign in, who is refused,
//! and that nothing passes when a decision cannot be made. `gate_proxies` runs the
//! same contract behind real nginx and Caddy.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{GOOD_PASSWORD, TestApp, spawn_app_with};
use crate::mfa;

pub const PORTAL: &str = "http://auth.gate.test";

/// The gate's settings for an app whose proxy is at `proxies`.
pub fn gate_vars(proxies: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GATE_PORTAL_URL", PORTAL.to_owned()),
        ("GATE_HOSTS", "*.gate.test".to_owned()),
        ("GATE_COOKIE_DOMAIN", "gate.test".to_owned()),
        (
            "GATE_ASSERTION_KEY",
            portcullis::gate::assertion::generate_key().expect("key"),
        ),
        ("GATE_FORWARD_ATTRIBUTES", "department".to_owned()),
        ("TRUSTED_PROXIES", proxies.to_owned()),
    ]
}

async fn gate_app_at(proxies: &str) -> TestApp {
    let vars = gate_vars(proxies);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&pairs).await
}

pub async fn gate_app() -> TestApp {
    gate_app_at("127.0.0.1").await
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A URL's parts as a request carries them: the scheme, the host (with its port
/// when the URL names one) and the target (path and query).
pub fn request_parts(url: &str) -> (String, String, String) {
    let parsed = url::Url::parse(url).expect("url");
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().expect("host")),
        None => parsed.host_str().expect("host").to_owned(),
    };
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    (parsed.scheme().to_owned(), host, target)
}

/// The `Set-Cookie` a response sends for `name`, whole.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// A `Set-Cookie`'s `name=value`, as a `Cookie` header value.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

/// The value of query parameter `key` in `url`.
pub fn query_value(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {key}"))
}

/// Asks `forward-auth` about `method url`, with extra headers.
pub async fn ask(
    app: &TestApp,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let (scheme, host, uri) = request_parts(url);
    let mut request = no_redirects()
        .get(app.url("/api/v1/gate/forward-auth"))
        .header("X-Forwarded-Method", method)
        .header("X-Forwarded-Proto", scheme)
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", uri)
        .header("X-Forwarded-For", "203.0.113.7");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request failed")
}

pub const BROWSER: (&str, &str) = ("Accept", "text/html,application/xhtml+xml");

/// Creates a route policy as an administrator.
pub async fn route_policy(app: &TestApp, admin: &str, policy: Value) {
    let response = app
        .post_with_token("/api/v1/admin/policies", admin, Some(&policy))
        .await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// Signs in at the portal; returns the cookie header value and where it sent us.
pub async fn portal_sign_in(app: &TestApp, email: &str, rd: &str) -> (String, String) {
    let response = no_redirects()
        .post(app.url("/gate/login"))
        .form(&[("email", email), ("password", GOOD_PASSWORD), ("rd", rd)])
        .send()
        .await
        .expect("request failed");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    (session_cookie(&response), location)
}

/// The CSRF token of the portal's sign-out form on `page`.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_owned()
}

/// The `portcullis_gate` cookie a response sets, as a `Cookie` header value.
pub fn session_cookie(response: &reqwest::Response) -> String {
    let set = set_cookie(response, "portcullis_gate").expect("session cookie set");
    for attribute in ["HttpOnly", "SameSite=Lax", "Domain=gate.test", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    pair(&set)
}

#[actix_web::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_nothing_is_public_by_default() {
    let app = gate_app().await;
    let response = ask(&app, "GET", "http://app.gate.test/reports?q=1", &[BROWSER]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "http://auth.gate.test/gate/login?rd=http%3A%2F%2Fapp.gate.test%2Freports%3Fq%3D1"
    );
    // An API client is told how to authenticate instead.
    let response = ask(&app, "GET", "http://app.gate.test/reports", &[]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    // nginx's door: a 401 whose Location its config turns into the redirect.
    let response = no_redirects()
        .get(app.url("/api/v1/gate/auth-request"))
        .header("X-Original-URL", "http://app.gate.test/reports")
        .header("X-Original-Method", "GET")
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["location"]
            .to_str()
            .expect("location")
            .starts_with(
                "http://auth.gate.test/gate/login?rd=http%3A%2F%2Fapp.gate.test%2Freports"
            )
    );
    // Any method is asked about.
    let response = no_redirects()
        .post(app.url("/api/v1/gate/forward-auth"))
        .header("X-Forwarded-Method", "DELETE")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Host", "app.gate.test")
        .header("X-Forwarded-Uri", "/x")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
}

#[actix_web::test]
async fn a_public_policy_opens_one_path_to_everyone() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({
            "name": "Health checks are public",
            "effect": "allow",
            "resource_type": "route",
            "actions": ["get"],
            "principals": {"type": "public"},
            "conditions": {"attribute": "resource.attributes.path", "operator": "eq", "value": "/healthz"}
        }),
    )
    .await;
    let open = ask(&app, "GET", "http://app.gate.test/healthz", &[BROWSER]).await;
    assert_eq!(open.status(), 200);
    // Every identity header answered empty, so a proxy copying them overwrites
    // whatever the client sent.
    assert_eq!(open.headers()["remote-user"], "");
    assert_eq!(open.headers()["portcullis-assertion"], "");
    assert_eq!(
        ask(&app, "POST", "http://app.gate.test/healthz", &[BROWSER])
            .await
            .status(),
        302
    );
    assert_eq!(
        ask(&app, "GET", "http://app.gate.test/other", &[BROWSER])
            .await
            .status(),
        302
    );
    // An `everyone` policy is for signed-in accounts only.
    route_policy(
        &app,
        &admin,
        json!({
            "name": "Signed-in users read the wiki",
            "effect": "allow",
            "resource_type": "route",
            "actions": ["get"],
            "principals": {"type": "everyone"},
            "conditions": {"attribute": "resource.attributes.host", "operator": "eq", "value": "wiki.gate.test"}
        }),
    )
    .await;
    assert_eq!(
        ask(&app, "GET", "http://wiki.gate.test/", &[BROWSER])
            .await
            .status(),
        302
    );
}

async fn verified_assertion(app: &TestApp, token: &str, audience: &str) -> Value {
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("jwks");
    let header = decode_header(token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let key = DecodingKey::from_jwk(jwks.find(&header.kid.expect("kid")).expect("published"))
        .expect("key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[PORTAL]);
    decode::<Value>(token, &key, &validation)
        .expect("verifies")
        .claims
}

#[actix_web::test]
async fn a_bearer_token_is_allowed_with_identity_and_a_verifiable_assertion_until_revoked() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({
            "name": "Engineering uses the dashboard",
            "effect": "allow",
            "resource_type": "route",
            "actions": ["*"],
            "conditions": {"attribute": "subject.attributes.department", "operator": "eq", "value": "engineering"}
        }),
    )
    .await;
    let tokens = app
        .user_with(
            "eng@example.com",
            json!({"department": "engineering", "name": "Eng Ineer"}),
        )
        .await;
    let bearer = format!("Bearer {}", tokens.access_token);
    let response = ask(
        &app,
        "GET",
        "http://dash.gate.test:8443/panel?x=1",
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response.headers()[name]
            .to_str()
            .expect("header")
            .to_owned()
    };
    assert_eq!(header("remote-email"), "eng@example.com");
    assert_eq!(header("remote-role"), "user");
    assert_eq!(header("remote-name"), "Eng Ineer");
    assert_eq!(header("remote-attr-department"), "engineering");
    let claims = verified_assertion(&app, &header("portcullis-assertion"), "dash.gate.test").await;
    assert_eq!(claims["sub"], header("remote-user"));
    assert_eq!(claims["path"], "/panel");
    assert_eq!(claims["method"], "GET");
    assert_eq!(claims["attributes"]["department"], "engineering");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        60
    );
    // Someone else is refused, and the refusal is audited.
    let other = app.signed_up("sales@example.com").await;
    let response = ask(
        &app,
        "GET",
        "http://dash.gate.test/panel",
        &[("Authorization", &format!("Bearer {}", other.access_token))],
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let denied = app.audit_events("gate.denied");
    assert_eq!(denied.len(), 1);
    assert!(denied[0].2.contains("dash.gate.test"), "{denied:?}");
    // Logout kills the token here as everywhere.
    let response = app
        .post_with_token(
            "/api/v1/auth/logout",
            &tokens.access_token,
            Some(&json!({"refresh_token": tokens.refresh_token})),
        )
        .await;
    assert!(response.status().is_success());
    let response = ask(
        &app,
        "GET",
        "http://dash.gate.test/panel",
        &[("Authorization", &bearer), BROWSER],
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[actix_web::test]
async fn a_deny_policy_refuses_a_signed_in_browser_with_a_page_naming_the_account() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    for (name, effect, conditions) in [
        ("Everyone signed in uses the app", "allow", Value::Null),
        (
            "Nobody opens /admin of the app",
            "deny",
            json!({"attribute": "resource.attributes.path", "operator": "starts_with", "value": "/admin"}),
        ),
    ] {
        route_policy(
            &app,
            &admin,
            json!({"name": name, "effect": effect, "resource_type": "route", "actions": ["*"], "conditions": conditions}),
        )
        .await;
    }
    app.signed_up("user@example.com").await;
    let (cookie, location) =
        portal_sign_in(&app, "user@example.com", "http://app.gate.test/admin/x").await;
    assert_eq!(location, "http://app.gate.test/admin/x");
    let cookie_header = ("Cookie", cookie.as_str());
    assert_eq!(
        ask(
            &app,
            "GET",
            "http://app.gate.test/home",
            &[cookie_header, BROWSER]
        )
        .await
        .status(),
        200
    );
    let response = ask(
        &app,
        "GET",
        "http://app.gate.test/admin/x",
        &[cookie_header, BROWSER],
    )
    .await;
    assert_eq!(response.status(), 403);
    let page = response.text().await.expect("body");
    assert!(
        page.contains("user@example.com") && page.contains("Access refused"),
        "{page}"
    );
    // A repeat of the same refusal is counted, not audited again within the
    // minute (a reloading tab cannot flood the audit log); another path is.
    for path in ["/admin/x", "/admin/x", "/admin/y"] {
        let url = format!("http://app.gate.test{path}");
        let response = ask(&app, "GET", &url, &[cookie_header, BROWSER]).await;
        assert_eq!(response.status(), 403);
    }
    let denied = app.audit_events("gate.denied");
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(
        denied[1].1.as_deref() == Some("app.gate.test/admin/y"),
        "{denied:?}"
    );
}

#[actix_web::test]
async fn a_sign_out_the_database_cannot_record_still_closes_every_app() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({"name": "Everyone signed in uses the apps", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    let cookie_header = ("Cookie", cookie.as_str());
    let url = "http://app.gate.test/home";
    assert_eq!(ask(&app, "GET", url, &[cookie_header]).await.status(), 200);
    let page = no_redirects()
        .get(app.url("/gate/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("page");
    app.db.inject_write_errors(true);
    let out = no_redirects()
        .post(app.url("/gate/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .expect("logout");
    // Said, not hidden: the sign-out could not be recorded; the browser forgets
    // the cookie anyway, and the session is refused at once.
    assert!(out.status().is_server_error(), "{}", out.status());
    let forgotten = out
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("portcullis_gate=;") && v.contains("Max-Age=0"));
    assert!(forgotten, "{:?}", out.headers());
    assert_eq!(ask(&app, "GET", url, &[cookie_header]).await.status(), 401);
    app.db.inject_write_errors(false);
    assert_eq!(ask(&app, "GET", url, &[cookie_header]).await.status(), 401);
}

#[actix_web::test]
async fn the_portal_signs_in_with_totp_and_logout_ends_access_to_every_app() {
    let app = mfa::app_with(
        &gate_vars("127.0.0.1")
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({"name": "Signed-in users use every app", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    let enrolled = mfa::enrolled(&app, "mfa@example.com").await;
    let client = no_redirects();
    let response = client
        .post(app.url("/gate/login"))
        .form(&[
            ("email", "mfa@example.com"),
            ("password", GOOD_PASSWORD),
            ("rd", "http://one.gate.test/start"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with("/gate/login/code?rd="), "{location}");
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or("").starts_with("portcullis_gate=")),
        "no session before the code"
    );
    let pending = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis_gate_mfa="))
        .expect("pending cookie");
    // A pending sign-in's cookie stays on the portal's sign-in pages: no app
    // behind the gate receives it.
    assert!(
        pending.contains("Path=/gate/login") && !pending.contains("Domain="),
        "{pending}"
    );
    let pending = pending.split(';').next().expect("pair").to_owned();
    // The enrolment used this step's code; a code counts once.
    app.clock.advance(30);
    let response = client
        .post(app.url("/gate/login/code"))
        .header("Cookie", &pending)
        .form(&[
            ("code", enrolled.code(&app).as_str()),
            ("rd", "http://one.gate.test/start"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "http://one.gate.test/start");
    let cookie = session_cookie(&response);
    for app_host in ["http://one.gate.test/", "http://two.gate.test/"] {
        assert_eq!(
            ask(&app, "GET", app_host, &[("Cookie", &cookie), BROWSER])
                .await
                .status(),
            200
        );
    }
    // The portal page says who is signed in and carries the sign-out form.
    let home = client
        .get(app.url("/gate/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("home");
    assert_eq!(home.status(), 200);
    let page = home.text().await.expect("page");
    assert!(page.contains("mfa@example.com"));
    let csrf = csrf_of(&page);
    // Without the token, no sign-out.
    let refused = client
        .post(app.url("/gate/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    let out = client
        .post(app.url("/gate/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(out.status(), 303);
    for app_host in ["http://one.gate.test/", "http://two.gate.test/"] {
        assert_eq!(
            ask(&app, "GET", app_host, &[("Cookie", &cookie), BROWSER])
                .await
                .status(),
            302
        );
    }
}

#[actix_web::test]
async fn a_lock_or_logout_all_ends_the_portal_session() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({"name": "All", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    let tokens = app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    assert_eq!(
        ask(&app, "GET", "http://app.gate.test/", &[("Cookie", &cookie)])
            .await
            .status(),
        200
    );
    let response = app
        .post_with_token("/api/v1/auth/logout-all", &tokens.access_token, None)
        .await;
    assert!(response.status().is_success());
    assert_eq!(
        ask(
            &app,
            "GET",
            "http://app.gate.test/",
            &[("Cookie", &cookie), BROWSER]
        )
        .await
        .status(),
        302
    );
}

#[actix_web::test]
async fn only_trusted_proxies_may_ask_and_only_about_gate_hosts() {
    let app = gate_app_at("10.0.0.0/8").await;
    let response = ask(&app, "GET", "http://app.gate.test/", &[BROWSER]).await;
    assert_eq!(response.status(), 403);
    let app = gate_app().await;
    let response = ask(&app, "GET", "http://app.elsewhere.test/", &[BROWSER]).await;
    assert_eq!(response.status(), 403);
    // The original request must be named, and in the proxy's terms.
    let response = no_redirects()
        .get(app.url("/api/v1/gate/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Uri", "/")
        .send()
        .await
        .expect("request");
    let body = crate::helpers::problem(response, 422).await;
    assert_eq!(body["errors"][0]["field"], "X-Forwarded-Host", "{body}");
}

#[actix_web::test]
async fn an_unsafe_return_address_lands_on_the_portal() {
    let app = gate_app().await;
    app.signed_up("user@example.com").await;
    for rd in [
        "https://evil.test/",
        "//evil.test",
        "/\\evil.test",
        "javascript:alert(1)",
        "http://app.gate.test@evil.test/",
        "http%3A%2F%2Fevil.test",
    ] {
        let (_, location) = portal_sign_in(&app, "user@example.com", rd).await;
        assert_eq!(location, "http://auth.gate.test/gate/", "{rd}");
    }
}

#[actix_web::test]
async fn the_sign_in_page_names_where_it_continues_to_and_only_a_safe_place() {
    let app = gate_app().await;
    let page = |rd: &'static str| {
        let app = &app;
        async move {
            let url = format!(
                "/gate/login?rd={}",
                url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
            );
            app.get(&url).await.text().await.expect("page")
        }
    };
    let shown = page("http://wiki.gate.test:8443/pages?x=<b>").await;
    assert!(
        shown.contains("to continue to <strong>wiki.gate.test:8443</strong>"),
        "{shown}"
    );
    for unsafe_rd in ["https://evil.test/", "javascript:alert(1)", ""] {
        assert!(
            !page(unsafe_rd).await.contains("to continue to"),
            "{unsafe_rd}"
        );
    }
}

#[actix_web::test]
async fn a_policy_that_cannot_be_evaluated_or_a_store_that_cannot_answer_lets_nothing_through() {
    let app = gate_app().await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({"name": "All", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    route_policy(
        &app,
        &admin,
        json!({
            "name": "Juniors stay out",
            "effect": "deny",
            "resource_type": "route",
            "actions": ["*"],
            "conditions": {"attribute": "subject.attributes.level", "operator": "lt", "value": 3}
        }),
    )
    .await;
    let odd = app
        .user_with("odd@example.com", json!({"level": "senior"}))
        .await;
    let response = ask(
        &app,
        "GET",
        "http://app.gate.test/",
        &[("Authorization", &format!("Bearer {}", odd.access_token))],
    )
    .await;
    let body = crate::helpers::problem(response, 500).await;
    assert_eq!(
        body["detail"],
        "Access control evaluation failed. Please try again later."
    );
    // A portal session that only the database can vouch for, and a database that
    // cannot answer: 503, never a pass.
    app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    app.db.inject_read_errors(true);
    let response = ask(
        &app,
        "GET",
        "http://app.gate.test/",
        &[("Cookie", &cookie), BROWSER],
    )
    .await;
    app.db.inject_read_errors(false);
    assert_eq!(response.status(), 503);
}

#[actix_web::test]
async fn gate_decisions_are_rate_limited_per_user() {
    let mut vars = gate_vars("127.0.0.1");
    vars.push(("RATE_LIMIT_GATE_USER", "2/60".to_owned()));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&pairs).await;
    let admin = app.admin_token("admin@example.com").await;
    route_policy(
        &app,
        &admin,
        json!({"name": "All", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    let tokens = app.signed_up("user@example.com").await;
    let bearer = format!("Bearer {}", tokens.access_token);
    for _ in 0..2 {
        assert_eq!(
            ask(
                &app,
                "GET",
                "http://app.gate.test/",
                &[("Authorization", &bearer)]
            )
            .await
            .status(),
            200
        );
    }
    let response = ask(
        &app,
        "GET",
        "http://app.gate.test/",
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
}

#[actix_web::test]
async fn the_gate_is_off_without_a_portal() {
    let app = spawn_app_with(&[]).await;
    assert_eq!(app.get("/.well-known/jwks.json").await.status(), 404);
    assert_eq!(app.get("/api/v1/gate/forward-auth").await.status(), 404);
    assert_eq!(app.get("/gate/login").await.status(), 404);
}
