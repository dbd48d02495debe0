//! The simulator, shared by the admin page and `POST /api/v1/admin/policies/simulate`:
//! a subject (an existing user, or one described), an action, a resource and a
//! context go in; the engine's decision and its explanation, condition by condition,
//! come out. Nothing is recorded and nothing is enforced.

use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::engine::{AccessRequest, Context, Decision, Resource, Subject};
use super::service::{PolicyError, PolicyService};
use super::validate::is_name;
use crate::db::users;
use crate::model::{Role, UserId};
use crate::validation::FieldError;

/// Who the simulated request is from.
#[derive(Debug, Clone)]
pub enum SimulatedSubject {
    /// An existing account: its e-mail, role, MFA state and attributes are used.
    User(UserId),
    /// A subject described in full.
    Described {
        email: String,
        role: Role,
        mfa: bool,
        attributes: Map<String, Value>,
    },
    /// A signed-out visitor (of the gate).
    SignedOut,
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub subject: SimulatedSubject,
    pub action: String,
    pub resource: Resource,
    pub ip: Option<IpAddr>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// RFC 3339; `None` is now.
    pub time: Option<String>,
}

/// The names a request may carry (`*` is for policies, not requests), as field
/// errors on `action` and `resource.type`.
pub fn check_request_names(action: &str, kind: &str) -> Vec<FieldError> {
    const RULE: &str = "must be a name of lower-case letters, digits, `_`, `-`, `.` or `:`";
    let mut errors = Vec::new();
    if !is_name(action) {
        errors.push(FieldError::rule("action", "invalid", RULE));
    }
    if !is_name(kind) {
        errors.push(FieldError::rule("resource.type", "invalid", RULE));
    }
    errors
}

impl PolicyService {
    /// What the engine would decide, and why. Bad names, an unknown user and a time
    /// that is not RFC 3339 are validation errors, reported together.
    pub async fn simulate(&self, simulation: Simulation) -> Result<Decision, PolicyError> {
        let mut errors = check_request_names(&simulation.action, &simulation.resource.kind);
        let now = match simulation.time.as_deref() {
            None => self.clock().now(),
            Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map(OffsetDateTime::unix_timestamp)
                .unwrap_or_else(|_| {
                    errors.push(FieldError::rule(
                        "context.time",
                        "invalid",
                        "must be an RFC 3339 time, e.g. 2026-11-23T10:30:00Z",
                    ));
                    0
                }),
        };
        let subject = match simulation.subject {
            SimulatedSubject::User(id) => {
                let found = self
                    .database()
                    .read(move |conn| Ok::<_, PolicyError>(users::find(conn, id)?))
                    .await?;
                match found {
                    Some(user) => Some(Subject::from(&user)),
                    None => {
                        errors.push(FieldError::rule(
                            "subject.user_id",
                            "unknown",
                            "names no user",
                        ));
                        None
                    }
                }
            }
            SimulatedSubject::Described {
                email,
                role,
                mfa,
                attributes,
            } => Some(Subject {
                authenticated: true,
                id: UserId(Uuid::nil()),
                email,
                role,
                mfa,
                attributes,
            }),
            SimulatedSubject::SignedOut => Some(Subject::anonymous()),
        };
        let Some(subject) = subject.filter(|_| errors.is_empty()) else {
            return Err(PolicyError::Validation(errors));
        };
        Ok(self.explain(&AccessRequest {
            subject,
            action: simulation.action,
            resource: simulation.resource,
            context: Context {
                ip: simulation.ip,
                method: simulation.method,
                path: simulation.path,
                now,
            },
        }))
    }
}
