//! A key table with a hard size: governor's GCRA state per key, but never more than
//! `max_keys` of them. Once full, every new key shares one overflow bucket — so a
//! spray of millions of addresses costs a fixed amount of memory and is throttled as
//! one client, never waved through. A check may also only look ([`Probe::peek`]): it
//! gets the verdict a check would get, from the same bucket, and changes nothing.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use parking_lot::Mutex;

/// A handle: clones share one table, so the owner can read the overflow count
/// while the limiter holds its own clone.
pub struct BoundedStore<K>(Arc<Shared<K>>);

struct Shared<K> {
    table: Mutex<Table<K>>,
    max_keys: usize,
    overflow_hits: AtomicU64,
    /// Set when a newcomer found the table full; cleared when a sweep makes room.
    full: AtomicBool,
}

impl<K> Clone for BoundedStore<K> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

struct Table<K> {
    buckets: HashMap<K, Nanos>,
    overflow: Option<Nanos>,
}

impl<K> BoundedStore<K> {
    pub fn new(max_keys: usize) -> Self {
        Self(Arc::new(Shared {
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: None,
            }),
            max_keys,
            overflow_hits: AtomicU64::new(0),
            full: AtomicBool::new(false),
        }))
    }

    /// Whether newcomers are being sent to the overflow bucket.
    pub fn is_full(&self) -> bool {
        self.0.full.load(Ordering::Relaxed)
    }

    /// Checks answered by the overflow bucket so far.
    pub fn overflow_hits(&self) -> u64 {
        self.0.overflow_hits.load(Ordering::Relaxed)
    }
}

/// A key as the limiter is asked about it: what is counted, and whether this check
/// spends a call (a check) or only looks (a peek). Equal and hashed by the key alone.
#[derive(Debug, Clone)]
pub struct Probe<K> {
    pub key: K,
    pub spend: bool,
}

impl<K> Probe<K> {
    pub fn check(key: K) -> Self {
        Self { key, spend: true }
    }

    pub fn peek(key: K) -> Self {
        Self { key, spend: false }
    }
}

impl<K: PartialEq> PartialEq for Probe<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Eq> Eq for Probe<K> {}

impl<K: Hash> Hash for Probe<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = Probe<K>;

    /// Answers from the key's bucket, a fresh one while there is room, or the overflow
    /// bucket; a peek reads the same bucket but writes nothing and adds no key.
    fn measure_and_replace<T, F, E>(&self, probe: &Probe<K>, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let shared = &self.0;
        let mut table = shared.table.lock();
        if let Some(state) = table.buckets.get_mut(&probe.key) {
            let (outcome, next) = f(Some(*state))?;
            if probe.spend {
                *state = next;
            }
            return Ok(outcome);
        }
        if table.buckets.len() < shared.max_keys {
            let (outcome, next) = f(None)?;
            if probe.spend {
                table.buckets.insert(probe.key.clone(), next);
            }
            return Ok(outcome);
        }
        shared.overflow_hits.fetch_add(1, Ordering::Relaxed);
        shared.full.store(true, Ordering::Relaxed);
        let (outcome, next) = f(table.overflow)?;
        if probe.spend {
            table.overflow = Some(next);
        }
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<Probe<K>> for BoundedStore<K> {
    /// Drops buckets that have refilled completely: a missing key means a full
    /// bucket, so nothing is forgotten that matters.
    fn retain_recent(&self, drop_below: Nanos) {
        let mut table = self.0.table.lock();
        table.buckets.retain(|_, state| *state > drop_below);
        if table.overflow.is_some_and(|state| state <= drop_below) {
            table.overflow = None;
        }
        if table.buckets.len() < self.0.max_keys {
            self.0.full.store(false, Ordering::Relaxed);
        }
    }

    fn shrink_to_fit(&self) {
        self.0.table.lock().buckets.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.table.lock().buckets.len()
    }

    fn is_empty(&self) -> bool {
        self.0.table.lock().buckets.is_empty()
    }
}
