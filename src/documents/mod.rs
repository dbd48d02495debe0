//! Owned documents: the first resource every access to which goes through the
//! policy engine. A document the caller may not read does not exist for them (404,
//! never 403).

pub mod service;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::UserId;
use crate::policy::engine::Resource;

pub const RESOURCE_TYPE: &str = "document";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Classification::Public),
            "internal" => Some(Classification::Internal),
            "confidential" => Some(Classification::Confidential),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Document {
    pub id: Uuid,
    pub owner_id: UserId,
    pub title: String,
    pub body: String,
    pub classification: Classification,
    pub attributes: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Document {
    /// The document as the policy engine sees it: its attributes, with
    /// `classification` from the field (a client cannot override it through
    /// `attributes`).
    pub fn as_resource(&self) -> Resource {
        let mut attributes = self.attributes.clone();
        attributes.insert(
            "classification".to_owned(),
            Value::from(self.classification.as_str()),
        );
        Resource {
            kind: RESOURCE_TYPE.to_owned(),
            id: Some(self.id.to_string()),
            owner_id: Some(self.owner_id.to_string()),
            attributes,
        }
    }
}
