//! Prometheus metrics: one registry per running application, the typed handles the
//! services record through, and the text the metrics listener serves
//! (`METRICS_BIND_ADDRESS`), encoded by `prometheus-client`, never by hand.
//!
//! What it guarantees:
//! - **Bounded label sets, by construction.** Every label value is the text of a
//!   variant of one of this module's enums (a `&'static str`), an HTTP status (a
//!   number below 1000), or a `GATE_HOSTS` entry read at start (any other host is
//!   `other`). Nothing a request carries — an account id, an e-mail, a client
//!   address, a path with ids in it — can become a label: the recording functions
//!   take enums, not text. Every series exists from the start (at zero) but the
//!   requests', one per route class and status seen, so a spray of millions of
//!   addresses adds none.
//! - **Cheap recording.** Each counter is resolved when its service is built (an
//!   array indexed by the enum), so recording is one atomic add; a histogram
//!   takes one short, uncontended lock.
//! - **Independent instances.** Each handle's `Default` records into a detached
//!   registry nobody reads (commands and unit tests), so apps in one process —
//!   the black-box tests run many — never share a count.
//!
//! Values read at scrape time (live sessions, the webhook outbox, the limiters'
//! overflow buckets) are handed in as [`Readings`]; a reading that could not be
//! taken is left out and counted in `portcullis_metrics_collection_errors_total`,
//! never waited for.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A monotonic count; clones share it.
pub use prometheus_client::metrics::counter::Counter;

/// The `Content-Type` of what [`Metrics::encode`] writes: the Prometheus text
/// format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every metric name starts with `portcullis_`.
const PREFIX: &str = "portcullis";

/// Latency buckets (seconds) for requests and database writes: half a millisecond
/// to ten seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a password hash waited for a hashing slot (seconds); the queue gives
/// up after `PASSWORD_HASH_QUEUE_TIMEOUT_MS` (2 s by default, 60 s at most).
const QUEUE_WAIT_BUCKETS: [f64; 12] = [
    0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A closed set of label values: each variant's text, in declaration order.
pub trait LabelValue: Copy + 'static {
    /// Every value, in declaration order (so `ALL[v.index()] == v`).
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn index(self) -> usize;
}

/// Declares a label enum: its variants, the text each is exported as, and
/// [`LabelValue`].
macro_rules! label_values {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl LabelValue for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_values! {
    /// Which part of the server a request was for, from its path's fixed prefix
    /// (`http::request_context` tells it): never the path itself.
    pub enum RouteClass {
        /// `/health`, `/health/live`, `/health/ready`.
        Health => "health",
        /// `/api/v1/auth/*`: sign-in, tokens, sessions, MFA.
        Auth => "auth",
        /// `/api/v1/documents*`.
        Documents => "documents",
        /// `/api/v1/webhooks*`.
        Webhooks => "webhooks",
        /// `/api/v1/authz/*`: the decision API.
        Authz => "authz",
        /// `/api/v1/admin/*`: the admin API.
        AdminApi => "admin_api",
        /// `/api/v1/gate/*`: the proxies' forward-auth questions.
        Gate => "gate",
        /// `/gate`, `/gate/*`: the sign-in portal.
        Portal => "portal",
        /// `/admin`, `/admin/*`: the admin pages.
        AdminPages => "admin_pages",
        /// `/api/openapi.json`, `/.well-known/*`, `/static/*`.
        Static => "static",
        /// Anything else (no route answers it).
        Other => "other",
    }
}

label_values! {
    /// How a sign-in with e-mail and password ended.
    pub enum LoginResult {
        /// A session was opened.
        Success => "success",
        /// The password was right; the MFA code is asked for next.
        MfaRequired => "mfa_required",
        /// Refused, for any reason: an unknown address, a wrong password, a
        /// softlock, an inactive account. One value, as the API's answer is one 401:
        /// a finer label would tell whoever reads the metrics which addresses have
        /// accounts and which passwords are right (the audit log has the reason).
        Failed => "failed",
        /// Not decided: the database or the password hasher failed or was busy.
        Error => "error",
    }
}

label_values! {
    /// What a second-factor code check (sign-in, disabling MFA, re-authentication)
    /// found.
    pub enum CodeCheckResult {
        Totp => "totp",
        BackupCode => "backup_code",
        Wrong => "wrong",
        /// A code (or backup code) already used.
        Replayed => "replayed",
        /// Not checked: the account is softlocked, inactive or without MFA, or the
        /// sign-in challenge was already spent.
        Refused => "refused",
        /// Not checked: the database failed.
        Error => "error",
    }
}

label_values! {
    /// What ended a token's acceptance.
    pub enum RevocationScope {
        /// One token (an access token at logout, a spent MFA challenge).
        Token => "token",
        /// One session and every token of it.
        Session => "session",
        /// Every token of an account issued before now (logout-all, a password
        /// change, a lock).
        Account => "account",
    }
}

label_values! {
    /// Why the engine decided as it did (`authz` maps the engine's reasons to it:
    /// this module cannot name the engine's types).
    pub enum AbacResult {
        /// An allow policy matched and no deny did.
        Allowed => "allowed",
        /// A deny policy matched.
        Denied => "denied",
        /// No allow policy matched.
        DefaultDeny => "default_deny",
        /// A policy could not be evaluated: denied.
        Error => "error",
    }
}

impl AbacResult {
    /// The decision's effect: only [`AbacResult::Allowed`] allows.
    pub fn effect(self) -> &'static str {
        match self {
            AbacResult::Allowed => "allow",
            _ => "deny",
        }
    }
}

