// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the integration tests: scratch directories and file
//! contents.

// Each test crate uses its own part of these.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// A fresh, empty directory for test `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swarmctl-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// The contents of `p`, which the test made.
pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}
