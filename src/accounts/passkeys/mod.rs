//! Passkeys: registering them on an account, listing, renaming and deleting them, and
//! signing in with one alone. WebAuthn itself — challenges, origins, the RP id hash,
//! signatures, user verification, the sign counter and the backup flags — is
//! webauthn-rs's; this module decides who may do what, and keeps the records.
//!
//! - A ceremony's state stays on the server ([`ceremonies`]): single use, five
//!   minutes. A registration is bound to the account and the session that started
//!   it, and starts only after the password again (the caller re-authenticates).
//! - A passkey sign-in is a sign-in like a password's: the same per-address limit
//!   at the door, refused for a softlocked, locked or disabled account, and a
//!   refused answer for a known account counts toward its softlock. It opens the
//!   same session and token pair, signed in to with `passkey`, which counts as MFA
//!   (user verification is always required: a device and its PIN or biometric).
//! - A signature counter that goes backwards is refused and audited as
//!   `passkey.clone_suspected`; a changed counter or backup state is stored with the
//!   sign-in that changed it.
//! - Every finished ceremony is audited (`passkey.registered`, `passkey.sign_in`,
//!   success or failure), as are `passkey.renamed` and `passkey.deleted`. The
//!   library's error text goes to the log; clients get one generic answer.
//!
//! A stored passkey is a public key and a counter, nothing secret, so it is kept as
//! webauthn-rs serialises it, unsealed (see `db::passkeys`).

mod ceremonies;
mod relying_party;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnError,
};

use super::service::{AccountError, AccountService, TokenPair};
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::clock::Clock;
use crate::config::WebauthnSettings;
use crate::db::Database;
use crate::db::passkeys::{self, PasskeyRow};
use crate::model::{AuthMethod, User};
use crate::validation::FieldError;
use ceremonies::{Ceremonies, Ceremony};

/// Passkeys one account may have.
pub const MAX_PASSKEYS_PER_ACCOUNT: i64 = 20;
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No RP id and origins are configured: passkeys are off.
    #[error("passkeys are not configured")]
    NotConfigured,
    /// The ceremony named was never started, was finished already, has expired,
    /// or belongs to another session.
    #[error("unknown, used or expired ceremony")]
    CeremonyInvalid,
    /// The authenticator's answer to a registration was refused (the cause is
    /// logged and audited).
    #[error("the new credential was refused")]
    CredentialRefused,
    /// A passkey sign-in failed; every cause answers the same.
    #[error("passkey sign-in failed")]
    SignInFailed,
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    #[error("the account has as many passkeys as it may")]
    TooMany,
    #[error("no such passkey")]
    NotFound,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(PasskeyError);

fn unexpected(error: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Unexpected(anyhow::anyhow!("{error}"))
}

