//! Registration: self-service sign-up (always the `user` role) and the account
//! creation that `create-admin`, the demo and administrators share with it.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{AccountError, AccountService};
use crate::accounts::password_policy::NewPassword;
use crate::audit::{AdminActor, AuditEvent, Outcome, RequestMeta};
use crate::db::users;
use crate::model::{Email, Role, User, UserId, UserStatus};
use crate::validation::FieldError;

impl AccountService {
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

    /// An administrator creates an account, checked as a registration is (the
    /// e-mail, look-alikes, the password rules); audited under the administrator.
    pub async fn create_by_admin(
        &self,
        admin: &AdminActor,
        email: &str,
        password: SecretString,
        role: Role,
        meta: &RequestMeta,
    ) -> Result<User, AccountError> {
        let email = Email::parse(email)
            .map_err(|m| AccountError::Validation(vec![FieldError::new("email", m)]))?;
        let password = self
            .check_new_password(password, &email, "password")
            .await?;
        self.insert_user(email, password, role, Map::new(), Some(admin), meta)
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
        self.insert_user(email, password, role, attributes, None, meta)
            .await
    }

    /// Creates an account, audited as a registration or, with `admin`, as the
    /// administrator's creation of it.
    async fn insert_user(
        &self,
        email: Email,
        password: NewPassword,
        role: Role,
        attributes: Map<String, Value>,
        admin: Option<&AdminActor>,
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
        let audit_event = match admin {
            Some(admin) => AuditEvent::of_request("admin.user_created", Outcome::Success, meta)
                .with_actor(admin.audit_name()),
            None => AuditEvent::of_request("auth.registered", Outcome::Success, meta)
                .with_actor(user.id.to_string()),
        }
        .with_target(user.id.to_string())
        .with_detail("role", role.as_str());
        let audit = self.audit.clone();
        self.db
            .write(move |tx| {
                if users::look_alike_exists(tx, &user.email)? {
                    return Err(AccountError::EmailTaken);
                }
                if let Err(error) = users::insert(tx, &user) {
                    return Err(if is_unique_violation(&error) {
                        AccountError::EmailTaken
                    } else {
                        error.into()
                    });
                }
                audit.append(tx, &audit_event)?;
                Ok(user)
            })
            .await
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}
