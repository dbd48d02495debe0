//! Passkey ceremonies in progress, kept on the server: the state webauthn-rs needs to
//! check an answer (the challenge, the policy, the credentials allowed) never goes
//! to the client, so a client cannot forge or replay it. A ceremony is known by a
//! random 256-bit id handed out beside its options, is taken out whole when it is
//! finished (so it is good once, even under concurrent finishes), and is good for
//! [`CEREMONY_SECONDS`] by the injected clock. The stores are bounded in bytes, so
//! memory never grows without bound whatever a ceremony holds (a second factor's
//! holds the account's passkeys): sign-ins (anyone may start one), registrations
//! (a signed-in account) and second factors (a right password) are each held
//! apart, so a flood of one kind never pushes out a ceremony of another; and under
//! a flood the
//! least recently started ceremonies go first (their finishes fail as expired),
//! never the newest. Ceremonies in flight do not survive a restart.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
};

use crate::cache::{Cache, hasher};
use crate::clock::Clock;
use crate::crypto::keys::{RandomnessUnavailable, random_bytes};
use crate::model::UserId;

/// How long a ceremony may take, from its options to its answer: the timeout the
/// browser is given too.
pub(super) const CEREMONY_SECONDS: i64 = 5 * 60;
/// What a ceremony's state is taken to weigh, beside the passkeys it holds: a
/// generous bound on a challenge, its options and the policy.
pub(super) const CEREMONY_BYTES: u32 = 1024;
/// Sign-in ceremonies held at once, in bytes, across every visitor (50,000 of
/// them): a flood must start this many within [`CEREMONY_SECONDS`] to push out a
/// ceremony in flight.
const SIGN_IN_BYTES: u64 = 50_000 * CEREMONY_BYTES as u64;
/// Registrations held at once, in bytes, across every signed-in account.
const REGISTRATION_BYTES: u64 = 10_000 * CEREMONY_BYTES as u64;
/// Second factors held at once, in bytes: each holds its account's passkeys.
const SECOND_FACTOR_BYTES: u64 = 64 * 1024 * 1024;

/// What a ceremony is waiting for.
#[derive(Clone)]
pub(super) enum Ceremony {
    /// A new passkey for `user`, started on `session` (only that session may finish it).
    Registration {
        user: UserId,
        session: Uuid,
        state: PasskeyRegistration,
    },
    /// A sign-in with whichever passkey the authenticator offers.
    SignIn { state: DiscoverableAuthentication },
    /// A passkey of `user`'s instead of a code, answering MFA challenge
    /// `challenge` (the id of the challenge token, which must come back with it).
    SecondFactor {
        user: UserId,
        challenge: Uuid,
        state: PasskeyAuthentication,
    },
}

#[derive(Clone)]
struct Pending {
    /// The id handed out (a second factor is kept under its challenge instead).
    id: String,
    ceremony: Ceremony,
    started_at: i64,
    /// What its state is taken to weigh, in bytes.
    bytes: u32,
}

/// A ceremony taken out to be finished, and when it began.
pub(super) struct Taken {
    pub(super) ceremony: Ceremony,
    pub(super) started_at: i64,
}

/// Where a second factor's ceremony is kept: under its challenge, so a challenge
/// has one at a time (a new start replaces the one before) however often it is
/// started.
fn challenge_key(challenge: Uuid) -> String {
    format!("challenge:{challenge}")
}

#[derive(Clone)]
pub(super) struct Ceremonies {
    sign_ins: Cache<String, Pending>,
    registrations: Cache<String, Pending>,
    second_factors: Cache<String, Pending>,
    clock: Clock,
}

/// A store of `capacity` bytes of ceremonies: least recently started out first
/// (moka's default would keep the flood and refuse the newcomer, every id being
/// used once), and gone in real time once no clock could still call them good.
fn store(capacity: u64) -> Cache<String, Pending> {
    moka::sync::Cache::builder()
        .max_capacity(capacity)
        .weigher(|_, pending: &Pending| pending.bytes)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        // A backstop in real time; the injected clock decides expiry.
        .time_to_live(Duration::from_secs(CEREMONY_SECONDS.unsigned_abs()))
        .build_with_hasher(hasher())
}

