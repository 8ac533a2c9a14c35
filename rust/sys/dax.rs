// SPDX-License-Identifier: GPL-2.0

//! pmem access: the one small interface through which every byte of the log
//! is stored, made durable and read back, and its DAX implementation.
//!
//! The log code (`device/log.rs`) is written against [`Media`], so tests can
//! run it on memory; the module runs it on [`DaxMapping`], which maps the
//! pmem device with `dax_direct_access()` (in as many pieces as the driver
//! returns) and stores with `memcpy_flushcache()` plus `pmem_wmb()`, as
//! dm-writecache's pmem mode does.

use core::ffi::c_void;
use kernel::{prelude::*, sync::Arc};

use super::bio::Chunk;
use super::blockdev::BlockDevice;
use super::blocklog::Prefetch;
use super::ffi;
use crate::format::log::Medium;

/// Byte-addressable persistent memory.
///
/// A [`Media::write`] is not durable until a later [`Media::drain`] has
/// returned; writes to different cache lines may become durable in any order
/// before that.
pub(crate) trait Media: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Copies the bytes at `off` into `buf`.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result;
    /// Stores `data` at `off`, flushing it from the CPU caches on its way.
    fn write(&self, off: u64, data: &[u8]) -> Result;
    /// Stores a request's chunk at `off`, as [`Media::write`] does, never
    /// making a reference to its bytes (their owner may change them). This
    /// default copies it to a buffer first; the pmem copies it straight.
    fn write_from(&self, off: u64, src: &Chunk<'_>) -> Result {
        let mut tmp = super::bytes::zeroed(src.len(), GFP_KERNEL)?;
        src.copy_to(0, &mut tmp)?;
        self.write(off, &tmp)
    }
    /// Waits until every earlier write is persistent (a store fence).
    fn drain(&self);
    /// Whether the device reports a bad line (poison, a `badblocks`
    /// entry) among the `len` bytes at `off`; [`Media::read`] of them fails
    /// with `EIO`. Memory has none.
    fn bad(&self, _off: u64, _len: u64) -> bool {
        false
    }
    /// What the media is ([`Medium::Pmem`] unless it says otherwise); the
    /// log's layout follows it.
    fn medium(&self) -> Medium {
        Medium::Pmem
    }
    /// Stores a whole record built in `buf` at `off` (a block log's: one
    /// write); as [`Media::write`].
    fn write_buf(&self, off: u64, buf: &KVVec<u8>) -> Result {
        self.write(off, buf)
    }
    /// Test fault: write without FUA from now on (`on`) or not; only a
    /// block log has FUA to leave out.
    fn set_no_fua(&self, _on: bool) {}
    /// As [`Media::read`], into a buffer of kmalloc or vmalloc memory: a
    /// block log reads whole units straight into it, with no buffer of its
    /// own and no copy (the scan's read-ahead).
    fn read_buf(&self, off: u64, buf: &mut KVVec<u8>) -> Result {
        self.read(off, buf)
    }
    /// A reader that reads ahead in the background, for a scan that reads
    /// the media in order: a block log's ([`Prefetch`]); none elsewhere.
    fn prefetch(&self) -> Option<Prefetch<'_>> {
        None
    }
    /// Reads the `piece` bytes at each of `ats` into `buf`, one after
    /// another from `from` on (piece `i` at `from + i * piece`, which `buf`
    /// must hold already; `EINVAL` if not). A block log sends them all as
    /// one batch of bios, adjacent pieces merged, and waits once (a CP's
    /// logged blocks); this default reads them one by one.
    fn read_pieces(&self, ats: &[u64], piece: usize, buf: &mut KVVec<u8>, from: usize) -> Result {
        read_each(self, ats, piece, pieces_of(ats, piece, buf, from)?)
    }
}

/// [`Media::read_pieces`] one [`Media::read`] a piece, into `dst` (exactly
/// the pieces' bytes, from [`pieces_of`]).
pub(crate) fn read_each<M: Media + ?Sized>(
    media: &M,
    ats: &[u64],
    piece: usize,
    dst: &mut [u8],
) -> Result {
    for (k, &at) in ats.iter().enumerate() {
        media.read(at, nth_piece(dst, k, piece)?)?;
    }
    Ok(())
}

