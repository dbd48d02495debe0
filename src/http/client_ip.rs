//! The client's address: the TCP peer, or — only when the peer is a trusted proxy —
//! the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy. Anything a
//! client writes into that header is ignored unless our own proxy vouches for it.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::http::problem::ApiError;

/// The resolved client address of a request (stored by the request context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Resolves the client address. `None` when it cannot be determined (no peer, or a
/// hop written by one of our own proxies is unreadable): callers must then deny, not
/// guess. Hops left of the first untrusted one are never read — they are whatever the
/// client chose to send.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Several header lines form one list, in order.
    let mut values = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        values.push(value.to_str().ok()?);
    }
    let hops = values.iter().flat_map(|v| v.split(',')).rev();
    let mut client = peer;
    for hop in hops {
        client = parse_hop(hop.trim())?.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`203.0.113.5:4711`, `[2001:db8::1]:443`, `[2001:db8::1]`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<ClientIp>().copied().ok_or_else(|| {
            ApiError::BadRequest("The client address could not be determined.".to_owned())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append(
                "x-forwarded-for".parse().expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let got = resolve(Some(ip("203.0.113.9")), &headers(&["1.2.3.4"]), &[]);
        assert_eq!(got, Some(ip("203.0.113.9")));
    }

    #[test]
    fn trusted_proxy_rightmost_untrusted_hop_wins() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged "6.6.6.6" at the left; the proxy appended the real peer.
        let got = resolve(
            Some(ip("10.0.0.2")),
            &headers(&["6.6.6.6, 198.51.100.7", "10.0.0.5"]),
            &trusted,
        );
        assert_eq!(got, Some(ip("198.51.100.7")));
    }

    #[test]
    fn trusted_proxy_without_header_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(Some(ip("10.1.1.1")), &headers(&[]), &trusted),
            Some(ip("10.1.1.1"))
        );
    }

    #[test]
    fn junk_left_of_the_client_is_never_read_and_ports_are_accepted() {
        let trusted = nets(&["10.0.0.0/8"]);
        for (header, expected) in [
            ("unknown, 203.0.113.5", "203.0.113.5"),
            ("203.0.113.5:4711", "203.0.113.5"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443, 10.0.0.9", "2001:db8::1"),
        ] {
            assert_eq!(
                resolve(Some(ip("10.0.0.2")), &headers(&[header]), &trusted),
                Some(ip(expected)),
                "{header}"
            );
        }
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_undeterminable() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(Some(ip("10.1.1.1")), &headers(&["not-an-ip"]), &trusted),
            None
        );
        assert_eq!(resolve(None, &headers(&[]), &trusted), None);
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        assert_eq!(
            resolve(Some(ip("::ffff:192.0.2.1")), &headers(&[]), &[]),
            Some(ip("192.0.2.1"))
        );
    }
}
