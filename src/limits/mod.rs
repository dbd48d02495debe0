//! Rate limits: one governor limiter per route class, each keyed correctly and
//! bounded in memory, on the injected clock.
//!
//! | class | quota (default) | key |
//! | --- | --- | --- |
//! | login | 5/min | client IP, **and** 10/min per account |
//! | register (only registrations that create an account or find the e-mail taken) | 3/hour | client IP |
//! | MFA verification | 10/min | client IP, **and** 5/min per account |
//! | the password again (password change, re-authentication) | 5/min | account |
//! | refresh | 30/min | client IP |
//! | passkey ceremonies started (the sign-in itself is a login attempt) | 30/min | client IP |
//! | authenticated | `DEFAULT_RATE_LIMIT_CALLS` per `DEFAULT_RATE_LIMIT_PERIOD` | user |
//! | anonymous | 100/min | client IP |
//! | gate decisions | 1200/min | user, **and** 1200/min per client address |
//!
//! Most routes spend a call on every attempt ([`RateLimits::check`]). Where only some
//! outcomes should count, a route checks before its work without spending
//! ([`RateLimits::peek`]) and spends once the outcome is known ([`RateLimits::record`]):
//! a client with nothing left is refused before any work, and concurrent requests can
//! overshoot the quota by at most their number.
//!
//! The HTTP edge (`http::rate_limit`) applies them; `/health*` is exempt. Fail-closed
//! fallbacks: a request whose client address cannot be determined is refused; a
//! full key table sends newcomers to one strict shared overflow bucket (counted,
//! and reported by the start-up wiring's sweep once a minute) — never to no limit
//! at all.

pub mod key;
pub mod store;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};

pub use key::LimitKey;
use store::{BoundedStore, Probe};

use crate::clock::Clock;
use crate::config::{RateLimitSettings, RateQuota};
use crate::telemetry::metrics::{Counter, LimitMetrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    Authenticated,
    Anonymous,
    LoginIp,
    LoginAccount,
    Register,
    MfaIp,
    MfaAccount,
    PasswordAccount,
    Refresh,
    PasskeyStartIp,
    GateUser,
    GateIp,
}

impl RouteClass {
    pub const ALL: [RouteClass; 12] = [
        RouteClass::Authenticated,
        RouteClass::Anonymous,
        RouteClass::LoginIp,
        RouteClass::LoginAccount,
        RouteClass::Register,
        RouteClass::MfaIp,
        RouteClass::MfaAccount,
        RouteClass::PasswordAccount,
        RouteClass::Refresh,
        RouteClass::PasskeyStartIp,
        RouteClass::GateUser,
        RouteClass::GateIp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Authenticated => "authenticated",
            RouteClass::Anonymous => "anonymous",
            RouteClass::LoginIp => "login_ip",
            RouteClass::LoginAccount => "login_account",
            RouteClass::Register => "register_ip",
            RouteClass::MfaIp => "mfa_ip",
            RouteClass::MfaAccount => "mfa_account",
            RouteClass::PasswordAccount => "password_account",
            RouteClass::Refresh => "refresh_ip",
            RouteClass::PasskeyStartIp => "passkey_start_ip",
            RouteClass::GateUser => "gate_user",
            RouteClass::GateIp => "gate_ip",
        }
    }

    fn quota(self, settings: &RateLimitSettings) -> RateQuota {
        match self {
            RouteClass::Authenticated => settings.authenticated,
            RouteClass::Anonymous => settings.anonymous,
            RouteClass::LoginIp => settings.login_ip,
            RouteClass::LoginAccount => settings.login_account,
            RouteClass::Register => settings.register_ip,
            RouteClass::MfaIp => settings.mfa_ip,
            RouteClass::MfaAccount => settings.mfa_account,
            RouteClass::PasswordAccount => settings.password_account,
            RouteClass::Refresh => settings.refresh_ip,
            RouteClass::PasskeyStartIp => settings.passkey_start_ip,
            RouteClass::GateUser => settings.gate_user,
            RouteClass::GateIp => settings.gate_ip,
        }
    }
}

