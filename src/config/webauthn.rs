//! Passkeys (WebAuthn): the relying party id and the origins ceremonies may run on.
//!
//! Both default from where browsers reach Portcullis — `PUBLIC_URL`, and the gate
//! portal (`GATE_PORTAL_URL`) when the gate is on — so passkeys just work once
//! `PUBLIC_URL` is set. What browsers would refuse is refused here, at start-up, with
//! the fix, never discovered at the first ceremony: an origin must be https (plain
//! http only on `localhost`) with a host name, not an IP address; the RP id must be
//! each origin's host or a domain it is under, and not a top-level domain. When the
//! defaults alone do not make a working pair (an IP in `PUBLIC_URL`, portal and API on
//! unrelated hosts), passkeys stay off with a warning that says what to set; a pair
//! set explicitly and wrong is refused (exit 2).

use url::Url;

use super::variables as v;
use super::{Reader, rules};
use crate::model::host::is_host_name;

#[derive(Debug, Clone)]
pub struct WebauthnSettings {
    /// The relying party id: a host name every origin is, or is under.
    pub rp_id: String,
    /// The origins (`scheme://host[:port]`) ceremonies may come from, the first one
    /// the main one.
    pub origins: Vec<Url>,
}

/// The host of a validated origin (`scheme://host[:port]`, lower-cased).
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if rest.starts_with('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    rest.rsplit_once(':').map_or(rest, |(host, _)| host)
}

/// Whether an origin's host is an IP address (IPv4, or IPv6 in brackets).
fn is_ip_host(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok()
}

/// Why a validated origin cannot run WebAuthn ceremonies, if it cannot.
pub(super) fn webauthn_origin(origin: &str) -> Result<(), String> {
    let host = origin_host(origin);
    if is_ip_host(host) {
        return Err(format!(
            "`{origin}` names an IP address, and WebAuthn needs a host name: use a name that resolves to it (e.g. http://localhost:8080 instead of http://127.0.0.1:8080)"
        ));
    }
    if origin.starts_with("http://") && host != "localhost" {
        return Err(format!(
            "`{origin}` uses plain http, and browsers allow passkeys over http only on localhost: use https"
        ));
    }
    Ok(())
}

/// An RP id as browsers accept one: a host name (lower-cased, no trailing dot), not
/// an IP address, and not a top-level domain.
pub(super) fn rp_id(value: &str) -> Result<String, String> {
    let id = value.trim().trim_end_matches('.').to_ascii_lowercase();
    if is_ip_host(&id) {
        return Err(format!(
            "`{value}` is an IP address; the RP id must be a host name, such as example.com"
        ));
    }
    if !is_host_name(&id) {
        return Err(format!(
            "`{value}` is not a host name (letters, digits, `-` and `.`), such as example.com"
        ));
    }
    // The simple public-suffix rule: a single label is a top-level domain, which no
    // browser takes as an RP id; only `localhost` is a single-label site.
    if !id.contains('.') && id != "localhost" {
        return Err(format!(
            "`{value}` is a top-level domain, which browsers refuse as an RP id: use your site's domain, such as example.com"
        ));
    }
    Ok(id)
}

/// Whether passkeys registered for `rp_id` can be used on `origin`: its host is the
/// RP id or a name under it.
pub(super) fn rp_id_covers(rp_id: &str, origin: &str) -> bool {
    let host = origin_host(origin);
    host == rp_id || host.ends_with(&format!(".{rp_id}"))
}

/// Where the origins come from.
enum OriginSource {
    /// `WEBAUTHN_RP_ORIGINS`.
    Listed,
    /// `PUBLIC_URL` and the gate portal's origin.
    Defaulted,
}

