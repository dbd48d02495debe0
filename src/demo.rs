//! Demo data: an admin and two users in different departments, created on the first
//! demo start with fresh random passwords that are shown once. Alice has MFA on; her
//! `otpauth://` URI is shown once too, to scan into an authenticator app.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::accounts::service::RequestMeta;
use crate::accounts::{Email, Role, UserId};
use crate::auth::mfa::TotpSecret;
use crate::crypto::keys::random_password;
use crate::db::{DbError, users};
use crate::state::AppState;

pub struct DemoAccount {
    pub role: Role,
    pub email: String,
    pub department: &'static str,
    pub password: SecretString,
    /// The account's TOTP URI, when the demo turned MFA on for it.
    pub mfa_uri: Option<SecretString>,
}

/// Role, e-mail, department, and whether MFA is on.
const ACCOUNTS: &[(Role, &str, &str, bool)] = &[
    (Role::Admin, "admin@portcullis.test", "security", false),
    (Role::User, "alice@portcullis.test", "engineering", true),
    (Role::User, "bob@portcullis.test", "sales", false),
];

/// Creates the demo accounts if the database has no users yet; returns the ones
/// created (empty on later starts).
pub async fn seed(state: &AppState) -> anyhow::Result<Vec<DemoAccount>> {
    let existing = state
        .db
        .read(|conn| Ok::<_, DbError>(users::count(conn)?))
        .await?;
    if existing > 0 {
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    for (role, email, department, with_mfa) in ACCOUNTS {
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("demo e-mail {email} {e}"))?;
        let password = random_password()?;
        let checked = state
            .accounts
            .check_new_password(password.clone(), &email, "password")
            .await
            .map_err(|e| anyhow::anyhow!("generated demo password refused: {e}"))?;
        let mut attributes = Map::new();
        attributes.insert("department".to_owned(), Value::from(*department));
        let user = state
            .accounts
            .create_user(
                email.clone(),
                checked,
                *role,
                attributes,
                &RequestMeta::default(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot create demo account {email}: {e}"))?;
        let mfa_uri = if *with_mfa {
            Some(enable_mfa(state, user.id).await?)
        } else {
            None
        };
        created.push(DemoAccount {
            role: *role,
            email: email.to_string(),
            department,
            password,
            mfa_uri,
        });
    }
    Ok(created)
}

/// Turns MFA on the way a user would: setup, then a current code from the secret.
async fn enable_mfa(state: &AppState, user: UserId) -> anyhow::Result<SecretString> {
    let meta = RequestMeta::default();
    let setup = state.accounts.setup_mfa(user, &meta).await?;
    let secret = TotpSecret::from_base32(setup.secret_base32.expose_secret().as_bytes())?;
    let code = secret.code_at(state.clock.now())?;
    state.accounts.enable_mfa(user, &code, &meta).await?;
    Ok(setup.otpauth_uri)
}

/// The lines the demo prints once, right after seeding.
pub fn describe(accounts: &[DemoAccount]) -> String {
    let mut out = String::from(
        "Demo accounts (passwords shown once; delete the demo database to start over):\n",
    );
    for account in accounts {
        out.push_str(&format!(
            "  {:<5}  {:<24}  {}  (department: {})\n",
            account.role.as_str(),
            account.email,
            account.password.expose_secret(),
            account.department
        ));
        if let Some(uri) = &account.mfa_uri {
            out.push_str(&format!(
                "         MFA on: scan or paste into an authenticator app: {}\n",
                uri.expose_secret()
            ));
        }
    }
    out
}
