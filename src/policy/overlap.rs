//! Whether a policy about to be saved is shadowed by, or overlaps, an existing
//! active policy on the same resource type and an overlapping action: said as a
//! warning before saving, never a refusal. Pure functions over stored policies,
//! with the engine's rules: a deny always wins over an allow (priority orders the
//! list, never the outcome), and a policy without conditions applies whenever its
//! resource type, action and principals match.
//!
//! What is said, for each existing active policy sharing an action:
//! - an unconditional deny covering the new allow: it would never allow them;
//! - an unconditional policy of the same effect covering the new one: it changes
//!   nothing for them;
//! - the new policy, an unconditional deny, covering an existing allow: that allow
//!   no longer takes effect for them;
//! - the new policy, unconditional, covering one of the same effect: that one no
//!   longer changes anything for them;
//! - otherwise, opposite effects on the same resource type for principals that may
//!   be the same people: where both apply, the deny wins.
//!
//! Policies of the same effect that both have conditions only add up, so nothing
//! is said about them.

use std::fmt;

use uuid::Uuid;

use super::validate::PolicyDraft;
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};

/// The policy being saved, as the analysis reads it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The stored policy it replaces, when editing (never compared with itself).
    pub id: Option<Uuid>,
    pub effect: Effect,
    pub resource_type: &'a str,
    pub actions: &'a [String],
    /// Whether it has conditions (`null` counts as none).
    pub conditional: bool,
    pub principals: &'a Principals,
}

impl<'a> Candidate<'a> {
    /// The draft about to be saved as policy `id` (or a new one).
    pub fn of_draft(id: Option<Uuid>, draft: &'a PolicyDraft) -> Self {
        Self {
            id,
            effect: draft.effect,
            resource_type: draft.resource_type.trim(),
            actions: &draft.actions,
            conditional: draft.conditions.as_ref().is_some_and(|c| !c.is_null()),
            principals: &draft.principals,
        }
    }
}

/// How an existing policy and the new one meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapKind {
    /// An existing unconditional deny covers the new allow.
    DeniedBy,
    /// An existing unconditional policy of the same effect covers the new one.
    AlreadyCovered,
    /// The new unconditional deny covers an existing allow.
    SwitchesOff,
    /// The new unconditional policy covers an existing one of the same effect.
    MakesRedundant,
    /// Opposite effects that may apply to the same request.
    Conflicts,
}

/// One existing policy the new one meets, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub kind: OverlapKind,
    pub other_id: Uuid,
    pub other_name: String,
    pub other_effect: Effect,
    /// The resource type both apply to (the narrower one when one is `*`).
    pub resource_type: String,
    /// The actions both apply to (`*` for every action).
    pub actions: Vec<String>,
    /// Whom the covering policy applies to, in words.
    pub principals: String,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions = if self.actions.iter().any(|a| a == "*") {
            "every action".to_owned()
        } else {
            self.actions.join(", ")
        };
        let on = format!("{actions} on `{}`", self.resource_type);
        let name = &self.other_name;
        let verb = match self.other_effect {
            Effect::Allow => "allows",
            Effect::Deny => "denies",
        };
        match self.kind {
            OverlapKind::DeniedBy => write!(
                f,
                "“{name}” already denies {on} to {} without conditions, and a deny always wins over an allow whatever the priorities: this policy would never allow {actions}.",
                self.principals
            ),
            OverlapKind::AlreadyCovered => write!(
                f,
                "“{name}” already {verb} {on} to {} without conditions: this policy would change nothing for {actions}.",
                self.principals
            ),
            OverlapKind::SwitchesOff => write!(
                f,
                "This deny has no conditions and covers {} for {on}, so “{name}”, which allows them, would no longer take effect for {actions}.",
                self.principals
            ),
            OverlapKind::MakesRedundant => write!(
                f,
                "This policy has no conditions and covers {} for {on}, so “{name}”, which {verb} them too, would no longer change anything for {actions}.",
                self.principals
            ),
            OverlapKind::Conflicts => {
                let winner = match self.other_effect {
                    Effect::Deny => format!("“{name}”"),
                    Effect::Allow => "this policy".to_owned(),
                };
                write!(
                    f,
                    "“{name}” {verb} {on} too, and may apply to the same requests: where both apply, the deny ({winner}) wins whatever the priorities."
                )
            }
        }
    }
}

