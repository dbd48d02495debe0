//! Password hashing: argon2id at OWASP parameters or stronger, always off the async
//! executor and behind a semaphore, so a burst of logins queues (briefly) instead of
//! starving every other request. A request that would wait longer than the bound gets
//! 503 with Retry-After instead of piling up.
//!
//! Unknown accounts are verified against a dummy hash: the same work and the same
//! answer as a wrong password. Hashes with weaker parameters, or legacy bcrypt hashes
//! from an imported system, are reported for rehashing at the next successful login.
//!
//! Memory: each hash needs `m` KiB of work memory (19 MiB by default). Allocating it
//! per hash on whichever blocking thread runs it fragments the allocator's per-thread
//! arenas — a login spray grew the process by gigabytes. So the work memory lives in
//! a pool with one buffer per hashing slot, reused for every hash.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::PasswordSettings;
use crate::telemetry::metrics::PasswordHashMetrics;

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

/// Work memory for argon2, one buffer per hashing slot, reused across hashes.
#[derive(Default)]
struct WorkMemory(Mutex<Vec<Vec<Block>>>);

impl WorkMemory {
    fn take(&self) -> Vec<Block> {
        self.0.lock().pop().unwrap_or_default()
    }

    fn give_back(&self, buffer: Vec<Block>) {
        self.0.lock().push(buffer);
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    memory: Arc<WorkMemory>,
    /// A real hash of a random password, verified when the account does not exist.
    dummy_hash: Arc<str>,
    /// How long each hash waited for its slot.
    metrics: PasswordHashMetrics,
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
        let memory = Arc::new(WorkMemory::default());
        let mut buffer = memory.take();
        let dummy_hash = hash_with(&params, &hex::encode(random), &mut buffer)?;
        memory.give_back(buffer);
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            queue_timeout: settings.queue_timeout,
            memory,
            dummy_hash: Arc::from(dummy_hash),
            metrics: PasswordHashMetrics::default(),
        })
    }

    /// Records each hash's wait for a slot into `metrics`.
    pub fn with_metrics(mut self, metrics: PasswordHashMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Hashes a new password (PHC string, argon2id with the configured parameters).
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.run(move |buffer| hash_with(&params, password.expose_secret(), buffer))
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
            .run(move |buffer| {
                Ok(verify_with(
                    &params,
                    password.expose_secret(),
                    &stored,
                    buffer,
                ))
            })
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

    /// Runs `work` on the blocking pool once a hashing slot is free (or answers
    /// busy past the queue bound), lending it a slot's work memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let busy = PasswordError::Busy {
            retry_after_seconds: self.queue_timeout.as_secs().max(1),
        };
        let queued = std::time::Instant::now();
        let permit =
            match tokio::time::timeout(self.queue_timeout, Arc::clone(&self.slots).acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => {
                    self.metrics.gave_up(queued.elapsed());
                    return Err(busy);
                }
            };
        self.metrics.waited(queued.elapsed());
        let memory = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buffer = memory.take();
            let result = work(&mut buffer);
            memory.give_back(buffer);
            result
        })
        .await
        .map_err(|_| PasswordError::Internal("hashing task failed".to_owned()))?
    }
}

/// A stored hash may ask for more memory than configured (a later-lowered setting,
/// an import), but not without bound.
const MAX_VERIFY_MEMORY_KIB: u32 = 1024 * 1024;

/// Runs argon2 into `out` using `buffer` as its work memory (grown if needed).
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    buffer: &mut Vec<Block>,
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt,
        out,
        &mut buffer[..blocks],
    )
}

fn hash_with(
    params: &Params,
    password: &str,
    buffer: &mut Vec<Block>,
) -> Result<String, PasswordError> {
    let salt = crate::crypto::keys::random_bytes::<16>()
        .map_err(|e| PasswordError::Internal(e.to_string()))?;
    let mut out = [0u8; 32];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params,
        password.as_bytes(),
        &salt,
        &mut out,
        buffer,
    )
    .map_err(|e| PasswordError::Internal(e.to_string()))?;
    // The PHC string format: B64 is standard base64 without padding.
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn verify_with(
    params: &Params,
    password: &str,
    stored: &str,
    buffer: &mut Vec<Block>,
) -> Verification {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { needs_rehash: true },
            _ => Verification::Invalid,
        };
    }
    if verify_argon2(password, stored, buffer) {
        Verification::Valid {
            needs_rehash: needs_rehash(params, stored),
        }
    } else {
        Verification::Invalid
    }
}

/// Recomputes the hash with the parameters recorded in it, and compares in
/// constant time.
fn verify_argon2(password: &str, stored: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    if params.m_cost() > MAX_VERIFY_MEMORY_KIB {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    argon2_into(
        algorithm,
        version,
        &params,
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
        buffer,
    )
    .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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
    use crate::config::{MIN_ITERATIONS, MIN_MEMORY_KIB, MIN_PARALLELISM};

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
            &mut Vec::new(),
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

    #[test]
    fn our_phc_strings_are_standard_and_verify_with_the_reference_implementation() {
        use argon2::PasswordVerifier;
        let params =
            Params::new(MIN_MEMORY_KIB, MIN_ITERATIONS, MIN_PARALLELISM, None).expect("params");
        let mut buffer = Vec::new();
        let ours = hash_with(&params, "orbit lantern velvet", &mut buffer).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a valid PHC string");
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        assert!(
            reference
                .verify_password(b"orbit lantern velvet", &parsed)
                .is_ok()
        );
        // And the other way round: the reference implementation's hash verifies here.
        use argon2::PasswordHasher as _;
        let theirs = reference
            .hash_password(b"orbit lantern velvet")
            .expect("hash")
            .to_string();
        assert!(verify_argon2("orbit lantern velvet", &theirs, &mut buffer));
        assert!(!verify_argon2("orbit lantern velvex", &theirs, &mut buffer));
        // Absurd parameters in a stored hash are refused, not allocated.
        let greedy = theirs.replace("m=19456", "m=4194304");
        assert!(!verify_argon2("orbit lantern velvet", &greedy, &mut buffer));
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
