//! The simulator, shared by the admin page and `POST /api/v1/admin/policies/simulate`:
//! a subject (an existing user, or one described), an action, a resource and a
//! context go in; the engine's decision and its explanation, condition by condition,
//! come out. Nothing is recorded and nothing is enforced. `portcullis policies
//! test` builds its requests through [`request`] too, so a test case, the simulator
//! and an enforced decision ask the engine the same question.

use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::engine::{AccessRequest, Context, Decision, Resource, Subject};
use super::service::{PolicyError, PolicyService};
use super::validate::is_name;
use crate::db::users;
use crate::model::{AuthMethod, Role, UserId};
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

/// What a simulated request asks, once its subject is known.
#[derive(Debug, Clone)]
pub struct Asked {
    pub action: String,
    pub resource: Resource,
    pub ip: Option<IpAddr>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// RFC 3339; `None` is now.
    pub time: Option<String>,
}

/// The request the engine is asked for a simulation: `asked`, by `subject`, at its
/// `time` or `now`. Bad names and a time that is not RFC 3339 are field errors,
/// reported together. The simulator (page and API) and `portcullis policies test`
/// build their requests here, so they ask the engine the same question.
pub fn request(subject: Subject, asked: Asked, now: i64) -> Result<AccessRequest, Vec<FieldError>> {
    let mut errors = check_request_names(&asked.action, &asked.resource.kind);
    let now = match asked.time.as_deref() {
        None => now,
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
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AccessRequest {
        subject,
        action: asked.action,
        resource: asked.resource,
        context: Context {
            ip: asked.ip,
            method: asked.method,
            path: asked.path,
            now,
        },
    })
}

impl PolicyService {
    /// What the engine would decide, and why. Bad names, an unknown user and a time
    /// that is not RFC 3339 are validation errors, reported together.
    pub async fn simulate(&self, simulation: Simulation) -> Result<Decision, PolicyError> {
        let Simulation {
            subject,
            action,
            resource,
            ip,
            method,
            path,
            time,
        } = simulation;
        let (subject, unknown_user) = match subject {
            SimulatedSubject::User(id) => {
                let found = self
                    .database()
                    .read(move |conn| Ok::<_, PolicyError>(users::find(conn, id)?))
                    .await?;
                match found {
                    Some(user) => (Subject::from(&user), None),
                    None => (
                        Subject::anonymous(),
                        Some(FieldError::rule(
                            "subject.user_id",
                            "unknown",
                            "names no user",
                        )),
                    ),
                }
            }
            SimulatedSubject::Described {
                email,
                role,
                mfa,
                attributes,
            } => (
                Subject {
                    authenticated: true,
                    id: UserId(Uuid::nil()),
                    email,
                    role,
                    mfa,
                    auth_method: Some(AuthMethod::of_password_sign_in(mfa)),
                    attributes,
                },
                None,
            ),
            SimulatedSubject::SignedOut => (Subject::anonymous(), None),
        };
        let asked = Asked {
            action,
            resource,
            ip,
            method,
            path,
            time,
        };
        match request(subject, asked, self.clock().now()) {
            Ok(request) if unknown_user.is_none() => Ok(self.explain(&request)),
            Ok(_) => Err(PolicyError::Validation(unknown_user.into_iter().collect())),
            Err(mut errors) => {
                errors.extend(unknown_user);
                Err(PolicyError::Validation(errors))
            }
        }
    }
}
