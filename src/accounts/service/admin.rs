//! What administrators do to accounts: find and inspect them, lock and unlock,
//! end every session, change role and attributes, reset MFA. Every operation takes
//! the acting administrator as an [`AdminActor`] — authorized by the policy engine at
//! the door it came through — and is audited under that actor.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{AccountError, AccountService, end_all_sessions};
use crate::audit::{AdminActor, AuditEvent, Outcome, RequestMeta};
use crate::db::sessions::SessionRow;
use crate::db::users::{UserCursor, UserOrder};
use crate::db::{mfa, sessions, users};
use crate::model::{Email, Role, User, UserId, UserStatus};
use crate::validation::FieldError;

/// Which accounts an administrator is looking for: one page of them.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// A part of the e-mail address (any case); empty matches every account.
    pub email_contains: String,
    pub order: UserOrder,
    /// The page starts after this account; `None` is the first page.
    pub after: Option<UserCursor>,
    pub limit: usize,
}

/// An account as its detail page shows it.
pub struct UserDetail {
    pub user: User,
    /// Its live sessions, newest first.
    pub sessions: Vec<SessionRow>,
    /// When it last signed in (its newest session's start), if ever.
    pub last_sign_in: Option<i64>,
}

impl AccountService {
    /// One page of the accounts an administrator is looking for.
    pub async fn find_users(&self, query: UserQuery) -> Result<Vec<User>, AccountError> {
        let needle = query.email_contains.trim().to_lowercase();
        self.db
            .read(move |conn| {
                Ok::<_, AccountError>(users::page(
                    conn,
                    &needle,
                    query.order,
                    query.after.as_ref(),
                    query.limit,
                )?)
            })
            .await
    }

    /// One account, its live sessions and its last sign-in, read fresh (not from
    /// the profile cache).
    pub async fn user_detail(&self, id: UserId) -> Result<UserDetail, AccountError> {
        let now = self.clock.now();
        self.db
            .read(move |conn| {
                let Some(user) = users::find(conn, id)? else {
                    return Err(AccountError::UserNotFound);
                };
                let mut live = sessions::live_for_user(conn, id, now)?;
                live.sort_by_key(|s| std::cmp::Reverse(s.created_at));
                Ok(UserDetail {
                    user,
                    sessions: live,
                    last_sign_in: sessions::last_started(conn, id)?,
                })
            })
            .await
    }

    /// Any account by id, read fresh.
    pub async fn find_user(&self, id: UserId) -> Result<User, AccountError> {
        self.db
            .read(move |conn| Ok::<_, AccountError>(users::find(conn, id)?))
            .await?
            .ok_or(AccountError::UserNotFound)
    }

