//! Fresh random keys from the operating system's generator.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;

use crate::config::weak_secret_reason;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessUnavailable;

/// `n` bytes from the OS generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomnessUnavailable> {
    let mut bytes = [0u8; N];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| RandomnessUnavailable)?;
    Ok(bytes)
}

/// A JWT signing secret: 384 random bits as url-safe base64 (64 characters). Drawn
/// again in the astronomically unlikely case that it trips a placeholder rule, so
/// keygen output always passes validation.
pub fn signing_secret() -> Result<SecretString, RandomnessUnavailable> {
    loop {
        let text = URL_SAFE_NO_PAD.encode(random_bytes::<48>()?);
        if weak_secret_reason(&text).is_none() {
            return Ok(SecretString::from(text));
        }
    }
}

/// A generated account password: 144 random bits as 24 url-safe characters, far
/// above the password policy's strength bar.
pub fn random_password() -> Result<SecretString, RandomnessUnavailable> {
    Ok(SecretString::from(
        URL_SAFE_NO_PAD.encode(random_bytes::<18>()?),
    ))
}

/// A Fernet key: 32 random bytes, url-safe base64 with padding, as the spec defines.
pub fn fernet_key() -> Result<SecretString, RandomnessUnavailable> {
    let bytes = random_bytes::<32>()?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE.encode(bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_keys_are_valid_and_distinct() {
        let a = signing_secret().expect("rng");
        let b = signing_secret().expect("rng");
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        let f = fernet_key().expect("rng");
        assert!(fernet::Fernet::new(f.expose_secret()).is_some());
    }
}
