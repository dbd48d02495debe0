//! Typed settings, read from the environment, an optional `.env` and an optional TOML
//! file, and checked before anything starts. A configuration with any failing check is
//! refused as a whole: Portcullis never starts half-configured.

mod findings;
mod rules;
mod sources;
pub mod variables;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::password::{self, PasswordSettings};

pub use findings::{Finding, Findings, Status};
pub use rules::weak_secret_reason;
pub use sources::{ConfigSources, RawConfig};
use variables as v;

/// Production, or the local demo (loopback only, demo data, relaxed where it says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Demo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub jwt: JwtSettings,
    /// Fernet keys for webhook credentials; the first encrypts.
    pub credential_keys: Vec<SecretString>,
    /// Fernet keys for TOTP secrets; the first encrypts.
    pub mfa_keys: Vec<SecretString>,
    pub database: DatabaseSettings,
    pub passwords: PasswordSettings,
    pub http: HttpSettings,
    pub rate_limits: RateLimitSettings,
    pub webhooks: WebhookSettings,
    /// Whether administrators need MFA to sign in to the admin pages.
    pub admin_require_mfa: bool,
    pub log: LogSettings,
    /// What the checks found (warnings and passes), for the admin dashboard.
    pub findings: Findings,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub secret: SecretString,
    /// Verify-only keys, for rotation.
    pub previous_secrets: Vec<SecretString>,
    pub access_token_minutes: u32,
    pub refresh_token_days: u32,
    /// Revocations (and cut-offs) the in-memory cache may hold.
    pub revocation_cache_capacity: u64,
}

impl JwtSettings {
    pub fn access_token_seconds(&self) -> i64 {
        i64::from(self.access_token_minutes) * 60
    }

    pub fn refresh_token_seconds(&self) -> i64 {
        i64::from(self.refresh_token_days) * 86_400
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    pub read_connections: usize,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind_address: SocketAddr,
    pub workers: Option<usize>,
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub behind_tls_proxy: bool,
    pub tls: Option<TlsSettings>,
    pub hsts_max_age_seconds: u64,
    pub max_json_body_bytes: usize,
}

impl HttpSettings {
    /// HSTS is sent only when the browser reached us over TLS (ours or a proxy's).
    pub fn hsts_enabled(&self) -> bool {
        self.hsts_max_age_seconds > 0 && (self.tls.is_some() || self.behind_tls_proxy)
    }
}

#[derive(Clone)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// A rate: `calls` per `period_seconds`, as a bucket of `calls` refilled evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub calls: u32,
    pub period_seconds: u32,
}

impl RateQuota {
    pub const fn new(calls: u32, period_seconds: u32) -> Self {
        Self {
            calls,
            period_seconds,
        }
    }

    /// Whether this rate allows more than `other` (compared without floats).
    pub fn looser_than(self, other: RateQuota) -> bool {
        u64::from(self.calls) * u64::from(other.period_seconds)
            > u64::from(other.calls) * u64::from(self.period_seconds)
    }
}

impl std::fmt::Display for RateQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.calls, self.period_seconds)
    }
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Per user, for requests with a valid access token.
    pub authenticated: RateQuota,
    /// Per client IP, for every other request.
    pub anonymous: RateQuota,
    pub login_ip: RateQuota,
    pub login_account: RateQuota,
    pub register_ip: RateQuota,
    pub mfa_account: RateQuota,
    pub refresh_ip: RateQuota,
    /// Keys each limiter tracks before newcomers share the overflow bucket.
    pub max_keys: usize,
    pub softlock: SoftlockSettings,
}

/// Account softlock after consecutive failed logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftlockSettings {
    /// (consecutive failures, lock seconds), ascending.
    pub steps: Vec<(u32, u32)>,
    /// A failure this long after the previous one starts the count afresh, so a lock
    /// cannot be kept up forever by one attempt per lock period.
    pub forget_after_seconds: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allowed_private_networks: Vec<IpNet>,
    pub max_consecutive_failures: u32,
    pub secret_grace_seconds: i64,
    pub delivery_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Defaults that `check-config` compares against when warning about loosened limits.
