//! The API door's one mapping from every domain error to an HTTP problem: status,
//! title and the text a client may see. Causes that are not the client's business
//! (`Unexpected`, database and hashing failures) become the generic 500, and go to
//! the log in `ApiError`'s response. The admin pages show the same problems as HTML
//! (`routes::admin::errors`).

use crate::accounts::AccountError;
use crate::accounts::browser_sessions::SignInError;
use crate::accounts::passkeys::{MAX_PASSKEYS_PER_ACCOUNT, PasskeyError};
use crate::admin::AdminAccessError;
use crate::auth::{AuthError, tokens};
use crate::authz::AuthzError;
use crate::crypto::password::PasswordError;
use crate::db::DbError;
use crate::documents::service::DocumentError;
use crate::http::problem::ApiError;
use crate::policy::service::PolicyError;
use crate::validation::FieldError;
use crate::webhooks::service::WebhookError;

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingToken => ApiError::Unauthorized("A bearer access token is required."),
            AuthError::InvalidToken(tokens::TokenError::Expired) => {
                ApiError::Unauthorized("Token expired")
            }
            AuthError::InvalidToken(_) => ApiError::Unauthorized("Invalid token"),
            AuthError::Revoked => ApiError::Unauthorized("Token revoked"),
            AuthError::StoreUnavailable(cause) => {
                tracing::error!(error = %cause, "token check failed closed");
                ApiError::Unavailable {
                    reason: "The token cannot be checked right now. Please try again later.",
                    retry_after_seconds: Some(5),
                }
            }
        }
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Validation(errors) => ApiError::Validation(errors),
            PolicyError::NotFound => ApiError::NotFound,
            PolicyError::SystemPolicy => {
                ApiError::Conflict("A built-in policy cannot be deleted; deactivate it instead.")
            }
            PolicyError::ReadOnly => ApiError::Conflict(
                "The built-in administrator policy cannot be changed: it keeps administrators able to administer.",
            ),
            PolicyError::BuiltInRule => ApiError::Conflict(
                "A built-in policy may only be activated or deactivated (PATCH its status).",
            ),
            PolicyError::LocksOutAdministrators => ApiError::Conflict(
                "This change would leave no active administrator able to edit policies; the policies were not changed.",
            ),
            PolicyError::Stale => ApiError::Conflict(
                "The policies changed since this plan was made; nothing was applied. Plan again.",
            ),
            PolicyError::Unexpected(cause) => ApiError::Unexpected(cause),
            other => ApiError::Unexpected(anyhow::anyhow!(other)),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Validation(errors) => ApiError::Validation(errors),
            WebhookError::NotFound => ApiError::NotFound,
            WebhookError::Disabled => {
                ApiError::Conflict("The webhook is disabled; enable it first.")
            }
            WebhookError::Unexpected(cause) => ApiError::Unexpected(cause),
            other => ApiError::Unexpected(anyhow::anyhow!(other)),
        }
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
            AccountError::ReauthenticationRequired => ApiError::Forbidden(
                "This change needs your password again: send `password` (and `code`, a current code from your authenticator, when MFA is on), or make it within 5 minutes of doing so on this session.",
            ),
            AccountError::SessionNotFound => ApiError::NotFound,
            AccountError::AccountGone | AccountError::SessionEnded => {
                ApiError::Unauthorized("Token revoked")
            }
            AccountError::UserNotFound => ApiError::NotFound,
            AccountError::CannotLockSelf => {
                ApiError::Conflict("An administrator cannot lock their own account.")
            }
            AccountError::CannotRemoveSelf => {
                ApiError::Conflict("An administrator cannot disable or delete their own account.")
            }
            AccountError::Password(PasswordError::Busy {
                retry_after_seconds,
            }) => ApiError::Unavailable {
                reason: "Too many sign-ins are being processed. Please try again shortly.",
                retry_after_seconds: Some(retry_after_seconds),
            },
            AccountError::Password(e) => ApiError::Unexpected(anyhow::anyhow!(e)),
            AccountError::NotDurable(cause) => {
                tracing::error!(error = ?cause, "an ending could not be stored; refused in memory");
                ApiError::Unavailable {
                    reason: "The change could not be saved. This server refuses the ended tokens from now on, but only until it restarts: try again shortly to make it last.",
                    retry_after_seconds: Some(5),
                }
            }
            AccountError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

