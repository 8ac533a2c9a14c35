// SPDX-License-Identifier: GPL-2.0

//! swarmlog's on-media format code, built for userspace.
//!
//! This crate is the module's own format code, `rust/format/` (the log
//! header, CP markers, log records and the scan; the array superblock and
//! table blocks; CRC-32C), compiled unchanged through `#[path]`: there is no
//! second copy, so a userspace tool built on this crate cannot disagree with
//! the module about the format. The only difference from the module's build
//! is that `CONFIG_RUST` is not set: the KUnit test modules and the kernel's
//! architecture-optimised CRC-32C are left out, and every checksum goes
//! through the format code's portable slicing-by-8.
//!
//! The format's items are `pub(crate)` (they are the module's), so they
//! cannot be re-exported; the `pub` items below are thin wrappers for what
//! a tool is likely to need: `inspect` and `inspect_array` (what `enable`
//! would find on a log or an array, for `swarmctl inspect`), `image` (logs
//! and arrays crafted in memory for the tools' tests). The tests (`cargo test`, in `tests.rs`) port
//! the KUnit tests of `rust/format/` and scan crafted log images.

/// The module's format code: `rust/format/mod.rs` and, as it is a `mod.rs`
/// file, its submodules `log`, `array` and `checksum` beside it.
// Much of the format is used only by the module and the tests.
#[allow(dead_code)]
#[path = "../../../rust/format/mod.rs"]
pub(crate) mod format;

/// The checksum a table entry keeps for a data block: CRC-32C from the
/// conventional seed (`!0`), without final inversion. The same CRC-32C
/// checks every log header, CP marker, record, superblock and table block.
#[must_use]
pub fn checksum(data: &[u8]) -> u32 {
    format::checksum::crc32c(format::checksum::SEED, data)
}

/// Block size of the volume, of the array's table and of the cache, in
/// bytes.
pub const BLOCK_SIZE: usize = format::array::BLOCK_SIZE;

pub mod check;
pub mod craft;
pub mod image;
pub mod inspect;
pub mod inspect_array;
pub mod source;

pub use source::ReadAt;

#[cfg(test)]
mod block_tests;
#[cfg(test)]
mod slot_tests;
#[cfg(test)]
mod tests;
