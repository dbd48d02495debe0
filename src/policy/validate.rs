//! Validation at save time: every attribute name, operator, value type, regex and
//! CIDR is checked, and each problem is reported with the JSON path of the field it
//! concerns (`conditions.all[1].value`). What passes compiles into the engine's form.

use std::sync::Arc;

use ipnet::IpNet;
use regex::RegexBuilder;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::attributes::{self, ValueKind};
use super::engine::{AttrRef, Comparison, CompiledPolicy, Condition, Operand, parse_time_of_day};
use super::operator::Operator;
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};
use crate::validation::FieldError;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_PRIORITY: u16 = 1000;
pub const MAX_ACTIONS: usize = 50;
/// Deepest nesting of `all` / `any` / `not` groups.
pub const MAX_DEPTH: usize = 8;
/// Most comparisons in one policy.
pub const MAX_COMPARISONS: usize = 64;
pub const MAX_LIST_ITEMS: usize = 1000;
pub const MAX_REGEX_CHARS: usize = 512;
/// Compiled-program limit for a `matches` regex, so no pattern can be made costly.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A policy as an administrator writes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDraft {
    /// 1–200 characters once trimmed.
    pub name: String,
    /// At most 2,000 characters.
    #[serde(default)]
    pub description: String,
    pub effect: Effect,
    /// `document`, `webhook`, `policy`, `user`, a custom type, or `*`.
    #[schema(pattern = r"^(\*|[a-z0-9_.:-]{1,64})$")]
    pub resource_type: String,
    /// Action names, or `["*"]`.
    #[schema(min_items = 1, max_items = 50)]
    pub actions: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Value>,
    /// 0–1000; orders the list and the explanation, never the outcome.
    #[serde(default)]
    #[schema(maximum = 1000)]
    pub priority: u16,
    #[serde(default = "active")]
    pub status: PolicyStatus,
    #[serde(default = "everyone")]
    pub principals: Principals,
}

/// A draft's status when it names none.
pub(super) fn active() -> PolicyStatus {
    PolicyStatus::Active
}

/// A draft's principals when it names none.
pub(super) fn everyone() -> Principals {
    Principals::Everyone
}

/// A resource type or action name: lower-case letters, digits, `_`, `-`, `.`, `:`.
pub fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':')
        })
}

