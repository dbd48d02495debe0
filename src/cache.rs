//! The in-memory caches the hot path reads (verified tokens, revocations, accounts,
//! documents, browser sessions, assertions): moka's, hashed with foldhash instead
//! of SipHash. A token's cache key is its whole text, hundreds of bytes hashed on
//! every request; SipHash spent more time on that than the lookup itself. The
//! hasher is seeded at random per cache, and only keys the server vouched for
//! (verified tokens, ids it made) are ever inserted.

/// A bounded concurrent cache with the fast hasher.
pub type Cache<K, V> = moka::sync::Cache<K, V, foldhash::fast::RandomState>;

/// The hasher every [`Cache`] is built with:
/// `moka::sync::Cache::builder()….build_with_hasher(hasher())`.
pub fn hasher() -> foldhash::fast::RandomState {
    foldhash::fast::RandomState::default()
}
