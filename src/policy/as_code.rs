//! Policies as code: the file `portcullis policies export` writes and `policies
//! import` and `policies test` read, as JSON (`{"policies": [ … ]}`) or TOML
//! (`[[policies]]`).
//!
//! What it guarantees, so a team can keep its rules in git:
//!
//! - **Same policies, same bytes.** Policies are written highest priority first,
//!   then by name, then by id; each with its fields in one fixed order and the keys
//!   inside its conditions sorted; pretty-printed, ending in a line break; with no
//!   timestamp, version or author, so a diff shows only rules that changed.
//! - **The admin API's own policy, by the same rules.** An entry carries exactly a
//!   policy draft's fields (what `POST /api/v1/admin/policies` takes) plus its `id`,
//!   which keeps a rename a change rather than a delete and a create. It is
//!   validated by the engine's own validation, as every door validates a draft.
//! - **Every problem says where.** A file that does not read names the JSON path
//!   of the field at fault (`policies[3].effect`) and, for JSON, its line and
//!   column; the validation of each policy names `policies[i].field`.
//!
//! The built-in policies are written too, marked `"built_in": true`: an import
//! leaves them be (see `plan`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::engine::PolicySet;
use super::service::build_policy;
use super::validate::{PolicyDraft, compile};
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};
use crate::validation::FieldError;

/// How a policy file (or a test-case file) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Toml,
}

impl FileFormat {
    /// `json` or `toml`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "json" => Some(FileFormat::Json),
            "toml" => Some(FileFormat::Toml),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Toml => "toml",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            FileFormat::Json => "application/json",
            FileFormat::Toml => "application/toml",
        }
    }

    /// The format a file's name says: `.json` or `.toml`.
    pub fn of_name(file_name: &str) -> Option<Self> {
        let (_, extension) = file_name.rsplit_once('.')?;
        FileFormat::parse(&extension.to_ascii_lowercase())
    }

    /// The format a file's name says; otherwise the one its text is in: JSON when
    /// it starts with `{` (a TOML document never does).
    pub fn detect(file_name: Option<&str>, text: &str) -> Self {
        match file_name.and_then(FileFormat::of_name) {
            Some(format) => format,
            None if text.trim_start().starts_with('{') => FileFormat::Json,
            None => FileFormat::Toml,
        }
    }
}

/// A policy file: every policy, in the order written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub policies: Vec<PolicyEntry>,
}

/// One policy of a file: a draft (the admin API's body, with its defaults) and
/// the id that keeps it the same policy from one import to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Absent: a new policy, created with a fresh id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// One of Portcullis's own policies (the owner and the administrator policy):
    /// written for the record; an import never changes their rules.
    #[serde(default, skip_serializing_if = "is_false")]
    pub built_in: bool,
    pub effect: Effect,
    #[serde(default)]
    pub priority: u16,
    #[serde(default = "super::validate::active")]
    pub status: PolicyStatus,
    pub resource_type: String,
    pub actions: Vec<String>,
    #[serde(default = "super::validate::everyone")]
    pub principals: Principals,
    /// Absent: the policy applies always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Value>,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl PolicyEntry {
    /// A stored policy as a file writes it.
    pub fn of(policy: &Policy) -> Self {
        Self {
            id: Some(policy.id),
            name: policy.name.clone(),
            description: policy.description.clone(),
            built_in: policy.system,
            effect: policy.effect,
            priority: policy.priority,
            status: policy.status,
            resource_type: policy.resource_type.clone(),
            actions: policy.actions.clone(),
            principals: policy.principals.clone(),
            conditions: canonical_conditions(policy.conditions.as_ref()),
        }
    }

    /// The draft this entry saves.
    pub fn draft(&self) -> PolicyDraft {
        PolicyDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            effect: self.effect,
            resource_type: self.resource_type.clone(),
            actions: self.actions.clone(),
            conditions: self.conditions.clone(),
            priority: self.priority,
            status: self.status,
            principals: self.principals.clone(),
        }
    }
}