pub const DEFAULT_ACCESS_TOKEN_MINUTES: u32 = 15;
pub const DEFAULT_REFRESH_TOKEN_DAYS: u32 = 7;
pub const DEFAULT_RATE_LIMIT_CALLS: u32 = 100;
pub const DEFAULT_RATE_LIMIT_PERIOD: u32 = 60;

impl Settings {
    /// Evaluates every check. `Ok` carries the settings and the warnings and passes;
    /// `Err` carries all findings when at least one check failed.
    pub fn load(sources: &ConfigSources, mode: Mode) -> Result<(Settings, Findings), Findings> {
        let (raw, mut findings) = RawConfig::gather(sources);
        let settings = Reader::new(&raw, &mut findings).settings(mode);
        match settings {
            Some(mut settings) if !findings.has_failures() => {
                settings.findings = findings.clone();
                Ok((settings, findings))
            }
            _ => Err(findings),
        }
    }

    /// Only the database path, for commands (like `audit verify`) that must work even
    /// when the rest of the configuration is broken.
    pub fn database_path(sources: &ConfigSources) -> PathBuf {
        let (raw, _) = RawConfig::gather(sources);
        PathBuf::from(
            raw.get(v::DATABASE_PATH)
                .unwrap_or(default_of(v::DATABASE_PATH)),
        )
    }
}

fn default_of(name: &str) -> &'static str {
    v::find(name).and_then(|var| var.default).unwrap_or("")
}

/// Reads typed values out of the raw map, recording one finding per check.
struct Reader<'a> {
    raw: &'a RawConfig,
    findings: &'a mut Findings,
}

impl<'a> Reader<'a> {
    fn new(raw: &'a RawConfig, findings: &'a mut Findings) -> Self {
        Self { raw, findings }
    }

    fn settings(mut self, mode: Mode) -> Option<Settings> {
        // Read everything before combining, so every problem is reported at once.
        let jwt = self.jwt();
        let credential_keys = self.fernet_keys(v::CREDENTIAL_ENCRYPTION_KEY, "webhook credentials");
        let mfa_keys = self.fernet_keys(v::MFA_ENCRYPTION_KEY, "TOTP secrets");
        self.key_separation(
            jwt.as_ref(),
            credential_keys.as_deref(),
            mfa_keys.as_deref(),
        );
        let database = self.database();
        let passwords = self.passwords();
        let http = self.http(mode);
        let rate_limits = self.rate_limits();
        let webhooks = self.webhooks(mode);
        let admin_require_mfa = self.admin_require_mfa(mode);
        let log = self.log();
        Some(Settings {
            mode,
            jwt: jwt?,
            credential_keys: credential_keys?,
            mfa_keys: mfa_keys?,
            database: database?,
            passwords: passwords?,
            http: http?,
            rate_limits: rate_limits?,
            webhooks: webhooks?,
            admin_require_mfa: admin_require_mfa?,
            log: log?,
            findings: Findings::default(),
        })
    }

