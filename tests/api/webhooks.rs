//! Outgoing webhooks against a real local receiver: signed deliveries that carry
//! their credential, secrets sealed at rest, legacy plaintext credentials, the SSRF
//! guard, the retry schedule on an injected clock, restarts, 410, rotation, IDOR.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use portcullis::clock::Clock;
use portcullis::webhooks::signing::{SigningSecret, verify};
use serde_json::{Value, json};

use crate::helpers::{TestApp, binary_vars, problem, spawn_with, test_settings};

const HOOKS: &str = "/api/v1/webhooks";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A local HTTP receiver that records requests and answers with queued statuses
/// (200 once the queue is empty), after a delay if told to (a hanging receiver).
#[derive(Clone, Default)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
    delay: Arc<Mutex<Duration>>,
    in_progress: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    /// Writes to this database start failing just before the receiver answers.
    fail_writes_on_answer: Arc<Mutex<Option<portcullis::db::Database>>>,
}

impl Receiver {
    async fn start() -> Self {
        let receiver = Receiver::default();
        let shared = receiver.clone();
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let shared = shared.clone();
                async move {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    if let Ok(mut got) = shared.got.lock() {
                        got.push(Received {
                            headers,
                            body: body.to_vec(),
                        });
                    }
                    let now = shared.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
                    shared.most_at_once.fetch_max(now, Ordering::SeqCst);
                    let delay = shared.delay.lock().map(|d| *d).unwrap_or_default();
                    actix_web::rt::time::sleep(delay).await;
                    shared.in_progress.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(Some(db)) = shared.fail_writes_on_answer.lock().map(|d| d.clone()) {
                        db.inject_write_errors(true);
                    }
                    let status = shared
                        .statuses
                        .lock()
                        .ok()
                        .and_then(|mut s| s.pop_front())
                        .unwrap_or(200);
                    let mut response = HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("status"),
                    );
                    if (300..400).contains(&status) {
                        // Back to this receiver: a followed redirect would show.
                        response.insert_header(("location", "/moved"));
                    }
                    response.body(format!("answered {status}"))
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind receiver");
        let address = server.addrs()[0];
        actix_web::rt::spawn(server.run());
        Receiver {
            url: format!("http://{address}/hook"),
            ..receiver
        }
    }

    fn answer_with(&self, statuses: &[u16]) {
        if let Ok(mut queue) = self.statuses.lock() {
            queue.extend(statuses);
        }
    }

    fn answer_after(&self, delay: Duration) {
        if let Ok(mut slot) = self.delay.lock() {
            *slot = delay;
        }
    }