/// One of an account's passkeys, as its owner sees it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<PasskeyRow> for PasskeyInfo {
    fn from(row: PasskeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A ceremony begun: the id its answer must name, and the options for the browser
/// (`navigator.credentials.create` or `.get`), as webauthn-rs serialises them.
pub struct Started<Options> {
    pub ceremony: String,
    pub options: Options,
}

/// A passkey name as its owner typed it: trimmed, 1–64 characters, no control
/// characters.
pub fn passkey_name(text: &str, field: &str) -> Result<String, FieldError> {
    let name = text.trim();
    if name.is_empty() {
        return Err(FieldError::rule(field, "required", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::rule(
            field,
            "max_length",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    // Control characters, and the invisible ones that reorder or hide text (bidi
    // overrides and isolates, zero-width marks): a name shown on a page must read
    // as what it is.
    let invisible = |c: char| {
        matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
    };
    if name.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(FieldError::rule(
            field,
            "characters",
            "must not contain control or invisible characters",
        ));
    }
    Ok(name.to_owned())
}

/// What builds the passkey service.
pub struct PasskeyParts {
    pub db: Database,
    pub audit: AuditLog,
    pub clock: Clock,
    pub accounts: AccountService,
}

#[derive(Clone)]
pub struct PasskeyService {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    accounts: AccountService,
    /// `None` when passkeys are not configured: every ceremony is refused.
    relying_party: Option<Arc<Webauthn>>,
    ceremonies: Ceremonies,
}

impl PasskeyService {
    /// Refuses a configuration webauthn-rs does not take (the configuration check
    /// already refuses every one it knows of).
    pub fn new(
        parts: PasskeyParts,
        settings: Option<&WebauthnSettings>,
    ) -> Result<Self, WebauthnError> {
        let relying_party = settings
            .map(relying_party::build)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            ceremonies: Ceremonies::new(parts.clock.clone()),
            db: parts.db,
            audit: parts.audit,
            clock: parts.clock,
            accounts: parts.accounts,
            relying_party,
        })
    }

    fn relying_party(&self) -> Result<&Webauthn, PasskeyError> {
        self.relying_party
            .as_deref()
            .ok_or(PasskeyError::NotConfigured)
    }

    /// Whether passkeys are configured.
    pub fn enabled(&self) -> bool {
        self.relying_party.is_some()
    }

    /// The caller's passkeys, oldest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        let user = principal.user_id;
        let rows = self
            .db
            .read(move |conn| Ok::<_, PasskeyError>(passkeys::for_user(conn, user)?))
            .await?;
        Ok(rows.into_iter().map(PasskeyInfo::from).collect())
    }

    /// Options for a new passkey on the caller's account, which the caller has just
    /// proved again (the handler re-authenticates first). The authenticator is asked
    /// for a discoverable credential with user verification, and not to make a
    /// second one beside a passkey the account already has.
    pub async fn start_registration(
        &self,
        principal: &Principal,
    ) -> Result<Started<CreationChallengeResponse>, PasskeyError> {
        let relying_party = self.relying_party()?;
        let user = self.accounts.account(principal.user_id).await?;
        let user_id = user.id;
        let existing = self
            .db
            .read(move |conn| Ok::<_, PasskeyError>(passkeys::for_user(conn, user_id)?))
            .await?;
        if i64::try_from(existing.len()).unwrap_or(i64::MAX) >= MAX_PASSKEYS_PER_ACCOUNT {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing
            .iter()
            .map(|row| URL_SAFE_NO_PAD.decode(&row.credential_id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unexpected)?;
        let email = user.email.as_str();
        let (mut options, state) = relying_party
            .start_passkey_registration(user.id.0, email, email, Some(exclude))
            .map_err(unexpected)?;
        relying_party::require_discoverable(&mut options);
        let ceremony = self
            .ceremonies
            .start(Ceremony::Registration {
                user: user.id,
                session: principal.session_id,
                state,
            })
            .map_err(unexpected)?;
        Ok(Started { ceremony, options })
    }

    /// Stores the passkey the authenticator made for ceremony `ceremony`, which the
    /// caller's own session started, named `name` (by default "Passkey N").
    pub async fn finish_registration(
        &self,
        principal: &Principal,
        ceremony: &str,
        name: Option<&str>,
        credential: &RegisterPublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let relying_party = self.relying_party()?;
        // Checked before the ceremony is spent: a bad name is the caller's to fix.
        let name = name
            .map(|n| passkey_name(n, "name"))
            .transpose()
            .map_err(|e| PasskeyError::Validation(vec![e]))?;
        let Some(Ceremony::Registration {
            user,
            session,
            state,
        }) = self.ceremonies.take(ceremony)
        else {
            return Err(PasskeyError::CeremonyInvalid);
        };
        if user != principal.user_id || session != principal.session_id {
            return Err(PasskeyError::CeremonyInvalid);
        }
        let passkey = match relying_party.finish_passkey_registration(credential, &state) {
            Ok(passkey) => passkey,
            Err(error) => {
                let reason = relying_party::refusal_reason(&error);
                tracing::info!(%error, reason, "a new passkey was refused");
                let refused = AuditEvent::of_request("passkey.registered", Outcome::Failure, meta)
                    .with_actor(user.to_string())
                    .with_target(user.to_string())
                    .with_detail("reason", reason);
                self.audit.record(refused).await?;
                return Err(PasskeyError::CredentialRefused);
            }
        };
        let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let stored_passkey = serde_json::to_string(&passkey).map_err(unexpected)?;
        let (audit, meta, now) = (self.audit.clone(), meta.clone(), self.clock.now());
        let stored = self
            .db
            .write(move |tx| {
                if passkeys::find_by_credential_id(tx, &credential_id)?.is_some() {
                    return Err(PasskeyError::AlreadyRegistered);
                }
                let count = passkeys::count_for_user(tx, user)?;
                if count >= MAX_PASSKEYS_PER_ACCOUNT {
                    return Err(PasskeyError::TooMany);
                }
                let row = PasskeyRow {
                    id: Uuid::new_v4(),
                    user_id: user,
                    credential_id,
                    passkey: stored_passkey,
                    name: name.unwrap_or_else(|| format!("Passkey {}", count + 1)),
                    created_at: now,
                    last_used_at: None,
                };
                passkeys::insert(tx, &row)?;
                audit.append(
                    tx,
                    &AuditEvent::of_request("passkey.registered", Outcome::Success, &meta)
                        .with_actor(user.to_string())
                        .with_target(row.id.to_string())
                        .with_detail("name", row.name.as_str()),
                )?;
                Ok(row)
            })
            .await?;
        Ok(PasskeyInfo::from(stored))
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename(
        &self,
        principal: &Principal,
        id: Uuid,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let name = passkey_name(name, "name").map_err(|e| PasskeyError::Validation(vec![e]))?;
        let (user, audit, meta) = (principal.user_id, self.audit.clone(), meta.clone());
        let renamed = self
            .db
            .write(move |tx| {
                if !passkeys::rename(tx, user, id, &name)? {
                    return Err(PasskeyError::NotFound);
                }
                audit.append(
                    tx,
                    &AuditEvent::of_request("passkey.renamed", Outcome::Success, &meta)
                        .with_actor(user.to_string())
                        .with_target(id.to_string())
                        .with_detail("name", name.as_str()),
                )?;
                passkeys::find_for_user(tx, user, id)?.ok_or(PasskeyError::NotFound)
            })
            .await?;
        Ok(PasskeyInfo::from(renamed))
    }

    /// Deletes one of the caller's passkeys; the caller has just proved the account
    /// again (the handler re-authenticates first). Sessions it opened live on.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), PasskeyError> {
        let (user, audit, meta) = (principal.user_id, self.audit.clone(), meta.clone());
        self.db
            .write(move |tx| {
                let Some(row) = passkeys::find_for_user(tx, user, id)? else {
                    return Err(PasskeyError::NotFound);
                };
                passkeys::delete(tx, user, id)?;
                audit.append(
                    tx,
                    &AuditEvent::of_request("passkey.deleted", Outcome::Success, &meta)
                        .with_actor(user.to_string())
                        .with_target(id.to_string())
                        .with_detail("name", row.name.as_str()),
                )?;
                Ok(())
            })
            .await
    }

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
            .start(Ceremony::SignIn { state })
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
        let Some(Ceremony::SignIn { state }) = self.ceremonies.take(ceremony) else {
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
        if let Some(refusal) = self.accounts.sign_in_refusal(&user) {
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
                let reason = relying_party::refusal_reason(&error);
                tracing::info!(%error, reason, passkey = %row.id, "a passkey sign-in was refused");
                let counted = Some((&user, true));
                return Err(self.sign_in_failed(meta, reason, counted, Some(&row)).await);
            }
        };
        let updated = if result.needs_update() {
            let mut passkey = passkey;
            passkey.update_credential(&result);
            Some(serde_json::to_string(&passkey).map_err(unexpected)?)
        } else {
            None
        };
        let signed_in = AuditEvent::of_request("passkey.sign_in", Outcome::Success, meta)
            .with_actor(user.id.to_string())
            .with_target(row.id.to_string())
            .with_detail("name", row.name.as_str());
        let (audit, passkey_id, now) = (self.audit.clone(), row.id, self.clock.now());
        let opened = self
            .accounts
            .open_session(user.clone(), None, AuthMethod::Passkey, meta, move |tx| {
                if !passkeys::record_use(tx, passkey_id, updated.as_deref(), now)? {
                    return Err(AccountError::InvalidCredentials);
                }
                audit.append(tx, &signed_in)?;
                Ok(())
            })
            .await;
        match opened {
            Ok(Some(pair)) => Ok(pair),
            // The account changed (locked, disabled, softlocked) while this was checked.
            Ok(None) => Err(self
                .sign_in_failed(
                    meta,
                    "changed_during_login",
                    Some((&user, false)),
                    Some(&row),
                )
                .await),
            // The passkey was deleted meanwhile.
            Err(AccountError::InvalidCredentials) => Err(self
                .sign_in_failed(meta, "passkey_deleted", Some((&user, false)), Some(&row))
                .await),
            Err(other) => Err(other.into()),
        }
    }

    /// Records a failed passkey sign-in — `passkey.sign_in` (and
    /// `passkey.clone_suspected` for a counter gone backwards) with `auth.login_failed`
    /// — and returns the one answer every failure gets. `account` is the account the
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
        let mut events = vec![failed];
        if let (Some((user, _)), Some(row), "counter_regressed") = (account, passkey, reason) {
            tracing::warn!(passkey = %row.id, "a passkey's signature counter went backwards: it may have been cloned");
            events.push(
                AuditEvent::of_request("passkey.clone_suspected", Outcome::Denied, meta)
                    .with_actor(user.id.to_string())
                    .with_target(row.id.to_string())
                    .with_detail("name", row.name.as_str()),
            );
        }
        let failing = account.map(|(user, _)| user.into());
        let counts = account.is_some_and(|(_, counts)| counts);
        let reason = format!("passkey_{reason}");
        match self
            .accounts
            .record_failure_with(&reason, None, failing, counts, meta, events)
            .await
        {
            Ok(()) => PasskeyError::SignInFailed,
            Err(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(passkey_name("  Laptop  ", "name").as_deref(), Ok("Laptop"));
        assert_eq!(
            passkey_name(&"é".repeat(MAX_NAME_CHARS), "name").map(|n| n.chars().count()),
            Ok(MAX_NAME_CHARS)
        );
        for bad in [
            "",
            "   ",
            "tab\there",
            "line\nbreak",
            "Laptop\u{202E}nwo",
            "zero\u{200B}width",
            "\u{2066}isolate",
        ] {
            let error = passkey_name(bad, "name").err();
            assert_eq!(error.map(|e| e.field), Some("name".to_owned()), "{bad:?}");
        }
        let long = passkey_name(&"x".repeat(MAX_NAME_CHARS + 1), "name").err();
        assert_eq!(long.and_then(|e| e.rule), Some("max_length"));
    }
}
