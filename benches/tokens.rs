//! The per-request cost of authentication: verifying an access token (HS256, every
//! claim) plus the revocation check that follows it (the in-memory cache answering
//! alone, as it does while it holds every live revocation). Measured twice: a token's
//! first use (signature and claims checked in full) and every later use (the token
//! was verified before; only its time, type and revocation are checked).
//!
//! Goal (issue 3): median < 5 µs. Run: `cargo bench --bench tokens`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis::auth::revocation::{RevocationStore, StoreCapacity};
use portcullis::auth::tokens::{TokenService, TokenType};
use portcullis::clock::Clock;
use portcullis::config::{DatabaseSettings, JwtSettings};
use portcullis::db::Database;
use portcullis::model::{AuthMethod, Role, UserId};
use secrecy::SecretString;
use uuid::Uuid;

fn bench_token_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::system();
    let jwt = JwtSettings {
        secret: SecretString::from("q8Zr2VxN4kLm7Tc1Hw9Jd3Fy6Bg5Ps0AuE7"),
        previous_secrets: Vec::new(),
        access_token_minutes: 15,
        refresh_token_days: 7,
        revocation_cache_capacity: 100_000,
        session_cache_capacity: 100_000,
        refresh_reuse_grace_seconds: 2,
    };
    let tokens = TokenService::new(&jwt);
    let store = runtime.block_on(async {
        let db = Database::open(&DatabaseSettings {
            path: dir.path().join("bench.db"),
            read_connections: 1,
        })
        .await
        .expect("database");
        let capacity = StoreCapacity {
            revocations: 100_000,
            sessions: 100_000,
        };
        let store =
            RevocationStore::open(db, capacity, tokens.access_ttl_seconds(), clock.clone()).await;
        // A realistic cache: ten thousand other revoked tokens and sessions, and ten
        // thousand other live sessions.
        for _ in 0..10_000 {
            store.remember_token(Uuid::new_v4(), clock.now() + 900);
            store.remember_session(Uuid::new_v4(), clock.now() + 900);
            store.remember_live_session(Uuid::new_v4(), UserId::new(), clock.now() + 86_400);
        }
        store
    });
    let (user, session) = (UserId::new(), Uuid::new_v4());
    store.remember_live_session(session, user, clock.now() + 86_400);
    let issued = tokens
        .issue_access(user, session, Role::User, AuthMethod::Password, clock.now())
        .expect("token");

    // Seen once before the measurements start, as a client's token is after its
    // first request.
    tokens
        .verify(&issued.token, TokenType::Access, clock.now())
        .expect("valid");
    let check = |token: &str| {
        let claims = tokens
            .verify(black_box(token), TokenType::Access, clock.now())
            .expect("valid");
        assert_eq!(store.check_access_cached(&claims), Some(false));
        claims
    };
    // Repeat use first: the first-use run fills the cache with thousands of new
    // tokens, which is not what a client's steady state looks like.
    c.bench_function(
        "token check, repeat use (verified before + session allow-list + revocation)",
        |b| b.iter(|| check(&issued.token)),
    );
    c.bench_function(
        "token check, first use (full verify + session allow-list + revocation)",
        |b| {
            b.iter_batched(
                || {
                    tokens
                        .issue_access(user, session, Role::User, AuthMethod::Password, clock.now())
                        .expect("token")
                        .token
                },
                |token| check(&token),
                BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, bench_token_check);
criterion_main!(benches);
