//! The account service. It knows nothing of HTTP; handlers translate. One file per
//! seam: `registration`, `login` (and the failure count that softlocks), `mfa` (setup,
//! the second login step, disabling), `refresh`, `session_ends` (logout, logout-all,
//! listing and ending sessions), `password` (change), `admin` (what administrators
//! do to accounts).
//!
//! Every state change and its audit event commit in one transaction. The in-memory
//! revocation cache and the profile cache are told right after the commit, on the
//! database thread, so a client that disconnects mid-request cannot leave a
//! committed revocation unknown to the cache.

mod admin;
mod login;
mod mfa;
mod password;
mod reauth;
mod refresh;
mod registration;
mod session_ends;

pub use crate::db::sessions::SessionRow;
pub use crate::db::users::{UserCursor, UserOrder};
pub use admin::{UserDetail, UserQuery};
pub use mfa::MfaSetup;
pub(in crate::accounts) use mfa::{Answered, ChallengeAnswer};
pub use password::Caller;
pub use reauth::{Proof, REAUTHENTICATION_SECONDS};
pub(in crate::accounts) use session_ends::PasskeySessions;

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, hasher};
use secrecy::SecretString;
use uuid::Uuid;

use super::password_policy::{self, NewPassword};
use crate::audit::{AuditLog, RequestMeta};
use crate::auth::revocation::RevocationStore;
use crate::auth::tokens::{IssuedToken, TokenError, TokenService};
use crate::auth::{Principal, refresh as refresh_token};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::crypto::secret_box::SecretBox;
use crate::db::revocations::{self, RevocationKind};
use crate::db::sessions;
use crate::db::{Database, users};
use crate::model::{AuthMethod, Email, User, UserId};
use crate::telemetry::metrics::AccountMetrics;
use crate::validation::FieldError;

/// What a successful login, refresh or password change hands out.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: SecretString,
    pub session_id: Uuid,
    pub session_expires_at: i64,
}

impl TokenPair {
    /// The one way a pair is put together: an access token for `session` and the
    /// refresh token that continues it.
    fn new(access: IssuedToken, refresh_token: SecretString, session: &SessionRow) -> Self {
        Self {
            access_token: access.token,
            access_expires_at: access.claims.exp,
            refresh_token,
            session_id: session.id,
            session_expires_at: session.expires_at,
        }
    }
}

/// How a new session was signed in to: the method, and the passkey when one was
/// used (the session ends with that passkey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedInWith {
    pub method: AuthMethod,
    pub passkey: Option<Uuid>,
}

impl From<AuthMethod> for SignedInWith {
    /// A sign-in without a passkey.
    fn from(method: AuthMethod) -> Self {
        Self {
            method,
            passkey: None,
        }
    }
}

impl SignedInWith {
    /// A sign-in with passkey `id`, alone or after the password: `passkey` either
    /// way, since a passkey always verifies its user too.
    pub fn passkey(id: Uuid) -> Self {
        Self {
            method: AuthMethod::Passkey,
            passkey: Some(id),
        }
    }
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
    /// A sensitive change, without the password (and code) again.
    #[error("re-authentication required")]
    ReauthenticationRequired,
    #[error("session not found")]
    SessionNotFound,
    /// The caller's own session ended while its request was under way.
    #[error("session ended")]
    SessionEnded,
    #[error("account no longer exists")]
    AccountGone,
    #[error("no such user")]
    UserNotFound,
    #[error("an administrator cannot lock their own account")]
    CannotLockSelf,
    #[error("an administrator cannot disable or delete their own account")]
    CannotRemoveSelf,
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The database could not store an ending (logout, a session revoked); it is
    /// refused in memory meanwhile, but will not survive a restart.
    #[error("not durable: {0}")]
    NotDurable(anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(AccountError);

impl From<TokenError> for AccountError {
    fn from(error: TokenError) -> Self {
        AccountError::Unexpected(anyhow::anyhow!(error))
    }
}

/// How long a cached account may be served without re-reading it. Every write
/// through this service evicts the entry at once; the bound only limits how stale a
/// change made outside the service (another process) can look.
const PROFILE_CACHE_TTL: Duration = Duration::from_secs(30);
const PROFILE_CACHE_CAPACITY: u64 = 10_000;

#[derive(Clone)]
pub struct AccountService {
    db: Database,
    audit: AuditLog,
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
    /// A refresh token presented again within this many seconds of its rotation gets
    /// the same successor (0: never).
    refresh_grace_seconds: u32,
    rotations: moka::sync::Cache<String, Arc<refresh::Rotation>>,
    /// Failed sign-ins the database could not take yet.
    unrecorded: login::UnrecordedFailures,
    /// Sign-ins, code checks and softlocks.
    metrics: AccountMetrics,
}

/// What an account service is built from.
pub struct AccountParts {
    pub db: Database,
    pub audit: AuditLog,
    pub hasher: PasswordHasher,
    pub tokens: Arc<TokenService>,
    pub revocations: RevocationStore,
    pub clock: Clock,
    pub mfa_box: SecretBox,
    pub metrics: AccountMetrics,
}

impl AccountService {
    pub fn new(parts: AccountParts, settings: &Settings) -> Self {
        let softlock = &settings.rate_limits.softlock;
        Self {
            db: parts.db,
            audit: parts.audit,
            hasher: parts.hasher,
            tokens: parts.tokens,
            revocations: parts.revocations,
            clock: parts.clock,
            session_ttl_seconds: settings.jwt.refresh_token_seconds(),
            softlock_steps: Arc::from(softlock.steps.as_slice()),
            softlock_forget_after_seconds: softlock.forget_after_seconds,
            mfa_box: parts.mfa_box,
            refresh_grace_seconds: settings.jwt.refresh_reuse_grace_seconds,
            unrecorded: login::UnrecordedFailures::new(
                softlock.forget_after_seconds,
                parts.metrics.clone(),
            ),
            metrics: parts.metrics,
            rotations: refresh::grace_cache(settings.jwt.refresh_reuse_grace_seconds),
            profiles: moka::sync::Cache::builder()
                .max_capacity(PROFILE_CACHE_CAPACITY)
                .time_to_live(PROFILE_CACHE_TTL)
                .build_with_hasher(hasher()),
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

    /// The caller's account, from the profile cache when it holds it.
    pub async fn me(&self, principal: &Principal) -> Result<User, AccountError> {
        self.account(principal.user_id).await
    }

    /// An account by id, from the profile cache when it holds it (every write made
    /// through this service evicts it).
    pub async fn account(&self, id: UserId) -> Result<User, AccountError> {
        if let Some(user) = self.profiles.get(&id) {
            return Ok(user);
        }
        let user = self.read_user(id).await?;
        self.profiles.insert(id, user.clone());
        Ok(user)
    }

    /// An account read fresh from the database, not from the profile cache.
    pub(in crate::accounts) async fn read_user(&self, id: UserId) -> Result<User, AccountError> {
        self.db
            .read(move |conn| Ok::<_, AccountError>(users::find(conn, id)?))
            .await?
            .ok_or(AccountError::AccountGone)
    }

    /// A new session row, signed in to as `signed_in` says, and its first refresh
    /// token, not yet stored.
    fn new_session(
        &self,
        user: UserId,
        signed_in: SignedInWith,
        meta: &RequestMeta,
        now: i64,
    ) -> Result<(SessionRow, SecretString), AccountError> {
        let refresh_token =
            refresh_token::new_token().map_err(|e| AccountError::Unexpected(e.into()))?;
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
            auth_method: signed_in.method,
            passkey_id: signed_in.passkey,
        };
        Ok((session, refresh_token))
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
