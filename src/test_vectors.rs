//! Where the external test vectors live: `../shared/vectors` beside the checkout,
//! or `PORTCULLIS_VECTORS_DIR`. Tests read the files themselves, never copies.

use std::path::PathBuf;

pub fn path(relative: &str) -> PathBuf {
    std::env::var_os("PORTCULLIS_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"))
        .join(relative)
}
