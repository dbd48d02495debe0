//! Test harness: the real application on port 0 with a temporary SQLite file, and the
//! real binary for command-line behaviour.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{HttpResponse, web};
use portcullis::Application;
use portcullis::auth::Principal;
use portcullis::clock::Clock;
use portcullis::config::{ConfigSources, Mode, Settings};
use portcullis::db::Database;
use portcullis::http::ClientIp;
use portcullis::http::json::Json;
use portcullis::state::AppState;
use secrecy::ExposeSecret;
use tempfile::TempDir;

pub struct TestApp {
    /// e.g. `http://127.0.0.1:41234`
    pub address: String,
    pub client: reqwest::Client,
    pub db: Database,
    pub db_path: PathBuf,
    pub settings: Settings,
    pub clock: Clock,
    pub handle: ServerHandle,
    /// The running app's services, for driving maintenance in tests.
    pub state: AppState,
    /// Keeps the database directory alive for the test's duration.
    pub dir: TempDir,
}

impl TestApp {
    /// Stops this server (letting requests finish) and starts a new one on the same
    /// database and settings, as a restart would.
    pub async fn restart(self) -> TestApp {
        self.handle.stop(true).await;
        spawn_with(self.settings, self.dir, self.client, self.clock).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    /// POSTs raw bytes with the given content type to the JSON echo probe.
    pub async fn post_echo(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/__test/echo")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request failed")
    }
}

/// Fresh secrets for one app or process.
pub fn secret_pairs() -> Vec<(&'static str, String)> {
    let signing = portcullis::crypto::keys::signing_secret().expect("rng");
    let credential = portcullis::crypto::keys::fernet_key().expect("rng");
    let mfa = portcullis::crypto::keys::fernet_key().expect("rng");
    vec![
        ("JWT_SECRET_KEY", signing.expose_secret().to_owned()),
        (
            "CREDENTIAL_ENCRYPTION_KEY",
            credential.expose_secret().to_owned(),
        ),
        ("MFA_ENCRYPTION_KEY", mfa.expose_secret().to_owned()),
    ]
}

/// The settings of a test app: fresh keys, port 0, one worker, a temp database.
/// `overrides` replace or add variables.
pub fn test_settings(dir: &Path, overrides: &[(&str, &str)]) -> Settings {
    let pairs = test_variables(dir, overrides);
    let sources = ConfigSources::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    match Settings::load(&sources, Mode::Production) {
        Ok((settings, _)) => settings,
        Err(findings) => panic!("test settings refused: {findings:?}"),
    }
}

/// The variables [`test_settings`] loads (for the binary, to run it with exactly
/// the same configuration).
pub fn test_variables(dir: &Path, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut pairs: BTreeMap<String, String> = secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.insert("BIND_ADDRESS".into(), "127.0.0.1:0".into());
    pairs.insert("HTTP_WORKERS".into(), "1".into());
    pairs.insert("DATABASE_READ_CONNECTIONS".into(), "2".into());
    // Generous limits, so tests of other features are not throttled; the rate
    // limit tests set their own.
    for (name, quota) in [
        ("RATE_LIMIT_ANONYMOUS", "100000/60"),
        ("RATE_LIMIT_LOGIN_IP", "100000/60"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "100000/60"),
        ("RATE_LIMIT_REGISTER_IP", "100000/60"),
        ("RATE_LIMIT_REFRESH_IP", "100000/60"),
        ("RATE_LIMIT_PASSKEY_START_IP", "100000/60"),
        ("RATE_LIMIT_MFA_IP", "100000/60"),
        ("RATE_LIMIT_MFA_ACCOUNT", "100000/60"),
        ("RATE_LIMIT_PASSWORD_ACCOUNT", "100000/60"),
    ] {
        pairs.insert(name.into(), quota.into());
    }
    pairs.insert("DEFAULT_RATE_LIMIT_CALLS".into(), "100000".into());
    pairs.insert(
        "DATABASE_PATH".into(),
        dir.join("portcullis.db").to_string_lossy().into_owned(),
    );
    for (k, v) in overrides {
        pairs.insert((*k).to_owned(), (*v).to_owned());
    }
    pairs
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), overrides);
    spawn_with(settings, dir, reqwest::Client::new(), Clock::system()).await
}

