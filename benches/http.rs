//! The hot path in-process, layer by layer (issue 15): what each middleware adds to
//! a request, and what the four load targets cost without the network, so a
//! regression in any layer shows here before it shows in `scripts/load.sh`.
//!
//! - `layers/…`: one route answering `{"status":"ok"}`, bare, then with the
//!   middleware added one at a time in the order requests meet it (security
//!   headers, request context, CORS, rate limits);
//! - `requests/…`: the whole application (`startup::app`) with the default
//!   settings: `GET /health`, `GET /api/v1/auth/me`, `GET /api/v1/documents/{id}`
//!   and an allowed forward-auth decision (portal cookie, 100 route policies).
//!
//! Run: `cargo bench --bench http`.

/// The server's allocator (`src/main.rs`), so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::net::SocketAddr;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::clock::Clock;
use portcullis::config::{ConfigSources, LogRequests, Mode, Settings};
use portcullis::crypto::keys::{fernet_key, signing_secret};
use portcullis::http::cors::cors;
use portcullis::http::rate_limit::RateLimit;
use portcullis::http::request_context::RequestContext;
use portcullis::http::security_headers::SecurityHeaders;
use portcullis::state::AppState;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const PASSWORD: &str = "orbit lantern velvet cactus 42";

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

fn settings(dir: &std::path::Path) -> Settings {
    let pairs: Vec<(String, String)> = vec![
        (
            "JWT_SECRET_KEY".into(),
            signing_secret().expect("rng").expose_secret().to_owned(),
        ),
        (
            "CREDENTIAL_ENCRYPTION_KEY".into(),
            fernet_key().expect("rng").expose_secret().to_owned(),
        ),
        (
            "MFA_ENCRYPTION_KEY".into(),
            fernet_key().expect("rng").expose_secret().to_owned(),
        ),
        (
            "GATE_ASSERTION_KEY".into(),
            portcullis::gate::assertion::generate_key().expect("key"),
        ),
        (
            "DATABASE_PATH".into(),
            dir.join("bench.db").to_string_lossy().into_owned(),
        ),
        ("GATE_PORTAL_URL".into(), "http://auth.load.test".into()),
        ("GATE_HOSTS".into(), "*.load.test".into()),
        ("GATE_COOKIE_DOMAIN".into(), "load.test".into()),
        ("TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
        // One user and one address send everything: the limits are lifted, and
        // every limiter still runs.
        ("DEFAULT_RATE_LIMIT_CALLS".into(), "1000000".into()),
        ("DEFAULT_RATE_LIMIT_PERIOD".into(), "1".into()),
        ("RATE_LIMIT_GATE_USER".into(), "1000000/1".into()),
        ("RATE_LIMIT_GATE_IP".into(), "1000000/1".into()),
        ("RATE_LIMIT_LOGIN_IP".into(), "1000000/1".into()),
        ("RATE_LIMIT_REGISTER_IP".into(), "1000000/1".into()),
        ("RATE_LIMIT_ANONYMOUS".into(), "1000000/1".into()),
    ];
    let sources = ConfigSources::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Settings::load(&sources, Mode::Production)
        .map(|(settings, _)| settings)
        .expect("settings")
}

fn bench_layers(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let http = settings.http.clone();
    let system = actix_web::rt::System::new();
    let state = system
        .block_on(AppState::open(settings, Clock::system()))
        .expect("state");
    let data = web::Data::new(state);
    let mut group = c.benchmark_group("layers");
    macro_rules! layer {
        ($name:expr, $app:expr) => {{
            let service = system.block_on(test::init_service($app));
            group.bench_function($name, |b| {
                b.iter(|| {
                    let request = test::TestRequest::get()
                        .uri("/health")
                        .peer_addr(peer())
                        .to_request();
                    let response: ServiceResponse<_> =
                        system.block_on(service.call(request)).expect("response");
                    assert_eq!(response.status(), StatusCode::OK);
                    black_box(response)
                })
            });
        }};
    }
    let route = || web::get().to(health);
    layer!(
        "1 bare route",
        App::new().app_data(data.clone()).route("/health", route())
    );
    layer!(
        "2 + security headers",
        App::new()
            .app_data(data.clone())
            .route("/health", route())
            .wrap(SecurityHeaders::new(&http))
    );
    layer!(
        "3 + request context",
        App::new()
            .app_data(data.clone())
            .route("/health", route())
            .wrap(RequestContext::new(
                &http.trusted_proxies,
                LogRequests::Failures,
                data.metrics.http().clone()
            ))
            .wrap(SecurityHeaders::new(&http))
    );
    layer!(
        "4 + CORS",
        App::new()
            .app_data(data.clone())
            .route("/health", route())
            .wrap(cors(&http.cors_allowed_origins))
            .wrap(RequestContext::new(
                &http.trusted_proxies,
                LogRequests::Failures,
                data.metrics.http().clone()
            ))
            .wrap(SecurityHeaders::new(&http))
    );
    layer!(
        "5 + rate limits",
        App::new()
            .app_data(data.clone())
            .route("/healthz", route())
            .route("/health", route())
            .wrap(RateLimit)
            .wrap(cors(&http.cors_allowed_origins))
            .wrap(RequestContext::new(
                &http.trusted_proxies,
                LogRequests::Failures,
                data.metrics.http().clone()
            ))
            .wrap(SecurityHeaders::new(&http))
    );
    group.finish();
}

/// Calls the service with a JSON body (or none); returns the status and the body.
async fn call<S, B>(
    service: &S,
    request: test::TestRequest,
    body: Option<Value>,
) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let request = match body {
        Some(body) => request.set_json(body),
        None => request,
    };
    let response = test::call_service(service, request.peer_addr(peer()).to_request()).await;
    let status = response.status();
    let bytes = test::read_body(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn route_policies() -> Value {
    let mut policies = vec![json!({
        "name": "signed-in accounts use app.load.test", "effect": "allow",
        "resource_type": "route", "actions": ["get", "post"],
        "conditions": {"attribute": "resource.attributes.host", "operator": "eq", "value": "app.load.test"}
    })];
    for i in 0..99 {
        policies.push(if i % 2 == 1 {
            json!({"name": format!("app{i} admin area is closed"), "effect": "deny",
                   "resource_type": "route", "actions": ["*"],
                   "conditions": {"all": [
                       {"attribute": "resource.attributes.host", "operator": "eq", "value": format!("app{i}.load.test")},
                       {"attribute": "resource.attributes.path", "operator": "starts_with", "value": "/admin"}]}})
        } else {
            json!({"name": format!("department {i} uses app{i}"), "effect": "allow",
                   "resource_type": "route", "actions": ["get"],
                   "conditions": {"all": [
                       {"attribute": "resource.attributes.host", "operator": "eq", "value": format!("app{i}.load.test")},
                       {"attribute": "subject.attributes.department", "operator": "eq", "value": format!("dept{i}")}]}})
        });
    }
    json!({ "policies": policies })
}

fn bench_requests(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let system = actix_web::rt::System::new();
    let (service, token, document, cookie) = system.block_on(async {
        let state = AppState::open(settings, Clock::system())
            .await
            .expect("state");
        let service =
            test::init_service(portcullis::startup::app(web::Data::new(state), |_| {})).await;
        let credentials = json!({"email": "load@example.org", "password": PASSWORD});
        let admin = json!({"email": "admin@example.org", "password": PASSWORD});
        for account in [&credentials, &admin] {
            let (status, _) = call(
                &service,
                test::TestRequest::post().uri("/api/v1/auth/register"),
                Some(account.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let (_, tokens) = call(
            &service,
            test::TestRequest::post().uri("/api/v1/auth/login"),
            Some(credentials.clone()),
        )
        .await;
        let token = tokens["access_token"].as_str().expect("token").to_owned();
        let (status, created) = call(
            &service,
            test::TestRequest::post()
                .uri("/api/v1/documents")
                .insert_header(("Authorization", format!("Bearer {token}"))),
            Some(
                json!({"title": "Load", "body": "x", "classification": "internal",
                        "attributes": {"department": "engineering"}}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let document = created["id"].as_str().expect("id").to_owned();
        // The route policies need an administrator: made one in the database.
        let conn = rusqlite::Connection::open(dir.path().join("bench.db")).expect("open");
        conn.execute(
            "UPDATE users SET role = 'admin' WHERE email = 'admin@example.org'",
            [],
        )
        .expect("promote");
        let (_, tokens) = call(
            &service,
            test::TestRequest::post().uri("/api/v1/auth/login"),
            Some(admin),
        )
        .await;
        let admin_token = tokens["access_token"].as_str().expect("token").to_owned();
        let (status, _) = call(
            &service,
            test::TestRequest::post()
                .uri("/api/v1/admin/policies/import")
                .insert_header(("Authorization", format!("Bearer {admin_token}"))),
            Some(route_policies()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let response = test::call_service(
            &service,
            test::TestRequest::post()
                .uri("/gate/login")
                .peer_addr(peer())
                .set_form([
                    ("email", "load@example.org"),
                    ("password", PASSWORD),
                    ("rd", ""),
                ])
                .to_request(),
        )
        .await;
        let cookie = response
            .response()
            .cookies()
            .find(|c| c.name() == "portcullis_gate")
            .map(|c| format!("portcullis_gate={}", c.value()))
            .expect("portal cookie");
        (service, token, document, cookie)
    });
    let bearer = format!("Bearer {token}");
    let document_uri = format!("/api/v1/documents/{document}");
    let mut group = c.benchmark_group("requests");
    let mut measure = |name: &str, make: &dyn Fn() -> test::TestRequest| {
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = make().peer_addr(peer()).to_request();
                let response = system.block_on(service.call(request)).expect("response");
                assert_eq!(response.status(), StatusCode::OK, "{name}");
                black_box(response)
            })
        });
    };
    measure("GET /health", &|| test::TestRequest::get().uri("/health"));
    measure("GET /api/v1/auth/me", &|| {
        test::TestRequest::get()
            .uri("/api/v1/auth/me")
            .insert_header(("Authorization", bearer.as_str()))
    });
    measure("GET /api/v1/documents/{id}", &|| {
        test::TestRequest::get()
            .uri(&document_uri)
            .insert_header(("Authorization", bearer.as_str()))
    });
    measure("forward-auth allowed (cookie, 100 route policies)", &|| {
        test::TestRequest::get()
            .uri("/api/v1/gate/forward-auth")
            .insert_header(("X-Forwarded-Method", "GET"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .insert_header(("X-Forwarded-Host", "app.load.test"))
            .insert_header(("X-Forwarded-Uri", "/dashboard"))
            .insert_header(("X-Forwarded-For", "198.51.100.7"))
            .insert_header(("Accept", "text/html"))
            .insert_header(("Cookie", cookie.as_str()))
    });
    group.finish();
}

criterion_group!(benches, bench_layers, bench_requests);
criterion_main!(benches);
