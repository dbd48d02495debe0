//! Login: e-mail and password (every failure costs and answers the same), the MFA
//! challenge for an account with a second factor, and the failure count that
//! softlocks an account after consecutive misses.
//!
//! A failure the database cannot take (a write outage) is still counted — in
//! memory, with the softlock it reaches — and handed to the database with the next
//! failure it does take: an outage denies more, never less.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use secrecy::SecretString;

use super::{AccountError, AccountService, LoginOutcome, MfaChallenge, SignedInWith, TokenPair};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::auth::refresh;
use crate::crypto::password::Verification;
use crate::db::{passkeys, refresh_tokens, sessions, users};
use crate::model::{AuthMethod, Email, User, UserId, UserStatus};
use crate::telemetry::metrics::{AccountMetrics, LoginResult};

/// The account a failed step was against, and its consecutive failures before it.
#[derive(Debug, Clone, Copy)]
pub(in crate::accounts) struct Failing {
    pub id: UserId,
    pub failures: u32,
}

impl From<UserId> for Failing {
    /// An account whose count does not matter here (the step does not count).
    fn from(id: UserId) -> Self {
        Self { id, failures: 0 }
    }
}

impl From<&User> for Failing {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            failures: user.failed_logins,
        }
    }
}

/// Failures the database could not take, and the softlocks they reached, kept in
/// memory until it takes them again.
#[derive(Clone)]
pub(super) struct UnrecordedFailures {
    pending: Cache<UserId, u32>,
    locked_until: Cache<UserId, i64>,
    metrics: AccountMetrics,
}

impl UnrecordedFailures {
    pub(super) fn new(forget_after_seconds: u32, metrics: AccountMetrics) -> Self {
        let keep = Duration::from_secs(u64::from(forget_after_seconds.max(60)));
        Self {
            pending: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(keep)
                .build(),
            locked_until: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(keep)
                .build(),
            metrics,
        }
    }

    fn pending(&self, user: UserId) -> u32 {
        self.pending.get(&user).unwrap_or(0)
    }

    /// Counts a failure the database did not take; locks in memory when the
    /// consecutive failures reach a softlock step.
    fn count(&self, user: Failing, steps: &[(u32, u32)], now: i64) {
        let pending = self.pending(user.id) + 1;
        self.pending.insert(user.id, pending);
        if let Some(seconds) = softlock_seconds(steps, user.failures + pending) {
            self.locked_until.insert(user.id, now + i64::from(seconds));
            self.metrics.softlocked();
        }
    }

    /// The database took the pending failures.
    fn taken(&self, user: UserId) {
        self.pending.invalidate(&user);
    }

    pub(super) fn is_locked(&self, user: UserId, now: i64) -> bool {
        self.locked_until
            .get(&user)
            .is_some_and(|until| until > now)
    }

    /// A successful sign-in starts the count afresh.
    pub(super) fn clear(&self, user: UserId) {
        self.pending.invalidate(&user);
        self.locked_until.invalidate(&user);
    }
}

/// Records failed sign-in steps (a wrong password, a wrong or replayed code) inside
/// the caller's transaction, so a check and the failure it causes commit together:
/// concurrent guesses cannot all be checked before the first one is counted.
pub(super) struct FailureRecorder {
    audit: AuditLog,
    steps: Arc<[(u32, u32)]>,
    forget_after: i64,
    now: i64,
    meta: RequestMeta,
    unrecorded: UnrecordedFailures,
    metrics: AccountMetrics,
}

impl FailureRecorder {
    /// Audits the failure and, when `counts`, adds it to the account's consecutive
    /// failures, which may softlock it (audited as `auth.account_locked`).
    pub(super) fn record(
        &self,
        tx: &rusqlite::Connection,
        reason: &str,
        email: Option<&Email>,
        user: Option<UserId>,
        counts: bool,
    ) -> Result<(), AccountError> {
        let mut failed = AuditEvent::of_request("auth.login_failed", Outcome::Failure, &self.meta)
            .with_detail("reason", reason);
        match (user, email) {
            (Some(user), _) => failed = failed.with_target(user.to_string()),
            (None, Some(email)) => failed = failed.with_detail("email", email.as_str()),
            (None, None) => {}
        }
        self.audit.append(tx, &failed)?;
        // Failures counted only in memory during an outage are counted here too.
        let by = user.map_or(1, |user| 1 + self.unrecorded.pending(user));
        if let (true, Some(user)) = (counts, user)
            && let Some(failures) =
                users::count_failed_login(tx, user, self.now, self.forget_after, by)?
            && let Some(seconds) = softlock_seconds(&self.steps, failures)
        {
            users::softlock_until(tx, user, self.now + i64::from(seconds))?;
            self.metrics.softlocked();
            self.audit.append(
                tx,
                &AuditEvent::of_request("auth.account_locked", Outcome::Denied, &self.meta)
                    .with_target(user.to_string())
                    .with_detail("consecutive_failures", failures)
                    .with_detail("lock_seconds", seconds),
            )?;
        }
        Ok(())
    }
}

