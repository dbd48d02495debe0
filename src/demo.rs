//! Demo data: an admin and two users in different departments, created on the first
//! demo start with fresh random passwords that are shown once.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::accounts::service::RequestMeta;
use crate::accounts::{Email, Role};
use crate::crypto::keys::random_password;
use crate::db::{DbError, users};
use crate::state::AppState;

pub struct DemoAccount {
    pub role: Role,
    pub email: String,
    pub department: &'static str,
    pub password: SecretString,
}

const ACCOUNTS: &[(Role, &str, &str)] = &[
    (Role::Admin, "admin@portcullis.test", "security"),
    (Role::User, "alice@portcullis.test", "engineering"),
    (Role::User, "bob@portcullis.test", "sales"),
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
    for (role, email, department) in ACCOUNTS {
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("demo e-mail {email} {e}"))?;
        let password = random_password()?;
        let checked = state
            .accounts
            .check_new_password(password.clone(), &email, "password")
            .await
            .map_err(|e| anyhow::anyhow!("generated demo password refused: {e}"))?;
        let mut attributes = Map::new();
        attributes.insert("department".to_owned(), Value::from(*department));
        state
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
        created.push(DemoAccount {
            role: *role,
            email: email.to_string(),
            department,
            password,
        });
    }
    Ok(created)
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
    }
    out
}
