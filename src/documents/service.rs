//! Documents, every access decided by the policy engine. Reads, updates and deletes
//! first ask "may the caller read it?": a no is 404, so a caller cannot even learn a
//! document exists. The owner comes from the caller, never from input.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cache::{Cache, hasher};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::as_resource;
use crate::audit::{AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::db::{Database, documents};
use crate::model::document::{Classification, Document};
use crate::policy::engine::{AccessRequest, Context, Reason, Resource, Subject};
use crate::policy::service::PolicyService;
use crate::telemetry::metrics::{AbacMetrics, AbacResult};
use crate::validation::FieldError;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_PAGE: usize = 100;
/// Rows examined per list request at most, however few the caller may read.
const MAX_SCANNED: usize = 2_000;
const SCAN_BATCH: usize = 200;

/// What a write does. An update carries the row it was decided on.
#[derive(Debug)]
enum Write {
    Insert,
    Update(Box<Document>),
    Delete,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("invalid document")]
    Validation(Vec<FieldError>),
    #[error("no such document")]
    NotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("changed meanwhile")]
    Conflict,
    #[error("access control evaluation failed")]
    EvaluationFailed,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(DocumentError);

/// Who is asking, with what, from where.
pub struct Caller {
    pub subject: Subject,
    pub context: Context,
    pub meta: RequestMeta,
}

/// A document's writable fields, every one given (create, replace).
#[derive(Debug, Clone)]
pub struct DocumentInput {
    pub title: String,
    pub body: String,
    pub classification: Classification,
    pub attributes: Map<String, Value>,
}

/// Some of a document's writable fields (patch).
#[derive(Debug, Clone, Default)]
pub struct DocumentPatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub classification: Option<Classification>,
    pub attributes: Option<Map<String, Value>>,
}

fn is_attribute_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn is_attribute_value(value: &Value) -> bool {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.chars().count() <= 1000,
        Value::Number(_) | Value::Bool(_) => true,
        _ => false,
    };
    match value {
        Value::Array(items) => items.len() <= 100 && items.iter().all(scalar),
        other => scalar(other),
    }
}