/// Whether the account is still as it was when its password was verified: same
/// hash, active, not softlocked, MFA as it was. Run inside the transaction that acts on it.
fn still_as_verified(
    tx: &rusqlite::Connection,
    verified: &User,
    now: i64,
) -> Result<bool, AccountError> {
    Ok(users::find(tx, verified.id)?.is_some_and(|c| {
        c.password_hash == verified.password_hash
            && c.status == UserStatus::Active
            && !c.is_softlocked(now)
            // MFA switched on meanwhile: a password alone no longer opens a session.
            && c.mfa_enabled == verified.mfa_enabled
    }))
}

impl AccountService {
    /// Checks credentials and opens a session. Every failure — unknown e-mail, wrong
    /// password, locked or disabled account — costs the same and answers the same;
    /// only the audit log knows which it was.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AccountError> {
        let undecided = || self.metrics.login(LoginResult::Error);
        let email = Email::parse(email).ok();
        let user = match email.clone() {
            Some(email) => self
                .db
                .read(move |conn| Ok::<_, AccountError>(users::find_by_email(conn, &email)?))
                .await
                .inspect_err(|_| undecided())?,
            None => None,
        };
        let verification = self
            .hasher
            .verify(
                password.clone(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await
            .inspect_err(|_| undecided())?;
        let now = self.clock.now();
        // The password is checked before the account's state is, so every outcome
        // costs the same; during a softlock even the right password is refused.
        let failure = match (&user, verification) {
            (None, _) => Some("unknown_email"),
            (Some(user), _)
                if user.is_softlocked(now) || self.unrecorded.is_locked(user.id, now) =>
            {
                Some("softlocked")
            }
            (Some(_), Verification::Invalid) => Some("wrong_password"),
            (Some(user), _) if user.status != UserStatus::Active => Some(user.status.as_str()),
            _ => None,
        };
        let user = match (user, failure) {
            (Some(user), None) => user,
            (user, failure) => {
                let reason = failure.unwrap_or("unknown_email");
                // One outcome for every refusal, as the answer is one: the metric
                // tells no more than the 401 (the audit log has the reason).
                self.metrics.login(LoginResult::Failed);
                let counts = reason == "wrong_password";
                return Err(self
                    .login_failed(
                        reason,
                        email,
                        user.as_ref().map(Failing::from),
                        counts,
                        meta,
                    )
                    .await);
            }
        };
        // Upgrade a weaker or legacy hash now that the password is known. A busy
        // hasher must not fail the login: the upgrade waits for the next one.
        let upgraded_hash = match verification {
            Verification::Valid { needs_rehash: true } => match self.hasher.hash(password).await {
                Ok(hash) => Some(hash),
                Err(error) => {
                    tracing::warn!(%error, "password rehash postponed");
                    None
                }
            },
            _ => None,
        };
        let user_id = user.id;
        let outcome = if user.mfa_enabled {
            self.challenge_mfa(user, upgraded_hash, meta)
                .await
                .inspect_err(|_| undecided())?
                .map(LoginOutcome::MfaRequired)
        } else {
            self.open_session(user, upgraded_hash, AuthMethod::Password.into(), meta)
                .await
                .inspect_err(|_| undecided())?
                .map(LoginOutcome::Signed)
        };
        self.metrics.login(match &outcome {
            Some(LoginOutcome::Signed(_)) => LoginResult::Success,
            Some(LoginOutcome::MfaRequired(_)) => LoginResult::MfaRequired,
            None => LoginResult::Failed,
        });
        match outcome {
            Some(outcome) => Ok(outcome),
            // The password or status changed while this login was being checked:
            // what was verified is no longer the account's credential.
            None => Err(self
                .login_failed(
                    "changed_during_login",
                    email,
                    Some(user_id.into()),
                    false,
                    meta,
                )
                .await),
        }
    }

    /// Records a failed login and returns the one error every failure answers with.
    pub(super) async fn login_failed(
        &self,
        reason: &str,
        email: Option<Email>,
        user: Option<Failing>,
        counts: bool,
        meta: &RequestMeta,
    ) -> AccountError {
        match self.record_failure(reason, email, user, counts, meta).await {
            Ok(()) => AccountError::InvalidCredentials,
            Err(error) => error,
        }
    }

    /// Audits a failed sign-in step (password or MFA code). When `counts`, the
    /// failure adds to the account's consecutive failures, which may softlock it
    /// (audited as `auth.account_locked`) — in memory, if the database cannot take
    /// it now (and the answer is then the outage's 503).
    pub(in crate::accounts) async fn record_failure(
        &self,
        reason: &str,
        email: Option<Email>,
        user: Option<Failing>,
        counts: bool,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        self.record_failure_with(reason, email, user, counts, meta, |_| Ok(()))
            .await
    }

    /// [`AccountService::record_failure`], with `also` — what the failed step
    /// itself records (a passkey ceremony's events, a passkey put out of use) — run
    /// in the same transaction; its result is returned.
    pub(in crate::accounts) async fn record_failure_with<T: Send + 'static>(
        &self,
        reason: &str,
        email: Option<Email>,
        user: Option<Failing>,
        counts: bool,
        meta: &RequestMeta,
        also: impl FnOnce(&rusqlite::Connection) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let failures = self.failures(meta);
        let reason = reason.to_owned();
        let id = user.map(|u| u.id);
        let recorded = self
            .db
            .write(move |tx| {
                let done = also(tx)?;
                failures.record(tx, &reason, email.as_ref(), id, counts)?;
                Ok(done)
            })
            .await;
        match (&recorded, user) {
            (Ok(_), Some(user)) if counts => self.unrecorded.taken(user.id),
            (Err(error), Some(user)) if counts => {
                tracing::warn!(%error, "a failed sign-in could not be recorded; counted in memory");
                self.unrecorded
                    .count(user, &self.softlock_steps, self.clock.now());
            }
            _ => {}
        }
        recorded
    }

