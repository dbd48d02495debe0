//! The SSRF guard. A webhook's host is resolved when it is delivered to, and the
//! connection is made only to an address that passed the check: not loopback,
//! private, link-local (the cloud metadata address 169.254.169.254 included),
//! unique-local, multicast, unspecified, shared (CGNAT), documentation or reserved,
//! nor an IPv4-mapped, -compatible, 6to4 or NAT64 form of one — unless it lies in
//! `WEBHOOK_ALLOWED_PRIVATE_NETWORKS`. Plain `http` is allowed only to allowlisted
//! targets.
//!
//! reqwest resolves host names through [`GuardedResolver`], so an address that
//! changes between the check and the connection (DNS rebinding) is checked again;
//! IP-literal hosts, which skip resolvers, are checked by [`Guard::check_url`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// A name that does not resolve within this long is refused.
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL is not a valid http(s) URL")]
    BadUrl,
    #[error("https is required (plain http only to WEBHOOK_ALLOWED_PRIVATE_NETWORKS)")]
    InsecureScheme,
    #[error("the address {0} is not public (loopback, private, link-local, …)")]
    NotPublic(IpAddr),
    #[error("the host resolved to no public address")]
    NoPublicAddress,
    /// The name does not resolve (or not within the time allowed): no address to
    /// judge at all.
    #[error("the host name does not resolve")]
    Unresolvable,
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _]
            if v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST =>
        {
            Some(tail())
        }
        // NAT64: the well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
        [0x64, 0xff9b, ..] => Some(tail()),
        // IPv4-translated ::ffff:0:a.b.c.d.
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(tail()),
        // 6to4 2002:a.b.c.d::/48.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..=127).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..=19).contains(&b)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || a >= 240) // reserved
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // Global unicast is 2000::/3; Teredo (2001::/32) tunnels to anywhere.
    let global = (first & 0xe000) == 0x2000 && !(first == 0x2001 && ip.segments()[1] == 0);
    global
        && !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // discard-only
}

/// Whether an address is a public one (by itself, before any allowlist).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_is_public(v4),
            None => v6_is_public(v6),
        },
    }
}

#[derive(Debug, Clone)]
pub struct Guard {
    allowed: Arc<[IpNet]>,
}

impl Guard {
    pub fn new(allowed: &[IpNet]) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }

    /// Whether `ip` lies in `WEBHOOK_ALLOWED_PRIVATE_NETWORKS` (also in its
    /// IPv4 form, for a mapped address).
    pub fn is_allowlisted(&self, ip: IpAddr) -> bool {
        let forms = [Some(ip), Some(ip.to_canonical())];
        forms
            .into_iter()
            .flatten()
            .any(|ip| self.allowed.iter().any(|net| net.contains(&ip)))
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.is_allowlisted(ip)
    }

    /// Checks a URL before delivery: scheme, and an IP-literal host. A host name is
    /// checked by resolving it (here, and again by [`GuardedResolver`] at connect).
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(Refusal::BadUrl),
        };
        let host = url.host().ok_or(Refusal::BadUrl)?;
        let addresses: Vec<IpAddr> = match host {
            url::Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
            url::Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
            url::Host::Domain(name) => {
                let port = url.port_or_known_default().unwrap_or(443);
                tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((name, port)))
                    .await
                    .map_err(|_| Refusal::Unresolvable)?
                    .map_err(|_| Refusal::Unresolvable)?
                    .map(|addr| addr.ip())
                    .collect()
            }
        };
        if addresses.is_empty() {
            return Err(Refusal::Unresolvable);
        }
        if let Some(bad) = addresses.iter().find(|ip| !self.permits(**ip)) {
            return Err(Refusal::NotPublic(*bad));
        }
        if !https && !addresses.iter().all(|ip| self.is_allowlisted(*ip)) {
            return Err(Refusal::InsecureScheme);
        }
        Ok(())
    }
}

/// reqwest's resolver, filtered through the guard: a connection can only be made to
/// an address the guard permits.
pub struct GuardedResolver {
    pub guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
                    .await
                    .map_err(|_| {
                        Box::new(Refusal::NoPublicAddress)
                            as Box<dyn std::error::Error + Send + Sync>
                    })??
                    .filter(|addr| guard.permits(addr.ip()))
                    .collect();
            if found.is_empty() {
                return Err(
                    Box::new(Refusal::NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for text in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "64:ff9b:1::a9fe:a9fe",
            "::ffff:0:7f00:1",
            "2001::1",
            "192.88.99.1",
            "4000::1",
        ] {
            assert!(!is_public(ip(text)), "{text} passed as public");
        }
        for text in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(is_public(ip(text)), "{text} refused");
        }
    }

    #[test]
    fn the_allowlist_admits_listed_networks_only() {
        let guard = Guard::new(&["127.0.0.0/8".parse().expect("net")]);
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(guard.permits(ip("::ffff:127.0.0.1")));
        assert!(!guard.permits(ip("10.0.0.1")));
        assert!(!guard.permits(ip("::1")));
    }

    #[tokio::test]
    async fn urls_are_checked_for_scheme_and_literal_hosts() {
        let guard = Guard::new(&["127.0.0.0/8".parse().expect("net")]);
        let url = |t: &str| reqwest::Url::parse(t).expect("url");
        assert_eq!(guard.check_url(&url("http://127.0.0.1:9/x")).await, Ok(()));
        assert_eq!(
            guard.check_url(&url("https://10.0.0.1/")).await,
            Err(Refusal::NotPublic(ip("10.0.0.1")))
        );
        assert_eq!(
            guard.check_url(&url("http://93.184.216.34/")).await,
            Err(Refusal::InsecureScheme)
        );
        assert_eq!(
            guard.check_url(&url("ftp://93.184.216.34/")).await,
            Err(Refusal::BadUrl)
        );
        assert_eq!(
            guard.check_url(&url("https://93.184.216.34/")).await,
            Ok(())
        );
    }
}
