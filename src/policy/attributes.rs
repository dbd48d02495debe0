//! The one list of attribute names conditions may use. The engine resolves them, the
//! validator checks against them, and the API documentation and admin pages are
//! rendered from them: no second list exists to disagree.

/// What kind of value an attribute holds, for checking operators at save time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    String,
    Number,
    Boolean,
    /// An IP address, as text.
    Ip,
    /// UTC time of day, `HH:MM`.
    TimeOfDay,
    /// A free-form JSON value (`*.attributes.*`): checked when evaluated.
    Any,
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
            ValueKind::Ip => "ip",
            ValueKind::TimeOfDay => "time_of_day",
            ValueKind::Any => "any",
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct AttributeSpec {
    /// The name; one ending in `.*` stands for any key under that prefix.
    pub name: &'static str,
    pub kind: ValueKind,
    pub description: &'static str,
}

pub const ATTRIBUTES: &[AttributeSpec] = &[
    AttributeSpec {
        name: "subject.authenticated",
        kind: ValueKind::Boolean,
        description: "Whether the caller is signed in (false for a signed-out visitor of the gate).",
    },
    AttributeSpec {
        name: "subject.id",
        kind: ValueKind::String,
        description: "The caller's user id.",
    },
    AttributeSpec {
        name: "subject.email",
        kind: ValueKind::String,
        description: "The caller's e-mail address.",
    },
    AttributeSpec {
        name: "subject.email_domain",
        kind: ValueKind::String,
        description: "The part of the caller's e-mail after the @.",
    },
    AttributeSpec {
        name: "subject.role",
        kind: ValueKind::String,
        description: "`user` or `admin`.",
    },
    AttributeSpec {
        name: "subject.mfa",
        kind: ValueKind::Boolean,
        description: "Whether the caller's account has MFA enabled, or the caller signed in with a passkey (a factor and the device's PIN or biometric in one).",
    },
    AttributeSpec {
        name: "subject.auth_method",
        kind: ValueKind::String,
        description: "How the caller's session was signed in to: `password`, `password+totp` or `passkey`. Absent for a signed-out visitor.",
    },
    AttributeSpec {
        name: "subject.attributes.*",
        kind: ValueKind::Any,
        description: "An attribute of the caller's account, e.g. `subject.attributes.department`.",
    },
    AttributeSpec {
        name: "resource.type",
        kind: ValueKind::String,
        description: "`document`, `webhook`, `policy`, `user`, `admin`, `route` (a request through the gate), or a custom type.",
    },
    AttributeSpec {
        name: "resource.id",
        kind: ValueKind::String,
        description: "The resource's id (for a `route`: host and path, e.g. `app.example.com/admin`).",
    },
    AttributeSpec {
        name: "resource.owner_id",
        kind: ValueKind::String,
        description: "The user id of the resource's owner.",
    },
    AttributeSpec {
        name: "resource.attributes.*",
        kind: ValueKind::Any,
        description: "An attribute of the resource, e.g. `resource.attributes.classification`; a `route` has `host`, `path`, `scheme`, `query` and `port`.",
    },
    AttributeSpec {
        name: "action",
        kind: ValueKind::String,
        description: "The action asked for, e.g. `read`.",
    },
    AttributeSpec {
        name: "context.ip",
        kind: ValueKind::Ip,
        description: "The client's address.",
    },
    AttributeSpec {
        name: "context.method",
        kind: ValueKind::String,
        description: "The HTTP method.",
    },
    AttributeSpec {
        name: "context.path",
        kind: ValueKind::String,
        description: "The request path.",
    },
    AttributeSpec {
        name: "context.time",
        kind: ValueKind::TimeOfDay,
        description: "The UTC time of day, `HH:MM` (for `time_between`).",
    },
    AttributeSpec {
        name: "context.time.hour",
        kind: ValueKind::Number,
        description: "The UTC hour, 0–23.",
    },
    AttributeSpec {
        name: "context.time.day_of_week",
        kind: ValueKind::Number,
        description: "The UTC day of the week, ISO: Monday = 1 … Sunday = 7.",
    },
];

/// Longest attribute name accepted.
pub const MAX_NAME_LEN: usize = 200;

/// The spec an attribute name falls under, if it is a valid name.
pub fn lookup(name: &str) -> Option<&'static AttributeSpec> {
    if name.len() > MAX_NAME_LEN {
        return None;
    }
    ATTRIBUTES
        .iter()
        .find(|spec| match spec.name.strip_suffix('*') {
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|key| !key.is_empty() && key.chars().all(is_key_char)),
            None => spec.name == name,
        })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_wildcards_need_a_key() {
        assert_eq!(
            lookup("subject.id").map(|s| s.kind),
            Some(ValueKind::String)
        );
        assert_eq!(
            lookup("subject.attributes.department").map(|s| s.name),
            Some("subject.attributes.*")
        );
        for bad in [
            "subject.attributes.",
            "subject.attributes.a.b",
            "subject.password",
            "resource.attributes.x y",
            "",
            "context.time.minute",
        ] {
            assert!(lookup(bad).is_none(), "{bad}");
        }
    }
}
