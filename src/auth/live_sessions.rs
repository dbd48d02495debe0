//! The allow-list of live sessions: an access token is good only while the session it
//! names exists, has not ended, has not expired, and belongs to the token's subject.
//! A revocation list alone cannot say that: a token naming a session that never
//! existed would pass, and so would one whose session a restored database has
//! forgotten ended.
//!
//! The hot path stays in memory with the revocation cache's contract: while the set
//! is *complete* — loaded at start and never short of room — it answers alone, hit or
//! miss; once it is not, a miss asks the database, and a database that cannot answer
//! refuses the token (503). The set is told of every session opened or ended right
//! after the commit, on the database thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use uuid::Uuid;

use crate::model::UserId;

/// Whose a live session is, and until when.
#[derive(Debug, Clone, Copy)]
struct Live {
    user: UserId,
    expires_at: i64,
}

#[derive(Clone)]
pub struct LiveSessions {
    sessions: Arc<RwLock<HashMap<Uuid, Live>>>,
    complete: Arc<AtomicBool>,
    capacity: usize,
}

impl LiveSessions {
    /// An empty, incomplete set: it vouches for nothing until [`LiveSessions::load`]
    /// succeeds.
    pub fn new(capacity: usize) -> Self {
        Self {
            sessions: Arc::new(RwLock::new(HashMap::new())),
            complete: Arc::new(AtomicBool::new(false)),
            capacity: capacity.max(1),
        }
    }

    /// Fills the set from the database's live sessions; complete when they all fit.
    pub fn load(&self, live: Vec<(Uuid, UserId, i64)>) {
        let fits = live.len() <= self.capacity;
        let mut sessions = self.sessions.write();
        sessions.clear();
        for (id, user, expires_at) in live.into_iter().take(self.capacity) {
            sessions.insert(id, Live { user, expires_at });
        }
        self.complete.store(fits, Ordering::SeqCst);
    }

    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::SeqCst)
    }

    /// `Some(true)`: `session` is live and `user`'s; `Some(false)`: certainly not
    /// (known otherwise, or absent from a complete set); `None`: only the database
    /// can tell.
    pub fn check(&self, session: Uuid, user: UserId, now: i64) -> Option<bool> {
        match self.sessions.read().get(&session) {
            Some(live) => Some(live.user == user && live.expires_at > now),
            None => (self.is_complete()).then_some(false),
        }
    }

    /// A session just committed. Without room for it, the set stops vouching for
    /// misses (the safe direction) rather than forgetting anything.
    pub fn opened(&self, session: Uuid, user: UserId, expires_at: i64) {
        let mut sessions = self.sessions.write();
        if sessions.len() >= self.capacity && !sessions.contains_key(&session) {
            self.complete.store(false, Ordering::SeqCst);
            return;
        }
        sessions.insert(session, Live { user, expires_at });
    }

    /// A session just ended (committed, or at least revoked in memory).
    pub fn ended(&self, session: Uuid) {
        self.sessions.write().remove(&session);
    }

    /// Forgets sessions past their expiry; returns how many.
    pub fn forget_expired(&self, now: i64) -> usize {
        let mut sessions = self.sessions.write();
        let before = sessions.len();
        sessions.retain(|_, live| live.expires_at > now);
        before - sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_set_answers_alone_and_checks_the_owner_and_expiry() {
        let set = LiveSessions::new(10);
        assert_eq!(set.check(Uuid::new_v4(), UserId::new(), 0), None);
        let (session, owner) = (Uuid::new_v4(), UserId::new());
        set.load(vec![(session, owner, 100)]);
        assert_eq!(set.check(session, owner, 50), Some(true));
        assert_eq!(set.check(session, UserId::new(), 50), Some(false));
        assert_eq!(set.check(session, owner, 100), Some(false), "expired");
        assert_eq!(
            set.check(Uuid::new_v4(), owner, 50),
            Some(false),
            "never existed"
        );
        set.ended(session);
        assert_eq!(set.check(session, owner, 50), Some(false));
    }

    #[test]
    fn without_room_the_set_stops_vouching_for_misses() {
        let set = LiveSessions::new(2);
        set.load(Vec::new());
        let owner = UserId::new();
        set.opened(Uuid::new_v4(), owner, 100);
        set.opened(Uuid::new_v4(), owner, 100);
        assert!(set.is_complete());
        let third = Uuid::new_v4();
        set.opened(third, owner, 100);
        assert!(!set.is_complete());
        assert_eq!(set.check(third, owner, 50), None, "the database must say");
        assert_eq!(set.forget_expired(200), 2);
    }

    #[test]
    fn a_load_that_does_not_fit_is_incomplete() {
        let set = LiveSessions::new(1);
        let owner = UserId::new();
        set.load(vec![
            (Uuid::new_v4(), owner, 100),
            (Uuid::new_v4(), owner, 100),
        ]);
        assert!(!set.is_complete());
    }
}