label_values! {
    /// What the gate answered a proxy about a protected host.
    pub enum GateResult {
        Allowed => "allowed",
        /// Signed out: sent to the portal.
        SignInFirst => "sign_in",
        /// Signed in, and refused by the policies.
        Denied => "denied",
        /// The engine could not decide: refused with a 5xx.
        Error => "error",
        /// The host is not in `GATE_HOSTS`: refused (counted as host `other`).
        UnprotectedHost => "unprotected_host",
    }
}

label_values! {
    /// Where a webhook delivery stands after an attempt.
    pub enum DeliveryResult {
        Delivered => "delivered",
        /// Failed; another attempt is scheduled.
        Retrying => "retrying",
        /// Failed for good: out of attempts, or the receiver answered 410.
        Failed => "failed",
    }
}

/// One counter per value of `L`, all created (at zero) when registered.
struct CounterPer<L> {
    counters: Arc<[Counter]>,
    label: PhantomData<L>,
}

impl<L> Clone for CounterPer<L> {
    fn clone(&self) -> Self {
        Self {
            counters: Arc::clone(&self.counters),
            label: PhantomData,
        }
    }
}

impl<L: LabelValue> CounterPer<L> {
    fn register(registry: &mut Registry, name: &str, help: &str, key: &'static str) -> Self {
        let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(name, help, family.clone());
        Self {
            counters: L::ALL
                .iter()
                .map(|value| family.get_or_create_owned(&[(key, value.as_str())]))
                .collect(),
            label: PhantomData,
        }
    }

    fn inc(&self, value: L) {
        if let Some(counter) = self.counters.get(value.index()) {
            counter.inc();
        }
    }
}

fn histogram_of(buckets: &[f64]) -> Histogram {
    Histogram::new(buckets.iter().copied())
}

// ---- HTTP ----------------------------------------------------------------------

/// Statuses with a counter slot resolved on first use (the rest, never sent by
/// this server, go through the family's map).
const STATUS_SLOTS: std::ops::Range<u16> = 100..600;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route_class: &'static str,
    status: u16,
}

/// Requests by route class and status, and their latency by route class.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    /// `(class, status)` → its counter, filled on first use.
    slots: Arc<[OnceLock<Counter>]>,
    latency: Arc<[Histogram]>,
}

