//! The handoff: a portal sign-in carried to app hosts the portal's cookie does not
//! reach (no `GATE_COOKIE_DOMAIN`). Asked directly as the proxy and the browser
//! would; `gate_proxies` runs it behind the real proxies and `browser` in Chromium.
//! The attacks tried: a code without its browser's state (login CSRF), at another
//! host, late, twice; a start that would return elsewhere; a proxy that asks the
//! gate about the handoff's path.

use reqwest::Response;

use crate::gate::{
    BROWSER, PORTAL, ask, csrf_of, gate_vars, no_redirects, pair, query_value, request_parts,
    set_cookie,
};
use crate::helpers::GOOD_PASSWORD;
use portcullis::clock::Clock;

use crate::helpers::{TestApp, spawn_with, test_settings};

const STATE: &str = "portcullis_gate_handoff";

/// The gate with its portal at auth.gate.test and no cookie domain, and these
/// extra settings.
pub async fn handoff_app(extra: &[(&str, &str)]) -> TestApp {
    let vars: Vec<(&str, String)> = gate_vars("127.0.0.1")
        .into_iter()
        .filter(|(name, _)| *name != "GATE_COOKIE_DOMAIN")
        .collect();
    let mut pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(extra);
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), &pairs);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    let app = spawn_with(settings, dir, reqwest::Client::new(), clock).await;
    let admin = app.admin_token("admin@example.com").await;
    crate::gate::route_policy(
        &app,
        &admin,
        serde_json::json!({"name": "Signed-in users use the apps", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
    )
    .await;
    app
}

fn location(response: &Response) -> String {
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

/// A browser's request to `url` (its host as the `Host` header), which the proxy
/// hands to Portcullis: the handoff's path.
async fn visit(app: &TestApp, url: &str, cookie: Option<&str>) -> Response {
    let (_, host, target) = request_parts(url);
    let mut request = no_redirects()
        .get(app.url(&target))
        .header("Host", host)
        .header("Accept", BROWSER.1);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.expect("request failed")
}

/// The first leg on `url`'s host: the state cookie, and the portal's sign-in URL.
async fn start(app: &TestApp, url: &str) -> (String, String) {
    let response = ask(app, "GET", url, &[BROWSER]).await;
    assert_eq!(response.status(), 302);
    let handoff = location(&response);
    let response = visit(app, &handoff, None).await;
    assert_eq!(response.status(), 302, "{handoff}");
    let state = pair(&set_cookie(&response, STATE).expect("state cookie"));
    (state, location(&response))
}

/// Signs in at the portal (whose cookie is host-only here); the cookie and where
/// the portal sent the browser.
async fn portal_sign_in(app: &TestApp, email: &str, rd: &str) -> (String, String) {
    let response = no_redirects()
        .post(app.url("/gate/login"))
        .form(&[("email", email), ("password", GOOD_PASSWORD), ("rd", rd)])
        .send()
        .await
        .expect("request failed");
    assert_eq!(response.status(), 303);
    let set = set_cookie(&response, "portcullis_gate").expect("session cookie");
    assert!(!set.contains("Domain"), "{set}");
    (pair(&set), location(&response))
}

/// A signed-in browser's visit to a portal URL (the test client reaches the portal
/// at the app's address).
async fn at_the_portal(app: &TestApp, url: &str, cookie: &str) -> Response {
    assert!(url.starts_with(&format!("{PORTAL}/")), "{url}");
    let (_, _, target) = request_parts(url);
    no_redirects()
        .get(app.url(&target))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("portal")
}

/// Signs in at the portal for a started handoff; the code's URL and the portal's
/// session cookie.
async fn sign_in_for(app: &TestApp, email: &str, login: &str) -> (String, String) {
    let (cookie, to) = portal_sign_in(app, email, &query_value(login, "rd")).await;
    (to, cookie)
}

#[actix_web::test]
async fn one_portal_sign_in_reaches_every_app_host_and_one_sign_out_closes_them() {
    let app = handoff_app(&[]).await;
    app.signed_up("user@example.com").await;

    // Signed out on an app host the portal's cookie does not reach: the host's own
    // handoff, not the portal. The portal's own host goes straight to the portal.
    let response = ask(&app, "GET", "http://app.gate.test/reports?q=1", &[BROWSER]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "http://app.gate.test/.portcullis/handoff?rd=http%3A%2F%2Fapp.gate.test%2Freports%3Fq%3D1"
    );
    let response = ask(&app, "GET", "http://auth.gate.test/x", &[BROWSER]).await;
    assert!(location(&response).starts_with(&format!("{PORTAL}/gate/login?rd=")));
    // nginx's door says the same in its 401.
    let response = no_redirects()
        .get(app.url("/api/v1/gate/auth-request"))
        .header("X-Original-URL", "http://app.gate.test/reports")
        .header("X-Original-Method", "GET")
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert!(location(&response).starts_with("http://app.gate.test/.portcullis/handoff?rd="));

    // The first leg: a state cookie no app receives, and on to the portal.
    let handoff =
        "http://app.gate.test/.portcullis/handoff?rd=http%3A%2F%2Fapp.gate.test%2Freports%3Fq%3D1";
    let response = visit(&app, handoff, None).await;
    assert_eq!(response.status(), 302);
    let set = set_cookie(&response, STATE).expect("state cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/.portcullis/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let state = pair(&set);
    let login = location(&response);
    assert!(
        login.starts_with(&format!("{PORTAL}/gate/login?rd=")),
        "{login}"
    );
    let back = query_value(&login, "rd");
    assert!(back.starts_with("http://app.gate.test/.portcullis/handoff?state="));

    // Signed in at the portal: back to the host with a code, then the host's own
    // session, and on to where the visit began.
    let (to, portal_cookie) = sign_in_for(&app, "user@example.com", &login).await;
    assert!(
        to.starts_with("http://app.gate.test/.portcullis/handoff?code="),
        "{to}"
    );
    let response = visit(&app, &to, Some(&state)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "http://app.gate.test/reports?q=1");
    let set = set_cookie(&response, "portcullis_gate").expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Domain"), "{set}");
    assert!(
        set_cookie(&response, STATE).is_some_and(|s| s.contains("Max-Age=0")),
        "the state is spent"
    );
    let app_cookie = pair(&set);
    assert_ne!(app_cookie, portal_cookie, "a session of the host's own");
    let through = ask(
        &app,
        "GET",
        "http://app.gate.test/reports?q=1",
        &[("Cookie", &app_cookie), BROWSER],
    )
    .await;
    assert_eq!(through.status(), 200);
    assert_eq!(through.headers()["remote-email"], "user@example.com");
    assert_eq!(app.audit_events("gate.handed_off").len(), 1);

    // Another host: the portal already knows the browser, so no password.
    let (state, login) = start(&app, "http://other.gate.test/").await;
    let response = at_the_portal(&app, &login, &portal_cookie).await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    assert!(to.starts_with("http://other.gate.test/.portcullis/handoff?code="));
    let response = visit(&app, &to, Some(&state)).await;
    assert_eq!(response.status(), 302);
    let other_cookie = pair(&set_cookie(&response, "portcullis_gate").expect("cookie"));
    assert_eq!(
        ask(
            &app,
            "GET",
            "http://other.gate.test/",
            &[("Cookie", &other_cookie)]
        )
        .await
        .status(),
        200
    );
    // Each host's session rides on the portal's account session, so the portal's
    // sign-out ends them all.
    let home = no_redirects()
        .get(app.url("/gate/"))
        .header("Cookie", &portal_cookie)
        .send()
        .await
        .expect("home");
    let csrf = csrf_of(&home.text().await.expect("page"));
    let out = no_redirects()
        .post(app.url("/gate/logout"))
        .header("Cookie", &portal_cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    for (host, cookie) in [
        ("http://app.gate.test/", &app_cookie),
        ("http://other.gate.test/", &other_cookie),
    ] {
        assert_eq!(
            ask(&app, "GET", host, &[("Cookie", cookie), BROWSER])
                .await
                .status(),
            302,
            "{host} is closed again"
        );
    }
}

/// Signs `email` in at the portal for a handoff whose state the caller chose, as
/// an attacker can for their own account; the code's URL.
async fn code_for(app: &TestApp, email: &str, state_pair: &str) -> String {
    let state = state_pair.split_once('=').expect("pair").1;
    let back = format!(
        "http://app.gate.test/.portcullis/handoff?state={state}&rd=http%3A%2F%2Fapp.gate.test%2F"
    );
    let (_, to) = portal_sign_in(app, email, &back).await;
    assert!(to.contains("/.portcullis/handoff?code="), "{to}");
    to
}

fn refused_without_a_session(response: &Response) {
    assert_eq!(response.status(), 400);
    assert!(set_cookie(response, "portcullis_gate").is_none());
}

#[actix_web::test]
async fn a_code_works_once_within_a_minute_on_its_host_for_the_browser_that_started_it() {
    let app = handoff_app(&[]).await;
    app.signed_up("attacker@example.com").await;
    let (attacker_state, _) = start(&app, "http://app.gate.test/").await;
    let (victim_state, _) = start(&app, "http://app.gate.test/").await;
    assert_ne!(attacker_state, victim_state);

    // Login CSRF: the attacker's code, opened in the victim's browser (which holds
    // its own state, or none) signs it in as nobody — and the code is burned.
    let code = code_for(&app, "attacker@example.com", &attacker_state).await;
    refused_without_a_session(&visit(&app, &code, Some(&victim_state)).await);
    refused_without_a_session(&visit(&app, &code, Some(&attacker_state)).await);
    let code = code_for(&app, "attacker@example.com", &attacker_state).await;
    refused_without_a_session(&visit(&app, &code, None).await);
    let page = visit(&app, &code, Some(&attacker_state)).await;
    refused_without_a_session(&page);
    let page = page.text().await.expect("page");
    assert!(page.contains("could not be carried over"), "{page}");

    // Another host than the one it was minted for, even with the right state.
    let code = code_for(&app, "attacker@example.com", &attacker_state).await;
    let elsewhere = code.replace("app.gate.test", "other.gate.test");
    refused_without_a_session(&visit(&app, &elsewhere, Some(&attacker_state)).await);

    // Late.
    let code = code_for(&app, "attacker@example.com", &attacker_state).await;
    app.clock.advance(61);
    refused_without_a_session(&visit(&app, &code, Some(&attacker_state)).await);

    // Once.
    let code = code_for(&app, "attacker@example.com", &attacker_state).await;
    let first = visit(&app, &code, Some(&attacker_state)).await;
    assert_eq!(first.status(), 302);
    assert!(set_cookie(&first, "portcullis_gate").is_some());
    refused_without_a_session(&visit(&app, &code, Some(&attacker_state)).await);
}

#[actix_web::test]
async fn a_handoff_starts_only_for_a_safe_return_on_its_own_host() {
    let app = handoff_app(&[]).await;
    for rd in [
        // Another gate host than the one asked.
        "http://other.gate.test/",
        // Not a gate host, or not a safe return at all.
        "http://evil.test/",
        "https://app.gate.test.evil.test/",
        "//evil.test/",
        "javascript:alert(1)",
        "",
    ] {
        let url = format!(
            "http://app.gate.test/.portcullis/handoff?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        let response = visit(&app, &url, None).await;
        assert_eq!(response.status(), 400, "{rd}");
        assert!(set_cookie(&response, STATE).is_none(), "{rd}");
    }
    // A portal return that names a handoff whose end is on another host is an
    // ordinary return, and its code-less visit starts nothing.
    app.signed_up("user@example.com").await;
    let (_, to) = portal_sign_in(
        &app,
        "user@example.com",
        "http://app.gate.test/.portcullis/handoff?state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&rd=http%3A%2F%2Fother.gate.test%2F",
    )
    .await;
    assert!(!to.contains("code="), "{to}");
    assert_eq!(visit(&app, &to, None).await.status(), 400);
}

#[actix_web::test]
async fn the_gate_refuses_to_judge_its_own_paths() {
    let app = handoff_app(&[]).await;
    let tokens = app.signed_up("user@example.com").await;
    let bearer = format!("Bearer {}", tokens.access_token);
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
    // A proxy that asks about the handoff would pass it (and its code) to the app.
    for path in [
        "/.portcullis/handoff?code=x",
        "/.PORTCULLIS/handoff",
        "/.portcullis/",
        "/.portcullis/anything",
    ] {
        let response = ask(
            &app,
            "GET",
            &format!("http://app.gate.test{path}"),
            &[("Authorization", &bearer)],
        )
        .await;
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[actix_web::test]
async fn a_handed_off_session_ends_when_the_portal_session_would() {
    let app = handoff_app(&[
        ("GATE_SESSION_MAX_HOURS", "1"),
        ("GATE_SESSION_IDLE_MINUTES", "60"),
    ])
    .await;
    app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    // Half an hour later, the portal's sign-in is carried to an app host.
    app.clock.advance(30 * 60);
    let (state, login) = start(&app, "http://app.gate.test/").await;
    let response = at_the_portal(&app, &login, &cookie).await;
    assert_eq!(response.status(), 303);
    let response = visit(&app, &location(&response), Some(&state)).await;
    let app_cookie = pair(&set_cookie(&response, "portcullis_gate").expect("cookie"));
    let max_age: i64 = set_cookie(&response, "portcullis_gate")
        .and_then(|s| {
            s.split("Max-Age=")
                .nth(1)
                .and_then(|rest| rest.split(';').next().map(str::to_owned))
        })
        .and_then(|n| n.parse().ok())
        .expect("max-age");
    assert_eq!(max_age, 30 * 60, "the cookie lasts as long as the portal's");
    app.clock.advance(20 * 60);
    let ok = ask(
        &app,
        "GET",
        "http://app.gate.test/",
        &[("Cookie", &app_cookie)],
    )
    .await;
    assert_eq!(ok.status(), 200);
    // Past the portal session's absolute limit (not the new one's idle limit).
    app.clock.advance(20 * 60);
    let gone = ask(
        &app,
        "GET",
        "http://app.gate.test/",
        &[("Cookie", &app_cookie)],
    )
    .await;
    assert_eq!(gone.status(), 401);
}

/// A URL the portal's sign-in returns to that asks for a handoff to `origin`,
/// with a state the caller chose.
fn handoff_return(origin: &str, state_pair: &str) -> String {
    let state = state_pair.split_once('=').expect("pair").1;
    let rd: String =
        url::form_urlencoded::byte_serialize(format!("{origin}/").as_bytes()).collect();
    format!("{origin}/.portcullis/handoff?state={state}&rd={rd}")
}

#[actix_web::test]
async fn a_stolen_code_opens_only_the_host_it_was_minted_for() {
    let app = handoff_app(&[]).await;
    app.signed_up("victim@example.com").await;
    let (victim, _) = portal_sign_in(&app, "victim@example.com", "").await;
    // The attacker's own state, and a link that has the victim's portal mint a
    // code for a gate host whose traffic the attacker sees (one the proxy does not
    // serve, say). Opened by the signed-in victim, it needs no click more.
    let (attacker_state, _) = start(&app, "http://app.gate.test/").await;
    let watched = "http://watched.gate.test";
    let link = format!(
        "{PORTAL}/gate/login?rd={}",
        url::form_urlencoded::byte_serialize(handoff_return(watched, &attacker_state).as_bytes())
            .collect::<String>()
    );
    let response = at_the_portal(&app, &link, &victim).await;
    assert_eq!(response.status(), 303);
    let code = location(&response);
    assert!(code.starts_with(&format!("{watched}/.portcullis/handoff?code=")));
    // Redeemed there with the attacker's state: a session of that host alone.
    let response = visit(&app, &code, Some(&attacker_state)).await;
    assert_eq!(response.status(), 302);
    let stolen = pair(&set_cookie(&response, "portcullis_gate").expect("cookie"));
    assert_eq!(
        ask(&app, "GET", &format!("{watched}/"), &[("Cookie", &stolen)])
            .await
            .status(),
        200
    );
    for elsewhere in [
        "http://app.gate.test/",
        "http://watched.gate.test:8080/",
        "http://auth.gate.test/",
    ] {
        assert_eq!(
            ask(&app, "GET", elsewhere, &[("Cookie", &stolen), BROWSER])
                .await
                .status(),
            302,
            "{elsewhere}: a handed-off session is its host's alone"
        );
    }
    // Nor is it anyone at the portal.
    let home = at_the_portal(&app, &format!("{PORTAL}/gate/"), &stolen).await;
    assert_ne!(home.status(), 200);
}

#[actix_web::test]
async fn the_portal_mints_no_code_for_its_own_host_or_a_head_request() {
    let app = handoff_app(&[]).await;
    app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    let (state, _) = start(&app, "http://app.gate.test/").await;
    // The portal's own host: its cookie is there already, so straight on.
    let own = format!(
        "{PORTAL}/gate/login?rd={}",
        url::form_urlencoded::byte_serialize(handoff_return(PORTAL, &state).as_bytes())
            .collect::<String>()
    );
    let response = at_the_portal(&app, &own, &cookie).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{PORTAL}/"));
    // A HEAD (no browser follows one) mints nothing.
    let app_host = format!(
        "/gate/login?rd={}",
        url::form_urlencoded::byte_serialize(
            handoff_return("http://app.gate.test", &state).as_bytes()
        )
        .collect::<String>()
    );
    let response = no_redirects()
        .head(app.url(&app_host))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("head");
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{PORTAL}/gate/"));
}

#[actix_web::test]
async fn a_handed_off_cookie_cannot_end_the_sessions_it_rides_on_elsewhere() {
    let app = handoff_app(&[]).await;
    app.signed_up("user@example.com").await;
    let (portal_cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    let (state, login) = start(&app, "http://app.gate.test/").await;
    let response = at_the_portal(&app, &login, &portal_cookie).await;
    let response = visit(&app, &location(&response), Some(&state)).await;
    let app_cookie = pair(&set_cookie(&response, "portcullis_gate").expect("cookie"));
    // Whoever holds the app host's cookie posts it to the portal's sign-in, which
    // ends a previous portal session: not this one, nor the account session under it.
    let response = no_redirects()
        .post(app.url("/gate/login"))
        .header("Cookie", &app_cookie)
        .form(&[
            ("email", "user@example.com"),
            ("password", "wrong"),
            ("rd", ""),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    assert_eq!(
        at_the_portal(&app, &format!("{PORTAL}/gate/"), &portal_cookie)
            .await
            .status(),
        200
    );
    assert_eq!(
        ask(
            &app,
            "GET",
            "http://app.gate.test/",
            &[("Cookie", &app_cookie)]
        )
        .await
        .status(),
        200
    );
}

#[actix_web::test]
async fn one_portal_session_mints_a_bounded_number_of_codes_a_minute() {
    let app = handoff_app(&[]).await;
    app.signed_up("user@example.com").await;
    let (cookie, _) = portal_sign_in(&app, "user@example.com", "").await;
    let (_, login) = start(&app, "http://app.gate.test/").await;
    for _ in 0..20 {
        let response = at_the_portal(&app, &login, &cookie).await;
        assert!(location(&response).contains("/.portcullis/handoff?code="));
    }
    // Past twenty within a code's minute: the portal's own page, no code.
    let response = at_the_portal(&app, &login, &cookie).await;
    assert_eq!(location(&response), format!("{PORTAL}/gate/"));
    // A minute on, codes again.
    app.clock.advance(61);
    let response = at_the_portal(&app, &login, &cookie).await;
    let code = location(&response);
    assert!(code.contains("/.portcullis/handoff?code="));
}
