//! What a limiter counts by: a client network, an account, or a user.

use std::net::{IpAddr, Ipv6Addr};

use sha2::{Digest, Sha256};

use crate::model::{Email, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client address; IPv6 clients by their /64, since one host can hold a whole
    /// /64 and would otherwise get a fresh bucket per address.
    Ip(IpAddr),
    /// An account, by a digest of its e-mail as stored (whether or not it exists):
    /// a fixed 16 bytes however long the text a client sent.
    Account([u8; 16]),
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

    /// The account an e-mail names. Only a parsed address (at most 254 bytes, in the
    /// form accounts are stored) makes a key.
    pub fn account(email: &Email) -> Self {
        let digest = Sha256::digest(email.as_str().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        LimitKey::Account(key)
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
        let email = |text: &str| Email::parse(text).expect("email");
        assert_eq!(
            LimitKey::account(&email(" Bob@Example.ORG ")),
            LimitKey::account(&email("bob@example.org"))
        );
        assert_ne!(
            LimitKey::account(&email("bob@example.org")),
            LimitKey::account(&email("rob@example.org"))
        );
    }
}
