//! The metrics listener: `GET /metrics` on `METRICS_BIND_ADDRESS`, read with a
//! real Prometheus text parser (`prometheus-parse`). Each test makes events happen
//! through the API and checks that the series named for them moved — and that a
//! spray of client addresses adds no series. The listener is off unless asked for,
//! and refuses a non-loopback address unless `METRICS_ALLOW_REMOTE=true`.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use portcullis::Application;
use portcullis::clock::Clock;
use portcullis::config::{ConfigSources, Mode, Settings, Status};
use prometheus_parse::{Scrape, Value};
use serde_json::{Value as Json, json};

use crate::helpers::{
    GOOD_PASSWORD, TestApp, run_binary, secret_pairs, test_settings, test_variables,
};

/// An app with its metrics listener on a free loopback port.
struct Metered {
    app: TestApp,
    /// e.g. `http://127.0.0.1:41235/metrics`
    metrics_url: String,
}

async fn metered_app_with(overrides: &[(&str, &str)], clock: Clock) -> Metered {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut overrides = overrides.to_vec();
    overrides.push(("METRICS_BIND_ADDRESS", "127.0.0.1:0"));
    let settings = test_settings(dir.path(), &overrides);
    let app = Application::build_with(settings.clone(), clock.clone(), |_| {})
        .await
        .expect("the application builds");
    let metrics_url = format!(
        "http://{}/metrics",
        app.metrics_addr().expect("the metrics listener is on")
    );
    let test_app = TestApp {
        address: app.base_url(),
        client: reqwest::Client::new(),
        db: app.database().clone(),
        db_path: settings.database.path.clone(),
        settings,
        clock,
        handle: app.handle(),
        state: app.state().clone(),
        dir,
    };
    actix_web::rt::spawn(app.run_until_stopped());
    Metered {
        app: test_app,
        metrics_url,
    }
}

async fn metered_app() -> Metered {
    metered_app_with(&[], Clock::system()).await
}

/// One series: its name and labels (in a fixed order), for comparing sets.
type SeriesKey = (String, Vec<(String, String)>);

/// A scrape, parsed.
struct Scraped(Scrape);

impl Scraped {
    /// The value of the series `metric` with exactly `labels` (a histogram's
    /// value is its count of observations); `None` when there is no such series.
    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .samples
            .iter()
            .find(|s| {
                s.metric == metric
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                Value::Summary(_) => f64::NAN,
            })
    }

    /// As [`Scraped::get`], for a series that must exist.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(metric, labels)
            .unwrap_or_else(|| panic!("no series {metric} {labels:?}"))
    }

    fn series(&self) -> BTreeSet<SeriesKey> {
        self.0
            .samples
            .iter()
            .map(|s| {
                let mut labels: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.sort();
                (s.metric.clone(), labels)
            })
            .collect()
    }
}

impl Metered {
    async fn scrape(&self) -> Scraped {
        let response = self
            .app
            .client
            .get(&self.metrics_url)
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.expect("body");
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        Scraped(Scrape::parse(lines).expect("the Prometheus text format"))
    }

