//! Signing in with a passkey: alone (a discoverable credential, no account named),
//! or instead of a TOTP code after the password (the account's own passkeys).
//!
//! - Either way it is a sign-in step like a password's or a code's: refused for a
//!   softlocked, locked or disabled account, and a refused answer for a known
//!   account counts toward its softlock. (The address limits are the doors'.)
//!   User verification is always required — a device and its PIN or biometric —
//!   so the session is signed in to with `passkey`, which counts as MFA, whether a
//!   password came first or not.
//! - The answer's signature counter is compared with the stored one, and the new
//!   one stored, in one transaction ([`record_use`]): two sign-ins racing with one
//!   passkey cannot both pass a counter check meant to catch a copied key. A
//!   counter at or below the stored one is refused either way; what it means
//!   follows one rule on both paths: when the passkey signed in since this
//!   ceremony began (another tab, finished first), it is a race — `counter_raced`,
//!   not counted toward the softlock; otherwise the key was copied — audited as
//!   `passkey.clone_suspected`, and the passkey is put out of use, ending every
//!   session it signed in: one of the two copies is not its owner's, and nobody
//!   can tell which.
//! - A second-factor ceremony belongs to the MFA challenge it was started for:
//!   it finishes only with that challenge token, which it spends, as a code would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RequestChallengeResponse,
};

use super::ceremonies::{Ceremony, Taken};
use super::relying_party;
use super::{PasskeyError, PasskeyService, Started, unexpected};
use crate::accounts::service::{
    AccountError, Answered, ChallengeAnswer, PasskeySessions, SignedInWith, TokenPair,
};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::db::passkeys::{self, PasskeyRow};
use crate::model::{User, UserId};

/// What a passkey's use came to, in the transaction that records it.
enum Use {
    Recorded,
    /// Put out of use earlier, its counter having gone backwards.
    Suspected,
    /// Its counter went backwards, and the passkey signed in since this
    /// ceremony began: two tabs finishing out of order do this, so no copy is
    /// suspected.
    Raced,
    /// Its counter went backwards with no sign-in since this ceremony began: a
    /// copy of the key is suspected.
    Regressed,
}

/// The signature counter a stored passkey last saw. webauthn-rs keeps it in the
/// passkey's serialised credential (a unit test holds it to that format); a
/// passkey whose counter cannot be read is an error, never a pass.
fn stored_counter(stored: &str) -> Result<u32, AccountError> {
    let value: serde_json::Value =
        serde_json::from_str(stored).map_err(|e| AccountError::Unexpected(e.into()))?;
    value
        .pointer("/cred/counter")
        .and_then(serde_json::Value::as_u64)
        .and_then(|counter| u32::try_from(counter).ok())
        .ok_or_else(|| AccountError::Unexpected(anyhow::anyhow!("a passkey without a counter")))
}

/// Whether a counter gone backwards on a ceremony begun at `started_at` is a
/// race with another sign-in of the passkey since (`true`), not a copied key.
fn raced(row: &PasskeyRow, started_at: i64) -> bool {
    row.last_used_at.is_some_and(|used| used >= started_at)
}

/// Records a use of passkey `row` — as the caller's transaction read it — that
/// webauthn-rs accepted (`result`) in a ceremony begun at `started_at`, written in
/// that transaction, so the counter check is a compare-and-set: when either
/// counter is in use, the answer's must be above the stored one, as it stands now.
fn record_use(
    tx: &rusqlite::Connection,
    row: &PasskeyRow,
    result: &AuthenticationResult,
    started_at: i64,
    now: i64,
) -> Result<Use, AccountError> {
    if row.clone_suspected_at.is_some() {
        return Ok(Use::Suspected);
    }
    let stored = stored_counter(&row.passkey)?;
    if (result.counter() > 0 || stored > 0) && result.counter() <= stored {
        return Ok(if raced(row, started_at) {
            Use::Raced
        } else {
            Use::Regressed
        });
    }
    let mut passkey: Passkey =
        serde_json::from_str(&row.passkey).map_err(|e| AccountError::Unexpected(e.into()))?;
    let updated = match passkey.update_credential(result) {
        Some(true) => {
            Some(serde_json::to_string(&passkey).map_err(|e| AccountError::Unexpected(e.into()))?)
        }
        _ => None,
    };
    passkeys::record_use(tx, row.id, updated.as_deref(), now)?;
    Ok(Use::Recorded)
}