/// Checks the draft's own fields (not its conditions).
pub fn check_draft(draft: &PolicyDraft) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = draft.name.trim();
    if name.is_empty() {
        errors.push(FieldError::rule("name", "required", "must not be empty"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::rule(
            "name",
            "max_length",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if draft.description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.push(FieldError::rule(
            "description",
            "max_length",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if draft.resource_type != "*" && !is_name(&draft.resource_type) {
        errors.push(FieldError::rule(
            "resource_type",
            "invalid",
            "must be `*` or a name of lower-case letters, digits, `_`, `-`, `.` or `:`",
        ));
    }
    if draft.actions.is_empty() {
        errors.push(FieldError::rule(
            "actions",
            "required",
            "must list at least one action, or `*`",
        ));
    } else if draft.actions.len() > MAX_ACTIONS {
        errors.push(FieldError::rule(
            "actions",
            "too_many",
            format!("must list at most {MAX_ACTIONS} actions"),
        ));
    }
    for (i, action) in draft.actions.iter().enumerate() {
        if action != "*" && !is_name(action) {
            errors.push(FieldError::rule(
                format!("actions[{i}]"),
                "invalid",
                "must be `*` or a name of lower-case letters, digits, `_`, `-`, `.` or `:`",
            ));
        }
    }
    if draft.priority > MAX_PRIORITY {
        errors.push(FieldError::rule(
            "priority",
            "out_of_range",
            format!("must be between 0 and {MAX_PRIORITY}"),
        ));
    }
    match &draft.principals {
        Principals::Users { ids } if ids.is_empty() => errors.push(FieldError::rule(
            "principals.ids",
            "required",
            "must list at least one user",
        )),
        Principals::Roles { roles } if roles.is_empty() => errors.push(FieldError::rule(
            "principals.roles",
            "required",
            "must list at least one role",
        )),
        _ => {}
    }
    errors
}

/// Compiles a stored (or about to be stored) policy. Errors carry JSON paths
/// starting at `conditions`.
pub fn compile(policy: Policy) -> Result<CompiledPolicy, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut comparisons = 0;
    let condition = policy
        .conditions
        .as_ref()
        .and_then(|value| parse_condition(value, "conditions", 0, &mut comparisons, &mut errors));
    if errors.is_empty() {
        Ok(CompiledPolicy {
            policy: Arc::new(policy),
            condition,
        })
    } else {
        Err(errors)
    }
}

fn parse_condition(
    value: &Value,
    path: &str,
    depth: usize,
    comparisons: &mut usize,
    errors: &mut Vec<FieldError>,
) -> Option<Condition> {
    if depth > MAX_DEPTH {
        errors.push(FieldError::rule(
            path,
            "too_deep",
            format!("groups may nest at most {MAX_DEPTH} deep"),
        ));
        return None;
    }
    let Some(object) = value.as_object() else {
        errors.push(FieldError::rule(
            path,
            "invalid",
            "must be an object: a group (`all`, `any`, `not`) or a condition (`attribute`, `operator`, `value`)",
        ));
        return None;
    };
    let group = |key: &str| object.get(key).filter(|_| object.len() == 1);
    if let Some(items) = group("all").or_else(|| group("any")) {
        let key = if object.contains_key("all") {
            "all"
        } else {
            "any"
        };
        let Some(items) = items.as_array().filter(|a| !a.is_empty()) else {
            errors.push(FieldError::rule(
                format!("{path}.{key}"),
                "invalid",
                "must be a non-empty list of conditions or groups",
            ));
            return None;
        };
        let parsed: Vec<Option<Condition>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_condition(
                    item,
                    &format!("{path}.{key}[{i}]"),
                    depth + 1,
                    comparisons,
                    errors,
                )
            })
            .collect();
        let parsed: Option<Vec<Condition>> = parsed.into_iter().collect();
        return parsed.map(|items| {
            if key == "all" {
                Condition::All(items)
            } else {
                Condition::Any(items)
            }
        });
    }
    if let Some(inner) = group("not") {
        return parse_condition(
            inner,
            &format!("{path}.not"),
            depth + 1,
            comparisons,
            errors,
        )
        .map(|c| Condition::Not(Box::new(c)));
    }
    *comparisons += 1;
    if *comparisons == MAX_COMPARISONS + 1 {
        errors.push(FieldError::rule(
            path,
            "too_many",
            format!("a policy may hold at most {MAX_COMPARISONS} conditions"),
        ));
    }
    parse_comparison(object, path, errors).map(Condition::Compare)
}

fn parse_comparison(
    object: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Comparison> {
    let before = errors.len();
    for key in object.keys() {
        if !matches!(key.as_str(), "attribute" | "operator" | "value") {
            errors.push(FieldError::rule(
                format!("{path}.{key}"),
                "unknown_field",
                "is not a condition field (attribute, operator, value) or a group (all, any, not)",
            ));
        }
    }
    let attribute = parse_attribute(
        object.get("attribute"),
        &format!("{path}.attribute"),
        errors,
    );
    let operator = match object.get("operator").and_then(Value::as_str) {
        Some(text) => Operator::parse(text).or_else(|| {
            errors.push(FieldError::rule(
                format!("{path}.operator"),
                "unknown_operator",
                format!(
                    "must be one of: {}",
                    Operator::ALL.map(Operator::as_str).join(", ")
                ),
            ));
            None
        }),
        None => {
            errors.push(FieldError::rule(
                format!("{path}.operator"),
                "required",
                "must name an operator",
            ));
            None
        }
    };
    let (Some((attribute_name, attribute, kind)), Some(operator)) = (attribute, operator) else {
        return None;
    };
    let value_path = format!("{path}.value");
    let operand = parse_operand(operator, kind, object.get("value"), &value_path, errors);
    if errors.len() > before {
        return None;
    }
    Some(Comparison {
        path: path.to_owned(),
        attribute_name,
        attribute,
        operator,
        operand: operand?,
    })
}

fn parse_attribute(
    value: Option<&Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<(String, AttrRef, ValueKind)> {
    let Some(name) = value.and_then(Value::as_str) else {
        errors.push(FieldError::rule(path, "required", "must name an attribute"));
        return None;
    };
    match attributes::lookup(name).zip(AttrRef::parse(name)) {
        Some((spec, attr)) => Some((name.to_owned(), attr, spec.kind)),
        None => {
            errors.push(FieldError::rule(
                path,
                "unknown_attribute",
                format!("`{}` is not a known attribute", truncate(name)),
            ));
            None
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

fn invalid_value(path: &str, operator: Operator, extra: &str) -> FieldError {
    FieldError::rule(
        path,
        "invalid_value",
        format!(
            "`{}` needs {}{extra}",
            operator.as_str(),
            operator.value_help()
        ),
    )
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Whether a literal fits an attribute of `kind` under `eq`-like comparison.
fn fits(kind: ValueKind, value: &Value) -> bool {
    match kind {
        ValueKind::String | ValueKind::Ip | ValueKind::TimeOfDay => value.is_string(),
        ValueKind::Number => value.is_number(),
        ValueKind::Boolean => value.is_boolean(),
        ValueKind::Any => is_scalar(value),
    }
}

/// Records a type mismatch between an attribute's kind and the operator or value.
fn kind_check(
    operator: Operator,
    kind: ValueKind,
    path: &str,
    errors: &mut Vec<FieldError>,
    ok: bool,
) -> bool {
    if !ok {
        errors.push(FieldError::rule(
            path,
            "type_mismatch",
            format!(
                "`{}` cannot compare an attribute of kind {} with this value",
                operator.as_str(),
                kind.as_str()
            ),
        ));
    }
    ok
}

fn parse_operand(
    operator: Operator,
    kind: ValueKind,
    value: Option<&Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Operand> {
    let value = value.filter(|v| !v.is_null());
    // `{"attribute": "..."}` on the right compares against another attribute.
    let reference = value
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1 && o.contains_key("attribute"));
    if let Some(reference) = reference {
        let allowed = !matches!(
            operator,
            Operator::Matches
                | Operator::Exists
                | Operator::NotExists
                | Operator::IpInCidr
                | Operator::TimeBetween
        );
        if !allowed {
            errors.push(invalid_value(
                path,
                operator,
                "; an attribute is not accepted here",
            ));
            return None;
        }
        let (_, attr, _) = parse_attribute(
            reference.get("attribute"),
            &format!("{path}.attribute"),
            errors,
        )?;
        return Some(Operand::Attribute(attr));
    }
    match operator {
        Operator::Exists | Operator::NotExists => match value {
            None => Some(Operand::None),
            Some(_) => {
                errors.push(invalid_value(path, operator, ""));
                None
            }
        },
        Operator::Eq | Operator::Ne | Operator::Contains => match value {
            Some(v) if is_scalar(v) => {
                let fits = operator == Operator::Contains || fits(kind, v);
                kind_check(operator, kind, path, errors, fits).then(|| Operand::Literal(v.clone()))
            }
            _ => {
                errors.push(invalid_value(path, operator, ""));
                None
            }
        },
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => match value {
            Some(v) if v.is_number() => kind_check(
                operator,
                kind,
                path,
                errors,
                matches!(kind, ValueKind::Number | ValueKind::Any),
            )
            .then(|| Operand::Literal(v.clone())),
            _ => {
                errors.push(invalid_value(path, operator, ""));
                None
            }
        },
        Operator::In | Operator::NotIn => match value.and_then(Value::as_array) {
            Some(items) if items.len() <= MAX_LIST_ITEMS && items.iter().all(is_scalar) => {
                kind_check(
                    operator,
                    kind,
                    path,
                    errors,
                    items.iter().all(|v| fits(kind, v)),
                )
                .then(|| Operand::Literal(Value::Array(items.clone())))
            }
            _ => {
                errors.push(invalid_value(
                    path,
                    operator,
                    &format!(" (at most {MAX_LIST_ITEMS} items)"),
                ));
                None
            }
        },
        Operator::StartsWith | Operator::EndsWith => match value {
            Some(v) if v.is_string() => kind_check(
                operator,
                kind,
                path,
                errors,
                !matches!(kind, ValueKind::Number | ValueKind::Boolean),
            )
            .then(|| Operand::Literal(v.clone())),
            _ => {
                errors.push(invalid_value(path, operator, ""));
                None
            }
        },
        Operator::Matches => {
            let Some(pattern) = value.and_then(Value::as_str) else {
                errors.push(invalid_value(path, operator, ""));
                return None;
            };
            if !kind_check(
                operator,
                kind,
                path,
                errors,
                !matches!(kind, ValueKind::Number | ValueKind::Boolean),
            ) {
                return None;
            }
            if pattern.chars().count() > MAX_REGEX_CHARS {
                errors.push(FieldError::rule(
                    path,
                    "regex_too_long",
                    format!("a pattern may be at most {MAX_REGEX_CHARS} characters"),
                ));
                return None;
            }
            match RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(regex) => Some(Operand::Regex(regex)),
                Err(regex::Error::CompiledTooBig(_)) => {
                    errors.push(FieldError::rule(
                        path,
                        "regex_too_big",
                        "the pattern compiles to a program over the size limit; simplify it",
                    ));
                    None
                }
                Err(_) => {
                    errors.push(FieldError::rule(
                        path,
                        "invalid_regex",
                        "is not a valid regular expression",
                    ));
                    None
                }
            }
        }
        Operator::IpInCidr => {
            if !kind_check(
                operator,
                kind,
                path,
                errors,
                matches!(kind, ValueKind::Ip | ValueKind::Any),
            ) {
                return None;
            }
            let texts: Option<Vec<&str>> = match value {
                Some(Value::String(s)) => Some(vec![s.as_str()]),
                Some(Value::Array(items)) if !items.is_empty() && items.len() <= 100 => {
                    items.iter().map(Value::as_str).collect()
                }
                _ => None,
            };
            let Some(texts) = texts else {
                errors.push(invalid_value(path, operator, ""));
                return None;
            };
            let nets: Option<Vec<IpNet>> = texts
                .iter()
                .map(|t| {
                    t.parse::<IpNet>()
                        .ok()
                        .or_else(|| t.parse::<std::net::IpAddr>().ok().map(IpNet::from))
                })
                .collect();
            match nets {
                Some(nets) => Some(Operand::Cidrs(nets)),
                None => {
                    errors.push(FieldError::rule(
                        path,
                        "invalid_cidr",
                        "must be a CIDR such as 10.0.0.0/8 (or a list of them)",
                    ));
                    None
                }
            }
        }
        Operator::TimeBetween => {
            if !kind_check(
                operator,
                kind,
                path,
                errors,
                matches!(kind, ValueKind::TimeOfDay | ValueKind::Any),
            ) {
                return None;
            }
            let times: Option<Vec<u16>> = value.and_then(Value::as_array).and_then(|items| {
                (items.len() == 2)
                    .then(|| {
                        items
                            .iter()
                            .map(|v| v.as_str().and_then(parse_time_of_day))
                            .collect()
                    })
                    .flatten()
            });
            match times.as_deref() {
                Some([start, end]) => Some(Operand::TimeRange(*start, *end)),
                _ => {
                    errors.push(invalid_value(path, operator, ""));
                    None
                }
            }
        }
    }
}
