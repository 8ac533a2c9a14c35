// SPDX-License-Identifier: GPL-2.0

//! Array I/O: a block device opened by path, held exclusively, with
//! synchronous reads, writes and flushes of kernel buffers, and batches of
//! reads or writes in flight together ([`IoBatch`]).

use core::ffi::{c_uint, c_void};
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr};

use super::ffi::{self, Segment};

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
        let file = from_err_ptr(unsafe { ffi::swl_bdev_open(path.as_char_ptr(), holder) })?;
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

    /// The raw `block_device`, for the DAX lookup of [`crate::sys::dax`].
    pub(crate) fn as_raw(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// Size in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: `bdev` is valid by the type invariant.
        unsafe { ffi::swl_bdev_nr_sectors(self.bdev.as_ptr()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `bdev` is valid by the type invariant.
        unsafe { ffi::swl_bdev_logical_block_size(self.bdev.as_ptr()) }
    }

    fn rw(&self, sector: u64, buf: *mut u8, len: usize, op: u32, flags: u32) -> Result {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `bdev` is valid by the type invariant; the callers pass a
        // pointer to `len` bytes of a `KVec` or `KVVec` (kmalloc or vmalloc
        // memory, which the helper maps page by page) that they
        // borrow for the duration of the call, which waits for the I/O.
        let ret =
            unsafe { ffi::swl_bdev_rw(self.bdev.as_ptr(), sector, buf.cast(), len, op, flags) };
        kernel::error::to_result(ret)
    }

    /// Reads `buf.len()` bytes at `sector` (a `KVec`: I/O needs kmalloc
    /// memory, never the stack).
    pub(crate) fn read(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        self.rw(sector, buf.as_mut_ptr(), buf.len(), ffi::REQ_OP_READ, 0)
    }

    /// Writes `buf` at `sector`, with FUA if `fua`.
    pub(crate) fn write(&self, sector: u64, buf: &KVec<u8>, fua: bool) -> Result {
        self.write_raw(sector, buf, fua)
    }

    /// Writes `buf`, kmalloc or vmalloc memory (the callers' promise), at
    /// `sector`, with FUA if `fua`.
    fn write_raw(&self, sector: u64, buf: &[u8], fua: bool) -> Result {
        let flags = if fua { ffi::REQ_FUA } else { 0 };
        // The block layer only reads from the buffer of a write.
        self.rw(
            sector,
            buf.as_ptr().cast_mut(),
            buf.len(),
            ffi::REQ_OP_WRITE,
            flags,
        )
    }

    /// Reads `buf.len()` bytes at `sector` into kmalloc or vmalloc memory
    /// (a buffer larger than one bio goes as a chain of them).
    pub(crate) fn read_kv(&self, sector: u64, buf: &mut KVVec<u8>) -> Result {
        self.rw(sector, buf.as_mut_ptr(), buf.len(), ffi::REQ_OP_READ, 0)
    }

    /// Writes `buf` (kmalloc or vmalloc memory) at `sector`, with FUA if
    /// `fua`.
    pub(crate) fn write_kv(&self, sector: u64, buf: &KVVec<u8>, fua: bool) -> Result {
        self.write_raw(sector, buf, fua)
    }

    /// Flushes the device's volatile write cache.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `bdev` is valid by the type invariant.
        kernel::error::to_result(unsafe { ffi::swl_bdev_flush(self.bdev.as_ptr()) })
    }
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `file` is open; it is released once.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}

/// Writes to one device in flight together, each from its caller's memory
/// in place, until [`IoBatch::wait`] has seen every write end. A CP writes
/// the committing blocks so, straight from the cache, instead of copying
/// them into a buffer of each run and writing one run at a time. A batch
/// also carries reads ([`IoBatch::read`]: a block log's read-ahead).
///
/// # Invariants
///
/// `batch` came from `swl_batch_new` and is freed only by `drop`, which
/// first waits for every write in flight on it.
pub(crate) struct IoBatch<'a> {
    dev: &'a BlockDevice,
    batch: NonNull<ffi::Batch>,
    bytes: usize,
}

impl<'a> IoBatch<'a> {
    /// An empty batch of writes to `dev`.
    pub(crate) fn new(dev: &'a BlockDevice) -> Result<Self> {
        // SAFETY: no precondition; the result is checked for NULL.
        let batch = NonNull::new(unsafe { ffi::swl_batch_new() }).ok_or(ENOMEM)?;
        // INVARIANT: `batch` is new, nothing is in flight.
        Ok(Self {
            dev,
            batch,
            bytes: 0,
        })
    }

    /// Starts writing `segs`, one after the other, at `sector`: as few bios
    /// as hold them (256 pages each). `EINVAL` (nothing written) unless
    /// every segment's address and length are multiples of 512.
    ///
    /// # Safety
    ///
    /// The memory of every segment must stay allocated and unchanged until
    /// [`Self::wait`] returned or the batch is dropped.
    pub(crate) unsafe fn write(&mut self, sector: u64, segs: &[Segment]) -> Result {
        let n = c_uint::try_from(segs.len()).map_err(|_| EINVAL)?;
        // SAFETY: `batch` is live by the type invariant, `bdev` is valid as
        // long as `self.dev`; `segs` is `n` valid `struct swl_seg`, read
        // before the call returns; the memory they point to outlives the
        // writes unchanged by the caller's contract.
        let ret = unsafe {
            ffi::swl_batch_write_segs(
                self.batch.as_ptr(),
                self.dev.as_raw(),
                sector,
                segs.as_ptr(),
                n,
            )
        };
        kernel::error::to_result(ret)?;
        self.bytes += segs.iter().map(|s| s.len()).sum::<usize>();
        Ok(())
    }

    /// Starts reading `len` bytes at `sector` into the kmalloc or vmalloc
    /// memory at `buf`; [`Self::wait`] waits for it. `EINVAL` (nothing
    /// read) unless `len` is a multiple of 512.
    ///
    /// # Safety
    ///
    /// `buf` must point to `len` bytes of kmalloc or vmalloc memory that
    /// stay allocated, and that nothing else reads or writes, until
    /// [`Self::wait`] returned or the batch is dropped.
    pub(crate) unsafe fn read(&mut self, sector: u64, buf: *mut u8, len: usize) -> Result {
        let n = c_uint::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `batch` is live by the type invariant, `bdev` is valid as
        // long as `self.dev`; `buf` is `len` bytes of kernel memory that only
        // the device touches until the read ends (the caller's contract).
        let ret = unsafe {
            ffi::swl_batch_read(
                self.batch.as_ptr(),
                self.dev.as_raw(),
                sector,
                buf.cast(),
                n,
            )
        };
        kernel::error::to_result(ret)
    }

    /// Bytes written since the last [`Self::wait`].
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Waits for every write started so far and returns the first error
    /// any of them had; their memory is no longer used.
    pub(crate) fn wait(&mut self) -> Result {
        // SAFETY: `batch` is live by the type invariant.
        let ret = unsafe { ffi::swl_batch_wait(self.batch.as_ptr()) };
        self.bytes = 0;
        kernel::error::to_result(ret)
    }
}

impl Drop for IoBatch<'_> {
    fn drop(&mut self) {
        // A batch dropped early (an error on the way) still waits for its
        // writes, before their memory may go.
        let _ = self.wait();
        // SAFETY: `batch` came from `swl_batch_new`, nothing is in flight
        // after `wait`, and it is freed once, here.
        unsafe { ffi::swl_batch_free(self.batch.as_ptr()) };
    }
}
