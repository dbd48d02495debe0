//! What a limiter counts by: a client network, an account, or a user.

use std::net::{IpAddr, Ipv6Addr};

use crate::accounts::UserId;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client address; IPv6 clients by their /64, since one host can hold a whole
    /// /64 and would otherwise get a fresh bucket per address.
    Ip(IpAddr),
    /// An account, by its normalised e-mail (whether or not it exists).
    Account(String),
    /// An authenticated user.
    User(UserId),
}

impl LimitKey {
    pub fn ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                LimitKey::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => LimitKey::Ip(v4),
        }
    }

    /// The account an e-mail names, normalised the way accounts are stored.
    pub fn account(email: &str) -> Self {
        LimitKey::Account(email.trim().to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64() {
        let a = LimitKey::ip("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = LimitKey::ip("2001:db8:1:2:bbbb::2".parse().expect("ip"));
        let c = LimitKey::ip("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = LimitKey::ip("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(v4, LimitKey::Ip("192.0.2.1".parse().expect("ip")));
        assert_eq!(
            LimitKey::account(" Bob@Example.ORG "),
            LimitKey::account("bob@example.org")
        );
    }
}
