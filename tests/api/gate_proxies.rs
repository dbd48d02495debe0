//! The gate behind the real proxies — Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`) — in front of a tiny upstream that records every request it
//! receives. The proxy configurations are the ones the README documents: they strip
//! what a client sends in the identity headers and overwrite them with the gate's.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Map, Value, json};

use crate::gate::{gate_vars, route_policy};
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

fn nginx_config(dir: &Path, port: u16, gate: u16, upstream: u16) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  # The portal: Portcullis itself.
  server {{
    listen 127.0.0.1:{port};
    server_name auth.gate.test;
    location / {{
      proxy_pass http://127.0.0.1:{gate};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
  # Every app behind the gate.
  server {{
    listen 127.0.0.1:{port};
    server_name *.gate.test;
    location = /__portcullis {{
      internal;
      proxy_pass http://127.0.0.1:{gate}/api/v1/gate/auth-request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    location @portcullis_sign_in {{
      if ($portcullis_login = "") {{ return 401; }}
      return 302 $portcullis_login;
    }}
    location / {{
      auth_request /__portcullis;
      auth_request_set $portcullis_login $upstream_http_location;
      auth_request_set $gate_user $upstream_http_remote_user;
      auth_request_set $gate_email $upstream_http_remote_email;
      auth_request_set $gate_role $upstream_http_remote_role;
      auth_request_set $gate_name $upstream_http_remote_name;
      auth_request_set $gate_department $upstream_http_remote_attr_department;
      auth_request_set $portcullis_assertion $upstream_http_portcullis_assertion;
      error_page 401 = @portcullis_sign_in;
      # Overwritten (and dropped when empty), whatever the client sent.
      proxy_set_header Remote-User $gate_user;
      proxy_set_header Remote-Email $gate_email;
      proxy_set_header Remote-Role $gate_role;
      proxy_set_header Remote-Name $gate_name;
      proxy_set_header Remote-Attr-department $gate_department;
      proxy_set_header Portcullis-Assertion $portcullis_assertion;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    )
}

fn caddy_config(dir: &Path, port: u16, gate: u16, upstream: u16) -> String {
    let d = dir.display();
    format!(
        r#"{{
  admin off
  auto_https off
  storage file_system {d}/caddy
  http_port {port}
}}
http://auth.gate.test:{port} {{
  reverse_proxy 127.0.0.1:{gate}
}}
http://*.gate.test:{port} {{
  # In this order: drop what a client sent in the identity headers, ask the
  # gate (its answer sets them), then pass the request on.
  route {{
    request_header -Remote-*
    request_header -Portcullis-Assertion
    forward_auth 127.0.0.1:{gate} {{
      uri /api/v1/gate/forward-auth
      copy_headers Remote-User Remote-Email Remote-Role Remote-Name Remote-Attr-department Portcullis-Assertion
    }}
    reverse_proxy 127.0.0.1:{upstream}
  }}
}}
"#
    )
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Nginx,
    Caddy,
}

async fn start_proxy(kind: Kind, dir: &Path, port: u16, gate: u16, upstream: u16) -> Proxy {
    let child = match kind {
        Kind::Nginx => {
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_config(dir, port, gate, upstream)).expect("write");
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
            std::fs::write(&conf, caddy_config(dir, port, gate, upstream)).expect("write");
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
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Proxy { child, port };
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

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.gate.test:{}{path}", self.proxy.port)
    }
}

pub async fn setup(kind: Kind) -> Setup {
    let upstream = Upstream::default();
    let upstream_port = upstream.start().await;
    let port = free_port();
    let mut vars = gate_vars("127.0.0.1");
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
    let proxy = start_proxy(kind, dir.path(), port, gate_port, upstream_port).await;
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

fn cookie_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis_gate="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned()
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
    let rd = url::Url::parse(&login)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .expect("rd");
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
    let home = http
        .get(s.url("auth", "/gate/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("home");
    let page = home.text().await.expect("page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf")
        .to_owned();
    let out = http
        .post(s.url("auth", "/gate/logout"))
        .header("Cookie", &cookie)
        .header("Origin", s.url("auth", ""))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
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
