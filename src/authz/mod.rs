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

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::accounts::{AccountError, AccountService};
use crate::documents::as_resource;
use crate::documents::service::{Caller, DocumentError, DocumentService};
use crate::policy::engine::{AccessRequest, Reason, Resource};
use crate::policy::service::{PolicyError, PolicyService};
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

#[derive(Clone)]
pub struct DecisionService {
    accounts: AccountService,
    documents: DocumentService,
    webhooks: WebhookService,
    policies: PolicyService,
}

impl DecisionService {
    pub fn new(
        accounts: AccountService,
        documents: DocumentService,
        webhooks: WebhookService,
        policies: PolicyService,
    ) -> Self {
        Self {
            accounts,
            documents,
            webhooks,
            policies,
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
