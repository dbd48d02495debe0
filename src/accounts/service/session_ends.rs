//! Ending things: logout (this token and its session), logout-all (every session,
//! and a cut-off for every token issued until now), and the caller's own sessions,
//! listed and ended one at a time.
//!
//! When the database cannot take the change (a write outage), what it would have
//! ended is refused in memory all the same, and the answer says the change is not
//! yet durable (503): an outage denies more, never less.

use uuid::Uuid;

use super::{AccountError, AccountService, SessionInfo, end_all_sessions};
use crate::audit::{AdminActor, AuditEvent, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::auth::revocation::RevocationStore;
use crate::auth::tokens::LEEWAY_SECONDS;
use crate::db::revocations::{self, RevocationKind};
use crate::db::{sessions, users};
use crate::model::UserId;

impl AccountService {
    /// Revokes the calling token (until its expiry) and ends its session.
    pub async fn logout(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let token_until = principal.expires_at + LEEWAY_SECONDS;
        let session_until = self.revocations.session_revocation_until(now);
        let (jti, sid) = (principal.token_id, principal.session_id);
        let audit_event = AuditEvent::of_request("auth.logout", Outcome::Success, meta)
            .with_actor(principal.user_id.to_string())
            .with_target(sid.to_string());
        let revocations = self.revocations.clone();
        let written = self
            .db
            .write_then(
                move |tx| {
                    revocations::insert(tx, RevocationKind::Token, &jti.to_string(), token_until)?;
                    revocations::insert(
                        tx,
                        RevocationKind::Session,
                        &sid.to_string(),
                        session_until,
                    )?;
                    sessions::end(tx, sid, now, "logout")?;
                    audit.append(tx, &audit_event)?;
                    Ok::<_, AccountError>(())
                },
                move |_| {
                    revocations.remember_token(jti, token_until);
                    revocations.remember_session(sid, session_until);
                },
            )
            .await;
        written.map_err(|error| {
            self.revocations.remember_token(jti, token_until);
            self.revocations.remember_session(sid, session_until);
            not_durable(error)
        })
    }

    /// Ends every session of the caller's account and cuts off every token issued
    /// until now.
    pub async fn logout_all(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<usize, AccountError> {
        let user = principal.user_id;
        let audit_event = AuditEvent::of_request("auth.logout_all", Outcome::Success, meta)
            .with_actor(user.to_string());
        self.end_every_session(user, audit_event, "logout_all")
            .await
    }

    /// Ends every session of `user` (which must exist), moves its cut-off to now,
    /// and records `audit_event` with the number ended — in one transaction.
    pub(super) async fn end_every_session(
        &self,
        user: UserId,
        audit_event: AuditEvent,
        reason: &'static str,
    ) -> Result<usize, AccountError> {
        let audit = self.audit.clone();
        self.end_every_session_with(user, reason, move |tx, ended| {
            audit.append(tx, &audit_event.with_detail("sessions_ended", ended))?;
            Ok(ended)
        })
        .await
    }

    /// [`AccountService::end_every_session`] with `change` — which is told how
    /// many sessions ended, and records its own audit event — in the same
    /// transaction.
    pub(in crate::accounts) async fn end_every_session_with<T: Send + 'static>(
        &self,
        user: UserId,
        reason: &'static str,
        change: impl FnOnce(&rusqlite::Connection, usize) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let after = self.after_sessions_ended(user, now, until);
        let ended = self
            .db
            .write_then(
                move |tx| {
                    if users::find(tx, user)?.is_none() {
                        return Err(AccountError::UserNotFound);
                    }
                    let ended = end_all_sessions(tx, user, now, until, reason)?;
                    let done = change(tx, ended.len())?;
                    Ok::<_, AccountError>((ended, done))
                },
                move |(ended, _)| after(ended),
            )
            .await;
        match ended {
            Ok((_, done)) => Ok(done),
            Err(AccountError::UserNotFound) => Err(AccountError::UserNotFound),
            Err(error) => {
                // Every token issued until now (this second included) is refused
                // here, durable or not.
                self.revocations.remember_cutoff(user, now + 1);
                Err(not_durable(error))
            }
        }
    }

    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>, AccountError> {
        self.sessions_of(principal.user_id, principal.session_id)
            .await
    }

    /// The live sessions of `user`, `current` marked.
    pub async fn sessions_of(
        &self,
        user: UserId,
        current: Uuid,
    ) -> Result<Vec<SessionInfo>, AccountError> {
        let now = self.clock.now();
        let rows = self
            .db
            .read(move |conn| Ok::<_, AccountError>(sessions::live_for_user(conn, user, now)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|session| SessionInfo {
                current: session.id == current,
                session,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions. Someone else's session, or one already
    /// ended, is "not found".
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        self.end_session(principal.user_id, session_id, meta).await
    }

    /// Ends one live session of `owner` (anyone else's is `SessionNotFound`).
    pub async fn end_session(
        &self,
        owner: UserId,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        self.end_one_session(owner.to_string(), owner, session_id, meta)
            .await
    }

    /// An administrator ends one live session of `owner`; audited under the
    /// administrator.
    pub async fn end_session_by_admin(
        &self,
        admin: &AdminActor,
        owner: UserId,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        self.end_one_session(admin.audit_name(), owner, session_id, meta)
            .await
    }

    async fn end_one_session(
        &self,
        actor: String,
        owner: UserId,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = AuditEvent::of_request("auth.session_revoked", Outcome::Success, meta)
            .with_actor(actor)
            .with_target(session_id.to_string());
        let revocations = self.revocations.clone();
        let revoked = self
            .db
            .write_then(
                move |tx| {
                    let Some(session) = sessions::find(tx, session_id)? else {
                        return Ok::<_, AccountError>(false);
                    };
                    if session.user_id != owner || !session.is_live(now) {
                        return Ok(false);
                    }
                    sessions::end(tx, session_id, now, "revoked")?;
                    revocations::insert(
                        tx,
                        RevocationKind::Session,
                        &session_id.to_string(),
                        until,
                    )?;
                    audit.append(tx, &audit_event)?;
                    Ok(true)
                },
                move |revoked| {
                    if *revoked {
                        revocations.remember_session(session_id, until);
                    }
                },
            )
            .await;
        let revoked = revoked.map_err(|error| {
            // Only the owner's own live session is refused in memory.
            if self.revocations.is_live_session(session_id, owner) == Some(true) {
                self.revocations.remember_session(session_id, until);
            }
            not_durable(error)
        })?;
        if revoked {
            Ok(())
        } else {
            Err(AccountError::SessionNotFound)
        }
    }
}

/// Ends what passkeys signed in, inside the caller's transaction (deleting a
/// passkey, suspecting a copy of one), and refuses the sessions in memory once that
/// commits.
#[derive(Clone)]
pub(in crate::accounts) struct PasskeySessions {
    revocations: RevocationStore,
    now: i64,
    until: i64,
}

impl PasskeySessions {
    /// Ends every live session `passkey` signed in; returns them.
    pub(in crate::accounts) fn end(
        &self,
        tx: &rusqlite::Connection,
        passkey: Uuid,
        reason: &str,
    ) -> Result<Vec<Uuid>, AccountError> {
        let mut ended = Vec::new();
        for session in sessions::live_for_passkey(tx, passkey, self.now)? {
            sessions::end(tx, session.id, self.now, reason)?;
            revocations::insert(
                tx,
                RevocationKind::Session,
                &session.id.to_string(),
                self.until,
            )?;
            ended.push(session.id);
        }
        Ok(ended)
    }

    /// After the commit: the ended sessions are refused in memory too.
    pub(in crate::accounts) fn remember(&self, ended: &[Uuid]) {
        for sid in ended {
            self.revocations.remember_session(*sid, self.until);
        }
    }
}

impl AccountService {
    /// What ends passkeys' sessions in a transaction starting now.
    pub(in crate::accounts) fn passkey_sessions(&self) -> PasskeySessions {
        let now = self.clock.now();
        PasskeySessions {
            revocations: self.revocations.clone(),
            now,
            until: self.revocations.session_revocation_until(now),
        }
    }
}

/// A change that was refused in memory but not stored: the storage outage's 503,
/// saying so. Any other error passes unchanged.
fn not_durable(error: AccountError) -> AccountError {
    match error {
        AccountError::Unexpected(cause) => AccountError::NotDurable(cause),
        other => other,
    }
}
