//! Sizes of the release binaries: x86_64 as cargo builds them here, arm64 as
//! cargo lambda builds them for Lambda.

use std::path::Path;

use proof::{lambda_binary, release_binary};

/// One function's binary, bytes; `None` where it was not built.
pub struct Binary {
    pub x86_64: Option<u64>,
    pub arm64: Option<u64>,
}

pub struct Sizes {
    pub webhook: Binary,
    pub worker: Binary,
}

pub fn size_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn binary(name: &str) -> Binary {
    Binary {
        x86_64: size_of(&release_binary(name)),
        arm64: size_of(&lambda_binary(name)),
    }
}

/// The binaries in the target folder now.
pub fn measure() -> Sizes {
    Sizes {
        webhook: binary("webhook"),
        worker: binary("worker"),
    }
}
