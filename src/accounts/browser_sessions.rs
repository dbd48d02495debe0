//! Cookie sessions for browsers: the admin pages' and the gate portal's. The cookie
//! carries a random 256-bit id; only its SHA-256 is stored. A session rides on an
//! account session, so the same lockout, logout-all, password change and
//! revocation end it; it expires after its kind's idle and absolute limits and gets
//! a new id at every sign-in. Its CSRF token is derived from the id with a server
//! key, so it needs no storage and no other session can use it.
//!
//! Resuming is on the gate's hot path (every request to every app behind it), so a
//! resumed session is kept in memory: the account session is checked against the
//! revocation store's allow-list, the account against the profile cache, and the
//! last-seen time is written back at most once a minute. Ending a session through
//! here forgets it at once; anything that ends its account session ends it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::cache::{Cache, hasher};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::passkeys::{PasskeyError, PasskeyService, Started};
use super::service::{AccountError, AccountService, Caller, LoginOutcome, MfaSetup};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::auth::revocation::RevocationStore;
use crate::clock::Clock;
use crate::crypto::keys::random_bytes;
use crate::db::browser_sessions::{self, BrowserSessionRow, NewBrowserSession};
use crate::db::{Database, DbError, sessions, users};
use crate::model::{AuthMethod, Role, User, UserId, UserStatus};

/// How long a password-checked sign-in waits for its second factor.
pub const PENDING_SECONDS: u64 = 300;
/// Last-seen times are written back at most this often.
const TOUCH_EVERY_SECONDS: i64 = 60;
const RESUMED_CAPACITY: u64 = 100_000;

/// Which door a session opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// The admin pages: active administrators only (with MFA when required).
    Admin,
    /// The gate portal: any active account.
    Gate,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Admin => "admin",
            SessionKind::Gate => "gate",
        }
    }
}

/// A kind's rules: its timeouts and whether administrators need MFA.
#[derive(Debug, Clone, Copy)]
pub struct SessionRules {
    pub kind: SessionKind,
    pub idle_seconds: i64,
    pub absolute_seconds: i64,
    pub require_mfa: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("not an administrator")]
    NotAdmin,
    #[error("administrator without MFA")]
    MfaNotSetUp,
    #[error("the sign-in expired")]
    PendingExpired,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(SignInError);

/// What a right password leads to.
pub enum SignIn {
    /// Signed in: the session cookie's value.
    Done(SecretString),
    /// A second factor is still owed: the pending cookie's value.
    NeedsCode(SecretString),
    /// An administrator without the MFA that admin sessions require: the password
    /// was right, and a factor must be enrolled before the session starts (the
    /// enrolment cookie's value).
    NeedsEnrolment(SecretString),
}

/// What finishing a sign-in came to.
enum Finished {
    Session(SecretString),
    EnrolmentOwed(SecretString),
}

/// A live browser session, as a handler sees it.
#[derive(Clone)]
pub struct BrowserSession {
    pub user: User,
    pub session_id: Uuid,
    pub signed_in_at: i64,
    /// When it ends at the latest (its absolute limit).
    pub expires_at: i64,
    /// How the account session it rides on was signed in to.
    pub auth_method: AuthMethod,
    id_hash: String,
    csrf: String,
}

impl BrowserSession {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Constant-time comparison with a submitted token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }

    /// What names this session for a later [`BrowserSessions::hand_off`], without
    /// its account or its CSRF token.
    pub fn reference(&self) -> SessionRef {
        SessionRef {
            id_hash: self.id_hash.clone(),
            session_id: self.session_id,
            expires_at: self.expires_at,
        }
    }

    /// The account session under this browser session, as the services that act
    /// for a signed-in caller take it. A browser session holds no access token, so
    /// the token id is nil and the times are the session's own.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.user.id,
            session_id: self.session_id,
            role: self.user.role,
            token_id: Uuid::nil(),
            issued_at: self.signed_in_at,
            expires_at: self.signed_in_at,
            auth_method: self.auth_method,
        }
    }
}