/// The verdict of one check, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub class: RouteClass,
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again (when denied: until the next call).
    pub reset_seconds: u64,
    /// Seconds to wait before retrying; 0 when allowed, at least 1 when denied.
    pub retry_after_seconds: u64,
}

impl Decision {
    /// Whether `self` says more about the client's standing than `other` (a denial,
    /// or fewer calls left): the one worth reporting.
    pub fn tighter_than(&self, other: &Decision) -> bool {
        (!self.allowed && other.allowed)
            || (self.allowed == other.allowed && self.remaining < other.remaining)
    }
}

/// Governor's view of our injected clock.
#[derive(Clone)]
struct LimiterClock(Clock);

impl governor::clock::Clock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.monotonic_nanos())
    }
}

type Limiter =
    RateLimiter<Probe<LimitKey>, BoundedStore<LimitKey>, LimiterClock, StateInformationMiddleware>;

struct ClassLimiter {
    quota: RateQuota,
    limiter: Limiter,
    store: BoundedStore<LimitKey>,
    overflow_reported: AtomicU64,
    /// When a full table was last swept on the spot (monotonic nanoseconds).
    last_inline_sweep: AtomicU64,
}

/// A full table is swept on the spot at most this often, so newcomers reach a bucket
/// of their own as soon as refilled buckets can be dropped — not a minute later.
const INLINE_SWEEP_EVERY_NANOS: u64 = 1_000_000_000;

/// How many checks one class's overflow bucket answered since the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverflowReport {
    pub class: RouteClass,
    pub hits: u64,
}

#[derive(Clone)]
pub struct RateLimits {
    limiters: Arc<[ClassLimiter]>,
    clock: LimiterClock,
    /// Requests refused since startup, for the admin dashboard.
    denied: Arc<AtomicU64>,
    /// Each class's refusal counter in the metrics, in [`RouteClass::ALL`] order.
    denials: Arc<[Counter]>,
}

/// One refusal counter per class, in [`RouteClass::ALL`] order.
fn denial_counters(metrics: &LimitMetrics) -> Arc<[Counter]> {
    RouteClass::ALL
        .iter()
        .map(|class| metrics.denials_of(class.name()))
        .collect()
}

