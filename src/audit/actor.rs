//! Who performs an administrator's operation: an administrator the policy engine
//! allowed (through the admin pages or the admin API), or the operator at the
//! host's command line (`portcullis policies deactivate`, the break-glass that needs
//! the machine, not the network). Services take this instead of a caller's token,
//! so no operation needs a forged one.

use crate::model::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminActor {
    /// An active administrator, allowed this action by the policy engine.
    Administrator(UserId),
    /// Someone with a shell on the host, using the command line.
    HostOperator,
}

impl AdminActor {
    /// The audit log's `actor`: the administrator's id, or `cli`.
    pub fn audit_name(&self) -> String {
        match self {
            AdminActor::Administrator(id) => id.to_string(),
            AdminActor::HostOperator => "cli".to_owned(),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            AdminActor::Administrator(id) => Some(*id),
            AdminActor::HostOperator => None,
        }
    }
}