/// Piece `k` of `piece` bytes of `buf`. (Not `chunks_exact`, whose length
/// divides by a size the compiler cannot prove nonzero.)
fn nth_piece(buf: &mut [u8], k: usize, piece: usize) -> Result<&mut [u8]> {
    let start = k.checked_mul(piece).ok_or(EINVAL)?;
    let end = start.checked_add(piece).ok_or(EINVAL)?;
    buf.get_mut(start..end).ok_or(EINVAL)
}

/// The part of `buf` that [`Media::read_pieces`] fills: `ats.len()` pieces
/// of `piece` bytes from `from` on; `EINVAL` if `piece` is 0 or `buf` is too
/// short.
pub(crate) fn pieces_of<'b>(
    ats: &[u64],
    piece: usize,
    buf: &'b mut [u8],
    from: usize,
) -> Result<&'b mut [u8]> {
    if piece == 0 {
        return Err(EINVAL);
    }
    let len = ats.len().checked_mul(piece).ok_or(EINVAL)?;
    let end = from.checked_add(len).ok_or(EINVAL)?;
    buf.get_mut(from..end).ok_or(EINVAL)
}

const PAGE_SIZE: u64 = kernel::page::PAGE_SIZE as u64;

/// One piece of the mapping: `len` bytes at kernel address `addr`.
struct Piece {
    addr: *mut u8,
    len: u64,
}

/// A pmem block device mapped through DAX.
///
/// # Invariants
///
/// `dax` was returned by `fs_dax_get_by_bdev()` for `bdev`'s device with
/// holder `holder` and is put back in `drop`; every piece is a kernel
/// mapping of the device returned by `dax_direct_access()`, valid while
/// `dax` is held, and together they cover `[0, size)` in order.
pub(crate) struct DaxMapping {
    /// Keeps the pmem device open (and claimed) while it is mapped; its
    /// disk's bad blocks are consulted on every read.
    bdev: BlockDevice,
    /// Byte offset of the mapping on the disk (a partition's start).
    start: u64,
    dax: *mut ffi::DaxDevice,
    holder: *mut c_void,
    pieces: KVec<Piece>,
    size: u64,
}

// SAFETY: the mapping is plain memory; concurrent users write disjoint ranges
// (the log hands out each range once) and the DAX handle is only used in
// `drop`.
unsafe impl Send for DaxMapping {}
// SAFETY: as for `Send`: `&self` methods only copy to and from the mapping.
unsafe impl Sync for DaxMapping {}

impl DaxMapping {
    /// Maps all of `bdev` if it is DAX-capable: `Err(bdev)` back if it is
    /// not (or another holder has its DAX device), else the mapping or why
    /// it failed.
    pub(crate) fn try_new(
        bdev: BlockDevice,
        holder: *mut c_void,
    ) -> Result<Result<Self>, BlockDevice> {
        let mut start: u64 = 0;
        // SAFETY: `bdev.as_raw()` is a valid open block device; `start` is a
        // valid place for the start offset.
        let dax = unsafe { ffi::swl_dax_get(bdev.as_raw(), &mut start, holder) };
        if dax.is_null() {
            return Err(bdev);
        }
        Ok(Self::map(bdev, holder, dax, start))
    }

    /// Whether `bdev` is DAX-capable pmem (whose DAX device no other
    /// holder has); nothing is kept.
    pub(crate) fn is_pmem(bdev: &BlockDevice, holder: *mut c_void) -> bool {
        let mut start: u64 = 0;
        // SAFETY: `bdev.as_raw()` is a valid open block device; `start` is a
        // valid place for the start offset.
        let dax = unsafe { ffi::swl_dax_get(bdev.as_raw(), &mut start, holder) };
        if dax.is_null() {
            return false;
        }
        // SAFETY: `dax` was just got for `holder`, and is put back once.
        unsafe { ffi::swl_dax_put(dax, holder) };
        true
    }

