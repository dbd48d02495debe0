//! The plan of an import: what applying a policy file would create, change and
//! delete, worked out before anything is written, so `policies import --dry-run`
//! and the admin page's preview show exactly what applying it does.
//!
//! What a plan guarantees:
//!
//! - **The file is the whole truth**, but for the built-in policies: a stored
//!   policy the file does not list is deleted; a built-in one is kept, listed or not.
//! - **A built-in policy keeps its rule.** The administrator policy may not change
//!   at all, the owner policy only its status; a file that changes more is refused,
//!   naming each field (`policies[0].actions`).
//! - **All or nothing.** Every entry is validated (as the admin API validates a
//!   draft) before anything is planned; one problem refuses the whole file, each
//!   named by its JSON path (`policies[3].conditions.all[0].operator`).
//! - **What is applied is what was shown.** A plan remembers the store's generation
//!   it was made against; [`PolicyService::apply_plan`] refuses it once the stored
//!   policies have changed (`PolicyError::Stale`), in the same transaction.
//! - **Administrators are asked about first.** It says which administrator actions
//!   the import would take from whom, and whether it would be refused for leaving
//!   no administrator able to mend the policies.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use super::admin_guard::{self, ADMINISTRATORS_LISTED, AdminLoss};
use super::as_code::{PolicyFile, canonical_conditions, claim_id, under};
use super::engine::Context;
use super::service::{PolicyError, PolicyService, build_set};
use crate::audit::AdminActor;
use crate::db::users;
use crate::model::admin_action::AdminAction;
use crate::model::policy::{ADMIN_POLICY_ID, Effect, Policy, PolicyStatus, Principals};
use crate::validation::FieldError;

/// What an import does to one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Change,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Change => "change",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One field a change changes, as short text on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's name in the file (`priority`, `conditions`, …).
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// One policy the import creates, changes or deletes.
#[derive(Debug, Clone)]
pub struct PlannedChange {
    pub id: Uuid,
    pub name: String,
    pub kind: ChangeKind,
    /// For a change: the fields it changes.
    pub fields: Vec<FieldChange>,
    /// The policy as it will be stored; `None` for a delete.
    after: Option<Policy>,
}

/// How many policies a plan creates, changes, deletes and leaves as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to change, {} to delete, {} unchanged",
            self.created, self.changed, self.deleted, self.unchanged
        )
    }
}

#[derive(Debug, Clone)]
pub struct ImportPlan {
    /// The store's generation the plan was made against.
    pub(super) generation: i64,
    /// Creates and changes in the file's order, then deletes.
    pub changes: Vec<PlannedChange>,
    pub unchanged: usize,
    /// Administrator actions the import would take from each administrator, in the
    /// context it was planned in.
    pub admin_losses: Vec<AdminLoss>,
    /// Applying it would leave no active administrator able to mend the policies:
    /// it will be refused.
    pub locks_out_administrators: bool,
    /// Things worth a second look that are not errors.
    pub notes: Vec<String>,
}

impl ImportPlan {
    /// Nothing to create, change or delete.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let of = |kind| self.changes.iter().filter(|c| c.kind == kind).count();
        Counts {
            created: of(ChangeKind::Create),
            changed: of(ChangeKind::Change),
            deleted: of(ChangeKind::Delete),
            unchanged: self.unchanged,
        }
    }

    /// The store's generation the plan was made against, for a confirmation to
    /// carry: a plan made again for the confirmation is the one shown only when
    /// this is the same.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The administrator questions applying it asks, after `policy.import`: each
    /// change as it would be asked on its own (`policy.create`, `policy.update` or
    /// `policy.delete`, with the policy's id), so an import is no way around a deny
    /// on any of them. Every door that imports asks these.
    pub fn questions(&self) -> impl Iterator<Item = (AdminAction, Option<String>)> + '_ {
        self.changes.iter().map(|change| {
            let target = Some(change.id.to_string());
            match change.kind {
                ChangeKind::Create => (AdminAction::PolicyCreate, None),
                ChangeKind::Change => (AdminAction::PolicyUpdate, target),
                ChangeKind::Delete => (AdminAction::PolicyDelete, target),
            }
        })
    }

    /// The writes that apply it: each policy's new state, or `None` to delete it.
    pub(super) fn writes(&self) -> Vec<(Uuid, Option<Policy>)> {
        self.changes
            .iter()
            .map(|change| (change.id, change.after.clone()))
            .collect()
    }
}