impl Ceremonies {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            sign_ins: store(SIGN_IN_BYTES),
            registrations: store(REGISTRATION_BYTES),
            second_factors: store(SECOND_FACTOR_BYTES),
            clock,
        }
    }

    /// Keeps `ceremony` — holding `passkey_bytes` of passkeys besides its own
    /// state — and returns the id its answer must name.
    pub(super) fn start(
        &self,
        ceremony: Ceremony,
        passkey_bytes: usize,
    ) -> Result<String, RandomnessUnavailable> {
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let started_at = self.clock.now();
        let (store, key) = match &ceremony {
            Ceremony::Registration { .. } => (&self.registrations, id.clone()),
            Ceremony::SecondFactor { challenge, .. } => {
                (&self.second_factors, challenge_key(*challenge))
            }
            Ceremony::SignIn { .. } => (&self.sign_ins, id.clone()),
        };
        let bytes = u32::try_from(passkey_bytes)
            .unwrap_or(u32::MAX)
            .saturating_add(CEREMONY_BYTES);
        store.insert(
            key,
            Pending {
                id: id.clone(),
                ceremony,
                started_at,
                bytes,
            },
        );
        Ok(id)
    }

    /// Takes the sign-in or registration ceremony `id` out, if it is still good:
    /// `None` for an id never handed out, already finished, or older than
    /// [`CEREMONY_SECONDS`].
    pub(super) fn take(&self, id: &str) -> Option<Taken> {
        let pending = self
            .sign_ins
            .remove(id)
            .or_else(|| self.registrations.remove(id))?;
        self.in_time(pending)
    }

    /// Takes out the second factor's ceremony of `challenge`, if it is `id` and
    /// still good. Any other id spends it all the same (only the challenge's
    /// holder can name the challenge).
    pub(super) fn take_second_factor(&self, challenge: Uuid, id: &str) -> Option<Taken> {
        let pending = self.second_factors.remove(&challenge_key(challenge))?;
        if !bool::from(pending.id.as_bytes().ct_eq(id.as_bytes())) {
            return None;
        }
        self.in_time(pending)
    }

    fn in_time(&self, pending: Pending) -> Option<Taken> {
        let age = self.clock.now() - pending.started_at;
        (0..=CEREMONY_SECONDS).contains(&age).then_some(Taken {
            ceremony: pending.ceremony,
            started_at: pending.started_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use webauthn_rs::prelude::{Url, WebauthnBuilder};

    use super::*;

    fn registration_state() -> PasskeyRegistration {
        let origin = Url::parse("https://auth.example.com").expect("url");
        let webauthn = WebauthnBuilder::new("example.com", &origin)
            .and_then(WebauthnBuilder::build)
            .expect("relying party");
        let (_, state) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "a@example.com", "a", None)
            .expect("options");
        state
    }

    fn sign_in() -> Ceremony {
        let origin = Url::parse("https://auth.example.com").expect("url");
        let webauthn = WebauthnBuilder::new("example.com", &origin)
            .and_then(WebauthnBuilder::build)
            .expect("relying party");
        let (_, state) = webauthn
            .start_discoverable_authentication()
            .expect("options");
        Ceremony::SignIn { state }
    }

    #[test]
    fn a_flood_of_sign_ins_pushes_out_the_oldest_and_never_a_registration() {
        let hundred = 100 * u64::from(CEREMONY_BYTES);
        let ceremonies = Ceremonies {
            sign_ins: store(hundred),
            registrations: store(hundred),
            second_factors: store(hundred),
            clock: Clock::manual(1_000),
        };
        let registration = ceremonies
            .start(
                Ceremony::Registration {
                    user: UserId(Uuid::new_v4()),
                    session: Uuid::new_v4(),
                    state: registration_state(),
                },
                0,
            )
            .expect("rng");
        let flood: Vec<String> = (0..1_000)
            .map(|_| ceremonies.start(sign_in(), 0).expect("rng"))
            .collect();
        ceremonies.sign_ins.run_pending_tasks();
        let newest = ceremonies.start(sign_in(), 0).expect("rng");
        ceremonies.sign_ins.run_pending_tasks();
        assert!(ceremonies.take(&newest).is_some(), "the newcomer is kept");
        assert!(
            ceremonies.take(&flood[0]).is_none(),
            "the oldest went first"
        );
        assert!(
            ceremonies.take(&registration).is_some(),
            "registrations are apart"
        );
    }

    #[test]
    fn a_ceremony_is_good_once() {
        let ceremonies = Ceremonies::new(Clock::manual(1_000));
        let id = ceremonies.start(sign_in(), 0).expect("rng");
        assert_eq!(id.len(), 43);
        assert!(ceremonies.take("another id").is_none());
        assert!(ceremonies.take(&id).is_some());
        assert!(ceremonies.take(&id).is_none(), "taken twice");
        let other = ceremonies.start(sign_in(), 0).expect("rng");
        assert_ne!(other, id);
    }

    #[test]
    fn a_ceremony_expires_after_five_minutes_by_the_injected_clock() {
        let clock = Clock::manual(1_000);
        let ceremonies = Ceremonies::new(clock.clone());
        let in_time = ceremonies.start(sign_in(), 0).expect("rng");
        let late = ceremonies.start(sign_in(), 0).expect("rng");
        clock.advance(CEREMONY_SECONDS);
        assert!(ceremonies.take(&in_time).is_some(), "at the limit");
        clock.advance(1);
        assert!(ceremonies.take(&late).is_none(), "past the limit");
    }
}
