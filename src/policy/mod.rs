//! Attribute-based access control: the attribute and operator lists, validation, the
//! engine that decides, the policy service (stored, versioned, audited policies),
//! the simulator and the overlap analysis (the existing policies a new one is
//! shadowed by or overlaps), and policies as code (the policy file, the plan of
//! its import, and the assertion cases run against it). One engine decides every
//! access; it fails closed. The stored policy itself is `crate::model::policy`.

pub mod admin_guard;
pub mod as_code;
pub mod attributes;
pub mod cases;
pub mod engine;
pub mod operator;
pub mod overlap;
pub mod plan;
pub mod service;
pub mod simulation;
pub mod validate;

#[cfg(test)]
mod tests;
