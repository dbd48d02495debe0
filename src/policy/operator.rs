//! The condition operators. One list, shared by the engine, the validator, the API
//! documentation and the admin pages.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Exists,
    NotExists,
    IpInCidr,
    TimeBetween,
}

impl Operator {
    pub const ALL: [Operator; 16] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Gt,
        Operator::Gte,
        Operator::Lt,
        Operator::Lte,
        Operator::In,
        Operator::NotIn,
        Operator::Contains,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::Matches,
        Operator::Exists,
        Operator::NotExists,
        Operator::IpInCidr,
        Operator::TimeBetween,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Ne => "ne",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::Matches => "matches",
            Operator::Exists => "exists",
            Operator::NotExists => "not_exists",
            Operator::IpInCidr => "ip_in_cidr",
            Operator::TimeBetween => "time_between",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// What the value must be, in words (for the validator's messages and the pages).
    pub fn value_help(self) -> &'static str {
        match self {
            Operator::Eq | Operator::Ne => "a string, number or boolean, or an attribute",
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
                "a number, or an attribute"
            }
            Operator::In | Operator::NotIn => {
                "a list of strings, numbers or booleans, or an attribute"
            }
            Operator::Contains => "a string, number or boolean, or an attribute",
            Operator::StartsWith | Operator::EndsWith => "a string, or an attribute",
            Operator::Matches => "a regular expression (string)",
            Operator::Exists | Operator::NotExists => "no value",
            Operator::IpInCidr => "a CIDR such as 10.0.0.0/8, or a list of them",
            Operator::TimeBetween => "two UTC times [\"HH:MM\", \"HH:MM\"]",
        }
    }
}