/// Puts a passkey whose counter went backwards out of use, ends every session it
/// signed in, and audits `passkey.clone_suspected` — in the caller's transaction.
/// Returns the sessions ended (to refuse in memory after the commit).
fn suspect_clone(
    tx: &rusqlite::Connection,
    row: &PasskeyRow,
    sessions: &PasskeySessions,
    audit: &AuditLog,
    meta: &RequestMeta,
    now: i64,
) -> Result<Vec<Uuid>, AccountError> {
    tracing::warn!(passkey = %row.id, "a passkey's signature counter went backwards: it may have been copied");
    passkeys::suspect_clone(tx, row.id, now)?;
    let ended = sessions.end(tx, row.id, "passkey_clone_suspected")?;
    audit.append(
        tx,
        &AuditEvent::of_request("passkey.clone_suspected", Outcome::Denied, meta)
            .with_actor(row.user_id.to_string())
            .with_target(row.id.to_string())
            .with_detail("name", row.name.as_str())
            .with_detail("sessions_ended", ended.len()),
    )?;
    Ok(ended)
}

/// A passkey's answer to an MFA challenge.
enum SecondFactor {
    Accepted(Uuid),
    /// Refused (the reason is in `passkey.sign_in`); the sessions a suspected copy
    /// had signed in were ended with it. `counts` toward the softlock unless the
    /// refusal says nothing about who answered (a race, a passkey gone).
    Refused {
        ended: Vec<Uuid>,
        counts: bool,
    },
}

impl ChallengeAnswer for SecondFactor {
    fn accepted(&self) -> bool {
        matches!(self, SecondFactor::Accepted(_))
    }

    fn failure_reason(&self) -> &'static str {
        "wrong_passkey"
    }

    fn counts(&self) -> bool {
        matches!(self, SecondFactor::Refused { counts: true, .. })
    }
}

impl PasskeyService {
    /// Options for signing in with a passkey alone: no account named, so the
    /// authenticator offers its discoverable credentials for this site; user
    /// verification required.
    pub fn start_sign_in(&self) -> Result<Started<RequestChallengeResponse>, PasskeyError> {
        let (options, state) = self
            .relying_party()?
            .start_discoverable_authentication()
            .map_err(unexpected)?;
        let ceremony = self
            .ceremonies
            .start(Ceremony::SignIn { state }, 0)
            .map_err(unexpected)?;
        Ok(Started { ceremony, options })
    }

