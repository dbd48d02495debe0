//! Password hashing: argon2id parameters (the OWASP minimum or stronger) and how
//! many hashes run at once.
use std::time::Duration;

use super::Reader;
use super::variables as v;

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

impl Reader<'_> {
    pub(super) fn passwords(&mut self) -> Option<PasswordSettings> {
        let memory_kib = self.number(v::PASSWORD_HASH_MEMORY_KIB, MIN_MEMORY_KIB, 4 * 1024 * 1024);
        let iterations = self.number(v::PASSWORD_HASH_ITERATIONS, MIN_ITERATIONS, 64);
        let parallelism = self.number(v::PASSWORD_HASH_PARALLELISM, MIN_PARALLELISM, 64);
        let concurrency = match self.raw.get(v::PASSWORD_HASH_CONCURRENCY) {
            None => Some(std::thread::available_parallelism().map_or(1, |n| n.get())),
            Some(_) => self.number::<usize>(v::PASSWORD_HASH_CONCURRENCY, 1, 256),
        };
        let queue_timeout_ms = self.number::<u64>(v::PASSWORD_HASH_QUEUE_TIMEOUT_MS, 10, 60_000);
        if let (Some(m), Some(t), Some(p)) = (memory_kib, iterations, parallelism) {
            self.findings.pass(
                v::PASSWORD_HASH_MEMORY_KIB,
                format!("argon2id m={m} KiB, t={t}, p={p} (OWASP minimum or stronger)"),
            );
        }
        Some(PasswordSettings {
            memory_kib: memory_kib?,
            iterations: iterations?,
            parallelism: parallelism?,
            concurrency: concurrency?,
            queue_timeout: Duration::from_millis(queue_timeout_ms?),
        })
    }
}