impl HttpMetrics {
    fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route class and status",
            requests.clone(),
        );
        let latency =
            Family::<[(&'static str, &'static str); 1], Histogram, fn() -> Histogram>::new_with_constructor(
                || histogram_of(&LATENCY_BUCKETS),
            );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by route class",
            latency.clone(),
        );
        let slot_count = RouteClass::ALL.len() * STATUS_SLOTS.len();
        Self {
            requests,
            slots: (0..slot_count).map(|_| OnceLock::new()).collect(),
            latency: RouteClass::ALL
                .iter()
                .map(|class| latency.get_or_create_owned(&[("route_class", class.as_str())]))
                .collect(),
        }
    }

    /// Records one answered request.
    pub fn observe(&self, class: RouteClass, status: u16, elapsed: Duration) {
        let labels = || RequestLabels {
            route_class: class.as_str(),
            status,
        };
        if STATUS_SLOTS.contains(&status) {
            let slot =
                class.index() * STATUS_SLOTS.len() + usize::from(status - STATUS_SLOTS.start);
            if let Some(slot) = self.slots.get(slot) {
                slot.get_or_init(|| self.requests.get_or_create_owned(&labels()))
                    .inc();
            }
        } else {
            self.requests.get_or_create(&labels()).inc();
        }
        if let Some(histogram) = self.latency.get(class.index()) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

// ---- accounts ------------------------------------------------------------------

/// Sign-ins, second-factor checks and softlocks.
#[derive(Clone)]
pub struct AccountMetrics {
    logins: CounterPer<LoginResult>,
    code_checks: CounterPer<CodeCheckResult>,
    softlocks: Counter,
}

impl AccountMetrics {
    fn register(registry: &mut Registry) -> Self {
        let softlocks = Counter::default();
        registry.register(
            "softlocks",
            "Accounts softlocked after consecutive failed sign-in steps (in the database, or in memory while it cannot take writes)",
            softlocks.clone(),
        );
        Self {
            logins: CounterPer::register(
                registry,
                "logins",
                "Sign-ins with e-mail and password, by outcome",
                "outcome",
            ),
            code_checks: CounterPer::register(
                registry,
                "mfa_checks",
                "Second-factor code checks, by outcome",
                "outcome",
            ),
            softlocks,
        }
    }

    pub fn login(&self, result: LoginResult) {
        self.logins.inc(result);
    }

    pub fn code_check(&self, result: CodeCheckResult) {
        self.code_checks.inc(result);
    }

    pub fn softlocked(&self) {
        self.softlocks.inc();
    }
}

impl Default for AccountMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

/// How long password hashing waited for a slot.
#[derive(Clone)]
pub struct PasswordHashMetrics {
    queue_wait: Histogram,
    busy: Counter,
}

impl PasswordHashMetrics {
    fn register(registry: &mut Registry) -> Self {
        let queue_wait = histogram_of(&QUEUE_WAIT_BUCKETS);
        registry.register(
            "password_hash_queue_wait_seconds",
            "Time a password hash or check waited for a hashing slot",
            queue_wait.clone(),
        );
        let busy = Counter::default();
        registry.register(
            "password_hash_busy",
            "Password hashes refused (503) because no slot freed up within PASSWORD_HASH_QUEUE_TIMEOUT_MS",
            busy.clone(),
        );
        Self { queue_wait, busy }
    }

    /// A slot was had after `waited`.
    pub fn waited(&self, waited: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
    }

    /// No slot within the queue bound, after `waited`.
    pub fn gave_up(&self, waited: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
        self.busy.inc();
    }
}

impl Default for PasswordHashMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

// ---- limits, sessions, decisions ---------------------------------------------

/// Rate-limit refusals, by limiter class.
#[derive(Clone)]
pub struct LimitMetrics {
    denials: Family<[(&'static str, &'static str); 1], Counter>,
}

impl LimitMetrics {
    fn register(registry: &mut Registry) -> Self {
        let denials = Family::default();
        registry.register(
            "rate_limit_denials",
            "Requests refused (429) by a rate limiter, by limiter class",
            denials.clone(),
        );
        Self { denials }
    }

    /// The refusal counter of one limiter class (its name, from the limiter's own
    /// fixed list); the limiter keeps it, so a refusal is one atomic add.
    pub fn denials_of(&self, class: &'static str) -> Counter {
        self.denials.get_or_create_owned(&[("class", class)])
    }
}

impl Default for LimitMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

/// Revocations, by what they end.
#[derive(Clone)]
pub struct SessionMetrics {
    revocations: CounterPer<RevocationScope>,
}

impl SessionMetrics {
    fn register(registry: &mut Registry) -> Self {
        Self {
            revocations: CounterPer::register(
                registry,
                "revocations",
                "Revocations made, by scope (a token, a session, every token of an account); one the database could not take is still enforced in memory, and counted",
                "scope",
            ),
        }
    }

    pub fn revoked(&self, scope: RevocationScope) {
        self.revocations.inc(scope);
    }
}

impl Default for SessionMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

/// Access-control decisions by effect and reason.
#[derive(Clone)]
pub struct AbacMetrics {
    decisions: Arc<[Counter]>,
}

impl AbacMetrics {
    fn register(registry: &mut Registry) -> Self {
        let family = Family::<[(&'static str, &'static str); 2], Counter>::default();
        registry.register(
            "abac_decisions",
            "Access-control decisions made by the policy engine, by effect and reason",
            family.clone(),
        );
        Self {
            decisions: AbacResult::ALL
                .iter()
                .map(|r| {
                    family.get_or_create_owned(&[("effect", r.effect()), ("reason", r.as_str())])
                })
                .collect(),
        }
    }

    pub fn decided(&self, result: AbacResult) {
        if let Some(counter) = self.decisions.get(result.index()) {
            counter.inc();
        }
    }
}

impl Default for AbacMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    host: String,
    outcome: &'static str,
}

