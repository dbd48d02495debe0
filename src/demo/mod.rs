//! Demo data: an admin and two users in different departments, created on the first
//! demo start with fresh random passwords that are shown once. Alice has MFA on; her
//! `otpauth://` URI is shown once too, to scan into an authenticator app.
//!
//! Policies let the two demo departments read each other's `internal` documents but
//! never `confidential` ones, everyone read `public` ones; a few documents of each
//! kind exist to try them on.

pub mod webhook;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::audit::{AdminActor, RequestMeta};
use crate::auth::mfa::TotpSecret;
use crate::crypto::keys::random_password;
use crate::documents::service::{Caller, DocumentInput};
use crate::model::document::Classification;
use crate::model::{Email, Role, User, UserId};
use crate::policy::as_code::{self, FileFormat, PolicyFile};
use crate::policy::engine::{Context, Subject};
use crate::policy::service::PolicyError;
use crate::state::AppState;

pub struct DemoAccount {
    pub role: Role,
    pub email: String,
    pub department: &'static str,
    pub password: SecretString,
    /// The account's TOTP URI, when the demo turned MFA on for it.
    pub mfa_uri: Option<SecretString>,
}

/// The demo's administrator.
pub const ADMIN_EMAIL: &str = "admin@portcullis.test";

/// Role, e-mail, department, and whether MFA is on.
const ACCOUNTS: &[(Role, &str, &str, bool)] = &[
    (Role::Admin, ADMIN_EMAIL, "security", false),
    (Role::User, "alice@portcullis.test", "engineering", true),
    (Role::User, "bob@portcullis.test", "sales", false),
];

/// Creates the demo accounts if the database has no users yet; returns the ones
/// created (empty on later starts).
pub async fn seed(state: &AppState) -> anyhow::Result<Vec<DemoAccount>> {
    let existing = state.accounts.count_users().await?;
    if existing > 0 {
        return Ok(Vec::new());
    }
    let mut created = Vec::new();
    let mut users = Vec::new();
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
        users.push(user.clone());
        created.push(DemoAccount {
            role: *role,
            email: email.to_string(),
            department,
            password,
            mfa_uri,
        });
    }
    seed_policies(state).await?;
    seed_documents(state, &users).await?;
    Ok(created)
}

/// The demo's policies: the example policy file shipped in `data/examples/`,
/// imported as `portcullis policies import` imports a file. A test keeps the file
/// equal to what `portcullis policies export` prints for a fresh demo.
const POLICIES: &str = include_str!("../../data/examples/policies.json");

async fn seed_policies(state: &AppState) -> anyhow::Result<()> {
    // Seeded by the operator who started the demo, on the host.
    let operator = AdminActor::HostOperator;
    let file: PolicyFile = as_code::read(POLICIES, FileFormat::Json).map_err(|problem| {
        anyhow::anyhow!(
            "data/examples/policies.json: {}: {}",
            problem.field,
            problem.message
        )
    })?;
    let context = Context {
        now: state.clock.now(),
        ..Context::default()
    };
    let refused = |error: PolicyError| match error {
        PolicyError::Validation(problems) => anyhow::anyhow!(
            "data/examples/policies.json: {}",
            problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("demo policies: {other}"),
    };
    let plan = state
        .policies
        .plan_import(file, &operator, &context)
        .await
        .map_err(refused)?;
    state
        .policies
        .apply_plan(&plan, &operator, &RequestMeta::default(), "demo")
        .await
        .map_err(refused)
}

async fn seed_documents(state: &AppState, users: &[User]) -> anyhow::Result<()> {
    let docs: [(&str, &str, &str, Classification); 5] = [
        (
            "admin@portcullis.test",
            "Welcome to Portcullis",
            "Everyone signed in can read this.",
            Classification::Public,
        ),
        (
            "alice@portcullis.test",
            "Engineering roadmap",
            "Sales may read this: it is internal.",
            Classification::Internal,
        ),
        (
            "alice@portcullis.test",
            "Incident postmortem",
            "Only Alice may read this: it is confidential.",
            Classification::Confidential,
        ),
        (
            "bob@portcullis.test",
            "Q4 pipeline",
            "Engineering may read this: it is internal.",
            Classification::Internal,
        ),
        (
            "bob@portcullis.test",
            "Pricing strategy",
            "Only Bob may read this: it is confidential.",
            Classification::Confidential,
        ),
    ];
    for (owner, title, body, classification) in docs {
        let user = users
            .iter()
            .find(|u| u.email.as_str() == owner)
            .ok_or_else(|| anyhow::anyhow!("no demo user {owner}"))?;
        let mut attributes = Map::new();
        if let Some(department) = user.attributes.get("department") {
            attributes.insert("department".to_owned(), department.clone());
        }
        let caller = Caller {
            subject: Subject::from(user),
            context: Context {
                now: state.clock.now(),
                ..Context::default()
            },
            meta: RequestMeta::default(),
        };
        let input = DocumentInput {
            title: title.to_owned(),
            body: body.to_owned(),
            classification,
            attributes,
        };
        state
            .documents
            .create(&caller, input)
            .await
            .map_err(|e| anyhow::anyhow!("demo document {title}: {e}"))?;
    }
    Ok(())
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

/// The lines the demo prints once, right after seeding; `start_over` is the command
/// that starts the demo over with new passwords.
pub fn describe(accounts: &[DemoAccount], start_over: &str) -> String {
    let mut out = format!("Demo accounts (passwords shown once; `{start_over}` starts over):\n");
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
