//! A document: an owned record whose every access the policy engine decides.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::user::UserId;

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
