// SPDX-License-Identifier: GPL-2.0

//! Raw C functions that `kernel::bindings` does not provide.
//!
//! This is the only place where swarmlog declares C symbols itself. Every
//! function here is exported by the kernel (`EXPORT_SYMBOL*`) and is used only
//! through a safe wrapper in the file named next to it.

use core::ffi::c_void;

extern "C" {
    /// `lib/crc/crc32-main.c`; wrapped by [`crate::checksum::crc32c`].
    pub(crate) fn crc32c(crc: u32, p: *const c_void, len: usize) -> u32;
}
