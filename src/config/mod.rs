//! Typed settings, read from the environment, an optional `.env` and an optional TOML
//! file, and checked before anything starts. A configuration with any failing check is
//! refused as a whole: Portcullis never starts half-configured.

mod database;
mod findings;
mod gate;
mod http;
mod jwt;
mod keys;
mod limits;
mod log;
mod metrics;
mod passwords;
mod rules;
mod sources;
pub mod tls;
pub mod variables;
mod webauthn;
mod webhooks;

use std::path::PathBuf;
use std::str::FromStr;

use secrecy::SecretString;

pub use database::DatabaseSettings;
pub use findings::{Finding, Findings, Status};
pub use gate::{GateSettings, ed25519_seed};
pub use http::{HttpSettings, TlsSettings};
pub use jwt::{DEFAULT_ACCESS_TOKEN_MINUTES, DEFAULT_REFRESH_TOKEN_DAYS, JwtSettings};
pub use keys::KeyPurpose;
pub use limits::{
    DEFAULT_RATE_LIMIT_CALLS, DEFAULT_RATE_LIMIT_PERIOD, RateLimitSettings, RateQuota,
    SoftlockSettings,
};
pub use log::{LogFormat, LogRequests, LogSettings};
pub use metrics::MetricsSettings;
pub use passwords::{MIN_ITERATIONS, MIN_MEMORY_KIB, MIN_PARALLELISM, PasswordSettings};
pub use rules::weak_secret_reason;
pub use sources::{ConfigSources, RawConfig};
use variables as v;
pub use webauthn::WebauthnSettings;
pub use webhooks::WebhookSettings;

/// Production, or the local demo (loopback only, demo data, relaxed where it says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Demo,
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
    /// The gate (forward-auth), when `GATE_PORTAL_URL` turns it on.
    pub gate: Option<GateSettings>,
    /// Passkeys (WebAuthn), when an RP id and origins are configured or follow from
    /// `PUBLIC_URL`.
    pub webauthn: Option<WebauthnSettings>,
    /// Whether administrators need MFA to sign in to the admin pages.
    pub admin_require_mfa: bool,
    pub log: LogSettings,
    /// The metrics listener (`METRICS_BIND_ADDRESS`), off by default.
    pub metrics: MetricsSettings,
    /// What the checks found (warnings and passes), for the admin dashboard.
    pub findings: Findings,
}

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
        let (raw, _) = RawConfig::gather_settings(sources);
        PathBuf::from(
            raw.get(v::DATABASE_PATH)
                .unwrap_or(default_of(v::DATABASE_PATH)),
        )
    }
}

impl Settings {
    /// Where each secret of `sources` comes from (variable, source), never a value.
    pub fn secret_origins(sources: &ConfigSources) -> Vec<(&'static str, String)> {
        let (raw, _) = RawConfig::gather(sources);
        raw.secret_origins()
            .map(|(name, origin)| (name, origin.to_owned()))
            .collect()
    }

    /// The readiness URLs of a server configured by `sources`, as a probe on the
    /// same host reaches it: `BIND_ADDRESS`, with an unspecified address taken as
    /// loopback (`::` as `[::1]`, then `127.0.0.1`, since an IPv6 socket may or may
    /// not take IPv4 too). `Err` says why there is none to guess: TLS is on, and a
    /// name the certificate covers must be given. Reads no secret file.
    pub fn readiness_urls(sources: &ConfigSources) -> Result<Vec<String>, String> {
        let (raw, _) = RawConfig::gather_settings(sources);
        if raw.get(v::TLS_CERT_PATH).is_some() {
            return Err(format!(
                "TLS is on ({}): give --url with a name its certificate covers",
                v::TLS_CERT_PATH
            ));
        }
        let text = raw
            .get(v::BIND_ADDRESS)
            .unwrap_or(default_of(v::BIND_ADDRESS));
        let address: std::net::SocketAddr = text
            .parse()
            .map_err(|_| format!("{} is not an address:port: {text}", v::BIND_ADDRESS))?;
        let port = address.port();
        let url = |ip: std::net::IpAddr| {
            format!(
                "http://{}/health/ready",
                std::net::SocketAddr::new(ip, port)
            )
        };
        Ok(match address.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                vec![url(std::net::Ipv4Addr::LOCALHOST.into())]
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => vec![
                url(std::net::Ipv6Addr::LOCALHOST.into()),
                url(std::net::Ipv4Addr::LOCALHOST.into()),
            ],
            ip => vec![url(ip)],
        })
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
        let gate = self.gate(http.as_ref().map(|h| h.trusted_proxies.as_slice()));
        let webauthn = self.webauthn(
            http.as_ref().and_then(|h| h.public_url.as_deref()),
            gate.as_ref()
                .and_then(Option::as_ref)
                .map(|g| g.portal_url.as_str()),
        );
        let admin_require_mfa = self.admin_require_mfa(mode);
        let log = self.log();
        let metrics = self.metrics(http.as_ref().map(|h| h.bind_address));
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
            gate: gate?,
            webauthn: webauthn?,
            admin_require_mfa: admin_require_mfa?,
            log: log?,
            metrics: metrics?,
            findings: Findings::default(),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::http::is_loopback_origin;
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
        assert_eq!(settings.rate_limits.mfa_ip, RateQuota::new(10, 60));
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
        pairs.push((v::RATE_LIMIT_MFA_IP, "100/60".to_owned()));
        pairs.push((v::TRUSTED_PROXIES, "0.0.0.0/0".to_owned()));
        let (_, findings) = load(&pairs).expect("valid");
        let warned: Vec<&str> = findings
            .with_status(Status::Warn)
            .map(|f| f.variable.as_str())
            .collect();
        assert!(warned.contains(&v::DEFAULT_RATE_LIMIT_CALLS));
        assert!(warned.contains(&v::RATE_LIMIT_MFA_IP));
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
    fn the_gate_needs_its_hosts_key_and_proxies_and_a_cookie_domain_that_covers_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let failed = |extra: &[(&'static str, &str)]| -> Vec<String> {
            let mut pairs = good_pairs(dir.path());
            pairs.push((v::GATE_PORTAL_URL, "https://auth.example.com".to_owned()));
            pairs.extend(extra.iter().map(|(k, val)| (*k, (*val).to_owned())));
            match load(&pairs) {
                Ok(_) => Vec::new(),
                Err(findings) => findings
                    .with_status(Status::Fail)
                    .map(|f| f.variable.clone())
                    .collect(),
            }
        };
        let missing = failed(&[]);
        for name in [v::GATE_HOSTS, v::GATE_ASSERTION_KEY, v::TRUSTED_PROXIES] {
            assert!(missing.iter().any(|f| f == name), "{name}: {missing:?}");
        }
        let key =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        let good = [
            (v::GATE_HOSTS, "*.example.com,app.example.org"),
            (v::GATE_ASSERTION_KEY, key.as_str()),
            (v::TRUSTED_PROXIES, "127.0.0.1"),
        ];
        assert!(failed(&good).is_empty(), "{:?}", failed(&good));
        let mut narrow = good.to_vec();
        narrow.push((v::GATE_COOKIE_DOMAIN, "example.com"));
        assert_eq!(failed(&narrow), vec![v::GATE_COOKIE_DOMAIN.to_owned()]);
        let mut bad_key = good.to_vec();
        bad_key[1] = (v::GATE_ASSERTION_KEY, "not-a-key");
        assert_eq!(failed(&bad_key), vec![v::GATE_ASSERTION_KEY.to_owned()]);
        let mut tld = good.to_vec();
        tld[0] = (v::GATE_HOSTS, "*.com");
        assert_eq!(failed(&tld), vec![v::GATE_HOSTS.to_owned()]);
    }

