//! The decision API's answers (`POST /api/v1/authz/check`): may the caller do an
//! action on a resource?
//!
//! For the resource types the server owns — `document`, `webhook`, `user`,
//! `policy`, `admin` — the resource is judged as the server holds it: loaded by id,
//! with its real owner and attributes, whatever the caller described (claiming to
//! own someone's webhook earns nothing). One that does not exist, or that the caller
//! may not read, is not found (404), so no answer reveals it. Only custom types are
//! judged as described, and the answer says so (`resource_source: caller`).
//!
//! Programmatic, so it never fails open: an evaluation error is `allowed: false`,
//! and audited.
//!
//! The simulator asks through here too ([`DecisionService::simulate`]): given the id
//! of a stored resource, it judges what is stored, as the system does, and says
//! which attributes came from the store and which were typed.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::accounts::{AccountError, AccountService};
use crate::documents::as_resource;
use crate::documents::service::{Caller, DocumentError, DocumentService};
use crate::policy::engine::{AccessRequest, Decision, Reason, Resource};
use crate::policy::service::{PolicyError, PolicyService};
use crate::policy::simulation::{SimulatedSubject, Simulation};
use crate::telemetry::metrics::{AbacMetrics, AbacResult};
use crate::webhooks::service::{WebhookError, WebhookService};

/// Where the judged resource came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceSource {
    /// Loaded by the server: its stored owner and attributes.
    Server,
    /// A custom type, judged as the caller described it.
    Caller,
}

#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub allowed: bool,
    pub source: ResourceSource,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// No such resource of a server-owned type, or one the caller may not read.
    #[error("no such resource")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The resource types the server owns, and so loads rather than believes.
pub const SERVER_OWNED: &[&str] = &["document", "webhook", "user", "policy", "admin"];

/// Where one input of a simulation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Stored,
    Typed,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Stored => "stored",
            Provenance::Typed => "typed",
        }
    }
}

/// A simulated decision, and what it was made on.
pub struct Simulated {
    pub decision: Decision,
    pub subject: Provenance,
    /// The resource's owner: from the store, or typed.
    pub owner: Provenance,
    /// Each resource attribute the decision saw, and where it came from.
    pub attributes: Vec<(String, Provenance)>,
}

#[derive(Clone)]
pub struct DecisionService {
    accounts: AccountService,
    documents: DocumentService,
    webhooks: WebhookService,
    policies: PolicyService,
    /// Counts the engine's decisions (simulations are not decisions).
    abac: AbacMetrics,
}

/// How the metrics count a decision. Here, not in `telemetry::metrics`, which
/// cannot name the engine's types: the engine's storage records its metrics there.
impl From<&Reason> for AbacResult {
    fn from(reason: &Reason) -> Self {
        match reason {
            Reason::AllowedBy { .. } => AbacResult::Allowed,
            Reason::DeniedBy { .. } => AbacResult::Denied,
            Reason::DefaultDeny => AbacResult::DefaultDeny,
            Reason::Error { .. } => AbacResult::Error,
        }
    }
}

impl DecisionService {
    pub fn new(
        accounts: AccountService,
        documents: DocumentService,
        webhooks: WebhookService,
        policies: PolicyService,
        abac: AbacMetrics,
    ) -> Self {
        Self {
            accounts,
            documents,
            webhooks,
            policies,
            abac,
        }
    }

    /// May `caller` do `action` on `described`?
    pub async fn check(
        &self,
        caller: &Caller,
        action: &str,
        described: Resource,
    ) -> Result<Answer, AuthzError> {
        if !SERVER_OWNED.contains(&described.kind.as_str()) {
            let allowed = self.decide(caller, action, described).await == Some(true);
            return Ok(Answer {
                allowed,
                source: ResourceSource::Caller,
            });
        }
        let resource = self.load(&described).await?;
        let answer = |allowed| Answer {
            allowed,
            source: ResourceSource::Server,
        };
        // A stored resource the caller may not read does not exist for them. An
        // evaluation error is a `false`, not a 404 (it is no answer about the
        // resource). Admin resources are actions, not stored objects: nothing to read.
        let stored = resource.id.is_some() && described.kind != "admin";
        if stored {
            match self.decide(caller, "read", resource.clone()).await {
                Some(true) if action == "read" => return Ok(answer(true)),
                Some(true) => {}
                Some(false) => return Err(AuthzError::NotFound),
                None => return Ok(answer(false)),
            }
        }
        Ok(answer(
            self.decide(caller, action, resource).await == Some(true),
        ))
    }