/// The label of a host no `GATE_HOSTS` entry covers.
const OTHER_HOST: &str = "other";

/// Gate decisions by `GATE_HOSTS` entry and outcome.
#[derive(Clone)]
pub struct GateMetrics {
    /// Per entry (in `GATE_HOSTS` order, then `other`), one counter per outcome.
    decisions: Arc<[CounterPer<GateResult>]>,
}

impl GateMetrics {
    fn register(registry: &mut Registry, hosts: &[String]) -> Self {
        let family = Family::<GateLabels, Counter>::default();
        registry.register(
            "gate_decisions",
            "Forward-auth answers, by GATE_HOSTS entry (`other` for a host no entry covers) and outcome",
            family.clone(),
        );
        let decisions = hosts
            .iter()
            .map(String::as_str)
            .chain([OTHER_HOST])
            .map(|host| CounterPer {
                counters: GateResult::ALL
                    .iter()
                    .map(|outcome| {
                        family.get_or_create_owned(&GateLabels {
                            host: host.to_owned(),
                            outcome: outcome.as_str(),
                        })
                    })
                    .collect(),
                label: PhantomData,
            })
            .collect();
        Self { decisions }
    }

    /// One answer for the `GATE_HOSTS` entry at `entry` (`None`, or an entry past
    /// the list: `other`).
    pub fn decided(&self, entry: Option<usize>, result: GateResult) {
        let other = self.decisions.len().saturating_sub(1);
        let row = entry.filter(|&i| i < other).unwrap_or(other);
        if let Some(counters) = self.decisions.get(row) {
            counters.inc(result);
        }
    }
}

impl Default for GateMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default(), &[])
    }
}

/// Webhook delivery attempts by where they left the delivery.
#[derive(Clone)]
pub struct WebhookMetrics {
    deliveries: CounterPer<DeliveryResult>,
}

impl WebhookMetrics {
    fn register(registry: &mut Registry) -> Self {
        Self {
            deliveries: CounterPer::register(
                registry,
                "webhook_deliveries",
                "Webhook delivery attempts recorded, by where they left the delivery",
                "outcome",
            ),
        }
    }

    pub fn attempted(&self, result: DeliveryResult) {
        self.deliveries.inc(result);
    }
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

// ---- storage -------------------------------------------------------------------

/// Database writes (latency, failures) and the audit events they committed.
#[derive(Clone)]
pub struct StorageMetrics {
    write_seconds: Histogram,
    write_errors: Counter,
    audit_appends: Counter,
}

impl StorageMetrics {
    fn register(registry: &mut Registry) -> Self {
        let write_seconds = histogram_of(&LATENCY_BUCKETS);
        registry.register(
            "db_write_duration_seconds",
            "Time a write transaction took, from asking for the writer to its commit or rollback",
            write_seconds.clone(),
        );
        let write_errors = Counter::default();
        registry.register(
            "db_write_errors",
            "Write transactions the database could not run or commit (busy, closed, lost, failing)",
            write_errors.clone(),
        );
        let audit_appends = Counter::default();
        registry.register(
            "audit_appends",
            "Audit events committed to the hash-chained log",
            audit_appends.clone(),
        );
        Self {
            write_seconds,
            write_errors,
            audit_appends,
        }
    }

