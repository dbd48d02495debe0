//! What a policy change would take from the administrators, asked before it is
//! made. Policies on resource type `admin` decide every administrator action, so a
//! deny policy can lock every administrator out of the pages and the admin API.
//! Two questions, answered by the same engine on the sets before and after:
//!
//! - which administrator actions each active administrator could do before and
//!   could not after (the pages show this and ask before saving);
//! - whether some administrator could edit policies before and none could after:
//!   such a change is refused on every door, so the break-glass on the host
//!   (`portcullis policies deactivate`) stays for accidents outside Portcullis.
//!
//! The question is asked in the changing request's context (its address, now), as
//! the administrators' own requests would be; conditions on other contexts (another
//! address, a later hour) are the simulator's to show.

use std::fmt;

use super::engine::{AccessRequest, Context, PolicySet, Resource, Subject};
use crate::model::User;
use crate::model::admin_action::{AdminAction, RESOURCE_TYPE};

/// At most this many active administrators are asked about (the first by e-mail).
pub const ADMINISTRATORS_ASKED: usize = 1_000;

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

fn allowed(set: &PolicySet, administrator: &User, action: AdminAction, context: &Context) -> bool {
    set.decide(&AccessRequest {
        subject: Subject::from(administrator),
        action: action.as_str().to_owned(),
        resource: Resource {
            kind: RESOURCE_TYPE.to_owned(),
            id: None,
            owner_id: None,
            attributes: Default::default(),
        },
        context: context.clone(),
    })
    .allowed
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

/// Whether some administrator could edit policies under `before` and none could
/// under `after`.
pub fn locks_out(
    before: &PolicySet,
    after: &PolicySet,
    administrators: &[User],
    context: &Context,
) -> bool {
    let editors = |set: &PolicySet| {
        administrators
            .iter()
            .any(|a| allowed(set, a, AdminAction::PolicyUpdate, context))
    };
    editors(before) && !editors(after)
}
