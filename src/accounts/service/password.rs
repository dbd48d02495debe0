//! Password change: the current password first; then every session of the account
//! ends — the caller's too — and the caller gets a fresh pair in a new session, all
//! in one transaction, so no earlier token or refresh token survives.

use secrecy::{ExposeSecret, SecretString};

use super::login::Failing;
use super::{AccountError, AccountService, TokenPair, end_all_sessions};
use crate::audit::{AuditEvent, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::auth::refresh as refresh_token;
use crate::auth::tokens::LEEWAY_SECONDS;
use crate::crypto::password::Verification;
use crate::db::revocations::{self, RevocationKind};
use crate::db::{passkeys, refresh_tokens, sessions, users};
use crate::model::{AuthMethod, UserId};
use crate::validation::FieldError;

/// Who changes a password: the access token it holds (its id and how long it must
/// stay refused), if it holds one — a browser session rides on its account
/// session instead, which ends with the others — and what its session proved.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub token: Option<(uuid::Uuid, i64)>,
    /// The caller's account session: the new session keeps the passkey that
    /// signed it in, so deleting that passkey still ends it.
    pub session: uuid::Uuid,
    pub proved: AuthMethod,
}

impl AccountService {
    /// Changes the password after checking the current one. Every session of the
    /// account ends — the caller's too — and the caller gets a fresh pair in a new
    /// session, all in one transaction, so no earlier token or refresh token of any
    /// session survives.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let token = (principal.token_id, principal.expires_at + LEEWAY_SECONDS);
        let caller = Caller {
            token: Some(token),
            session: principal.session_id,
            proved: principal.auth_method,
        };
        self.change_password_of(principal.user_id, caller, current, new, meta)
            .await
    }

    /// [`AccountService::change_password`] for `user`, asked by `caller`.
    pub async fn change_password_of(
        &self,
        user: UserId,
        caller: Caller,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let audit = self.audit.clone();
        // Read fresh, not from the profile cache: the hash is what is checked.
        let user = self.read_user(user).await?;
        // The current password is a guess like any login's: none while softlocked,
        // and a wrong one counts toward the softlock.
        let now = self.clock.now();
        if user.is_softlocked(now) || self.unrecorded.is_locked(user.id, now) {
            return Err(AccountError::TemporarilyLocked);
        }
        let verification = self
            .hasher
            .verify(current.clone(), Some(user.password_hash.clone()))
            .await?;
        if verification == Verification::Invalid {
            self.record_failure(
                "password_change_wrong_password",
                None,
                Some(Failing::from(&user)),
                true,
                meta,
            )
            .await?;
            return Err(AccountError::WrongCurrentPassword);
        }
        if current.expose_secret() == new.expose_secret() {
            return Err(AccountError::Validation(vec![FieldError::rule(
                "new_password",
                "unchanged",
                "must differ from the current password",
            )]));
        }
        let new = self
            .check_new_password(new, &user.email, "new_password")
            .await?;
        let new_hash = self.hasher.hash(new.into_secret()).await?;
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        // The new session has proved what the caller's had, no more: the password
        // proved again adds nothing a code or a passkey proved.
        let auth_method = caller.proved;
        let caller_token = caller.token;
        let (mut session, refresh_token) =
            self.new_session(user.id, auth_method.into(), meta, now)?;
        let refresh_hash = refresh_token::hash(&refresh_token);
        let access = self
            .tokens
            .issue_access(user.id, session.id, user.role, auth_method, now)?;
        let pair = TokenPair::new(access, refresh_token, &session);
        let (user_id, verified_hash) = (user.id, user.password_hash);
        let audit_event = AuditEvent::of_request("auth.password_changed", Outcome::Success, meta)
            .with_actor(user_id.to_string())
            .with_target(session.id.to_string());
        let revocations = self.revocations.clone();
        let after_ended = self.after_sessions_ended(user_id, now, until);
        let (new_session, new_expiry) = (session.id, session.expires_at);
        let changed = self
            .db
            .write_then(
                move |tx| {
                    // Only if the password checked above is still the account's.
                    if !users::replace_password_hash(tx, user_id, &verified_hash, &new_hash, now)? {
                        return Ok::<_, AccountError>(None);
                    }
                    // The caller's session must still be live, and the passkey that
                    // signed it in still in use: one ended meanwhile (its passkey
                    // deleted, say) hands on nothing.
                    let Some(caller_session) =
                        sessions::find(tx, caller.session)?.filter(|s| s.is_live(now))
                    else {
                        return Err(AccountError::SessionEnded);
                    };
                    if let Some(passkey) = caller_session.passkey_id
                        && !passkeys::in_use(tx, passkey)?
                    {
                        return Err(AccountError::SessionEnded);
                    }
                    session.passkey_id = caller_session.passkey_id;
                    let ended = end_all_sessions(tx, user_id, now, until, "password_changed")?;
                    if let Some((jti, until)) = caller_token {
                        revocations::insert(tx, RevocationKind::Token, &jti.to_string(), until)?;
                    }
                    sessions::insert(tx, &session)?;
                    refresh_tokens::insert(tx, &refresh_hash, session.id, now)?;
                    audit.append(tx, &audit_event.with_detail("sessions_ended", ended.len()))?;
                    Ok(Some(ended))
                },
                move |changed| {
                    if let Some(ended) = changed {
                        if let Some((jti, until)) = caller_token {
                            revocations.remember_token(jti, until);
                        }
                        after_ended(ended);
                        revocations.remember_live_session(new_session, user_id, new_expiry);
                    }
                },
            )
            .await?;
        match changed {
            Some(_) => Ok(pair),
            None => Err(AccountError::WrongCurrentPassword),
        }
    }
}
