//! Cryptographic helpers: random keys, password hashing and the secret box that
//! seals every stored secret.

pub mod keys;
pub mod password;
pub mod secret_box;
pub mod stored_secrets;
