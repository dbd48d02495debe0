//! The condition builder, without JavaScript: the condition tree travels in the form
//! as one set of fields per node (`node.0.1.kind`, `node.0.1.attribute`, …), and
//! the "add" and "remove" buttons are submit buttons that post the form back to be
//! re-rendered with the change, each to an address whose fragment (`#node-0.1`) is
//! the node it changes, so the browser returns there. The tree converts to and from
//! the policy's JSON conditions; validation errors, which name JSON paths, are shown
//! beside the node they concern.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::http::admin_page::Form;
use crate::policy::operator::Operator;
use crate::validation::FieldError;

/// One node of the tree being edited.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Group {
        kind: GroupKind,
        children: Vec<Node>,
    },
    Condition(ConditionFields),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    All,
    Any,
    Not,
}

impl GroupKind {
    fn as_str(self) -> &'static str {
        match self {
            GroupKind::All => "all",
            GroupKind::Any => "any",
            GroupKind::Not => "not",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(GroupKind::All),
            "any" => Some(GroupKind::Any),
            "not" => Some(GroupKind::Not),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionFields {
    pub attribute: String,
    pub operator: String,
    /// As typed: a literal, or an attribute name when `value_is_attribute`.
    pub value: String,
    pub value_is_attribute: bool,
}

/// A row of the rendered builder: one node, indented by depth.
pub struct Row {
    pub path: String,
    pub depth: usize,
    pub group: Option<String>,
    pub fields: ConditionFields,
    /// Its validation errors, each as "field: message".
    pub errors: Vec<String>,
    /// The fields those errors name (`attribute`, `operator`, `value`, …).
    pub invalid_fields: Vec<String>,
    /// Whether it offers "add" buttons: a group with room, or a lone root condition
    /// (which "Add a condition" turns into an ALL group).
    pub can_add: bool,
    /// Where an "add" button returns to: the node it adds.
    pub add_anchor: String,
    /// Where "Remove" returns to: the parent, or the builder for the root.
    pub remove_anchor: String,
    /// What "Remove" removes, in words ("the ALL group", "the condition …").
    pub removes: String,
}

impl Row {
    pub fn invalid(&self, field: &str) -> bool {
        self.invalid_fields.iter().any(|f| f == field)
    }
}

fn child_path(path: &str, i: usize) -> String {
    format!("{path}.{i}")
}

/// The fragment id of the node at `path` (the rows render `id="node-{path}"`).
fn anchor(path: &str) -> String {
    format!("node-{path}")
}

/// The fragment id of the builder as a whole (for when the root is removed).
pub const BUILDER_ANCHOR: &str = "conditions";

/// Where removing the node at `path` returns to: its parent, or the builder.
fn remove_anchor(path: &str) -> String {
    path.rsplit_once('.')
        .map_or_else(|| BUILDER_ANCHOR.to_owned(), |(parent, _)| anchor(parent))
}

/// Reads the tree from the form: the node at `path`, if the form has one.
fn read_node(form: &BTreeMap<String, String>, path: &str) -> Option<Node> {
    let field = |name: &str| {
        form.get(&format!("node.{path}.{name}"))
            .cloned()
            .unwrap_or_default()
    };
    let kind = form.get(&format!("node.{path}.kind"))?;
    if let Some(group) = GroupKind::parse(kind) {
        let children = (0..)
            .map_while(|i| read_node(form, &child_path(path, i)))
            .collect();
        return Some(Node::Group {
            kind: group,
            children,
        });
    }
    Some(Node::Condition(ConditionFields {
        attribute: field("attribute").trim().to_owned(),
        operator: field("operator"),
        // Not trimmed: spaces may be part of a string value.
        value: field("value"),
        value_is_attribute: field("value_type") == "attribute",
    }))
}

pub fn from_form(form: &Form) -> Option<Node> {
    let fields: BTreeMap<String, String> = form.0.iter().cloned().collect();
    read_node(&fields, "0")
}

fn node_at<'a>(root: &'a mut Option<Node>, path: &str) -> Option<&'a mut Node> {
    let mut parts = path.split('.');
    if parts.next() != Some("0") {
        return None;
    }
    let mut node = root.as_mut()?;
    for part in parts {
        let i: usize = part.parse().ok()?;
        node = match node {
            Node::Group { children, .. } => children.get_mut(i)?,
            Node::Condition(_) => return None,
        };
    }
    Some(node)
}

