// SPDX-License-Identifier: GPL-2.0

//! Raw C functions that `kernel::bindings` does not provide.
//!
//! Besides the two CRC-32C exports that the shared format code declares
//! itself (`format/checksum.rs`), this is the only place where swarmlog
//! declares C symbols: the shims of `helpers.c` beside it, which wrap
//! static inline functions and macros. Each is used only through the safe
//! type in the file its comment names.

use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::bindings::{bio, block_device, file, gendisk};
use kernel::ffi::c_char;
use kernel::prelude::*;

/// `struct dax_device`, opaque (not in the kernel crate's bindings).
#[repr(C)]
pub(crate) struct DaxDevice {
    _opaque: [u8; 0],
}

/// `struct swl_batch` of `rust/sys/helpers.c`, opaque.
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
/// `REQ_FUA` as a flag of `bi_opf`.
pub(crate) const REQ_FUA: c_uint = 1 << kernel::bindings::req_flag_bits___REQ_FUA;

/// One piece of kernel memory (kmalloc or vmalloc) that [`super::blockdev::IoBatch::write`]
/// writes from, in place: `struct swl_seg` of `rust/sys/helpers.c`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Segment {
    buf: *const c_void,
    len: c_uint,
}

impl Segment {
    /// The memory of `data`; `EINVAL` past 4 GiB. Making one is safe: only
    /// writing from it ([`super::blockdev::IoBatch::write`]) has a precondition.
    pub(crate) fn of(data: &[u8]) -> Result<Self> {
        Ok(Self {
            buf: data.as_ptr().cast(),
            len: c_uint::try_from(data.len()).map_err(|_| EINVAL)?,
        })
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The memory it names.
    ///
    /// # Safety
    ///
    /// That memory must still be allocated and not written to while the
    /// slice lives.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `buf` and `len` came from a slice (`Self::of`), whose
        // memory the caller guarantees is still allocated and unchanged.
        unsafe { core::slice::from_raw_parts(self.buf.cast::<u8>(), self.len as usize) }
    }
}

// The kernel's binding types hold zero-sized opaque members; they are only
// passed by pointer here, never by value.
#[expect(improper_ctypes)]
extern "C" {
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
        segs: *const Segment,
        n: c_uint,
    ) -> c_int;
    pub(crate) fn swl_batch_read(
        b: *mut Batch,
        bdev: *mut block_device,
        sector: u64,
        buf: *mut c_void,
        len: c_uint,
    ) -> c_int;
    pub(crate) fn swl_batch_wait(b: *mut Batch) -> c_int;
    pub(crate) fn swl_batch_free(b: *mut Batch);

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
    pub(crate) fn swl_bdev_bad(bdev: *mut block_device, sector: u64, nr: u64) -> bool;
    pub(crate) fn swl_memcpy_flushcache(dst: *mut c_void, src: *const c_void, len: usize);
    pub(crate) fn swl_copy_mc(dst: *mut c_void, src: *const c_void, len: usize) -> c_ulong;
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
