//! What a policy change would take from the administrators, asked before it is
//! made. Policies on resource type `admin` decide every administrator action, so a
//! deny policy can lock every administrator out of the pages and the admin API.
//! Two questions, answered by the same engine on the sets before and after:
//!
//! - which administrator actions each active administrator could do before and
//!   could not after, asked in the changing request's context (the pages show this
//!   and ask before saving);
//! - whether some administrator could mend the policies (list, view and update
//!   them) before and none could after — a change of the policies, or of the
//!   administrators (a role, attributes, a lock, a delete): such a change is
//!   refused on every door, so the break-glass on the host (`portcullis policies
//!   deactivate`) stays for accidents outside Portcullis.
//!
//! "Could mend" holds for every request, not just this one: a condition on the
//! request's address, method, path, time or object id counts as unknown (a deny
//! that could apply applies), so a deny that bites only from another address, at
//! another hour or on the policies' own ids cannot slip through.

use std::fmt;

use super::engine::{AccessRequest, Context, PolicySet, Resource, Subject};
use crate::model::User;
use crate::model::admin_action::{AdminAction, RESOURCE_TYPE};

/// At most this many active administrators are listed in a change's losses (the
/// first by e-mail); the lock-out check asks about every one.
pub const ADMINISTRATORS_LISTED: usize = 1_000;

/// What an administrator needs to mend the policies: find them and change them.
const MENDING: [AdminAction; 3] = [
    AdminAction::PolicyList,
    AdminAction::PolicyView,
    AdminAction::PolicyUpdate,
];

/// The administrator actions one administrator would lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLoss {
    pub email: String,
    pub actions: Vec<&'static str>,
}

impl fmt::Display for AdminLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} could no longer: {}",
            self.email,
            self.actions.join(", ")
        )
    }
}

fn request(administrator: &User, action: AdminAction, context: &Context) -> AccessRequest {
    AccessRequest {
        subject: Subject::from(administrator),
        action: action.as_str().to_owned(),
        resource: Resource {
            kind: RESOURCE_TYPE.to_owned(),
            id: None,
            owner_id: None,
            attributes: Default::default(),
        },
        context: context.clone(),
    }
}

fn allowed(set: &PolicySet, administrator: &User, action: AdminAction, context: &Context) -> bool {
    set.decide(&request(administrator, action, context)).allowed
}

/// Whether `administrator` may mend the policies on every request they could make.
fn can_mend(set: &PolicySet, administrator: &User) -> bool {
    let anywhere = Context {
        ip: None,
        method: None,
        path: None,
        now: 0,
    };
    MENDING.iter().all(|&action| {
        set.decide_for_every_request(&request(administrator, action, &anywhere))
            .allowed
    })
}

/// Each administrator's actions allowed by `before` and not by `after`.
pub fn losses(
    before: &PolicySet,
    after: &PolicySet,
    administrators: &[User],
    context: &Context,
) -> Vec<AdminLoss> {
    administrators
        .iter()
        .filter_map(|administrator| {
            let actions: Vec<&'static str> = AdminAction::ALL
                .iter()
                .filter(|&&action| {
                    allowed(before, administrator, action, context)
                        && !allowed(after, administrator, action, context)
                })
                .map(|action| action.as_str())
                .collect();
            (!actions.is_empty()).then(|| AdminLoss {
                email: administrator.email.to_string(),
                actions,
            })
        })
        .collect()
}

/// Whether some of `before_administrators` could mend the policies under
/// `before` and none of `after_administrators` could under `after`. Already locked
/// out before, a change is not refused for it: it may be the mend.
pub fn locks_out(
    before: &PolicySet,
    after: &PolicySet,
    before_administrators: &[User],
    after_administrators: &[User],
) -> bool {
    before_administrators.iter().any(|a| can_mend(before, a))
        && !after_administrators.iter().any(|a| can_mend(after, a))
}