    /// Maps all of `bdev`, whose DAX device `dax` (starting at byte
    /// `start` of it) `holder` holds; puts `dax` back on failure.
    fn map(
        bdev: BlockDevice,
        holder: *mut c_void,
        dax: *mut ffi::DaxDevice,
        start: u64,
    ) -> Result<Self> {
        let size = (bdev.nr_sectors() << 9) & !(PAGE_SIZE - 1);
        // From here on `this` owns `dax`: its `drop` puts it back.
        let mut this = Self {
            bdev,
            start,
            dax,
            holder,
            pieces: KVec::new(),
            size,
        };
        let first = start / PAGE_SIZE;
        let total = size / PAGE_SIZE;
        let mut done = 0u64;
        while done < total {
            let mut addr: *mut c_void = core::ptr::null_mut();
            let want = i64::try_from(total - done).map_err(|_| EINVAL)?;
            // SAFETY: `dax` is held; `addr` is a valid place for the result.
            let got = unsafe { ffi::swl_dax_map(dax, first + done, want, &mut addr) };
            if got <= 0 || addr.is_null() {
                return Err(if got < 0 {
                    Error::from_errno(got as i32)
                } else {
                    EIO
                });
            }
            let got = (got as u64).min(total - done);
            this.pieces.push(
                Piece {
                    addr: addr.cast(),
                    len: got * PAGE_SIZE,
                },
                GFP_KERNEL,
            )?;
            done += got;
        }
        Ok(this)
    }

    /// The pieces that hold `[off, off + len)`, as `(address, length)` runs
    /// in order; `ERANGE` if the range is not inside the mapping.
    fn for_each_run(&self, off: u64, len: usize, mut f: impl FnMut(*mut u8, usize)) -> Result {
        let end = off.checked_add(len as u64).ok_or(ERANGE)?;
        if end > self.size {
            return Err(ERANGE);
        }
        let mut base = 0u64;
        let mut pos = off;
        for p in self.pieces.iter() {
            if pos >= end {
                break;
            }
            if pos < base + p.len {
                let n = (base + p.len).min(end) - pos;
                // SAFETY: `pos - base < p.len`, so the address is inside the
                // piece, and `n` bytes from it stay inside it.
                let addr = unsafe { p.addr.add((pos - base) as usize) };
                f(addr, n as usize);
                pos += n;
            }
            base += p.len;
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to the pmem at `off` with
    /// `memcpy_flushcache()`.
    ///
    /// # Safety
    ///
    /// `src` must point to `len` readable bytes for the call.
    unsafe fn store(&self, off: u64, src: *const u8, len: usize) -> Result {
        let mut done = 0usize;
        self.for_each_run(off, len, |addr, n| {
            // SAFETY: `addr` has `n` mapped bytes, `src + done` has `n`
            // readable bytes (the caller's promise; `done + n <= len`); the
            // log never hands the same range to two writers at once.
            unsafe { ffi::swl_memcpy_flushcache(addr.cast(), src.add(done).cast(), n) };
            done += n;
        })
    }
}

impl Media for DaxMapping {
    fn size(&self) -> u64 {
        self.size
    }

    /// Reads with `copy_mc_to_kernel()`: a poisoned line of the pmem is
    /// `EIO` for this read, never a machine check that brings the kernel
    /// down; so is a line the disk's bad blocks list (the platform's known
    /// poison, or an entry written to `/sys/block/DISK/badblocks`), which
    /// is not read at all.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        if self.bad(off, buf.len() as u64) {
            return Err(EIO);
        }
        let mut done = 0usize;
        let mut poisoned = false;
        let dst = buf.as_mut_ptr();
        let len = buf.len();
        self.for_each_run(off, len, |addr, n| {
            if poisoned {
                return;
            }
            // SAFETY: `addr` has `n` mapped bytes (`for_each_run`), and
            // `done + n <= len` bytes of `buf` are written in total.
            let left = unsafe { ffi::swl_copy_mc(dst.add(done).cast(), addr.cast(), n) };
            poisoned = left != 0;
            done += n;
        })?;
        if poisoned {
            return Err(EIO);
        }
        Ok(())
    }

    fn write(&self, off: u64, data: &[u8]) -> Result {
        // SAFETY: `data` is `data.len()` readable bytes for the call.
        unsafe { self.store(off, data.as_ptr(), data.len()) }
    }

    /// The request's bytes go to the pmem in one copy, from the bio's page
    /// to the log, with no reference made to them.
    fn write_from(&self, off: u64, src: &Chunk<'_>) -> Result {
        // SAFETY: a chunk's `as_ptr()` is `len()` mapped bytes while it is.
        unsafe { self.store(off, src.as_ptr(), src.len()) }
    }

