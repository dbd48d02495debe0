//! The time, injected: services ask the clock instead of the system, so tests can
//! move time forward (expiry, lockout windows) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use time::OffsetDateTime;

#[derive(Clone)]
pub struct Clock(Arc<Source>);

enum Source {
    System,
    Manual(AtomicI64),
}

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(Source::System))
    }

    /// A clock that stands still at `unix_seconds` until moved.
    pub fn manual(unix_seconds: i64) -> Self {
        Self(Arc::new(Source::Manual(AtomicI64::new(unix_seconds))))
    }

    /// Unix time in seconds.
    pub fn now(&self) -> i64 {
        match &*self.0 {
            Source::System => OffsetDateTime::now_utc().unix_timestamp(),
            Source::Manual(at) => at.load(Ordering::SeqCst),
        }
    }

    /// A monotonic reading in nanoseconds, for rate limiters: the time since process
    /// start for the system clock; the manual clock's seconds, in nanoseconds.
    pub fn monotonic_nanos(&self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        match &*self.0 {
            Source::System => {
                let start = *START.get_or_init(Instant::now);
                u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            Source::Manual(at) => u64::try_from(at.load(Ordering::SeqCst))
                .unwrap_or(0)
                .saturating_mul(1_000_000_000),
        }
    }

    /// Moves a manual clock forward; a system clock cannot be moved.
    pub fn advance(&self, seconds: i64) -> bool {
        match &*self.0 {
            Source::System => false,
            Source::Manual(at) => {
                at.fetch_add(seconds, Ordering::SeqCst);
                true
            }
        }
    }
}

/// RFC 3339 for API responses; the epoch if the value is out of range.
pub fn rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        assert!(clock.advance(60));
        assert_eq!(clock.now(), 1_060);
        assert!(!Clock::system().advance(60));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