/// `TEST_LOG=debug cargo test ...` shows the server's log while debugging a test.
fn init_test_log() {
    if let Ok(level) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(level)
            .with_test_writer()
            .try_init();
    }
}

pub async fn spawn_with(
    settings: Settings,
    dir: TempDir,
    client: reqwest::Client,
    clock: Clock,
) -> TestApp {
    init_test_log();
    let db_path = settings.database.path.clone();
    let app = Application::build_with(settings.clone(), clock.clone(), test_routes)
        .await
        .expect("failed to build the application");
    let address = app.base_url();
    let db = app.database().clone();
    let handle = app.handle();
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client,
        db,
        db_path,
        settings,
        clock,
        handle,
        state,
        dir,
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
pub struct EchoBody {
    pub name: String,
    pub count: u32,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Probes mounted only in tests: a handler that panics, the real client-address
/// extractor, the real authentication extractor (and nothing else, so no database
/// work follows it), a slow handler, and a JSON endpoint that uses the real body
/// extractor.
fn test_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/__test/whoami",
        web::get().to(|principal: Principal| async move {
            HttpResponse::Ok().body(principal.user_id.to_string())
        }),
    )
    .route(
        "/__test/slow",
        web::get().to(|| async {
            actix_web::rt::time::sleep(Duration::from_millis(800)).await;
            HttpResponse::Ok().body("finished")
        }),
    );
    cfg.route(
        "/__test/panic",
        web::get().to(|| async {
            let nothing: Option<u8> = None;
            #[allow(clippy::unnecessary_literal_unwrap)]
            let value = nothing.expect("deliberate test panic in src/secret_module.rs");
            HttpResponse::Ok().body(value.to_string())
        }),
    )
    .route(
        "/__test/client-ip",
        web::get().to(|ip: ClientIp| async move { HttpResponse::Ok().body(ip.0.to_string()) }),
    )
    .route(
        "/__test/echo",
        web::post()
            .to(|body: Json<EchoBody>| async move { HttpResponse::Ok().json(body.into_inner()) }),
    );
}

/// Text that must never appear in a response: internals of the implementation.
pub const INTERNAL_MARKERS: &[&str] = &[
    "panicked",
    "unwrap",
    ".rs",
    "src/",
    "/root",
    "sqlite",
    "SQLITE",
    "rusqlite",
    "actix",
    "serde",
    "injected",
    "stack backtrace",
    "thread '",
];

pub fn assert_no_internal_text(body: &str) {
    for marker in INTERNAL_MARKERS {
        assert!(!body.contains(marker), "response leaks `{marker}`: {body}");
    }
}

/// A 401 challenges for a bearer token.
pub fn assert_bearer_challenge(response: &reqwest::Response) {
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
}

/// Checks the problem+json shape and returns the parsed body.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("body");
    assert_no_internal_text(&text);
    let body: serde_json::Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    assert_eq!(
        body["request_id"].as_str(),
        header_id.as_deref(),
        "request_id matches the header"
    );
    body
}

// ---- the real binary ----

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// The variables that make the binary use this app's keys and database.
pub fn binary_vars(settings: &Settings) -> Vec<(String, String)> {
    let list = |keys: &[secrecy::SecretString]| {
        keys.iter()
            .map(|k| k.expose_secret().to_owned())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        (
            "JWT_SECRET_KEY".into(),
            settings.jwt.secret.expose_secret().to_owned(),
        ),
        (
            "CREDENTIAL_ENCRYPTION_KEY".into(),
            list(&settings.credential_keys),
        ),
        ("MFA_ENCRYPTION_KEY".into(), list(&settings.mfa_keys)),
        (
            "DATABASE_PATH".into(),
            settings.database.path.to_string_lossy().into_owned(),
        ),
    ]
}