impl Reader<'_> {
    /// `public_url` and `portal_url` are the already-checked `PUBLIC_URL` and
    /// `GATE_PORTAL_URL` (the latter only while the gate is on).
    pub(super) fn webauthn(
        &mut self,
        public_url: Option<&str>,
        portal_url: Option<&str>,
    ) -> Option<Option<WebauthnSettings>> {
        let listed_id = self.raw.get(v::WEBAUTHN_RP_ID);
        let (origins, source) = match self.raw.get(v::WEBAUTHN_RP_ORIGINS) {
            Some(list) => {
                let items = self.checked(v::WEBAUTHN_RP_ORIGINS, rules::split_list(list))?;
                let checked: Vec<Option<String>> = items
                    .into_iter()
                    .map(|item| {
                        let origin = self.checked(v::WEBAUTHN_RP_ORIGINS, rules::origin(item))?;
                        self.checked(v::WEBAUTHN_RP_ORIGINS, webauthn_origin(&origin))?;
                        Some(origin)
                    })
                    .collect();
                (
                    checked.into_iter().collect::<Option<Vec<_>>>()?,
                    OriginSource::Listed,
                )
            }
            None => {
                let mut defaults: Vec<String> = public_url.into_iter().map(str::to_owned).collect();
                if let Some(portal) = portal_url.filter(|p| Some(*p) != public_url) {
                    defaults.push(portal.to_owned());
                }
                (defaults, OriginSource::Defaulted)
            }
        };
        if origins.is_empty() {
            if listed_id.is_some() {
                self.findings.fail(
                    v::WEBAUTHN_RP_ORIGINS,
                    "is needed with WEBAUTHN_RP_ID: list the origins browsers sign in on (e.g. https://auth.example.com), or set PUBLIC_URL",
                );
                return None;
            }
            self.findings.pass(
                v::WEBAUTHN_RP_ID,
                "passkeys are off: set PUBLIC_URL (or WEBAUTHN_RP_ID and WEBAUTHN_RP_ORIGINS) to turn them on",
            );
            return Some(None);
        }
        let explicit = listed_id.is_some() || matches!(source, OriginSource::Listed);
        let id = match listed_id {
            Some(value) => self.checked(v::WEBAUTHN_RP_ID, rp_id(value))?,
            None if explicit => self.checked(v::WEBAUTHN_RP_ID, rp_id(origin_host(&origins[0])))?,
            None => origin_host(&origins[0]).to_owned(),
        };
        if !explicit {
            return Some(self.defaulted(id, origins));
        }
        let uncovered: Vec<&str> = origins
            .iter()
            .filter(|o| !rp_id_covers(&id, o))
            .map(String::as_str)
            .collect();
        if !uncovered.is_empty() {
            self.findings.fail(
                v::WEBAUTHN_RP_ID,
                format!(
                    "`{id}` does not cover {}: the RP id must be each origin's host or a domain it is under; set WEBAUTHN_RP_ID to a domain every origin shares (e.g. example.com for auth.example.com and login.example.com), or list only origins under {id}",
                    uncovered.join(", ")
                ),
            );
            return None;
        }
        if let Some(portal) = portal_url
            && !origins.iter().any(|o| o == portal)
        {
            self.findings.warn(
                v::WEBAUTHN_RP_ORIGINS,
                format!(
                    "does not list the gate portal's origin {portal}: passkeys cannot sign in there; add it"
                ),
            );
        }
        Some(self.settings_for(id, &origins))
    }

    /// Passkeys from `PUBLIC_URL` (and the portal) alone: on when they make a working
    /// pair, otherwise off with a warning naming what to set.
    fn defaulted(&mut self, id: String, origins: Vec<String>) -> Option<WebauthnSettings> {
        let problem = origins
            .iter()
            .find_map(|o| webauthn_origin(o).err())
            .or_else(|| rp_id(&id).err())
            .or_else(|| {
                origins.iter().find(|o| !rp_id_covers(&id, o)).map(|o| {
                    format!(
                        "{o} is not under {id}, the host of PUBLIC_URL: set WEBAUTHN_RP_ID to the domain they share (e.g. example.com)"
                    )
                })
            });
        if let Some(problem) = problem {
            self.findings.warn(
                v::WEBAUTHN_RP_ID,
                format!(
                    "passkeys are off: taken from PUBLIC_URL and GATE_PORTAL_URL, {problem}; or set WEBAUTHN_RP_ID and WEBAUTHN_RP_ORIGINS"
                ),
            );
            return None;
        }
        self.settings_for(id, &origins)
    }

    fn settings_for(&mut self, rp_id: String, origins: &[String]) -> Option<WebauthnSettings> {
        let parsed: Result<Vec<Url>, _> = origins.iter().map(|o| Url::parse(o)).collect();
        let Ok(origins) = parsed else {
            self.findings.fail(
                v::WEBAUTHN_RP_ORIGINS,
                "contains an origin that is not a URL; list origins such as https://auth.example.com",
            );
            return None;
        };
        self.findings.pass(
            v::WEBAUTHN_RP_ID,
            format!(
                "passkeys are on: RP id {rp_id}, origin(s) {}",
                origins
                    .iter()
                    .map(|o| o.origin().ascii_serialization())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        Some(WebauthnSettings { rp_id, origins })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_need_a_host_name_and_https_off_localhost() {
        assert!(webauthn_origin("https://auth.example.com").is_ok());
        assert!(webauthn_origin("http://localhost:8080").is_ok());
        assert!(webauthn_origin("https://localhost").is_ok());
        for (origin, says) in [
            ("http://127.0.0.1:8080", "IP address"),
            ("https://[::1]:8443", "IP address"),
            ("https://10.0.0.7", "IP address"),
            ("http://auth.example.com", "plain http"),
            ("http://localhost.example.com", "plain http"),
        ] {
            let problem = webauthn_origin(origin).err().unwrap_or_default();
            assert!(problem.contains(says), "{origin}: {problem}");
        }
    }

    #[test]
    fn rp_ids_are_host_names_below_the_top_level() {
        assert_eq!(rp_id("Example.COM.").as_deref(), Ok("example.com"));
        assert_eq!(rp_id("localhost").as_deref(), Ok("localhost"));
        for (value, says) in [
            ("com", "top-level domain"),
            ("test", "top-level domain"),
            ("127.0.0.1", "IP address"),
            ("[::1]", "IP address"),
            ("exa mple.com", "not a host name"),
            ("", "not a host name"),
        ] {
            let problem = rp_id(value).err().unwrap_or_default();
            assert!(problem.contains(says), "{value}: {problem}");
        }
    }

    #[test]
    fn an_rp_id_covers_its_own_host_and_names_under_it_only() {
        assert!(rp_id_covers("example.com", "https://example.com"));
        assert!(rp_id_covers("example.com", "https://auth.example.com:8443"));
        assert!(rp_id_covers("localhost", "http://localhost:8080"));
        assert!(!rp_id_covers("example.com", "https://badexample.com"));
        assert!(!rp_id_covers("auth.example.com", "https://example.com"));
        assert!(!rp_id_covers("example.com", "https://example.com.evil.org"));
    }
}
