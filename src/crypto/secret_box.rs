//! The secret box: how every secret Portcullis must read back (TOTP secrets, webhook
//! credentials) is stored. Fernet over a key list, MultiFernet-style: the first key
//! seals, every key opens, so keys rotate without downtime.
//!
//! A sealed value carries the marker [`SEALED_PREFIX`]. A value without it is legacy
//! plaintext imported from an older system: it is still read, reported, and sealed by
//! `portcullis migrate-secrets`. A value with the marker that no key opens is an
//! error, never read as plaintext, and sealing never falls back to plaintext.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use fernet::Fernet;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::config::KeyPurpose;

/// Marks a stored value as sealed (Fernet, format version 1).
pub const SEALED_PREFIX: &str = "fernet:v1:";

/// The "current time" given to Fernet when opening. A sealed secret has no expiry,
/// and Fernet's check that a token is not from the future would turn a clock
/// stepped back (a restored VM, a database moved from a host whose clock ran fast)
/// into unreadable secrets and a false "wrong key" at startup. Far enough ahead that
/// no token is "from the future", far enough from `u64::MAX` not to overflow.
const OPEN_AT: u64 = u64::MAX / 2;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("{variable} holds no usable Fernet key")]
    NoKeys { variable: &'static str },
    #[error("key {position} in {variable} is not a Fernet key")]
    InvalidKey {
        variable: &'static str,
        position: usize,
    },
    #[error("the secret could not be encrypted")]
    SealFailed,
    #[error("a stored secret could not be decrypted with any key in {variable}")]
    Undecryptable { variable: &'static str },
}

/// How an opened value was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Sealed with the first (current) key.
    Current,
    /// Sealed with a later key in the list: `rotate-keys` re-seals it.
    OlderKey,
    /// Plaintext from an older system: `migrate-secrets` seals it.
    Legacy,
}

/// An opened value and how it was stored.
pub struct Opened {
    pub plaintext: SecretSlice<u8>,
    pub sealing: Sealing,
}

#[derive(Clone)]
pub struct SecretBox {
    purpose: KeyPurpose,
    /// Never empty; the first seals.
    keys: Arc<[Fernet]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("purpose", &self.purpose)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl SecretBox {
    pub fn new(purpose: KeyPurpose, keys: &[SecretString]) -> Result<Self, SecretBoxError> {
        let variable = purpose.variable();
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                Fernet::new(key.expose_secret()).ok_or(SecretBoxError::InvalidKey {
                    variable,
                    position: i + 1,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretBoxError::NoKeys { variable });
        }
        Ok(Self {
            purpose,
            keys: keys.into(),
        })
    }

    /// Seals `plaintext` with the first key. An encryption failure (the fernet crate
    /// panics when the OS random source fails) is an error, never plaintext.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, SecretBoxError> {
        let key = &self.keys[0];
        let token = catch_unwind(AssertUnwindSafe(|| key.encrypt(plaintext)))
            .map_err(|_| SecretBoxError::SealFailed)?;
        Ok(format!("{SEALED_PREFIX}{token}"))
    }