    /// What the engine would decide, and why. A stored user is used as stored; a
    /// resource of a server-owned type whose id names a stored one is judged as
    /// stored (its owner and attributes win over typed ones; typed attributes it
    /// lacks are kept, and marked typed), so the simulator agrees with the system.
    /// An id that names nothing stored describes a hypothetical resource, as typed.
    pub async fn simulate(&self, simulation: Simulation) -> Result<Simulated, PolicyError> {
        let subject = match simulation.subject {
            SimulatedSubject::User(_) => Provenance::Stored,
            SimulatedSubject::Described { .. } | SimulatedSubject::SignedOut => Provenance::Typed,
        };
        let typed = simulation.resource.clone();
        let stored = SERVER_OWNED.contains(&typed.kind.as_str())
            && typed.id.is_some()
            && typed.kind != "admin";
        let loaded = if stored {
            match self.load(&typed).await {
                Ok(resource) => Some(resource),
                // No such stored resource: a hypothetical one, judged as typed.
                Err(AuthzError::NotFound) => None,
                Err(AuthzError::Unexpected(cause)) => return Err(PolicyError::Unexpected(cause)),
            }
        } else {
            None
        };
        let (resource, owner, attributes) = match loaded {
            Some(mut resource) => {
                let mut sources: Vec<(String, Provenance)> = resource
                    .attributes
                    .keys()
                    .map(|k| (k.clone(), Provenance::Stored))
                    .collect();
                for (key, value) in typed.attributes {
                    if !resource.attributes.contains_key(&key) {
                        sources.push((key.clone(), Provenance::Typed));
                        resource.attributes.insert(key, value);
                    }
                }
                (resource, Provenance::Stored, sources)
            }
            None => {
                let sources = typed
                    .attributes
                    .keys()
                    .map(|k| (k.clone(), Provenance::Typed))
                    .collect();
                (typed, Provenance::Typed, sources)
            }
        };
        let decision = self
            .policies
            .simulate(Simulation {
                resource,
                ..simulation
            })
            .await?;
        Ok(Simulated {
            decision,
            subject,
            owner,
            attributes,
        })
    }

    /// The engine's answer: `Some(allowed)`, or `None` when it could not evaluate
    /// (audited).
    async fn decide(&self, caller: &Caller, action: &str, resource: Resource) -> Option<bool> {
        let request = AccessRequest {
            subject: caller.subject.clone(),
            action: action.to_owned(),
            resource,
            context: caller.context.clone(),
        };
        let decision = self.policies.decide(&request);
        self.abac.decided(AbacResult::from(&decision.reason));
        if let Reason::Error { .. } = decision.reason {
            self.policies
                .audit_evaluation_failure(&request, &decision, &caller.meta)
                .await;
            return None;
        }
        Some(decision.allowed)
    }

    /// The resource as the server holds it; described owner and attributes are
    /// ignored. Without an id (say, "may I create a document?"), it has neither.
    async fn load(&self, described: &Resource) -> Result<Resource, AuthzError> {
        let kind = described.kind.clone();
        let bare = |id: Option<String>| Resource {
            kind: kind.clone(),
            id,
            owner_id: None,
            attributes: Map::new(),
        };
        let Some(id_text) = described.id.clone() else {
            return Ok(bare(None));
        };
        if kind == "admin" {
            return Ok(bare(Some(id_text)));
        }
        let id = Uuid::parse_str(&id_text).map_err(|_| AuthzError::NotFound)?;
        match kind.as_str() {
            "document" => match self.documents.stored(id).await {
                Ok(Some(document)) => Ok(as_resource(&document)),
                Ok(None) => Err(AuthzError::NotFound),
                Err(DocumentError::Unexpected(cause)) => Err(AuthzError::Unexpected(cause)),
                Err(other) => Err(AuthzError::Unexpected(anyhow::Error::new(other))),
            },
            "webhook" => match self.webhooks.find(id).await {
                Ok(webhook) => {
                    let mut attributes = Map::new();
                    attributes.insert("enabled".to_owned(), Value::from(webhook.enabled));
                    attributes.insert("events".to_owned(), Value::from(webhook.events.clone()));
                    Ok(Resource {
                        owner_id: Some(webhook.owner_id.to_string()),
                        attributes,
                        ..bare(Some(id_text))
                    })
                }
                Err(WebhookError::NotFound) => Err(AuthzError::NotFound),
                Err(WebhookError::Unexpected(cause)) => Err(AuthzError::Unexpected(cause)),
                Err(other) => Err(AuthzError::Unexpected(anyhow::Error::new(other))),
            },
            "user" => match self.accounts.find_user(crate::model::UserId(id)).await {
                Ok(user) => Ok(Resource {
                    // An account is its own holder's.
                    owner_id: Some(user.id.to_string()),
                    attributes: user.attributes.clone(),
                    ..bare(Some(id_text))
                }),
                Err(AccountError::UserNotFound) => Err(AuthzError::NotFound),
                Err(AccountError::Unexpected(cause)) => Err(AuthzError::Unexpected(cause)),
                Err(other) => Err(AuthzError::Unexpected(anyhow::Error::new(other))),
            },
            _ => match self.policies.get(id) {
                Ok(policy) => {
                    let mut attributes = Map::new();
                    attributes.insert("effect".to_owned(), Value::from(policy.effect.as_str()));
                    attributes.insert(
                        "resource_type".to_owned(),
                        Value::from(policy.resource_type.clone()),
                    );
                    attributes.insert("status".to_owned(), Value::from(policy.status.as_str()));
                    Ok(Resource {
                        attributes,
                        ..bare(Some(id_text))
                    })
                }
                Err(PolicyError::NotFound) => Err(AuthzError::NotFound),
                Err(PolicyError::Unexpected(cause)) => Err(AuthzError::Unexpected(cause)),
                Err(other) => Err(AuthzError::Unexpected(anyhow::Error::new(other))),
            },
        }
    }
}