    fn drain(&self) {
        // SAFETY: a store fence; no preconditions.
        unsafe { ffi::swl_pmem_wmb() };
    }

    fn bad(&self, off: u64, len: u64) -> bool {
        let Some(first) = self.start.checked_add(off) else {
            return true;
        };
        let Some(end) = first.checked_add(len) else {
            return true;
        };
        let sector = first >> 9;
        let nr = end.div_ceil(512) - sector;
        // SAFETY: `bdev` is an open block device (held by `self`).
        unsafe { ffi::swl_bdev_bad(self.bdev.as_raw(), sector, nr) }
    }
}

impl Drop for DaxMapping {
    fn drop(&mut self) {
        self.pieces.clear();
        // SAFETY: by the type invariant `dax` is held by `holder`; it is put
        // back once, before `bdev` closes the device.
        unsafe { ffi::swl_dax_put(self.dax, self.holder) };
    }
}

/// pmem in ordinary memory, for tests of the code above [`Media`]; or,
/// made by [`RamMedia::shared_block`], a block device.
#[pin_data]
pub(crate) struct RamMedia {
    #[pin]
    bytes: kernel::sync::SpinLock<VVec<u8>>,
    medium: Medium,
    /// Every write fails with `EIO` while set ([`RamMedia::fail_writes`]).
    failing: core::sync::atomic::AtomicBool,
}

impl RamMedia {
    /// `size` zeroed bytes.
    pub(crate) fn new(size: usize) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(Self::init(size, Medium::Pmem)?, GFP_KERNEL)
    }

    /// `size` zeroed bytes, shared: each clone of the `Arc` is the same
    /// media (a test's "same device" across a reopen).
    pub(crate) fn shared(size: usize) -> Result<Arc<Self>> {
        Arc::pin_init(Self::init(size, Medium::Pmem)?, GFP_KERNEL)
    }

    /// A shared block device of `size` zeroed bytes and logical block size
    /// `unit`.
    pub(crate) fn shared_block(size: usize, unit: u32) -> Result<Arc<Self>> {
        let medium = Medium::block(unit).ok_or(EINVAL)?;
        Arc::pin_init(Self::init(size, medium)?, GFP_KERNEL)
    }

    fn init(size: usize, medium: Medium) -> Result<impl PinInit<Self, Error>> {
        let mut v = VVec::new();
        v.resize(size, 0, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            bytes <- kernel::new_spinlock!(v),
            medium,
            failing: core::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Makes every write fail with `EIO` (`on`), or succeed again.
    pub(crate) fn fail_writes(&self, on: bool) {
        self.failing
            .store(on, core::sync::atomic::Ordering::Relaxed);
    }
}

impl<T: Media> Media for Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        (**self).read(off, buf)
    }

    fn write(&self, off: u64, data: &[u8]) -> Result {
        (**self).write(off, data)
    }

    fn write_from(&self, off: u64, src: &Chunk<'_>) -> Result {
        (**self).write_from(off, src)
    }

    fn drain(&self) {
        (**self).drain()
    }

    fn medium(&self) -> Medium {
        (**self).medium()
    }

    fn write_buf(&self, off: u64, buf: &KVVec<u8>) -> Result {
        (**self).write_buf(off, buf)
    }

    fn set_no_fua(&self, on: bool) {
        (**self).set_no_fua(on)
    }
}

impl Media for RamMedia {
    fn size(&self) -> u64 {
        self.bytes.lock().len() as u64
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        let b = self.bytes.lock();
        let start = usize::try_from(off).map_err(|_| ERANGE)?;
        let src = b.get(start..start + buf.len()).ok_or(ERANGE)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&self, off: u64, data: &[u8]) -> Result {
        if self.failing.load(core::sync::atomic::Ordering::Relaxed) {
            return Err(EIO);
        }
        let mut b = self.bytes.lock();
        let start = usize::try_from(off).map_err(|_| ERANGE)?;
        let dst = b.get_mut(start..start + data.len()).ok_or(ERANGE)?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn drain(&self) {}

    fn medium(&self) -> Medium {
        self.medium
    }
}
