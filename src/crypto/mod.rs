//! Cryptographic helpers: key generation now; the secret box and password hashing
//! join here.

pub mod keys;
