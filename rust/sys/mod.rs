// SPDX-License-Identifier: GPL-2.0

//! The kernel layer: the raw C functions swarmlog needs and the small safe
//! types that confine them. Nothing here knows about volumes, logs or
//! replay; every `unsafe` block of swarmlog that talks to C is in this
//! folder (besides `format/checksum.rs`'s CRC-32C call).
//!
//! - [`ffi`]: the `extern "C"` declarations (kernel exports and the shims
//!   of `helpers.c`, which wrap static inline functions and macros);
//! - [`bio`]: a bio submitted to a swarmlog disk, completed exactly once;
//! - [`blockdev`]: an opened block device, synchronous and batched I/O,
//!   reads whose end queues a work item;
//! - [`blocklog`]: the log on a block device without DAX, and the
//!   [`blocklog::LogDevice`] a volume's log is on (pmem or block);
//! - [`disk`]: the exposed gendisk, generic over the [`disk::Handler`] it
//!   hands bios to;
//! - [`dax`]: DAX access to pmem, and the [`dax::Media`] trait the log is
//!   written against (with an in-memory media for tests);
//! - [`wq`]: an owned workqueue; [`noio`]: a no-I/O allocation scope;
//!   [`bytes`]: fallible byte-vector helpers.

pub(crate) mod bio;
pub(crate) mod blockdev;
pub(crate) mod blocklog;
pub(crate) mod bytes;
pub(crate) mod dax;
pub(crate) mod disk;
pub(crate) mod ffi;
pub(crate) mod noio;
pub(crate) mod wq;
