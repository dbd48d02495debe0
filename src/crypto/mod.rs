//! Cryptographic helpers: random keys and password hashing.

pub mod keys;
pub mod password;
