//! Attribute-based access control: the policy model, its validation, and the engine
//! that decides. One engine decides every access; it fails closed.

pub mod attributes;
pub mod engine;
pub mod model;
pub mod operator;
pub mod service;
pub mod validate;

#[cfg(test)]
mod tests;