    fn jwt(&mut self) -> Option<JwtSettings> {
        let secret = match self.raw.get(v::JWT_SECRET_KEY) {
            None => {
                self.findings.fail(
                    v::JWT_SECRET_KEY,
                    "is missing; set it to a random value of at least 32 characters (`portcullis keygen` prints one)",
                );
                None
            }
            Some(value) => match weak_secret_reason(value) {
                Some(reason) => {
                    self.findings.fail(
                        v::JWT_SECRET_KEY,
                        format!("{reason}; replace it with the value `portcullis keygen` prints"),
                    );
                    None
                }
                None => {
                    self.findings.pass(v::JWT_SECRET_KEY, "strong signing key");
                    Some(SecretString::from(value))
                }
            },
        };
        let previous_secrets = match self.raw.get(v::JWT_PREVIOUS_SECRET_KEYS) {
            None => Some(Vec::new()),
            Some(list) => self.previous_jwt_keys(list),
        };
        let access_token_minutes = self.number(v::ACCESS_TOKEN_EXPIRE_MINUTES, 1, 24 * 60);
        if let Some(minutes) = access_token_minutes {
            if minutes > DEFAULT_ACCESS_TOKEN_MINUTES {
                self.findings.warn(
                    v::ACCESS_TOKEN_EXPIRE_MINUTES,
                    format!("access tokens live {minutes} minutes (default {DEFAULT_ACCESS_TOKEN_MINUTES}); a stolen token stays useful longer"),
                );
            } else {
                self.findings
                    .pass(v::ACCESS_TOKEN_EXPIRE_MINUTES, format!("{minutes} minutes"));
            }
        }
        let refresh_token_days = self.number(v::REFRESH_TOKEN_EXPIRE_DAYS, 1, 365);
        if let Some(days) = refresh_token_days {
            if days > DEFAULT_REFRESH_TOKEN_DAYS {
                self.findings.warn(
                    v::REFRESH_TOKEN_EXPIRE_DAYS,
                    format!(
                        "refresh tokens live {days} days (default {DEFAULT_REFRESH_TOKEN_DAYS})"
                    ),
                );
            } else {
                self.findings
                    .pass(v::REFRESH_TOKEN_EXPIRE_DAYS, format!("{days} days"));
            }
        }
        let revocation_cache_capacity =
            self.number::<u64>(v::REVOCATION_CACHE_CAPACITY, 1, 100_000_000);
        Some(JwtSettings {
            revocation_cache_capacity: revocation_cache_capacity?,
            secret: secret?,
            previous_secrets: previous_secrets?,
            access_token_minutes: access_token_minutes?,
            refresh_token_days: refresh_token_days?,
        })
    }

