//! What a webhook is: its target, the events it wants, and the credential it sends.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::FieldError;

/// Every event type a webhook can subscribe to. `*` subscribes to all (for
/// `policy.*`, only on an administrator's webhook).
pub const EVENT_TYPES: &[&str] = &[
    "user.registered",
    "auth.login_failed",
    "auth.account_locked",
    "auth.logout",
    "mfa.enabled",
    "mfa.disabled",
    "document.created",
    "document.updated",
    "document.deleted",
    "policy.created",
    "policy.updated",
    "policy.deleted",
    "webhook.test",
];

pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_CUSTOM_HEADERS: usize = 10;
pub const MAX_CREDENTIAL_CHARS: usize = 4096;

/// An outbound credential, as given. Only its kind and a masked hint are ever shown
/// again; the rest is sealed with CREDENTIAL_ENCRYPTION_KEY.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    None,
    Bearer {
        #[schema(value_type = String)]
        token: SecretString,
    },
    Basic {
        username: String,
        #[schema(value_type = String)]
        password: SecretString,
    },
    ApiKey {
        header: String,
        #[schema(value_type = String)]
        value: SecretString,
    },
    Headers {
        #[schema(value_type = Object)]
        headers: BTreeMap<String, SecretString>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.kind())
    }
}

/// The stored (sealed) form: the same fields, serializable.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StoredCredential {
    None,
    Bearer { token: String },
    Basic { username: String, password: String },
    ApiKey { header: String, value: String },
    Headers { headers: BTreeMap<String, String> },
}

/// Header names a credential may not set: the signature's, and the transport's.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "user-agent",
];

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn is_header_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_CREDENTIAL_CHARS
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// What is wrong with a header name a credential would set, if anything.
fn header_problem(field: &str, name: &str) -> Option<FieldError> {
    if !is_header_name(name) {
        return Some(FieldError::rule(
            field,
            "invalid_header",
            "must be a header name of letters, digits, `-` or `_`",
        ));
    }
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str()).then(|| {
        FieldError::rule(
            field,
            "reserved_header",
            "names a header Portcullis sets itself",
        )
    })
}

/// `••••` and the last four characters, for values long enough that four reveal
/// little; just `••••` otherwise.
fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() >= 16 {
        format!(
            "••••{}",
            chars[chars.len() - 4..].iter().collect::<String>()
        )
    } else {
        "••••".to_owned()
    }
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Bearer { .. } => "bearer",
            Credential::Basic { .. } => "basic",
            Credential::ApiKey { .. } => "api_key",
            Credential::Headers { .. } => "headers",
        }
    }

    /// What the API shows after creation.
    pub fn hint(&self) -> Option<String> {
        match self {
            Credential::None => None,
            Credential::Bearer { token } => Some(mask(token.expose_secret())),
            Credential::Basic { username, .. } => Some(format!("{username}:••••")),
            Credential::ApiKey { header, value } => {
                Some(format!("{header}: {}", mask(value.expose_secret())))
            }
            Credential::Headers { headers } => Some(
                headers
                    .keys()
                    .map(|k| format!("{k}: ••••"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }

    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            Credential::None => {}
            Credential::Bearer { token } => {
                if !is_header_value(token.expose_secret()) {
                    errors.push(FieldError::rule(
                        "credential.token",
                        "invalid",
                        "must be 1–4096 printable ASCII characters",
                    ));
                }
            }
            Credential::Basic { username, password } => {
                if username.is_empty() || username.contains(':') || !is_header_value(username) {
                    errors.push(FieldError::rule(
                        "credential.username",
                        "invalid",
                        "must be printable ASCII without `:`",
                    ));
                }
                if !is_header_value(password.expose_secret()) {
                    errors.push(FieldError::rule(
                        "credential.password",
                        "invalid",
                        "must be 1–4096 printable ASCII characters",
                    ));
                }
            }
            Credential::ApiKey {
                header: name,
                value,
            } => {
                errors.extend(header_problem("credential.header", name));
                if !is_header_value(value.expose_secret()) {
                    errors.push(FieldError::rule(
                        "credential.value",
                        "invalid",
                        "must be 1–4096 printable ASCII characters",
                    ));
                }
            }
            Credential::Headers { headers } => {
                if headers.is_empty() || headers.len() > MAX_CUSTOM_HEADERS {
                    errors.push(FieldError::rule(
                        "credential.headers",
                        "invalid",
                        format!("must hold 1–{MAX_CUSTOM_HEADERS} headers"),
                    ));
                }
                for (name, value) in headers {
                    errors.extend(header_problem(&format!("credential.headers.{name}"), name));
                    if !is_header_value(value.expose_secret()) {
                        errors.push(FieldError::rule(
                            format!("credential.headers.{name}"),
                            "invalid",
                            "values must be 1–4096 printable ASCII characters",
                        ));
                    }
                }
            }
        }
        errors
    }

    /// The JSON that is sealed. `None` for no credential (nothing stored).
    pub fn to_stored(&self) -> Option<SecretString> {
        let stored = match self {
            Credential::None => return None,
            Credential::Bearer { token } => StoredCredential::Bearer {
                token: token.expose_secret().to_owned(),
            },
            Credential::Basic { username, password } => StoredCredential::Basic {
                username: username.clone(),
                password: password.expose_secret().to_owned(),
            },
            Credential::ApiKey { header, value } => StoredCredential::ApiKey {
                header: header.clone(),
                value: value.expose_secret().to_owned(),
            },
            Credential::Headers { headers } => StoredCredential::Headers {
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                    .collect(),
            },
        };
        serde_json::to_string(&stored).ok().map(SecretString::from)
    }

    /// From its opened stored JSON (or a legacy plaintext row holding the same).
    pub fn from_stored(text: &[u8]) -> Option<Self> {
        let stored: StoredCredential = serde_json::from_slice(text).ok()?;
        Some(match stored {
            StoredCredential::None => Credential::None,
            StoredCredential::Bearer { token } => Credential::Bearer {
                token: token.into(),
            },
            StoredCredential::Basic { username, password } => Credential::Basic {
                username,
                password: password.into(),
            },
            StoredCredential::ApiKey { header, value } => Credential::ApiKey {
                header,
                value: value.into(),
            },
            StoredCredential::Headers { headers } => Credential::Headers {
                headers: headers.into_iter().map(|(k, v)| (k, v.into())).collect(),
            },
        })
    }

    /// The headers to send.
    pub fn headers(&self) -> Vec<(String, SecretString)> {
        use base64::Engine;
        match self {
            Credential::None => Vec::new(),
            Credential::Bearer { token } => vec![(
                "authorization".to_owned(),
                format!("Bearer {}", token.expose_secret()).into(),
            )],
            Credential::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose_secret());
                vec![(
                    "authorization".to_owned(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )
                    .into(),
                )]
            }
            Credential::ApiKey { header, value } => {
                vec![(header.clone(), value.expose_secret().to_owned().into())]
            }
            Credential::Headers { headers } => headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_owned().into()))
                .collect(),
        }
    }
}

/// Validates an event list: known types or `*`, at least one.
pub fn check_events(events: &[String]) -> Vec<FieldError> {
    if events.is_empty() {
        return vec![FieldError::rule(
            "events",
            "required",
            "must list at least one event type, or `*`",
        )];
    }
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.as_str() != "*" && !EVENT_TYPES.contains(&e.as_str()))
        .map(|(i, _)| {
            FieldError::rule(
                format!("events[{i}]"),
                "unknown_event",
                format!("must be `*` or one of: {}", EVENT_TYPES.join(", ")),
            )
        })
        .collect()
}
