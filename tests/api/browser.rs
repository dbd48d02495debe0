//! A real browser on the admin pages: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test.sh` installs) drives the demo binary —
//! signs in, builds a policy with the condition builder, runs the simulator and
//! sees the decision — and saves a screenshot of each page under
//! `target/screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use portcullis::auth::mfa::TotpSecret;

use crate::helpers::ServerProcess;

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/test.sh installs chromium-driver)");
    // Generous: on a busy two-core machine the driver can take a while to start.
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

async fn browser_with(driver: &Driver, extra_args: &[&str]) -> Client {
    // The WebDriver client's TLS needs a process-wide provider; any one will do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1100",
    ];
    args.extend_from_slice(extra_args);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({"binary": "/usr/bin/chromium", "args": args}),
    );
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn type_into(c: &Client, selector: &str, text: &str) {
    let field = c
        .wait()
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(c: &Client, selector: &str) {
    c.wait()
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .expect("click");
}

async fn choose(c: &Client, selector: &str, value: &str) {
    c.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .select_by_value(value)
        .await
        .expect("select");
}

/// Waits (up to 30 s) for `selector`'s text to be `expected`, across page loads.
async fn wait_for_text(c: &Client, selector: &str, expected: &str) {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(element) = c.find(Locator::Css(selector)).await
            && let Ok(text) = element.text().await
        {
            if text == expected {
                return;
            }
            last = text;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{selector} shows {last:?}, not {expected:?}");
}

async fn text_of(c: &Client, selector: &str) -> String {
    c.wait()
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .expect("text")
}

#[actix_web::test]
async fn a_browser_signs_in_builds_a_policy_and_simulates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(
        dir.path(),
        &["demo", "--bind", "127.0.0.1:0", "--data-dir", "demo-data"],
        &[],
    );
    let admin_line = server
        .stdout()
        .into_iter()
        .find(|l| l.contains("admin@portcullis.test"))
        .expect("the demo prints the admin account");
    let password = admin_line
        .split_whitespace()
        .nth(2)
        .expect("the admin password")
        .to_owned();
    let base = server.address.clone();
    let driver = start_driver();
    let c = browser(&driver).await;

    // Sign in (the page shot at a phone's width too).
    c.goto(&format!("{base}/admin/login"))
        .await
        .expect("login page");
    c.set_window_size(390, 844).await.expect("window size");
    shoot(&c, "phone-login").await;
    c.set_window_size(1280, 1100).await.expect("window size");
    shoot(&c, "01-login").await;
    type_into(&c, "input[name='email']", "admin@portcullis.test").await;
    type_into(&c, "input[name='password']", &password).await;
    click(&c, "form button[type='submit']").await;
    wait_for_text(&c, "main h1", "Dashboard").await;
    shoot(&c, "02-dashboard").await;

    // Enough policies (and so audit events) for a second page, through the API.
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@portcullis.test", "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let api = login["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    for n in 0..55 {
        let created = http
            .post(format!("{base}/api/v1/admin/policies"))
            .bearer_auth(&api)
            .json(
                &json!({"name": format!("Bulk report reader {n:02}"), "effect": "allow",
                          "resource_type": "report", "actions": ["read"]}),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), 201);
    }
    // Paging in the browser: the next page has the rest, and a way back.
    c.goto(&format!("{base}/admin/policies?sort=name"))
        .await
        .expect("policies");
    let first_page = c
        .find_all(Locator::Css("tbody tr"))
        .await
        .expect("rows")
        .len();
    assert_eq!(first_page, 50);
    c.find(Locator::LinkText("Next page"))
        .await
        .expect("a next page")
        .click()
        .await
        .expect("click");
    c.wait()
        .for_element(Locator::LinkText("First page"))
        .await
        .expect("a first page link");
    let second_page = c
        .find_all(Locator::Css("tbody tr"))
        .await
        .expect("rows")
        .len();
    assert!(second_page >= 5, "{second_page} rows on the second page");
    shoot(&c, "02b-policies-page-2").await;
    c.goto(&format!("{base}/admin/audit")).await.expect("audit");
    c.find(Locator::LinkText("Older"))
        .await
        .expect("older audit events")
        .click()
        .await
        .expect("click");
    wait_for_text(&c, "main h1", "Audit log").await;
    shoot(&c, "02c-audit-older").await;

    // Build a policy: an ALL group of two conditions, one comparing attributes.
    c.goto(&format!("{base}/admin/policies/new"))
        .await
        .expect("new policy");
    type_into(
        &c,
        "input[name='name']",
        "Sales reads internal engineering documents",
    )
    .await;
    click(&c, "button[value='root:all']").await;
    type_into(
        &c,
        "input[name='node.0.0.attribute']",
        "subject.attributes.department",
    )
    .await;
    choose(&c, "select[name='node.0.0.operator']", "eq").await;
    type_into(&c, "input[name='node.0.0.value']", "sales").await;
    click(&c, "button[value='add_condition:0']").await;
    type_into(
        &c,
        "input[name='node.0.1.attribute']",
        "resource.attributes.classification",
    )
    .await;
    choose(&c, "select[name='node.0.1.operator']", "in").await;
    type_into(&c, "input[name='node.0.1.value']", "internal, public").await;
    // The first condition survived the round trip of the "+ condition" button.
    let kept = c
        .find(Locator::Css("input[name='node.0.0.value']"))
        .await
        .expect("first value")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("sales"));
    shoot(&c, "03-policy-builder").await;
    click(&c, ".form-actions button[value='save']").await;
    // The demo's own document policies overlap this one: the page says so first,
    // and "Save anyway" saves it. Whichever page comes is waited for, not raced.
    let answered = c
        .wait()
        .for_element(Locator::Css("p.flash, button[value='save_anyway']"))
        .await
        .expect("the save answered");
    if answered.attr("value").await.ok().flatten().as_deref() == Some("save_anyway") {
        shoot(&c, "03b-policy-warning").await;
        answered.click().await.expect("save anyway");
    }
    let flash = text_of(&c, "p.flash").await;
    assert!(flash.contains("Saved"), "{flash}");
    shoot(&c, "04-policies").await;

    // The simulator sees it: a sales subject may read an internal document.
    c.goto(&format!("{base}/admin/simulator"))
        .await
        .expect("simulator");
    type_into(
        &c,
        "input[name='subject_attributes']",
        r#"{"department": "sales"}"#,
    )
    .await;
    type_into(&c, "input[name='action']", "read").await;
    type_into(&c, "input[name='resource_type']", "document").await;
    type_into(&c, "input[name='owner_id']", "someone-else").await;
    type_into(
        &c,
        "input[name='resource_attributes']",
        r#"{"classification": "internal", "department": "engineering"}"#,
    )
    .await;
    click(&c, "form.simulator > button[type='submit']").await;
    let decision = text_of(&c, "#decision").await;
    assert_eq!(decision, "Allowed");
    shoot(&c, "05-simulator").await;

    // Deleting asks first, on a page of its own, and the message names it.
    c.goto(&format!("{base}/admin/policies?resource_type=document"))
        .await
        .expect("policies");
    click(
        &c,
        "button[aria-label='Delete the policy Sales reads internal engineering documents']",
    )
    .await;
    wait_for_text(
        &c,
        "main h1",
        "Delete the policy “Sales reads internal engineering documents”?",
    )
    .await;
    shoot(&c, "09-confirm-delete").await;
    click(&c, "form.confirm button.danger").await;
    let flash = text_of(&c, "p.flash").await;
    assert_eq!(
        flash,
        "Deleted the policy “Sales reads internal engineering documents”."
    );

    // Enter in the Name field saves the policy (it does not press a builder button).
    c.goto(&format!("{base}/admin/policies/new"))
        .await
        .expect("new policy");
    type_into(&c, "input[name='resource_type']", "widget").await;
    type_into(&c, "input[name='name']", "Saved with Enter").await;
    c.find(Locator::Css("input[name='name']"))
        .await
        .expect("name")
        .send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .expect("enter");
    let flash = text_of(&c, "p.flash").await;
    assert!(flash.starts_with("Saved “Saved with Enter”"), "{flash}");

    // The account page: enrol TOTP, and see the backup codes once.
    c.goto(&format!("{base}/admin/account"))
        .await
        .expect("account");
    shoot(&c, "10-account").await;
    type_into(&c, "#mfa-password", &password).await;
    click(&c, "button[value='mfa_setup']").await;
    let key = text_of(&c, "code.secret").await;
    shoot(&c, "11-account-enrol").await;
    let secret = TotpSecret::from_base32(key.as_bytes()).expect("the key is base32");
    let code = secret
        .code_at(time::OffsetDateTime::now_utc().unix_timestamp())
        .expect("a code");
    type_into(&c, "input[name='code']", &code).await;
    click(&c, "button[value='mfa_enable']").await;
    let codes = c
        .wait()
        .for_element(Locator::Css("ul.codes"))
        .await
        .expect("the backup codes")
        .text()
        .await
        .expect("text");
    assert_eq!(codes.lines().count(), 10, "{codes}");
    shoot(&c, "12-account-backup-codes").await;

    // Every page, at desktop width and at a phone's (390 px): no page is wider
    // than the screen (tables scroll inside their box).
    let pages = [
        ("/admin", "dashboard", "Dashboard"),
        ("/admin/policies", "policies", "Policies"),
        ("/admin/policies/new", "policy-new", "New policy"),
        ("/admin/simulator", "simulator", "Policy simulator"),
        ("/admin/users", "users", "Users"),
        ("/admin/webhooks", "webhooks", "Webhooks"),
        ("/admin/gate", "gate", "Gate"),
        ("/admin/audit", "audit", "Audit log"),
        ("/admin/account", "account", "Your account"),
    ];
    for (width, height, label) in [(1280, 1100, "desktop"), (390, 844, "phone")] {
        c.set_window_size(width, height).await.expect("window size");
        // Pages reached by a link: a user's, a policy's history.
        c.goto(&format!("{base}/admin/users")).await.expect("users");
        click(&c, "tbody tr td a").await;
        c.wait()
            .for_element(Locator::Css("main h2"))
            .await
            .expect("a user's page");
        shoot(&c, &format!("{label}-user")).await;
        c.goto(&format!(
            "{base}/admin/policies/00000000-0000-4000-8000-000000000001/history"
        ))
        .await
        .expect("history");
        shoot(&c, &format!("{label}-policy-history")).await;
        // The demo's own webhook, once its set-up has run.
        c.goto(&format!("{base}/admin/webhooks"))
            .await
            .expect("webhooks");
        if let Ok(link) = c.find(Locator::Css("tbody tr td a")).await {
            link.click().await.expect("click");
            wait_for_text(&c, "main h1", "Webhook").await;
            shoot(&c, &format!("{label}-webhook")).await;
        }
        for (path, name, heading) in pages {
            c.goto(&format!("{base}{path}")).await.expect("page");
            wait_for_text(&c, "main h1", heading).await;
            shoot(&c, &format!("{label}-{name}")).await;
            let overflow = c
                .execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .expect("script");
            assert!(
                overflow.as_i64().unwrap_or(0) <= 1,
                "{path} is wider than a {width} px screen by {overflow}"
            );
        }
    }
    c.close().await.expect("close the browser");
    drop(server);
}

