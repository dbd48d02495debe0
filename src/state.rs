//! What every handler can reach, shared through `web::Data<AppState>`.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::audit::AuditLog;
use crate::auth::admin_session::AdminSessions;
use crate::auth::revocation::RevocationStore;
use crate::auth::tokens::TokenService;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret_box::KeyPurpose;
use crate::crypto::stored_secrets::{self, Keyring};
use crate::db::Database;
use crate::documents::service::DocumentService;
use crate::limits::RateLimits;
use crate::policy::service::PolicyService;
use crate::webhooks::service::WebhookService;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub db: Database,
    pub audit: AuditLog,
    pub tokens: Arc<TokenService>,
    pub revocations: RevocationStore,
    pub accounts: AccountService,
    pub limits: RateLimits,
    pub keyring: Keyring,
    pub policies: PolicyService,
    pub documents: DocumentService,
    pub webhooks: WebhookService,
    pub admin_sessions: AdminSessions,
}

impl AppState {
    /// Opens the database and builds every service. Used by the server and by
    /// commands that work on the data directly (create-admin, demo seeding).
    ///
    /// Refuses (with [`stored_secrets::KeyCheckError::WrongKey`]) when the
    /// configured keys cannot open the secrets already stored.
    pub async fn open(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let db = Database::open(&settings.database).await?;
        let keyring = Keyring::new(&settings)?;
        let keys = stored_secrets::check_keys(&db, &keyring, true).await?;
        for (column, rows) in &keys.legacy {
            tracing::warn!(
                column = %column,
                rows,
                "secrets stored in plaintext by an older system; run `portcullis migrate-secrets`"
            );
        }
        let audit = AuditLog::new(db.clone());
        let tokens = Arc::new(TokenService::new(&settings.jwt));
        let revocations = RevocationStore::open(
            db.clone(),
            settings.jwt.revocation_cache_capacity,
            tokens.access_ttl_seconds(),
            clock.clone(),
        )
        .await;
        let hasher = PasswordHasher::new(&settings.passwords)?;
        let limits = RateLimits::new(&settings.rate_limits, clock.clone());
        let accounts = AccountService::new(
            db.clone(),
            hasher,
            Arc::clone(&tokens),
            revocations.clone(),
            clock.clone(),
            &settings,
            keyring.for_purpose(KeyPurpose::Mfa).clone(),
        );
        let policies = PolicyService::load(db.clone(), clock.clone()).await?;
        let documents = DocumentService::new(db.clone(), policies.clone(), clock.clone());
        let webhooks = WebhookService::new(
            db.clone(),
            clock.clone(),
            keyring.for_purpose(KeyPurpose::Credential).clone(),
            settings.webhooks.clone(),
        );
        let admin_sessions =
            AdminSessions::new(db.clone(), clock.clone(), accounts.clone(), &settings);
        Ok(Self {
            settings,
            clock,
            db,
            audit,
            tokens,
            revocations,
            accounts,
            limits,
            keyring,
            policies,
            documents,
            webhooks,
            admin_sessions,
        })
    }
}
