//! Webhook costs. (1) Sealing and opening one stored credential with the secret box
//! (Fernet), the per-credential cost at rest. (2) Deliveries per second to a local
//! receiver: 1,000 queued deliveries to one webhook, claimed, signed, sent over
//! loopback HTTP (at most `WEBHOOK_ENDPOINT_CONCURRENCY` in flight to that one
//! webhook) and recorded, per iteration.
//!
//! Goal (issue 7): >= 500 deliveries/s. Run: `cargo bench --bench webhooks`; the
//! deliveries figure is 1,000 / (time per iteration).

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::audit::RequestMeta;
use portcullis::clock::Clock;
use portcullis::config::KeyPurpose;
use portcullis::config::{ConfigSources, Mode, Settings};
use portcullis::crypto::keys::{fernet_key, random_password, signing_secret};
use portcullis::crypto::secret_box::SecretBox;
use portcullis::db::{DbError, webhooks};
use portcullis::model::{Email, Role};
use portcullis::state::AppState;
use portcullis::webhooks::model::Credential;
use portcullis::webhooks::service::WebhookChanges;
use portcullis::webhooks::worker::{Worker, client};
use secrecy::{ExposeSecret, SecretString};

const BATCH: usize = 1_000;

fn bench_credentials(c: &mut Criterion) {
    let key = fernet_key().expect("rng");
    let sealer = SecretBox::new(KeyPurpose::Credential, std::slice::from_ref(&key)).expect("key");
    let credential = Credential::Bearer {
        token: SecretString::from("a-bearer-token-of-a-typical-length-0123456789"),
    };
    let stored = credential.to_stored().expect("stored");
    let sealed = sealer
        .seal(stored.expose_secret().as_bytes())
        .expect("seal");
    c.bench_function("credential seal (Fernet)", |b| {
        b.iter(|| sealer.seal(black_box(stored.expose_secret().as_bytes())))
    });
    c.bench_function("credential open + parse", |b| {
        b.iter(|| {
            let opened = sealer.open(black_box(&sealed)).expect("open");
            Credential::from_stored(opened.plaintext.expose_secret())
        })
    });
}

/// A receiver on its own thread and runtime: answers 204 to everything.
fn start_receiver() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| {
                App::new().default_service(web::to(|| async { HttpResponse::NoContent().finish() }))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .expect("bind");
            let _ = tx.send(server.addrs()[0]);
            let _ = server.run().await;
        });
    });
    let addr = rx.recv().expect("receiver address");
    format!("http://{addr}/hook")
}

fn bench_deliveries(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start_receiver();
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
            "DATABASE_PATH".into(),
            dir.path().join("bench.db").to_string_lossy().into_owned(),
        ),
        (
            "WEBHOOK_ALLOWED_PRIVATE_NETWORKS".into(),
            "127.0.0.0/8".into(),
        ),
    ];
    let sources = ConfigSources::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (settings, _) = Settings::load(&sources, Mode::Production).expect("settings");
    let system = actix_web::rt::System::new();
    let (state, webhook) = system.block_on(async {
        let state = AppState::open(settings, Clock::system())
            .await
            .expect("state");
        let email = Email::parse("bench@example.org").expect("email");
        let password = state
            .accounts
            .check_new_password(random_password().expect("rng"), &email, "password")
            .await
            .expect("password");
        let user = state
            .accounts
            .create_user(
                email,
                password,
                Role::User,
                Default::default(),
                &RequestMeta::default(),
            )
            .await
            .expect("user");
        let created = state
            .webhooks
            .create(
                user.id,
                WebhookChanges {
                    url: Some(receiver.clone()),
                    credential: Some(Credential::Bearer {
                        token: SecretString::from("bench-token-0123456789"),
                    }),
                    ..WebhookChanges::default()
                },
                &RequestMeta::default(),
            )
            .await
            .expect("webhook");
        (state, created.webhook.id)
    });
    let http = client(&state.webhooks).expect("client");
    let mut worker = Worker::new(state.webhooks.clone(), http);
    let mut group = c.benchmark_group("webhook deliveries");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("1000 deliveries to a local receiver", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                system.block_on(async {
                    state
                        .database()
                        .write(move |tx| {
                            for i in 0..BATCH {
                                let body = format!(r#"{{"type":"webhook.test","timestamp":"now","data":{{"n":{i}}}}}"#);
                                webhooks::enqueue(tx, &format!("msg_{}", uuid::Uuid::new_v4().simple()), webhook, "webhook.test", &body, 0)?;
                            }
                            Ok::<_, DbError>(())
                        })
                        .await
                        .expect("enqueue");
                    let started = Instant::now();
                    let mut sent = 0;
                    while sent < BATCH {
                        sent += worker.turn().await.expect("deliver");
                    }
                    total += started.elapsed();
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_credentials, bench_deliveries);
criterion_main!(benches);
