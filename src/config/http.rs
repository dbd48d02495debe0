//! The listener: address, workers, CORS, trusted proxies, TLS and HSTS, body size.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;

use super::variables as v;
use super::{Mode, Reader, rules, tls};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind_address: SocketAddr,
    pub workers: Option<usize>,
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// The origin browsers reach the server at, when configured.
    pub public_url: Option<String>,
    pub behind_tls_proxy: bool,
    pub tls: Option<TlsSettings>,
    pub hsts_max_age_seconds: u64,
    pub max_json_body_bytes: usize,
    /// How long a request body may take to arrive, whole.
    pub body_timeout: std::time::Duration,
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

impl Reader<'_> {
    pub(super) fn http(&mut self, mode: Mode) -> Option<HttpSettings> {
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
        let public_url = match self.raw.get(v::PUBLIC_URL) {
            None => Some(None),
            Some(value) => self.checked(v::PUBLIC_URL, rules::origin(value)).map(Some),
        };
        let behind_tls_proxy = self.boolean(v::BEHIND_TLS_PROXY);
        let tls = self.tls();
        let hsts_max_age_seconds = self.number::<u64>(v::HSTS_MAX_AGE_SECONDS, 0, 63_072_000);
        let max_json_body_bytes =
            self.number::<usize>(v::MAX_JSON_BODY_BYTES, 1024, 16 * 1024 * 1024);
        let body_timeout_seconds = self.number::<u64>(v::REQUEST_BODY_TIMEOUT_SECONDS, 1, 300);
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
            public_url: public_url?,
            behind_tls_proxy: behind_tls_proxy?,
            tls: tls?,
            hsts_max_age_seconds: hsts_max_age_seconds?,
            max_json_body_bytes: max_json_body_bytes?,
            body_timeout: std::time::Duration::from_secs(body_timeout_seconds?),
        })
    }

    pub(super) fn cors_origins(&mut self) -> Option<Vec<String>> {
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

    pub(super) fn trusted_proxies(&mut self) -> Option<Vec<IpNet>> {
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

    pub(super) fn tls(&mut self) -> Option<Option<TlsSettings>> {
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
            (Some(cert_path), Some(key_path)) => match tls::server_config(&cert_path, &key_path) {
                Ok(server_config) => Some(Some(TlsSettings {
                    cert_path,
                    key_path,
                    server_config: Arc::new(server_config),
                })),
                Err(e) => {
                    self.findings.fail(e.variable(), e.to_string());
                    None
                }
            },
        }
    }
}

/// Whether a validated origin's host is loopback (`localhost`, 127.0.0.0/8, `[::1]`).
pub(super) fn is_loopback_origin(origin: &str) -> bool {
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