/// A browser session named for a handoff (see [`BrowserSession::reference`]).
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub(crate) id_hash: String,
    pub(crate) session_id: Uuid,
    /// When the session ends at the latest.
    pub expires_at: i64,
}

/// Where a session is being used.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// Its own pages (the portal's, the admin pages'): never a handed-off session.
    Own,
    /// An app host behind the gate (name, port): a handed-off session only there.
    AppHost(&'a str, u16),
}

/// A stored session as memory keeps it between requests.
struct Resumed {
    row: BrowserSessionRow,
    last_seen: AtomicI64,
    last_written: AtomicI64,
}

#[derive(Clone)]
pub struct BrowserSessions {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    accounts: AccountService,
    passkeys: PasskeyService,
    revocations: RevocationStore,
    rules: SessionRules,
    csrf_key: Arc<[u8; 32]>,
    /// Pending sign-ins (password right, code owed), by the hash of their cookie:
    /// the challenge token and whose it is.
    pending: Cache<String, Arc<(SecretString, UserId)>>,
    /// Sessions resumed lately, by the hash of their cookie.
    resumed: Cache<String, Arc<Resumed>>,
    /// Sign-ins owing an MFA enrolment, by the hash of their cookie: the account
    /// session they ride on and whose it is.
    enrolling: Cache<String, (Uuid, UserId)>,
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn new_cookie_value() -> Result<SecretString, SignInError> {
    let bytes = random_bytes::<32>().map_err(|e| SignInError::Unexpected(e.into()))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

/// The services a session store works with.
pub struct SessionParts {
    pub db: Database,
    pub audit: AuditLog,
    pub clock: Clock,
    pub accounts: AccountService,
    pub passkeys: PasskeyService,
    pub revocations: RevocationStore,
}

impl BrowserSessions {
    /// `server_key` (the JWT secret) seeds the CSRF key, separately per kind.
    pub fn new(parts: SessionParts, rules: SessionRules, server_key: &SecretString) -> Self {
        let key = Sha256::new()
            .chain_update(b"portcullis-csrf\0")
            .chain_update(rules.kind.as_str().as_bytes())
            .chain_update(b"\0")
            .chain_update(server_key.expose_secret().as_bytes())
            .finalize();
        Self {
            db: parts.db,
            audit: parts.audit,
            clock: parts.clock,
            accounts: parts.accounts,
            passkeys: parts.passkeys,
            revocations: parts.revocations,
            rules,
            csrf_key: Arc::new(key.into()),
            pending: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(PENDING_SECONDS))
                .build_with_hasher(hasher()),
            enrolling: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(PENDING_SECONDS))
                .build_with_hasher(hasher()),
            resumed: moka::sync::Cache::builder()
                .max_capacity(RESUMED_CAPACITY)
                .time_to_idle(Duration::from_secs(
                    u64::try_from(rules.idle_seconds).unwrap_or(60).max(1),
                ))
                .build_with_hasher(hasher()),
        }
    }

    pub fn rules(&self) -> SessionRules {
        self.rules
    }

