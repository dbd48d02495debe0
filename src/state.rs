//! What every handler can reach, shared through `web::Data<AppState>`: the services,
//! wired once. The database itself is not among them — handlers go through a
//! service — and the audit log is built here with its subscribers (the webhook
//! outbox), before any service takes a copy.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::accounts::browser_sessions::{BrowserSessions, SessionKind, SessionParts, SessionRules};
use crate::accounts::passkeys::{PasskeyParts, PasskeyService};
use crate::accounts::service::AccountParts;
use crate::admin::{AdminAccess, AdminOverview, SESSION_ABSOLUTE_SECONDS, SESSION_IDLE_SECONDS};
use crate::audit::AuditLog;
use crate::audit::{AuditEvent, Outcome};
use crate::auth::revocation::{RevocationStore, StoreCapacity};
use crate::auth::tokens::TokenService;
use crate::authz::DecisionService;
use crate::clock::Clock;
use crate::config::{KeyPurpose, Settings};
use crate::crypto::password::PasswordHasher;
use crate::crypto::stored_secrets::{self, Keyring};
use crate::db::anchor::Anchor;
use crate::db::{Database, DbError, NotReady, OpenOptions, sessions, users};
use crate::documents::service::DocumentService;
use crate::gate::GateService;
use crate::limits::RateLimits;
use crate::policy::service::PolicyService;
use crate::telemetry::metrics::Metrics;
use crate::webhooks::events::Outbox;
use crate::webhooks::service::WebhookService;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub audit: AuditLog,
    pub tokens: Arc<TokenService>,
    pub revocations: RevocationStore,
    pub accounts: AccountService,
    /// Passkeys: registration and passkey sign-in (ceremonies refused when
    /// `WEBAUTHN_RP_ID` / `PUBLIC_URL` configure none).
    pub passkeys: PasskeyService,
    pub limits: RateLimits,
    pub keyring: Keyring,
    pub policies: PolicyService,
    pub documents: DocumentService,
    pub webhooks: WebhookService,
    pub admin_sessions: BrowserSessions,
    /// The gate portal's sessions (idle for ever when the gate is off: nothing
    /// signs in).
    pub gate_sessions: BrowserSessions,
    /// The gate (forward-auth), when `GATE_PORTAL_URL` turns it on.
    pub gate: Option<GateService>,
    pub admin_access: AdminAccess,
    pub admin_overview: AdminOverview,
    pub decisions: DecisionService,
    /// What the services record, served on the metrics listener when it is on.
    pub metrics: Metrics,
    database: Database,
}

/// The audit log with every subscriber registered: the webhook outbox hears each
/// event inside the transaction that records it. Every process that writes the
/// log (the server, and commands that change data) builds it here.
/// `queued` is told whenever the outbox queues a delivery (the worker waits on it).
pub fn audit_log(db: &Database, clock: &Clock, queued: Arc<Notify>) -> AuditLog {
    AuditLog::new(db.clone(), clock.clone()).subscribe(Arc::new(Outbox::new(queued)))
}

/// A rollback accepted on purpose (a restored backup): every session the older copy
/// still thinks live ends — their tokens were handed out before the backup, and some
/// were ended after it — and the acceptance is audited, in one transaction.
async fn accept_rollback(
    db: &Database,
    audit: &AuditLog,
    clock: &Clock,
    anchored: &Anchor,
) -> anyhow::Result<()> {
    let now = clock.now();
    let event = AuditEvent::new("database.rollback_accepted", Outcome::Success)
        .with_actor("cli")
        .with_detail("anchored_event", anchored.event)
        .with_detail("anchored_hash", anchored.hash.as_str());
    let audit = audit.clone();
    let ended = db
        .write(move |tx| {
            let ended = sessions::end_everything(tx, now, "rollback_accepted")?;
            audit.append(tx, &event.with_detail("sessions_ended", ended))?;
            Ok::<_, DbError>(ended)
        })
        .await?;
    tracing::warn!(
        sessions_ended = ended,
        "started on a database older than its anchor (--accept-rollback): every session ended"
    );
    Ok(())
}

/// Accounts created before look-alike detection get their address normalised and
/// its skeleton, so the rule and sign-in cover them too. A no-op on later starts.
async fn fill_email_skeletons(db: &Database) -> anyhow::Result<()> {
    let fill = db
        .write(|tx| Ok::<_, DbError>(users::fill_missing_skeletons(tx)?))
        .await?;
    if fill.filled > 0 {
        tracing::info!(
            accounts = fill.filled,
            renormalised = fill.renormalised,
            "e-mail addresses normalised and look-alike skeletons filled in"
        );
    }
    for account in &fill.collisions {
        tracing::warn!(
            account = %account,
            "an older account's address normalises to another account's; left as stored (it cannot sign in until an administrator changes one of them)"
        );
    }
    Ok(())
}

impl AppState {
    /// Opens the database and builds every service. Used by the server and by
    /// commands that work on the data directly (create-admin, demo seeding).
    ///
    /// Refuses (with [`stored_secrets::KeyCheckError::Mismatch`]) when the
    /// configured keys cannot open the secrets already stored.
    pub async fn open(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        Self::open_with(settings, clock, OpenOptions::default()).await
    }

