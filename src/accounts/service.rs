//! The account service: registration, login, refresh-token rotation, logout,
//! password change and sessions. It knows nothing of HTTP; handlers translate.
//!
//! Every state change and its audit event commit in one transaction. The in-memory
//! revocation cache is told right after the commit, on the database thread, so a
//! client that disconnects mid-request cannot leave a committed revocation
//! unknown to the cache.

mod mfa;

pub use mfa::MfaSetup;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::password_policy::{self, NewPassword};
use super::{Email, Role, User, UserId, UserStatus};
use crate::audit::{self, AuditEvent, Outcome};
use crate::auth::revocation::RevocationStore;
use crate::auth::tokens::{LEEWAY_SECONDS, TokenError, TokenService};
use crate::auth::{Principal, refresh};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::password::{PasswordError, PasswordHasher, Verification};
use crate::crypto::secret_box::SecretBox;
use crate::db::revocations::{self, RevocationKind};
use crate::db::sessions::{self, SessionRow};
use crate::db::{Database, DbError, refresh_tokens, users};
use crate::error::{ApiError, FieldError};

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// What a successful login, refresh or password change hands out.
pub struct TokenPair {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: SecretString,
    pub session_id: Uuid,
    pub session_expires_at: i64,
}

/// What a right password leads to: tokens, or — for an account with MFA — a
/// challenge to answer at `verify-login`.
pub enum LoginOutcome {
    Signed(TokenPair),
    MfaRequired(MfaChallenge),
}

/// A short-lived `typ: mfa` token, useless as an access token.
pub struct MfaChallenge {
    pub mfa_token: String,
    pub expires_at: i64,
    /// Whose challenge it is (for per-account limits).
    pub user_id: UserId,
}