    /// One write transaction ended after `elapsed`; `failed` when the storage
    /// failed it (not when the work inside refused and rolled back).
    pub fn wrote(&self, elapsed: Duration, failed: bool) {
        self.write_seconds.observe(elapsed.as_secs_f64());
        if failed {
            self.write_errors.inc();
        }
    }

    /// `events` audit events were committed.
    pub fn audit_appended(&self, events: u64) {
        self.audit_appends.inc_by(events);
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

// ---- the registry --------------------------------------------------------------

/// Values read when scraped, each `None` when it could not be read in time.
#[derive(Debug, Default)]
pub struct Readings {
    pub live_sessions: Option<u64>,
    pub outbox_backlog: Option<u64>,
    /// Checks each limiter class's overflow bucket answered since start.
    pub limiter_overflow: Vec<(&'static str, u64)>,
}

/// One application's metrics: the registry and every handle in it. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Registered>,
}

struct Registered {
    registry: Registry,
    http: HttpMetrics,
    accounts: AccountMetrics,
    password_hashing: PasswordHashMetrics,
    limits: LimitMetrics,
    sessions: SessionMetrics,
    abac: AbacMetrics,
    gate: GateMetrics,
    webhooks: WebhookMetrics,
    storage: StorageMetrics,
    collection_errors: Counter,
}

impl Metrics {
    /// Registers every metric; `gate_hosts` are the `GATE_HOSTS` entries (empty
    /// without the gate), the only hosts the gate's decisions are labelled with.
    pub fn new(gate_hosts: &[String]) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let collection_errors = Counter::default();
        registry.register(
            "metrics_collection_errors",
            "Scrape-time readings (live sessions, outbox backlog) that failed or timed out and were left out",
            collection_errors.clone(),
        );
        let http = HttpMetrics::register(&mut registry);
        let accounts = AccountMetrics::register(&mut registry);
        let password_hashing = PasswordHashMetrics::register(&mut registry);
        let limits = LimitMetrics::register(&mut registry);
        let sessions = SessionMetrics::register(&mut registry);
        let abac = AbacMetrics::register(&mut registry);
        let gate = GateMetrics::register(&mut registry, gate_hosts);
        let webhooks = WebhookMetrics::register(&mut registry);
        let storage = StorageMetrics::register(&mut registry);
        Self {
            inner: Arc::new(Registered {
                registry,
                http,
                accounts,
                password_hashing,
                limits,
                sessions,
                abac,
                gate,
                webhooks,
                storage,
                collection_errors,
            }),
        }
    }

    pub fn http(&self) -> &HttpMetrics {
        &self.inner.http
    }

    pub fn accounts(&self) -> &AccountMetrics {
        &self.inner.accounts
    }

    pub fn password_hashing(&self) -> &PasswordHashMetrics {
        &self.inner.password_hashing
    }

    pub fn limits(&self) -> &LimitMetrics {
        &self.inner.limits
    }

    pub fn sessions(&self) -> &SessionMetrics {
        &self.inner.sessions
    }

    pub fn abac(&self) -> &AbacMetrics {
        &self.inner.abac
    }

    pub fn gate(&self) -> &GateMetrics {
        &self.inner.gate
    }

    pub fn webhooks(&self) -> &WebhookMetrics {
        &self.inner.webhooks
    }

    pub fn storage(&self) -> &StorageMetrics {
        &self.inner.storage
    }

    /// A scrape-time reading failed or timed out (and is left out).
    pub fn collection_failed(&self) {
        self.inner.collection_errors.inc();
    }

    /// Every metric, with `readings`, in the Prometheus text format.
    pub fn encode(&self, readings: &Readings) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.inner.registry)?;
        prometheus_text::encode(&mut text, &readings.registry())?;
        Ok(text)
    }
}