/// Through the gate in a real browser: a signed-out visit to an app behind nginx
/// lands on the portal, the password and a second factor sign in, and the browser
/// is back at the URL it asked for, with the upstream seeing who it is. With no
/// cookie domain, so the sign-in reaches the app by the handoff; a second app
/// host then opens without signing in again.
#[actix_web::test]
async fn a_browser_signs_in_through_the_gate_and_returns_to_the_app() {
    use crate::gate_proxies::{Cookies, Kind, setup_with};
    let setup = setup_with(Kind::Nginx, Cookies::HandedOff).await;
    let enrolled = crate::mfa::enrolled(&setup.app, "mfa@example.com").await;
    let driver = start_driver();
    let c = browser_with(
        &driver,
        &["--host-resolver-rules=MAP *.gate.test 127.0.0.1"],
    )
    .await;
    let wanted = setup.url("app", "/reports?q=1");
    c.goto(&wanted).await.expect("open the app");
    type_into(&c, "#email", "mfa@example.com").await;
    type_into(&c, "#password", crate::helpers::GOOD_PASSWORD).await;
    shoot(&c, "gate-portal-sign-in").await;
    click(&c, "button[type=submit]").await;
    // The enrolment spent this step's TOTP code; a backup code is the other factor.
    type_into(&c, "#code", &enrolled.backup_codes[0]).await;
    click(&c, "button[type=submit]").await;
    for _ in 0..300 {
        if c.current_url().await.map(|u| u.to_string()).ok().as_deref() == Some(wanted.as_str()) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.current_url().await.expect("url").as_str(), wanted);
    shoot(&c, "gate-back-at-the-app").await;
    let seen = setup.last_seen();
    assert_eq!(seen["remote-email"], "mfa@example.com");
    assert!(
        seen["portcullis-assertion"]
            .as_str()
            .is_some_and(|a| a.split('.').count() == 3)
    );
    // Another app host: through the portal and back without a form.
    let other = setup.url("other", "/wiki");
    c.goto(&other).await.expect("open the other app");
    for _ in 0..300 {
        if c.current_url().await.map(|u| u.to_string()).ok().as_deref() == Some(other.as_str()) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.current_url().await.expect("url").as_str(), other);
    let seen = setup
        .last_seen_at("/wiki")
        .expect("the other app was reached");
    assert_eq!(seen["remote-email"], "mfa@example.com");
    c.close().await.expect("close");
}