    pub fn require_mfa(&self) -> bool {
        self.rules.require_mfa
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

    /// Why `user`, signed in with `method`, may not hold a session of this kind, if
    /// they may not. A passkey sign-in is multi-factor by itself, so it meets
    /// `ADMIN_REQUIRE_MFA` without a TOTP factor.
    fn refusal(&self, user: &User, method: AuthMethod) -> Option<SignInError> {
        if user.status != UserStatus::Active {
            return Some(SignInError::Account(AccountError::InvalidCredentials));
        }
        match self.rules.kind {
            SessionKind::Gate => None,
            SessionKind::Admin if user.role != Role::Admin => Some(SignInError::NotAdmin),
            SessionKind::Admin
                if self.rules.require_mfa && !user.mfa_enabled && !method.is_multi_factor() =>
            {
                Some(SignInError::MfaNotSetUp)
            }
            SessionKind::Admin => None,
        }
    }

    /// Checks e-mail and password (with every login rule: limits are the caller's,
    /// softlock and MFA the account service's).
    pub async fn sign_in(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<SignIn, SignInError> {
        match self.accounts.login(email, password, meta).await? {
            LoginOutcome::Signed(pair) => match self.finish(pair.session_id, meta).await? {
                Finished::Session(cookie) => Ok(SignIn::Done(cookie)),
                Finished::EnrolmentOwed(cookie) => Ok(SignIn::NeedsEnrolment(cookie)),
            },
            LoginOutcome::MfaRequired(challenge) => {
                // An account this kind does not admit gets no code step: asking for
                // a code would tell that the password was right.
                match self.accounts.account(challenge.user_id).await {
                    Ok(user) => {
                        let method = AuthMethod::of_password_sign_in(user.mfa_enabled);
                        if let Some(refusal) = self.refusal(&user, method) {
                            self.audit_refusal(&user, &refusal, meta).await;
                            return Err(refusal);
                        }
                    }
                    Err(AccountError::AccountGone) => {
                        return Err(SignInError::Account(AccountError::InvalidCredentials));
                    }
                    Err(other) => return Err(SignInError::Unexpected(anyhow::Error::new(other))),
                }
                let cookie = new_cookie_value()?;
                self.pending.insert(
                    hash(cookie.expose_secret()),
                    Arc::new((SecretString::from(challenge.mfa_token), challenge.user_id)),
                );
                Ok(SignIn::NeedsCode(cookie))
            }
        }
    }

    /// Whose sign-in an enrolment cookie names, if it still waits for one.
    pub fn enrolling_user(&self, enrolment_cookie: &str) -> Option<UserId> {
        self.enrolling.get(&hash(enrolment_cookie)).map(|e| e.1)
    }

    /// The account of a live, unrevoked account session, and how that session was
    /// signed in to, if it is one.
    async fn live_session_account(
        &self,
        session_id: Uuid,
    ) -> Result<Option<(User, AuthMethod)>, SignInError> {
        let now = self.clock.now();
        let found = self
            .db
            .read(move |conn| {
                let Some(session) = sessions::find(conn, session_id)?.filter(|s| s.is_live(now))
                else {
                    return Ok::<_, DbError>(None);
                };
                Ok(users::find(conn, session.user_id)?.map(|user| (session, user)))
            })
            .await?;
        let Some((session, user)) = found else {
            return Ok(None);
        };
        let refused = self
            .revocations
            .is_session_refused(user.id, session.id, session.created_at)
            .await
            .map_err(|e| SignInError::Unexpected(e.into()))?;
        Ok((!refused).then_some((user, session.auth_method)))
    }

    /// The enrolment a cookie names, while its account session is still live and
    /// its account still one that may enrol here (an active administrator).
    async fn enrolment(&self, enrolment_cookie: &str) -> Result<(Uuid, UserId), SignInError> {
        let key = hash(enrolment_cookie);
        let (session_id, user) = self
            .enrolling
            .get(&key)
            .ok_or(SignInError::PendingExpired)?;
        let holds = match self.live_session_account(session_id).await? {
            Some((account, method)) => {
                account.id == user
                    && matches!(
                        self.refusal(&account, method),
                        None | Some(SignInError::MfaNotSetUp)
                    )
            }
            None => false,
        };
        if !holds {
            self.enrolling.invalidate(&key);
            return Err(SignInError::PendingExpired);
        }
        Ok((session_id, user))
    }

    /// A fresh authenticator secret for the account an enrolment cookie names.
    pub async fn enrolment_setup(
        &self,
        enrolment_cookie: &str,
        meta: &RequestMeta,
    ) -> Result<MfaSetup, SignInError> {
        let (_, user) = self.enrolment(enrolment_cookie).await?;
        Ok(self.accounts.setup_mfa(user, meta).await?)
    }

    /// Turns MFA on with a code from the secret just set up, then starts the
    /// session: the backup codes (to show this once) and the session cookie.
    pub async fn enrolment_finish(
        &self,
        enrolment_cookie: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(Vec<SecretString>, SecretString), SignInError> {
        let key = hash(enrolment_cookie);
        let (session_id, user) = self.enrolment(enrolment_cookie).await?;
        let codes = self.accounts.enable_mfa(user, code, meta).await?;
        self.enrolling.invalidate(&key);
        match self.finish(session_id, meta).await? {
            Finished::Session(cookie) => Ok((codes, cookie)),
            Finished::EnrolmentOwed(_) => Err(SignInError::MfaNotSetUp),
        }
    }

    /// Whose pending sign-in a cookie names, if it is still pending.
    pub fn pending_user(&self, pending_cookie: &str) -> Option<UserId> {
        self.pending.get(&hash(pending_cookie)).map(|p| p.1)
    }

    /// The second step: the pending sign-in's TOTP or backup code.
    pub async fn sign_in_code(
        &self,
        pending_cookie: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        let key = hash(pending_cookie);
        let pending = self.pending.get(&key).ok_or(SignInError::PendingExpired)?;
        let pair = self
            .accounts
            .verify_mfa_login(pending.0.expose_secret(), code, meta)
            .await?;
        self.pending.invalidate(&key);
        self.multi_factor_session(pair.session_id, meta).await
    }

    /// The browser session of an account session that proved more than a
    /// password (a code, a passkey), so no enrolment is owed.
    async fn multi_factor_session(
        &self,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        match self.finish(session_id, meta).await? {
            Finished::Session(cookie) => Ok(cookie),
            // Multi-factor already, so none is owed: unreachable.
            Finished::EnrolmentOwed(_) => Err(SignInError::MfaNotSetUp),
        }
    }

    /// Whether the pending sign-in's account could answer its MFA challenge with
    /// a passkey (passkeys are on, and it has one in use).
    pub async fn pending_has_passkey(&self, pending_cookie: &str) -> Result<bool, SignInError> {
        match self.pending_user(pending_cookie) {
            Some(user) => Ok(self.passkeys.can_answer_mfa(user).await?),
            None => Ok(false),
        }
    }

    /// Options for answering the pending sign-in's MFA challenge with one of the
    /// account's passkeys instead of a code.
    pub async fn start_passkey_code(
        &self,
        pending_cookie: &str,
    ) -> Result<Started<RequestChallengeResponse>, SignInError> {
        let pending = self
            .pending
            .get(&hash(pending_cookie))
            .ok_or(SignInError::PendingExpired)?;
        Ok(self
            .passkeys
            .start_second_factor(pending.0.expose_secret())
            .await?)
    }

    /// The second step answered with a passkey (ceremony `ceremony`, started by
    /// [`BrowserSessions::start_passkey_code`]) instead of a code.
    pub async fn sign_in_passkey_code(
        &self,
        pending_cookie: &str,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        let key = hash(pending_cookie);
        let pending = self.pending.get(&key).ok_or(SignInError::PendingExpired)?;
        let pair = self
            .passkeys
            .finish_second_factor(pending.0.expose_secret(), ceremony, credential, meta)
            .await?;
        self.pending.invalidate(&key);
        self.multi_factor_session(pair.session_id, meta).await
    }

    /// Signs in with a passkey alone (the passkey service checks the answer to its
    /// sign-in ceremony `ceremony`, with every limit and refusal of a password
    /// sign-in) and opens a session of this kind, signed in to with `passkey`:
    /// the session cookie's value.
    pub async fn sign_in_passkey(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        let pair = self
            .passkeys
            .finish_sign_in(ceremony, credential, meta)
            .await?;
        self.multi_factor_session(pair.session_id, meta).await
    }

    /// Turns an account session into a browser session of this kind — for an
    /// account this kind admits only; anyone else's account session is ended at
    /// once.
    async fn finish(&self, session_id: Uuid, meta: &RequestMeta) -> Result<Finished, SignInError> {
        // Only a live, unrevoked account session becomes a browser session: one
        // ended meanwhile (logout-all, a password change, a lock) is a sign-in to
        // start again.
        let Some((user, method)) = self.live_session_account(session_id).await? else {
            return Err(SignInError::PendingExpired);
        };
        let refusal = self.refusal(&user, method);
        if let Some(SignInError::MfaNotSetUp) = refusal {
            // The account session waits (five minutes at most) for the enrolment.
            let cookie = new_cookie_value()?;
            self.enrolling
                .insert(hash(cookie.expose_secret()), (session_id, user.id));
            return Ok(Finished::EnrolmentOwed(cookie));
        }
        if let Some(refusal) = refusal {
            match self.accounts.end_session(user.id, session_id, meta).await {
                Ok(()) | Err(AccountError::SessionNotFound) => {}
                Err(other) => return Err(other.into()),
            }
            self.audit_refusal(&user, &refusal, meta).await;
            return Err(refusal);
        }
        let cookie = new_cookie_value()?;
        let id_hash = hash(cookie.expose_secret());
        let now = self.clock.now();
        let record = AuditEvent::of_request(
            match self.rules.kind {
                SessionKind::Admin => "admin.signed_in",
                SessionKind::Gate => "gate.signed_in",
            },
            Outcome::Success,
            meta,
        )
        .with_actor(user.id.to_string())
        .with_target(session_id.to_string());
        let (kind, expires_at) = (self.rules.kind.as_str(), now + self.rules.absolute_seconds);
        let (user_id, audit) = (user.id, self.audit.clone());
        self.db
            .write(move |tx| {
                browser_sessions::insert(
                    tx,
                    &NewBrowserSession {
                        id_hash: &id_hash,
                        kind,
                        user: user_id,
                        session: session_id,
                        now,
                        expires_at,
                        host: None,
                    },
                )?;
                audit.append(tx, &record)?;
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(Finished::Session(cookie))
    }

    /// A new session of this kind for another host, on `source`'s account session:
    /// the gate's handoff (see `crate::gate::handoff`). `source` must still be good
    /// (it is resumed again here); the new session ends when `source` would at the
    /// latest, and with the account session, so signing out anywhere ends both.
    ///
    /// The new session is good on `host` (name, port) alone: a code that reached
    /// another host than the one it was minted for opens nothing but that host.
    pub async fn hand_off(
        &self,
        source: &SessionRef,
        host: (&str, u16),
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        let still = self
            .resume_hashed(&source.id_hash, Place::Own)
            .await
            .map_err(|e| SignInError::Unexpected(e.into()))?;
        let Some((row, user)) = still.filter(|(row, _)| row.session_id == source.session_id) else {
            return Err(SignInError::PendingExpired);
        };
        let cookie = new_cookie_value()?;
        let id_hash = hash(cookie.expose_secret());
        let now = self.clock.now();
        let record = AuditEvent::of_request("gate.handed_off", Outcome::Success, meta)
            .with_actor(user.id.to_string())
            .with_target(row.session_id.to_string())
            .with_detail("host", format!("{}:{}", host.0, host.1));
        let (kind, audit) = (self.rules.kind.as_str(), self.audit.clone());
        let host = format!("{}:{}", host.0, host.1);
        self.db
            .write(move |tx| {
                browser_sessions::insert(
                    tx,
                    &NewBrowserSession {
                        id_hash: &id_hash,
                        kind,
                        user: row.user_id,
                        session: row.session_id,
                        now,
                        expires_at: row.expires_at,
                        host: Some(&host),
                    },
                )?;
                audit.append(tx, &record)?;
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(cookie)
    }

    /// Changes the password of `session`'s account: every session of the account
    /// ends, this one too, and a new browser session of this kind starts on a
    /// fresh account session. Returns the new session's cookie value.
    pub async fn change_password(
        &self,
        session: &BrowserSession,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<SecretString, SignInError> {
        let pair = self
            .accounts
            .change_password_of(
                session.user.id,
                Caller {
                    token: None,
                    session: session.session_id,
                    proved: session.auth_method,
                },
                current,
                new,
                meta,
            )
            .await?;
        self.resumed.invalidate(&session.id_hash);
        match self.finish(pair.session_id, meta).await? {
            Finished::Session(cookie) => Ok(cookie),
            Finished::EnrolmentOwed(_) => Err(SignInError::MfaNotSetUp),
        }
    }

    /// Records why an account that knew its password was not let in (the page
    /// answers as for a wrong password). A failure to record it is logged; the
    /// answer stays a refusal.
    async fn audit_refusal(&self, user: &User, refusal: &SignInError, meta: &RequestMeta) {
        let reason = match refusal {
            SignInError::NotAdmin => "not_admin",
            SignInError::MfaNotSetUp => "mfa_not_set_up",
            _ => "account_not_active",
        };
        let record = AuditEvent::of_request(
            match self.rules.kind {
                SessionKind::Admin => "admin.sign_in_refused",
                SessionKind::Gate => "gate.sign_in_refused",
            },
            Outcome::Denied,
            meta,
        )
        .with_actor(user.id.to_string())
        .with_detail("reason", reason);
        if let Err(error) = self.audit.record(record).await {
            tracing::error!(%error, "could not audit a refused sign-in");
        }
    }

    /// The stored session a cookie hash names, from memory when resumed lately.
    async fn stored(&self, id_hash: &str) -> Result<Option<Arc<Resumed>>, DbError> {
        if let Some(resumed) = self.resumed.get(id_hash) {
            return Ok(Some(resumed));
        }
        let (kind, lookup) = (self.rules.kind.as_str(), id_hash.to_owned());
        let row = self
            .db
            .read(move |conn| Ok::<_, DbError>(browser_sessions::find(conn, kind, &lookup)?))
            .await?;
        Ok(row.filter(|r| r.ended_at.is_none()).map(|row| {
            let resumed = Arc::new(Resumed {
                last_seen: AtomicI64::new(row.last_seen_at),
                last_written: AtomicI64::new(row.last_seen_at),
                row,
            });
            self.resumed
                .insert(id_hash.to_owned(), Arc::clone(&resumed));
            resumed
        }))
    }

    /// The session a cookie names, if it is still good: not ended, not idle too
    /// long, not past its absolute limit, its account session live and unrevoked,
    /// and its account still one this kind admits. A good one is marked as seen.
    /// A store that cannot answer is an error, never a session.
    pub async fn resume(&self, cookie: &str) -> Result<Option<BrowserSession>, ResumeError> {
        let id_hash = hash(cookie);
        Ok(self
            .resume_hashed(&id_hash, Place::Own)
            .await?
            .map(|(row, user)| BrowserSession {
                csrf: self.csrf_for(&id_hash),
                user,
                session_id: row.session_id,
                auth_method: row.auth_method,
                signed_in_at: row.created_at,
                expires_at: row.expires_at,
                id_hash,
            }))
    }

    /// The account a cookie's session is signed in as, and how, by the same rules
    /// as [`BrowserSessions::resume`] — for the gate, which asks on every request
    /// to every app and has no form to protect (no CSRF token is made). `host` is
    /// the app's name and port: a handed-off session is good on its own host alone.
    pub async fn resume_account(
        &self,
        cookie: &str,
        host: (&str, u16),
    ) -> Result<Option<(User, AuthMethod)>, ResumeError> {
        Ok(self
            .resume_hashed(&hash(cookie), Place::AppHost(host.0, host.1))
            .await?
            .map(|(row, user)| (user, row.auth_method)))
    }

    async fn resume_hashed(
        &self,
        id_hash: &str,
        place: Place<'_>,
    ) -> Result<Option<(BrowserSessionRow, User)>, ResumeError> {
        let now = self.clock.now();
        let Some(resumed) = self.stored(id_hash).await? else {
            return Ok(None);
        };
        let in_place = match (&resumed.row.host, place) {
            (None, _) => true,
            (Some(own), Place::AppHost(name, port)) => {
                own.rsplit_once(':').is_some_and(|(own_name, own_port)| {
                    own_name == name && own_port.parse() == Ok(port)
                })
            }
            (Some(_), Place::Own) => false,
        };
        if !in_place {
            return Ok(None);
        }
        let row = &resumed.row;
        let fresh = now - resumed.last_seen.load(Ordering::Relaxed) < self.rules.idle_seconds
            && now < row.expires_at;
        if !fresh {
            self.resumed.invalidate(id_hash);
            return Ok(None);
        }
        if self
            .revocations
            .is_session_refused(row.user_id, row.session_id, row.created_at)
            .await?
        {
            self.resumed.invalidate(id_hash);
            return Ok(None);
        }
        let user = match self.accounts.account(row.user_id).await {
            Ok(user) => user,
            Err(AccountError::AccountGone) => return Ok(None),
            Err(other) => return Err(ResumeError::Unexpected(anyhow::Error::new(other))),
        };
        if self.refusal(&user, row.auth_method).is_some() {
            return Ok(None);
        }
        resumed.last_seen.fetch_max(now, Ordering::Relaxed);
        let written = resumed.last_written.load(Ordering::Relaxed);
        if now - written >= TOUCH_EVERY_SECONDS
            && resumed
                .last_written
                .compare_exchange(written, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let touched = id_hash.to_owned();
            self.db
                .write(move |tx| Ok::<_, DbError>(browser_sessions::touch(tx, &touched, now)?))
                .await?;
        }
        Ok(Some((row.clone(), user)))
    }

    /// Ends the session a cookie names (and its account session), if it is one: a
    /// new sign-in never leaves the previous one alive.
    /// A session the gate handed to an app host is not ended here: its cookie
    /// belongs to that host, and whoever holds it elsewhere must not end the
    /// account session under it (every session of the visitor's).
    pub async fn end_by_cookie(&self, cookie: &str, meta: &RequestMeta) -> Result<(), SignInError> {
        let id_hash = hash(cookie);
        match self.stored(&id_hash).await? {
            Some(resumed) if resumed.row.host.is_none() => {
                let row = resumed.row.clone();
                self.end(&id_hash, row.user_id, row.session_id, meta).await
            }
            _ => Ok(()),
        }
    }

    /// Ends the session and the account session under it.
    pub async fn sign_out(
        &self,
        session: &BrowserSession,
        meta: &RequestMeta,
    ) -> Result<(), SignInError> {
        self.end(&session.id_hash, session.user.id, session.session_id, meta)
            .await
    }

    /// The account session is ended first: it is refused in memory even when its
    /// write fails (deny more, never less), and a browser session whose account
    /// session is refused is never resumed — so a sign-out during a write outage
    /// still closes every door at once, and answers the error.
    async fn end(
        &self,
        id_hash: &str,
        user: UserId,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), SignInError> {
        self.resumed.invalidate(id_hash);
        let account_session = match self.accounts.end_session(user, session_id, meta).await {
            Ok(()) | Err(AccountError::SessionNotFound) => Ok(()),
            Err(other) => Err(SignInError::from(other)),
        };
        let (ended, now) = (id_hash.to_owned(), self.clock.now());
        self.db
            .write(move |tx| Ok::<_, DbError>(browser_sessions::end(tx, &ended, now)?))
            .await?;
        account_session
    }
}

/// Why a session could not be resumed: the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Revocations(#[from] crate::auth::revocation::RevocationUnavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(ResumeError);
