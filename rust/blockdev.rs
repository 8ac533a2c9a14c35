// SPDX-License-Identifier: GPL-2.0

//! Array I/O: a block device opened by path, held exclusively, with
//! synchronous reads, writes and flushes of kernel buffers.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr};

use crate::sys;

/// A block device opened for reading and writing, exclusively.
///
/// # Invariants
///
/// `file` is a block device file returned by `bdev_file_open_by_path` and not
/// yet released; `bdev` is its `file_bdev()`, valid as long as `file` is.
pub(crate) struct BlockDevice {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: the handle may be used and dropped from any thread; the block layer
// functions called through it do their own locking.
unsafe impl Send for BlockDevice {}
// SAFETY: every method takes `&self` and calls block layer functions that are
// safe to call concurrently.
unsafe impl Sync for BlockDevice {}

impl BlockDevice {
    /// Opens `path` for read and write, exclusively for `holder` (another
    /// exclusive opener, a mounted file system or an md member, gets
    /// `EBUSY`).
    pub(crate) fn open(path: &CStr, holder: *mut c_void) -> Result<Self> {
        // SAFETY: `path` is a valid NUL-terminated string; `holder` is only
        // compared by the block layer, never dereferenced.
        let file = from_err_ptr(unsafe { sys::swl_bdev_open(path.as_char_ptr(), holder) })?;
        let file = NonNull::new(file).ok_or(ENODEV)?;
        // SAFETY: `file` is a block device file just opened.
        let bdev = unsafe { bindings::file_bdev(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: `file` came from `bdev_file_open_by_path` and is
            // released exactly once, here.
            unsafe { bindings::bdev_fput(file.as_ptr()) };
            return Err(ENODEV);
        };
        // INVARIANT: `file` is open and `bdev` is its block device.
        Ok(Self { file, bdev })
    }

    /// The raw `block_device`, for the DAX lookup of [`crate::pmem`].
    pub(crate) fn as_raw(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// Size in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: `bdev` is valid by the type invariant.
        unsafe { sys::swl_bdev_nr_sectors(self.bdev.as_ptr()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `bdev` is valid by the type invariant.
        unsafe { sys::swl_bdev_logical_block_size(self.bdev.as_ptr()) }
    }

    fn rw(&self, sector: u64, buf: *mut u8, len: usize, op: u32, flags: u32) -> Result {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `bdev` is valid by the type invariant; the callers pass a
        // pointer to `len` bytes of a `KVec` (kmalloc memory) that they
        // borrow for the duration of the call, which waits for the I/O.
        let ret =
            unsafe { sys::swl_bdev_rw(self.bdev.as_ptr(), sector, buf.cast(), len, op, flags) };
        kernel::error::to_result(ret)
    }

    /// Reads `buf.len()` bytes at `sector` (a `KVec`: I/O needs kmalloc
    /// memory, never the stack).
    pub(crate) fn read(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        self.rw(sector, buf.as_mut_ptr(), buf.len(), sys::REQ_OP_READ, 0)
    }

    /// Writes `buf` at `sector`, with FUA if `fua`.
    pub(crate) fn write(&self, sector: u64, buf: &KVec<u8>, fua: bool) -> Result {
        let flags = if fua { sys::REQ_FUA } else { 0 };
        // The block layer only reads from the buffer of a write.
        self.rw(
            sector,
            buf.as_ptr().cast_mut(),
            buf.len(),
            sys::REQ_OP_WRITE,
            flags,
        )
    }

    /// Flushes the device's volatile write cache.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `bdev` is valid by the type invariant.
        kernel::error::to_result(unsafe { sys::swl_bdev_flush(self.bdev.as_ptr()) })
    }
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `file` is open; it is released once.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