    /// What records failed sign-in steps, for use inside a transaction.
    pub(super) fn failures(&self, meta: &RequestMeta) -> FailureRecorder {
        FailureRecorder {
            audit: self.audit.clone(),
            steps: Arc::clone(&self.softlock_steps),
            forget_after: i64::from(self.softlock_forget_after_seconds),
            now: self.clock.now(),
            meta: meta.clone(),
            unrecorded: self.unrecorded.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Why `user` may not sign in right now, if it may not: softlocked (in the
    /// database, or in memory during a write outage), or not active.
    pub(in crate::accounts) fn sign_in_refusal(&self, user: &User) -> Option<&'static str> {
        let now = self.clock.now();
        if user.is_softlocked(now) || self.unrecorded.is_locked(user.id, now) {
            Some("softlocked")
        } else if user.status != UserStatus::Active {
            Some(user.status.as_str())
        } else {
            None
        }
    }

    /// Opens a session for `verified`, signed in to as `signed_in` says — unless
    /// its password hash or status changed since it was read (`None` then), or the
    /// passkey it names is no longer in use (`InvalidCredentials`). Writes
    /// `upgraded_hash` in the same transaction.
    pub(in crate::accounts) async fn open_session(
        &self,
        verified: User,
        upgraded_hash: Option<String>,
        signed_in: SignedInWith,
        meta: &RequestMeta,
    ) -> Result<Option<TokenPair>, AccountError> {
        let now = self.clock.now();
        let auth_method = signed_in.method;
        let (session, refresh_token) = self.new_session(verified.id, signed_in, meta, now)?;
        let refresh_hash = refresh::hash(&refresh_token);
        let access =
            self.tokens
                .issue_access(verified.id, session.id, verified.role, auth_method, now)?;
        let audit_event = AuditEvent::of_request("auth.login_succeeded", Outcome::Success, meta)
            .with_actor(verified.id.to_string())
            .with_target(session.id.to_string())
            .with_detail("hash_upgraded", upgraded_hash.is_some())
            .with_detail("auth_method", auth_method.as_str());
        let pair = TokenPair::new(access, refresh_token, &session);
        let user = verified.id;
        let (revocations, sid, expires_at) =
            (self.revocations.clone(), session.id, session.expires_at);
        let unrecorded = self.unrecorded.clone();
        let opened = self
            .commit_if_still_verified(
                verified,
                upgraded_hash,
                audit_event,
                now,
                move |tx| {
                    // A passkey deleted (or suspected) since it was checked opens
                    // nothing: its deletion could not end a session not yet there.
                    if let Some(passkey) = session.passkey_id
                        && !passkeys::in_use(tx, passkey)?
                    {
                        return Err(AccountError::InvalidCredentials);
                    }
                    sessions::insert(tx, &session)?;
                    refresh_tokens::insert(tx, &refresh_hash, session.id, now)?;
                    users::clear_failed_logins(tx, user)?;
                    Ok(())
                },
                move || {
                    revocations.remember_live_session(sid, user, expires_at);
                    unrecorded.clear(user);
                },
            )
            .await?;
        Ok(opened.then_some(pair))
    }

    /// Runs `change` and records `audit_event` — with the upgraded hash, if any —
    /// in one transaction, but only while the account is still as it was verified;
    /// `false` (nothing written) otherwise. `committed` runs right after a commit
    /// that wrote, on the database thread.
    async fn commit_if_still_verified(
        &self,
        verified: User,
        upgraded_hash: Option<String>,
        audit_event: AuditEvent,
        now: i64,
        change: impl FnOnce(&rusqlite::Connection) -> Result<(), AccountError> + Send + 'static,
        committed: impl FnOnce() + Send + 'static,
    ) -> Result<bool, AccountError> {
        let (audit, profiles, user) = (self.audit.clone(), self.profiles.clone(), verified.id);
        self.db
            .write_then(
                move |tx| {
                    if !still_as_verified(tx, &verified, now)? {
                        return Ok::<_, AccountError>(false);
                    }
                    change(tx)?;
                    if let Some(hash) = &upgraded_hash {
                        users::set_password_hash(tx, verified.id, hash, now)?;
                    }
                    audit.append(tx, &audit_event)?;
                    Ok(true)
                },
                move |written| {
                    profiles.invalidate(&user);
                    if *written {
                        committed();
                    }
                },
            )
            .await
    }

    /// For an MFA account whose password was right: a challenge token instead of a
    /// session — unless the account changed since it was read (`None` then). The
    /// failure count is not cleared: only a right code does that, so alternating
    /// right passwords with guessed codes cannot dodge the softlock.
    async fn challenge_mfa(
        &self,
        verified: User,
        upgraded_hash: Option<String>,
        meta: &RequestMeta,
    ) -> Result<Option<MfaChallenge>, AccountError> {
        let now = self.clock.now();
        let issued = self.tokens.issue_mfa(verified.id, verified.role, now)?;
        let audit_event = AuditEvent::of_request("auth.mfa_challenged", Outcome::Success, meta)
            .with_actor(verified.id.to_string())
            .with_target(issued.claims.sid.to_string());
        let challenge = MfaChallenge {
            mfa_token: issued.token,
            expires_at: issued.claims.exp,
            user_id: verified.id,
        };
        let current = self
            .commit_if_still_verified(verified, upgraded_hash, audit_event, now, |_| Ok(()), || {})
            .await?;
        Ok(current.then_some(challenge))
    }
}

/// How long `failures` consecutive failures lock an account: the step reached last.
fn softlock_seconds(steps: &[(u32, u32)], failures: u32) -> Option<u32> {
    steps
        .iter()
        .rev()
        .find(|(at, _)| failures >= *at)
        .map(|(_, seconds)| *seconds)
}

#[cfg(test)]
mod tests {
    use super::softlock_seconds;

    #[test]
    fn softlock_steps_escalate_and_stay_at_the_last() {
        let steps = [(5, 60), (10, 300), (20, 3600)];
        assert_eq!(softlock_seconds(&steps, 4), None);
        assert_eq!(softlock_seconds(&steps, 5), Some(60));
        assert_eq!(softlock_seconds(&steps, 9), Some(60));
        assert_eq!(softlock_seconds(&steps, 10), Some(300));
        assert_eq!(softlock_seconds(&steps, 20), Some(3600));
        assert_eq!(softlock_seconds(&steps, 500), Some(3600));
    }
}
