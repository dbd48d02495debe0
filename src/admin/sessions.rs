//! Server-side sessions for the admin pages. The cookie carries a random 256-bit id;
//! only its SHA-256 is stored. A session rides on an account session (so the same
//! lockout, logout-all and revocation end it), expires after 30 minutes idle or 12
//! hours in all, and gets a new id at every sign-in. Its CSRF token is derived from
//! the id with a server key, so it needs no storage and no other session can use it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts::service::{AccountError, AccountService, LoginOutcome, TokenPair};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::keys::random_bytes;
use crate::db::{Database, DbError, admin_sessions, sessions, users};
use crate::model::{Role, User, UserId, UserStatus};

pub const COOKIE: &str = "portcullis_admin";
pub const PENDING_COOKIE: &str = "portcullis_admin_mfa";
pub const IDLE_SECONDS: i64 = 30 * 60;
pub const ABSOLUTE_SECONDS: i64 = 12 * 3600;
/// How long a password-checked sign-in waits for its TOTP code.
const PENDING_SECONDS: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum AdminSignInError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("not an administrator")]
    NotAdmin,
    #[error("administrator without MFA")]
    MfaNotSetUp,
    #[error("the sign-in expired")]
    PendingExpired,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(AdminSignInError);

/// What a right password leads to.
pub enum SignIn {
    /// Signed in: the session cookie's value.
    Done(SecretString),
    /// A TOTP code is still owed: the pending cookie's value.
    NeedsCode(SecretString),
}

/// A live admin session, as a page handler sees it.
#[derive(Clone)]
pub struct AdminSession {
    pub user: User,
    pub session_id: Uuid,
    id_hash: String,
    csrf: String,
}