    /// Checks the authenticator's answer to sign-in ceremony `ceremony` and opens a
    /// session for the passkey's account. Every failure answers
    /// [`PasskeyError::SignInFailed`]; only the audit log and the log say which.
    pub async fn finish_sign_in(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<TokenPair, PasskeyError> {
        let relying_party = self.relying_party()?;
        let Some(Taken {
            ceremony: Ceremony::SignIn { state },
            started_at,
        }) = self.ceremonies.take(ceremony)
        else {
            return Err(PasskeyError::CeremonyInvalid);
        };
        // Whose passkey the answer says it is: the credential id, and the account id
        // the authenticator stored with it (the user handle), which must agree.
        let claimed = relying_party
            .identify_discoverable_authentication(credential)
            .ok()
            .map(|(user, credential_id)| (user, URL_SAFE_NO_PAD.encode(credential_id)));
        let Some((user_handle, credential_id)) = claimed else {
            return Err(self
                .sign_in_failed(meta, "no_user_handle", None, None)
                .await);
        };
        let row = self
            .db
            .read(move |conn| {
                Ok::<_, PasskeyError>(passkeys::find_by_credential_id(conn, &credential_id)?)
            })
            .await?;
        let Some(row) = row.filter(|row| row.user_id.0 == user_handle) else {
            return Err(self
                .sign_in_failed(meta, "unknown_passkey", None, None)
                .await);
        };
        let user = match self.accounts.read_user(row.user_id).await {
            Ok(user) => user,
            Err(AccountError::AccountGone) => {
                return Err(self.sign_in_failed(meta, "account_gone", None, None).await);
            }
            Err(other) => return Err(other.into()),
        };
        let refusal = self
            .accounts
            .sign_in_refusal(&user)
            .or(row.clone_suspected_at.map(|_| "clone_suspected"));
        if let Some(refusal) = refusal {
            let refused = Some((&user, false));
            return Err(self
                .sign_in_failed(meta, refusal, refused, Some(&row))
                .await);
        }
        let passkey: Passkey = serde_json::from_str(&row.passkey).map_err(unexpected)?;
        let checked =
            relying_party.finish_discoverable_authentication_v2(credential, state, &passkey);
        let result = match checked {
            Ok(result) => result,
            Err(error) => {
                let mut reason = relying_party::refusal_reason(&error);
                tracing::info!(%error, reason, passkey = %row.id, "a passkey sign-in was refused");
                // webauthn-rs compared with the counter as read just now.
                if reason == "counter_regressed" && raced(&row, started_at) {
                    reason = "counter_raced";
                }
                let counted = Some((&user, reason != "counter_raced"));
                return Err(self.sign_in_failed(meta, reason, counted, Some(&row)).await);
            }
        };
        let signed_in = AuditEvent::of_request("passkey.sign_in", Outcome::Success, meta)
            .with_actor(user.id.to_string())
            .with_target(row.id.to_string())
            .with_detail("name", row.name.as_str());
        let (audit, passkey_id, now) = (self.audit.clone(), row.id, self.clock.now());
        let used = self
            .db
            .write(move |tx| {
                // `None`: deleted meanwhile.
                let used = passkeys::find(tx, passkey_id)?
                    .map(|row| record_use(tx, &row, &result, started_at, now))
                    .transpose()?;
                if let Some(Use::Recorded) = used {
                    audit.append(tx, &signed_in)?;
                }
                Ok::<_, AccountError>(used)
            })
            .await?;
        let failure = match used {
            Some(Use::Recorded) => None,
            None => Some(("passkey_deleted", false)),
            Some(Use::Suspected) => Some(("clone_suspected", false)),
            Some(Use::Raced) => Some(("counter_raced", false)),
            Some(Use::Regressed) => Some(("counter_regressed", true)),
        };
        if let Some((reason, counts)) = failure {
            let account = Some((&user, counts));
            return Err(self.sign_in_failed(meta, reason, account, Some(&row)).await);
        }
        let opened = self
            .accounts
            .open_session(user.clone(), None, SignedInWith::passkey(row.id), meta)
            .await;
        match opened {
            Ok(Some(pair)) => Ok(pair),
            // Deleted, or put out of use, since its answer was checked.
            Err(AccountError::InvalidCredentials) => Err(self
                .sign_in_failed(meta, "passkey_deleted", Some((&user, false)), Some(&row))
                .await),
            Err(other) => Err(other.into()),
            // The account changed (locked, disabled, softlocked) while this was checked.
            Ok(None) => Err(self
                .sign_in_failed(
                    meta,
                    "changed_during_login",
                    Some((&user, false)),
                    Some(&row),
                )
                .await),
        }
    }

    /// Options for answering an MFA challenge (the token a right password earned)
    /// with one of the account's passkeys instead of a code: the account's
    /// passkeys allowed, user verification required.
    pub async fn start_second_factor(
        &self,
        mfa_token: &str,
    ) -> Result<Started<RequestChallengeResponse>, PasskeyError> {
        let relying_party = self.relying_party()?;
        let challenge = self.accounts.mfa_challenge(mfa_token).await?;
        let user = challenge.user();
        // An account that may not sign in now gets no options (which would name
        // its passkeys): the finish would be refused anyway.
        let account = self.accounts.read_user(user).await?;
        if self.accounts.sign_in_refusal(&account).is_some() || !account.mfa_enabled {
            return Err(PasskeyError::SignInFailed);
        }
        let rows = self
            .db
            .read(move |conn| Ok::<_, PasskeyError>(passkeys::for_user(conn, user)?))
            .await?;
        let in_use: Vec<&PasskeyRow> = rows
            .iter()
            .filter(|row| row.clone_suspected_at.is_none())
            .collect();
        if in_use.is_empty() {
            return Err(PasskeyError::NoPasskeys);
        }
        let usable = in_use
            .iter()
            .map(|row| serde_json::from_str::<Passkey>(&row.passkey))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unexpected)?;
        let held: usize = in_use.iter().map(|row| row.passkey.len()).sum();
        let (options, state) = relying_party
            .start_passkey_authentication(&usable)
            .map_err(unexpected)?;
        let ceremony = self
            .ceremonies
            .start(
                Ceremony::SecondFactor {
                    user,
                    challenge: challenge.id(),
                    state,
                },
                held,
            )
            .map_err(unexpected)?;
        Ok(Started { ceremony, options })
    }

