//! Assertion cases for a policy set, as `portcullis policies test` runs them: each
//! case describes a request (subject, action, resource, context) and the decision
//! it expects (`allowed` or `denied`), optionally with the policy that must decide
//! it. A team keeps its rules and these cases in git and runs them in CI before an
//! import.
//!
//! What a run guarantees:
//!
//! - **The engine's own answer.** Every request is built by the simulator's
//!   [`simulation::request`] and decided by [`PolicySet::explain`], so a case, the
//!   simulator and an enforced decision can never disagree.
//! - **A broken file never passes.** A file with no case, a bad name or time, or a
//!   `decided_by` that names no policy of the set is refused before anything runs,
//!   each problem named by its JSON path (`cases[2].decided_by`).
//! - **An evaluation error fails its case**, whatever the case expects: the engine
//!   denies on one (it fails closed), but a policy that cannot be evaluated is a
//!   bug to fix, not a deny to rely on.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::engine::{AccessRequest, Decision, PolicySet, Reason, Resource, Subject};
use super::simulation::{self, Asked};
use crate::model::{AuthMethod, Role, UserId};
use crate::validation::FieldError;

/// What `decided_by` says for a decision no policy made (nothing allowed it).
pub const DEFAULT_DENY: &str = "default deny";

/// A test-case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, as the report names it.
    pub name: String,
    pub subject: CaseSubject,
    pub action: String,
    pub resource: CaseResource,
    #[serde(default)]
    pub context: CaseContext,
    pub expect: Expected,
    /// The policy that must decide it, by name or id, or `default deny`.
    #[serde(default)]
    pub decided_by: Option<String>,
}

/// The subject as the engine takes it. `authenticated: false` is a signed-out
/// visitor (of the gate), who has no id, e-mail, role or attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSubject {
    #[serde(default = "signed_in")]
    pub authenticated: bool,
    /// The user id (to compare with a resource's `owner_id`); the nil id when absent.
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub email: String,
    #[serde(default = "user_role")]
    pub role: Role,
    #[serde(default)]
    pub mfa: bool,
    /// How the session was signed in to; by default, what a password sign-in of an
    /// account with (or without) MFA comes to. A multi-factor method makes `mfa` true.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

fn signed_in() -> bool {
    true
}

fn user_role() -> Role {
    Role::User
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// RFC 3339; the time of the run when absent.
    #[serde(default)]
    pub time: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Allowed,
    Denied,
}

impl Expected {
    fn as_str(self) -> &'static str {
        match self {
            Expected::Allowed => "allowed",
            Expected::Denied => "denied",
        }
    }
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// What was expected: `denied`, `allowed by “Name”`, …
    pub expected: String,
    /// What the engine decided, and which policy decided it.
    pub decided: String,
}

/// Which decisions `decided_by` accepts.
enum Decider {
    /// No policy: nothing allowed it.
    Default,
    /// Any of these policies (a name may be shared).
    Policies(Vec<Uuid>),
}

impl Decider {
    fn resolve(text: &str, set: &PolicySet) -> Option<Self> {
        if text == DEFAULT_DENY {
            return Some(Decider::Default);
        }
        let ids: Vec<Uuid> = set
            .policies()
            .filter(|p| p.name == text || p.id.to_string() == text.to_ascii_lowercase())
            .map(|p| p.id)
            .collect();
        (!ids.is_empty()).then_some(Decider::Policies(ids))
    }

    fn decided(&self, reason: &Reason) -> bool {
        match (self, reason) {
            (Decider::Default, Reason::DefaultDeny) => true,
            (
                Decider::Policies(ids),
                Reason::AllowedBy { policies } | Reason::DeniedBy { policies },
            ) => policies.iter().any(|id| ids.contains(id)),
            _ => false,
        }
    }
}

/// A case ready to run: its request's parts checked, its decider found.
struct Ready {
    name: String,
    request: AccessRequest,
    expect: Expected,
    decided_by: Option<(String, Decider)>,
}

