//! One rate-limiter check: the per-request cost of the limits. Measured against a
//! table already holding 100,000 keys, for a key that is allowed and for one that is
//! denied (spent bucket).
//!
//! Goal (issue 4): median < 1 µs. Run: `cargo bench --bench limits`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::clock::Clock;
use portcullis::config::{RateLimitSettings, RateQuota, SoftlockSettings};
use portcullis::limits::{LimitKey, RateLimits, RouteClass};

fn settings() -> RateLimitSettings {
    RateLimitSettings {
        authenticated: RateQuota::new(1_000_000, 1),
        anonymous: RateQuota::new(100, 60),
        login_ip: RateQuota::new(5, 60),
        login_account: RateQuota::new(10, 60),
        register_ip: RateQuota::new(3, 3600),
        mfa_ip: RateQuota::new(10, 60),
        mfa_account: RateQuota::new(5, 60),
        password_account: RateQuota::new(5, 60),
        refresh_ip: RateQuota::new(30, 60),
        passkey_start_ip: RateQuota::new(30, 60),
        gate_user: RateQuota::new(1200, 60),
        gate_ip: RateQuota::new(1200, 60),
        max_keys: 200_000,
        softlock: SoftlockSettings {
            steps: vec![(5, 60)],
            forget_after_seconds: 3600,
        },
    }
}

fn ip(n: u32) -> LimitKey {
    LimitKey::ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
}

fn bench_limits(c: &mut Criterion) {
    let limits = RateLimits::new(&settings(), Clock::system());
    for n in 0..100_000 {
        limits.check(RouteClass::LoginIp, &ip(n));
        limits.check(RouteClass::Authenticated, &ip(n));
    }
    let spent = ip(7);
    for _ in 0..10 {
        limits.check(RouteClass::LoginIp, &spent);
    }
    let busy = ip(8);
    c.bench_function("limiter check, allowed (100k keys held)", |b| {
        b.iter(|| limits.check(RouteClass::Authenticated, black_box(&busy)))
    });
    c.bench_function("limiter check, denied (100k keys held)", |b| {
        b.iter(|| limits.check(RouteClass::LoginIp, black_box(&spent)))
    });
}

criterion_group!(benches, bench_limits);
criterion_main!(benches);