/// Conditions as a file writes and compares them: `None` for "always", and no
/// `null` member anywhere (the engine reads one as absent, and TOML has none).
pub(super) fn canonical_conditions(conditions: Option<&Value>) -> Option<Value> {
    fn without_nulls(value: &Value) -> Value {
        match value {
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .filter(|(_, member)| !member.is_null())
                    .map(|(key, member)| (key.clone(), without_nulls(member)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
            other => other.clone(),
        }
    }
    conditions
        .filter(|conditions| !conditions.is_null())
        .map(without_nulls)
}

/// The file of these policies: highest priority first, then by name, then by id.
pub fn file_of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> PolicyFile {
    let mut policies: Vec<&Policy> = policies.into_iter().collect();
    policies.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    PolicyFile {
        policies: policies.into_iter().map(PolicyEntry::of).collect(),
    }
}

/// The text of a policy file, pretty-printed and ending in a line break.
pub fn render(file: &PolicyFile, format: FileFormat) -> anyhow::Result<String> {
    match format {
        FileFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(file).context("cannot write the policies as JSON")?;
            text.push('\n');
            Ok(text)
        }
        FileFormat::Toml => {
            toml::to_string_pretty(file).context("cannot write the policies as TOML")
        }
    }
}

/// Reads a file of `T` (a policy file, a test-case file). A problem is a field
/// error whose field is the JSON path at fault (empty for the document as a
/// whole), and whose message says the line and column where the text gives them.
pub fn read<T: DeserializeOwned>(text: &str, format: FileFormat) -> Result<T, FieldError> {
    match format {
        FileFormat::Json => {
            let mut document = serde_json::Deserializer::from_str(text);
            let read: T = serde_path_to_error::deserialize(&mut document)
                .map_err(|error| problem(error.path(), error.inner().to_string()))?;
            document
                .end()
                .map_err(|error| FieldError::rule("", "syntax", error.to_string()))?;
            Ok(read)
        }
        FileFormat::Toml => {
            let document = toml::Deserializer::parse(text)
                .map_err(|error| FieldError::rule("", "syntax", toml_message(&error, text)))?;
            serde_path_to_error::deserialize(document)
                .map_err(|error| problem(error.path(), toml_message(error.inner(), text)))
        }
    }
}

fn problem(path: &serde_path_to_error::Path, message: String) -> FieldError {
    let path = path.to_string();
    let field = if path == "." { String::new() } else { path };
    FieldError::rule(field, "unreadable", message)
}

/// A TOML error's message with the line and column it points at.
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            // A span that does not fall on a character boundary reads as no text
            // before it, never a panic.
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit_once('\n')
                .map_or(before, |(_, last)| last)
                .chars()
                .count()
                + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_owned(),
    }
}

/// Field errors of one entry, under `policies[i]`.
pub(super) fn under(index: usize, errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(move |mut error| {
        error.field = if error.field.is_empty() {
            format!("policies[{index}]")
        } else {
            format!("policies[{index}].{}", error.field)
        };
        error
    })
}

/// An entry's id, unless an earlier entry has it already (an error on
/// `policies[i].id`). `first` remembers where each id was first seen.
pub(super) fn claim_id(
    index: usize,
    id: Option<Uuid>,
    first: &mut HashMap<Uuid, usize>,
) -> Result<Option<Uuid>, FieldError> {
    let Some(id) = id else {
        return Ok(None);
    };
    match first.entry(id) {
        Entry::Occupied(earlier) => Err(FieldError::rule(
            format!("policies[{index}].id"),
            "duplicate",
            format!("is the id of policies[{}] too", earlier.get()),
        )),
        Entry::Vacant(slot) => {
            slot.insert(index);
            Ok(Some(id))
        }
    }
}

