//! Refresh tokens: 256 random bits, handed out once, stored only as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::crypto::keys::{RandomnessUnavailable, random_bytes};

/// A prefix makes leaked tokens easy for secret scanners to spot.
pub const PREFIX: &str = "prt_";

pub fn new_token() -> Result<SecretString, RandomnessUnavailable> {
    Ok(SecretString::from(format!(
        "{PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    )))
}

/// The stored form of a refresh token.
pub fn hash(token: &SecretString) -> String {
    hex::encode(Sha256::digest(token.expose_secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = new_token().expect("rng");
        let b = new_token().expect("rng");
        assert!(a.expose_secret().starts_with(PREFIX));
        assert_eq!(a.expose_secret().len(), PREFIX.len() + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(a.expose_secret()));
    }
}