/// A chromedriver WebAuthn extension command (the W3C WebAuthn "Automation"
/// endpoints under `/session/{id}/webauthn/…`).
#[derive(Debug)]
struct WebAuthnCommand {
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(|b| b.to_string()),
        )
    }
}

/// A platform authenticator with discoverable credentials and user verification
/// (a device with a fingerprint reader), on this browser's tab: its id.
async fn virtual_authenticator(c: &Client) -> String {
    let id = c
        .issue_cmd(WebAuthnCommand {
            method: http::Method::POST,
            path: "webauthn/authenticator".to_owned(),
            body: Some(json!({
                "protocol": "ctap2", "transport": "internal",
                "hasResidentKey": true, "hasUserVerification": true,
                "isUserVerified": true, "isUserConsenting": true,
            })),
        })
        .await
        .expect("a virtual authenticator");
    id.as_str().expect("its id").to_owned()
}

/// Clicks "Sign in with a passkey", unless the page has gone already: under a
/// virtual authenticator, the conditional request the page starts on load (the
/// e-mail field's autofill) may be answered at once, and sign in by itself.
async fn passkey_button(c: &Client) {
    let button = c
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#passkey-sign-in"))
        .await;
    if let Ok(button) = button {
        let _ = button.click().await;
    }
}

/// Waits (up to 30 s) for the browser to be at `url` (before its fragment).
async fn wait_for_url(c: &Client, url: &str) {
    wait_for_url_among(c, &[url.to_owned()]).await;
}

