//! Passkeys (WebAuthn): the relying party id and the origins ceremonies may run on.
//!
//! Both default from where browsers reach Portcullis — `PUBLIC_URL`, and the gate
//! portal (`GATE_PORTAL_URL`) when the gate is on — so passkeys just work once
//! `PUBLIC_URL` is set. What browsers would refuse is refused here, at start-up, with
//! the fix, never discovered at the first ceremony: an origin must be https (plain
//! http only on `localhost`) with a host name, not an IP address; the RP id must be
//! each origin's host or a domain it is under, within the origin's site (its
//! registrable domain), and never a public suffix. Public suffixes are those of the
//! Public Suffix List as browsers use it — the ICANN and the private sections alike
//! (`co.uk`, `com.au`, `github.io`), plus any top-level domain — compiled in (the
//! `psl` crate: no file at run time, no network); `localhost` is the one
//! single-label RP id. The default RP id is the host of `PUBLIC_URL`. When the
//! defaults alone do not make a working pair (an IP in `PUBLIC_URL`, a public suffix
//! as its host, portal and API on different hosts), passkeys stay off with a warning
//! that says what to set — for sibling hosts, the domain they share, never a public
//! suffix (`example.co.uk` for `https://api.example.co.uk` and
//! `https://auth.example.co.uk`, never `co.uk`); a pair set explicitly and wrong is
//! refused (exit 2).

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

/// Whether browsers take `host` (a lower-cased host name) for a public suffix: an
/// entry of the Public Suffix List, ICANN or private section (`com`, `co.uk`,
/// `github.io`), or a top-level domain the list does not name. `localhost` is not one.
fn is_public_suffix(host: &str) -> bool {
    // A name with no registrable domain is a public suffix itself.
    host != "localhost" && psl::domain(host.as_bytes()).is_none()
}

/// An RP id as browsers accept one: a host name (lower-cased, no trailing dot), not
/// an IP address, and not a public suffix (a top-level domain included).
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
    if is_public_suffix(&id) {
        if !id.contains('.') {
            return Err(format!(
                "`{value}` is a top-level domain, which browsers refuse as an RP id: use your site's domain, such as example.com"
            ));
        }
        return Err(format!(
            "`{id}` is a public suffix (anyone can register names under it), which browsers refuse as an RP id: use your site's registrable domain, such as example.{id}"
        ));
    }
    Ok(id)
}

/// Whether passkeys registered for `rp_id` can be used on `origin`: its host is the
/// RP id, or a name under it within the host's site — browsers refuse an RP id
/// above the host's registrable domain (`amazonaws.com` for
/// `app.s3.amazonaws.com`, whose public suffix is `s3.amazonaws.com`).
pub(super) fn rp_id_covers(rp_id: &str, origin: &str) -> bool {
    let host = origin_host(origin);
    if host == rp_id {
        return true;
    }
    let Some(site) = psl::domain_str(host) else {
        return false;
    };
    host.ends_with(&format!(".{rp_id}")) && (rp_id == site || rp_id.ends_with(&format!(".{site}")))
}

/// The longest domain every host is, or is under (`example.co.uk` for
/// `api.example.co.uk` and `auth.example.co.uk`); `None` when they share no label.
fn shared_domain(hosts: &[&str]) -> Option<String> {
    let (first, rest) = hosts.split_first()?;
    let mut shared: Vec<&str> = first.rsplit('.').collect();
    for host in rest {
        let common = shared
            .iter()
            .zip(host.rsplit('.'))
            .take_while(|(a, b)| **a == *b)
            .count();
        shared.truncate(common);
    }
    if shared.is_empty() {
        return None;
    }
    shared.reverse();
    Some(shared.join("."))
}

