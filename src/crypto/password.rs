//! Password hashing: argon2id at OWASP parameters or stronger, always off the async
//! executor and behind a semaphore, so a burst of logins queues (briefly) instead of
//! starving every other request. A request that would wait longer than the bound gets
//! 503 with Retry-After instead of piling up.
//!
//! Unknown accounts are verified against a dummy hash: the same work and the same
//! answer as a wrong password. Hashes with weaker parameters, or legacy bcrypt hashes
//! from an imported system, are reported for rehashing at the next successful login.

use std::sync::Arc;
use std::time::Duration;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane. Configuration may raise
/// these, never lower them.
pub const MIN_MEMORY_KIB: u32 = 19_456;
pub const MIN_ITERATIONS: u32 = 2;
pub const MIN_PARALLELISM: u32 = 1;

#[derive(Debug, Clone)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once.
    pub concurrency: usize,
    /// How long a request may wait for a free hashing slot.
    pub queue_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed busy past the queue bound.
    #[error("password hashing is saturated")]
    Busy { retry_after_seconds: u64 },
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    Valid { needs_rehash: bool },
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// A real hash of a random password, verified when the account does not exist.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(settings: &PasswordSettings) -> Result<Self, PasswordError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let random = crate::crypto::keys::random_bytes::<24>()
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let dummy_hash = hash_with(&params, &hex::encode(random))?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            queue_timeout: settings.queue_timeout,
            dummy_hash: Arc::from(dummy_hash),
        })
    }

    /// Hashes a new password (PHC string, argon2id with the configured parameters).
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, password.expose_secret()))
            .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is
    /// no account, so both cases cost the same.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verification, PasswordError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let verification = self
            .run(move || Ok(verify_with(&params, password.expose_secret(), &stored)))
            .await?;
        Ok(if known {
            verification
        } else {
            Verification::Invalid
        })
    }

    /// Whether a stored hash is weaker than the configured parameters.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        needs_rehash(&self.params, stored)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let busy = PasswordError::Busy {
            retry_after_seconds: self.queue_timeout.as_secs().max(1),
        };
        let permit =
            match tokio::time::timeout(self.queue_timeout, Arc::clone(&self.slots).acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => return Err(busy),
            };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| PasswordError::Internal("hashing task failed".to_owned()))?
    }
}

fn hasher(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, PasswordError> {
    hasher(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Internal(e.to_string()))
}

fn verify_with(params: &Params, password: &str, stored: &str) -> Verification {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { needs_rehash: true },
            _ => Verification::Invalid,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    // Verification uses the parameters recorded in the hash itself.
    match hasher(params).verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Verification::Valid {
            needs_rehash: needs_rehash(params, stored),
        },
        Err(_) => Verification::Invalid,
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

fn needs_rehash(params: &Params, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(found) => {
            found.m_cost() < params.m_cost()
                || found.t_cost() < params.t_cost()
                || found.p_cost() < params.p_cost()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PasswordSettings {
        PasswordSettings {
            memory_kib: MIN_MEMORY_KIB,
            iterations: MIN_ITERATIONS,
            parallelism: MIN_PARALLELISM,
            concurrency: 2,
            queue_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn hashes_carry_the_configured_parameters_and_verify() {
        let hasher = PasswordHasher::new(&settings()).expect("hasher");
        let hash = hasher
            .hash(SecretString::from("orbit lantern velvet"))
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            hasher
                .verify(
                    SecretString::from("orbit lantern velvet"),
                    Some(hash.clone())
                )
                .await
                .expect("verify"),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher
                .verify(SecretString::from("wrong"), Some(hash))
                .await
                .expect("verify"),
            Verification::Invalid
        );
        // No account: the dummy hash is checked, and the answer is always invalid.
        assert_eq!(
            hasher
                .verify(SecretString::from("anything"), None)
                .await
                .expect("verify"),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn weaker_and_legacy_hashes_need_rehash() {
        let hasher = PasswordHasher::new(&settings()).expect("hasher");
        let weak = hash_with(
            &Params::new(8192, 1, 1, None).expect("params"),
            "pw-12345678",
        )
        .expect("hash");
        assert!(hasher.needs_rehash(&weak));
        assert_eq!(
            hasher
                .verify(SecretString::from("pw-12345678"), Some(weak))
                .await
                .expect("verify"),
            Verification::Valid { needs_rehash: true }
        );
        let legacy = bcrypt::hash("legacy-pass-1", 4).expect("bcrypt");
        assert_eq!(
            hasher
                .verify(SecretString::from("legacy-pass-1"), Some(legacy))
                .await
                .expect("verify"),
            Verification::Valid { needs_rehash: true }
        );
        assert!(hasher.needs_rehash("not a hash"));
    }

    #[tokio::test]
    async fn a_saturated_queue_answers_busy() {
        let mut s = settings();
        s.concurrency = 1;
        s.queue_timeout = Duration::from_millis(1);
        let hasher = PasswordHasher::new(&s).expect("hasher");
        let held = Arc::clone(&hasher.slots)
            .acquire_owned()
            .await
            .expect("permit");
        let result = hasher.hash(SecretString::from("x")).await;
        assert!(matches!(
            result,
            Err(PasswordError::Busy {
                retry_after_seconds: 1
            })
        ));
        drop(held);
        assert!(hasher.hash(SecretString::from("x")).await.is_ok());
    }
}