/// Waits (up to 30 s) for the browser to be at one of `urls` (before its fragment).
async fn wait_for_url_among(c: &Client, urls: &[String]) {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(now) = c.current_url().await {
            let mut now = now.clone();
            now.set_fragment(None);
            if urls.iter().any(|url| now.as_str() == url) {
                return;
            }
            last = now.to_string();
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser is at {last}, not one of {urls:?}");
}

/// Passkeys in a real browser, with chromedriver's virtual authenticator: an
/// administrator adds a passkey on the account page, and it alone signs in to the
/// admin pages and to the gate portal; with MFA on, it answers the code step in
/// place of a code ("Use a passkey instead"). The app runs at `http://localhost:PORT`
/// (WebAuthn takes a name, never an IP, as the relying party).
#[actix_web::test]
async fn a_browser_registers_a_passkey_and_signs_in_with_it() {
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let bind = format!("127.0.0.1:{port}");
    let assertion_key = portcullis::gate::assertion::generate_key().expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = crate::helpers::test_settings(
        dir.path(),
        &[
            ("BIND_ADDRESS", &bind),
            ("PUBLIC_URL", &origin),
            ("WEBAUTHN_RP_ID", "localhost"),
            ("WEBAUTHN_RP_ORIGINS", &origin),
            ("ADMIN_REQUIRE_MFA", "false"),
            ("GATE_PORTAL_URL", &origin),
            ("GATE_HOSTS", "*.gate.test"),
            ("GATE_ASSERTION_KEY", &assertion_key),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let app = crate::helpers::spawn_with(
        settings,
        dir,
        reqwest::Client::new(),
        portcullis::clock::Clock::system(),
    )
    .await;
    let admin = "root@example.org";
    let admin_token = app.admin_token(admin).await;

    let driver = start_driver();
    let c = browser(&driver).await;
    c.goto(&format!("{origin}/admin/login"))
        .await
        .expect("sign-in page");
    let authenticator = virtual_authenticator(&c).await;

    // Signed in with the password, the account page adds a passkey.
    type_into(&c, "#email", admin).await;
    type_into(&c, "#password", crate::helpers::GOOD_PASSWORD).await;
    click(&c, "form[action='/admin/login'] button[type=submit]").await;
    wait_for_url(&c, &format!("{origin}/admin")).await;
    c.goto(&format!("{origin}/admin/account"))
        .await
        .expect("account page");
    type_into(&c, "#passkey-name", "Test laptop").await;
    type_into(&c, "#passkey-password", crate::helpers::GOOD_PASSWORD).await;
    shoot(&c, "passkey-add").await;
    click(&c, "#passkey-add button[type=submit]").await;
    wait_for_text(&c, "p.flash", "Added the passkey “Test laptop”.").await;
    shoot(&c, "passkey-added").await;
    let credentials = c
        .issue_cmd(WebAuthnCommand {
            method: http::Method::GET,
            path: format!("webauthn/authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .expect("credentials");
    assert_eq!(
        credentials[0]["isResidentCredential"], true,
        "{credentials}"
    );
    assert_eq!(credentials[0]["rpId"], "localhost");
    let listed = text_of(&c, "#passkeys + p + table tbody").await;
    assert!(listed.contains("never"), "{listed}");

    // Signed out, the passkey alone signs in to the admin pages, back to `next`.
    click(&c, "form.signout button").await;
    // Signed out, the browser is on the sign-in page — unless the page's autofill
    // request, which the virtual authenticator answers at once, already signed it
    // in again (to the dashboard).
    wait_for_url_among(
        &c,
        &[format!("{origin}/admin/login"), format!("{origin}/admin")],
    )
    .await;
    assert_eq!(
        app.audit_events("auth.session_revoked").len(),
        1,
        "signed out"
    );
    // The page the sign-out landed on may still be finishing its own autofill
    // sign-in (to the dashboard), which under load can overtake the navigation
    // below; once it has landed, the next try is this page's own.
    let account = format!("{origin}/admin/account");
    for attempt in 1..=3 {
        c.goto(&format!("{origin}/admin/login?next=%2Fadmin%2Faccount"))
            .await
            .expect("sign-in page");
        passkey_button(&c).await;
        wait_for_url_among(&c, &[account.clone(), format!("{origin}/admin")]).await;
        let mut now = c.current_url().await.expect("url");
        now.set_fragment(None);
        if now.as_str() == account {
            break;
        }
        assert!(attempt < 3, "the sign-in never returned to `next`");
    }
    shoot(&c, "passkey-signed-in-admin").await;
    assert_eq!(text_of(&c, "a.who").await, admin);
    let events = app.audit_events("admin.signed_in");
    assert!(!events.is_empty());

    // And the gate portal.
    c.goto(&format!("{origin}/gate/login"))
        .await
        .expect("portal sign-in");
    passkey_button(&c).await;
    wait_for_url(&c, &format!("{origin}/gate/")).await;
    wait_for_text(&c, "h1", "Signed in").await;
    shoot(&c, "passkey-signed-in-gate").await;
    let used = app.audit_events("passkey.sign_in");
    assert!(
        used.iter()
            .filter(|(outcome, _, _)| outcome == "success")
            .count()
            >= 2,
        "{used:?}"
    );

    // With MFA on, the passkey answers the code step after the password. The
    // authenticator is put away while the password page is open (its autofill
    // would sign in with the passkey alone), then brought back, with the same
    // credential and counter, on the code step.
    turn_mfa_on(&app, &admin_token).await;
    let held = c
        .issue_cmd(WebAuthnCommand {
            method: http::Method::GET,
            path: format!("webauthn/authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .expect("credentials");
    c.issue_cmd(WebAuthnCommand {
        method: http::Method::DELETE,
        path: format!("webauthn/authenticator/{authenticator}"),
        body: None,
    })
    .await
    .expect("authenticator removed");
    c.goto(&format!("{origin}/admin/account"))
        .await
        .expect("account page");
    click(&c, "form.signout button").await;
    wait_for_url(&c, &format!("{origin}/admin/login")).await;
    type_into(&c, "#email", admin).await;
    type_into(&c, "#password", crate::helpers::GOOD_PASSWORD).await;
    click(&c, "form[action='/admin/login'] button[type=submit]").await;
    wait_for_url(&c, &format!("{origin}/admin/login/code?next=%2Fadmin")).await;
    let again = virtual_authenticator(&c).await;
    let credential = &held[0];
    c.issue_cmd(WebAuthnCommand {
        method: http::Method::POST,
        path: format!("webauthn/authenticator/{again}/credential"),
        body: Some(json!({
            "credentialId": credential["credentialId"],
            "isResidentCredential": true,
            "rpId": credential["rpId"],
            "privateKey": credential["privateKey"],
            "userHandle": credential["userHandle"],
            "signCount": credential["signCount"],
        })),
    })
    .await
    .expect("credential restored");
    shoot(&c, "passkey-code-step").await;
    click(&c, "#passkey-code").await;
    wait_for_url(&c, &format!("{origin}/admin")).await;
    assert_eq!(text_of(&c, "a.who").await, admin);
    let second_factor = app
        .audit_events("passkey.sign_in")
        .into_iter()
        .filter(|(outcome, _, details)| outcome == "success" && details.contains("second_factor"))
        .count();
    assert_eq!(second_factor, 1);
    c.close().await.expect("close");
}

/// Turns TOTP on for the account whose access token is `token`.
async fn turn_mfa_on(app: &crate::helpers::TestApp, token: &str) {
    let setup = app
        .post_with_token(
            "/api/v1/auth/mfa/setup",
            token,
            Some(&json!({"password": crate::helpers::GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(setup.status(), 200);
    let setup: serde_json::Value = setup.json().await.expect("json");
    let secret = TotpSecret::from_base32(setup["secret"].as_str().expect("secret").as_bytes())
        .expect("base32");
    let code = secret.code_at(app.clock.now()).expect("code");
    let enabled = app
        .post_with_token(
            "/api/v1/auth/mfa/enable",
            token,
            Some(&json!({"code": code})),
        )
        .await;
    assert_eq!(enabled.status(), 200);
}
