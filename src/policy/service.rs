//! Stored policies and the live policy set. Every change is validated, written with
//! a version snapshot and an audit record (before and after) in one transaction,
//! and the recompiled set is swapped in whole on the writer's thread right after the
//! commit: a decision sees the old set or the new one, never half of each.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Value, json};
use uuid::Uuid;

use super::admin_guard::{self, ADMINISTRATORS_LISTED, AdminLoss};
use super::engine::{AccessRequest, Context, Decision, PolicySet, Reason};
use super::plan::ImportPlan;
use super::validate::{PolicyDraft, check_draft, compile};
use crate::audit::{AdminActor, AuditEvent, AuditLog, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::db::Database;
use crate::db::policies::{self, VersionRow};
use crate::db::users;
use crate::model::policy::{ADMIN_POLICY_ID, Policy, PolicyStatus};
use crate::model::{Role, User, UserId, UserStatus};
use crate::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy")]
    Validation(Vec<FieldError>),
    #[error("no such policy")]
    NotFound,
    #[error("a built-in policy cannot be deleted")]
    SystemPolicy,
    #[error("the built-in administrator policy is read-only")]
    ReadOnly,
    #[error("a built-in policy may only be activated or deactivated")]
    BuiltInRule,
    #[error("this change would leave no active administrator able to edit policies")]
    LocksOutAdministrators,
    /// The stored policies changed after an import was planned: it is planned
    /// again, never applied over changes its plan did not show.
    #[error("the policies changed since this import was planned; plan it again")]
    Stale,
    #[error("stored policy {id} no longer compiles: {reason}")]
    Corrupt { id: Uuid, reason: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

crate::db::storage_failures_are_unexpected!(PolicyError);

/// Compiles every stored policy into a set. One that does not compile (a row
/// edited outside Portcullis) is an error: the set is never built without it.
pub(super) fn build_set(stored: Vec<Policy>) -> Result<PolicySet, PolicyError> {
    let mut compiled = Vec::with_capacity(stored.len());
    for policy in stored {
        let id = policy.id;
        compiled.push(compile(policy).map_err(|errors| {
            PolicyError::Corrupt {
                id,
                reason: errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })?);
    }
    Ok(PolicySet::new(compiled))
}

/// The policy `draft` saves as `id` (over `previous`, when it exists) at `now`,
/// validated as every door validates it: the draft's own fields, then its
/// conditions compiled, so every error is reported at once.
pub(super) fn build_policy(
    id: Uuid,
    draft: PolicyDraft,
    previous: Option<&Policy>,
    actor: &str,
    now: i64,
) -> Result<Policy, Vec<FieldError>> {
    let mut errors = check_draft(&draft);
    let policy = Policy {
        id,
        name: draft.name.trim().to_owned(),
        description: draft.description,
        effect: draft.effect,
        resource_type: draft.resource_type,
        actions: draft.actions,
        conditions: draft.conditions.filter(|c| !c.is_null()),
        priority: draft.priority,
        status: draft.status,
        principals: draft.principals,
        version: previous.map_or(1, |p| p.version + 1),
        system: previous.is_some_and(|p| p.system),
        created_by: previous.map_or(Some(actor.to_owned()), |p| p.created_by.clone()),
        created_at: previous.map_or(now, |p| p.created_at),
        updated_by: Some(actor.to_owned()),
        updated_at: now,
    };
    if let Err(more) = compile(policy.clone()) {
        errors.extend(more);
    }
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(errors)
    }
}

/// The store's generation and every stored policy, as of one moment.
async fn read_stored(db: &Database) -> Result<(i64, Vec<Policy>), PolicyError> {
    db.read(|conn| {
        // One read transaction: the generation is the one the policies were read at.
        let snapshot = conn.unchecked_transaction()?;
        let read = (policies::generation(&snapshot)?, policies::all(&snapshot)?);
        snapshot.finish()?;
        Ok::<_, PolicyError>(read)
    })
    .await
}

fn snapshot(policy: &Policy) -> Value {
    serde_json::to_value(policy).unwrap_or(Value::Null)
}

/// One stored version of a policy: the change, who made it and when, and the
/// policy as it was then.
#[derive(Debug, Clone)]
pub struct PolicyVersion {
    pub version: i64,
    /// `created`, `updated` or `deleted`.
    pub change: String,
    /// The snapshot as stored.
    pub snapshot: Value,
    /// The snapshot read back as a policy (`None` for one that no longer reads).
    pub policy: Option<Policy>,
    pub changed_by: Option<String>,
    pub changed_at: i64,
}

impl From<VersionRow> for PolicyVersion {
    fn from(row: VersionRow) -> Self {
        Self {
            policy: serde_json::from_value(row.snapshot.clone()).ok(),
            version: row.version,
            change: row.change,
            snapshot: row.snapshot,
            changed_by: row.changed_by,
            changed_at: row.changed_at,
        }
    }
}

impl PolicyVersion {
    /// The policy as it was, as far as this version says: a snapshot of only some
    /// fields (the owner policy's first, written by its migration, keeps only the
    /// rule) reads with the others taken from `current`. `None` for a snapshot
    /// that does not read even so.
    pub fn policy_over(&self, current: &Policy) -> Option<Policy> {
        if let Some(policy) = &self.policy {
            return Some(policy.clone());
        }
        let fields = self.snapshot.as_object()?;
        let mut merged = serde_json::to_value(current).ok()?;
        merged
            .as_object_mut()?
            .extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_json::from_value(merged).ok()
    }
}

#[derive(Clone)]
pub struct PolicyService {
    db: Database,
    audit: AuditLog,
    clock: Clock,
    current: Arc<RwLock<Loaded>>,
}

/// The live set and the store's generation it was built from.
struct Loaded {
    set: Arc<PolicySet>,
    generation: i64,
}

trait Install {
    /// Swaps `loaded` in unless a newer generation is already live: a reload that
    /// read before a commit never puts the older set back.
    fn install(&self, loaded: Loaded) -> bool;
}

impl Install for RwLock<Loaded> {
    fn install(&self, loaded: Loaded) -> bool {
        let mut current = self.write();
        if loaded.generation < current.generation {
            return false;
        }
        *current = loaded;
        true
    }
}

impl PolicyService {
    /// Loads and compiles every stored policy.
    pub async fn load(db: Database, audit: AuditLog, clock: Clock) -> Result<Self, PolicyError> {
        let (generation, stored) = read_stored(&db).await?;
        let set = build_set(stored)?;
        Ok(Self {
            db,
            audit,
            clock,
            current: Arc::new(RwLock::new(Loaded {
                set: Arc::new(set),
                generation,
            })),
        })
    }

    /// Reloads the set when the stored policies changed behind this process's back
    /// (`portcullis policies deactivate` on the host, the break-glass); the
    /// start-up wiring runs this every few seconds. A set that no longer builds
    /// (a row edited outside Portcullis) is replaced by an empty one: every
    /// decision is a deny until it is fixed. Returns whether it reloaded.
    pub async fn reload_if_changed(&self) -> Result<bool, PolicyError> {
        let known = self.current.read().generation;
        let latest = self
            .db
            .read(|conn| Ok::<_, PolicyError>(policies::generation(conn)?))
            .await?;
        if latest == known {
            return Ok(false);
        }
        let (generation, stored) = read_stored(&self.db).await?;
        let set = match build_set(stored) {
            Ok(set) => set,
            Err(error) => {
                tracing::error!(%error, "stored policies no longer build; denying everything until they are fixed");
                PolicySet::new(Vec::new())
            }
        };
        let installed = self.current.install(Loaded {
            set: Arc::new(set),
            generation,
        });
        if installed {
            tracing::info!(generation, "policies changed in the database; reloaded");
        }
        Ok(installed)
    }

    pub(super) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    /// The live set: an immutable snapshot, unaffected by later changes.
    pub fn current(&self) -> Arc<PolicySet> {
        Arc::clone(&self.current.read().set)
    }

    /// The live set and the store's generation it was built from, read together.
    pub(super) fn current_with_generation(&self) -> (Arc<PolicySet>, i64) {
        let loaded = self.current.read();
        (Arc::clone(&loaded.set), loaded.generation)
    }

    /// The decision for `request`, without explanation.
    pub fn decide(&self, request: &AccessRequest) -> Decision {
        self.current().decide(request)
    }

    /// The decision with every applicable policy's conditions.
    pub fn explain(&self, request: &AccessRequest) -> Decision {
        self.current().explain(request)
    }

    /// The programmatic check: `true` only for an allow. An evaluation error is
    /// `false`, and audited.
    pub async fn is_allowed(&self, request: &AccessRequest, meta: &RequestMeta) -> bool {
        let decision = self.decide(request);
        if let Reason::Error { .. } = decision.reason {
            self.audit_evaluation_failure(request, &decision, meta)
                .await;
        }
        decision.allowed
    }

    /// Records an evaluation failure (with the request id) in the audit log and the
    /// error log. A failure to record it is logged; the decision stays deny.
    pub async fn audit_evaluation_failure(
        &self,
        request: &AccessRequest,
        decision: &Decision,
        meta: &RequestMeta,
    ) {
        let Reason::Error { policy, error } = &decision.reason else {
            return;
        };
        tracing::error!(policy = %policy, path = %error.path, message = %error.message, "policy evaluation failed; access denied");
        let mut event = AuditEvent::of_request("authz.evaluation_failed", Outcome::Denied, meta)
            .with_actor(request.subject.id.to_string())
            .with_target(policy.to_string())
            .with_detail("action", request.action.as_str())
            .with_detail("resource_type", request.resource.kind.as_str())
            .with_detail("condition", error.path.as_str())
            .with_detail("error", error.message.as_str());
        if let Some(id) = &request.resource.id {
            event = event.with_detail("resource_id", id.as_str());
        }
        if let Err(error) = self.audit.record(event).await {
            tracing::error!(%error, "could not audit a failed policy evaluation");
        }
    }

    pub fn list(&self) -> Vec<Arc<Policy>> {
        self.current().policies().cloned().collect()
    }

    pub fn get(&self, id: Uuid) -> Result<Arc<Policy>, PolicyError> {
        self.current()
            .policies()
            .find(|p| p.id == id)
            .cloned()
            .ok_or(PolicyError::NotFound)
    }

    /// Every version of a policy that exists, newest first. A deleted policy has no
    /// history here (`NotFound`, as for any other read of it): the audit log keeps
    /// every change's before and after. A built-in policy never edited has one
    /// version, the one it was created with.
    pub async fn history(&self, id: Uuid) -> Result<Vec<PolicyVersion>, PolicyError> {
        let current = self.get(id)?;
        let rows = self
            .db
            .read(move |conn| Ok::<_, PolicyError>(policies::versions(conn, id)?))
            .await?;
        if rows.is_empty() {
            return Ok(vec![PolicyVersion {
                version: current.version,
                change: "created".to_owned(),
                snapshot: serde_json::to_value(&*current).unwrap_or(Value::Null),
                changed_by: current.created_by.clone(),
                changed_at: current.created_at,
                policy: Some((*current).clone()),
            }]);
        }
        Ok(rows.into_iter().map(PolicyVersion::from).collect())
    }

    pub(super) fn policy_from_draft(
        &self,
        id: Uuid,
        draft: PolicyDraft,
        previous: Option<&Policy>,
        actor: &str,
    ) -> Result<Policy, Vec<FieldError>> {
        build_policy(id, draft, previous, actor, self.clock.now())
    }

    /// Writes `changes` (new state, or `None` to delete) with versions and audit
    /// records (and the `summary` record, if any, naming every change), and swaps in
    /// the recompiled set after the commit.
    async fn commit(
        &self,
        changes: Vec<(Uuid, Option<Policy>)>,
        actor: &AdminActor,
        meta: &RequestMeta,
        summary: Option<Summary>,
    ) -> Result<(), PolicyError> {
        self.commit_over(changes, actor, meta, summary, None).await
    }

    /// [`Self::commit`], refused as [`PolicyError::Stale`] when `planned_over` is
    /// given and the store's generation is no longer it: the changes were worked
    /// out from policies that have changed since.
    async fn commit_over(
        &self,
        changes: Vec<(Uuid, Option<Policy>)>,
        actor: &AdminActor,
        meta: &RequestMeta,
        summary: Option<Summary>,
        planned_over: Option<i64>,
    ) -> Result<(), PolicyError> {
        if changes.iter().any(|(id, _)| *id == ADMIN_POLICY_ID) {
            return Err(PolicyError::ReadOnly);
        }
        let actor_id = actor.audit_name();
        let audit = self.audit.clone();
        let now = self.clock.now();
        let meta = meta.clone();
        let summary_event = summary;
        let current = Arc::clone(&self.current);
        let before = self.current();
        self.db
            .write_then(
                move |tx| {
                    if let Some(planned) = planned_over
                        && policies::generation(tx)? != planned
                    {
                        return Err(PolicyError::Stale);
                    }
                    let mut summary = Vec::new();
                    for (id, after) in &changes {
                        let before = policies::find(tx, *id)?;
                        let (name, change) = match (&before, after) {
                            (None, Some(_)) => ("policy.created", "created"),
                            (Some(_), Some(_)) => ("policy.updated", "updated"),
                            (Some(_), None) => ("policy.deleted", "deleted"),
                            (None, None) => return Err(PolicyError::NotFound),
                        };
                        // Numbered here, under the write lock: concurrent changes and
                        // re-created ids never reuse a version.
                        let version = policies::last_version(tx, *id)? + 1;
                        let after = after.clone().map(|mut policy| {
                            policy.version = version;
                            policy
                        });
                        match (&after, &before) {
                            (Some(policy), _) => {
                                policies::put(tx, policy)?;
                                policies::add_version(tx, policy, change, Some(&actor_id), now)?;
                            }
                            (None, Some(old)) => {
                                policies::delete(tx, *id)?;
                                let mut gone = old.clone();
                                gone.version = version;
                                policies::add_version(tx, &gone, change, Some(&actor_id), now)?;
                            }
                            (None, None) => {}
                        }
                        summary.push(json!({"id": id, "change": change}));
                        let record = AuditEvent::of_request(name, Outcome::Success, &meta)
                            .with_actor(actor_id.clone())
                            .with_target(id.to_string())
                            .with_detail("before", before.as_ref().map_or(Value::Null, snapshot))
                            .with_detail("after", after.as_ref().map_or(Value::Null, snapshot));
                        audit.append(tx, &record)?;
                    }
                    if let Some(Summary { name, details }) = &summary_event {
                        let mut record = AuditEvent::of_request(*name, Outcome::Success, &meta)
                            .with_actor(actor_id.clone())
                            .with_detail("policies", Value::Array(summary));
                        for (key, value) in details {
                            record = record.with_detail(key, value.clone());
                        }
                        audit.append(tx, &record)?;
                    }
                    // Compiled inside the transaction: a set that cannot be built
                    // rolls the change back, and so does one that would lock every
                    // administrator out of editing policies.
                    let set = build_set(policies::all(tx)?)?;
                    let administrators = users::active_administrators(tx, usize::MAX)?;
                    if admin_guard::locks_out(&before, &set, &administrators, &administrators) {
                        return Err(PolicyError::LocksOutAdministrators);
                    }
                    Ok(Loaded {
                        set: Arc::new(set),
                        generation: policies::generation(tx)?,
                    })
                },
                move |loaded: &Loaded| {
                    current.install(Loaded {
                        set: Arc::clone(&loaded.set),
                        generation: loaded.generation,
                    });
                },
            )
            .await
            .map(|_| ())
    }

    /// What saving `draft` (as policy `id`, or a new one) or deleting `id` (no
    /// draft) would take from the active administrators, asked in `context`. A
    /// draft that does not validate is a `Validation` error, as on save.
    pub async fn admin_impact(
        &self,
        id: Option<Uuid>,
        draft: Option<&PolicyDraft>,
        context: &Context,
    ) -> Result<Vec<AdminLoss>, PolicyError> {
        let previous = id.and_then(|id| self.get(id).ok());
        let before = self.current();
        let mut stored: Vec<Policy> = before
            .policies()
            .filter(|p| Some(p.id) != id)
            .map(|p| (**p).clone())
            .collect();
        if let Some(draft) = draft {
            let changed = self
                .policy_from_draft(
                    id.unwrap_or_else(Uuid::new_v4),
                    draft.clone(),
                    previous.as_deref(),
                    "preview",
                )
                .map_err(PolicyError::Validation)?;
            stored.push(changed);
        }
        let after = build_set(stored)?;
        let administrators = self
            .db
            .read(|conn| {
                Ok::<_, PolicyError>(users::active_administrators(conn, ADMINISTRATORS_LISTED)?)
            })
            .await?;
        Ok(admin_guard::losses(
            &before,
            &after,
            &administrators,
            context,
        ))
    }

    /// Whether changing one administrator — `target` becoming `after`, or no longer
    /// an account at all (`None`: locked, disabled, deleted) — would leave no
    /// active administrator able to mend the policies while one could before.
    /// The account doors ask this before such a change.
    pub async fn account_change_locks_out(
        &self,
        target: UserId,
        after: Option<User>,
    ) -> Result<bool, PolicyError> {
        let before = self
            .db
            .read(|conn| Ok::<_, PolicyError>(users::active_administrators(conn, usize::MAX)?))
            .await?;
        if !before.iter().any(|a| a.id == target) {
            return Ok(false);
        }
        let mut remaining: Vec<User> = before.iter().filter(|a| a.id != target).cloned().collect();
        remaining.extend(after.filter(|u| u.role == Role::Admin && u.status == UserStatus::Active));
        let set = self.current();
        Ok(admin_guard::locks_out(&set, &set, &before, &remaining))
    }

    pub async fn create(
        &self,
        draft: PolicyDraft,
        actor: &AdminActor,
        meta: &RequestMeta,
    ) -> Result<Arc<Policy>, PolicyError> {
        let id = Uuid::new_v4();
        let policy = self
            .policy_from_draft(id, draft, None, &actor.audit_name())
            .map_err(PolicyError::Validation)?;
        self.commit(vec![(id, Some(policy))], actor, meta, None)
            .await?;
        self.get(id)
    }

    pub async fn update(
        &self,
        id: Uuid,
        draft: PolicyDraft,
        actor: &AdminActor,
        meta: &RequestMeta,
    ) -> Result<Arc<Policy>, PolicyError> {
        let previous = self.get(id)?;
        let policy = self
            .policy_from_draft(id, draft, Some(&previous), &actor.audit_name())
            .map_err(PolicyError::Validation)?;
        refuse_a_new_built_in_rule(&previous, &policy)?;
        self.commit(vec![(id, Some(policy))], actor, meta, None)
            .await?;
        self.get(id)
    }

    pub async fn set_status(
        &self,
        id: Uuid,
        status: PolicyStatus,
        actor: &AdminActor,
        meta: &RequestMeta,
    ) -> Result<Arc<Policy>, PolicyError> {
        let previous = self.get(id)?;
        let mut policy = (*previous).clone();
        policy.status = status;
        policy.version += 1;
        policy.updated_by = Some(actor.audit_name());
        policy.updated_at = self.clock.now();
        self.commit(vec![(id, Some(policy))], actor, meta, None)
            .await?;
        self.get(id)
    }

    /// Saves version `version` of policy `id` again as its newest version: validated
    /// as an edit is, versioned and audited (`policy.updated` with the before and
    /// after, and `policy.restored` naming the version restored). A built-in policy
    /// may only get its status back; the administrator policy nothing.
    pub async fn restore(
        &self,
        id: Uuid,
        version: i64,
        actor: &AdminActor,
        meta: &RequestMeta,
    ) -> Result<Arc<Policy>, PolicyError> {
        let previous = self.get(id)?;
        if id == ADMIN_POLICY_ID {
            return Err(PolicyError::ReadOnly);
        }
        let old = self
            .history(id)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or(PolicyError::NotFound)?;
        let snapshot = old
            .policy_over(&previous)
            .ok_or_else(|| PolicyError::Corrupt {
                id,
                reason: format!("version {version} no longer reads as a policy"),
            })?;
        let policy = self
            .policy_from_draft(
                id,
                draft_of(&snapshot),
                Some(&previous),
                &actor.audit_name(),
            )
            .map_err(PolicyError::Validation)?;
        refuse_a_new_built_in_rule(&previous, &policy)?;
        let summary = Summary {
            name: "policy.restored",
            details: vec![("restored_version", Value::from(version))],
        };
        self.commit(vec![(id, Some(policy))], actor, meta, Some(summary))
            .await?;
        self.get(id)
    }

    pub async fn delete(
        &self,
        id: Uuid,
        actor: &AdminActor,
        meta: &RequestMeta,
    ) -> Result<(), PolicyError> {
        if self.get(id)?.system {
            return Err(PolicyError::SystemPolicy);
        }
        self.commit(vec![(id, None)], actor, meta, None).await
    }

    /// Applies an import plan in one transaction: every change it lists, each with
    /// its version and its own audit record (before and after), then one
    /// `policy.imported` record naming them all and `source`. All or nothing: it is
    /// refused as [`PolicyError::Stale`] when the stored policies changed after the
    /// plan was made, and as [`PolicyError::LocksOutAdministrators`] when the
    /// resulting set would leave no administrator able to mend the policies. A plan
    /// with nothing to do writes nothing.
    pub async fn apply_plan(
        &self,
        plan: &ImportPlan,
        actor: &AdminActor,
        meta: &RequestMeta,
        source: &str,
    ) -> Result<(), PolicyError> {
        if plan.is_empty() {
            return Ok(());
        }
        let counts = plan.counts();
        let summary = Summary {
            name: "policy.imported",
            details: vec![
                ("source", Value::from(source)),
                ("created", Value::from(counts.created)),
                ("changed", Value::from(counts.changed)),
                ("deleted", Value::from(counts.deleted)),
                ("unchanged", Value::from(counts.unchanged)),
            ],
        };
        self.commit_over(
            plan.writes(),
            actor,
            meta,
            Some(summary),
            Some(plan.generation),
        )
        .await
    }
}

/// The audit record a change adds after those of each policy: its event name and
/// details, besides the list of policies changed.
struct Summary {
    name: &'static str,
    details: Vec<(&'static str, Value)>,
}

/// A stored policy as the draft that would save it again.
fn draft_of(policy: &Policy) -> PolicyDraft {
    PolicyDraft {
        name: policy.name.clone(),
        description: policy.description.clone(),
        effect: policy.effect,
        resource_type: policy.resource_type.clone(),
        actions: policy.actions.clone(),
        conditions: policy.conditions.clone(),
        priority: policy.priority,
        status: policy.status,
        principals: policy.principals.clone(),
    }
}

/// A built-in policy keeps its rule: the owner policy may change only its status,
/// the administrator policy nothing at all.
fn refuse_a_new_built_in_rule(previous: &Policy, next: &Policy) -> Result<(), PolicyError> {
    if previous.id == ADMIN_POLICY_ID {
        return Err(PolicyError::ReadOnly);
    }
    if previous.system && !previous.same_rule_as(next) {
        return Err(PolicyError::BuiltInRule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(generation: i64) -> Loaded {
        Loaded {
            set: Arc::new(PolicySet::new(Vec::new())),
            generation,
        }
    }

    #[test]
    fn an_older_generation_never_replaces_a_newer_one() {
        let current = RwLock::new(loaded(5));
        assert!(
            !current.install(loaded(4)),
            "a reload that read before a commit"
        );
        assert_eq!(current.read().generation, 5);
        assert!(current.install(loaded(5)), "the same generation, rebuilt");
        assert!(current.install(loaded(7)));
        assert_eq!(current.read().generation, 7);
    }
}
