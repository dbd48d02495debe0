//! Validation errors, as every layer reports them: the field at fault (a JSON path
//! such as `name` or `items[2].value`), what is wrong, and the rule it broke. Core
//! services return them; the web layer shows them (problem+json `errors`, or beside
//! the form field on a page).

use serde::Serialize;
use utoipa::ToSchema;

/// One field at fault: a JSON path such as `name` or `items[2].value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// The rule the value broke, when a named rule applies (e.g. `min_length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            rule: None,
        }
    }

    pub fn rule(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            rule: Some(rule),
        }
    }
}
