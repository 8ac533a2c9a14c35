// SPDX-License-Identifier: GPL-2.0

//! Raw C functions that `kernel::bindings` does not provide.
//!
//! This is the only place where swarmlog declares C symbols itself: kernel
//! exports (`crc32c`) and the shims of `rust/helpers.c`, which wrap static
//! inline functions and macros. Each is used only through the safe type in
//! the file its comment names.

use core::ffi::{c_int, c_long, c_uint, c_void};
use kernel::bindings::{bio, block_device, file, gendisk};
use kernel::ffi::c_char;

/// `struct dax_device`, opaque (not in the kernel crate's bindings).
#[repr(C)]
pub(crate) struct DaxDevice {
    _opaque: [u8; 0],
}

/// `struct swl_batch` of `rust/helpers.c`, opaque.
#[repr(C)]
pub(crate) struct Batch {
    _opaque: [u8; 0],
}

/// `REQ_OP_*` values of `include/linux/blk_types.h`.
pub(crate) const REQ_OP_READ: c_uint = kernel::bindings::req_op_REQ_OP_READ;
pub(crate) const REQ_OP_WRITE: c_uint = kernel::bindings::req_op_REQ_OP_WRITE;
pub(crate) const REQ_OP_FLUSH: c_uint = kernel::bindings::req_op_REQ_OP_FLUSH;
pub(crate) const REQ_OP_DISCARD: c_uint = kernel::bindings::req_op_REQ_OP_DISCARD;
pub(crate) const REQ_OP_WRITE_ZEROES: c_uint = kernel::bindings::req_op_REQ_OP_WRITE_ZEROES;
/// `CRC32C_OPTIMIZATION` of `crc32_optimizations()`: `crc32c()` is
/// architecture-optimised.
pub(crate) const CRC32C_OPTIMIZATION: u32 = 1 << 2;
/// `REQ_FUA` as a flag of `bi_opf`.
pub(crate) const REQ_FUA: c_uint = 1 << kernel::bindings::req_flag_bits___REQ_FUA;

// The kernel's binding types hold zero-sized opaque members; they are only
// passed by pointer here, never by value.
#[expect(improper_ctypes)]
extern "C" {
    /// `lib/crc/crc32-main.c`; wrapped by [`crate::checksum::crc32c`].
    pub(crate) fn crc32c(crc: u32, p: *const c_void, len: usize) -> u32;
    /// `lib/crc/crc32-main.c`: which CRC-32 functions are
    /// architecture-optimised on this CPU.
    pub(crate) fn crc32_optimizations() -> u32;

    // blockdev.rs
    pub(crate) fn swl_bdev_open(path: *const c_char, holder: *mut c_void) -> *mut file;
    pub(crate) fn swl_bdev_nr_sectors(bdev: *mut block_device) -> u64;
    pub(crate) fn swl_bdev_logical_block_size(bdev: *mut block_device) -> c_uint;
    pub(crate) fn swl_bdev_rw(
        bdev: *mut block_device,
        sector: u64,
        buf: *mut c_void,
        len: c_uint,
        op: c_uint,
        flags: c_uint,
    ) -> c_int;
    pub(crate) fn swl_bdev_flush(bdev: *mut block_device) -> c_int;
    pub(crate) fn swl_batch_new() -> *mut Batch;
    pub(crate) fn swl_batch_write_segs(
        b: *mut Batch,
        bdev: *mut block_device,
        sector: u64,
        segs: *const crate::blockdev::Segment,
        n: c_uint,
    ) -> c_int;
    pub(crate) fn swl_batch_wait(b: *mut Batch) -> c_int;
    pub(crate) fn swl_batch_free(b: *mut Batch);
    pub(crate) fn swl_read_then_queue(
        b: *mut Batch,
        bdev: *mut block_device,
        sector: u64,
        buf: *mut c_void,
        len: c_uint,
        wq: *mut kernel::bindings::workqueue_struct,
        work: *mut kernel::bindings::work_struct,
        status: *mut c_int,
    ) -> c_int;

    // pmem.rs
    pub(crate) fn swl_dax_get(
        bdev: *mut block_device,
        start_off: *mut u64,
        holder: *mut c_void,
    ) -> *mut DaxDevice;
    pub(crate) fn swl_dax_put(dax: *mut DaxDevice, holder: *mut c_void);
    pub(crate) fn swl_dax_map(
        dax: *mut DaxDevice,
        pgoff: u64,
        nr_pages: c_long,
        kaddr: *mut *mut c_void,
    ) -> c_long;
    pub(crate) fn swl_memcpy_flushcache(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn swl_pmem_wmb();

    // bio.rs
    pub(crate) fn swl_bio_op(bio: *mut bio) -> c_uint;
    pub(crate) fn swl_bio_sector(bio: *mut bio) -> u64;
    pub(crate) fn swl_bio_size(bio: *mut bio) -> c_uint;
    pub(crate) fn swl_bio_endio(bio: *mut bio, err: c_int);
    pub(crate) fn swl_bio_for_each_chunk(
        bio: *mut bio,
        f: unsafe extern "C" fn(ctx: *mut c_void, addr: *mut c_void, len: c_uint) -> c_int,
        ctx: *mut c_void,
    ) -> c_int;
    pub(crate) fn swl_bio_private(bio: *mut bio) -> *mut c_void;

    // disk.rs
    pub(crate) fn swl_disk_alloc(
        name: *const c_char,
        capacity: u64,
        max_bytes: c_uint,
        private: *mut c_void,
    ) -> *mut gendisk;
    pub(crate) fn swl_disk_add(disk: *mut gendisk) -> c_int;

    // noio.rs
    pub(crate) fn swl_noio_save() -> c_uint;
    pub(crate) fn swl_noio_restore(flags: c_uint);
}
