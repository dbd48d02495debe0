//! Re-authentication: a stolen access token alone must not be enough to enrol the
//! thief's own authenticator, or to point a webhook's credential somewhere new.
//! Such changes need the password again — and, with MFA on, a current code — sent
//! with the request, or proved on the same session within the last five minutes.
//!
//! Every password entered again counts like a login: a wrong one toward the
//! account's softlock, and a softlocked account is refused outright (the per-account
//! rate limit is the caller's, at the door). A proof is recorded on the session
//! (`auth.reauthenticated`).

use secrecy::SecretString;
use uuid::Uuid;

use super::login::Failing;
use super::mfa::{ChallengeAnswer, CodeCheck, audit_code_check, check_code, wrong_code_field};
use super::{AccountError, AccountService};
use crate::audit::{AuditEvent, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::crypto::password::Verification;
use crate::db::sessions;
use crate::model::UserId;
use crate::validation::FieldError;

/// How long a proof on a session vouches for the next sensitive changes.
pub const REAUTHENTICATION_SECONDS: i64 = 5 * 60;

/// What a request sends to prove its caller again.
#[derive(Default)]
pub struct Proof {
    pub password: Option<SecretString>,
    /// A current code (or a backup code), for an account with MFA.
    pub code: Option<SecretString>,
}

impl AccountService {
    /// Whether the caller has proved, just now or within the last five minutes on
    /// this session, that they are the account's holder and not just its token's.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        proof: Proof,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        self.reauthenticate_session(principal.user_id, principal.session_id, proof, meta)
            .await
    }

    /// [`AccountService::reauthenticate`] for account session `session` of `user`
    /// (a browser session rides on one).
    pub async fn reauthenticate_session(
        &self,
        user: UserId,
        session: Uuid,
        proof: Proof,
        meta: &RequestMeta,
    ) -> Result<(), AccountError> {
        let account = self.read_user(user).await?;
        let now = self.clock.now();
        if account.is_softlocked(now) || self.unrecorded.is_locked(account.id, now) {
            return Err(AccountError::TemporarilyLocked);
        }
        let Some(password) = proof.password else {
            let proved_at = self
                .db
                .read(move |conn| {
                    Ok::<_, AccountError>(sessions::reauthenticated_at(conn, session)?)
                })
                .await?;
            return match proved_at {
                Some(at) if now - at <= REAUTHENTICATION_SECONDS => Ok(()),
                _ => Err(AccountError::ReauthenticationRequired),
            };
        };
        let failing = Failing::from(&account);
        let verification = self
            .hasher
            .verify(password, Some(account.password_hash.clone()))
            .await?;
        if verification == Verification::Invalid {
            self.record_failure("reauth_wrong_password", None, Some(failing), true, meta)
                .await?;
            return Err(AccountError::Validation(vec![FieldError::rule(
                "password",
                "incorrect",
                "is not your current password",
            )]));
        }
        let code = match (account.mfa_enabled, proof.code) {
            (false, _) => None,
            (true, Some(code)) => Some(code),
            (true, None) => return Err(AccountError::ReauthenticationRequired),
        };
        let user = account.id;
        let (audit, mfa_box, meta_in_tx) = (self.audit.clone(), self.mfa_box.clone(), meta.clone());
        let failures = self.failures(meta);
        let proved = AuditEvent::of_request("auth.reauthenticated", Outcome::Success, meta)
            .with_actor(user.to_string())
            .with_target(session.to_string());
        let with_code = code.is_some();
        let checked = self
            .db
            .write(move |tx| {
                let mut checked = None;
                if let Some(code) = &code {
                    use secrecy::ExposeSecret;
                    let check = check_code(tx, &mfa_box, user, code.expose_secret(), now)?;
                    audit_code_check(&audit, tx, &check, user, &meta_in_tx, "reauthenticate")?;
                    if !check.accepted() {
                        failures.record(tx, check.failure_reason(), None, Some(user), true)?;
                        return Ok::<_, AccountError>(Some(check));
                    }
                    checked = Some(check);
                }
                sessions::set_reauthenticated(tx, session, now)?;
                audit.append(tx, &proved)?;
                Ok(checked)
            })
            .await;
        match checked.as_ref() {
            Ok(Some(check)) => self.count_code_check(Ok(check)),
            Err(error) if with_code => self.count_code_check(Err(error)),
            _ => {}
        }
        match checked? {
            None => Ok(()),
            Some(check) if check.accepted() => Ok(()),
            Some(CodeCheck::Refused(_)) => Err(AccountError::TemporarilyLocked),
            Some(_) => Err(wrong_code_field()),
        }
    }
}