/// `vars` borrowed, as [`run_binary`] and [`ServerProcess::start`] take them.
pub fn as_refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs the binary with exactly these variables, in `dir`.
pub fn run_binary(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = binary();
    command.current_dir(dir).args(args);
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().expect("binary runs")
}

/// A server process started from the binary, killed on drop.
pub struct ServerProcess {
    pub child: Child,
    pub address: String,
    pub stderr_path: PathBuf,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `args` and waits for the line announcing the URL on stdout.
    pub fn start(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = binary();
        command
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut all) = collected.lock() {
                    all.push(line.clone());
                }
                if let Some(at) = line.find("http://") {
                    let url: String = line[at..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(url);
                }
            }
        });
        // Generous: on a busy two-core machine (the whole suite in parallel) a
        // start that hashes the demo's passwords can take a while.
        let address = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("server did not announce its address; stderr:\n{log}");
            }
        };
        Self {
            child,
            address,
            stderr_path,
            stdout: lines,
        }
    }

    /// What the process printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends `signal` (e.g. "-INT") to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill {signal} failed");
    }

    /// Waits for the process to exit; returns whether it exited 0.
    pub fn wait_for_exit(&mut self) -> bool {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends SIGTERM and waits for a graceful exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        self.signal("-TERM");
        self.wait_for_exit()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP/1.1 request with extra header lines and an optional JSON body;
/// returns the raw response text. For servers in another process, where no async
/// runtime is needed.
pub fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    json: Option<&str>,
) -> String {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    if let Some(body) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

pub fn raw_get(address: &str, path: &str, headers: &[&str]) -> String {
    raw_request(address, "GET", path, headers, None)
}

// ---- accounts ----

/// A password the policy accepts.
pub const GOOD_PASSWORD: &str = "orbit lantern velvet cactus 42";

/// Tokens from a login, refresh or password change.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub expires_in: i64,
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn post_with_token(
        &self,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request failed")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// A login as if from `ip`, through a proxy's `X-Forwarded-For`.
    pub async fn login_from(&self, ip: &str, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request failed")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers `email` with [`GOOD_PASSWORD`] and logs in.
    pub async fn signed_up(&self, email: &str) -> Tokens {
        assert_eq!(self.register(email, GOOD_PASSWORD).await.status(), 201);
        self.signed_in(email, GOOD_PASSWORD).await
    }

    pub async fn signed_in(&self, email: &str, password: &str) -> Tokens {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("token response")
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &serde_json::json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// The status of `/api/v1/auth/me` with this token.
    pub async fn me_status(&self, token: &str) -> u16 {
        self.get_with_token("/api/v1/auth/me", token)
            .await
            .status()
            .as_u16()
    }

    /// Audit events named `event`, in order.
    pub fn audit_events(&self, event: &str) -> Vec<(String, Option<String>, String)> {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open");
        let mut stmt = conn
            .prepare(
                "SELECT outcome, target, details FROM audit_events WHERE event = ?1 ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([event], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

impl TestApp {
    /// Registers `email`, makes it an administrator, and signs in.
    pub async fn admin_token(&self, email: &str) -> String {
        assert_eq!(self.register(email, GOOD_PASSWORD).await.status(), 201);
        self.set_user_column(email, "role", "admin");
        self.signed_in(email, GOOD_PASSWORD).await.access_token
    }

    /// Registers `email` with these attributes (set before any request could cache
    /// the account) and signs in.
    pub async fn user_with(&self, email: &str, attributes: serde_json::Value) -> Tokens {
        assert_eq!(self.register(email, GOOD_PASSWORD).await.status(), 201);
        self.set_user_column(email, "attributes", &attributes.to_string());
        self.signed_in(email, GOOD_PASSWORD).await
    }

    fn set_user_column(&self, email: &str, column: &str, value: &str) {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open");
        conn.execute(
            &format!("UPDATE users SET {column} = ?2 WHERE email = ?1"),
            [email, value],
        )
        .expect("update user");
    }

    pub async fn put_with_token(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn patch_with_token(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn delete_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed")
    }
}
