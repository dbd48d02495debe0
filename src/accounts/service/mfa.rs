//! The account service's MFA flows: setup, enable, disable, the second login step
//! and the administrator's reset.
//!
//! A TOTP code is good once: the factor records the last time step accepted and a
//! compare-and-set refuses that step, or an older one, again (ASVS 2.8.4/2.8.5).
//! Backup codes are single use the same way. Wrong and replayed codes at login or
//! disable count toward the account's softlock like wrong passwords.

use rusqlite::Connection;
use secrecy::{ExposeSecret, SecretString};

use super::login::Failing;
use super::{AccountError, AccountService, SignedInWith, TokenPair};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::auth::mfa::{
    TotpSecret, backup_code_hash, generate_backup_codes, normalize_backup_code, qr_svg_data_url,
};
use crate::auth::tokens::{Claims, LEEWAY_SECONDS, TokenType};
use crate::crypto::password::Verification;
use crate::crypto::secret_box::SecretBox;
use crate::db::revocations::{self, RevocationKind};
use crate::db::{mfa, sessions, users};
use crate::model::{AuthMethod, User, UserId, UserStatus};
use crate::telemetry::metrics::CodeCheckResult;
use crate::validation::FieldError;

/// What a user needs to add the account to an authenticator app. The secret is
/// shown here, during setup, and never again.
pub struct MfaSetup {
    pub secret_base32: SecretString,
    pub otpauth_uri: SecretString,
    /// An SVG `data:` URL of the URI as a QR code.
    pub qr_code: String,
}

/// The result of checking a code against an enabled factor.
pub(super) enum CodeCheck {
    Totp,
    BackupCode {
        remaining: i64,
    },
    Wrong,
    Replayed,
    /// Not checked: the account is softlocked, not active, or without MFA.
    Refused(&'static str),
    /// Not checked: the challenge token was already spent.
    ChallengeSpent,
}

/// An answer to an MFA challenge (a code, a passkey), checked inside the
/// transaction that spends the challenge.
pub(in crate::accounts) trait ChallengeAnswer: Send + 'static {
    fn accepted(&self) -> bool;
    /// Why a refused answer was refused, as `auth.login_failed` records it.
    fn failure_reason(&self) -> &'static str;
    /// Whether a refused answer counts toward the account's softlock.
    fn counts(&self) -> bool;
}

/// What answering an MFA challenge came to.
pub(in crate::accounts) enum Answered<A> {
    /// The challenge was spent already: nothing was checked.
    Spent,
    /// The account may not sign in now (softlocked, not active, MFA off): nothing
    /// was checked.
    Refused(&'static str),
    Checked(A),
}

impl ChallengeAnswer for CodeCheck {
    fn accepted(&self) -> bool {
        matches!(self, CodeCheck::Totp | CodeCheck::BackupCode { .. })
    }

    fn failure_reason(&self) -> &'static str {
        match self {
            CodeCheck::Replayed => "mfa_code_replayed",
            _ => "wrong_mfa_code",
        }
    }

    /// A wrong or replayed code is a guess.
    fn counts(&self) -> bool {
        true
    }
}

impl CodeCheck {
    /// What the check came to, as the metrics count it.
    pub(super) fn result(&self) -> CodeCheckResult {
        match self {
            CodeCheck::Totp => CodeCheckResult::Totp,
            CodeCheck::BackupCode { .. } => CodeCheckResult::BackupCode,
            CodeCheck::Wrong => CodeCheckResult::Wrong,
            CodeCheck::Replayed => CodeCheckResult::Replayed,
            CodeCheck::Refused(_) | CodeCheck::ChallengeSpent => CodeCheckResult::Refused,
        }
    }
}

impl AccountService {
    /// Counts a code check's transaction: what it found, a refusal (no factor to
    /// check, a code in the wrong form), or the storage failing it.
    pub(super) fn count_code_check(&self, checked: Result<&CodeCheck, &AccountError>) {
        self.metrics.code_check(match checked {
            Ok(check) => check.result(),
            Err(AccountError::Unexpected(_) | AccountError::NotDurable(_)) => {
                CodeCheckResult::Error
            }
            Err(_) => CodeCheckResult::Refused,
        });
    }
}

