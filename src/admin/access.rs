//! The one authorization question for every administrator operation, whichever door
//! it comes through (the admin pages or `/api/v1/admin/*`): the caller must be an
//! active administrator, and the policy engine must allow the action on resource
//! type `admin`. A deny policy on `admin` therefore stops the same action on every
//! door. An evaluation error denies, and is audited.
//!
//! The built-in, read-only administrator policy grants these actions to the admin
//! role; when a deny policy locks every administrator out, the break-glass is on
//! the host: `portcullis policies deactivate ID`.

use crate::audit::{AdminActor, RequestMeta};
use crate::model::{AuthMethod, Role, User, UserStatus};
use crate::policy::engine::{AccessRequest, Context, Reason, Resource, Subject};
use crate::policy::service::PolicyService;
use crate::telemetry::metrics::{AbacMetrics, AbacResult};

pub use crate::model::admin_action::{AdminAction, RESOURCE_TYPE};

#[derive(Debug, thiserror::Error)]
pub enum AdminAccessError {
    /// The caller is not an active administrator.
    #[error("not an administrator")]
    NotAdministrator,
    /// The policies do not allow this action.
    #[error("denied by the access policies")]
    Denied,
    /// A policy could not be evaluated (audited): denied.
    #[error("access control evaluation failed")]
    EvaluationFailed,
}

/// Whether `user` may ask at all: an active account with the administrator role.
/// The doors check this first, so anyone else is refused before their request is
/// even read.
pub fn is_administrator(user: &User) -> bool {
    user.role == Role::Admin && user.status == UserStatus::Active
}

/// Decides administrator actions; cheap to clone.
#[derive(Clone)]
pub struct AdminAccess {
    policies: PolicyService,
    /// Counts the engine's decisions.
    abac: AbacMetrics,
}

impl AdminAccess {
    pub fn new(policies: PolicyService, abac: AbacMetrics) -> Self {
        Self { policies, abac }
    }

    /// May `administrator`, signed in to with `auth_method`, do `action` (on
    /// `target`, when it names one object)? `context` is the request's address,
    /// method, path and time.
    pub async fn authorize(
        &self,
        administrator: &User,
        auth_method: AuthMethod,
        action: AdminAction,
        target: Option<String>,
        context: Context,
        meta: &RequestMeta,
    ) -> Result<AdminActor, AdminAccessError> {
        if !is_administrator(administrator) {
            return Err(AdminAccessError::NotAdministrator);
        }
        let request = AccessRequest {
            subject: Subject::signed_in_with(administrator, auth_method),
            action: action.as_str().to_owned(),
            resource: Resource {
                kind: RESOURCE_TYPE.to_owned(),
                id: target,
                owner_id: None,
                attributes: Default::default(),
            },
            context,
        };
        let decision = self.policies.decide(&request);
        self.abac.decided(AbacResult::from(&decision.reason));
        match decision.reason {
            Reason::Error { .. } => {
                self.policies
                    .audit_evaluation_failure(&request, &decision, meta)
                    .await;
                Err(AdminAccessError::EvaluationFailed)
            }
            _ if decision.allowed => Ok(AdminActor::Administrator(administrator.id)),
            _ => Err(AdminAccessError::Denied),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AdminAction;

    #[test]
    fn every_action_has_a_distinct_valid_name() {
        let mut names: Vec<&str> = AdminAction::ALL.iter().map(|a| a.as_str()).collect();
        assert!(names.iter().all(|n| crate::policy::validate::is_name(n)));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AdminAction::ALL.len());
    }
}
