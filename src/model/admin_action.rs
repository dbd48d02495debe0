//! The vocabulary of administrator actions: the names policies on resource type
//! `admin` match. It lives in the model so that the policy service can ask whether
//! a change would leave no administrator able to edit policies, and the admin
//! module can decide every administrator operation, without either importing the
//! other.

/// The resource type of administrator actions.
pub const RESOURCE_TYPE: &str = "admin";

/// Every administrator action, by the name policies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    DashboardView,
    PolicyList,
    PolicyView,
    PolicyCreate,
    PolicyUpdate,
    PolicyDelete,
    PolicyHistory,
    PolicySimulate,
    PolicyExport,
    PolicyImport,
    UserList,
    UserView,
    UserUpdate,
    UserLock,
    UserUnlock,
    UserRevokeSessions,
    UserResetMfa,
    UserResetPasskeys,
    UserCreate,
    UserDisable,
    UserDelete,
    WebhookList,
    WebhookView,
    WebhookUpdate,
    WebhookRetry,
    AuditView,
    AuditExport,
    GateView,
}

impl AdminAction {
    pub const ALL: [AdminAction; 28] = [
        AdminAction::DashboardView,
        AdminAction::PolicyList,
        AdminAction::PolicyView,
        AdminAction::PolicyCreate,
        AdminAction::PolicyUpdate,
        AdminAction::PolicyDelete,
        AdminAction::PolicyHistory,
        AdminAction::PolicySimulate,
        AdminAction::PolicyExport,
        AdminAction::PolicyImport,
        AdminAction::UserList,
        AdminAction::UserView,
        AdminAction::UserUpdate,
        AdminAction::UserLock,
        AdminAction::UserUnlock,
        AdminAction::UserRevokeSessions,
        AdminAction::UserResetMfa,
        AdminAction::UserResetPasskeys,
        AdminAction::UserCreate,
        AdminAction::UserDisable,
        AdminAction::UserDelete,
        AdminAction::WebhookList,
        AdminAction::WebhookView,
        AdminAction::WebhookUpdate,
        AdminAction::WebhookRetry,
        AdminAction::AuditView,
        AdminAction::AuditExport,
        AdminAction::GateView,
    ];

    /// The action name policies match (`action` of an `admin` resource).
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::DashboardView => "dashboard.view",
            AdminAction::PolicyList => "policy.list",
            AdminAction::PolicyView => "policy.view",
            AdminAction::PolicyCreate => "policy.create",
            AdminAction::PolicyUpdate => "policy.update",
            AdminAction::PolicyDelete => "policy.delete",
            AdminAction::PolicyHistory => "policy.history",
            AdminAction::PolicySimulate => "policy.simulate",
            AdminAction::PolicyExport => "policy.export",
            AdminAction::PolicyImport => "policy.import",
            AdminAction::UserList => "user.list",
            AdminAction::UserView => "user.view",
            AdminAction::UserUpdate => "user.update",
            AdminAction::UserLock => "user.lock",
            AdminAction::UserUnlock => "user.unlock",
            AdminAction::UserRevokeSessions => "user.revoke_sessions",
            AdminAction::UserResetMfa => "user.reset_mfa",
            AdminAction::UserResetPasskeys => "user.reset_passkeys",
            AdminAction::UserCreate => "user.create",
            AdminAction::UserDisable => "user.disable",
            AdminAction::UserDelete => "user.delete",
            AdminAction::WebhookList => "webhook.list",
            AdminAction::WebhookView => "webhook.view",
            AdminAction::WebhookUpdate => "webhook.update",
            AdminAction::WebhookRetry => "webhook.retry",
            AdminAction::AuditView => "audit.view",
            AdminAction::AuditExport => "audit.export",
            AdminAction::GateView => "gate.view",
        }
    }
}