    /// Scrapes until `metric {labels}` reaches `at_least` (up to 10 s): for work
    /// done in the background, like webhook deliveries.
    async fn scrape_until(&self, metric: &str, labels: &[(&str, &str)], at_least: f64) -> Scraped {
        for _ in 0..200 {
            let scraped = self.scrape().await;
            if scraped.get(metric, labels).is_some_and(|v| v >= at_least) {
                return scraped;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{metric} {labels:?} never reached {at_least}");
    }
}

const LOGINS: &str = "portcullis_logins_total";

#[actix_web::test]
async fn requests_are_counted_by_route_class_and_status_with_their_latency() {
    let metered = metered_app().await;
    let before = metered.scrape().await;
    let health = [("route_class", "health"), ("status", "200")];
    assert_eq!(before.get("portcullis_http_requests_total", &health), None);
    assert_eq!(metered.app.get("/health").await.status(), 200);
    assert_eq!(metered.app.get("/api/v1/documents/123").await.status(), 401);
    // Spelled with a percent-encoded letter, the router still serves it as a
    // document read, and it is counted as one.
    assert_eq!(
        metered.app.get("/api/v1/%64ocuments/123").await.status(),
        401
    );
    let after = metered.scrape().await;
    assert_eq!(after.value("portcullis_http_requests_total", &health), 1.0);
    assert_eq!(
        after.value(
            "portcullis_http_requests_total",
            &[("route_class", "documents"), ("status", "401")]
        ),
        2.0
    );
    // The API's own port never serves the metrics.
    assert_eq!(metered.app.get("/metrics").await.status(), 404);
    let latency = "portcullis_http_request_duration_seconds";
    assert_eq!(
        after.value(latency, &[("route_class", "health")])
            - before.value(latency, &[("route_class", "health")]),
        1.0
    );
    // The metrics listener answers /metrics only, and is not counted as the API.
    let elsewhere = metered
        .app
        .client
        .get(metered.metrics_url.replace("/metrics", "/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(elsewhere.status(), 404);
    let posted = metered
        .app
        .client
        .post(&metered.metrics_url)
        .send()
        .await
        .expect("request");
    assert_eq!(posted.status(), 405);
}

#[actix_web::test]
async fn logins_softlocks_sessions_revocations_audit_and_writes_move() {
    let metered = metered_app_with(&[("SOFTLOCK_STEPS", "3:60")], Clock::system()).await;
    let app = &metered.app;
    let start = metered.scrape().await;
    assert_eq!(start.value("portcullis_live_sessions", &[]), 0.0);
    let outcome = |o| [("outcome", o)];
    assert_eq!(start.value(LOGINS, &outcome("success")), 0.0);

    let tokens = app.signed_up("counted@example.org").await;
    let signed_in = metered.scrape().await;
    assert_eq!(signed_in.value(LOGINS, &outcome("success")), 1.0);
    assert_eq!(signed_in.value("portcullis_live_sessions", &[]), 1.0);
    assert!(
        signed_in.value("portcullis_password_hash_queue_wait_seconds", &[])
            > start.value("portcullis_password_hash_queue_wait_seconds", &[]),
        "the password hashes waited (briefly) for a slot"
    );
    for metric in [
        "portcullis_audit_appends_total",
        "portcullis_db_write_duration_seconds",
    ] {
        assert!(
            signed_in.value(metric, &[]) > start.value(metric, &[]),
            "{metric} moved"
        );
    }

    assert_eq!(
        app.login("nobody@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    for _ in 0..3 {
        assert_eq!(
            app.login("counted@example.org", "wrong password entirely")
                .await
                .status(),
            401
        );
    }
    // Locked now: even the right password is refused.
    assert_eq!(
        app.login("counted@example.org", GOOD_PASSWORD)
            .await
            .status(),
        401
    );
    let refused = metered.scrape().await;
    // Every refusal is one outcome, as the answer is one 401: the metrics tell no
    // more than the API about which addresses have accounts.
    assert_eq!(refused.value(LOGINS, &outcome("failed")), 5.0);
    for told_apart in ["unknown_email", "wrong_password", "softlocked", "inactive"] {
        assert_eq!(
            refused.get(LOGINS, &outcome(told_apart)),
            None,
            "{told_apart}"
        );
    }
    assert_eq!(refused.value("portcullis_softlocks_total", &[]), 1.0);

    let revocations =
        |scraped: &Scraped| scraped.value("portcullis_revocations_total", &[("scope", "session")]);
    assert_eq!(
        app.post_with_token("/api/v1/auth/logout", &tokens.access_token, None)
            .await
            .status(),
        200
    );
    let logged_out = metered.scrape().await;
    assert_eq!(revocations(&logged_out) - revocations(&refused), 1.0);
    assert_eq!(logged_out.value("portcullis_live_sessions", &[]), 0.0);
    assert_eq!(
        logged_out.value("portcullis_db_write_errors_total", &[]),
        0.0
    );

    // A write the database refuses is counted; a reading that fails is left out
    // of the scrape (which still answers) and counted.
    app.db.inject_write_errors(true);
    assert_eq!(
        app.login("counted@example.org", "wrong password entirely")
            .await
            .status(),
        503
    );
    app.db.inject_read_errors(true);
    let failing = metered.scrape().await;
    app.db.inject_write_errors(false);
    app.db.inject_read_errors(false);
    assert!(failing.value("portcullis_db_write_errors_total", &[]) >= 1.0);
    assert_eq!(failing.get("portcullis_live_sessions", &[]), None);
    assert_eq!(failing.get("portcullis_webhook_outbox_backlog", &[]), None);
    assert_eq!(
        failing.value("portcullis_metrics_collection_errors_total", &[]),
        2.0
    );
}

#[actix_web::test]
async fn mfa_checks_are_counted_by_outcome() {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let metered = metered_app_with(&[], Clock::manual(now - now % 30 + 5)).await;
    let app = &metered.app;
    let user = crate::mfa::enrolled(app, "second.factor@example.org").await;
    app.clock.advance(30);
    let response = app.login("second.factor@example.org", GOOD_PASSWORD).await;
    let body: Json = response.json().await.expect("json");
    let challenge = body["mfa_token"].as_str().expect("challenge").to_owned();
    let verify = |code: String| {
        let challenge = challenge.clone();
        async move {
            app.post_json(
                "/api/v1/auth/mfa/verify-login",
                &json!({"mfa_token": challenge, "code": code}),
            )
            .await
            .status()
        }
    };
    let wrong = if user.code(app) == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(verify(wrong.to_owned()).await, 401);
    assert_eq!(verify(user.code(app)).await, 200);
    let scraped = metered.scrape().await;
    let checks = "portcullis_mfa_checks_total";
    assert_eq!(scraped.value(checks, &[("outcome", "wrong")]), 1.0);
    assert_eq!(scraped.value(checks, &[("outcome", "totp")]), 1.0);
    assert_eq!(scraped.value(LOGINS, &[("outcome", "mfa_required")]), 1.0);
}

#[actix_web::test]
async fn limiter_denials_are_counted_by_class() {
    let metered = metered_app_with(&[("RATE_LIMIT_LOGIN_IP", "2/60")], Clock::system()).await;
    let denials = |scraped: &Scraped| {
        scraped.value(
            "portcullis_rate_limit_denials_total",
            &[("class", "login_ip")],
        )
    };
    assert_eq!(denials(&metered.scrape().await), 0.0);
    let statuses = [
        metered.app.login("a@example.org", "x").await.status(),
        metered.app.login("a@example.org", "x").await.status(),
        metered.app.login("a@example.org", "x").await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [401, 401, 429]);
    let scraped = metered.scrape().await;
    assert_eq!(denials(&scraped), 1.0);
    assert_eq!(
        scraped.value(
            "portcullis_rate_limit_overflow_total",
            &[("class", "login_ip")]
        ),
        0.0
    );
}

#[actix_web::test]
async fn access_decisions_are_counted_by_effect_and_reason() {
    let metered = metered_app().await;
    let app = &metered.app;
    let decisions = "portcullis_abac_decisions_total";
    let allowed = [("effect", "allow"), ("reason", "allowed")];
    let default_deny = [("effect", "deny"), ("reason", "default_deny")];
    let start = metered.scrape().await;
    let token = app.signed_up("decided@example.org").await.access_token;
    let created = app
        .post_with_token(
            "/api/v1/documents",
            &token,
            Some(
                &json!({"title": "t", "body": "b", "classification": "internal",
                         "attributes": {"department": "ops"}}),
            ),
        )
        .await;
    assert_eq!(created.status(), 201);
    let checked: Json = app
        .post_with_token(
            "/api/v1/authz/check",
            &token,
            Some(&json!({"action": "polish", "resource": {"type": "widget"}})),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(checked["allowed"], false, "{checked}");
    let after = metered.scrape().await;
    assert!(after.value(decisions, &allowed) > start.value(decisions, &allowed));
    assert_eq!(
        after.value(decisions, &default_deny) - start.value(decisions, &default_deny),
        1.0
    );
    assert_eq!(
        after.value(decisions, &[("effect", "deny"), ("reason", "error")]),
        0.0
    );
}

/// Asks the gate, as the trusted proxy, about a GET of `http://{host}/`.
async fn ask_gate(app: &TestApp, host: &str) -> u16 {
    crate::gate::no_redirects()
        .get(app.url("/api/v1/gate/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "http")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", "/")
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[actix_web::test]
async fn gate_decisions_are_counted_by_configured_host_and_outcome() {
    let vars = crate::gate::gate_vars("127.0.0.1");
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let metered = metered_app_with(&pairs, Clock::system()).await;
    assert_eq!(ask_gate(&metered.app, "app.gate.test").await, 401);
    assert_eq!(ask_gate(&metered.app, "other.gate.test").await, 401);
    assert_eq!(ask_gate(&metered.app, "app.elsewhere.test").await, 403);
    let scraped = metered.scrape().await;
    let decisions = "portcullis_gate_decisions_total";
    assert_eq!(
        scraped.value(
            decisions,
            &[("host", "*.gate.test"), ("outcome", "sign_in")]
        ),
        2.0
    );
    assert_eq!(
        scraped.value(
            decisions,
            &[("host", "other"), ("outcome", "unprotected_host")]
        ),
        1.0
    );
    // The hosts asked about are not labels: only the configured entry and `other`.
    let hosts: BTreeSet<String> = scraped
        .0
        .samples
        .iter()
        .filter(|s| s.metric == decisions)
        .filter_map(|s| s.labels.get("host").map(str::to_owned))
        .collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["*.gate.test".to_owned(), "other".to_owned()])
    );
}

#[actix_web::test]
async fn webhook_deliveries_and_the_outbox_are_counted() {
    let receiver = HttpServer::new(|| App::new().default_service(web::to(HttpResponse::Ok)))
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind receiver");
    let receiver_url = format!("http://{}/hook", receiver.addrs()[0]);
    actix_web::rt::spawn(receiver.run());
    let metered = metered_app_with(
        &[("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8")],
        Clock::system(),
    )
    .await;
    let app = &metered.app;
    assert_eq!(
        metered
            .scrape()
            .await
            .value("portcullis_webhook_outbox_backlog", &[]),
        0.0
    );
    let token = app.signed_up("hooks@example.org").await.access_token;
    let created = app
        .post_with_token(
            "/api/v1/webhooks",
            &token,
            Some(&json!({"url": receiver_url, "events": ["document.created"]})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let hook: Json = created.json().await.expect("json");
    let id = hook["id"].as_str().expect("id");
    let queued = app
        .post_with_token(&format!("/api/v1/webhooks/{id}/test"), &token, None)
        .await;
    assert_eq!(queued.status(), 202);
    let delivered = [("outcome", "delivered")];
    let scraped = metered
        .scrape_until("portcullis_webhook_deliveries_total", &delivered, 1.0)
        .await;
    assert_eq!(
        scraped.value(
            "portcullis_webhook_deliveries_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
    assert_eq!(scraped.value("portcullis_webhook_outbox_backlog", &[]), 0.0);
}

/// Failed sign-ins from hundreds of client addresses (through the trusted proxy)
/// add no series: no label carries an address or an e-mail.
#[actix_web::test]
async fn a_spray_of_addresses_and_accounts_adds_no_series() {
    let metered = metered_app_with(
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_LOGIN_IP", "1/3600"),
        ],
        Clock::system(),
    )
    .await;
    let app = &metered.app;
    // Every status this spray is answered with has been seen once.
    assert_eq!(
        app.login_from("198.51.100.1", "first@example.org", "x")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login_from("198.51.100.1", "first@example.org", "x")
            .await
            .status(),
        429
    );
    let before = metered.scrape().await;
    for n in 0..300u32 {
        let address = format!("10.{}.{}.{}", n / 65_536, (n / 256) % 256, n % 256);
        let email = format!("sprayed{n}@example.org");
        for expected in [401, 429] {
            let status = app.login_from(&address, &email, "x").await.status();
            assert_eq!(status, expected, "{address}");
        }
    }
    let after = metered.scrape().await;
    assert_eq!(after.series(), before.series(), "no series added");
    assert_eq!(
        after.value(LOGINS, &[("outcome", "failed")])
            - before.value(LOGINS, &[("outcome", "failed")]),
        300.0
    );
    assert_eq!(
        after.value(
            "portcullis_rate_limit_denials_total",
            &[("class", "login_ip")]
        ) - before.value(
            "portcullis_rate_limit_denials_total",
            &[("class", "login_ip")]
        ),
        300.0
    );
    let text = app
        .client
        .get(&metered.metrics_url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(!text.contains("10.0.1."), "no address in the metrics");
    assert!(!text.contains("example.org"), "no e-mail in the metrics");
}

#[actix_web::test]
async fn the_listener_is_off_unless_an_address_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Application::build(test_settings(dir.path(), &[]))
        .await
        .expect("builds");
    assert_eq!(app.metrics_addr(), None);
}

/// The settings from the test variables with `overrides` (`None` when refused),
/// and what the checks said about the metrics listener.
fn load(overrides: &[(&str, &str)]) -> (Option<Settings>, Vec<(Status, String)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = test_variables(dir.path(), overrides);
    let sources = ConfigSources::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (settings, findings) = match Settings::load(&sources, Mode::Production) {
        Ok((settings, findings)) => (Some(settings), findings),
        Err(findings) => (None, findings),
    };
    let said = findings
        .iter()
        .filter(|f| f.variable.starts_with("METRICS_"))
        .map(|f| (f.status, f.message.clone()))
        .collect();
    (settings, said)
}

#[test]
fn only_loopback_is_allowed_unless_remote_is_allowed_on_purpose() {
    let (off, said) = load(&[]);
    assert_eq!(off.expect("unset is fine").metrics.bind_address, None);
    assert!(said.is_empty(), "{said:?}");
    for address in ["127.0.0.1:9464", "[::1]:9464"] {
        let (on, said) = load(&[("METRICS_BIND_ADDRESS", address)]);
        assert_eq!(
            on.expect("loopback is fine").metrics.bind_address,
            Some(address.parse().expect("address"))
        );
        assert!(said.is_empty(), "{said:?}");
    }
    for address in ["0.0.0.0:9464", "192.0.2.10:9464", "[::]:9464"] {
        let (refused, said) = load(&[("METRICS_BIND_ADDRESS", address)]);
        assert!(refused.is_none(), "{address} refused");
        assert!(
            said.iter().any(|(status, message)| *status == Status::Fail
                && message.contains("METRICS_ALLOW_REMOTE=true")),
            "{address}: the fix is named: {said:?}"
        );
    }
    let (remote, said) = load(&[
        ("METRICS_BIND_ADDRESS", "0.0.0.0:9464"),
        ("METRICS_ALLOW_REMOTE", "true"),
    ]);
    assert!(remote.is_some(), "allowed on purpose");
    assert!(
        matches!(said.as_slice(), [(Status::Warn, _)]),
        "and warned about: {said:?}"
    );
    let (garbled, said) = load(&[("METRICS_BIND_ADDRESS", "localhost")]);
    assert!(garbled.is_none());
    assert!(said.iter().any(|(status, _)| *status == Status::Fail));
    let (shared, said) = load(&[
        ("BIND_ADDRESS", "127.0.0.1:8080"),
        ("METRICS_BIND_ADDRESS", "127.0.0.1:8080"),
    ]);
    assert!(shared.is_none());
    assert!(
        said.iter()
            .any(|(status, m)| *status == Status::Fail && m.contains("BIND_ADDRESS too")),
        "{said:?}"
    );
}

#[test]
fn serve_refuses_a_remote_metrics_address_with_exit_2_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("p.db").to_string_lossy().into_owned();
    let mut vars: Vec<(&str, String)> = secret_pairs();
    vars.push(("DATABASE_PATH", db));
    vars.push(("METRICS_BIND_ADDRESS", "0.0.0.0:9464".to_owned()));
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = run_binary(dir.path(), &["serve"], &borrowed);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("METRICS_BIND_ADDRESS") && stderr.contains("METRICS_ALLOW_REMOTE=true"),
        "{stderr}"
    );
}
