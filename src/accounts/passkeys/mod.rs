//! Passkeys: registering them on an account, listing, renaming and deleting them, and
//! signing in with one alone. WebAuthn itself — challenges, origins, the RP id hash,
//! signatures, user verification, the sign counter and the backup flags — is
//! webauthn-rs's; this module decides who may do what, and keeps the records.
//!
//! - A ceremony's state stays on the server ([`ceremonies`]): single use, five
//!   minutes. A registration is bound to the account and the session that started
//!   it, and starts only after the password again (the caller re-authenticates).
//! - Signing in with a passkey, alone or instead of a code after the password, is
//!   [`sign_in`]'s. A session remembers the passkey that signed it in, and ends when
//!   that passkey is deleted (by its owner, or by an administrator removing every
//!   passkey of an account): a lost or stolen passkey is put out of use, together
//!   with whatever it opened, in one step.
//! - Every finished ceremony is audited (`passkey.registered`, `passkey.sign_in`,
//!   success or failure), as are `passkey.renamed`, `passkey.deleted` and
//!   `passkey.reset`. The library's error text goes to the log; clients get one
//!   generic answer.
//!
//! A stored passkey is a public key and a counter, nothing secret, so it is kept as
//! webauthn-rs serialises it, unsealed (see `db::passkeys`).

mod ceremonies;
mod relying_party;
mod sign_in;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, RegisterPublicKeyCredential, Webauthn, WebauthnError,
};

use super::service::{AccountError, AccountService};
use crate::audit::{AdminActor, AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::auth::Principal;
use crate::clock::Clock;
use crate::config::WebauthnSettings;
use crate::db::Database;
use crate::db::passkeys::{self, PasskeyRow};
use crate::db::sessions;
use crate::model::UserId;
use crate::validation::FieldError;
use ceremonies::{Ceremonies, Ceremony};

/// Passkeys one account may have.
pub const MAX_PASSKEYS_PER_ACCOUNT: i64 = 20;
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The most a stored passkey may weigh, in bytes. A passkey is a public key and
/// a counter, well under a kilobyte; only an attestation nobody asked for (a
/// certificate chain) makes one larger, and it would be copied into every
/// second-factor ceremony of the account.
const MAX_STORED_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No RP id and origins are configured: passkeys are off.
    #[error("passkeys are not configured")]
    NotConfigured,
    /// The ceremony named was never started, was finished already, has expired,
    /// or belongs to another session or challenge.
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
    /// The account has no passkey to answer its MFA challenge with.
    #[error("the account has no passkey")]
    NoPasskeys,
    /// An administrator asked to remove their own passkeys from the users' pages.
    #[error("an administrator's own passkeys are removed on their account page")]
    OwnAccount,
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
    /// When its signature counter went backwards: it signs nobody in since.
    pub clone_suspected_at: Option<i64>,
}

impl From<PasskeyRow> for PasskeyInfo {
    fn from(row: PasskeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            clone_suspected_at: row.clone_suspected_at,
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
        self.of_user(principal.user_id).await
    }

    /// An account's passkeys, oldest first (for its owner, or an administrator).
    pub async fn of_user(&self, user: UserId) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        let rows = self
            .db
            .read(move |conn| Ok::<_, PasskeyError>(passkeys::for_user(conn, user)?))
            .await?;
        Ok(rows.into_iter().map(PasskeyInfo::from).collect())
    }

    /// Whether `user` could answer an MFA challenge with a passkey: passkeys are
    /// on, and it has one in use.
    pub async fn can_answer_mfa(&self, user: UserId) -> Result<bool, PasskeyError> {
        if !self.enabled() {
            return Ok(false);
        }
        let rows = self
            .db
            .read(move |conn| Ok::<_, PasskeyError>(passkeys::for_user(conn, user)?))
            .await?;
        Ok(rows.iter().any(|row| row.clone_suspected_at.is_none()))
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
            .start(
                Ceremony::Registration {
                    user: user.id,
                    session: principal.session_id,
                    state,
                },
                0,
            )
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
        }) = self.ceremonies.take(ceremony).map(|taken| taken.ceremony)
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
        if stored_passkey.len() > MAX_STORED_BYTES {
            let refused = AuditEvent::of_request("passkey.registered", Outcome::Failure, meta)
                .with_actor(user.to_string())
                .with_target(user.to_string())
                .with_detail("reason", "too_large");
            self.audit.record(refused).await?;
            return Err(PasskeyError::CredentialRefused);
        }
        let (audit, meta, now) = (self.audit.clone(), meta.clone(), self.clock.now());
        let stored = self
            .db
            .write(move |tx| {
                // The session that began it ended meanwhile (logout, logout-all, a
                // password change, an administrator): nothing is added for it.
                if !sessions::find(tx, session)?.is_some_and(|s| s.is_live(now)) {
                    return Err(PasskeyError::CeremonyInvalid);
                }
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
                    clone_suspected_at: None,
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

    /// Deletes one of the caller's passkeys, and ends every session it signed in;
    /// the caller has just proved the account again (the handler re-authenticates
    /// first).
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), PasskeyError> {
        let (user, audit, meta) = (principal.user_id, self.audit.clone(), meta.clone());
        let sessions = self.accounts.passkey_sessions();
        let remembered = sessions.clone();
        self.db
            .write_then(
                move |tx| {
                    let Some(row) = passkeys::find_for_user(tx, user, id)? else {
                        return Err(PasskeyError::NotFound);
                    };
                    passkeys::delete(tx, user, id)?;
                    let ended = sessions.end(tx, id, "passkey_deleted")?;
                    audit.append(
                        tx,
                        &AuditEvent::of_request("passkey.deleted", Outcome::Success, &meta)
                            .with_actor(user.to_string())
                            .with_target(id.to_string())
                            .with_detail("name", row.name.as_str())
                            .with_detail("sessions_ended", ended.len()),
                    )?;
                    Ok(ended)
                },
                move |ended| remembered.remember(ended),
            )
            .await?;
        Ok(())
    }

    /// An administrator removes every passkey of `user` (a lost device, a passkey
    /// someone else planted) and ends every session of the account, in one
    /// transaction: a passkey planted through a stolen session is gone with that
    /// session, which could otherwise plant another. Returns how many passkeys
    /// there were. An administrator's own passkeys are theirs to remove, with
    /// the password, on their account page.
    pub async fn reset(
        &self,
        admin: &AdminActor,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<usize, PasskeyError> {
        if admin.user_id() == Some(user) {
            return Err(PasskeyError::OwnAccount);
        }
        let audit = self.audit.clone();
        let event = AuditEvent::of_request("passkey.reset", Outcome::Success, meta)
            .with_actor(admin.audit_name())
            .with_target(user.to_string());
        let removed = self
            .accounts
            .end_every_session_with(user, "passkeys_reset", move |tx, ended| {
                let removed = passkeys::delete_all_for_user(tx, user)?.len();
                audit.append(
                    tx,
                    &event
                        .with_detail("passkeys_removed", removed)
                        .with_detail("sessions_ended", ended),
                )?;
                Ok(removed)
            })
            .await?;
        Ok(removed)
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