/// Whom `principals` names, in words.
pub fn describe_principals(principals: &Principals) -> String {
    match principals {
        Principals::Public => "anyone, signed in or not".to_owned(),
        Principals::Everyone => "everyone signed in".to_owned(),
        Principals::Roles { roles } => format!(
            "the role{} {}",
            if roles.len() == 1 { "" } else { "s" },
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Principals::Users { ids } => match ids.len() {
            1 => "1 listed user".to_owned(),
            n => format!("{n} listed users"),
        },
    }
}

/// Whether `wide` takes in everyone `narrow` does.
pub fn principals_cover(wide: &Principals, narrow: &Principals) -> bool {
    match (wide, narrow) {
        (Principals::Public, _) => true,
        (Principals::Everyone, other) => *other != Principals::Public,
        (Principals::Roles { roles: wide }, Principals::Roles { roles: narrow }) => {
            narrow.iter().all(|r| wide.contains(r))
        }
        (Principals::Users { ids: wide }, Principals::Users { ids: narrow }) => {
            narrow.iter().all(|id| wide.contains(id))
        }
        _ => false,
    }
}

/// Whether some request may be taken in by both. Roles and user lists may meet
/// (a listed user may have the role).
pub fn principals_meet(a: &Principals, b: &Principals) -> bool {
    match (a, b) {
        (Principals::Roles { roles: a }, Principals::Roles { roles: b }) => {
            a.iter().any(|r| b.contains(r))
        }
        (Principals::Users { ids: a }, Principals::Users { ids: b }) => {
            a.iter().any(|id| b.contains(id))
        }
        _ => true,
    }
}

/// The actions both lists name (`*` stands for every action).
pub fn shared_actions(a: &[String], b: &[String]) -> Vec<String> {
    let every = |list: &[String]| list.iter().any(|x| x == "*");
    match (every(a), every(b)) {
        (true, true) => vec!["*".to_owned()],
        (true, false) => b.to_vec(),
        (false, true) => a.to_vec(),
        (false, false) => a.iter().filter(|x| b.contains(x)).cloned().collect(),
    }
}

/// Whether resource type `wide` takes in `narrow`.
fn type_covers(wide: &str, narrow: &str) -> bool {
    wide == "*" || wide == narrow
}

/// How `candidate` meets the one existing policy `other`, if it does.
fn meet(candidate: &Candidate<'_>, other: &Policy) -> Option<Overlap> {
    if Some(other.id) == candidate.id || other.status != PolicyStatus::Active {
        return None;
    }
    let actions = shared_actions(candidate.actions, &other.actions);
    if actions.is_empty() {
        return None;
    }
    let other_conditional = other.conditions.as_ref().is_some_and(|c| !c.is_null());
    let same_effect = candidate.effect == other.effect;
    let other_covers = !other_conditional
        && type_covers(&other.resource_type, candidate.resource_type)
        && principals_cover(&other.principals, candidate.principals);
    let candidate_covers = !candidate.conditional
        && type_covers(candidate.resource_type, &other.resource_type)
        && principals_cover(candidate.principals, &other.principals);
    let (kind, covering) = if other_covers && other.effect == Effect::Deny && !same_effect {
        (OverlapKind::DeniedBy, &other.principals)
    } else if other_covers && same_effect {
        (OverlapKind::AlreadyCovered, &other.principals)
    } else if candidate_covers && candidate.effect == Effect::Deny && !same_effect {
        (OverlapKind::SwitchesOff, candidate.principals)
    } else if candidate_covers && same_effect {
        (OverlapKind::MakesRedundant, candidate.principals)
    } else if !same_effect
        && other.resource_type == candidate.resource_type
        && principals_meet(candidate.principals, &other.principals)
    {
        (OverlapKind::Conflicts, &other.principals)
    } else {
        return None;
    };
    let resource_type = if candidate.resource_type == "*" {
        other.resource_type.clone()
    } else {
        candidate.resource_type.to_owned()
    };
    Some(Overlap {
        kind,
        other_id: other.id,
        other_name: other.name.clone(),
        other_effect: other.effect,
        resource_type,
        actions,
        principals: describe_principals(covering),
    })
}

/// Every existing active policy the candidate is shadowed by or overlaps, in the
/// order given.
pub fn overlaps<'p>(
    candidate: &Candidate<'_>,
    existing: impl IntoIterator<Item = &'p Policy>,
) -> Vec<Overlap> {
    existing
        .into_iter()
        .filter_map(|other| meet(candidate, other))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Role, UserId};

    fn stored(name: &str, effect: Effect, actions: &[&str], principals: Principals) -> Policy {
        Policy {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            description: String::new(),
            effect,
            resource_type: "document".to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            conditions: None,
            priority: 0,
            status: PolicyStatus::Active,
            principals,
            version: 1,
            system: false,
            created_by: None,
            created_at: 0,
            updated_by: None,
            updated_at: 0,
        }
    }

    fn roles(roles: &[Role]) -> Principals {
        Principals::Roles {
            roles: roles.to_vec(),
        }
    }

    fn candidate<'a>(
        effect: Effect,
        actions: &'a [String],
        conditional: bool,
        principals: &'a Principals,
    ) -> Candidate<'a> {
        Candidate {
            id: None,
            effect,
            resource_type: "document",
            actions,
            conditional,
            principals,
        }
    }

    fn list(actions: &[&str]) -> Vec<String> {
        actions.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn an_unconditional_deny_shadows_a_new_allow_whatever_the_priorities() {
        let mut deny = stored(
            "No reading",
            Effect::Deny,
            &["read", "delete"],
            Principals::Everyone,
        );
        deny.priority = 1;
        let actions = list(&["read", "update"]);
        let principals = roles(&[Role::User]);
        let found = overlaps(
            &candidate(Effect::Allow, &actions, true, &principals),
            [&deny],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OverlapKind::DeniedBy);
        assert_eq!(found[0].actions, vec!["read"]);
        assert_eq!(found[0].other_id, deny.id);
        let said = found[0].to_string();
        assert!(
            said.contains("“No reading” already denies read on `document`"),
            "{said}"
        );
        assert!(said.contains("everyone signed in"), "{said}");
        assert!(said.contains("never allow read"), "{said}");
    }

    #[test]
    fn a_policy_covered_by_one_of_the_same_effect_changes_nothing() {
        let allow = stored(
            "Staff read",
            Effect::Allow,
            &["*"],
            roles(&[Role::User, Role::Admin]),
        );
        let actions = list(&["read"]);
        let principals = roles(&[Role::User]);
        let found = overlaps(
            &candidate(Effect::Allow, &actions, false, &principals),
            [&allow],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OverlapKind::AlreadyCovered);
        assert!(
            found[0]
                .to_string()
                .contains("would change nothing for read")
        );
    }

    #[test]
    fn a_new_unconditional_deny_switches_an_allow_off() {
        let allow = stored("Users read", Effect::Allow, &["read"], roles(&[Role::User]));
        let actions = list(&["*"]);
        let found = overlaps(
            &candidate(Effect::Deny, &actions, false, &Principals::Public),
            [&allow],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OverlapKind::SwitchesOff);
        assert_eq!(found[0].actions, vec!["read"]);
        assert!(found[0].to_string().contains("“Users read”"));
    }

    #[test]
    fn a_wider_new_policy_makes_a_narrower_one_redundant() {
        let mut narrow = stored("Sales read", Effect::Allow, &["read"], roles(&[Role::User]));
        narrow.conditions = Some(json!({"attribute": "subject.attributes.department",
                                        "operator": "eq", "value": "sales"}));
        let actions = list(&["read"]);
        let found = overlaps(
            &candidate(Effect::Allow, &actions, false, &Principals::Everyone),
            [&narrow],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OverlapKind::MakesRedundant);
    }

    #[test]
    fn opposite_effects_with_conditions_conflict_where_both_apply() {
        let mut deny = stored(
            "Night freeze",
            Effect::Deny,
            &["update"],
            Principals::Everyone,
        );
        deny.conditions = Some(json!({"attribute": "context.time.hour", "operator": "lt",
                                      "value": 6}));
        let actions = list(&["update"]);
        let principals = roles(&[Role::Admin]);
        let found = overlaps(
            &candidate(Effect::Allow, &actions, false, &principals),
            [&deny],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, OverlapKind::Conflicts);
        assert!(
            found[0]
                .to_string()
                .contains("the deny (“Night freeze”) wins")
        );
    }

    #[test]
    fn unrelated_inactive_and_self_are_passed_over() {
        let other_action = stored("Deletes", Effect::Deny, &["delete"], Principals::Everyone);
        let mut other_type = stored("Reports", Effect::Deny, &["read"], Principals::Everyone);
        other_type.resource_type = "report".to_owned();
        let mut inactive = stored("Off", Effect::Deny, &["read"], Principals::Everyone);
        inactive.status = PolicyStatus::Inactive;
        let itself = stored("Itself", Effect::Deny, &["read"], Principals::Everyone);
        let other_people = stored("Admins", Effect::Allow, &["read"], roles(&[Role::Admin]));
        let mut conditional_same = stored("Cond", Effect::Allow, &["read"], Principals::Everyone);
        conditional_same.conditions = Some(json!({"attribute": "subject.mfa", "operator": "eq",
                                                  "value": true}));
        let actions = list(&["read"]);
        let principals = roles(&[Role::User]);
        let mut asked = candidate(Effect::Allow, &actions, true, &principals);
        asked.id = Some(itself.id);
        let found = overlaps(
            &asked,
            [
                &other_action,
                &other_type,
                &inactive,
                &itself,
                &other_people,
                &conditional_same,
            ],
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_wildcard_deny_shadows_every_type_and_conflicts_need_the_same_type() {
        let mut everywhere = stored("Lockdown", Effect::Deny, &["*"], Principals::Public);
        everywhere.resource_type = "*".to_owned();
        let mut elsewhere = stored("Owners", Effect::Deny, &["read"], Principals::Everyone);
        elsewhere.resource_type = "*".to_owned();
        elsewhere.conditions = Some(json!({"attribute": "subject.mfa", "operator": "eq",
                                           "value": false}));
        let actions = list(&["read"]);
        let found = overlaps(
            &candidate(Effect::Allow, &actions, false, &Principals::Everyone),
            [&everywhere, &elsewhere],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, OverlapKind::DeniedBy);
        assert_eq!(found[0].resource_type, "document");
        assert!(found[0].to_string().contains("anyone, signed in or not"));
    }

    #[test]
    fn principals_cover_and_meet() {
        let a = UserId(Uuid::new_v4());
        let b = UserId(Uuid::new_v4());
        let users = |ids: &[UserId]| Principals::Users { ids: ids.to_vec() };
        assert!(principals_cover(&Principals::Public, &Principals::Everyone));
        assert!(!principals_cover(
            &Principals::Everyone,
            &Principals::Public
        ));
        assert!(principals_cover(&Principals::Everyone, &users(&[a])));
        assert!(principals_cover(&users(&[a, b]), &users(&[b])));
        assert!(!principals_cover(&users(&[a]), &users(&[a, b])));
        assert!(!principals_cover(&roles(&[Role::Admin]), &users(&[a])));
        assert!(principals_meet(&roles(&[Role::Admin]), &users(&[a])));
        assert!(!principals_meet(&users(&[a]), &users(&[b])));
        assert!(!principals_meet(
            &roles(&[Role::Admin]),
            &roles(&[Role::User])
        ));
        assert_eq!(
            shared_actions(&list(&["*"]), &list(&["read", "update"])),
            list(&["read", "update"])
        );
        assert!(shared_actions(&list(&["read"]), &list(&["update"])).is_empty());
    }
}