fn unexpected(error: impl std::fmt::Display) -> AccountError {
    AccountError::Unexpected(anyhow::anyhow!("{error}"))
}

/// Opens a stored TOTP secret. A secret no key opens is an error (500), never a
/// pass.
fn open_secret(mfa_box: &SecretBox, stored: &str) -> Result<TotpSecret, AccountError> {
    let opened = mfa_box.open(stored).map_err(unexpected)?;
    TotpSecret::from_base32(opened.plaintext.expose_secret()).map_err(unexpected)
}

/// Checks `code` — a TOTP code or a backup code — against the user's enabled
/// factor, consuming it when it is accepted. Runs inside the caller's transaction,
/// so the consumption commits with whatever the code unlocks.
pub(super) fn check_code(
    tx: &Connection,
    mfa_box: &SecretBox,
    user: UserId,
    code: &str,
    now: i64,
) -> Result<CodeCheck, AccountError> {
    let factor = mfa::find(tx, user)?
        .filter(|f| f.enabled_at.is_some())
        .ok_or(AccountError::MfaNotEnabled)?;
    let trimmed = code.trim();
    if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secret = open_secret(mfa_box, &factor.secret)?;
        let Some(step) = secret.matching_step(trimmed, now) else {
            return Ok(CodeCheck::Wrong);
        };
        let step = i64::try_from(step).map_err(unexpected)?;
        return Ok(if mfa::use_step(tx, user, step)? {
            CodeCheck::Totp
        } else {
            CodeCheck::Replayed
        });
    }
    let Some(canonical) = normalize_backup_code(code) else {
        return Ok(CodeCheck::Wrong);
    };
    let hash = backup_code_hash(user, &canonical);
    if mfa::use_backup_code(tx, user, &hash, now)? {
        Ok(CodeCheck::BackupCode {
            remaining: mfa::unused_backup_codes(tx, user)?,
        })
    } else if mfa::backup_code_was_used(tx, user, &hash)? {
        Ok(CodeCheck::Replayed)
    } else {
        Ok(CodeCheck::Wrong)
    }
}

/// Audits what `check_code` found, in the same transaction.
pub(super) fn audit_code_check(
    audit: &AuditLog,
    tx: &Connection,
    check: &CodeCheck,
    user: UserId,
    meta: &RequestMeta,
    purpose: &str,
) -> Result<(), AccountError> {
    let audit_event = match check {
        CodeCheck::Replayed => AuditEvent::of_request("mfa.replay_rejected", Outcome::Denied, meta),
        CodeCheck::BackupCode { remaining } => {
            AuditEvent::of_request("mfa.backup_code_used", Outcome::Success, meta)
                .with_detail("remaining", *remaining)
        }
        _ => return Ok(()),
    };
    audit.append(
        tx,
        &audit_event
            .with_actor(user.to_string())
            .with_target(user.to_string())
            .with_detail("during", purpose),
    )?;
    Ok(())
}

/// Why the account may not have a code checked right now, read inside the
/// transaction that would check it.
fn refusal(tx: &Connection, user: UserId, now: i64) -> Result<Option<&'static str>, AccountError> {
    Ok(refusal_of(users::find(tx, user)?.as_ref(), now))
}

/// [`refusal`], for the account as the transaction read it (`None`: gone).
fn refusal_of(user: Option<&User>, now: i64) -> Option<&'static str> {
    match user {
        None => Some("account_gone"),
        Some(u) if u.is_softlocked(now) => Some("softlocked"),
        Some(u) if u.status != UserStatus::Active => Some(u.status.as_str()),
        Some(u) if !u.mfa_enabled => Some("mfa_not_enabled"),
        Some(_) => None,
    }
}