    #[test]
    fn a_cookie_domain_browsers_would_refuse_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        let failed = |portal: &str, hosts: &str, domain: &str| -> Vec<String> {
            let mut pairs = good_pairs(dir.path());
            pairs.extend([
                (v::GATE_PORTAL_URL, portal.to_owned()),
                (v::GATE_HOSTS, hosts.to_owned()),
                (v::GATE_ASSERTION_KEY, key.clone()),
                (v::TRUSTED_PROXIES, "127.0.0.1".to_owned()),
                (v::GATE_COOKIE_DOMAIN, domain.to_owned()),
            ]);
            match load(&pairs) {
                Ok(_) => Vec::new(),
                Err(findings) => findings
                    .with_status(Status::Fail)
                    .map(|f| f.variable.clone())
                    .collect(),
            }
        };
        for (portal, hosts, domain) in [
            ("http://auth.localhost:8088", "*.localhost", "localhost"),
            ("https://auth.example.co.uk", "*.example.co.uk", "co.uk"),
            (
                "https://auth.example.github.io",
                "*.example.github.io",
                "github.io",
            ),
        ] {
            assert_eq!(
                failed(portal, hosts, domain),
                vec![v::GATE_COOKIE_DOMAIN.to_owned()],
                "{domain}"
            );
        }
        assert!(
            failed(
                "https://auth.example.co.uk",
                "*.example.co.uk",
                "example.co.uk"
            )
            .is_empty()
        );
    }

    #[test]
    fn passkeys_follow_public_url_and_the_portal_when_they_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        let with = |extra: &[(&'static str, &str)]| {
            let mut pairs = good_pairs(dir.path());
            pairs.extend([
                (v::PUBLIC_URL, "https://auth.example.com".to_owned()),
                (v::GATE_PORTAL_URL, "https://login.example.com".to_owned()),
                (v::GATE_HOSTS, "*.example.com".to_owned()),
                (v::GATE_ASSERTION_KEY, key.clone()),
                (v::TRUSTED_PROXIES, "127.0.0.1".to_owned()),
            ]);
            pairs.extend(extra.iter().map(|(k, val)| (*k, (*val).to_owned())));
            load(&pairs).expect("valid")
        };
        // The two hosts share no RP id of their own: off, saying what to set.
        let (settings, findings) = with(&[]);
        assert!(settings.webauthn.is_none());
        assert!(findings.with_status(Status::Warn).any(|f| {
            f.variable == v::WEBAUTHN_RP_ID && f.message.contains("set WEBAUTHN_RP_ID")
        }));
        // Named, it covers both defaulted origins.
        let (settings, _) = with(&[(v::WEBAUTHN_RP_ID, "example.com")]);
        let webauthn = settings.webauthn.expect("passkeys on");
        assert_eq!(webauthn.rp_id, "example.com");
        let origins: Vec<String> = webauthn
            .origins
            .iter()
            .map(|o| o.origin().ascii_serialization())
            .collect();
        assert_eq!(
            origins,
            vec!["https://auth.example.com", "https://login.example.com"]
        );
        // Listed origins that leave the portal out still load, with a warning.
        let (_, findings) = with(&[
            (v::WEBAUTHN_RP_ID, "example.com"),
            (v::WEBAUTHN_RP_ORIGINS, "https://auth.example.com"),
        ]);
        assert!(
            findings
                .with_status(Status::Warn)
                .any(|f| f.variable == v::WEBAUTHN_RP_ORIGINS)
        );
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