    fn previous_jwt_keys(&mut self, list: &str) -> Option<Vec<SecretString>> {
        let items = self.checked(v::JWT_PREVIOUS_SECRET_KEYS, rules::split_list(list))?;
        let mut keys = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(reason) = weak_secret_reason(item) {
                self.findings.fail(
                    v::JWT_PREVIOUS_SECRET_KEYS,
                    format!("entry {} {reason}; remove it", index + 1),
                );
                return None;
            }
            keys.push(SecretString::from(*item));
        }
        self.findings.pass(
            v::JWT_PREVIOUS_SECRET_KEYS,
            format!("{} verify-only key(s) for rotation", keys.len()),
        );
        Some(keys)
    }

    fn fernet_keys(&mut self, name: &'static str, purpose: &str) -> Option<Vec<SecretString>> {
        let Some(value) = self.raw.get(name) else {
            self.findings.fail(
                name,
                format!("is missing; it encrypts {purpose} at rest. Generate one with `portcullis keygen`"),
            );
            return None;
        };
        let keys = self.checked(name, rules::fernet_keys(value))?;
        let rotation = if keys.len() > 1 {
            format!(" ({} keys: the first encrypts, all decrypt)", keys.len())
        } else {
            String::new()
        };
        self.findings
            .pass(name, format!("valid Fernet key{rotation}"));
        Some(keys)
    }

    /// One leaked key should not open everything: warn when keys are shared.
    fn key_separation(
        &mut self,
        jwt: Option<&JwtSettings>,
        credential: Option<&[SecretString]>,
        mfa: Option<&[SecretString]>,
    ) {
        let (Some(credential), Some(mfa)) = (credential, mfa) else {
            return;
        };
        let shared = credential
            .iter()
            .any(|c| mfa.iter().any(|m| c.expose_secret() == m.expose_secret()));
        let jwt_reused = jwt.is_some_and(|j| {
            credential
                .iter()
                .chain(mfa)
                .any(|k| k.expose_secret() == j.secret.expose_secret())
        });
        if shared {
            self.findings.warn(
                v::MFA_ENCRYPTION_KEY,
                "shares a key with CREDENTIAL_ENCRYPTION_KEY; use separate keys so one leak does not expose both",
            );
        } else if jwt_reused {
            self.findings.warn(
                v::JWT_SECRET_KEY,
                "is also used as an encryption key; use separate keys",
            );
        } else {
            self.findings
                .pass("keys", "signing and encryption keys are all distinct");
        }
    }

    fn database(&mut self) -> Option<DatabaseSettings> {
        let path = PathBuf::from(
            self.raw
                .get(v::DATABASE_PATH)
                .unwrap_or(default_of(v::DATABASE_PATH)),
        );
        let path_ok = match ensure_writable_parent(&path) {
            Ok(()) => {
                self.findings.pass(
                    v::DATABASE_PATH,
                    format!("{} (directory writable)", path.display()),
                );
                true
            }
            Err(problem) => {
                self.findings.fail(v::DATABASE_PATH, problem);
                false
            }
        };
        let read_connections = self.number(v::DATABASE_READ_CONNECTIONS, 1, 64);
        path_ok.then_some(())?;
        Some(DatabaseSettings {
            path,
            read_connections: read_connections?,
        })
    }

    fn passwords(&mut self) -> Option<PasswordSettings> {
        let memory_kib = self.number(
            v::PASSWORD_HASH_MEMORY_KIB,
            password::MIN_MEMORY_KIB,
            4 * 1024 * 1024,
        );
        let iterations = self.number(v::PASSWORD_HASH_ITERATIONS, password::MIN_ITERATIONS, 64);
        let parallelism = self.number(v::PASSWORD_HASH_PARALLELISM, password::MIN_PARALLELISM, 64);
        let concurrency = match self.raw.get(v::PASSWORD_HASH_CONCURRENCY) {
            None => Some(std::thread::available_parallelism().map_or(1, |n| n.get())),
            Some(_) => self.number::<usize>(v::PASSWORD_HASH_CONCURRENCY, 1, 256),
        };
        let queue_timeout_ms = self.number::<u64>(v::PASSWORD_HASH_QUEUE_TIMEOUT_MS, 10, 60_000);
        if let (Some(m), Some(t), Some(p)) = (memory_kib, iterations, parallelism) {
            self.findings.pass(
                v::PASSWORD_HASH_MEMORY_KIB,
                format!("argon2id m={m} KiB, t={t}, p={p} (OWASP minimum or stronger)"),
            );
        }
        Some(PasswordSettings {
            memory_kib: memory_kib?,
            iterations: iterations?,
            parallelism: parallelism?,
            concurrency: concurrency?,
            queue_timeout: Duration::from_millis(queue_timeout_ms?),
        })
    }

    fn http(&mut self, mode: Mode) -> Option<HttpSettings> {
        let bind_address = self.parsed::<SocketAddr>(
            v::BIND_ADDRESS,
            "is not an address:port such as 127.0.0.1:8080 or [::]:8443",
        );
        let workers = match self.raw.get(v::HTTP_WORKERS) {
            None => Some(None),
            Some(_) => self.number::<usize>(v::HTTP_WORKERS, 1, 256).map(Some),
        };
        let cors_allowed_origins = self.cors_origins();
        let trusted_proxies = self.trusted_proxies();
        let behind_tls_proxy = self.boolean(v::BEHIND_TLS_PROXY);
        let tls = self.tls();
        let hsts_max_age_seconds = self.number::<u64>(v::HSTS_MAX_AGE_SECONDS, 0, 63_072_000);
        let max_json_body_bytes =
            self.number::<usize>(v::MAX_JSON_BODY_BYTES, 1024, 16 * 1024 * 1024);
        if let (Some(tls), Some(behind), Some(max_age)) =
            (&tls, behind_tls_proxy, hsts_max_age_seconds)
        {
            let tls_on = tls.is_some() || behind;
            match (tls_on, mode) {
                (true, _) => self.findings.pass(v::TLS_CERT_PATH, "TLS protects traffic"),
                (false, Mode::Demo) => self.findings.warn(
                    v::TLS_CERT_PATH,
                    "TLS is off (acceptable for a loopback demo only)",
                ),
                (false, Mode::Production) => self.findings.warn(
                    v::TLS_CERT_PATH,
                    "TLS is off and BEHIND_TLS_PROXY is not set; tokens would cross the network in clear text. Set TLS_CERT_PATH and TLS_KEY_PATH, or BEHIND_TLS_PROXY=true behind a TLS proxy",
                ),
            }
            if tls_on && max_age > 0 {
                self.findings.pass(
                    v::HSTS_MAX_AGE_SECONDS,
                    format!("HSTS on (max-age {max_age})"),
                );
            } else {
                self.findings.warn(
                    v::HSTS_MAX_AGE_SECONDS,
                    "HSTS is off; browsers may be downgraded to plain HTTP. It turns on with TLS (or BEHIND_TLS_PROXY=true) and a non-zero max-age",
                );
            }
        }
        Some(HttpSettings {
            bind_address: bind_address?,
            workers: workers?,
            cors_allowed_origins: cors_allowed_origins?,
            trusted_proxies: trusted_proxies?,
            behind_tls_proxy: behind_tls_proxy?,
            tls: tls?,
            hsts_max_age_seconds: hsts_max_age_seconds?,
            max_json_body_bytes: max_json_body_bytes?,
        })
    }

    fn cors_origins(&mut self) -> Option<Vec<String>> {
        let Some(list) = self.raw.get(v::CORS_ALLOWED_ORIGINS) else {
            self.findings.warn(
                v::CORS_ALLOWED_ORIGINS,
                "is empty: no browser application on another origin can call the API (set it when a web front end needs access)",
            );
            return Some(Vec::new());
        };
        let items = self.checked(v::CORS_ALLOWED_ORIGINS, rules::split_list(list))?;
        // Check every entry before giving up, so each bad one is reported.
        let checked: Vec<Option<String>> = items
            .into_iter()
            .map(|item| self.checked(v::CORS_ALLOWED_ORIGINS, rules::origin(item)))
            .collect();
        let origins: Vec<String> = checked.into_iter().collect::<Option<_>>()?;
        let insecure = origins
            .iter()
            .filter(|o| o.starts_with("http://") && !is_loopback_origin(o))
            .count();
        if insecure > 0 {
            self.findings.warn(
                v::CORS_ALLOWED_ORIGINS,
                format!("{insecure} origin(s) use plain http on a non-loopback host; use https"),
            );
        } else {
            self.findings.pass(
                v::CORS_ALLOWED_ORIGINS,
                format!("{} exact origin(s)", origins.len()),
            );
        }
        Some(origins)
    }

    fn trusted_proxies(&mut self) -> Option<Vec<IpNet>> {
        let Some(list) = self.raw.get(v::TRUSTED_PROXIES) else {
            self.findings.pass(
                v::TRUSTED_PROXIES,
                "none: X-Forwarded-For is ignored and the peer address is the client",
            );
            return Some(Vec::new());
        };
        let nets = self.checked(v::TRUSTED_PROXIES, rules::networks(list))?;
        if nets.iter().any(|n| n.prefix_len() == 0) {
            self.findings.warn(
                v::TRUSTED_PROXIES,
                "trusts every address, so any client can forge X-Forwarded-For and dodge per-IP limits; list only your proxies",
            );
        } else {
            self.findings.pass(
                v::TRUSTED_PROXIES,
                format!("{} trusted proxy network(s)", nets.len()),
            );
        }
        Some(nets)
    }

    fn tls(&mut self) -> Option<Option<TlsSettings>> {
        let cert = self.raw.get(v::TLS_CERT_PATH).map(PathBuf::from);
        let key = self.raw.get(v::TLS_KEY_PATH).map(PathBuf::from);
        match (cert, key) {
            (None, None) => Some(None),
            (Some(_), None) => {
                self.findings.fail(
                    v::TLS_KEY_PATH,
                    "is missing while TLS_CERT_PATH is set; set both or neither",
                );
                None
            }
            (None, Some(_)) => {
                self.findings.fail(
                    v::TLS_CERT_PATH,
                    "is missing while TLS_KEY_PATH is set; set both or neither",
                );
                None
            }
            (Some(cert_path), Some(key_path)) => {
                match crate::http::tls::server_config(&cert_path, &key_path) {
                    Ok(server_config) => Some(Some(TlsSettings {
                        cert_path,
                        key_path,
                        server_config: Arc::new(server_config),
                    })),
                    Err(e) => {
                        self.findings.fail(e.variable(), e.to_string());
                        None
                    }
                }
            }
        }
    }

    fn rate_limits(&mut self) -> Option<RateLimitSettings> {
        let calls = self.number(v::DEFAULT_RATE_LIMIT_CALLS, 1, 1_000_000);
        let period = self.number(v::DEFAULT_RATE_LIMIT_PERIOD, 1, 86_400);
        let authenticated = match (calls, period) {
            (Some(calls), Some(period)) => {
                let quota = RateQuota::new(calls, period);
                let default = RateQuota::new(DEFAULT_RATE_LIMIT_CALLS, DEFAULT_RATE_LIMIT_PERIOD);
                if quota.looser_than(default) {
                    self.findings.warn(
                        v::DEFAULT_RATE_LIMIT_CALLS,
                        format!("{calls} calls per {period} s is looser than the default {DEFAULT_RATE_LIMIT_CALLS} per {DEFAULT_RATE_LIMIT_PERIOD} s"),
                    );
                } else {
                    self.findings.pass(
                        v::DEFAULT_RATE_LIMIT_CALLS,
                        format!("{calls} calls per {period} s per user"),
                    );
                }
                Some(quota)
            }
            _ => None,
        };
        let anonymous = self.quota(v::RATE_LIMIT_ANONYMOUS);
        let login_ip = self.quota(v::RATE_LIMIT_LOGIN_IP);
        let login_account = self.quota(v::RATE_LIMIT_LOGIN_ACCOUNT);
        let register_ip = self.quota(v::RATE_LIMIT_REGISTER_IP);
        let mfa_account = self.quota(v::RATE_LIMIT_MFA_ACCOUNT);
        let refresh_ip = self.quota(v::RATE_LIMIT_REFRESH_IP);
        let max_keys = self.number::<usize>(v::RATE_LIMIT_MAX_KEYS, 1, 10_000_000);
        let steps_text = self
            .raw
            .get(v::SOFTLOCK_STEPS)
            .unwrap_or(default_of(v::SOFTLOCK_STEPS));
        let softlock_steps = self.checked(v::SOFTLOCK_STEPS, rules::softlock_steps(steps_text));
        let forget_after = self.number::<u32>(v::SOFTLOCK_FORGET_AFTER_SECONDS, 60, 30 * 86_400);
        Some(RateLimitSettings {
            authenticated: authenticated?,
            anonymous: anonymous?,
            login_ip: login_ip?,
            login_account: login_account?,
            register_ip: register_ip?,
            mfa_account: mfa_account?,
            refresh_ip: refresh_ip?,
            max_keys: max_keys?,
            softlock: SoftlockSettings {
                steps: softlock_steps?,
                forget_after_seconds: forget_after?,
            },
        })
    }

    /// A `calls/seconds` rate; warns when it is looser than the variable's default.
    fn quota(&mut self, name: &'static str) -> Option<RateQuota> {
        let text = self.raw.get(name).unwrap_or(default_of(name));
        let (calls, period) = self.checked(name, rules::quota(text))?;
        let quota = RateQuota::new(calls, period);
        let default = rules::quota(default_of(name))
            .map(|(c, p)| RateQuota::new(c, p))
            .unwrap_or(quota);
        if quota.looser_than(default) {
            self.findings.warn(
                name,
                format!("{quota} is looser than the default {default}; brute force gets easier"),
            );
        }
        Some(quota)
    }

    fn webhooks(&mut self, mode: Mode) -> Option<WebhookSettings> {
        let nets = match self.raw.get(v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS) {
            None => Vec::new(),
            Some(list) => {
                self.checked(v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS, rules::networks(list))?
            }
        };
        if nets.is_empty() || mode == Mode::Demo {
            self.findings.pass(
                v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
                "webhooks may only reach public addresses",
            );
        } else {
            self.findings.warn(
                v::WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
                format!("webhooks may reach {} private network(s); keep this empty in production unless a receiver lives there", nets.len()),
            );
        }
        let max_consecutive_failures =
            self.number::<u32>(v::WEBHOOK_MAX_CONSECUTIVE_FAILURES, 1, 10_000);
        let grace_hours = self.number::<i64>(v::WEBHOOK_SECRET_GRACE_HOURS, 0, 720);
        let delivery_concurrency = self.number::<usize>(v::WEBHOOK_DELIVERY_CONCURRENCY, 1, 1024);
        Some(WebhookSettings {
            allowed_private_networks: nets,
            max_consecutive_failures: max_consecutive_failures?,
            secret_grace_seconds: grace_hours? * 3600,
            delivery_concurrency: delivery_concurrency?,
        })
    }

    /// On by default; the demo turns it off (and its pages say so) unless set.
    fn admin_require_mfa(&mut self, mode: Mode) -> Option<bool> {
        if mode == Mode::Demo && self.raw.get(v::ADMIN_REQUIRE_MFA).is_none() {
            return Some(false);
        }
        let required = self.boolean(v::ADMIN_REQUIRE_MFA)?;
        if required {
            self.findings.pass(
                v::ADMIN_REQUIRE_MFA,
                "administrators need MFA to sign in to the admin pages",
            );
        } else if mode == Mode::Production {
            self.findings.warn(
                v::ADMIN_REQUIRE_MFA,
                "administrators can sign in to the admin pages with a password alone",
            );
        }
        Some(required)
    }

    fn log(&mut self) -> Option<LogSettings> {
        let format = match self
            .raw
            .get(v::LOG_FORMAT)
            .unwrap_or(default_of(v::LOG_FORMAT))
        {
            f if f.eq_ignore_ascii_case("text") => Some(LogFormat::Text),
            f if f.eq_ignore_ascii_case("json") => Some(LogFormat::Json),
            _ => {
                self.findings
                    .fail(v::LOG_FORMAT, "must be `text` or `json`");
                None
            }
        };
        let level = self
            .raw
            .get(v::LOG_LEVEL)
            .unwrap_or(default_of(v::LOG_LEVEL));
        let level = if tracing_subscriber::EnvFilter::try_new(level).is_ok() {
            Some(level.to_owned())
        } else {
            self.findings.fail(
                v::LOG_LEVEL,
                "is not a valid log filter; use e.g. `info` or `portcullis=debug`",
            );
            None
        };
        Some(LogSettings {
            format: format?,
            level: level?,
        })
    }

    /// The value, or `None` after recording the failure against `name`.
    fn checked<T>(&mut self, name: &'static str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|problem| self.findings.fail(name, problem))
            .ok()
    }

    /// A number within `min..=max`, or the variable's default.
    fn number<T>(&mut self, name: &'static str, min: T, max: T) -> Option<T>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let text = self.raw.get(name).unwrap_or(default_of(name));
        match text.parse::<T>() {
            Ok(n) if n >= min && n <= max => Some(n),
            _ => {
                self.findings
                    .fail(name, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }

    fn boolean(&mut self, name: &'static str) -> Option<bool> {
        let text = self.raw.get(name).unwrap_or(default_of(name));
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                self.findings.fail(name, "must be true or false");
                None
            }
        }
    }

    fn parsed<T: FromStr>(&mut self, name: &'static str, problem: &str) -> Option<T> {
        let text = self.raw.get(name).unwrap_or(default_of(name));
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(_) => {
                self.findings.fail(name, problem.to_owned());
                None
            }
        }
    }
}