fn new_condition() -> Node {
    Node::Condition(ConditionFields {
        operator: "eq".to_owned(),
        ..ConditionFields::default()
    })
}

/// Applies a builder button (`add_condition:PATH`, `add_group:PATH:KIND`,
/// `remove:PATH`, `root:KIND`) and returns the fragment id of the node it changed
/// or added. "Add a condition" on a lone root condition turns it into an ALL group
/// of it and a new one. Unknown or stale buttons change nothing (`None`).
pub fn apply(root: &mut Option<Node>, op: &str) -> Option<String> {
    let mut parts = op.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("root"), Some(kind), _) => {
            *root = match GroupKind::parse(kind) {
                Some(kind) => Some(Node::Group {
                    kind,
                    children: vec![new_condition()],
                }),
                None => Some(new_condition()),
            };
            Some(anchor("0"))
        }
        (Some("add_condition"), Some(path), _) => match node_at(root, path)? {
            Node::Group { kind, children } if *kind != GroupKind::Not || children.is_empty() => {
                children.push(new_condition());
                Some(anchor(&child_path(path, children.len() - 1)))
            }
            // Only the root: a nested condition's group has its own buttons, and a
            // stale button naming a condition that was a group changes nothing.
            lone @ Node::Condition(_) if path == "0" => {
                let old = std::mem::replace(lone, new_condition());
                *lone = Node::Group {
                    kind: GroupKind::All,
                    children: vec![old, new_condition()],
                };
                Some(anchor(&child_path(path, 1)))
            }
            _ => None,
        },
        (Some("add_group"), Some(path), Some(kind)) => {
            let kind = GroupKind::parse(kind)?;
            match node_at(root, path)? {
                Node::Group {
                    kind: parent,
                    children,
                } if *parent != GroupKind::Not || children.is_empty() => {
                    children.push(Node::Group {
                        kind,
                        children: vec![new_condition()],
                    });
                    Some(anchor(&child_path(path, children.len() - 1)))
                }
                _ => None,
            }
        }
        (Some("remove"), Some(path), _) => {
            if path == "0" {
                *root = None;
                return Some(BUILDER_ANCHOR.to_owned());
            }
            let (parent, index) = path.rsplit_once('.')?;
            let index = index.parse::<usize>().ok()?;
            match node_at(root, parent)? {
                Node::Group { children, .. } if index < children.len() => {
                    children.remove(index);
                    Some(anchor(parent))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A typed literal: JSON when it parses as JSON (numbers, booleans, lists, quoted
/// strings), a comma list for the list operators (`6, 7` as `[6, 7]`), and plain
/// text otherwise.
fn literal(operator: Operator, text: &str) -> Value {
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && !value.is_object()
    {
        return value;
    }
    match operator {
        Operator::In | Operator::NotIn | Operator::TimeBetween | Operator::IpInCidr
            if text.contains(',') =>
        {
            Value::Array(text.split(',').map(|part| list_item(part.trim())).collect())
        }
        _ => Value::from(text),
    }
}

/// One item of a comma list: a number, boolean or quoted string as JSON reads it,
/// anything else as text (`sales`, `09:00`, `10.0.0.0/8`).
fn list_item(part: &str) -> Value {
    match serde_json::from_str::<Value>(part) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::String(_))) => value,
        _ => Value::from(part),
    }
}

/// The JSON conditions of a tree (what the policy stores and validates).
pub fn to_json(node: &Node) -> Value {
    match node {
        Node::Group {
            kind: GroupKind::Not,
            children,
        } => {
            json!({"not": children.first().map(to_json).unwrap_or(Value::Null)})
        }
        Node::Group { kind, children } => {
            json!({kind.as_str(): children.iter().map(to_json).collect::<Vec<_>>()})
        }
        Node::Condition(c) => {
            let mut object = Map::new();
            object.insert("attribute".to_owned(), Value::from(c.attribute.as_str()));
            object.insert("operator".to_owned(), Value::from(c.operator.as_str()));
            let operator = Operator::parse(&c.operator);
            let wants_value = !matches!(operator, Some(Operator::Exists | Operator::NotExists));
            if wants_value {
                let value = if c.value_is_attribute {
                    json!({"attribute": c.value})
                } else {
                    literal(operator.unwrap_or(Operator::Eq), &c.value)
                };
                object.insert("value".to_owned(), value);
            }
            Value::Object(object)
        }
    }
}

/// The tree of stored JSON conditions (for editing).
pub fn from_json(value: &Value) -> Node {
    let object = value.as_object();
    let group = |key: &str| object.and_then(|o| o.get(key));
    if let Some(Value::Array(items)) = group("all") {
        return Node::Group {
            kind: GroupKind::All,
            children: items.iter().map(from_json).collect(),
        };
    }
    if let Some(Value::Array(items)) = group("any") {
        return Node::Group {
            kind: GroupKind::Any,
            children: items.iter().map(from_json).collect(),
        };
    }
    if let Some(inner) = group("not") {
        return Node::Group {
            kind: GroupKind::Not,
            children: vec![from_json(inner)],
        };
    }
    let text = |key: &str| {
        object
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let value = object.and_then(|o| o.get("value"));
    let (value, value_is_attribute) = match value {
        Some(Value::Object(reference)) => (
            reference
                .get("attribute")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            true,
        ),
        Some(Value::String(s)) => (string_as_typed(s), false),
        Some(other) => (other.to_string(), false),
        None => (String::new(), false),
    };
    Node::Condition(ConditionFields {
        attribute: text("attribute"),
        operator: text("operator"),
        value,
        value_is_attribute,
    })
}

/// How a stored string is shown so that saving it back yields the same string: as
/// typed, unless it would read as something else (JSON such as `9` or `true`, a
/// comma list, surrounding spaces) — then JSON-quoted.
fn string_as_typed(s: &str) -> String {
    let ambiguous = serde_json::from_str::<Value>(s).is_ok()
        || s.contains(',')
        || s.trim() != s
        || s.is_empty();
    if ambiguous {
        Value::from(s).to_string()
    } else {
        s.to_owned()
    }
}

/// The builder path ("0.1") of a validation error's JSON path
/// ("conditions.all[1].value"), and the field it names, if any.
fn node_path_of(field: &str) -> Option<String> {
    let mut rest = field.strip_prefix("conditions")?;
    let mut path = String::from("0");
    loop {
        if let Some(after) = rest.strip_prefix(".not") {
            path.push_str(".0");
            rest = after;
            continue;
        }
        let group = rest
            .strip_prefix(".all[")
            .or_else(|| rest.strip_prefix(".any["));
        match group.and_then(|g| g.split_once(']')) {
            Some((index, after)) => {
                path.push('.');
                path.push_str(index);
                rest = after;
            }
            None => return Some(path),
        }
    }
}

/// The rows to render, with each validation error beside its node.
pub fn rows(root: &Option<Node>, errors: &[FieldError]) -> Vec<Row> {
    let mut by_path: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for error in errors {
        if let Some(path) = node_path_of(&error.field) {
            let what = error.field.rsplit('.').next().unwrap_or("");
            by_path
                .entry(path)
                .or_default()
                .push((what.to_owned(), error.message.clone()));
        }
    }
    let mut rows = Vec::new();
    if let Some(root) = root {
        flatten(root, "0", 0, &mut by_path, &mut rows);
    }
    rows
}

fn flatten(
    node: &Node,
    path: &str,
    depth: usize,
    errors: &mut BTreeMap<String, Vec<(String, String)>>,
    rows: &mut Vec<Row>,
) {
    let own_errors = errors.remove(path).unwrap_or_default();
    let invalid_fields = own_errors.iter().map(|(field, _)| field.clone()).collect();
    let own_errors = own_errors
        .into_iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect();
    match node {
        Node::Group { kind, children } => {
            rows.push(Row {
                path: path.to_owned(),
                depth,
                group: Some(kind.as_str().to_owned()),
                fields: ConditionFields::default(),
                errors: own_errors,
                invalid_fields,
                can_add: *kind != GroupKind::Not || children.is_empty(),
                add_anchor: anchor(&child_path(path, children.len())),
                remove_anchor: remove_anchor(path),
                removes: format!("the {} group", kind.as_str().to_uppercase()),
            });
            for (i, child) in children.iter().enumerate() {
                flatten(child, &child_path(path, i), depth + 1, errors, rows);
            }
        }
        Node::Condition(fields) => rows.push(Row {
            path: path.to_owned(),
            depth,
            group: None,
            fields: fields.clone(),
            errors: own_errors,
            invalid_fields,
            can_add: path == "0",
            add_anchor: anchor(&child_path(path, 1)),
            remove_anchor: remove_anchor(path),
            removes: describe_condition(fields),
        }),
    }
}

/// A condition in words, for what its "Remove" button removes.
fn describe_condition(fields: &ConditionFields) -> String {
    let attribute = fields.attribute.trim();
    if attribute.is_empty() {
        return "the condition with no attribute yet".to_owned();
    }
    let wants_value = !matches!(
        Operator::parse(&fields.operator),
        Some(Operator::Exists | Operator::NotExists)
    );
    let mut words = format!("the condition {attribute} {}", fields.operator);
    if wants_value && !fields.value.trim().is_empty() {
        words.push(' ');
        words.push_str(fields.value.trim());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_posted_tree_becomes_the_policy_json_and_back() {
        let posted = form(&[
            ("node.0.kind", "all"),
            ("node.0.0.kind", "cond"),
            ("node.0.0.attribute", "subject.attributes.department"),
            ("node.0.0.operator", "eq"),
            ("node.0.0.value", "resource.attributes.department"),
            ("node.0.0.value_type", "attribute"),
            ("node.0.1.kind", "not"),
            ("node.0.1.0.kind", "cond"),
            ("node.0.1.0.attribute", "resource.attributes.classification"),
            ("node.0.1.0.operator", "in"),
            ("node.0.1.0.value", "confidential, secret"),
            ("node.0.2.kind", "cond"),
            ("node.0.2.attribute", "context.time.hour"),
            ("node.0.2.operator", "gte"),
            ("node.0.2.value", "9"),
        ]);
        let tree = from_form(&posted).expect("tree");
        let json = to_json(&tree);
        assert_eq!(
            json,
            json!({"all": [
                {"attribute": "subject.attributes.department", "operator": "eq",
                 "value": {"attribute": "resource.attributes.department"}},
                {"not": {"attribute": "resource.attributes.classification", "operator": "in",
                         "value": ["confidential", "secret"]}},
                {"attribute": "context.time.hour", "operator": "gte", "value": 9}
            ]})
        );
        assert_eq!(to_json(&from_json(&json)), json);
    }

    #[test]
    fn stored_values_survive_an_edit_unchanged() {
        for value in [
            json!("9"),
            json!(" padded "),
            json!("true"),
            json!("null"),
            json!("a, b"),
            json!("[1]"),
            json!(""),
            json!("plain text"),
            json!(9),
            json!(true),
            json!(["a", "b"]),
        ] {
            let stored = json!({"attribute": "subject.email", "operator": "eq", "value": value});
            assert_eq!(to_json(&from_json(&stored)), stored, "{value}");
        }
    }

    #[test]
    fn buttons_add_and_remove_nodes() {
        let mut root = None;
        apply(&mut root, "root:all");
        apply(&mut root, "add_condition:0");
        apply(&mut root, "add_group:0:any");
        apply(&mut root, "add_condition:0.2");
        apply(&mut root, "remove:0.0");
        let paths: Vec<String> = rows(&root, &[]).into_iter().map(|r| r.path).collect();
        assert_eq!(paths, vec!["0", "0.0", "0.1", "0.1.0", "0.1.1"]);
        apply(&mut root, "remove:0.9");
        apply(&mut root, "add_condition:0.0");
        assert_eq!(
            rows(&root, &[]).len(),
            5,
            "stale or invalid buttons change nothing"
        );
        apply(&mut root, "remove:0");
        assert!(root.is_none());
    }

    #[test]
    fn add_a_condition_on_a_lone_condition_makes_an_all_group() {
        let mut root = None;
        assert_eq!(apply(&mut root, "root:cond").as_deref(), Some("node-0"));
        if let Some(Node::Condition(fields)) = &mut root {
            fields.attribute = "subject.mfa".to_owned();
        }
        assert_eq!(
            apply(&mut root, "add_condition:0").as_deref(),
            Some("node-0.1")
        );
        let json = root.as_ref().map(to_json);
        assert_eq!(
            json,
            Some(json!({"all": [
                {"attribute": "subject.mfa", "operator": "eq", "value": ""},
                {"attribute": "", "operator": "eq", "value": ""}
            ]}))
        );
    }

    #[test]
    fn every_button_returns_to_the_node_it_changed() {
        let mut root = None;
        assert_eq!(apply(&mut root, "root:all").as_deref(), Some("node-0"));
        assert_eq!(
            apply(&mut root, "add_group:0:not").as_deref(),
            Some("node-0.1")
        );
        assert_eq!(
            apply(&mut root, "add_condition:0.1").as_deref(),
            None,
            "a NOT holds one node"
        );
        assert_eq!(
            apply(&mut root, "add_condition:0").as_deref(),
            Some("node-0.2")
        );
        assert_eq!(
            apply(&mut root, "remove:0.1.0").as_deref(),
            Some("node-0.1")
        );
        assert_eq!(apply(&mut root, "remove:0.7").as_deref(), None);
        // The rendered buttons name the same places.
        let rows = rows(&root, &[]);
        assert_eq!(rows[0].add_anchor, "node-0.3");
        assert_eq!(rows[0].remove_anchor, BUILDER_ANCHOR);
        assert_eq!(rows[1].remove_anchor, "node-0");
        assert_eq!(rows[1].removes, "the condition with no attribute yet");
        assert_eq!(rows[2].removes, "the NOT group");
        assert!(rows[2].can_add, "an empty NOT has room");
        assert_eq!(
            apply(&mut root, "remove:0").as_deref(),
            Some(BUILDER_ANCHOR)
        );
    }

    #[test]
    fn comma_lists_read_numbers_and_strings() {
        let cases = [
            ("6, 7", json!([6, 7])),
            ("[6, 7]", json!([6, 7])),
            ("sales, engineering", json!(["sales", "engineering"])),
            (r#"6, "7", true, x"#, json!([6, "7", true, "x"])),
        ];
        for (typed, expected) in cases {
            assert_eq!(literal(Operator::In, typed), expected, "{typed}");
        }
        assert_eq!(
            literal(Operator::TimeBetween, "09:00, 17:00"),
            json!(["09:00", "17:00"])
        );
        assert_eq!(literal(Operator::Eq, "6, 7"), json!("6, 7"));
    }

    #[test]
    fn remove_buttons_say_what_they_remove() {
        let tree = from_json(&json!({"any": [
            {"attribute": "subject.attributes.department", "operator": "eq", "value": "sales"},
            {"attribute": "subject.mfa", "operator": "exists"}
        ]}));
        let rows = rows(&Some(tree), &[]);
        let said: Vec<&str> = rows.iter().map(|r| r.removes.as_str()).collect();
        assert_eq!(
            said,
            vec![
                "the ANY group",
                "the condition subject.attributes.department eq sales",
                "the condition subject.mfa exists"
            ]
        );
    }

    #[test]
    fn errors_land_beside_their_node() {
        let mut root = None;
        apply(&mut root, "root:all");
        apply(&mut root, "add_group:0:not");
        let errors = vec![FieldError::new("conditions.all[1].not.value", "is wrong")];
        let rows = rows(&root, &errors);
        let flagged: Vec<&str> = rows
            .iter()
            .filter(|r| !r.errors.is_empty())
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(flagged, vec!["0.1.0"]);
        assert_eq!(rows[3].errors[0], "value: is wrong");
        assert!(rows[3].invalid("value") && !rows[3].invalid("attribute"));
    }
}