    /// Opens a stored value: a sealed one with whichever key opens it, an unmarked
    /// one as legacy plaintext.
    pub fn open(&self, stored: &str) -> Result<Opened, SecretBoxError> {
        let Some(token) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(Opened {
                plaintext: SecretSlice::from(stored.as_bytes().to_vec()),
                sealing: Sealing::Legacy,
            });
        };
        self.keys
            .iter()
            .enumerate()
            .find_map(|(i, key)| {
                key.decrypt_at_time(token, None, OPEN_AT)
                    .ok()
                    .map(|plaintext| Opened {
                        plaintext: SecretSlice::from(plaintext),
                        sealing: if i == 0 {
                            Sealing::Current
                        } else {
                            Sealing::OlderKey
                        },
                    })
            })
            .ok_or(SecretBoxError::Undecryptable {
                variable: self.purpose.variable(),
            })
    }

    /// The value re-sealed with the first key, and how it was stored before; `None`
    /// when nothing needs doing. `include_older_keys` is false for `migrate-secrets`
    /// (legacy plaintext only) and true for `rotate-keys` (everything).
    pub fn reseal(
        &self,
        stored: &str,
        include_older_keys: bool,
    ) -> Result<Option<(String, Sealing)>, SecretBoxError> {
        let opened = self.open(stored)?;
        match opened.sealing {
            Sealing::Current => Ok(None),
            Sealing::OlderKey if !include_older_keys => Ok(None),
            was @ (Sealing::OlderKey | Sealing::Legacy) => {
                let sealed = self.seal(opened.plaintext.expose_secret())?;
                Ok(Some((sealed, was)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    fn key() -> SecretString {
        SecretString::from(Fernet::generate_key())
    }

    fn sealing_box(keys: &[SecretString]) -> SecretBox {
        SecretBox::new(KeyPurpose::Mfa, keys).expect("valid keys")
    }

    #[test]
    fn a_sealed_value_opens_and_carries_the_marker() {
        let b = sealing_box(&[key()]);
        let sealed = b.seal(b"JBSWY3DPEHPK3PXP").expect("seal");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        let opened = b.open(&sealed).expect("open");
        assert_eq!(opened.plaintext.expose_secret(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(opened.sealing, Sealing::Current);
        // Two seals of one value differ (random IV).
        assert_ne!(sealed, b.seal(b"JBSWY3DPEHPK3PXP").expect("seal"));
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let (old, new) = (key(), key());
        let before = sealing_box(std::slice::from_ref(&old));
        let sealed_with_old = before.seal(b"s").expect("seal");
        let during = sealing_box(&[new.clone(), old.clone()]);
        assert_eq!(
            during.open(&sealed_with_old).expect("open").sealing,
            Sealing::OlderKey
        );
        let (resealed, was) = during
            .reseal(&sealed_with_old, true)
            .expect("reseal")
            .expect("changed");
        assert_eq!(was, Sealing::OlderKey);
        assert!(
            during
                .reseal(&sealed_with_old, false)
                .expect("reseal")
                .is_none()
        );
        assert!(during.reseal(&resealed, true).expect("reseal").is_none());
        let after = sealing_box(&[new]);
        assert_eq!(
            after
                .open(&resealed)
                .expect("open")
                .plaintext
                .expose_secret(),
            b"s"
        );
        assert!(matches!(
            after.open(&sealed_with_old),
            Err(SecretBoxError::Undecryptable {
                variable: "MFA_ENCRYPTION_KEY"
            })
        ));
    }

    #[test]
    fn a_token_from_the_future_still_opens() {
        let key = Fernet::generate_key();
        let b = sealing_box(&[SecretString::from(key.clone())]);
        let fernet = Fernet::new(&key).expect("key");
        // Sealed by a host whose clock ran a day fast.
        let ahead = fernet.encrypt_at_time(b"s", 4_000_000_000);
        let opened = b.open(&format!("{SEALED_PREFIX}{ahead}")).expect("opens");
        assert_eq!(opened.plaintext.expose_secret(), b"s");
    }

    #[test]
    fn legacy_plaintext_is_read_and_only_migrated_when_asked() {
        let b = sealing_box(&[key()]);
        let opened = b.open("JBSWY3DPEHPK3PXP").expect("open");
        assert_eq!(opened.sealing, Sealing::Legacy);
        assert_eq!(opened.plaintext.expose_secret(), b"JBSWY3DPEHPK3PXP");
        let (sealed, was) = b
            .reseal("JBSWY3DPEHPK3PXP", false)
            .expect("reseal")
            .expect("sealed");
        assert_eq!(was, Sealing::Legacy);
        assert!(sealed.starts_with(SEALED_PREFIX));
    }

    #[test]
    fn a_marked_value_that_no_key_opens_is_never_plaintext() {
        let b = sealing_box(&[key()]);
        for stored in [
            "fernet:v1:",
            "fernet:v1:not-a-token",
            "fernet:v1:JBSWY3DPEHPK3PXP",
        ] {
            assert!(b.open(stored).is_err(), "{stored}");
        }
    }

    #[test]
    fn bad_key_lists_are_refused_naming_the_variable() {
        assert!(matches!(
            SecretBox::new(KeyPurpose::Credential, &[]),
            Err(SecretBoxError::NoKeys {
                variable: "CREDENTIAL_ENCRYPTION_KEY"
            })
        ));
        assert!(matches!(
            SecretBox::new(KeyPurpose::Mfa, &[key(), SecretString::from("short")]),
            Err(SecretBoxError::InvalidKey { position: 2, .. })
        ));
    }

    // --- The Fernet specification's vectors, read from ../shared/vectors/fernet. ---

    #[derive(Deserialize)]
    struct Vector {
        token: String,
        now: String,
        ttl_sec: Option<u64>,
        secret: String,
        src: Option<String>,
        desc: Option<String>,
    }

    fn vectors(name: &str) -> Vec<Vector> {
        let path = crate::test_vectors::path(&format!("fernet/{name}"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vector file parses")
    }

    fn unix(now: &str) -> u64 {
        let at = OffsetDateTime::parse(now, &Rfc3339).expect("vector time");
        u64::try_from(at.unix_timestamp()).expect("after 1970")
    }

    /// The box around one vector's key, plus the raw key for the TTL-aware call.
    fn for_vector(v: &Vector) -> (SecretBox, Fernet) {
        let secret = SecretString::from(v.secret.clone());
        (
            sealing_box(std::slice::from_ref(&secret)),
            Fernet::new(&v.secret).expect("vector key"),
        )
    }

    #[test]
    fn the_spec_verify_vector_opens() {
        let all = vectors("verify.json");
        assert!(!all.is_empty());
        for v in all {
            let (b, fernet) = for_vector(&v);
            let src = v.src.as_deref().expect("verify vectors carry src");
            let opened = b
                .open(&format!("{SEALED_PREFIX}{}", v.token))
                .expect("opens");
            assert_eq!(opened.plaintext.expose_secret(), src.as_bytes());
            let at_time = fernet
                .decrypt_at_time(&v.token, v.ttl_sec, unix(&v.now))
                .expect("valid at its time");
            assert_eq!(at_time, src.as_bytes());
        }
    }

    #[test]
    fn every_spec_invalid_vector_is_rejected() {
        let all = vectors("invalid.json");
        assert!(all.len() >= 8, "the spec has eight invalid cases");
        for v in all {
            let desc = v.desc.as_deref().unwrap_or("?");
            let (b, fernet) = for_vector(&v);
            // At the vector's own time and TTL, every case fails.
            assert!(
                fernet
                    .decrypt_at_time(&v.token, v.ttl_sec, unix(&v.now))
                    .is_err(),
                "accepted at its time: {desc}"
            );
            // The two time-based cases carry a valid MAC: only time rejects them.
            // Every other case must fail in the box too, where time plays no part.
            let time_based = desc.contains("TTL") || desc.contains("clock skew");
            if !time_based {
                assert!(
                    b.open(&format!("{SEALED_PREFIX}{}", v.token)).is_err(),
                    "the box opened: {desc}"
                );
            }
        }
    }

    #[test]
    fn the_spec_generate_vectors_round_trip() {
        for v in vectors("generate.json") {
            let (b, _) = for_vector(&v);
            let src = v.src.as_deref().expect("generate vectors carry src");
            let opened = b
                .open(&format!("{SEALED_PREFIX}{}", v.token))
                .expect("the spec's token opens");
            assert_eq!(opened.plaintext.expose_secret(), src.as_bytes());
            let mine = b.seal(src.as_bytes()).expect("seal");
            assert_eq!(
                b.open(&mine).expect("open").plaintext.expose_secret(),
                src.as_bytes()
            );
        }
    }
}
