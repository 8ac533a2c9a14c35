// SPDX-License-Identifier: GPL-2.0

//! CRC-32C, the checksum of every log record, log header and metadata block.
//!
//! The kernel's `crc32c()` (architecture-optimised with
//! `CONFIG_CRC_OPTIMIZATIONS`) does the work; this file only gives it a safe,
//! slice-based face so the format code stays free of `unsafe`.

use crate::sys;

/// Seed of every swarmlog checksum (the conventional CRC-32C start value).
pub(crate) const SEED: u32 = !0;

/// Continues a CRC-32C over `data`, starting from `crc`.
#[inline]
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid, initialised slice for its whole length, and
    // `crc32c` only reads `len` bytes from `p`.
    unsafe { sys::crc32c(crc, data.as_ptr().cast(), data.len()) }
}
