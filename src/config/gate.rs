//! The gate (forward-auth): off unless `GATE_PORTAL_URL` is set. When it is on, the
//! hosts it protects, the key that signs its identity assertions and the proxies it
//! answers are required, and a cookie domain that would not reach every protected
//! host is refused — a gate that half works is worse than none.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

use super::variables as v;
use super::{Reader, rules};
use crate::model::host::HostPattern;

#[derive(Debug, Clone)]
pub struct GateSettings {
    /// The portal's origin, `scheme://host[:port]`, lower-cased, no trailing slash.
    pub portal_url: String,
    pub hosts: Vec<HostPattern>,
    /// Cookie `Domain` (e.g. `example.com` for `*.example.com`); host-only when unset.
    pub cookie_domain: Option<String>,
    /// The Ed25519 seed (32 bytes) that signs assertions, base64url.
    pub assertion_key: SecretString,
    /// Retired seeds: their public keys stay published for verification.
    pub previous_assertion_keys: Vec<SecretString>,
    /// Subject attributes forwarded as `Remote-Attr-<name>` and in the assertion.
    pub forward_attributes: Vec<String>,
    pub session_idle_seconds: i64,
    pub session_max_seconds: i64,
}

impl GateSettings {
    /// Whether the portal is served over TLS (its cookie is then `Secure`).
    pub fn portal_is_https(&self) -> bool {
        self.portal_url.starts_with("https://")
    }
}

/// An Ed25519 seed: 32 bytes, base64url (padding optional).
pub fn ed25519_seed(value: &str) -> Result<[u8; 32], String> {
    let problem =
        || "is not an Ed25519 key: 32 bytes, base64url (`portcullis keygen` prints one)".to_owned();
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim().trim_end_matches('='))
        .map_err(|_| problem())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| problem())
}

