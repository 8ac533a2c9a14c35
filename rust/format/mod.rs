// SPDX-License-Identifier: GPL-2.0

//! The on-media format of swarmlog: the log (`log`: header, CP markers,
//! records and the scan that finds the log's valid end), the array's
//! metadata (`array`: superblock and the table of per-block checksums) and
//! the checksum they share (`checksum`).
//!
//! This tree is plain data and arithmetic over byte slices: `core` only, no
//! `kernel::` crate, no allocation, no I/O. The module builds it, and so
//! does the userspace crate `tools/swarmlog-format` (`#[path]` to these very
//! files), whose `cargo test` runs over the same code; the tools can
//! therefore never disagree with the module about the format (as xfsprogs'
//! libxfs does for XFS). The KUnit tests of each file are built only in the
//! kernel (`CONFIG_RUST`); the only other difference is the kernel's
//! architecture-optimised CRC-32C (see `checksum`).
//!
//! The layout is documented in `Documentation/swarmlog/format.rst`; keep
//! the two in step.

pub(crate) mod array;
pub(crate) mod checksum;
pub(crate) mod log;

/// Why a piece of the log does not validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// The magic number is wrong: never written, or overwritten.
    Magic,
    /// Unknown format version.
    Version,
    /// The record belongs to another log (an earlier format of this device).
    LogId,
    /// The sequence number is not the expected one: an older lap of the log.
    Sequence,
    /// Fields that contradict each other or the geometry.
    Field,
    /// The checksum does not match: torn or corrupt.
    Checksum,
    /// The bytes could not be read (out of range).
    Range,
    /// The media reports the line bad (poison, a `badblocks` entry): the
    /// bytes cannot be read. Unlike [`Invalid::Range`], the log goes on
    /// past it: a valid record after it means it was complete once.
    Unreadable,
    /// A record whose header is valid but whose data lies on a line the
    /// media reports bad: it was complete once, its data is lost.
    DataUnreadable,
    /// A log of the other medium: a pmem log on a block device without
    /// DAX, or a block log on pmem ([`log::Medium`]).
    Medium,
}

/// Little-endian field access with offsets checked, never panicking.
pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}