/// An MFA challenge token, checked: signed, of type `mfa`, unexpired, and not cut
/// off (a password change, logout-all) when it was checked. Whether it was spent
/// is for the step that spends it to check.
pub(in crate::accounts) struct Challenge {
    claims: Claims,
}

impl Challenge {
    /// Whose challenge it is.
    pub(in crate::accounts) fn user(&self) -> UserId {
        self.claims.sub
    }

    /// The challenge token's id.
    pub(in crate::accounts) fn id(&self) -> uuid::Uuid {
        self.claims.jti
    }
}

pub(super) fn wrong_code_field() -> AccountError {
    AccountError::Validation(vec![FieldError::rule(
        "code",
        "incorrect",
        "is not a valid code from your authenticator app",
    )])
}

impl AccountService {
    /// Starts (or restarts) MFA setup: a fresh secret, stored sealed and pending
    /// until a code from it confirms it.
    pub async fn setup_mfa(
        &self,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<MfaSetup, AccountError> {
        let audit = self.audit.clone();
        let account = self.read_user(user).await?;
        if account.mfa_enabled {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        let secret = TotpSecret::generate().map_err(unexpected)?;
        let base32 = secret.to_base32();
        let sealed = self
            .mfa_box
            .seal(base32.expose_secret().as_bytes())
            .map_err(unexpected)?;
        let otpauth_uri = secret
            .otpauth_uri(account.email.as_str())
            .map_err(unexpected)?;
        let qr_code = qr_svg_data_url(&otpauth_uri).map_err(unexpected)?;
        let now = self.clock.now();
        let audit_event = AuditEvent::of_request("mfa.setup_started", Outcome::Success, meta)
            .with_actor(user.to_string())
            .with_target(user.to_string());
        self.db
            .write(move |tx| {
                if !mfa::put_pending(tx, user, &sealed, now)? {
                    return Err(AccountError::MfaAlreadyEnabled);
                }
                audit.append(tx, &audit_event)?;
                Ok(())
            })
            .await?;
        Ok(MfaSetup {
            secret_base32: base32,
            otpauth_uri,
            qr_code,
        })
    }

    /// Confirms a pending setup with a current code; returns the backup codes, the
    /// only time they are shown. Only their digests are stored.
    pub async fn enable_mfa(
        &self,
        user: UserId,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<SecretString>, AccountError> {
        let audit = self.audit.clone();
        let now = self.clock.now();
        let codes = generate_backup_codes().map_err(unexpected)?;
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| normalize_backup_code(c.expose_secret()))
            .map(|canonical| backup_code_hash(user, &canonical))
            .collect();
        let audit_event = AuditEvent::of_request("mfa.enabled", Outcome::Success, meta)
            .with_actor(user.to_string())
            .with_target(user.to_string());
        let (mfa_box, code) = (self.mfa_box.clone(), code.to_owned());
        let profiles = self.profiles.clone();
        self.db
            .write_then(
                move |tx| {
                    let factor = mfa::find(tx, user)?.ok_or(AccountError::MfaNotPending)?;
                    if factor.enabled_at.is_some() {
                        return Err(AccountError::MfaAlreadyEnabled);
                    }
                    let secret = open_secret(&mfa_box, &factor.secret)?;
                    let step = secret
                        .matching_step(&code, now)
                        .ok_or_else(wrong_code_field)?;
                    let step = i64::try_from(step).map_err(unexpected)?;
                    if !mfa::enable(tx, user, step, now)? {
                        return Err(AccountError::MfaNotPending);
                    }
                    mfa::replace_backup_codes(tx, user, &hashes)?;
                    // A proof made before MFA was on is a password alone: no session
                    // keeps one, so what needs a proof now needs the code too.
                    sessions::forget_reauthentications(tx, user)?;
                    audit.append(tx, &audit_event)?;
                    Ok(())
                },
                move |_| profiles.invalidate(&user),
            )
            .await?;
        Ok(codes)
    }

    /// Turns MFA off after checking the password and a current code (or a backup
    /// code). Wrong answers count toward the softlock, and a softlocked account is
    /// refused outright: a stolen access token alone must not be enough to strip
    /// the second factor, nor to guess at it faster than a login could.
    pub async fn disable_mfa(
        &self,
        principal: &Principal,
        password: SecretString,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let audit = self.audit.clone();
        let user = principal.user_id;
        let account = self.read_user(user).await?;
        if !account.mfa_enabled {
            return Err(AccountError::MfaNotEnabled);
        }
        if account.is_softlocked(self.clock.now()) {
            return Err(AccountError::TemporarilyLocked);
        }
        let failing = Failing::from(&account);
        let verification = self
            .hasher
            .verify(password, Some(account.password_hash))
            .await?;
        if verification == Verification::Invalid {
            self.record_failure(
                "mfa_disable_wrong_password",
                None,
                Some(failing),
                true,
                meta,
            )
            .await?;
            return Err(AccountError::Validation(vec![FieldError::rule(
                "password",
                "incorrect",
                "is not your current password",
            )]));
        }
        let now = self.clock.now();
        let disabled = AuditEvent::of_request("mfa.disabled", Outcome::Success, meta)
            .with_actor(user.to_string())
            .with_target(user.to_string());
        let (mfa_box, code, meta_in_tx) = (self.mfa_box.clone(), code.to_owned(), meta.clone());
        let failures = self.failures(meta);
        let profiles = self.profiles.clone();
        let check = self
            .db
            .write_then(
                move |tx| {
                    if let Some(reason) = refusal(tx, user, now)? {
                        return Ok::<_, AccountError>(CodeCheck::Refused(reason));
                    }
                    let check = check_code(tx, &mfa_box, user, &code, now)?;
                    audit_code_check(&audit, tx, &check, user, &meta_in_tx, "disable")?;
                    if check.accepted() {
                        mfa::remove(tx, user)?;
                        audit.append(tx, &disabled)?;
                    } else {
                        failures.record(tx, check.failure_reason(), None, Some(user), true)?;
                    }
                    Ok(check)
                },
                move |_| profiles.invalidate(&user),
            )
            .await;
        self.count_code_check(check.as_ref());
        match check? {
            CodeCheck::Totp | CodeCheck::BackupCode { .. } => Ok(()),
            CodeCheck::Refused("softlocked") => Err(AccountError::TemporarilyLocked),
            CodeCheck::Refused(_) => Err(AccountError::MfaNotEnabled),
            _ => Err(wrong_code_field()),
        }
    }

    /// The second login step: an MFA challenge token and a code (TOTP or backup)
    /// for a session. The challenge token is good for one success.
    pub async fn verify_mfa_login(
        &self,
        mfa_token: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let (audit, mfa_box, code, meta_in_tx) = (
            self.audit.clone(),
            self.mfa_box.clone(),
            code.to_owned(),
            meta.clone(),
        );
        let now = self.clock.now();
        let challenge = self.mfa_challenge(mfa_token).await?;
        let answered = self
            .answer_mfa_challenge(&challenge, meta, move |tx, user| {
                let check = check_code(tx, &mfa_box, user, &code, now)?;
                audit_code_check(&audit, tx, &check, user, &meta_in_tx, "login")?;
                Ok(check)
            })
            .await;
        let checked = answered.map(|(user, answer)| match answer {
            Answered::Checked(check) => (user, check),
            Answered::Spent => (user, CodeCheck::ChallengeSpent),
            Answered::Refused(reason) => (user, CodeCheck::Refused(reason)),
        });
        self.count_code_check(checked.as_ref().map(|(_, check)| check));
        let (user, check) = checked?;
        match check {
            CodeCheck::ChallengeSpent => Err(AccountError::InvalidMfaToken),
            CodeCheck::Totp | CodeCheck::BackupCode { .. } => {
                self.open_after_challenge(user, AuthMethod::PasswordTotp.into(), meta)
                    .await
            }
            _ => Err(AccountError::InvalidMfaCode),
        }
    }

    /// The MFA challenge `mfa_token` names, while it is good.
    pub(in crate::accounts) async fn mfa_challenge(
        &self,
        mfa_token: &str,
    ) -> Result<Challenge, AccountError> {
        let claims = self
            .tokens
            .verify(mfa_token, TokenType::Mfa, self.clock.now())
            .map_err(|_| AccountError::InvalidMfaToken)?;
        // Cut-offs (a password change, logout-all) since the challenge was issued.
        if self
            .revocations
            .is_revoked(&claims)
            .await
            .map_err(unexpected)?
        {
            return Err(AccountError::InvalidMfaToken);
        }
        Ok(Challenge { claims })
    }

    /// Answers an MFA challenge with a second factor that `check` checks. The
    /// account's state, the challenge's use and the answer are checked, and a
    /// failure counted toward the softlock, in one transaction, so concurrent
    /// attempts cannot slip past the softlock or spend one challenge twice; an
    /// accepted answer spends the challenge there too. Returns whose challenge it
    /// was and what the answer came to; the session is the caller's to open
    /// ([`AccountService::open_after_challenge`]).
    pub(in crate::accounts) async fn answer_mfa_challenge<A: ChallengeAnswer>(
        &self,
        challenge: &Challenge,
        meta: &RequestMeta,
        check: impl FnOnce(&Connection, UserId) -> Result<A, AccountError> + Send + 'static,
    ) -> Result<(UserId, Answered<A>), AccountError> {
        let now = self.clock.now();
        let claims = &challenge.claims;
        let (user_id, jti, sid, issued_at) = (claims.sub, claims.jti, claims.sid, claims.iat);
        let token_until = claims.exp + LEEWAY_SECONDS;
        let failures = self.failures(meta);
        let revocation_cache = self.revocations.clone();
        let answered = self
            .db
            .write_then(
                move |tx| {
                    let (jti_text, sid_text) = (jti.to_string(), sid.to_string());
                    if revocations::is_revoked(tx, &jti_text, &sid_text, now)? {
                        return Ok::<_, AccountError>(Answered::Spent);
                    }
                    // A cut-off (logout-all, a password change) that landed since
                    // the challenge was checked ends it too.
                    let account = users::find(tx, user_id)?;
                    if account
                        .as_ref()
                        .is_some_and(|u| u.tokens_valid_after > issued_at)
                    {
                        return Ok(Answered::Spent);
                    }
                    if let Some(reason) = refusal_of(account.as_ref(), now) {
                        failures.record(tx, reason, None, Some(user_id), false)?;
                        return Ok(Answered::Refused(reason));
                    }
                    let answer = check(tx, user_id)?;
                    if answer.accepted() {
                        revocations::insert(tx, RevocationKind::Token, &jti_text, token_until)?;
                    } else {
                        let (reason, counts) = (answer.failure_reason(), answer.counts());
                        failures.record(tx, reason, None, Some(user_id), counts)?;
                    }
                    Ok(Answered::Checked(answer))
                },
                move |answered| {
                    if let Answered::Checked(answer) = answered
                        && answer.accepted()
                    {
                        revocation_cache.remember_token(jti, token_until);
                    }
                },
            )
            .await?;
        Ok((user_id, answered))
    }

    /// Opens the session a second factor just earned, for the account read fresh:
    /// only if it is still as checked.
    pub(in crate::accounts) async fn open_after_challenge(
        &self,
        user_id: UserId,
        signed_in: SignedInWith,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AccountError> {
        let user = self.read_user(user_id).await?;
        let opened = self.open_session(user, None, signed_in, meta).await?;
        match opened {
            Some(pair) => Ok(pair),
            None => Err(self
                .login_failed(
                    "changed_during_login",
                    None,
                    Some(user_id.into()),
                    false,
                    meta,
                )
                .await),
        }
    }
}