impl AdminSession {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Constant-time comparison with a submitted token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

#[derive(Clone)]
pub struct AdminSessions {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    accounts: AccountService,
    csrf_key: Arc<[u8; 32]>,
    /// Pending sign-ins (password right, code owed), by the hash of their cookie:
    /// the challenge token and whose it is.
    pending: Cache<String, Arc<(SecretString, UserId)>>,
    require_mfa: bool,
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn new_cookie_value() -> Result<SecretString, AdminSignInError> {
    let bytes = random_bytes::<32>().map_err(|e| AdminSignInError::Unexpected(e.into()))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

impl AdminSessions {
    pub fn new(
        db: Database,
        audit: AuditLog,
        clock: Clock,
        accounts: AccountService,
        settings: &Settings,
    ) -> Self {
        let key = Sha256::new()
            .chain_update(b"portcullis-admin-csrf\0")
            .chain_update(settings.jwt.secret.expose_secret().as_bytes())
            .finalize();
        Self {
            db,
            audit,
            clock,
            accounts,
            csrf_key: Arc::new(key.into()),
            pending: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(PENDING_SECONDS))
                .build(),
            require_mfa: settings.admin_require_mfa,
        }
    }

    pub fn require_mfa(&self) -> bool {
        self.require_mfa
    }

    fn csrf_for(&self, id_hash: &str) -> String {
        let token = match Hmac::<Sha256>::new_from_slice(self.csrf_key.as_slice()) {
            Ok(mut mac) => {
                mac.update(id_hash.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length; unreachable, and fail-closed anyway.
            Err(_) => Vec::new(),
        };
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Checks e-mail and password (with every login rule: limits are the caller's,
    /// softlock and MFA the account service's).
    pub async fn sign_in(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<SignIn, AdminSignInError> {
        match self.accounts.login(email, password, meta).await? {
            LoginOutcome::Signed(pair) => self.finish(pair, meta).await.map(SignIn::Done),
            LoginOutcome::MfaRequired(challenge) => {
                let cookie = new_cookie_value()?;
                self.pending.insert(
                    hash(cookie.expose_secret()),
                    Arc::new((SecretString::from(challenge.mfa_token), challenge.user_id)),
                );
                Ok(SignIn::NeedsCode(cookie))
            }
        }
    }

    /// Whose pending sign-in a cookie names, if it is still pending.
    pub fn pending_user(&self, pending_cookie: &str) -> Option<UserId> {
        self.pending.get(&hash(pending_cookie)).map(|p| p.1)
    }

    /// Ends the admin session a cookie names (and its account session), if it is
    /// one: a new sign-in never leaves the previous one alive.
    pub async fn end_by_cookie(
        &self,
        cookie: &str,
        meta: &RequestMeta,
    ) -> Result<(), AdminSignInError> {
        let id_hash = hash(cookie);
        let lookup = id_hash.clone();
        let row = self
            .db
            .read(move |conn| Ok::<_, DbError>(admin_sessions::find(conn, &lookup)?))
            .await?;
        let Some(row) = row.filter(|r| r.ended_at.is_none()) else {
            return Ok(());
        };
        let now = self.clock.now();
        self.db
            .write(move |tx| Ok::<_, DbError>(admin_sessions::end(tx, &id_hash, now)?))
            .await?;
        match self
            .accounts
            .end_session(row.user_id, row.session_id, meta)
            .await
        {
            Ok(()) | Err(AccountError::SessionNotFound) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// The second step: the pending sign-in's code.
    pub async fn sign_in_code(
        &self,
        pending_cookie: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<SecretString, AdminSignInError> {
        let key = hash(pending_cookie);
        let pending = self
            .pending
            .get(&key)
            .ok_or(AdminSignInError::PendingExpired)?;
        let pair = self
            .accounts
            .verify_mfa_login(pending.0.expose_secret(), code, meta)
            .await?;
        self.pending.invalidate(&key);
        self.finish(pair, meta).await
    }

    /// Turns an account session into an admin session — for an active
    /// administrator (with MFA, when required) only; anyone else's account session
    /// is ended at once.
    async fn finish(
        &self,
        pair: TokenPair,
        meta: &RequestMeta,
    ) -> Result<SecretString, AdminSignInError> {
        let session_id = pair.session_id;
        let user = self
            .db
            .read(move |conn| {
                let owner = sessions::find(conn, session_id)?.map(|s| s.user_id);
                Ok::<_, DbError>(match owner {
                    Some(owner) => users::find(conn, owner)?,
                    None => None,
                })
            })
            .await?
            .ok_or(AdminSignInError::NotAdmin)?;
        let refusal = if user.role != Role::Admin {
            Some(AdminSignInError::NotAdmin)
        } else if self.require_mfa && !user.mfa_enabled {
            Some(AdminSignInError::MfaNotSetUp)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.accounts.end_session(user.id, session_id, meta).await?;
            return Err(refusal);
        }
        let cookie = new_cookie_value()?;
        let id_hash = hash(cookie.expose_secret());
        let now = self.clock.now();
        let record = AuditEvent::of_request("admin.signed_in", Outcome::Success, meta)
            .with_actor(user.id.to_string())
            .with_target(session_id.to_string());
        let (user_id, audit) = (user.id, self.audit.clone());
        self.db
            .write(move |tx| {
                admin_sessions::insert(
                    tx,
                    &id_hash,
                    user_id,
                    session_id,
                    now,
                    now + ABSOLUTE_SECONDS,
                )?;
                audit.append(tx, &record)?;
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(cookie)
    }

    /// The session a cookie names, if it is still good: not ended, not idle for 30
    /// minutes, not older than 12 hours, its account session live, and its user
    /// still an active administrator. A good one is marked as seen now.
    pub async fn resume(&self, cookie: &str) -> Result<Option<AdminSession>, DbError> {
        let id_hash = hash(cookie);
        let now = self.clock.now();
        let lookup = id_hash.clone();
        let found = self
            .db
            .read(move |conn| {
                let Some(row) = admin_sessions::find(conn, &lookup)? else {
                    return Ok::<_, DbError>(None);
                };
                let live = sessions::find(conn, row.session_id)?.is_some_and(|s| s.is_live(now));
                let user = users::find(conn, row.user_id)?;
                Ok(Some((row, live, user)))
            })
            .await?;
        let Some((row, live, Some(user))) = found else {
            return Ok(None);
        };
        let good = row.ended_at.is_none()
            && now - row.last_seen_at < IDLE_SECONDS
            && now < row.expires_at
            && live
            && user.role == Role::Admin
            && user.status == UserStatus::Active
            && (!self.require_mfa || user.mfa_enabled);
        if !good {
            return Ok(None);
        }
        let touched = id_hash.clone();
        self.db
            .write(move |tx| Ok::<_, DbError>(admin_sessions::touch(tx, &touched, now)?))
            .await?;
        Ok(Some(AdminSession {
            csrf: self.csrf_for(&id_hash),
            user,
            session_id: row.session_id,
            id_hash,
        }))
    }

    /// Ends the admin session and the account session under it.
    pub async fn sign_out(
        &self,
        session: &AdminSession,
        meta: &RequestMeta,
    ) -> Result<(), AdminSignInError> {
        let (id_hash, now) = (session.id_hash.clone(), self.clock.now());
        self.db
            .write(move |tx| Ok::<_, DbError>(admin_sessions::end(tx, &id_hash, now)?))
            .await?;
        match self
            .accounts
            .end_session(session.user.id, session.session_id, meta)
            .await
        {
            Ok(()) | Err(AccountError::SessionNotFound) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}
