//! Which access tokens are dead before their `exp`: revoked tokens (logout), ended
//! sessions, and per-user cut-offs (logout-all, password change, lock) — and, for an
//! access token, whether its session is live at all (the allow-list,
//! [`super::live_sessions`]): a token is good only while its session is.
//!
//! Revocations live in SQLite and in a moka cache whose entries expire when the
//! revocation stops mattering (the token's `exp`, or the last moment a token of the
//! session or cut-off could still be alive). Unexpired revocations and recent cut-offs
//! are loaded at startup.
//!
//! **The fallback, defined:** while the cache is *complete* — warm-up succeeded and no
//! entry was ever dropped for lack of room — it answers alone, hit or miss. Once it is
//! not (warm-up failed, capacity reached), a miss is checked against SQLite, and if
//! SQLite cannot answer the token is refused with 503. Never "probably fine".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cache::{Cache, hasher};
use moka::Expiry;
use moka::notification::RemovalCause;
use uuid::Uuid;

use super::live_sessions::LiveSessions;
use super::tokens::{Claims, LEEWAY_SECONDS};
use crate::clock::Clock;
use crate::db::revocations::{self, RevocationKind};
use crate::db::{Database, DbError, refresh_tokens, sessions, stats, users};
use crate::model::UserId;
use crate::telemetry::metrics::{RevocationScope, SessionMetrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Token(Uuid),
    Session(Uuid),
    Cutoff(UserId),
}

/// A cached fact and the Unix time after which it no longer matters.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// For a cut-off, the cut-off instant; unused for tokens and sessions.
    at: i64,
    until: i64,
}

struct ExpireWhenIrrelevant {
    clock: Clock,
}

impl Expiry<Key, Entry> for ExpireWhenIrrelevant {
    fn expire_after_create(&self, _: &Key, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(
            u64::try_from(entry.until - self.clock.now()).unwrap_or(0),
        ))
    }

    fn expire_after_update(
        &self,
        _: &Key,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            u64::try_from(entry.until - self.clock.now()).unwrap_or(0),
        ))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the revocation store cannot be read: {0}")]