impl PolicyService {
    /// Plans importing `file` over the stored policies (as the database has them
    /// now): validated entry by entry, each problem named `policies[i].field`
    /// (`PolicyError::Validation`). `context` is the one administrator losses are
    /// asked in; `actor` is who the new versions will name.
    pub async fn plan_import(
        &self,
        file: PolicyFile,
        actor: &AdminActor,
        context: &Context,
    ) -> Result<ImportPlan, PolicyError> {
        // Planned over what is stored, not a set a reload has yet to catch up with.
        self.reload_if_changed().await?;
        let (before, generation) = self.current_with_generation();
        let stored: HashMap<Uuid, &Arc<Policy>> = before.policies().map(|p| (p.id, p)).collect();
        let actor = actor.audit_name();
        let mut errors = Vec::new();
        let mut listed = HashMap::new();
        let mut changes = Vec::new();
        let mut unchanged = 0;
        let mut resulting: Vec<Policy> = Vec::new();
        for (index, entry) in file.policies.into_iter().enumerate() {
            let id = match claim_id(index, entry.id, &mut listed) {
                Ok(id) => id,
                Err(duplicate) => {
                    errors.push(duplicate);
                    continue;
                }
            };
            let previous = id.and_then(|id| stored.get(&id)).map(|p| &***p);
            if entry.built_in && !previous.is_some_and(|p| p.system) {
                errors.push(FieldError::rule(
                    format!("policies[{index}].built_in"),
                    "built_in",
                    "only Portcullis's own policies are built in (they keep the ids they are exported with); remove `built_in`",
                ));
            }
            let id = id.unwrap_or_else(Uuid::new_v4);
            let policy = match self.policy_from_draft(id, entry.draft(), previous, &actor) {
                Ok(policy) => policy,
                Err(found) => {
                    errors.extend(under(index, found));
                    continue;
                }
            };
            let Some(previous) = previous else {
                changes.push(PlannedChange {
                    id,
                    name: policy.name.clone(),
                    kind: ChangeKind::Create,
                    fields: whole(&policy, ChangeKind::Create),
                    after: Some(policy.clone()),
                });
                resulting.push(policy);
                continue;
            };
            let fields = field_changes(previous, &policy);
            if fields.is_empty() {
                unchanged += 1;
                resulting.push(previous.clone());
                continue;
            }
            if previous.system {
                let read_only = previous.id == ADMIN_POLICY_ID;
                let refused: Vec<FieldError> = fields
                    .iter()
                    .filter(|change| read_only || change.field != "status")
                    .map(|change| {
                        FieldError::rule(
                            format!("policies[{index}].{}", change.field),
                            "built_in",
                            if read_only {
                                "the built-in administrator policy is read-only: keep it as exported, or leave it out of the file"
                            } else {
                                "a built-in policy may only be activated or deactivated: keep the rest as exported"
                            },
                        )
                    })
                    .collect();
                if !refused.is_empty() {
                    errors.extend(refused);
                    continue;
                }
            }
            changes.push(PlannedChange {
                id,
                name: policy.name.clone(),
                kind: ChangeKind::Change,
                fields,
                after: Some(policy.clone()),
            });
            resulting.push(policy);
        }
        if !errors.is_empty() {
            return Err(PolicyError::Validation(errors));
        }
        for policy in before.policies().filter(|p| !listed.contains_key(&p.id)) {
            if policy.system {
                resulting.push((**policy).clone());
            } else {
                changes.push(PlannedChange {
                    id: policy.id,
                    name: policy.name.clone(),
                    kind: ChangeKind::Delete,
                    fields: whole(policy, ChangeKind::Delete),
                    after: None,
                });
            }
        }
        let mut notes = recreations(&changes);
        notes.extend(broad_grants(&changes));
        let after = build_set(resulting)?;
        let administrators = self
            .database()
            .read(|conn| Ok::<_, PolicyError>(users::active_administrators(conn, usize::MAX)?))
            .await?;
        let locks_out_administrators =
            admin_guard::locks_out(&before, &after, &administrators, &administrators);
        let listed_administrators =
            &administrators[..administrators.len().min(ADMINISTRATORS_LISTED)];
        let admin_losses = admin_guard::losses(&before, &after, listed_administrators, context);
        Ok(ImportPlan {
            generation,
            changes,
            unchanged,
            admin_losses,
            locks_out_administrators,
            notes,
        })
    }
}

