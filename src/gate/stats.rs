//! The gate's counts for the admin page: per `GATE_HOSTS` entry, requests allowed,
//! denied and redirected to sign-in over the last 24 hours, in hourly buckets.
//! Counted per entry (not per host name) so a flood of invented subdomains under a
//! wildcard cannot grow memory; lock-free, since every gate decision counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const HOURS: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Redirected,
}

#[derive(Default)]
struct Bucket {
    /// The hour (Unix seconds / 3600) these counts are for.
    hour: AtomicI64,
    counts: [AtomicU64; 3],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub allowed: u64,
    pub denied: u64,
    pub redirected: u64,
}

#[derive(Clone)]
pub struct GateStats {
    /// Per host entry, 24 hourly buckets.
    hosts: Arc<[[Bucket; HOURS]]>,
}

impl GateStats {
    pub fn new(entries: usize) -> Self {
        Self {
            hosts: (0..entries).map(|_| Default::default()).collect(),
        }
    }

    pub fn count(&self, entry: usize, outcome: Outcome, now: i64) {
        let Some(buckets) = self.hosts.get(entry) else {
            return;
        };
        let hour = now.div_euclid(3600);
        let bucket = &buckets[usize::try_from(hour.rem_euclid(HOURS as i64)).unwrap_or(0)];
        let seen = bucket.hour.load(Ordering::Relaxed);
        if seen != hour
            && bucket
                .hour
                .compare_exchange(seen, hour, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // A new hour: this bucket's old counts are a day old. (A count racing
            // the reset may be lost; these are statistics, not decisions.)
            bucket
                .counts
                .iter()
                .for_each(|c| c.store(0, Ordering::Relaxed));
        }
        let index = match outcome {
            Outcome::Allowed => 0,
            Outcome::Denied => 1,
            Outcome::Redirected => 2,
        };
        bucket.counts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The last 24 hours' counts of one entry.
    pub fn last_day(&self, entry: usize, now: i64) -> Counts {
        let hour = now.div_euclid(3600);
        let mut counts = Counts::default();
        for bucket in self.hosts.get(entry).into_iter().flatten() {
            let at = bucket.hour.load(Ordering::Relaxed);
            if at > hour - HOURS as i64 && at <= hour {
                counts.allowed += bucket.counts[0].load(Ordering::Relaxed);
                counts.denied += bucket.counts[1].load(Ordering::Relaxed);
                counts.redirected += bucket.counts[2].load(Ordering::Relaxed);
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_last_a_day_per_entry() {
        let stats = GateStats::new(2);
        let t = 1_000 * 3600;
        stats.count(0, Outcome::Allowed, t);
        stats.count(0, Outcome::Allowed, t + 10);
        stats.count(0, Outcome::Denied, t + 3600);
        stats.count(1, Outcome::Redirected, t);
        stats.count(7, Outcome::Redirected, t);
        assert_eq!(
            stats.last_day(0, t + 3600),
            Counts {
                allowed: 2,
                denied: 1,
                redirected: 0
            }
        );
        assert_eq!(stats.last_day(1, t).redirected, 1);
        // A day later the first hour's counts are gone, the second's are not yet.
        assert_eq!(
            stats.last_day(0, t + 24 * 3600),
            Counts {
                allowed: 0,
                denied: 1,
                redirected: 0
            }
        );
        // Reusing a bucket starts it afresh.
        stats.count(0, Outcome::Allowed, t + 24 * 3600);
        assert_eq!(stats.last_day(0, t + 24 * 3600).allowed, 1);
    }
}