    /// The account with this e-mail address, if any.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, AccountError> {
        let email = email.clone();
        self.db
            .read(move |conn| Ok::<_, AccountError>(users::find_by_email(conn, &email)?))
            .await
    }

    /// How many accounts exist.
    pub async fn count_users(&self) -> Result<i64, AccountError> {
        self.db
            .read(|conn| Ok::<_, AccountError>(users::count(conn)?))
            .await
    }

    /// An administrator ends every session of `target` and cuts off its tokens.
    pub async fn revoke_all_sessions(
        &self,
        admin: &AdminActor,
        target: UserId,
        meta: &RequestMeta,
    ) -> Result<usize, AccountError> {
        let audit_event = AuditEvent::of_request("admin.sessions_revoked", Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(target.to_string());
        self.end_every_session(target, audit_event, "revoked_by_admin")
            .await
    }

    /// An administrator sets an account's role and attributes. A role change ends
    /// the account's sessions: tokens carry the role, and must not outlive it.
    pub async fn set_role_and_attributes(
        &self,
        admin: &AdminActor,
        target: UserId,
        role: Role,
        attributes: Map<String, Value>,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let audit = self.audit.clone();
        if admin.user_id() == Some(target) && role != Role::Admin {
            return Err(AccountError::Validation(vec![FieldError::rule(
                "role",
                "self_demotion",
                "an administrator cannot remove their own administrator role",
            )]));
        }
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = AuditEvent::of_request("admin.user_updated", Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(target.to_string())
            .with_detail("role", role.as_str())
            .with_detail("attributes", Value::Object(attributes.clone()));
        let after_ended = self.after_sessions_ended(target, now, until);
        let profiles = self.profiles.clone();
        let ended = self
            .db
            .write_then(
                move |tx| {
                    let before = users::find(tx, target)?.ok_or(AccountError::UserNotFound)?;
                    users::set_role_and_attributes(tx, target, role, &attributes, now)?;
                    let role_changed = before.role != role;
                    let ended = if role_changed {
                        end_all_sessions(tx, target, now, until, "role_changed")?
                    } else {
                        Vec::new()
                    };
                    audit.append(
                        tx,
                        &audit_event.with_detail("previous_role", before.role.as_str()),
                    )?;
                    Ok::<_, AccountError>((ended, role_changed))
                },
                move |(ended, role_changed): &(Vec<Uuid>, bool)| {
                    if *role_changed {
                        after_ended(ended);
                    } else {
                        profiles.invalidate(&target);
                    }
                },
            )
            .await;
        ended?;
        self.read_user(target).await
    }

    /// An administrator locks an account: it can no longer sign in, and every
    /// session it has ends. Not one's own.
    pub async fn lock(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        if admin.user_id() == Some(user) {
            return Err(AccountError::CannotLockSelf);
        }
        self.block(admin, user, UserStatus::Locked, "admin.user_locked", meta)
            .await
    }

    /// An administrator disables an account: retired, it can no longer sign in and
    /// its sessions end, but it and what it owns are kept (unlike a delete). Not
    /// one's own.
    pub async fn disable(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        if admin.user_id() == Some(user) {
            return Err(AccountError::CannotRemoveSelf);
        }
        self.block(
            admin,
            user,
            UserStatus::Disabled,
            "admin.user_disabled",
            meta,
        )
        .await
    }

    /// Sets a blocking status and ends every session, in one transaction.
    async fn block(
        &self,
        admin: &AdminActor,
        user: UserId,
        status: UserStatus,
        event: &'static str,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = AuditEvent::of_request(event, Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(user.to_string());
        let reason = format!("{}_by_admin", status.as_str());
        let (blocked, ended) = self
            .db
            .write_then(
                move |tx| {
                    if !users::set_status(tx, user, status, now)? {
                        return Err(AccountError::UserNotFound);
                    }
                    let ended = end_all_sessions(tx, user, now, until, &reason)?;
                    audit.append(tx, &audit_event.with_detail("sessions_ended", ended.len()))?;
                    let blocked = users::find(tx, user)?.ok_or(AccountError::UserNotFound)?;
                    Ok((blocked, ended))
                },
                {
                    let after = self.after_sessions_ended(user, now, until);
                    move |(_, ended): &(User, Vec<Uuid>)| after(ended)
                },
            )
            .await?;
        tracing::info!(
            sessions_ended = ended.len(),
            status = status.as_str(),
            "account blocked by an administrator"
        );
        Ok(blocked)
    }

    /// An administrator turns a disabled account back on.
    pub async fn enable(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        self.reopen(admin, user, "admin.user_enabled", users::enable, meta)
            .await
    }

    /// Lifts a block with `change` (false: no such account to lift it on), audited
    /// as `event`, in one transaction; the profile cache forgets the account.
    async fn reopen(
        &self,
        admin: &AdminActor,
        user: UserId,
        event: &'static str,
        change: fn(&rusqlite::Connection, UserId, i64) -> rusqlite::Result<bool>,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let audit_event = AuditEvent::of_request(event, Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(user.to_string());
        let profiles = self.profiles.clone();
        self.db
            .write_then(
                move |tx| {
                    if !change(tx, user, now)? {
                        return Err(AccountError::UserNotFound);
                    }
                    audit.append(tx, &audit_event)?;
                    users::find(tx, user)?.ok_or(AccountError::UserNotFound)
                },
                move |_| profiles.invalidate(&user),
            )
            .await
    }

    /// An administrator deletes an account and everything it owns — sessions, MFA,
    /// documents, webhooks and their deliveries (the database cascades) — after
    /// ending every session, so its tokens die with it. The audit log keeps the
    /// account's events (and names the e-mail deleted). Not one's own.
    pub async fn delete_by_admin(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        if admin.user_id() == Some(user) {
            return Err(AccountError::CannotRemoveSelf);
        }
        let audit = self.audit.clone();
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = AuditEvent::of_request("admin.user_deleted", Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(user.to_string());
        self.db
            .write_then(
                move |tx| {
                    let gone = users::find(tx, user)?.ok_or(AccountError::UserNotFound)?;
                    let ended = end_all_sessions(tx, user, now, until, "deleted_by_admin")?;
                    users::delete(tx, user)?;
                    audit.append(
                        tx,
                        &audit_event
                            .with_detail("email", gone.email.as_str())
                            .with_detail("sessions_ended", ended.len()),
                    )?;
                    Ok(ended)
                },
                self.after_sessions_ended(user, now, until),
            )
            .await
            .map(|_| ())
    }

    /// An administrator unlocks an account: active again, softlock and failure count
    /// cleared.
    pub async fn unlock(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        self.reopen(admin, user, "admin.user_unlocked", users::unlock, meta)
            .await
    }

    /// An administrator removes a user's factor and backup codes (a lost phone).
    /// Returns whether there was one.
    pub async fn reset_mfa(
        &self,
        admin: &AdminActor,
        target: UserId,
        meta: &RequestMeta,
    ) -> Result<bool, AccountError> {
        let audit = self.audit.clone();
        let audit_event = AuditEvent::of_request("mfa.reset", Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(target.to_string());
        let profiles = self.profiles.clone();
        self.db
            .write_then(
                move |tx| {
                    if users::find(tx, target)?.is_none() {
                        return Err(AccountError::UserNotFound);
                    }
                    let removed = mfa::remove(tx, target)?;
                    audit.append(tx, &audit_event.with_detail("had_mfa", removed))?;
                    Ok(removed)
                },
                move |_| profiles.invalidate(&target),
            )
            .await
    }
}