    /// Checks a passkey's answer to MFA challenge `mfa_token` (second-factor
    /// ceremony `ceremony`, started for that challenge) and opens the session, as
    /// a right code would. A refused answer counts toward the softlock and leaves
    /// the challenge unspent, as a wrong code does; every refusal answers
    /// [`PasskeyError::SignInFailed`].
    pub async fn finish_second_factor(
        &self,
        mfa_token: &str,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<TokenPair, PasskeyError> {
        let relying_party = self.relying_party()?;
        let challenge = self.accounts.mfa_challenge(mfa_token).await?;
        let (user, challenge_id) = (challenge.user(), challenge.id());
        let Some(Taken {
            ceremony:
                Ceremony::SecondFactor {
                    user: started_for,
                    challenge: answering,
                    state,
                },
            started_at,
        }) = self.ceremonies.take_second_factor(challenge_id, ceremony)
        else {
            return Err(PasskeyError::CeremonyInvalid);
        };
        if (started_for, answering) != (user, challenge_id) {
            return Err(PasskeyError::CeremonyInvalid);
        }
        let checked = relying_party
            .finish_passkey_authentication(credential, &state)
            .map_err(|error| {
                let reason = relying_party::refusal_reason(&error);
                tracing::info!(%error, reason, "a passkey second factor was refused");
                reason
            });
        let credential_id = URL_SAFE_NO_PAD.encode(credential.raw_id.as_slice());
        let sessions = self.accounts.passkey_sessions();
        let remembered = sessions.clone();
        let (audit, meta_in_tx, now) = (self.audit.clone(), meta.clone(), self.clock.now());
        let answered = self
            .accounts
            .answer_mfa_challenge(&challenge, meta, move |tx, user| {
                let row = passkeys::find_by_credential_id(tx, &credential_id)?
                    .filter(|row| row.user_id == user);
                let suspect =
                    |row: &PasskeyRow| suspect_clone(tx, row, &sessions, &audit, &meta_in_tx, now);
                let (reason, ended, counts) = match (&row, checked) {
                    (None, _) => ("unknown_passkey", Vec::new(), true),
                    // At or below the counter stored when this ceremony began.
                    (Some(row), Err("counter_regressed")) => {
                        ("counter_regressed", suspect(row)?, true)
                    }
                    (Some(_), Err(reason)) => (reason, Vec::new(), true),
                    (Some(row), Ok(result)) => {
                        match record_use(tx, row, &result, started_at, now)? {
                            Use::Recorded => {
                                let accepted =
                                    second_factor_event(&meta_in_tx, user, Some(row), None);
                                audit.append(tx, &accepted)?;
                                return Ok(SecondFactor::Accepted(row.id));
                            }
                            Use::Suspected => ("clone_suspected", Vec::new(), false),
                            Use::Raced => ("counter_raced", Vec::new(), false),
                            Use::Regressed => ("counter_regressed", suspect(row)?, true),
                        }
                    }
                };
                let refused = second_factor_event(&meta_in_tx, user, row.as_ref(), Some(reason));
                audit.append(tx, &refused)?;
                Ok(SecondFactor::Refused { ended, counts })
            })
            .await;
        match answered? {
            (user, Answered::Checked(SecondFactor::Accepted(passkey))) => match self
                .accounts
                .open_after_challenge(user, SignedInWith::passkey(passkey), meta)
                .await
            {
                Ok(pair) => Ok(pair),
                // Deleted, or put out of use, since its answer was checked.
                Err(AccountError::InvalidCredentials) => Err(PasskeyError::SignInFailed),
                Err(other) => Err(other.into()),
            },
            (_, Answered::Checked(SecondFactor::Refused { ended, .. })) => {
                remembered.remember(&ended);
                Err(PasskeyError::SignInFailed)
            }
            (_, Answered::Spent) => Err(AccountError::InvalidMfaToken.into()),
            (_, Answered::Refused(_)) => Err(PasskeyError::SignInFailed),
        }
    }

    /// Records a failed passkey sign-in — `passkey.sign_in` (and, for a counter
    /// gone backwards, the passkey put out of use) with `auth.login_failed` — and
    /// returns the one answer every failure gets. `account` is the account the
    /// passkey belongs to, when it is known, and whether the failure counts toward
    /// its softlock.
    async fn sign_in_failed(
        &self,
        meta: &RequestMeta,
        reason: &'static str,
        account: Option<(&User, bool)>,
        passkey: Option<&PasskeyRow>,
    ) -> PasskeyError {
        let mut failed = AuditEvent::of_request("passkey.sign_in", Outcome::Failure, meta)
            .with_detail("reason", reason);
        if let Some((user, _)) = account {
            failed = failed.with_actor(user.id.to_string());
        }
        if let Some(row) = passkey {
            failed = failed.with_target(row.id.to_string());
        }
        let suspected = passkey.filter(|_| reason == "counter_regressed").cloned();
        let sessions = self.accounts.passkey_sessions();
        let remembered = sessions.clone();
        let (audit, meta_in_tx, now) = (self.audit.clone(), meta.clone(), self.clock.now());
        let failing = account.map(|(user, _)| user.into());
        let counts = account.is_some_and(|(_, counts)| counts);
        let recorded = self
            .accounts
            .record_failure_with(
                &format!("passkey_{reason}"),
                None,
                failing,
                counts,
                meta,
                move |tx| {
                    audit.append(tx, &failed)?;
                    match &suspected {
                        Some(row) => suspect_clone(tx, row, &sessions, &audit, &meta_in_tx, now),
                        None => Ok(Vec::new()),
                    }
                },
            )
            .await;
        match recorded {
            Ok(ended) => {
                remembered.remember(&ended);
                PasskeyError::SignInFailed
            }
            Err(error) => error.into(),
        }
    }
}

/// `passkey.sign_in` for a second factor: accepted when `refused` is `None`.
fn second_factor_event(
    meta: &RequestMeta,
    user: UserId,
    passkey: Option<&PasskeyRow>,
    refused: Option<&'static str>,
) -> AuditEvent {
    let outcome = if refused.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut event = AuditEvent::of_request("passkey.sign_in", outcome, meta)
        .with_actor(user.to_string())
        .with_detail("step", "second_factor");
    if let Some(row) = passkey {
        event = event
            .with_target(row.id.to_string())
            .with_detail("name", row.name.as_str());
    }
    if let Some(reason) = refused {
        event = event.with_detail("reason", reason);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_where_webauthn_rs_keeps_it() {
        // A passkey as webauthn-rs 0.6 serialises it (trimmed to what matters).
        let stored = r#"{"cred":{"cred_id":"AAEC","counter":7,"user_verified":true}}"#;
        assert_eq!(stored_counter(stored).ok(), Some(7));
        assert!(stored_counter(r#"{"cred":{}}"#).is_err(), "no counter");
        assert!(stored_counter("not json").is_err());
    }
}