impl Readings {
    /// The readings as metrics of their own, in a registry made for this scrape.
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        if let Some(live) = self.live_sessions {
            let gauge = Gauge::<i64>::default();
            gauge.set(i64::try_from(live).unwrap_or(i64::MAX));
            registry.register(
                "live_sessions",
                "Account sessions neither ended nor expired",
                gauge,
            );
        }
        if let Some(backlog) = self.outbox_backlog {
            let gauge = Gauge::<i64>::default();
            gauge.set(i64::try_from(backlog).unwrap_or(i64::MAX));
            registry.register(
                "webhook_outbox_backlog",
                "Webhook deliveries queued or waiting for a retry",
                gauge,
            );
        }
        let overflow = Family::<[(&'static str, &'static str); 1], Counter>::default();
        for (class, hits) in &self.limiter_overflow {
            overflow.get_or_create(&[("class", *class)]).inc_by(*hits);
        }
        registry.register(
            "rate_limit_overflow",
            "Checks answered by a limiter's shared overflow bucket (its key table was full), by limiter class",
            overflow,
        );
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn recorded_events_show_in_the_text() {
        let metrics = Metrics::new(&["app.example.com".to_owned()]);
        metrics.accounts().login(LoginResult::Failed);
        metrics.abac().decided(AbacResult::DefaultDeny);
        metrics.gate().decided(Some(0), GateResult::Allowed);
        metrics.gate().decided(None, GateResult::UnprotectedHost);
        metrics
            .http()
            .observe(RouteClass::Auth, 401, Duration::from_millis(3));
        let text = metrics.encode(&Readings::default()).expect("encodes");
        for (series, value) in [
            ("portcullis_logins_total{outcome=\"failed\"}", 1.0),
            ("portcullis_logins_total{outcome=\"success\"}", 0.0),
            (
                "portcullis_abac_decisions_total{effect=\"deny\",reason=\"default_deny\"}",
                1.0,
            ),
            (
                "portcullis_gate_decisions_total{host=\"app.example.com\",outcome=\"allowed\"}",
                1.0,
            ),
            (
                "portcullis_gate_decisions_total{host=\"other\",outcome=\"unprotected_host\"}",
                1.0,
            ),
            (
                "portcullis_http_requests_total{route_class=\"auth\",status=\"401\"}",
                1.0,
            ),
            (
                "portcullis_http_request_duration_seconds_count{route_class=\"auth\"}",
                1.0,
            ),
        ] {
            assert_eq!(value_of(&text, series), Some(value), "{series} in\n{text}");
        }
    }

    #[test]
    fn a_reading_not_taken_is_left_out() {
        let metrics = Metrics::new(&[]);
        let text = metrics.encode(&Readings::default()).expect("encodes");
        assert!(!text.contains("portcullis_live_sessions"));
        let text = metrics
            .encode(&Readings {
                live_sessions: Some(3),
                outbox_backlog: Some(0),
                limiter_overflow: vec![("login_ip", 7)],
            })
            .expect("encodes");
        assert_eq!(value_of(&text, "portcullis_live_sessions"), Some(3.0));
        assert_eq!(
            value_of(&text, "portcullis_webhook_outbox_backlog"),
            Some(0.0)
        );
        assert_eq!(
            value_of(
                &text,
                "portcullis_rate_limit_overflow_total{class=\"login_ip\"}"
            ),
            Some(7.0)
        );
    }

    #[test]
    fn label_values_are_snake_case_and_distinct() {
        fn check<L: LabelValue>() {
            let mut seen = std::collections::HashSet::new();
            for (i, value) in L::ALL.iter().enumerate() {
                assert_eq!(value.index(), i);
                let text = value.as_str();
                assert!(
                    text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{text}"
                );
                assert!(seen.insert(text), "{text} twice");
            }
        }
        check::<RouteClass>();
        check::<LoginResult>();
        check::<CodeCheckResult>();
        check::<RevocationScope>();
        check::<AbacResult>();
        check::<GateResult>();
        check::<DeliveryResult>();
    }
}
