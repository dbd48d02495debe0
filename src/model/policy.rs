//! What a policy is, as stored (and as its version snapshots keep it).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::user::{Role, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyStatus {
    Active,
    Inactive,
}

impl PolicyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Active => "active",
            PolicyStatus::Inactive => "inactive",
        }
    }
}

/// Whom a policy applies to. `everyone` is every signed-in account; only `public`
/// also takes in signed-out visitors (of the gate), so no existing policy opens
/// anything to them by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Principals {
    /// Anyone, signed in or not.
    Public,
    Everyone,
    Users {
        #[schema(value_type = Vec<Uuid>)]
        ids: Vec<UserId>,
    },
    Roles {
        roles: Vec<Role>,
    },
}

impl Principals {
    /// Whom it names, every role and id written out: what a policy's history and
    /// an import's plan show, so a change to one id is seen.
    pub fn in_full(&self) -> String {
        let listed = |items: Vec<String>| items.join(", ");
        match self {
            Principals::Public => "public (anyone, signed in or not)".to_owned(),
            Principals::Everyone => "everyone signed in".to_owned(),
            Principals::Roles { roles } => format!(
                "roles: {}",
                listed(roles.iter().map(|r| r.as_str().to_owned()).collect())
            ),
            Principals::Users { ids } => format!(
                "users: {}",
                listed(ids.iter().map(ToString::to_string).collect())
            ),
        }
    }
}

/// The built-in owner policy: an owner may do anything to what they own. Visible
/// and deactivatable, never deletable.
pub const OWNER_POLICY_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

/// The built-in administrator policy: grants admin-page actions (resource type
/// `admin`) to administrators. Read-only.
pub const ADMIN_POLICY_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);

/// A policy as stored. `conditions` is the validated JSON tree (see `validate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub effect: Effect,
    /// `document`, `webhook`, `policy`, `user`, a custom type, or `*`.
    pub resource_type: String,
    /// Action names, or `["*"]` for every action.
    pub actions: Vec<String>,
    /// Nested `all` / `any` / `not` groups of `{attribute, operator, value}`; `null`
    /// means "always".
    pub conditions: Option<Value>,
    /// 0–1000; orders the list and the explanation, never the outcome.
    pub priority: u16,
    pub status: PolicyStatus,
    pub principals: Principals,
    pub version: i64,
    /// Built in (the owner policy): may be deactivated, not deleted.
    pub system: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

impl Policy {
    pub fn applies_to_every_action(&self) -> bool {
        self.actions.iter().any(|a| a == "*")
    }

    /// Whether `other` says the same as this policy, its status aside: what may
    /// change in a built-in policy.
    pub fn same_rule_as(&self, other: &Policy) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.effect == other.effect
            && self.resource_type == other.resource_type
            && self.actions == other.actions
            && self.conditions == other.conditions
            && self.priority == other.priority
            && self.principals == other.principals
    }
}