    /// As [`AppState::open`]; with `accept_rollback`, a database older than its
    /// anchor (a restored backup) is opened, every session in it is ended and the
    /// rollback is audited, before any service starts.
    pub async fn open_with(
        settings: Settings,
        clock: Clock,
        options: OpenOptions,
    ) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let gate_hosts: Vec<String> = settings
            .gate
            .iter()
            .flat_map(|gate| gate.hosts.iter().map(ToString::to_string))
            .collect();
        let metrics = Metrics::new(&gate_hosts);
        let db = Database::open_with(&settings.database, options)
            .await?
            .with_metrics(metrics.storage().clone());
        let keyring = Keyring::new(&settings)?;
        let keys = stored_secrets::check_keys(&db, &keyring, true).await?;
        for (column, rows) in &keys.legacy {
            tracing::warn!(
                column = %column,
                rows,
                "secrets stored in plaintext by an older system; run `portcullis migrate-secrets`"
            );
        }
        let deliveries_queued = Arc::new(Notify::new());
        let audit = audit_log(&db, &clock, Arc::clone(&deliveries_queued));
        if let Some(anchored) = db.rolled_back() {
            accept_rollback(&db, &audit, &clock, anchored).await?;
        }
        fill_email_skeletons(&db).await?;
        let tokens = Arc::new(TokenService::new(&settings.jwt));
        let revocations = RevocationStore::open(
            db.clone(),
            StoreCapacity {
                revocations: settings.jwt.revocation_cache_capacity,
                sessions: settings.jwt.session_cache_capacity,
            },
            tokens.access_ttl_seconds(),
            clock.clone(),
        )
        .await
        .with_metrics(metrics.sessions().clone());
        let limits =
            RateLimits::new(&settings.rate_limits, clock.clone()).with_metrics(metrics.limits());
        let accounts = AccountService::new(
            AccountParts {
                db: db.clone(),
                audit: audit.clone(),
                hasher: PasswordHasher::new(&settings.passwords)?
                    .with_metrics(metrics.password_hashing().clone()),
                tokens: Arc::clone(&tokens),
                revocations: revocations.clone(),
                clock: clock.clone(),
                mfa_box: keyring.for_purpose(KeyPurpose::Mfa).clone(),
                metrics: metrics.accounts().clone(),
            },
            &settings,
        );
        let passkeys = PasskeyService::new(
            PasskeyParts {
                db: db.clone(),
                audit: audit.clone(),
                clock: clock.clone(),
                accounts: accounts.clone(),
            },
            settings.webauthn.as_ref(),
        )
        .map_err(|e| anyhow::anyhow!("the passkey configuration is unusable: {e}"))?;
        let policies = PolicyService::load(db.clone(), audit.clone(), clock.clone()).await?;
        let documents = DocumentService::new(
            db.clone(),
            audit.clone(),
            policies.clone(),
            metrics.abac().clone(),
            clock.clone(),
        );
        let webhooks = WebhookService::new(
            db.clone(),
            audit.clone(),
            clock.clone(),
            keyring.for_purpose(KeyPurpose::Credential).clone(),
            settings.webhooks.clone(),
            deliveries_queued,
            metrics.webhooks().clone(),
        );
        let session_parts = || SessionParts {
            db: db.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            accounts: accounts.clone(),
            passkeys: passkeys.clone(),
            revocations: revocations.clone(),
        };
        let admin_sessions = BrowserSessions::new(
            session_parts(),
            SessionRules {
                kind: SessionKind::Admin,
                idle_seconds: SESSION_IDLE_SECONDS,
                absolute_seconds: SESSION_ABSOLUTE_SECONDS,
                require_mfa: settings.admin_require_mfa,
            },
            &settings.jwt.secret,
        );
        let gate_sessions = BrowserSessions::new(
            session_parts(),
            SessionRules {
                kind: SessionKind::Gate,
                idle_seconds: settings
                    .gate
                    .as_ref()
                    .map_or(3600, |g| g.session_idle_seconds),
                absolute_seconds: settings
                    .gate
                    .as_ref()
                    .map_or(12 * 3600, |g| g.session_max_seconds),
                require_mfa: false,
            },
            &settings.jwt.secret,
        );
        let gate = match &settings.gate {
            Some(gate) => Some(
                GateService::new(
                    gate,
                    policies.clone(),
                    audit.clone(),
                    clock.clone(),
                    metrics.abac().clone(),
                    metrics.gate().clone(),
                )
                .map_err(|e| anyhow::anyhow!("the gate's assertion key is unusable: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            gate,
            admin_access: AdminAccess::new(policies.clone(), metrics.abac().clone()),
            admin_overview: AdminOverview::new(db.clone(), audit.clone(), clock.clone()),
            decisions: DecisionService::new(
                accounts.clone(),
                documents.clone(),
                webhooks.clone(),
                policies.clone(),
                metrics.abac().clone(),
            ),
            settings,
            clock,
            audit,
            tokens,
            revocations,
            accounts,
            passkeys,
            limits,
            keyring,
            policies,
            documents,
            webhooks,
            admin_sessions,
            gate_sessions,
            metrics,
            database: db,
        })
    }

    /// Whether the database answers within `within` with the expected schema.
    pub async fn readiness(&self, within: std::time::Duration) -> Result<(), NotReady> {
        self.database.readiness(within).await
    }

    /// The database, for the start-up wiring and tests (fault injection). Handlers
    /// never use it: they call a service (the layering test checks).
    pub fn database(&self) -> &Database {
        &self.database
    }
}
