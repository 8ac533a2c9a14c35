// SPDX-License-Identifier: GPL-2.0

//! Array I/O: a block device opened by path, held exclusively, with
//! synchronous reads, writes and flushes of kernel buffers, batches of
//! writes in flight together ([`IoBatch`]), and reads whose end queues a
//! work item ([`AsyncReads`]).

use core::cell::UnsafeCell;
use core::ffi::{c_uint, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use kernel::{
    bindings,
    error::from_err_ptr,
    prelude::*,
    str::CStr,
    sync::Arc,
    workqueue::{HasWork, RawWorkItem, WorkItem},
};

use super::ffi::{self, Segment};
use super::wq::OwnedQueue;

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

/// Where one read of [`AsyncReads::read`] lands: its buffer and its status.
/// A slot takes one read; its buffer is handed out once, after the read.
///
/// # Invariants
///
/// While `status` is [`ReadSlot::PENDING`] the device may write `buf` and
/// nothing else touches it; `buf` is reached from Rust only by `read` (before
/// the read starts, to pass its address) and by `take`, once, after the read
/// ended (`taken` set).
pub(crate) struct ReadSlot {
    buf: UnsafeCell<KVec<u8>>,
    /// `buf`'s length.
    len: u32,
    status: AtomicI32,
    taken: AtomicBool,
}

// SAFETY: `buf` is reached by one thread at a time (type invariant: the
// device while a read is in flight, then the one `take`); the rest is atomic.
unsafe impl Sync for ReadSlot {}

impl ReadSlot {
    /// No read started yet.
    const UNUSED: i32 = 1;
    /// The read is in flight.
    const PENDING: i32 = 2;

    /// A slot for a read of `len` bytes.
    pub(crate) fn new(len: usize) -> Result<Self> {
        Ok(Self {
            len: u32::try_from(len).map_err(|_| EINVAL)?,
            buf: UnsafeCell::new(super::bytes::zeroed(len, GFP_KERNEL)?),
            status: AtomicI32::new(Self::UNUSED),
            taken: AtomicBool::new(false),
        })
    }

    /// Once the read has ended: its data, or its error. `None` before, and
    /// after the first call.
    pub(crate) fn take(&self) -> Option<Result<KVec<u8>>> {
        let status = self.status.load(Ordering::Acquire);
        if status == Self::UNUSED
            || status == Self::PENDING
            || self.taken.swap(true, Ordering::AcqRel)
        {
            return None;
        }
        if status < 0 {
            return Some(Err(Error::from_errno(status)));
        }
        // SAFETY: the read has ended (the status is its result, stored with
        // release after the data), and `taken` makes this the one access
        // (type invariant).
        Some(Ok(core::mem::take(unsafe { &mut *self.buf.get() })))
    }
}

/// A work item that reads with [`AsyncReads::read`].
pub(crate) trait ReadItem:
    WorkItem<Pointer = Arc<Self>> + HasWork<Self> + Send + Sync + Sized
{
    /// The slot its read lands in.
    fn slot(&self) -> &ReadSlot;
}

/// Reads from one device that end by queueing a work item on one queue: a
/// work item waits for its read without holding a worker. Dropping it
/// waits until every read started has ended and queued its item.
///
/// # Invariants
///
/// `batch` came from `swl_batch_new`, is freed only by `drop`, and counts
/// the reads in flight; `drop` waits for them, so none ends (and queues its
/// item) after `dev` or `queue`, which outlive `self`, could be gone.
pub(crate) struct AsyncReads<'a> {
    dev: &'a BlockDevice,
    queue: &'a OwnedQueue,
    batch: NonNull<ffi::Batch>,
}

// SAFETY: starting reads and waiting for them is safe from any thread; the
// batch's counter is atomic.
unsafe impl Sync for AsyncReads<'_> {}

impl<'a> AsyncReads<'a> {
    /// Reads from `dev` whose items are queued on `queue`.
    pub(crate) fn new(dev: &'a BlockDevice, queue: &'a OwnedQueue) -> Result<Self> {
        // SAFETY: no precondition; the result is checked for NULL.
        let batch = NonNull::new(unsafe { ffi::swl_batch_new() }).ok_or(ENOMEM)?;
        // INVARIANT: `batch` is new, no read is in flight.
        Ok(Self { dev, queue, batch })
    }

    /// Reads `item`'s slot's length in bytes at `sector` into its slot,
    /// without waiting; once the read has ended (or failed to start), the
    /// slot holds the result and `item` is queued. `EBUSY` (and nothing
    /// queued) if the slot was used already.
    pub(crate) fn read<T: ReadItem>(&self, sector: u64, item: Arc<T>) -> Result {
        let slot = item.slot();
        slot.status
            .compare_exchange(
                ReadSlot::UNUSED,
                ReadSlot::PENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_err(|_| EBUSY)?;
        // SAFETY: the status is PENDING now, set here once: only the device
        // touches the buffer from now until the read ends, and its address
        // and length do not change (type invariant of `ReadSlot`).
        let buf = unsafe { (*slot.buf.get()).as_mut_ptr() };
        let len = slot.len;
        let status = slot.status.as_ptr();
        let wq = self.queue.as_raw();
        let (batch, bdev) = (self.batch.as_ptr(), self.dev.as_raw());
        // SAFETY: the closure always queues the item (`swl_read_then_queue`
        // queues it when the read ends, or at once if it cannot start), so
        // returning true is right; `work` stays valid until the item runs
        // (the guarantee of `__enqueue`), and so do `buf` and `status`,
        // which the item holds. The batch, the device and the queue outlive
        // the read (type invariant: `drop` waits for it).
        let queued = unsafe {
            item.__enqueue(|work| {
                ffi::swl_read_then_queue(batch, bdev, sector, buf.cast(), len, wq, work, status);
                true
            })
        };
        queued.map_err(|_| EBUSY)
    }
}

impl Drop for AsyncReads<'_> {
    fn drop(&mut self) {
        // SAFETY: `batch` is live (type invariant); this waits until every
        // read started has ended and queued its item, then frees the batch,
        // once.
        unsafe {
            ffi::swl_batch_wait(self.batch.as_ptr());
            ffi::swl_batch_free(self.batch.as_ptr());
        }
    }
}

#[kernel::prelude::kunit_tests(swarmlog_blockdev)]
mod tests {
    use super::*;

    #[test]
    fn read_slot_hands_out_its_result_once() -> Result {
        let s = ReadSlot::new(8)?;
        // Unused, then in flight: nothing to take.
        assert!(s.take().is_none());
        s.status.store(ReadSlot::PENDING, Ordering::Release);
        assert!(s.take().is_none());
        // Ended: the data, once.
        s.status.store(0, Ordering::Release);
        assert_eq!(s.take().map(|r| r.map(|b| b.len())), Some(Ok(8)));
        assert!(s.take().is_none());
        // Failed: the error.
        let f = ReadSlot::new(8)?;
        f.status.store(EIO.to_errno(), Ordering::Release);
        assert_eq!(f.take().map(|r| r.map(|b| b.len())), Some(Err(EIO)));
        Ok(())
    }
}
