//! Owned documents: the first resource every access to which goes through the
//! policy engine. A document the caller may not read does not exist for them (404,
//! never 403).

pub mod service;

use serde_json::Value;

use crate::model::document::{Document, RESOURCE_TYPE};
use crate::policy::engine::Resource;

/// The document as the policy engine sees it: its attributes, with
/// `classification` from the field (a client cannot override it through
/// `attributes`).
pub fn as_resource(document: &Document) -> Resource {
    let mut attributes = document.attributes.clone();
    attributes.insert(
        "classification".to_owned(),
        Value::from(document.classification.as_str()),
    );
    Resource {
        kind: RESOURCE_TYPE.to_owned(),
        id: Some(document.id.to_string()),
        owner_id: Some(document.owner_id.to_string()),
        attributes,
    }
}