/// A note for each new policy (one with no id in the file) named like one the
/// import deletes: most likely the same policy, which its id would keep.
fn recreations(changes: &[PlannedChange]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Create)
        .filter_map(|created| {
            let deleted = changes
                .iter()
                .find(|d| d.kind == ChangeKind::Delete && d.name == created.name)?;
            Some(format!(
                "“{}” is created new and deleted as {}: to change it in place instead, give its entry \"id\": \"{}\"",
                created.name, deleted.id, deleted.id
            ))
        })
        .collect()
}

/// A note for each policy the import creates or changes that allows actions on
/// administration (resource type `admin`, or every type) to everyone signed in or
/// to anyone: what a file is most dangerous for, and a plan shows only losses.
fn broad_grants(changes: &[PlannedChange]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|change| {
            let policy = change.after.as_ref()?;
            let broad = matches!(policy.principals, Principals::Everyone | Principals::Public);
            let on_administration = matches!(policy.resource_type.as_str(), "admin" | "*");
            (policy.effect == Effect::Allow
                && policy.status == PolicyStatus::Active
                && broad
                && on_administration)
                .then(|| {
                    format!(
                        "“{}” allows {} on {} to {}: make sure that is meant",
                        policy.name,
                        policy.actions.join(", "),
                        if policy.resource_type == "*" {
                            "every resource type, administration included".to_owned()
                        } else {
                            "administration".to_owned()
                        },
                        policy.principals.in_full()
                    )
                })
        })
        .collect()
}

/// Every field of a policy created or deleted: the side it has (after for a
/// create, before for a delete), the other empty.
fn whole(policy: &Policy, kind: ChangeKind) -> Vec<FieldChange> {
    fields_of(policy)
        .into_iter()
        .map(|(field, text)| match kind {
            ChangeKind::Delete => FieldChange {
                field,
                before: text,
                after: String::new(),
            },
            ChangeKind::Create | ChangeKind::Change => FieldChange {
                field,
                before: String::new(),
                after: text,
            },
        })
        .collect()
}

/// The fields of a policy a file sets, as text.
fn fields_of(policy: &Policy) -> [(&'static str, String); 9] {
    [
        ("name", policy.name.clone()),
        ("description", policy.description.clone()),
        ("effect", policy.effect.as_str().to_owned()),
        ("priority", policy.priority.to_string()),
        ("status", policy.status.as_str().to_owned()),
        ("resource_type", policy.resource_type.clone()),
        ("actions", policy.actions.join(", ")),
        ("principals", policy.principals.in_full()),
        (
            "conditions",
            canonical_conditions(policy.conditions.as_ref())
                .map_or_else(|| "(none: always)".to_owned(), |c| c.to_string()),
        ),
    ]
}

/// The fields `after` changes from `before`, each side whole (a shortened side
/// could hide the change).
fn field_changes(before: &Policy, after: &Policy) -> Vec<FieldChange> {
    fields_of(before)
        .into_iter()
        .zip(fields_of(after))
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, old), (_, new))| FieldChange {
            field,
            before: old,
            after: new,
        })
        .collect()
}
