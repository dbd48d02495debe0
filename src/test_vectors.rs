//! Where the external test vectors live: `PORTCULLIS_VECTORS_DIR` if set, else the
//! first `shared/vectors` beside the checkout or one of its parents (`../shared`
//! in the workspace layout), else `/work/shared/vectors`. Tests read the files
//! themselves, never copies, and fail when they are missing.

use std::path::{Path, PathBuf};

pub fn path(relative: &str) -> PathBuf {
    dir().join(relative)
}

fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_VECTORS_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/vectors"))
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| PathBuf::from("/work/shared/vectors"))
}