/// Whether a validated origin's host is loopback (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host = match rest.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(inside, _)| inside),
        None => rest.rsplit_once(':').map_or(rest, |(host, _)| host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Creates the database's directory if needed and proves it accepts a new file.
fn ensure_writable_parent(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; point it at a file such as {}/portcullis.db",
            path.display(),
            path.display()
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "directory {} cannot be created ({}); choose a writable location",
            dir.display(),
            e.kind()
        )
    })?;
    let probe = dir.join(format!(".portcullis-write-check-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "directory {} is not writable ({}); fix its permissions or choose another path",
                dir.display(),
                e.kind()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_pairs(dir: &Path) -> Vec<(&'static str, String)> {
        vec![
            (
                v::JWT_SECRET_KEY,
                "q8Zr2VxN4kLm7Tc1Hw9Jd3Fy6Bg5Ps0AuE".to_owned(),
            ),
            (v::CREDENTIAL_ENCRYPTION_KEY, fernet::Fernet::generate_key()),
            (v::MFA_ENCRYPTION_KEY, fernet::Fernet::generate_key()),
            (
                v::DATABASE_PATH,
                dir.join("p.db").to_string_lossy().into_owned(),
            ),
        ]
    }

    fn load(pairs: &[(&str, String)]) -> Result<(Settings, Findings), Findings> {
        let sources = ConfigSources::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        Settings::load(&sources, Mode::Production)
    }

    #[test]
    fn good_configuration_loads_with_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (settings, findings) = load(&good_pairs(dir.path())).expect("valid");
        assert!(!findings.has_failures());
        assert_eq!(settings.jwt.access_token_minutes, 15);
        assert_eq!(settings.jwt.refresh_token_days, 7);
        assert_eq!(settings.rate_limits.authenticated, RateQuota::new(100, 60));
        assert_eq!(settings.rate_limits.login_ip, RateQuota::new(5, 60));
        assert_eq!(
            settings.rate_limits.softlock.steps,
            vec![(5, 60), (10, 300), (20, 3600)]
        );
        assert_eq!(settings.http.max_json_body_bytes, 65536);
        assert!(!settings.http.hsts_enabled());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pairs = good_pairs(dir.path());
        pairs.retain(|(k, _)| *k == v::DATABASE_PATH);
        pairs.push((v::CORS_ALLOWED_ORIGINS, "*".to_owned()));
        pairs.push((v::ACCESS_TOKEN_EXPIRE_MINUTES, "zero".to_owned()));
        let findings = load(&pairs).expect_err("refused");
        let failed: Vec<&str> = findings
            .with_status(Status::Fail)
            .map(|f| f.variable.as_str())
            .collect();
        for name in [
            v::JWT_SECRET_KEY,
            v::CREDENTIAL_ENCRYPTION_KEY,
            v::MFA_ENCRYPTION_KEY,
            v::CORS_ALLOWED_ORIGINS,
            v::ACCESS_TOKEN_EXPIRE_MINUTES,
        ] {
            assert!(failed.contains(&name), "{name} not reported: {failed:?}");
        }
    }

    #[test]
    fn loosened_limits_warn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pairs = good_pairs(dir.path());
        pairs.push((v::DEFAULT_RATE_LIMIT_CALLS, "1000".to_owned()));
        pairs.push((v::TRUSTED_PROXIES, "0.0.0.0/0".to_owned()));
        let (_, findings) = load(&pairs).expect("valid");
        let warned: Vec<&str> = findings
            .with_status(Status::Warn)
            .map(|f| f.variable.as_str())
            .collect();
        assert!(warned.contains(&v::DEFAULT_RATE_LIMIT_CALLS));
        assert!(warned.contains(&v::TRUSTED_PROXIES));
        assert!(warned.contains(&v::TLS_CERT_PATH));
        assert!(warned.contains(&v::HSTS_MAX_AGE_SECONDS));
    }

    #[test]
    fn only_true_loopback_origins_may_use_plain_http() {
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "http://[::1]:8080",
            "https://x.org",
        ] {
            assert!(
                is_loopback_origin(origin) || origin.starts_with("https"),
                "{origin}"
            );
        }
        for origin in [
            "http://localhost.evil.com",
            "http://127.evil.com",
            "http://[::2]",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn shared_keys_warn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pairs = good_pairs(dir.path());
        let shared = fernet::Fernet::generate_key();
        for (k, value) in pairs.iter_mut() {
            if *k == v::CREDENTIAL_ENCRYPTION_KEY || *k == v::MFA_ENCRYPTION_KEY {
                *value = shared.clone();
            }
        }
        let (_, findings) = load(&pairs).expect("valid");
        assert!(
            findings
                .with_status(Status::Warn)
                .any(|f| f.variable == v::MFA_ENCRYPTION_KEY)
        );
    }
}