/// A live session as its owner sees it.
pub struct SessionInfo {
    pub session: SessionRow,
    pub current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("e-mail already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("invalid or used MFA challenge token")]
    InvalidMfaToken,
    #[error("invalid MFA code")]
    InvalidMfaCode,
    #[error("MFA is already enabled")]
    MfaAlreadyEnabled,
    #[error("no MFA setup is pending")]
    MfaNotPending,
    #[error("MFA is not enabled")]
    MfaNotEnabled,
    #[error("account temporarily locked after failed attempts")]
    TemporarilyLocked,
    #[error("current password incorrect")]
    WrongCurrentPassword,
    #[error("session not found")]
    SessionNotFound,
    #[error("account no longer exists")]
    AccountGone,
    #[error("no such user")]
    UserNotFound,
    #[error("an administrator cannot lock their own account")]
    CannotLockSelf,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for AccountError {
    fn from(error: rusqlite::Error) -> Self {
        AccountError::Database(DbError::Sqlite(error))
    }
}

impl From<TokenError> for AccountError {
    fn from(error: TokenError) -> Self {
        AccountError::Unexpected(anyhow::anyhow!(error))
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Validation(errors) => ApiError::Validation(errors),
            AccountError::EmailTaken => {
                ApiError::Conflict("An account with this e-mail address already exists.")
            }
            AccountError::InvalidCredentials => ApiError::Unauthorized("Invalid email or password"),
            AccountError::InvalidRefreshToken => ApiError::Unauthorized("Invalid refresh token"),
            AccountError::InvalidMfaToken => ApiError::Unauthorized("Invalid token"),
            AccountError::InvalidMfaCode => ApiError::Unauthorized("Invalid authentication code"),
            AccountError::MfaAlreadyEnabled => ApiError::Conflict(
                "MFA is already enabled on this account. Disable it before setting it up again.",
            ),
            AccountError::MfaNotPending => {
                ApiError::Conflict("No MFA setup is pending. Start one at /api/v1/auth/mfa/setup.")
            }
            AccountError::MfaNotEnabled => {
                ApiError::Conflict("MFA is not enabled on this account.")
            }
            AccountError::TemporarilyLocked => {
                ApiError::Forbidden("Too many failed attempts on this account. Try again later.")
            }
            AccountError::WrongCurrentPassword => ApiError::Validation(vec![FieldError::rule(
                "current_password",
                "incorrect",
                "is not your current password",
            )]),
            AccountError::SessionNotFound => ApiError::NotFound,
            AccountError::AccountGone => ApiError::Unauthorized("Token revoked"),
            AccountError::UserNotFound => ApiError::NotFound,
            AccountError::CannotLockSelf => {
                ApiError::Conflict("An administrator cannot lock their own account.")
            }
            AccountError::Password(PasswordError::Busy {
                retry_after_seconds,
            }) => ApiError::Unavailable {
                reason: "Too many sign-ins are being processed. Please try again shortly.",
                retry_after_seconds: Some(retry_after_seconds),
            },
            AccountError::Password(e) => ApiError::Unexpected(anyhow::anyhow!(e)),
            AccountError::Database(e) => ApiError::Unexpected(anyhow::anyhow!(e)),
            AccountError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

/// The outcome of presenting a refresh token, decided inside one transaction.
enum RefreshOutcome {
    Rotated(TokenPair),
    Refused,
    Reused { session_id: Uuid },
}

/// How long a cached account may be served without re-reading it. Every write
/// through this service evicts the entry at once; the bound only limits how stale a
/// change made outside the service (another process) can look.
const PROFILE_CACHE_TTL: Duration = Duration::from_secs(30);
const PROFILE_CACHE_CAPACITY: u64 = 10_000;

#[derive(Clone)]
pub struct AccountService {
    db: Database,
    hasher: PasswordHasher,
    tokens: Arc<TokenService>,
    revocations: RevocationStore,
    clock: Clock,
    session_ttl_seconds: i64,
    /// Softlock: (consecutive failures, lock seconds), ascending.
    softlock_steps: Arc<[(u32, u32)]>,
    /// A failure this long after the previous one starts the count afresh.
    softlock_forget_after_seconds: u32,
    /// Accounts recently read for `me`: a hot, read-mostly path that would otherwise
    /// pay a database round trip on every call.
    profiles: Cache<UserId, User>,
    /// Seals TOTP secrets (MFA_ENCRYPTION_KEY).
    mfa_box: SecretBox,
}

fn event(name: &str, outcome: Outcome, meta: &RequestMeta) -> AuditEvent {
    let mut event = AuditEvent::new(name, outcome).with_ip(meta.ip);
    if let Some(id) = &meta.request_id {
        event = event.with_request_id(id.clone());
    }
    event
}

/// Records failed sign-in steps (a wrong password, a wrong or replayed code) inside
/// the caller's transaction, so a check and the failure it causes commit together:
/// concurrent guesses cannot all be checked before the first one is counted.
struct FailureRecorder {
    steps: Arc<[(u32, u32)]>,
    forget_after: i64,
    now: i64,
    meta: RequestMeta,
}

impl FailureRecorder {
    /// Audits the failure and, when `counts`, adds it to the account's consecutive
    /// failures, which may softlock it (audited as `auth.account_locked`).
    fn record(
        &self,
        tx: &rusqlite::Connection,
        reason: &str,
        email: Option<&Email>,
        user: Option<UserId>,
        counts: bool,
    ) -> Result<(), AccountError> {
        let mut failed =
            event("auth.login_failed", Outcome::Failure, &self.meta).with_detail("reason", reason);
        match (user, email) {
            (Some(user), _) => failed = failed.with_target(user.to_string()),
            (None, Some(email)) => failed = failed.with_detail("email", email.as_str()),
            (None, None) => {}
        }
        audit::append(tx, &failed)?;
        if let (true, Some(user)) = (counts, user)
            && let Some(failures) =
                users::count_failed_login(tx, user, self.now, self.forget_after)?
            && let Some(seconds) = softlock_seconds(&self.steps, failures)
        {
            users::softlock_until(tx, user, self.now + i64::from(seconds))?;
            audit::append(
                tx,
                &event("auth.account_locked", Outcome::Denied, &self.meta)
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

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

impl AccountService {
    pub fn new(
        db: Database,
        hasher: PasswordHasher,
        tokens: Arc<TokenService>,
        revocations: RevocationStore,
        clock: Clock,
        settings: &Settings,
        mfa_box: SecretBox,
    ) -> Self {
        let softlock = &settings.rate_limits.softlock;
        Self {
            db,
            hasher,
            tokens,
            revocations,
            clock,
            session_ttl_seconds: settings.jwt.refresh_token_seconds(),
            softlock_steps: Arc::from(softlock.steps.as_slice()),
            softlock_forget_after_seconds: softlock.forget_after_seconds,
            mfa_box,
            profiles: Cache::builder()
                .max_capacity(PROFILE_CACHE_CAPACITY)
                .time_to_live(PROFILE_CACHE_TTL)
                .build(),
        }
    }

    /// Applies the password policy off the executor (zxcvbn is CPU work).
    pub async fn check_new_password(
        &self,
        password: SecretString,
        email: &Email,
        field: &'static str,
    ) -> Result<NewPassword, AccountError> {
        let email = email.clone();
        tokio::task::spawn_blocking(move || password_policy::check(password, &email, field))
            .await
            .map_err(|_| AccountError::Unexpected(anyhow::anyhow!("password policy task failed")))?
            .map_err(AccountError::Validation)
    }

    /// Self-service registration: always the `user` role, no attributes.
    pub async fn register(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let email = Email::parse(email)
            .map_err(|m| AccountError::Validation(vec![FieldError::new("email", m)]))?;
        let password = self
            .check_new_password(password, &email, "password")
            .await?;
        self.create_user(email, password, Role::User, Map::new(), meta)
            .await
    }

    /// Creates an account (registration, `create-admin`, demo data).
    pub async fn create_user(
        &self,
        email: Email,
        password: NewPassword,
        role: Role,
        attributes: Map<String, Value>,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let password_hash = self.hasher.hash(password.into_secret()).await?;
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            email,
            password_hash,
            role,
            attributes,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
            tokens_valid_after: 0,
            failed_logins: 0,
            locked_until: None,
            mfa_enabled: false,
        };
        let audit_event = event("auth.registered", Outcome::Success, meta)
            .with_actor(user.id.to_string())
            .with_target(user.id.to_string())
            .with_detail("role", role.as_str());
        self.db
            .write(move |tx| {
                if let Err(error) = users::insert(tx, &user) {
                    return Err(if is_unique_violation(&error) {
                        AccountError::EmailTaken
                    } else {
                        error.into()
                    });
                }
                audit::append(tx, &audit_event)?;
                Ok(user)
            })
            .await
    }

    /// Checks credentials and opens a session. Every failure — unknown e-mail, wrong
    /// password, locked or disabled account — costs the same and answers the same;
    /// only the audit log knows which it was.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AccountError> {
        let email = Email::parse(email).ok();
        let user = match email.clone() {
            Some(email) => {
                self.db
                    .read(move |conn| Ok::<_, AccountError>(users::find_by_email(conn, &email)?))
                    .await?
            }
            None => None,
        };
        let verification = self
            .hasher
            .verify(
                password.clone(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        let now = self.clock.now();
        // The password is checked before the account's state is, so every outcome
        // costs the same; during a softlock even the right password is refused.
        let failure = match (&user, verification) {
            (None, _) => Some("unknown_email"),
            (Some(user), _) if user.is_softlocked(now) => Some("softlocked"),
            (Some(_), Verification::Invalid) => Some("wrong_password"),
            (Some(user), _) if user.status != UserStatus::Active => Some(user.status.as_str()),
            _ => None,
        };
        let user = match (user, failure) {
            (Some(user), None) => user,
            (user, failure) => {
                let reason = failure.unwrap_or("unknown_email");
                let counts = reason == "wrong_password";
                return Err(self
                    .login_failed(reason, email, user.map(|u| u.id), counts, meta)
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
                .await?
                .map(LoginOutcome::MfaRequired)
        } else {
            self.open_session(user, upgraded_hash, meta)
                .await?
                .map(LoginOutcome::Signed)
        };
        match outcome {
            Some(outcome) => Ok(outcome),
            // The password or status changed while this login was being checked:
            // what was verified is no longer the account's credential.
            None => Err(self
                .login_failed("changed_during_login", email, Some(user_id), false, meta)
                .await),
        }
    }

    /// Records a failed login and returns the one error every failure answers with.
    async fn login_failed(
        &self,
        reason: &str,
        email: Option<Email>,
        user: Option<UserId>,
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
    /// (audited as `auth.account_locked`).
    async fn record_failure(
        &self,
        reason: &str,
        email: Option<Email>,
        user: Option<UserId>,
        counts: bool,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let failures = self.failures(meta);
        let reason = reason.to_owned();
        self.db
            .write(move |tx| failures.record(tx, &reason, email.as_ref(), user, counts))
            .await
    }

    /// What records failed sign-in steps, for use inside a transaction.
    fn failures(&self, meta: &RequestMeta) -> FailureRecorder {
        FailureRecorder {
            steps: Arc::clone(&self.softlock_steps),
            forget_after: i64::from(self.softlock_forget_after_seconds),
            now: self.clock.now(),
            meta: meta.clone(),
        }
    }

    /// A new session row and its first refresh token, not yet stored.
    fn new_session(
        &self,
        user: UserId,
        meta: &RequestMeta,
        now: i64,
    ) -> Result<(SessionRow, SecretString), AccountError> {
        let refresh_token = refresh::new_token().map_err(|e| AccountError::Unexpected(e.into()))?;
        let session = SessionRow {
            id: Uuid::new_v4(),
            user_id: user,
            family: Uuid::new_v4(),
            ip: meta.ip.map(|ip| ip.to_string()),
            user_agent: meta.user_agent.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.session_ttl_seconds,
            ended_at: None,
        };
        Ok((session, refresh_token))
    }

    /// Opens a session for `verified` — unless its password hash or status changed
    /// since it was read (`None` then). Writes `upgraded_hash` in the same
    /// transaction.
    async fn open_session(
        &self,
        verified: User,
        upgraded_hash: Option<String>,
        meta: &RequestMeta,
    ) -> Result<Option<TokenPair>, AccountError> {
        let now = self.clock.now();
        let (session, refresh_token) = self.new_session(verified.id, meta, now)?;
        let refresh_hash = refresh::hash(&refresh_token);
        let access = self
            .tokens
            .issue_access(verified.id, session.id, verified.role, now)?;
        let audit_event = event("auth.login_succeeded", Outcome::Success, meta)
            .with_actor(verified.id.to_string())
            .with_target(session.id.to_string())
            .with_detail("hash_upgraded", upgraded_hash.is_some());
        let pair = TokenPair {
            access_token: access.token,
            access_expires_at: access.claims.exp,
            refresh_token,
            session_id: session.id,
            session_expires_at: session.expires_at,
        };
        let profiles = self.profiles.clone();
        let user_id = verified.id;
        let opened = self
            .db
            .write_then(
                move |tx| {
                    if !still_as_verified(tx, &verified, now)? {
                        return Ok::<_, AccountError>(false);
                    }
                    sessions::insert(tx, &session)?;
                    refresh_tokens::insert(tx, &refresh_hash, session.id, now)?;
                    users::clear_failed_logins(tx, verified.id)?;
                    if let Some(hash) = &upgraded_hash {
                        users::set_password_hash(tx, verified.id, hash, now)?;
                    }
                    audit::append(tx, &audit_event)?;
                    Ok(true)
                },
                move |_| profiles.invalidate(&user_id),
            )
            .await?;
        Ok(opened.then_some(pair))
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
        let audit_event = event("auth.mfa_challenged", Outcome::Success, meta)
            .with_actor(verified.id.to_string())
            .with_target(issued.claims.sid.to_string());
        let challenge = MfaChallenge {
            mfa_token: issued.token,
            expires_at: issued.claims.exp,
            user_id: verified.id,
        };
        let profiles = self.profiles.clone();
        let user_id = verified.id;
        let current = self
            .db
            .write_then(
                move |tx| {
                    if !still_as_verified(tx, &verified, now)? {
                        return Ok::<_, AccountError>(false);
                    }
                    if let Some(hash) = &upgraded_hash {
                        users::set_password_hash(tx, verified.id, hash, now)?;
                    }
                    audit::append(tx, &audit_event)?;
                    Ok(true)
                },
                move |_| profiles.invalidate(&user_id),
            )
            .await?;
        Ok(current.then_some(challenge))
    }

    /// Exchanges a refresh token for a new pair. A token is good once: presenting a
    /// rotated one again means it was copied, so the whole session ends.
    pub async fn refresh(
        &self,
        token: SecretString,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let now = self.clock.now();
        let presented = refresh::hash(&token);
        let next = refresh::new_token().map_err(|e| AccountError::Unexpected(e.into()))?;
        let next_hash = refresh::hash(&next);
        let tokens = Arc::clone(&self.tokens);
        let until = self.revocations.session_revocation_until(now);
        let meta_in = meta.clone();
        let revocations = self.revocations.clone();
        let outcome = self
            .db
            .write_then(
                move |tx| {
                    let Some(row) = refresh_tokens::find(tx, &presented)? else {
                        return Ok::<_, AccountError>(RefreshOutcome::Refused);
                    };
                    let Some(session) = sessions::find(tx, row.session_id)? else {
                        return Ok(RefreshOutcome::Refused);
                    };
                    if row.rotated_at.is_some()
                        || !refresh_tokens::mark_rotated(tx, &presented, now)?
                    {
                        sessions::end(tx, session.id, now, "refresh_token_reuse")?;
                        revocations::insert(
                            tx,
                            RevocationKind::Session,
                            &session.id.to_string(),
                            until,
                        )?;
                        audit::append(
                            tx,
                            &event("auth.refresh_reuse_detected", Outcome::Denied, &meta_in)
                                .with_actor(session.user_id.to_string())
                                .with_target(session.id.to_string())
                                .with_detail("family", session.family.to_string()),
                        )?;
                        return Ok(RefreshOutcome::Reused {
                            session_id: session.id,
                        });
                    }
                    if !session.is_live(now) {
                        return Ok(RefreshOutcome::Refused);
                    }
                    let user = users::find(tx, session.user_id)?;
                    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
                        sessions::end(tx, session.id, now, "account_inactive")?;
                        return Ok(RefreshOutcome::Refused);
                    };
                    refresh_tokens::insert(tx, &next_hash, session.id, now)?;
                    sessions::touch(
                        tx,
                        session.id,
                        now,
                        meta_in.ip.map(|ip| ip.to_string()).as_deref(),
                        meta_in.user_agent.as_deref(),
                    )?;
                    let access = tokens.issue_access(user.id, session.id, user.role, now)?;
                    Ok(RefreshOutcome::Rotated(TokenPair {
                        access_token: access.token,
                        access_expires_at: access.claims.exp,
                        refresh_token: next,
                        session_id: session.id,
                        session_expires_at: session.expires_at,
                    }))
                },
                move |outcome| {
                    if let RefreshOutcome::Reused { session_id } = outcome {
                        revocations.remember_session(*session_id, until);
                    }
                },
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated(pair) => Ok(pair),
            RefreshOutcome::Refused | RefreshOutcome::Reused { .. } => {
                Err(AccountError::InvalidRefreshToken)
            }
        }
    }

    /// Revokes the calling token (until its expiry) and ends its session.
    pub async fn logout(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        let token_until = principal.expires_at + LEEWAY_SECONDS;
        let session_until = self.revocations.session_revocation_until(now);
        let (jti, sid) = (principal.token_id, principal.session_id);
        let audit_event = event("auth.logout", Outcome::Success, meta)
            .with_actor(principal.user_id.to_string())
            .with_target(sid.to_string());
        let revocations = self.revocations.clone();
        self.db
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
                    audit::append(tx, &audit_event)?;
                    Ok::<_, AccountError>(())
                },
                move |_| {
                    revocations.remember_token(jti, token_until);
                    revocations.remember_session(sid, session_until);
                },
            )
            .await
    }

    /// Ends every session of the caller's account and cuts off every token issued
    /// until now.
    pub async fn logout_all(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<usize, AccountError> {
        let user = principal.user_id;
        let audit_event =
            event("auth.logout_all", Outcome::Success, meta).with_actor(user.to_string());
        self.end_every_session(user, audit_event, "logout_all")
            .await
    }

    /// An administrator ends every session of `target` and cuts off its tokens.
    pub async fn revoke_all_sessions(
        &self,
        admin: UserId,
        target: UserId,
        meta: &RequestMeta,
    ) -> Result<usize, AccountError> {
        let audit_event = event("admin.sessions_revoked", Outcome::Success, meta)
            .with_actor(admin.to_string())
            .with_target(target.to_string());
        self.end_every_session(target, audit_event, "revoked_by_admin")
            .await
    }

    /// Ends every session of `user` (which must exist), moves its cut-off to now,
    /// and records `audit_event` with the number ended — in one transaction.
    async fn end_every_session(
        &self,
        user: UserId,
        audit_event: AuditEvent,
        reason: &'static str,
    ) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let ended = self
            .db
            .write_then(
                move |tx| {
                    if users::find(tx, user)?.is_none() {
                        return Err(AccountError::UserNotFound);
                    }
                    let ended = end_all_sessions(tx, user, now, until, reason)?;
                    audit::append(tx, &audit_event.with_detail("sessions_ended", ended.len()))?;
                    Ok::<_, AccountError>(ended)
                },
                self.after_sessions_ended(user, now, until),
            )
            .await?;
        Ok(ended.len())
    }

    /// An administrator sets an account's role and attributes. A role change ends
    /// the account's sessions: tokens carry the role, and must not outlive it.
    pub async fn set_role_and_attributes(
        &self,
        admin: UserId,
        target: UserId,
        role: Role,
        attributes: Map<String, Value>,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        if admin == target && role != Role::Admin {
            return Err(AccountError::Validation(vec![FieldError::rule(
                "role",
                "self_demotion",
                "an administrator cannot remove their own administrator role",
            )]));
        }
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = event("admin.user_updated", Outcome::Success, meta)
            .with_actor(admin.to_string())
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
                    audit::append(
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

    /// What follows, in memory, a commit that ended sessions and moved the cut-off.
    fn after_sessions_ended(
        &self,
        user: UserId,
        cutoff: i64,
        until: i64,
    ) -> impl FnOnce(&Vec<Uuid>) + Send + 'static {
        let (revocations, profiles) = (self.revocations.clone(), self.profiles.clone());
        move |ended| {
            for sid in ended {
                revocations.remember_session(*sid, until);
            }
            revocations.remember_cutoff(user, cutoff);
            profiles.invalidate(&user);
        }
    }

    pub async fn me(&self, principal: &Principal) -> Result<User, AccountError> {
        let id = principal.user_id;
        if let Some(user) = self.profiles.get(&id) {
            return Ok(user);
        }
        let user = self.read_user(id).await?;
        self.profiles.insert(id, user.clone());
        Ok(user)
    }

    async fn read_user(&self, id: UserId) -> Result<User, AccountError> {
        self.db
            .read(move |conn| Ok::<_, AccountError>(users::find(conn, id)?))
            .await?
            .ok_or(AccountError::AccountGone)
    }

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
        // Read fresh, not from the profile cache: the hash is what is checked.
        let user = self.read_user(principal.user_id).await?;
        let verification = self
            .hasher
            .verify(current.clone(), Some(user.password_hash.clone()))
            .await?;
        if verification == Verification::Invalid {
            let failed = event("auth.password_change_failed", Outcome::Failure, meta)
                .with_actor(user.id.to_string())
                .with_detail("reason", "wrong_current_password");
            self.db.write(move |tx| audit::append(tx, &failed)).await?;
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
        let (session, refresh_token) = self.new_session(user.id, meta, now)?;
        let refresh_hash = refresh::hash(&refresh_token);
        let access = self
            .tokens
            .issue_access(user.id, session.id, user.role, now)?;
        let pair = TokenPair {
            access_token: access.token,
            access_expires_at: access.claims.exp,
            refresh_token,
            session_id: session.id,
            session_expires_at: session.expires_at,
        };
        let (user_id, verified_hash) = (user.id, user.password_hash);
        let (jti, token_until) = (principal.token_id, principal.expires_at + LEEWAY_SECONDS);
        let audit_event = event("auth.password_changed", Outcome::Success, meta)
            .with_actor(user_id.to_string())
            .with_target(session.id.to_string());
        let revocations = self.revocations.clone();
        let after_ended = self.after_sessions_ended(user_id, now, until);
        let changed = self
            .db
            .write_then(
                move |tx| {
                    // Only if the password checked above is still the account's.
                    if !users::replace_password_hash(tx, user_id, &verified_hash, &new_hash, now)? {
                        return Ok::<_, AccountError>(None);
                    }
                    let ended = end_all_sessions(tx, user_id, now, until, "password_changed")?;
                    revocations::insert(tx, RevocationKind::Token, &jti.to_string(), token_until)?;
                    sessions::insert(tx, &session)?;
                    refresh_tokens::insert(tx, &refresh_hash, session.id, now)?;
                    audit::append(tx, &audit_event.with_detail("sessions_ended", ended.len()))?;
                    Ok(Some(ended))
                },
                move |changed| {
                    if let Some(ended) = changed {
                        revocations.remember_token(jti, token_until);
                        after_ended(ended);
                    }
                },
            )
            .await?;
        match changed {
            Some(_) => Ok(pair),
            None => Err(AccountError::WrongCurrentPassword),
        }
    }

    /// An administrator locks an account: it refuses logins, and every session and
    /// token of it ends at once.
    pub async fn lock(
        &self,
        admin: &Principal,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        if admin.user_id == user {
            return Err(AccountError::CannotLockSelf);
        }
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = event("admin.user_locked", Outcome::Success, meta)
            .with_actor(admin.user_id.to_string())
            .with_target(user.to_string());
        let (locked, ended) = self
            .db
            .write_then(
                move |tx| {
                    if !users::set_status(tx, user, UserStatus::Locked, now)? {
                        return Err(AccountError::UserNotFound);
                    }
                    let ended = end_all_sessions(tx, user, now, until, "locked_by_admin")?;
                    audit::append(tx, &audit_event.with_detail("sessions_ended", ended.len()))?;
                    let locked = users::find(tx, user)?.ok_or(AccountError::UserNotFound)?;
                    Ok((locked, ended))
                },
                {
                    let after = self.after_sessions_ended(user, now, until);
                    move |(_, ended): &(User, Vec<Uuid>)| after(ended)
                },
            )
            .await?;
        tracing::info!(
            sessions_ended = ended.len(),
            "account locked by an administrator"
        );
        Ok(locked)
    }

    /// An administrator unlocks an account: active again, softlock and failure count
    /// cleared.
    pub async fn unlock(
        &self,
        admin: &Principal,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let now = self.clock.now();
        let audit_event = event("admin.user_unlocked", Outcome::Success, meta)
            .with_actor(admin.user_id.to_string())
            .with_target(user.to_string());
        let profiles = self.profiles.clone();
        self.db
            .write_then(
                move |tx| {
                    if !users::unlock(tx, user, now)? {
                        return Err(AccountError::UserNotFound);
                    }
                    audit::append(tx, &audit_event)?;
                    users::find(tx, user)?.ok_or(AccountError::UserNotFound)
                },
                move |_| profiles.invalidate(&user),
            )
            .await
    }

    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>, AccountError> {
        let (user, current, now) = (principal.user_id, principal.session_id, self.clock.now());
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
        let now = self.clock.now();
        let until = self.revocations.session_revocation_until(now);
        let audit_event = event("auth.session_revoked", Outcome::Success, meta)
            .with_actor(owner.to_string())
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
                    audit::append(tx, &audit_event)?;
                    Ok(true)
                },
                move |revoked| {
                    if *revoked {
                        revocations.remember_session(session_id, until);
                    }
                },
            )
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(AccountError::SessionNotFound)
        }
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

/// Ends every live session of `user`, records each as revoked until `until`, and
/// moves the user's cut-off to `now`. Returns the sessions ended.
fn end_all_sessions(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    now: i64,
    until: i64,
    reason: &str,
) -> Result<Vec<Uuid>, AccountError> {
    let mut ended = Vec::new();
    for session in sessions::live_for_user(tx, user, now)? {
        sessions::end(tx, session.id, now, reason)?;
        revocations::insert(tx, RevocationKind::Session, &session.id.to_string(), until)?;
        ended.push(session.id);
    }
    users::set_tokens_valid_after(tx, user, now)?;
    Ok(ended)
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