pub struct RevocationUnavailable(#[from] DbError);

#[derive(Clone)]
pub struct RevocationStore {
    db: Database,
    cache: Cache<Key, Entry>,
    complete: Arc<AtomicBool>,
    /// Entries held, counted by us (moka's own count lags): never below the true
    /// number, so completeness is given up before moka could evict anything.
    held: Arc<AtomicU64>,
    capacity: u64,
    /// How long after its issue an access token can still be accepted.
    token_lifetime_seconds: i64,
    clock: Clock,
    /// The sessions an access token may name.
    live: LiveSessions,
    /// Revocations, counted as they are remembered after their commit.
    metrics: SessionMetrics,
}

/// How the in-memory stores are sized.
#[derive(Debug, Clone, Copy)]
pub struct StoreCapacity {
    pub revocations: u64,
    pub sessions: usize,
}

impl RevocationStore {
    /// Builds the store and loads every live revocation and recent cut-off. A failed
    /// load leaves the cache incomplete (every miss then asks the database).
    pub async fn open(
        db: Database,
        capacity: StoreCapacity,
        access_ttl_seconds: i64,
        clock: Clock,
    ) -> Self {
        let live = LiveSessions::new(capacity.sessions);
        let capacity = capacity.revocations;
        let complete = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicU64::new(0));
        let (flag, count) = (Arc::clone(&complete), Arc::clone(&held));
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(ExpireWhenIrrelevant {
                clock: clock.clone(),
            })
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    flag.store(false, Ordering::SeqCst);
                }
                if cause != RemovalCause::Replaced {
                    let _ = count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        Some(n.saturating_sub(1))
                    });
                }
            })
            .build_with_hasher(hasher());
        let store = Self {
            db,
            cache,
            complete,
            held,
            capacity,
            // A token is accepted until `exp + LEEWAY`: revocations must last as long.
            token_lifetime_seconds: access_ttl_seconds + LEEWAY_SECONDS,
            clock,
            live,
            metrics: SessionMetrics::default(),
        };
        match store.warm_up().await {
            Ok(loaded) => {
                let fits = store.held.load(Ordering::SeqCst) < store.near_capacity();
                store.complete.store(fits, Ordering::SeqCst);
                tracing::info!(loaded, complete = fits, "revocation cache warmed up");
            }
            Err(error) => {
                tracing::error!(%error, "revocation cache warm-up failed; checks will use the database");
            }
        }
        store
    }

    async fn warm_up(&self) -> Result<u64, DbError> {
        let now = self.clock.now();
        let since = now - self.token_lifetime_seconds;
        let (revoked, cutoffs, live) = self
            .db
            .read(move |conn| {
                Ok::<_, DbError>((
                    revocations::live(conn, now)?,
                    users::recent_cutoffs(conn, since)?,
                    sessions::all_live(conn, now)?,
                ))
            })
            .await?;
        tracing::info!(
            sessions = live.len(),
            "live sessions loaded into the allow-list"
        );
        self.live.load(live);
        let mut loaded = 0;
        for (kind, value, until) in revoked {
            if let Ok(id) = Uuid::parse_str(&value) {
                let key = match kind {
                    RevocationKind::Token => Key::Token(id),
                    RevocationKind::Session => Key::Session(id),
                };
                self.remember(key, Entry { at: 0, until });
                loaded += 1;
            }
        }
        for (user, cutoff) in cutoffs {
            self.hold_cutoff(user, cutoff);
            loaded += 1;
        }
        Ok(loaded)
    }

    /// Past 90% of capacity the cache no longer vouches for misses: completeness is
    /// given up before the first entry could be evicted.
    fn near_capacity(&self) -> u64 {
        (self.capacity / 10 * 9).max(1)
    }

    /// Whether the cache alone answers every check.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::SeqCst)
    }

    /// Answers from memory: `Some(true)` revoked, `Some(false)` certainly not (the
    /// cache is complete), `None` when only the database can tell.
    pub fn check_cached(&self, claims: &Claims) -> Option<bool> {
        if self.cache.contains_key(&Key::Token(claims.jti))
            || self.cache.contains_key(&Key::Session(claims.sid))
        {
            return Some(true);
        }
        if let Some(cutoff) = self.cache.get(&Key::Cutoff(claims.sub))
            && claims.iat < cutoff.at
        {
            return Some(true);
        }
        self.is_complete().then_some(false)
    }

    /// Whether the token is revoked; the database is asked only when the cache
    /// cannot vouch. A database error is an error, which callers turn into a denial.
    pub async fn is_revoked(&self, claims: &Claims) -> Result<bool, RevocationUnavailable> {
        if let Some(answer) = self.check_cached(claims) {
            return Ok(answer);
        }
        let now = self.clock.now();
        let (jti, sid, user) = (claims.jti.to_string(), claims.sid.to_string(), claims.sub);
        let (listed, cutoff) = self
            .db
            .read(move |conn| {
                Ok::<_, DbError>((
                    revocations::is_revoked(conn, &jti, &sid, now)?,
                    users::tokens_valid_after(conn, user)?,
                ))
            })
            .await?;
        Ok(match cutoff {
            // The account is gone: nothing it signed is valid.
            None => true,
            Some(cutoff) => listed || claims.iat < cutoff,
        })
    }

    /// For an access token: `Some(true)` when it must be refused (revoked, or its
    /// session not live or not its subject's), `Some(false)` when memory vouches for
    /// it, `None` when only the database can tell.
    pub fn check_access_cached(&self, claims: &Claims) -> Option<bool> {
        let live = self.live.check(claims.sid, claims.sub, self.clock.now());
        match (live, self.check_cached(claims)) {
            (Some(false), _) | (_, Some(true)) => Some(true),
            (Some(true), Some(false)) => Some(false),
            _ => None,
        }
    }

    /// Whether an access token must be refused: revoked, or its session is not live
    /// and its subject's. The database is asked only when memory cannot vouch; a
    /// database error is an error, which callers turn into a denial.
    pub async fn is_access_refused(&self, claims: &Claims) -> Result<bool, RevocationUnavailable> {
        if let Some(answer) = self.check_access_cached(claims) {
            return Ok(answer);
        }
        if self.live.check(claims.sid, claims.sub, self.clock.now()) != Some(true) {
            let (sid, now) = (claims.sid, self.clock.now());
            let session = self
                .db
                .read(move |conn| Ok::<_, DbError>(sessions::find(conn, sid)?))
                .await?;
            let live = session.is_some_and(|s| s.user_id == claims.sub && s.is_live(now));
            if !live {
                return Ok(true);
            }
        }
        self.is_revoked(claims).await
    }

    /// Whether a browser session riding on account session `sid` (signed in at
    /// `signed_in_at`) must be refused: the account session is not live or not
    /// `user`'s, it was revoked, or a cut-off (logout-all, lock, password change)
    /// came after the sign-in. Memory answers when it can vouch; otherwise the
    /// database, and a database that cannot answer is an error (a denial).
    pub async fn is_session_refused(
        &self,
        user: UserId,
        sid: Uuid,
        signed_in_at: i64,
    ) -> Result<bool, RevocationUnavailable> {
        let now = self.clock.now();
        let in_memory = self.live.check(sid, user, now);
        if in_memory == Some(false) || self.cache.contains_key(&Key::Session(sid)) {
            return Ok(true);
        }
        if let Some(cutoff) = self.cache.get(&Key::Cutoff(user))
            && signed_in_at < cutoff.at
        {
            return Ok(true);
        }
        if in_memory == Some(true) && self.is_complete() {
            return Ok(false);
        }
        let (sid_text, nil) = (sid.to_string(), Uuid::nil().to_string());
        let (session, listed, cutoff) = self
            .db
            .read(move |conn| {
                Ok::<_, DbError>((
                    sessions::find(conn, sid)?,
                    revocations::is_revoked(conn, &nil, &sid_text, now)?,
                    users::tokens_valid_after(conn, user)?,
                ))
            })
            .await?;
        let live = session.is_some_and(|s| s.user_id == user && s.is_live(now));
        Ok(!live || listed || cutoff.is_none_or(|cutoff| signed_in_at < cutoff))
    }

    /// What memory knows of `session` being live and `user`'s (see
    /// [`LiveSessions::check`]).
    pub fn is_live_session(&self, session: Uuid, user: UserId) -> Option<bool> {
        self.live.check(session, user, self.clock.now())
    }

    /// Records in memory a session just committed to the database, so its tokens
    /// are accepted.
    pub fn remember_live_session(&self, session: Uuid, user: UserId, expires_at: i64) {
        self.live.opened(session, user, expires_at);
    }

    /// Records in memory a token revocation already committed to the database.
    pub fn remember_token(&self, jti: Uuid, until: i64) {
        self.metrics.revoked(RevocationScope::Token);
        self.remember(Key::Token(jti), Entry { at: 0, until });
    }

    /// Records in memory an ended session already committed to the database.
    pub fn remember_session(&self, sid: Uuid, until: i64) {
        self.metrics.revoked(RevocationScope::Session);
        self.live.ended(sid);
        self.remember(Key::Session(sid), Entry { at: 0, until });
    }

    /// Records in memory a user cut-off already committed to the database.
    pub fn remember_cutoff(&self, user: UserId, cutoff: i64) {
        self.metrics.revoked(RevocationScope::Account);
        self.hold_cutoff(user, cutoff);
    }

    /// Counts revocations into `metrics` (set before the store is cloned).
    pub fn with_metrics(mut self, metrics: SessionMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Account sessions neither ended nor expired, counted in the database (for the
    /// metrics; not a check).
    pub async fn count_live_sessions(&self) -> Result<u64, DbError> {
        let now = self.clock.now();
        self.db
            .read(move |conn| Ok::<_, DbError>(stats::live_sessions(conn, now)?))
            .await
    }

    /// Holds a user's cut-off in memory (loaded, or just committed).
    fn hold_cutoff(&self, user: UserId, cutoff: i64) {
        let until = cutoff + self.token_lifetime_seconds;
        let at = match self.cache.get(&Key::Cutoff(user)) {
            Some(existing) => existing.at.max(cutoff),
            None => cutoff,
        };
        self.remember(Key::Cutoff(user), Entry { at, until });
    }

    fn remember(&self, key: Key, entry: Entry) {
        // Counted before inserting (a racing duplicate may be counted twice: that
        // only gives up completeness earlier, the safe direction).
        if !self.cache.contains_key(&key) {
            let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
            if held >= self.near_capacity() {
                self.complete.store(false, Ordering::SeqCst);
            }
        }
        self.cache.insert(key, entry);
    }

    /// How long a session revocation must be kept: until every access token that
    /// session could have been issued is past `exp + LEEWAY`.
    pub fn session_revocation_until(&self, now: i64) -> i64 {
        now + self.token_lifetime_seconds
    }

    /// Deletes revocations that no longer matter, and the refresh tokens of sessions
    /// over for a day or more.
    /// Deletes, `batch` a transaction, the account sessions over (ended or expired)
    /// for longer than any access token of theirs can live — with their refresh
    /// tokens and the browser sessions that rode on them. Nothing can present them
    /// any more: a token naming a session that is not live is refused whether its
    /// row is there or not. Returns how many went.
    pub async fn prune_sessions(&self, batch: usize) -> Result<usize, DbError> {
        let before = self.clock.now() - self.token_lifetime_seconds;
        self.db
            .delete_in_batches(batch, move |tx, batch| {
                Ok::<_, DbError>(sessions::prune_over(tx, before, batch)?)
            })
            .await
    }

    pub async fn purge_expired(&self) -> Result<usize, DbError> {
        let now = self.clock.now();
        self.live.forget_expired(now);
        self.db
            .write(move |tx| {
                let tokens = refresh_tokens::purge_for_sessions_over_before(tx, now - 86_400)?;
                Ok(revocations::purge_expired(tx, now)? + tokens)
            })
            .await
    }
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;
    use crate::model::Role;

    fn claims(user: UserId) -> Claims {
        Claims {
            iss: String::new(),
            aud: String::new(),
            sub: user,
            jti: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            role: Role::User,
            iat: 1,
            nbf: 1,
            exp: 2,
            typ: super::super::tokens::TokenType::Access,
            auth_method: crate::model::AuthMethod::Password,
        }
    }

    fn capacity(revocations: u64) -> StoreCapacity {
        StoreCapacity {
            revocations,
            sessions: 1000,
        }
    }

    async fn open_db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&DatabaseSettings {
            path: dir.path().join("r.db"),
            read_connections: 1,
        })
        .await
        .expect("open");
        (dir, db)
    }

    #[tokio::test]
    async fn a_failed_warm_up_leaves_the_cache_unable_to_vouch() {
        let (_dir, db) = open_db().await;
        db.inject_io_errors(true);
        let store = RevocationStore::open(db.clone(), capacity(1000), 900, Clock::system()).await;
        assert!(!store.is_complete());
        let probe = claims(UserId::new());
        assert_eq!(
            store.check_cached(&probe),
            None,
            "a miss is not vouched for"
        );
        assert!(
            store.is_revoked(&probe).await.is_err(),
            "and the database error denies"
        );
        db.inject_io_errors(false);
        // Unknown account: the database says its tokens are dead.
        assert!(store.is_revoked(&probe).await.expect("answer"));
    }

    #[tokio::test]
    async fn completeness_is_given_up_before_capacity_is_reached() {
        let (_dir, db) = open_db().await;
        let store = RevocationStore::open(db, capacity(100), 900, Clock::system()).await;
        assert!(store.is_complete());
        let until = Clock::system().now() + 900;
        for _ in 0..89 {
            store.remember_token(Uuid::new_v4(), until);
        }
        assert!(store.is_complete(), "89 of 100 held");
        store.remember_token(Uuid::new_v4(), until);
        assert!(!store.is_complete(), "90 of 100 held: no longer vouching");
    }
}