/// An attribute name for `Remote-Attr-<name>`: what a header name and a policy
/// attribute key both allow.
fn attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Reader<'_> {
    pub(super) fn gate(
        &mut self,
        trusted_proxies: Option<&[ipnet::IpNet]>,
    ) -> Option<Option<GateSettings>> {
        let idle = self.number::<i64>(v::GATE_SESSION_IDLE_MINUTES, 1, 7 * 24 * 60);
        let max = self.number::<i64>(v::GATE_SESSION_MAX_HOURS, 1, 30 * 24);
        let Some(portal) = self.raw.get(v::GATE_PORTAL_URL) else {
            // (GATE_ASSERTION_KEY may wait there: `keygen` writes one for later.)
            for name in [v::GATE_HOSTS, v::GATE_COOKIE_DOMAIN] {
                if self.raw.get(name).is_some() {
                    self.findings.warn(
                        name,
                        "is set but the gate is off; set GATE_PORTAL_URL to turn it on",
                    );
                }
            }
            self.findings
                .pass(v::GATE_PORTAL_URL, "the gate (forward-auth) is off");
            return Some(None);
        };
        let portal_url = self.checked(v::GATE_PORTAL_URL, rules::origin(portal));
        let hosts = match self.raw.get(v::GATE_HOSTS) {
            None => {
                self.findings.fail(
                    v::GATE_HOSTS,
                    "is required with GATE_PORTAL_URL: list the hosts the gate protects, e.g. app.example.com,*.example.com",
                );
                None
            }
            Some(list) => self.checked(
                v::GATE_HOSTS,
                rules::split_list(list).and_then(|items| {
                    items
                        .into_iter()
                        .map(HostPattern::parse)
                        .collect::<Result<Vec<_>, _>>()
                }),
            ),
        };
        let assertion_key = match self.raw.get(v::GATE_ASSERTION_KEY) {
            None => {
                self.findings.fail(
                    v::GATE_ASSERTION_KEY,
                    "is required with GATE_PORTAL_URL: run `portcullis keygen` and copy its GATE_ASSERTION_KEY",
                );
                None
            }
            Some(key) => self
                .checked(v::GATE_ASSERTION_KEY, ed25519_seed(key).map(|_| ()))
                .map(|()| SecretString::from(key.trim().to_owned())),
        };
        let previous_assertion_keys = match self.raw.get(v::GATE_ASSERTION_PREVIOUS_KEYS) {
            None => Some(Vec::new()),
            Some(list) => self.checked(
                v::GATE_ASSERTION_PREVIOUS_KEYS,
                rules::split_list(list).and_then(|items| {
                    items
                        .into_iter()
                        .map(|k| ed25519_seed(k).map(|_| SecretString::from(k.to_owned())))
                        .collect::<Result<Vec<_>, _>>()
                }),
            ),
        };
        let forward_attributes = match self.raw.get(v::GATE_FORWARD_ATTRIBUTES) {
            None => Some(Vec::new()),
            Some(list) => self.checked(
                v::GATE_FORWARD_ATTRIBUTES,
                rules::split_list(list).and_then(|items| {
                    items
                        .into_iter()
                        .map(|name| {
                            attribute_name(name).then(|| name.to_owned()).ok_or_else(|| {
                                format!("`{name}` is not an attribute name (letters, digits, `_`, `-`)")
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                }),
            ),
        };
        let cookie_domain = self
            .raw
            .get(v::GATE_COOKIE_DOMAIN)
            .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase());
        // Browsers refuse a cookie whose Domain has no registrable domain: a public
        // suffix (`co.uk`, `github.io`), a bare top-level name, `localhost`.
        if let Some(domain) = &cookie_domain
            && psl::domain(domain.as_bytes()).is_none()
        {
            self.findings.fail(
                v::GATE_COOKIE_DOMAIN,
                format!(
                    "`{domain}` is a public suffix or a single name, and browsers refuse a cookie for one: name the domain the portal and apps share under it (e.g. example.co.uk), or leave it unset (each app host then gets its own session by the handoff)"
                ),
            );
        }
        if let (Some(domain), Some(hosts)) = (&cookie_domain, &hosts) {
            let uncovered: Vec<String> = hosts
                .iter()
                .filter(|h| !h.is_covered_by_cookie_domain(domain))
                .map(ToString::to_string)
                .collect();
            if !uncovered.is_empty() {
                self.findings.fail(
                    v::GATE_COOKIE_DOMAIN,
                    format!(
                        "`{domain}` does not cover {}: the portal's cookie would not reach them; use a domain every gate host ends with, or leave it unset",
                        uncovered.join(", ")
                    ),
                );
            }
        }
        if let (Some(domain), Some(Some(portal))) = (
            &cookie_domain,
            portal_url.as_ref().map(|p| {
                crate::model::host::parse_host_port(p.split_once("://").map_or("", |(_, h)| h))
            }),
        ) && !crate::model::host::is_within(&portal.name, domain)
        {
            self.findings.fail(
                v::GATE_COOKIE_DOMAIN,
                format!(
                    "`{domain}` does not cover the portal's host {}: it could not set the cookie",
                    portal.name
                ),
            );
        }
        if cookie_domain.is_none()
            && let (Some(hosts), Some(portal)) = (&hosts, &portal_url)
        {
            let portal_host = portal.split_once("://").map_or("", |(_, h)| h);
            let portal_name = portal_host.rsplit_once(':').map_or(portal_host, |(n, _)| n);
            if hosts.iter().any(|h| {
                !h.is_covered_by_cookie_domain(portal_name) || h.to_string().starts_with("*.")
            }) {
                self.findings.pass(
                    v::GATE_COOKIE_DOMAIN,
                    "is unset: the portal's cookie is its host's alone, and every other app host gets a session of its own at /.portcullis/handoff (the proxy configurations send it to Portcullis); set it to the domain the portal and the apps share to skip that step",
                );
            }
        }
        if trusted_proxies.is_some_and(<[ipnet::IpNet]>::is_empty) {
            self.findings.fail(
                v::TRUSTED_PROXIES,
                "is empty but the gate is on: name the proxy that asks the gate (e.g. 127.0.0.1), or nobody can use it",
            );
        }
        if let Some(hosts) = &hosts {
            self.findings.pass(
                v::GATE_HOSTS,
                format!(
                    "the gate protects {}",
                    hosts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let (portal_url, hosts, assertion_key) = (portal_url?, hosts?, assertion_key?);
        Some(Some(GateSettings {
            portal_url,
            hosts,
            cookie_domain,
            assertion_key,
            previous_assertion_keys: previous_assertion_keys?,
            forward_attributes: forward_attributes?,
            session_idle_seconds: idle? * 60,
            session_max_seconds: max? * 3600,
        }))
    }
}