/// Passkey problems. A refused sign-in answers one text whatever the cause, and no
/// answer carries webauthn-rs's own text (it is logged, and named in the audit log).
impl From<PasskeyError> for ApiError {
    fn from(error: PasskeyError) -> Self {
        match error {
            PasskeyError::Validation(errors) => ApiError::Validation(errors),
            PasskeyError::NotConfigured => ApiError::NotFound,
            PasskeyError::CeremonyInvalid => ApiError::BadRequest(
                "This passkey ceremony is unknown, already finished or expired (they last 5 minutes): start a new one.".to_owned(),
            ),
            PasskeyError::CredentialRefused => ApiError::Validation(vec![FieldError::rule(
                "credential",
                "refused",
                "was not accepted: it does not answer this ceremony for this site, or the authenticator did not verify the user",
            )]),
            PasskeyError::SignInFailed => ApiError::Unauthorized("Passkey sign-in failed"),
            PasskeyError::AlreadyRegistered => {
                ApiError::Conflict("This passkey is already registered.")
            }
            PasskeyError::TooMany => {
                const _: () = assert!(MAX_PASSKEYS_PER_ACCOUNT == 20, "the text below says 20");
                ApiError::Conflict("An account may have at most 20 passkeys; delete one first.")
            }
            PasskeyError::NotFound => ApiError::NotFound,
            PasskeyError::NoPasskeys => {
                ApiError::Conflict("This account has no passkey: answer with a code instead.")
            }
            PasskeyError::OwnAccount => ApiError::Conflict(
                "Your own passkeys are deleted one by one from your account, with your password.",
            ),
            PasskeyError::Account(error) => error.into(),
            PasskeyError::Unexpected(cause) => ApiError::Unexpected(cause),
        }
    }
}

/// A browser session's failure outside its sign-in page (a sign-out): the account's
/// problem as the API would answer it; the rest is the generic 500.
impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Account(error) => error.into(),
            SignInError::Passkey(error) => error.into(),
            other => ApiError::Unexpected(anyhow::anyhow!(other)),
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(error: DocumentError) -> Self {
        match error {
            DocumentError::Validation(errors) => ApiError::Validation(errors),
            DocumentError::NotFound => ApiError::NotFound,
            DocumentError::Forbidden => ApiError::Forbidden(
                "The access policies do not allow this action on this document.",
            ),
            DocumentError::EvaluationFailed => ApiError::AccessEvaluationFailed,
            DocumentError::Conflict => ApiError::Conflict(
                "The document changed or was deleted meanwhile; read it again and retry.",
            ),
            DocumentError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<AdminAccessError> for ApiError {
    fn from(error: AdminAccessError) -> Self {
        match error {
            AdminAccessError::NotAdministrator => {
                ApiError::Forbidden("This requires the administrator role.")
            }
            AdminAccessError::Denied => {
                ApiError::Forbidden("The access policies do not allow this administrator action.")
            }
            AdminAccessError::EvaluationFailed => ApiError::AccessEvaluationFailed,
        }
    }
}

impl From<AuthzError> for ApiError {
    fn from(error: AuthzError) -> Self {
        match error {
            AuthzError::NotFound => ApiError::NotFound,
            AuthzError::Unexpected(cause) => ApiError::Unexpected(cause),
        }
    }
}

/// A storage failure the caller cannot fix: the generic 500 (the cause is logged).
impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        ApiError::Unexpected(anyhow::anyhow!(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_outage_is_503_from_every_area_and_a_fault_is_500() {
        let outages = [
            ApiError::from(AccountError::from(DbError::Lost)),
            ApiError::from(PolicyError::from(DbError::Busy(std::time::Duration::ZERO))),
            ApiError::from(DocumentError::from(DbError::Lost)),
            ApiError::from(WebhookError::from(DbError::Closed)),
            ApiError::from(DbError::Lost),
        ];
        for outage in outages {
            assert_eq!(outage.problem().status, 503, "{outage:?}");
        }
        let fault = ApiError::from(AccountError::from(DbError::NoWal("delete".to_owned())));
        assert_eq!(fault.problem().status, 500);
    }
}