fn governor_quota(quota: RateQuota) -> Quota {
    let calls = NonZeroU32::new(quota.calls).unwrap_or(NonZeroU32::MIN);
    let interval_nanos = u64::from(quota.period_seconds) * 1_000_000_000 / u64::from(calls.get());
    Quota::with_period(Duration::from_nanos(interval_nanos.max(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(calls)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, clock: Clock) -> Self {
        let clock = LimiterClock(clock);
        let limiters = RouteClass::ALL
            .iter()
            .map(|class| {
                let quota = class.quota(settings);
                let store = BoundedStore::new(settings.max_keys);
                ClassLimiter {
                    quota,
                    limiter: RateLimiter::<_, _, _, NoOpMiddleware<Nanos>>::new(
                        governor_quota(quota),
                        store.clone(),
                        clock.clone(),
                    )
                    .with_middleware::<StateInformationMiddleware>(),
                    store,
                    overflow_reported: AtomicU64::new(0),
                    last_inline_sweep: AtomicU64::new(0),
                }
            })
            .collect();
        Self {
            limiters,
            clock,
            denied: Arc::new(AtomicU64::new(0)),
            denials: denial_counters(&LimitMetrics::default()),
        }
    }

    /// Counts refusals, by class, in `metrics` (set before the limits are cloned).
    pub fn with_metrics(mut self, metrics: &LimitMetrics) -> Self {
        self.denials = denial_counters(metrics);
        self
    }

    fn limiter(&self, class: RouteClass) -> &ClassLimiter {
        // ALL lists every class in declaration order, and `new` built one each.
        &self.limiters[class as usize]
    }

    /// Counts one call of `key` against `class`: allowed and spent, or refused.
    pub fn check(&self, class: RouteClass, key: &LimitKey) -> Decision {
        self.refusals_counted(self.decide(class, Probe::check(key.clone())))
    }

    /// Whether `key` has a call left in `class`, without spending it: the verdict
    /// [`RateLimits::check`] would give (from the overflow bucket when the key table is
    /// full), with `remaining` counting the call not spent. Nothing changes but the
    /// count of refusals. Follow it with [`RateLimits::record`] when the outcome counts.
    pub fn peek(&self, class: RouteClass, key: &LimitKey) -> Decision {
        self.refusals_counted(self.decide(class, Probe::peek(key.clone())))
    }

    /// Spends one call of `key` in `class` for work already done, after a
    /// [`RateLimits::peek`] let it in. When concurrent requests spent the last call
    /// meanwhile, nothing is spent and the verdict says so; the request was served, so
    /// it is not counted as refused.
    pub fn record(&self, class: RouteClass, key: &LimitKey) -> Decision {
        self.decide(class, Probe::check(key.clone()))
    }

    fn refusals_counted(&self, decision: Decision) -> Decision {
        if !decision.allowed {
            self.denied.fetch_add(1, Ordering::Relaxed);
            if let Some(counter) = self.denials.get(decision.class as usize) {
                counter.inc();
            }
        }
        decision
    }

    fn decide(&self, class: RouteClass, probe: Probe<LimitKey>) -> Decision {
        let entry = self.limiter(class);
        if entry.store.is_full() {
            self.sweep_full_table(entry);
        }
        let ClassLimiter { quota, limiter, .. } = entry;
        let limit = quota.calls;
        let interval = f64::from(quota.period_seconds) / f64::from(quota.calls);
        match limiter.check_key(&probe) {
            Ok(snapshot) => {
                // Governor reports what is left once this call is spent; a peek spends
                // nothing.
                let remaining =
                    (snapshot.remaining_burst_capacity() + u32::from(!probe.spend)).min(limit);
                Decision {
                    class,
                    allowed: true,
                    limit,
                    remaining,
                    reset_seconds: (f64::from(limit - remaining.min(limit)) * interval).ceil()
                        as u64,
                    retry_after_seconds: 0,
                }
            }
            Err(not_until) => {
                use governor::clock::Clock as _;
                let wait = not_until.wait_time_from(self.clock.now());
                let retry = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Decision {
                    class,
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset_seconds: retry.max(1),
                    retry_after_seconds: retry.max(1),
                }
            }
        }
    }

    fn sweep_full_table(&self, entry: &ClassLimiter) {
        use governor::clock::Clock as _;
        let now = self.clock.now().as_u64();
        let last = entry.last_inline_sweep.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= INLINE_SWEEP_EVERY_NANOS;
        if due
            && entry
                .last_inline_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            entry.limiter.retain_recent();
        }
    }

    /// Forgets refilled buckets, returns their memory, and reports overflow use
    /// since the last sweep. Run once a minute.
    pub fn sweep(&self) -> Vec<OverflowReport> {
        RouteClass::ALL
            .iter()
            .filter_map(|&class| {
                let entry = self.limiter(class);
                entry.limiter.retain_recent();
                entry.limiter.shrink_to_fit();
                let total = entry.store.overflow_hits();
                let before = entry.overflow_reported.swap(total, Ordering::Relaxed);
                (total > before).then_some(OverflowReport {
                    class,
                    hits: total - before,
                })
            })
            .collect()
    }

    /// Checks each class's overflow bucket answered since startup, by class name.
    pub fn overflow_totals(&self) -> Vec<(&'static str, u64)> {
        RouteClass::ALL
            .iter()
            .map(|&class| (class.name(), self.limiter(class).store.overflow_hits()))
            .collect()
    }

    /// Requests refused by any limiter since startup.
    pub fn denied_total(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Keys currently tracked by one class (for tests and benchmarks).
    pub fn tracked_keys(&self, class: RouteClass) -> usize {
        self.limiter(class).limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SoftlockSettings;

    fn settings(max_keys: usize) -> RateLimitSettings {
        RateLimitSettings {
            authenticated: RateQuota::new(100, 60),
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
            max_keys,
            softlock: SoftlockSettings {
                steps: vec![(5, 60)],
                forget_after_seconds: 3600,
            },
        }
    }

    fn ip(text: &str) -> LimitKey {
        LimitKey::ip(text.parse().expect("ip"))
    }

    /// A million distinct client addresses, each refused by a limiter whose key
    /// table overflowed, add no metric series: refusals are counted by class.
    #[test]
    fn a_million_sprayed_addresses_add_no_metric_series() {
        use crate::telemetry::metrics::{Metrics, Readings};
        let metrics = Metrics::new(&[]);
        let limits =
            RateLimits::new(&settings(1_000), Clock::manual(1_000)).with_metrics(metrics.limits());
        let series = || {
            let readings = Readings {
                limiter_overflow: limits.overflow_totals(),
                ..Readings::default()
            };
            let text = metrics.encode(&readings).expect("encodes");
            let names: std::collections::BTreeSet<String> = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
                .collect();
            (names, text)
        };
        let (before, _) = series();
        for n in 0u32..1_000_000 {
            let address = std::net::Ipv4Addr::from(0x0b00_0000 + n);
            limits.check(RouteClass::LoginIp, &LimitKey::ip(address.into()));
        }
        let (after, text) = series();
        assert!(
            after == before,
            "series added: {:?}",
            after.difference(&before)
        );
        let value = |series: &str| {
            text.lines().find_map(|line| {
                line.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<u64>()
                    .ok()
            })
        };
        // The first thousand addresses had buckets of their own; the rest shared the
        // overflow bucket, which let five through.
        assert_eq!(
            value("portcullis_rate_limit_denials_total{class=\"login_ip\"}"),
            Some(1_000_000 - 1_000 - 5)
        );
        assert_eq!(
            value("portcullis_rate_limit_overflow_total{class=\"login_ip\"}"),
            Some(1_000_000 - 1_000)
        );
    }

    #[test]
    fn a_bucket_empties_and_refills_on_the_injected_clock() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(100), clock.clone());
        let key = ip("198.51.100.1");
        for expected_remaining in (0..5).rev() {
            let d = limits.check(RouteClass::LoginIp, &key);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            assert_eq!(d.limit, 5);
        }
        let denied = limits.check(RouteClass::LoginIp, &key);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_seconds, 12, "one call every 60/5 s");
        clock.advance(12);
        assert!(limits.check(RouteClass::LoginIp, &key).allowed);
        // Other keys and other classes are untouched.
        assert!(
            limits
                .check(RouteClass::LoginIp, &ip("198.51.100.2"))
                .allowed
        );
        assert!(limits.check(RouteClass::Register, &key).allowed);
    }

    #[test]
    fn beyond_the_key_cap_newcomers_share_one_strict_bucket() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(2), clock);
        assert!(limits.check(RouteClass::LoginIp, &ip("10.0.0.1")).allowed);
        assert!(limits.check(RouteClass::LoginIp, &ip("10.0.0.2")).allowed);
        // Every further address draws from the same overflow bucket of 5.
        let verdicts: Vec<bool> = (3..=12)
            .map(|i| {
                limits
                    .check(RouteClass::LoginIp, &ip(&format!("10.0.0.{i}")))
                    .allowed
            })
            .collect();
        assert_eq!(verdicts.iter().filter(|a| **a).count(), 5, "{verdicts:?}");
        assert_eq!(limits.tracked_keys(RouteClass::LoginIp), 2);
        let reports = limits.sweep();
        assert_eq!(
            reports,
            vec![OverflowReport {
                class: RouteClass::LoginIp,
                hits: 10
            }]
        );
        assert!(limits.sweep().is_empty(), "each overflow is reported once");
    }

    #[test]
    fn a_full_table_makes_room_as_soon_as_buckets_refill() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(2), clock.clone());
        assert!(limits.check(RouteClass::LoginIp, &ip("10.0.0.1")).allowed);
        assert!(limits.check(RouteClass::LoginIp, &ip("10.0.0.2")).allowed);
        for i in 3..=8 {
            limits.check(RouteClass::LoginIp, &ip(&format!("10.0.0.{i}")));
        }
        assert!(
            !limits.check(RouteClass::LoginIp, &ip("10.0.0.50")).allowed,
            "overflow spent"
        );
        // The two buckets refill after 12 s (governor keeps a bucket one interval
        // longer); the next newcomer sweeps them away and gets a bucket of its own —
        // no waiting for the minute's sweep.
        clock.advance(25);
        let newcomer = limits.check(RouteClass::LoginIp, &ip("10.0.0.99"));
        assert!(newcomer.allowed);
        assert_eq!(newcomer.remaining, 4, "its own bucket, not the shared one");
    }

    #[test]
    fn a_peek_spends_nothing_and_a_record_spends_one() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(100), clock.clone());
        let key = ip("198.51.100.7");
        for _ in 0..5 {
            let peeked = limits.peek(RouteClass::Register, &key);
            assert!(peeked.allowed);
            assert_eq!((peeked.remaining, peeked.reset_seconds), (3, 0));
        }
        assert_eq!(
            limits.tracked_keys(RouteClass::Register),
            0,
            "a peek adds no key"
        );
        for expected_remaining in (0..3).rev() {
            assert!(limits.peek(RouteClass::Register, &key).allowed);
            let recorded = limits.record(RouteClass::Register, &key);
            assert!(recorded.allowed);
            assert_eq!(recorded.remaining, expected_remaining);
        }
        let refused = limits.peek(RouteClass::Register, &key);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds, 1200, "one call every 3600/3 s");
        assert_eq!(limits.denied_total(), 1);
        clock.advance(1200);
        let refilled = limits.peek(RouteClass::Register, &key);
        assert!(refilled.allowed);
        assert_eq!(refilled.remaining, 1);
    }

    #[test]
    fn concurrent_peeks_overshoot_by_at_most_their_number() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(100), clock);
        let key = ip("198.51.100.8");
        // Five requests let in at once, with three calls left: each records its
        // outcome afterwards, and only three are spent.
        assert!((0..5).all(|_| limits.peek(RouteClass::Register, &key).allowed));
        let recorded: Vec<bool> = (0..5)
            .map(|_| limits.record(RouteClass::Register, &key).allowed)
            .collect();
        assert_eq!(recorded, [true, true, true, false, false]);
        assert_eq!(limits.denied_total(), 0, "served requests are not refusals");
        assert!(!limits.peek(RouteClass::Register, &key).allowed);
    }

    #[test]
    fn a_peek_beyond_the_key_cap_answers_from_the_overflow_bucket() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(2), clock);
        assert!(limits.record(RouteClass::LoginIp, &ip("10.0.0.1")).allowed);
        assert!(limits.record(RouteClass::LoginIp, &ip("10.0.0.2")).allowed);
        // A newcomer's peek reads the shared bucket, and leaves it as it was.
        let peeked = limits.peek(RouteClass::LoginIp, &ip("10.0.0.3"));
        assert!(peeked.allowed);
        assert_eq!(peeked.remaining, 5);
        for i in 3..=7 {
            assert!(
                limits
                    .record(RouteClass::LoginIp, &ip(&format!("10.0.0.{i}")))
                    .allowed
            );
        }
        // Spent by others: every newcomer's peek is refused — never waved through.
        assert!(!limits.peek(RouteClass::LoginIp, &ip("10.0.0.99")).allowed);
        assert_eq!(limits.tracked_keys(RouteClass::LoginIp), 2);
        // A tracked key still has its own bucket.
        assert!(limits.peek(RouteClass::LoginIp, &ip("10.0.0.1")).allowed);
    }

    #[test]
    fn mfa_codes_and_logins_draw_on_separate_budgets() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(100), clock);
        let key = ip("198.51.100.9");
        for _ in 0..5 {
            assert!(limits.check(RouteClass::LoginIp, &key).allowed);
        }
        assert!(!limits.check(RouteClass::LoginIp, &key).allowed);
        let code = limits.check(RouteClass::MfaIp, &key);
        assert!(code.allowed);
        assert_eq!((code.limit, code.remaining), (10, 9));
    }

    #[test]
    fn refilled_buckets_are_swept_away() {
        let clock = Clock::manual(1_000);
        let limits = RateLimits::new(&settings(100), clock.clone());
        for i in 0..50 {
            limits.check(RouteClass::Anonymous, &ip(&format!("10.1.0.{i}")));
        }
        assert_eq!(limits.tracked_keys(RouteClass::Anonymous), 50);
        clock.advance(61);
        limits.sweep();
        assert_eq!(limits.tracked_keys(RouteClass::Anonymous), 0);
    }
}