/// The RP id the default origins (`PUBLIC_URL`, then the portal) make: the host of
/// the first, when browsers take it as the RP id of every one. It is never widened
/// to a parent domain on its own — that would move the RP id, and every passkey
/// registered under it, whenever the portal comes or goes — so otherwise: why not,
/// and what to set, never a public suffix (`example.co.uk` for
/// `https://api.example.co.uk` and `https://auth.example.co.uk`, nothing for
/// `https://a.github.io` and `https://b.github.io`).
fn default_rp_id(origins: &[String]) -> Result<String, String> {
    if let Some(problem) = origins.iter().find_map(|o| webauthn_origin(o).err()) {
        return Err(problem);
    }
    let id = rp_id(origins.first().map_or("", |o| origin_host(o)))?;
    let Some(uncovered) = origins.iter().find(|o| !rp_id_covers(&id, o)) else {
        return Ok(id);
    };
    let hosts: Vec<&str> = origins.iter().map(|o| origin_host(o)).collect();
    let shared = shared_domain(&hosts)
        .and_then(|shared| rp_id(&shared).ok())
        .filter(|shared| origins.iter().all(|o| rp_id_covers(shared, o)));
    Err(match shared {
        Some(shared) => format!(
            "{uncovered} is not under {id}, the host of PUBLIC_URL: set WEBAUTHN_RP_ID to {shared}, the domain they share"
        ),
        None => format!(
            "{} are on different sites (registrable domains, such as example.com or example.co.uk), and an RP id covers one site only: put them under one domain (e.g. auth.example.com and api.example.com, with WEBAUTHN_RP_ID=example.com)",
            origins.join(" and ")
        ),
    })
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
            None => return Some(self.defaulted(&origins)),
        };
        let uncovered: Vec<&str> = origins
            .iter()
            .filter(|o| !rp_id_covers(&id, o))
            .map(String::as_str)
            .collect();
        if !uncovered.is_empty() {
            self.findings.fail(
                v::WEBAUTHN_RP_ID,
                format!(
                    "`{id}` does not cover {}: the RP id must be each origin's host or a domain it is under, no higher than the origin's registrable domain; set WEBAUTHN_RP_ID to a domain every origin shares (e.g. example.com for auth.example.com and login.example.com), or list only origins under {id}",
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
    fn defaulted(&mut self, origins: &[String]) -> Option<WebauthnSettings> {
        match default_rp_id(origins) {
            Ok(id) => self.settings_for(id, origins),
            Err(problem) => {
                self.findings.warn(
                    v::WEBAUTHN_RP_ID,
                    format!(
                        "passkeys are off: taken from PUBLIC_URL and GATE_PORTAL_URL, {problem}; or set WEBAUTHN_RP_ID and WEBAUTHN_RP_ORIGINS"
                    ),
                );
                None
            }
        }
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
    fn rp_ids_are_never_public_suffixes_icann_or_private() {
        for (value, id) in [
            ("example.co.uk", "example.co.uk"),
            ("Auth.Example.CO.UK.", "auth.example.co.uk"),
            ("example.com.au", "example.com.au"),
            ("me.github.io", "me.github.io"),
            ("example.test", "example.test"),
            ("xn--fiqz9s.xn--55qx5d.cn", "xn--fiqz9s.xn--55qx5d.cn"),
        ] {
            assert_eq!(rp_id(value).as_deref(), Ok(id), "{value}");
        }
        for (value, names) in [
            ("co.uk", "example.co.uk"),
            ("CO.UK.", "example.co.uk"),
            ("com.au", "example.com.au"),
            ("github.io", "example.github.io"),
            ("s3.amazonaws.com", "example.s3.amazonaws.com"),
            ("xn--55qx5d.cn", "example.xn--55qx5d.cn"),
        ] {
            let problem = rp_id(value).err().unwrap_or_default();
            assert!(
                problem.contains("is a public suffix (anyone can register names under it)")
                    && problem.contains("browsers refuse as an RP id")
                    && problem.contains(&format!("such as {names}")),
                "{value}: {problem}"
            );
        }
        // A single label is a top-level domain, listed or not; `localhost` is a site.
        for value in ["uk", "io", "xn--fiqs8s", "internal"] {
            let problem = rp_id(value).err().unwrap_or_default();
            assert!(problem.contains("top-level domain"), "{value}: {problem}");
        }
        assert_eq!(rp_id("localhost").as_deref(), Ok("localhost"));
    }

    #[test]
    fn an_rp_id_stops_at_the_origins_registrable_domain() {
        assert!(rp_id_covers("example.co.uk", "https://auth.example.co.uk"));
        assert!(rp_id_covers("me.github.io", "https://me.github.io"));
        assert!(rp_id_covers(
            "auth.example.co.uk",
            "https://login.auth.example.co.uk"
        ));
        assert!(!rp_id_covers("co.uk", "https://example.co.uk"));
        assert!(!rp_id_covers("github.io", "https://me.github.io"));
        // Not a suffix itself, but above the hosts' suffix `s3.amazonaws.com`.
        assert!(rp_id("amazonaws.com").is_ok());
        assert!(!rp_id_covers(
            "amazonaws.com",
            "https://bucket.s3.amazonaws.com"
        ));
        assert!(!rp_id_covers("localhost", "https://app.localhost"));
    }

    #[test]
    fn the_default_rp_id_and_the_fix_it_names_are_never_public_suffixes() {
        let default = |origins: &[&str]| {
            default_rp_id(&origins.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        };
        for (origins, id) in [
            (&["https://auth.example.co.uk"][..], "auth.example.co.uk"),
            (&["https://me.github.io"][..], "me.github.io"),
            (
                &["https://example.co.uk", "https://auth.example.co.uk"][..],
                "example.co.uk",
            ),
            (
                &["https://auth.example.com", "https://auth.example.com:8443"][..],
                "auth.example.com",
            ),
            (
                &["http://localhost:8080", "http://localhost:9000"][..],
                "localhost",
            ),
        ] {
            assert_eq!(default(origins).as_deref(), Ok(id), "{origins:?}");
        }
        for (origins, says) in [
            // Siblings: the domain they share is named, not taken.
            (
                &["https://api.example.co.uk", "https://auth.example.co.uk"][..],
                "set WEBAUTHN_RP_ID to example.co.uk, the domain they share",
            ),
            (
                &["https://api.eu.example.com", "https://auth.eu.example.com"][..],
                "set WEBAUTHN_RP_ID to eu.example.com, the domain they share",
            ),
            (
                &["https://a.me.github.io", "https://b.me.github.io"][..],
                "set WEBAUTHN_RP_ID to me.github.io, the domain they share",
            ),
            // Sharing only a public suffix (or a domain above one) is no site.
            (
                &["https://example.co.uk", "https://other.co.uk"][..],
                "are on different sites",
            ),
            (
                &["https://a.github.io", "https://b.github.io"][..],
                "are on different sites",
            ),
            (
                &["https://a.example.com", "https://b.example.org"][..],
                "are on different sites",
            ),
            (
                &[
                    "https://a.s3.amazonaws.com",
                    "https://b.s3-website.amazonaws.com",
                ][..],
                "are on different sites",
            ),
            (&["https://github.io"][..], "`github.io` is a public suffix"),
            (&["https://co.uk"][..], "`co.uk` is a public suffix"),
            (&["http://127.0.0.1:8080"][..], "IP address"),
        ] {
            let problem = default(origins).err().unwrap_or_default();
            assert!(problem.contains(says), "{origins:?}: {problem}");
            for suffix in ["co.uk", "github.io", "com", "amazonaws.com"] {
                assert!(
                    !problem.contains(&format!("WEBAUTHN_RP_ID to {suffix},")),
                    "{problem}"
                );
            }
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