fn validate(input: &DocumentInput) -> Result<(), DocumentError> {
    let mut errors = Vec::new();
    let title = input.title.trim();
    if title.is_empty() {
        errors.push(FieldError::rule("title", "required", "must not be empty"));
    } else if title.chars().count() > MAX_TITLE_CHARS {
        errors.push(FieldError::rule(
            "title",
            "max_length",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if input.body.chars().count() > MAX_BODY_CHARS {
        errors.push(FieldError::rule(
            "body",
            "max_length",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    if input.attributes.len() > MAX_ATTRIBUTES {
        errors.push(FieldError::rule(
            "attributes",
            "too_many",
            format!("may hold at most {MAX_ATTRIBUTES} keys"),
        ));
    }
    for (key, value) in &input.attributes {
        if !is_attribute_key(key) {
            errors.push(FieldError::rule(
                "attributes",
                "invalid_key",
                "keys are 1–64 letters, digits, `_` or `-`",
            ));
        } else if !is_attribute_value(value) {
            errors.push(FieldError::rule(
                format!("attributes.{key}"),
                "invalid_value",
                "must be a string (≤ 1000 characters), number, boolean, or a list of up to 100 of them",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DocumentError::Validation(errors))
    }
}

/// How long a cached document may be served without re-reading it. Every write
/// through this service evicts the entry at once; the bound only limits how stale a
/// change made outside the service (another process) can look.
const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_CAPACITY: u64 = 10_000;

#[derive(Clone)]
pub struct DocumentService {
    db: Database,
    audit: AuditLog,
    policies: PolicyService,
    /// Counts the engine's decisions.
    abac: AbacMetrics,
    clock: Clock,
    /// Recently read documents: reads outnumber writes, and a database round trip
    /// is most of a read's cost. Decisions are never cached, only the data.
    cache: Cache<Uuid, Document>,
    /// Bumped by every committed write before it evicts: a read that started before
    /// a write cannot put the older row back into the cache after it.
    writes: Arc<AtomicU64>,
}

/// A page of documents and where the next one starts.
pub struct DocumentPage {
    pub documents: Vec<Document>,
    pub next_cursor: Option<Uuid>,
}

impl DocumentService {
    pub fn new(
        db: Database,
        audit: AuditLog,
        policies: PolicyService,
        abac: AbacMetrics,
        clock: Clock,
    ) -> Self {
        Self {
            db,
            audit,
            policies,
            abac,
            clock,
            writes: Arc::new(AtomicU64::new(0)),
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(CACHE_TTL)
                .build_with_hasher(hasher()),
        }
    }

    /// Asks the engine. An evaluation error is audited and fails the request.
    async fn allowed(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource,
    ) -> Result<bool, DocumentError> {
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
            return Err(DocumentError::EvaluationFailed);
        }
        Ok(decision.allowed)
    }

    async fn find(&self, id: Uuid) -> Result<Option<Document>, DocumentError> {
        let writes_before = self.writes.load(Ordering::SeqCst);
        if let Some(document) = self.cache.get(&id) {
            return Ok(Some(document));
        }
        let found = self
            .db
            .read(move |conn| Ok::<_, DocumentError>(documents::find(conn, id)?))
            .await?;
        if let Some(document) = &found {
            self.cache.insert(id, document.clone());
            // A write committed while this read ran: what was read may be older.
            if self.writes.load(Ordering::SeqCst) != writes_before {
                self.cache.invalidate(&id);
            }
        }
        Ok(found)
    }

    /// The document, if the caller may read it; 404 otherwise.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<Document, DocumentError> {
        let document = self.find(id).await?.ok_or(DocumentError::NotFound)?;
        if self.allowed(caller, "read", as_resource(&document)).await? {
            Ok(document)
        } else {
            Err(DocumentError::NotFound)
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        input: DocumentInput,
    ) -> Result<Document, DocumentError> {
        validate(&input)?;
        let now = self.clock.now();
        let document = Document {
            id: Uuid::new_v4(),
            owner_id: caller.subject.id,
            title: input.title.trim().to_owned(),
            body: input.body,
            classification: input.classification,
            attributes: input.attributes,
            created_at: now,
            updated_at: now,
        };
        if !self
            .allowed(caller, "create", as_resource(&document))
            .await?
        {
            return Err(DocumentError::Forbidden);
        }
        self.write(caller, "document.created", document, Write::Insert)
            .await
    }

    /// Replaces or patches a document. The caller must be allowed to read it (else
    /// 404) and to update it both as it is and as it would become (else 403), so an
    /// update cannot move a document out from under the policies.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: DocumentPatch,
    ) -> Result<Document, DocumentError> {
        let current = self.get(caller, id).await?;
        let input = DocumentInput {
            title: patch.title.unwrap_or_else(|| current.title.clone()),
            body: patch.body.unwrap_or_else(|| current.body.clone()),
            classification: patch.classification.unwrap_or(current.classification),
            attributes: patch
                .attributes
                .unwrap_or_else(|| current.attributes.clone()),
        };
        validate(&input)?;
        let updated = Document {
            title: input.title.trim().to_owned(),
            body: input.body,
            classification: input.classification,
            attributes: input.attributes,
            updated_at: self.clock.now(),
            ..current.clone()
        };
        if !self
            .allowed(caller, "update", as_resource(&current))
            .await?
            || !self
                .allowed(caller, "update", as_resource(&updated))
                .await?
        {
            return Err(DocumentError::Forbidden);
        }
        self.write(
            caller,
            "document.updated",
            updated,
            Write::Update(Box::new(current)),
        )
        .await
    }

    pub async fn delete(&self, caller: &Caller, id: Uuid) -> Result<(), DocumentError> {
        let current = self.get(caller, id).await?;
        if !self
            .allowed(caller, "delete", as_resource(&current))
            .await?
        {
            return Err(DocumentError::Forbidden);
        }
        self.write(caller, "document.deleted", current, Write::Delete)
            .await
            .map(|_| ())
    }

    async fn write(
        &self,
        caller: &Caller,
        event_name: &str,
        document: Document,
        kind: Write,
    ) -> Result<Document, DocumentError> {
        let record = AuditEvent::of_request(event_name, Outcome::Success, &caller.meta)
            .with_actor(caller.subject.id.to_string())
            .with_target(document.id.to_string())
            .with_detail("classification", document.classification.as_str());
        let (cache, id, audit) = (self.cache.clone(), document.id, self.audit.clone());
        let writes = Arc::clone(&self.writes);
        self.db
            .write_then(
                move |tx| {
                    let done = match kind {
                        Write::Insert => {
                            documents::insert(tx, &document)?;
                            true
                        }
                        Write::Update(old) => documents::update(tx, &document, &old)?,
                        Write::Delete => documents::delete(tx, document.id)?,
                    };
                    if !done {
                        // Changed or deleted since it was read and decided on.
                        return Err(DocumentError::Conflict);
                    }
                    audit.append(tx, &record)?;
                    Ok(document)
                },
                // On the writer's thread right after the commit, so a client that
                // hangs up cannot leave a stale entry behind.
                move |_| {
                    writes.fetch_add(1, Ordering::SeqCst);
                    cache.invalidate(&id);
                },
            )
            .await
    }

    /// The stored document, if there is one: for the decision API, which judges it
    /// as stored. Nothing is decided here.
    pub async fn stored(&self, id: Uuid) -> Result<Option<Document>, DocumentError> {
        self.find(id).await
    }

    /// The documents the caller may read, in id order from `after`. Examines at most
    /// a bounded number of rows per call; `next_cursor` continues from there.
    pub async fn list(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<DocumentPage, DocumentError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut cursor = after;
        let mut found = Vec::new();
        let mut scanned = 0;
        loop {
            let from = cursor;
            let batch = self
                .db
                .read(move |conn| Ok::<_, DocumentError>(documents::page(conn, from, SCAN_BATCH)?))
                .await?;
            let exhausted = batch.len() < SCAN_BATCH;
            for document in batch {
                scanned += 1;
                cursor = Some(document.id);
                // A document whose decision errs (audited) is left out of the list:
                // one unreadable document must not fail everyone's listing.
                let readable = match self.allowed(caller, "read", as_resource(&document)).await {
                    Ok(readable) => readable,
                    Err(DocumentError::EvaluationFailed) => false,
                    Err(other) => return Err(other),
                };
                if readable {
                    found.push(document);
                    if found.len() == limit {
                        return Ok(DocumentPage {
                            documents: found,
                            next_cursor: cursor,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(DocumentPage {
                    documents: found,
                    next_cursor: None,
                });
            }
            if scanned >= MAX_SCANNED {
                return Ok(DocumentPage {
                    documents: found,
                    next_cursor: cursor,
                });
            }
        }
    }
}