    /// The most requests it was answering at one time.
    fn most_at_once(&self) -> usize {
        self.most_at_once.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Waits (up to 10 s) until at least `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {} of {n} requests", self.received().len());
    }
}

const LOOPBACK: &[(&str, &str)] = &[("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128")];

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), overrides);
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, reqwest::Client::new(), clock).await
}

async fn create_hook(app: &TestApp, token: &str, mut body: Value) -> Value {
    // Setting a credential needs the password again.
    if body.get("credential").is_some() {
        body["password"] = json!(crate::helpers::GOOD_PASSWORD);
    }
    let response = app.post_with_token(HOOKS, token, Some(&body)).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).expect("json")
}

async fn send_test(app: &TestApp, token: &str, id: &str) {
    let queued = app
        .post_with_token(&format!("{HOOKS}/{id}/test"), token, None)
        .await;
    assert_eq!(queued.status(), 202);
}

fn assert_signed(received: &Received, secret: &str, clock_now: i64) {
    let secret = SigningSecret::parse(secret).expect("secret");
    verify(
        &secret,
        received.header("webhook-id"),
        received.header("webhook-timestamp"),
        received.header("webhook-signature"),
        &received.body,
        clock_now,
    )
    .expect("a valid Standard Webhooks signature");
}

/// The delivery rows of a webhook: (status, attempts, next_attempt_at).
fn delivery_state(app: &TestApp, webhook: &str) -> Vec<(String, i64, i64)> {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let mut stmt = conn
        .prepare("SELECT status, attempts, next_attempt_at FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY rowid")
        .expect("prepare");
    stmt.query_map([webhook], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Waits until the webhook's newest delivery has made `attempts` attempts.
async fn wait_for_attempts(app: &TestApp, webhook: &str, attempts: i64) -> (String, i64, i64) {
    for _ in 0..200 {
        if let Some(row) = delivery_state(app, webhook).pop()
            && row.1 >= attempts
        {
            return row;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no attempt {attempts}: {:?}", delivery_state(app, webhook));
}

/// The id of the webhook's newest delivery.
async fn newest_delivery(app: &TestApp, token: &str, hook: &str) -> String {
    let logs: Vec<Value> = app
        .get_with_token(&format!("{HOOKS}/{hook}/deliveries"), token)
        .await
        .json()
        .await
        .expect("json");
    logs[0]["id"].as_str().expect("delivery id").to_owned()
}

/// Asks for a delivery to be sent again, through `hook`.
async fn retry(app: &TestApp, token: &str, hook: &str, delivery: &str) -> reqwest::Response {
    app.post_with_token(
        &format!("{HOOKS}/{hook}/deliveries/{delivery}/retry"),
        token,
        None,
    )
    .await
}

/// Waits (up to 10 s) until the webhook is disabled; returns it as shown then.
async fn disabled(app: &TestApp, token: &str, id: &str) -> Value {
    let mut shown = Value::Null;
    for _ in 0..200 {
        shown = app
            .get_with_token(&format!("{HOOKS}/{id}"), token)
            .await
            .json()
            .await
            .expect("json");
        if shown["enabled"] == false {
            return shown;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook was not disabled: {shown}");
}

#[actix_web::test]
async fn a_signed_delivery_arrives_with_its_credential() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("hooked@example.org").await.access_token;
    let token = "rcv-token-0123456789abcdef";
    let hook = create_hook(
        &app,
        &user,
        json!({"url": receiver.url, "events": ["document.created"],
               "credential": {"type": "bearer", "token": token}}),
    )
    .await;
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["credential"]["type"], "bearer");
    assert_eq!(hook["credential"]["hint"], "••••cdef");
    let document = app
        .post_with_token(
            "/api/v1/documents",
            &user,
            Some(&json!({"title": "Hello", "classification": "internal"})),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");

    let got = receiver.wait_for(1).await;
    let delivery = &got[0];
    assert_signed(delivery, &secret, app.clock.now());
    assert_eq!(
        delivery.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    let body = delivery.json();
    assert_eq!(body["type"], "document.created");
    assert_eq!(body["data"]["document_id"], document["id"]);
    assert!(body["timestamp"].is_string());
    assert!(
        delivery
            .header("webhook-id")
            .expect("id")
            .starts_with("msg_")
    );

    // Afterwards: no secret, no credential, only the kind and a hint.
    let id = hook["id"].as_str().expect("id");
    let shown: Value = app
        .get_with_token(&format!("{HOOKS}/{id}"), &user)
        .await
        .json()
        .await
        .expect("json");
    assert!(shown.get("secret").is_none());
    assert!(!shown.to_string().contains(token));
    let deliveries: Vec<Value> = app
        .get_with_token(&format!("{HOOKS}/{id}/deliveries"), &user)
        .await
        .json()
        .await
        .expect("json");
    for _ in 0..100 {
        if delivery_state(&app, id)
            .first()
            .is_some_and(|d| d.0 == "delivered")
        {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), 1);
    assert_eq!(delivery_state(&app, id)[0].0, "delivered");
    // An event it did not subscribe to is not sent.
    app.post_with_token("/api/v1/auth/logout", &user, None)
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[actix_web::test]
async fn the_database_holds_no_credential_or_signing_secret_in_plaintext() {
    let app = app_with(LOOPBACK).await;
    let user = app.signed_up("sealed@example.org").await.access_token;
    let password = "basic-password-7f3a9c2e";
    let header_value = "header-value-5d1b8e4f";
    let basic = create_hook(
        &app,
        &user,
        json!({"url": "http://127.0.0.1:9/x",
               "credential": {"type": "basic", "username": "svc", "password": password}}),
    )
    .await;
    let custom = create_hook(
        &app,
        &user,
        json!({"url": "http://127.0.0.1:9/y",
               "credential": {"type": "headers", "headers": {"X-Custom": header_value}}}),
    )
    .await;
    let id = basic["id"].as_str().expect("id");
    let rotated: Value = app
        .post_with_token(&format!("{HOOKS}/{id}/rotate-secret"), &user, None)
        .await
        .json()
        .await
        .expect("json");
    let mut needles: Vec<String> = vec![password.to_owned(), header_value.to_owned()];
    for secret in [&basic["secret"], &custom["secret"], &rotated["secret"]] {
        let text = secret.as_str().expect("secret");
        needles.push(text.to_owned());
        needles.push(text.trim_start_matches("whsec_").to_owned());
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path.display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{path} holds {needle}"
            );
        }
    }
    let audit = serde_json::to_string(&app.audit_events("webhook.created")).expect("json");
    assert!(!audit.contains(password));
}

#[actix_web::test]
async fn a_legacy_plaintext_credential_delivers_then_is_migrated() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("legacy@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    // As the system being replaced stored it: plaintext.
    let legacy = r#"{"type":"bearer","token":"legacy-token-abcdef123456"}"#;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE webhooks SET credential = ?2, credential_kind = 'bearer' WHERE id = ?1",
        [id.as_str(), legacy],
    )
    .expect("import");
    send_test(&app, &user, &id).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer legacy-token-abcdef123456")
    );

    let vars = binary_vars(&app.settings);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = crate::helpers::run_binary(app.dir.path(), &["migrate-secrets"], &borrowed);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("webhooks.credential: 1 row(s) examined, 1 plaintext value(s) encrypted"),
        "{text}"
    );
    let stored: String = conn
        .query_row(
            "SELECT credential FROM webhooks WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .expect("row");
    assert!(stored.starts_with("fernet:v1:"), "{stored}");
    send_test(&app, &user, &id).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[1].header("authorization"),
        Some("Bearer legacy-token-abcdef123456")
    );
}

#[actix_web::test]
async fn private_targets_are_refused_unless_allowlisted() {
    let strict = app_with(&[]).await;
    let user = strict.signed_up("ssrf@example.org").await.access_token;
    let targets = [
        "http://127.0.0.1/",
        "https://127.0.0.1/",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/",
        "https://0.0.0.0/",
    ];
    for url in targets {
        let refused = strict
            .post_with_token(HOOKS, &user, Some(&json!({"url": url})))
            .await;
        let body = problem(refused, 422).await;
        assert_eq!(body["errors"][0]["field"], "url", "{url}");
    }
    let plain = strict
        .post_with_token(HOOKS, &user, Some(&json!({"url": "http://93.184.216.34/"})))
        .await;
    assert_eq!(
        problem(plain, 422).await["errors"][0]["rule"],
        "https_required"
    );

    let open = app_with(LOOPBACK).await;
    let user = open.signed_up("ssrf@example.org").await.access_token;
    for url in [
        "http://127.0.0.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "http://localhost/",
    ] {
        create_hook(&open, &user, json!({"url": url})).await;
    }
    for url in ["https://10.0.0.1/", "https://169.254.169.254/"] {
        let refused = open
            .post_with_token(HOOKS, &user, Some(&json!({"url": url})))
            .await;
        problem(refused, 422).await;
    }
}

#[actix_web::test]
async fn the_guard_runs_again_at_delivery_time() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("later@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    // The allowlist is emptied (a restart with a production configuration).
    let TestApp {
        handle,
        mut settings,
        dir,
        client,
        clock,
        ..
    } = app;
    handle.stop(true).await;
    settings.webhooks.allowed_private_networks.clear();
    let app = spawn_with(settings, dir, client, clock).await;
    send_test(&app, &user, &id).await;
    let (status, attempts, _) = wait_for_attempts(&app, &id, 1).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let class: String = conn
        .query_row("SELECT error_class FROM webhook_attempts", [], |r| r.get(0))
        .expect("attempt");
    assert_eq!(class, "refused");
}

#[actix_web::test]
async fn failures_follow_the_retry_schedule_then_give_up() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500; 8]);
    let user = app.signed_up("retry@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    send_test(&app, &user, &id).await;
    let schedule = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    for (i, wait) in schedule.iter().enumerate() {
        let attempts = i64::try_from(i + 1).expect("n");
        let (status, made, next) = wait_for_attempts(&app, &id, attempts).await;
        assert_eq!(status, "pending");
        assert_eq!(made, attempts);
        let delay = next - app.clock.now();
        let (low, high) = (wait * 9 / 10, wait * 11 / 10);
        assert!(
            (low..=high).contains(&delay),
            "attempt {attempts}: next in {delay}s, not ~{wait}s"
        );
        // Not before its time.
        app.clock.advance(delay - 1);
        actix_web::rt::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(receiver.received().len(), i + 1, "retried early");
        app.clock.advance(2);
    }
    let (status, made, _) = wait_for_attempts(&app, &id, 8).await;
    assert_eq!((status.as_str(), made), ("failed", 8));
    // Days have passed on the injected clock: sign in again.
    let user = app
        .signed_in("retry@example.org", crate::helpers::GOOD_PASSWORD)
        .await
        .access_token;
    let logs: Vec<Value> = app
        .get_with_token(&format!("{HOOKS}/{id}/deliveries"), &user)
        .await
        .json()
        .await
        .expect("json");
    let attempts = logs[0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 8);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["error_class"], "http_status");
    assert_eq!(attempts[0]["response_excerpt"], "answered 500");
    // A manual retry sends it once more.
    let delivery = logs[0]["id"].as_str().expect("delivery id");
    assert_eq!(retry(&app, &user, &id, delivery).await.status(), 202);
    receiver.wait_for(9).await;
}

#[actix_web::test]
async fn pending_retries_survive_a_restart() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[503]);
    let user = app.signed_up("restart@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    send_test(&app, &user, &id).await;
    wait_for_attempts(&app, &id, 1).await;
    let app = app.restart().await;
    app.clock.advance(6);
    let (status, attempts, _) = wait_for_attempts(&app, &id, 2).await;
    for _ in 0..100 {
        if delivery_state(&app, &id)[0].0 == "delivered" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, 2, "{status}");
    assert_eq!(delivery_state(&app, &id)[0].0, "delivered");
    assert_eq!(receiver.received().len(), 2);
}

#[actix_web::test]
async fn gone_disables_the_webhook_and_so_do_repeated_failures() {
    let app = app_with(&[LOOPBACK[0], ("WEBHOOK_MAX_CONSECUTIVE_FAILURES", "2")]).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[410]);
    let user = app.signed_up("gone@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    send_test(&app, &user, &id).await;
    let (status, _, _) = wait_for_attempts(&app, &id, 1).await;
    assert_eq!(status, "failed");
    let shown: Value = app
        .get_with_token(&format!("{HOOKS}/{id}"), &user)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["enabled"], false);
    assert!(
        shown["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("410")
    );
    problem(
        app.post_with_token(&format!("{HOOKS}/{id}/test"), &user, None)
            .await,
        409,
    )
    .await;

    // Re-enabled, then two failures in a row disable it again.
    receiver.answer_with(&[500, 500]);
    let enabled = app
        .patch_with_token(&format!("{HOOKS}/{id}"), &user, &json!({"enabled": true}))
        .await;
    assert_eq!(enabled.status(), 200);
    send_test(&app, &user, &id).await;
    wait_for_attempts(&app, &id, 1).await;
    app.clock.advance(6);
    wait_for_attempts(&app, &id, 2).await;
    let shown: Value = app
        .get_with_token(&format!("{HOOKS}/{id}"), &user)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["consecutive_failures"], 2);
}

/// A receiver that never answers holds only its own webhook's few slots: another
/// account's healthy webhook gets every event at once, not after the timeout.
#[actix_web::test]
async fn a_hanging_receiver_does_not_stall_another_webhook() {
    let app = app_with(LOOPBACK).await;
    let hanging = Receiver::start().await;
    hanging.answer_after(Duration::from_secs(60));
    let healthy = Receiver::start().await;
    let stalled = app.signed_up("stalled@example.org").await.access_token;
    let stalled_hook = create_hook(&app, &stalled, json!({"url": hanging.url})).await;
    let stalled_id = stalled_hook["id"].as_str().expect("id");
    for _ in 0..40 {
        send_test(&app, &stalled, stalled_id).await;
    }
    hanging.wait_for(4).await;

    let fine = app.signed_up("fine@example.org").await.access_token;
    let fine_hook = create_hook(&app, &fine, json!({"url": healthy.url})).await;
    let fine_id = fine_hook["id"].as_str().expect("id");
    for _ in 0..20 {
        send_test(&app, &fine, fine_id).await;
    }
    // Within the 10 s wait, well before the hanging attempts time out (15 s).
    healthy.wait_for(20).await;
    assert_eq!(hanging.most_at_once(), 4, "WEBHOOK_ENDPOINT_CONCURRENCY");
    assert_eq!(hanging.received().len(), 4);
}

/// With the failure limit at 20, exactly 20 attempts are made: none is claimed
/// that could fail past the limit, however many are due.
#[actix_web::test]
async fn a_failing_webhook_is_disabled_at_exactly_the_limit() {
    let app = app_with(&[LOOPBACK[0], ("WEBHOOK_MAX_CONSECUTIVE_FAILURES", "20")]).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500; 100]);
    receiver.answer_after(Duration::from_millis(300));
    let user = app.signed_up("failing@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    for _ in 0..60 {
        send_test(&app, &user, &id).await;
    }
    let shown = disabled(&app, &user, &id).await;
    assert_eq!(shown["consecutive_failures"], 20);
    // Nothing more is sent after it was disabled.
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    let attempts: i64 = rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .query_row("SELECT count(*) FROM webhook_attempts", [], |row| {
            row.get(0)
        })
        .expect("count");
    assert_eq!(attempts, 20);
    assert_eq!(receiver.received().len(), 20);
}

/// A retry asked for while the delivery's attempt is under way does not send it a
/// second time at once.
#[actix_web::test]
async fn a_retry_during_an_attempt_does_not_send_it_twice_at_once() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    receiver.answer_after(Duration::from_millis(1500));
    let user = app.signed_up("slowly@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    send_test(&app, &user, &id).await;
    receiver.wait_for(1).await;
    let delivery = newest_delivery(&app, &user, &id).await;
    let retried = retry(&app, &user, &id, &delivery).await;
    assert_eq!(retried.status(), 202);
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(receiver.most_at_once(), 1);
}

/// A database that cannot read a webhook is not the webhook's failure: nothing is
/// sent or counted, and the deliveries go out once it answers again.
#[actix_web::test]
async fn a_database_that_cannot_read_is_not_the_webhooks_failure() {
    let app = app_with(&[LOOPBACK[0], ("WEBHOOK_MAX_CONSECUTIVE_FAILURES", "2")]).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("unread@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    let due = app.clock.now() + 5;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    for n in 0..3 {
        conn.execute(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_type, payload, status, attempts, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, 'webhook.test', '{}', 'pending', 0, ?3, ?3, ?3)",
            rusqlite::params![format!("msg_unread{n}"), id, due],
        )
        .expect("queue");
    }
    app.db.inject_read_errors(true);
    app.clock.advance(6);
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let (enabled, failures): (bool, i64) = conn
        .query_row(
            "SELECT enabled, consecutive_failures FROM webhooks WHERE id = ?1",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("webhook");
    assert_eq!((enabled, failures), (true, 0));
    assert!(receiver.received().is_empty());
    app.db.inject_read_errors(false);
    // Their leases run out and they are sent.
    app.clock.advance(61);
    receiver.wait_for(3).await;
}

/// An attempt whose result the database cannot take at once is recorded when it
/// can, not forgotten (and sent again after its lease).
#[actix_web::test]
async fn an_attempt_is_recorded_once_the_database_takes_writes_again() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("later@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    if let Ok(mut slot) = receiver.fail_writes_on_answer.lock() {
        *slot = Some(app.db.clone());
    }
    send_test(&app, &user, &id).await;
    receiver.wait_for(1).await;
    // The attempt's result arrives while writes fail: it cannot be recorded yet.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    app.db.inject_write_errors(false);
    let mut state = Vec::new();
    for _ in 0..100 {
        state = delivery_state(&app, &id);
        if state.first().is_some_and(|row| row.0 == "delivered") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state.first().map(|row| (row.0.as_str(), row.1)),
        Some(("delivered", 1)),
        "{state:?}"
    );
    assert_eq!(receiver.received().len(), 1);
}

/// A webhook already past a limit lowered since is disabled at the next start, not
/// left enabled and never sent to again.
#[actix_web::test]
async fn a_webhook_over_a_lowered_limit_is_disabled() {
    let app = app_with(&[LOOPBACK[0], ("WEBHOOK_MAX_CONSECUTIVE_FAILURES", "3")]).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("over@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    // Failures counted under a higher limit, before this start.
    rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .execute("UPDATE webhooks SET consecutive_failures = 7", [])
        .expect("failures from before");
    let app = app.restart().await;
    let shown = disabled(&app, &user, &id).await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("7 failed attempts")),
        "{shown}"
    );
}

#[actix_web::test]
async fn a_rotated_secret_sends_two_valid_signatures() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("rotate@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id");
    let old = hook["secret"].as_str().expect("secret").to_owned();
    let rotated: Value = app
        .post_with_token(&format!("{HOOKS}/{id}/rotate-secret"), &user, None)
        .await
        .json()
        .await
        .expect("json");
    let new = rotated["secret"].as_str().expect("secret").to_owned();
    assert_ne!(old, new);
    assert!(rotated["previous_secret_signs_until"].is_string());
    send_test(&app, &user, id).await;
    let got = receiver.wait_for(1).await;
    let header = got[0].header("webhook-signature").expect("signature");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert_signed(&got[0], &new, app.clock.now());
    assert_signed(&got[0], &old, app.clock.now());
    // After the grace period only the new secret signs.
    app.clock.advance(24 * 3600 + 1);
    let user = app
        .signed_in("rotate@example.org", crate::helpers::GOOD_PASSWORD)
        .await
        .access_token;
    send_test(&app, &user, id).await;
    let got = receiver.wait_for(2).await;
    let header = got[1].header("webhook-signature").expect("signature");
    assert_eq!(header.split(' ').count(), 1);
    assert_signed(&got[1], &new, app.clock.now());
}

#[actix_web::test]
async fn someone_elses_webhook_is_404_and_hears_nothing_of_others() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let alice = app.signed_up("alice@example.org").await.access_token;
    let mallory = app.signed_up("mallory@example.org").await.access_token;
    let hook = create_hook(&app, &alice, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = hook["id"].as_str().expect("id");
    let path = format!("{HOOKS}/{id}");
    problem(app.get_with_token(&path, &mallory).await, 404).await;
    problem(
        app.patch_with_token(&path, &mallory, &json!({"enabled": false}))
            .await,
        404,
    )
    .await;
    problem(
        app.post_with_token(&format!("{path}/test"), &mallory, None)
            .await,
        404,
    )
    .await;
    problem(
        app.post_with_token(&format!("{path}/rotate-secret"), &mallory, None)
            .await,
        404,
    )
    .await;
    problem(
        app.get_with_token(&format!("{path}/deliveries"), &mallory)
            .await,
        404,
    )
    .await;
    problem(app.delete_with_token(&path, &mallory).await, 404).await;
    let listed: Vec<Value> = app
        .get_with_token(HOOKS, &mallory)
        .await
        .json()
        .await
        .expect("json");
    assert!(listed.is_empty());
    // Mallory's own activity never reaches Alice's webhook.
    app.post_with_token(
        "/api/v1/documents",
        &mallory,
        Some(&json!({"title": "m", "classification": "internal"})),
    )
    .await;
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(app.get_with_token(&path, &alice).await.status(), 200);
}

/// Which events reach whom: a user's webhook hears about that user only; an
/// administrator's about everyone, policy changes included.
#[actix_web::test]
async fn events_reach_their_owner_and_administrators() {
    let app = app_with(LOOPBACK).await;
    let admins = Receiver::start().await;
    let users = Receiver::start().await;
    let admin = app.admin_token("root@example.org").await;
    let user = app.signed_up("watched@example.org").await.access_token;
    create_hook(&app, &admin, json!({"url": admins.url, "events": ["*"]})).await;
    create_hook(&app, &user, json!({"url": users.url, "events": ["*"]})).await;

    let policy = app
        .post_with_token(
            "/api/v1/admin/policies",
            &admin,
            Some(&json!({"name": "p", "effect": "allow", "resource_type": "report", "actions": ["read"]})),
        )
        .await;
    assert_eq!(policy.status(), 201);
    assert_eq!(
        app.register("newcomer@example.org", crate::helpers::GOOD_PASSWORD)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.login("watched@example.org", "not the password at all")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login("nobody@example.org", "not the password at all")
            .await
            .status(),
        401
    );
    app.post_with_token("/api/v1/auth/logout", &user, None)
        .await;

    let types = |r: &Receiver| {
        let mut t: Vec<String> = r
            .received()
            .iter()
            .map(|d| d.json()["type"].as_str().expect("type").to_owned())
            .collect();
        t.sort();
        t
    };
    admins.wait_for(5).await;
    users.wait_for(2).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        types(&admins),
        vec![
            "auth.login_failed",
            "auth.login_failed",
            "auth.logout",
            "policy.created",
            "user.registered"
        ]
    );
    assert_eq!(types(&users), vec!["auth.login_failed", "auth.logout"]);
}

#[actix_web::test]
async fn redirects_are_not_followed() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[302]);
    let user = app.signed_up("redirected@example.org").await.access_token;
    let hook = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    send_test(&app, &user, &id).await;
    let (status, attempts, _) = wait_for_attempts(&app, &id, 1).await;
    assert_eq!(
        (status.as_str(), attempts),
        ("pending", 1),
        "a redirect is a failure"
    );
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "the redirect was followed");
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let (code, class): (i64, String) = conn
        .query_row(
            "SELECT status_code, error_class FROM webhook_attempts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("attempt");
    assert_eq!((code, class.as_str()), (302, "redirect"));
}

/// A proxy from the environment would make the connection instead of the guarded
/// resolver, so a public-looking target could reach anything: none is used.
#[actix_web::test]
async fn a_proxy_from_the_environment_is_never_used() {
    use crate::helpers::{ServerProcess, raw_request};
    let proxy = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy_url = proxy.url.trim_end_matches("/hook").to_owned();
    let mut vars: Vec<(String, String)> = crate::helpers::secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars.push((
        "DATABASE_PATH".into(),
        dir.path().join("p.db").to_string_lossy().into_owned(),
    ));
    // Plain http to an allowlisted public address, so a proxy would be sent the
    // request itself (a CONNECT for https would not reach the recording handler).
    vars.push((
        "WEBHOOK_ALLOWED_PRIVATE_NETWORKS".into(),
        "93.184.216.0/24".into(),
    ));
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        vars.push((name.into(), proxy_url.clone()));
    }
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(dir.path(), &["serve"], &borrowed);
    let address = server.address.clone();
    let token = actix_web::rt::task::spawn_blocking(move || {
        let body = r#"{"email":"proxied@example.org","password":"orbit lantern velvet cactus 42"}"#;
        raw_request(&address, "POST", "/api/v1/auth/register", &[], Some(body));
        let login = raw_request(&address, "POST", "/api/v1/auth/login", &[], Some(body));
        let token = login
            .split(r#""access_token":""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("token")
            .to_owned();
        let auth = format!("Authorization: Bearer {token}");
        let created = raw_request(
            &address,
            "POST",
            "/api/v1/webhooks",
            &[&auth],
            Some(r#"{"url":"http://93.184.216.34/hook"}"#),
        );
        assert!(created.starts_with("HTTP/1.1 201"), "{created}");
        let id = created
            .split(r#""id":""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("id")
            .to_owned();
        let queued = raw_request(
            &address,
            "POST",
            &format!("/api/v1/webhooks/{id}/test"),
            &[&auth],
            None,
        );
        assert!(queued.starts_with("HTTP/1.1 202"), "{queued}");
        token
    })
    .await
    .expect("setup");
    assert!(!token.is_empty());
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        proxy.received().is_empty(),
        "a delivery went through the proxy"
    );
    drop(server);
}

#[actix_web::test]
async fn a_locked_accounts_webhooks_hear_nothing() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let admin = app.admin_token("root@example.org").await;
    let user = app.signed_up("locked.owner@example.org").await.access_token;
    create_hook(&app, &user, json!({"url": receiver.url, "events": ["*"]})).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'locked.owner@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let locked = app
        .post_with_token(&format!("/api/v1/admin/users/{id}/lock"), &admin, None)
        .await;
    assert_eq!(locked.status(), 200);
    // An event about the locked account: its webhook is not told.
    assert_eq!(
        app.login("locked.owner@example.org", "not the password at all")
            .await
            .status(),
        401
    );
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.received().is_empty());
}

#[actix_web::test]
async fn an_account_has_a_bounded_number_of_webhooks() {
    let app = app_with(LOOPBACK).await;
    let user = app.signed_up("many@example.org").await.access_token;
    for i in 0..20 {
        create_hook(
            &app,
            &user,
            json!({"url": format!("http://127.0.0.1:9/{i}")}),
        )
        .await;
    }
    let one_more = app
        .post_with_token(HOOKS, &user, Some(&json!({"url": "http://127.0.0.1:9/x"})))
        .await;
    assert_eq!(
        problem(one_more, 422).await["errors"][0]["rule"],
        "too_many"
    );
}

#[actix_web::test]
async fn a_credential_that_does_not_open_sends_nothing_and_fails_the_attempt() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("broken@example.org").await.access_token;
    let hook = create_hook(
        &app,
        &user,
        json!({"url": receiver.url, "credential": {"type": "bearer", "token": "tok-0123456789abcdef"}}),
    )
    .await;
    let id = hook["id"].as_str().expect("id").to_owned();
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute(
        "UPDATE webhooks SET credential = 'fernet:v1:not-a-token' WHERE id = ?1",
        [id.as_str()],
    )
    .expect("corrupt");
    send_test(&app, &user, &id).await;
    let (status, attempts, _) = wait_for_attempts(&app, &id, 1).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    let class: String = conn
        .query_row("SELECT error_class FROM webhook_attempts", [], |r| r.get(0))
        .expect("attempt");
    assert_eq!(class, "credential");
    assert!(
        receiver.received().is_empty(),
        "nothing is sent without its credential"
    );
}

#[actix_web::test]
async fn a_delivery_is_retried_only_through_its_own_webhook() {
    let app = app_with(LOOPBACK).await;
    let receiver = Receiver::start().await;
    let user = app.signed_up("two.hooks@example.org").await.access_token;
    let a = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let b = create_hook(&app, &user, json!({"url": receiver.url})).await;
    let (a, b) = (a["id"].as_str().expect("a"), b["id"].as_str().expect("b"));
    send_test(&app, &user, a).await;
    receiver.wait_for(1).await;
    let delivery = newest_delivery(&app, &user, a).await;
    let crossed = retry(&app, &user, b, &delivery).await;
    problem(crossed, 404).await;
}

#[actix_web::test]
async fn a_host_that_does_not_resolve_is_said_to_not_resolve() {
    let app = app_with(&[]).await;
    let token = app.signed_up("typo@example.org").await.access_token;
    let refused = app
        .post_with_token(
            HOOKS,
            &token,
            Some(&json!({"url": "https://no-such-host.invalid/hook"})),
        )
        .await;
    let body = problem(refused, 422).await;
    assert_eq!(body["errors"][0]["rule"], "unresolvable");
}