/// The set a file describes on its own, with no database: what `policies test
/// --policies FILE` decides with. Every entry is validated as an import validates
/// it; an entry without an id gets a fresh one.
pub fn policy_set(file: &PolicyFile, now: i64) -> Result<PolicySet, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut first = HashMap::new();
    let mut compiled = Vec::with_capacity(file.policies.len());
    for (index, entry) in file.policies.iter().enumerate() {
        let id = match claim_id(index, entry.id, &mut first) {
            Ok(id) => id.unwrap_or_else(Uuid::new_v4),
            Err(duplicate) => {
                errors.push(duplicate);
                continue;
            }
        };
        let built = build_policy(id, entry.draft(), None, "file", now).and_then(compile);
        match built {
            Ok(policy) => compiled.push(policy),
            Err(found) => errors.extend(under(index, found)),
        }
    }
    if errors.is_empty() {
        Ok(PolicySet::new(compiled))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Role;

    fn policy(name: &str, priority: u16, conditions: Option<Value>) -> Policy {
        Policy {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            description: format!("About {name}."),
            effect: Effect::Allow,
            resource_type: "document".to_owned(),
            actions: vec!["read".to_owned()],
            conditions,
            priority,
            status: PolicyStatus::Active,
            principals: Principals::Roles {
                roles: vec![Role::Admin],
            },
            version: 3,
            system: false,
            created_by: Some("someone".to_owned()),
            created_at: 1,
            updated_by: Some("someone else".to_owned()),
            updated_at: 2,
        }
    }

    fn sample() -> Vec<Policy> {
        vec![
            policy("b", 10, None),
            policy(
                "a",
                10,
                Some(json!({"all": [
                    {"value": ["x", "y"], "operator": "in", "attribute": "subject.attributes.team"},
                    {"not": {"attribute": "resource.owner_id", "operator": "exists", "value": null}},
                    {"attribute": "subject.id", "operator": "ne", "value": {"attribute": "resource.owner_id"}},
                ]})),
            ),
            policy(
                "c",
                900,
                Some(json!({"attribute": "context.time.hour", "operator": "lt", "value": 18})),
            ),
        ]
    }

    #[test]
    fn the_order_is_priority_then_name_and_nothing_that_churns_is_written() {
        let file = file_of(&sample());
        let names: Vec<&str> = file.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        let text = render(&file, FileFormat::Json).expect("json");
        for churn in ["version", "created", "updated", "someone"] {
            assert!(!text.contains(churn), "{churn} in {text}");
        }
        assert!(text.ends_with("}\n"));
        // Field order is fixed, keys inside conditions sorted, nulls dropped.
        let first = text.find("\"id\"").expect("id");
        let last = text.find("\"conditions\"").expect("conditions");
        assert!(first < text.find("\"effect\"").expect("effect") && last > first);
        assert!(!text.contains("null"), "{text}");
        assert!(
            text.find("\"attribute\": \"subject.attributes.team\"")
                < text.find("\"operator\": \"in\"")
        );
    }

    #[test]
    fn json_and_toml_read_back_as_the_same_file() {
        let file = file_of(&sample());
        for format in [FileFormat::Json, FileFormat::Toml] {
            let text = render(&file, format).expect("render");
            let back: PolicyFile =
                read(&text, format).unwrap_or_else(|e| panic!("{format:?}: {e:?}\n{text}"));
            assert_eq!(back, file, "{format:?}:\n{text}");
            assert_eq!(render(&back, format).expect("again"), text, "stable");
            assert_eq!(FileFormat::detect(None, &text), format);
        }
    }

    #[test]
    fn a_problem_names_the_json_path_and_the_line() {
        let text = r#"{"policies": [
  {"name": "fine", "effect": "allow", "resource_type": "document", "actions": ["read"]},
  {"name": "typo", "effect": "alow", "resource_type": "document", "actions": ["read"]}
]}"#;
        let error = read::<PolicyFile>(text, FileFormat::Json).expect_err("bad effect");
        assert_eq!(error.field, "policies[1].effect");
        assert!(
            error.message.contains("unknown variant `alow`"),
            "{}",
            error.message
        );
        assert!(error.message.contains("line 3"), "{}", error.message);

        let toml = "[[policies]]\nname = \"x\"\neffect = \"allow\"\nresource_type = \"document\"\nactions = [\"read\"]\ncolour = \"red\"\n";
        let error = read::<PolicyFile>(toml, FileFormat::Toml).expect_err("unknown field");
        assert_eq!(error.field, "policies[0].colour");
        assert!(error.message.contains("unknown field"), "{}", error.message);
        assert!(error.message.contains("line"), "{}", error.message);

        let error = read::<PolicyFile>("{\"policies\": []} trailing", FileFormat::Json)
            .expect_err("trailing text");
        assert_eq!(error.field, "");
    }

    #[test]
    fn a_file_on_its_own_is_validated_entry_by_entry() {
        let text = r#"{"policies": [
  {"id": "00000000-0000-4000-8000-00000000aaaa", "name": "one", "effect": "allow", "resource_type": "document", "actions": ["read"]},
  {"id": "00000000-0000-4000-8000-00000000aaaa", "name": "two", "effect": "allow", "resource_type": "document", "actions": ["read"]},
  {"name": "three", "effect": "deny", "resource_type": "document", "actions": ["read"],
   "conditions": {"all": [{"attribute": "subject.role", "operator": "resembles", "value": "x"}]}}
]}"#;
        let file: PolicyFile = read(text, FileFormat::Json).expect("reads");
        let errors = policy_set(&file, 0).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["policies[1].id", "policies[2].conditions.all[0].operator"]
        );
    }

    #[test]
    fn the_format_follows_the_name_then_the_text() {
        assert_eq!(FileFormat::detect(Some("p.TOML"), "{"), FileFormat::Toml);
        assert_eq!(
            FileFormat::detect(Some("p.json"), "x = 1"),
            FileFormat::Json
        );
        assert_eq!(
            FileFormat::detect(Some("policies"), "  {"),
            FileFormat::Json
        );
        assert_eq!(FileFormat::detect(None, "[[policies]]"), FileFormat::Toml);
    }
}