/// Runs every case against `set`, at `now` for a case that gives no time. A file
/// with no case or with a case that cannot run is refused whole, each problem
/// named by its JSON path (`cases[i].field`).
pub fn run(set: &PolicySet, file: CaseFile, now: i64) -> Result<Vec<CaseResult>, Vec<FieldError>> {
    if file.cases.is_empty() {
        return Err(vec![FieldError::rule(
            "cases",
            "required",
            "must list at least one case",
        )]);
    }
    let mut errors = Vec::new();
    let mut ready = Vec::with_capacity(file.cases.len());
    for (index, case) in file.cases.into_iter().enumerate() {
        let at = |field: &str| format!("cases[{index}].{field}");
        if case.name.trim().is_empty() {
            errors.push(FieldError::rule(
                at("name"),
                "required",
                "must not be empty",
            ));
        }
        let decided_by = match case.decided_by {
            None => None,
            Some(text) => match Decider::resolve(&text, set) {
                Some(decider) => Some((text, decider)),
                None => {
                    errors.push(FieldError::rule(
                        at("decided_by"),
                        "unknown",
                        format!("names no policy of the set (by name or id), nor `{DEFAULT_DENY}`"),
                    ));
                    None
                }
            },
        };
        let subject = subject_of(case.subject);
        let asked = Asked {
            action: case.action,
            resource: Resource {
                kind: case.resource.kind,
                id: case.resource.id,
                owner_id: case.resource.owner_id,
                attributes: case.resource.attributes,
            },
            ip: case.context.ip,
            method: case.context.method,
            path: case.context.path,
            time: case.context.time,
        };
        match simulation::request(subject, asked, now) {
            Ok(request) => ready.push(Ready {
                name: case.name,
                request,
                expect: case.expect,
                decided_by,
            }),
            Err(found) => errors.extend(found.into_iter().map(|mut error| {
                error.field = at(&error.field);
                error
            })),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ready.into_iter().map(|case| judge(set, case)).collect())
}

fn subject_of(described: CaseSubject) -> Subject {
    if !described.authenticated {
        return Subject::anonymous();
    }
    Subject {
        authenticated: true,
        id: UserId(described.id.unwrap_or(Uuid::nil())),
        email: described.email,
        role: described.role,
        mfa: described.mfa
            || described
                .auth_method
                .is_some_and(AuthMethod::is_multi_factor),
        auth_method: Some(
            described
                .auth_method
                .unwrap_or(AuthMethod::of_password_sign_in(described.mfa)),
        ),
        attributes: described.attributes,
    }
}

fn judge(set: &PolicySet, case: Ready) -> CaseResult {
    let decision = set.explain(&case.request);
    let expected = match &case.decided_by {
        Some((text, _)) => format!("{} by “{text}”", case.expect.as_str()),
        None => case.expect.as_str().to_owned(),
    };
    let as_expected = decision.allowed == (case.expect == Expected::Allowed);
    let by_the_right_policy = case
        .decided_by
        .as_ref()
        .is_none_or(|(_, decider)| decider.decided(&decision.reason));
    let failed_to_evaluate = matches!(decision.reason, Reason::Error { .. });
    CaseResult {
        name: case.name,
        passed: as_expected && by_the_right_policy && !failed_to_evaluate,
        expected,
        decided: describe(set, &decision),
    }
}

/// The decision in words: `allowed by “A”`, `denied by “B”`, `denied: no policy
/// allows it (default deny)`, or the evaluation error.
fn describe(set: &PolicySet, decision: &Decision) -> String {
    let named = |ids: &[Uuid]| {
        ids.iter()
            .map(|id| {
                set.policies()
                    .find(|p| p.id == *id)
                    .map_or_else(|| id.to_string(), |p| format!("“{}”", p.name))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &decision.reason {
        Reason::AllowedBy { policies } => format!("allowed by {}", named(policies)),
        Reason::DeniedBy { policies } => format!("denied by {}", named(policies)),
        Reason::DefaultDeny => format!("denied: no policy allows it ({DEFAULT_DENY})"),
        Reason::Error { policy, error } => format!(
            "denied: {} could not be evaluated ({}: {})",
            named(std::slice::from_ref(policy)),
            error.path,
            error.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::as_code::{FileFormat, PolicyFile, policy_set, read};

    const POLICIES: &str = r#"{"policies": [
      {"name": "Staff read", "effect": "allow", "resource_type": "document", "actions": ["read"],
       "conditions": {"attribute": "subject.attributes.staff", "operator": "eq", "value": true}},
      {"name": "No archives", "effect": "deny", "resource_type": "document", "actions": ["*"],
       "conditions": {"attribute": "resource.attributes.archived", "operator": "exists"}},
      {"name": "Broken", "effect": "allow", "resource_type": "report", "actions": ["read"],
       "conditions": {"attribute": "subject.attributes.level", "operator": "gt", "value": 3}}
    ]}"#;

    fn set() -> PolicySet {
        let file: PolicyFile = read(POLICIES, FileFormat::Json).expect("policies");
        policy_set(&file, 0).expect("valid")
    }

    fn cases(text: &str) -> CaseFile {
        read(text, FileFormat::Json).expect("cases")
    }

    #[test]
    fn cases_pass_and_fail_on_the_decision_and_the_decider() {
        let results = run(
            &set(),
            cases(
                r#"{"cases": [
              {"name": "staff", "subject": {"attributes": {"staff": true}}, "action": "read",
               "resource": {"type": "document"}, "expect": "allowed", "decided_by": "Staff read"},
              {"name": "archive", "subject": {"attributes": {"staff": true}}, "action": "read",
               "resource": {"type": "document", "attributes": {"archived": true}}, "expect": "denied",
               "decided_by": "No archives"},
              {"name": "stranger", "subject": {}, "action": "read",
               "resource": {"type": "document"}, "expect": "denied", "decided_by": "default deny"},
              {"name": "wrong decider", "subject": {}, "action": "read",
               "resource": {"type": "document"}, "expect": "denied", "decided_by": "No archives"},
              {"name": "wrong outcome", "subject": {"authenticated": false}, "action": "read",
               "resource": {"type": "document"}, "expect": "allowed"},
              {"name": "evaluation error", "subject": {"attributes": {"level": "high"}}, "action": "read",
               "resource": {"type": "report"}, "expect": "denied"}
            ]}"#,
            ),
            0,
        )
        .expect("runs");
        let passed: Vec<(&str, bool)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.passed))
            .collect();
        assert_eq!(
            passed,
            [
                ("staff", true),
                ("archive", true),
                ("stranger", true),
                ("wrong decider", false),
                ("wrong outcome", false),
                ("evaluation error", false),
            ]
        );
        assert_eq!(results[0].decided, "allowed by “Staff read”");
        assert_eq!(results[3].expected, "denied by “No archives”");
        assert!(
            results[5].decided.contains("could not be evaluated"),
            "{}",
            results[5].decided
        );
    }

    #[test]
    fn a_case_that_cannot_run_refuses_the_file() {
        let errors = run(
            &set(),
            cases(
                r#"{"cases": [
              {"name": "", "subject": {}, "action": "Read", "resource": {"type": "document"},
               "context": {"time": "yesterday"}, "expect": "allowed", "decided_by": "Nobody"}
            ]}"#,
            ),
            0,
        )
        .expect_err("refused");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "cases[0].name",
                "cases[0].decided_by",
                "cases[0].action",
                "cases[0].context.time"
            ]
        );
        let none = run(&set(), cases(r#"{"cases": []}"#), 0).expect_err("no case");
        assert_eq!(none[0].field, "cases");
        let error = read::<CaseFile>(
            r#"{"cases": [{"name": "x", "subject": {}, "action": "read", "resource": {"type": "document"}, "expect": "allow"}]}"#,
            FileFormat::Json,
        )
        .expect_err("unknown expectation");
        assert_eq!(error.field, "cases[0].expect");
    }
}
