// SPDX-License-Identifier: GPL-2.0

//! The array as the device layer uses it: synchronous reads and writes, a
//! flush, and batches of writes in flight together (a CP's). The module's
//! array is a [`BlockDevice`]; KUnit tests use `RamArray`, in memory.

use kernel::prelude::*;

use crate::sys::blockdev::{BlockDevice, IoBatch};
#[cfg(CONFIG_KUNIT = "y")]
use crate::sys::dax::{Media, RamMedia};
use crate::sys::ffi::Segment;

/// Writes in flight together until [`WriteBatch::wait`].
pub(crate) trait WriteBatch {
    /// Starts writing `segs`, one after the other, at `sector`.
    ///
    /// # Safety
    ///
    /// The memory of every segment must stay allocated and unchanged until
    /// [`Self::wait`] returned or the batch is dropped.
    unsafe fn write(&mut self, sector: u64, segs: &[Segment]) -> Result;
    /// Bytes written since the last [`Self::wait`].
    fn bytes(&self) -> usize;
    /// Waits for every write started so far; the first error any had.
    fn wait(&mut self) -> Result;
}

/// The backing store of a volume, addressed in 512-byte sectors.
pub(crate) trait Array: Send + Sync + 'static {
    /// A batch of writes to this array.
    type Batch<'a>: WriteBatch
    where
        Self: 'a;
    /// Size in sectors.
    fn nr_sectors(&self) -> u64;
    /// Reads `buf.len()` bytes at `sector`.
    fn read(&self, sector: u64, buf: &mut KVec<u8>) -> Result;
    /// Writes `buf` at `sector`, with FUA if `fua`.
    fn write(&self, sector: u64, buf: &KVec<u8>, fua: bool) -> Result;
    /// Makes every completed write durable.
    fn flush(&self) -> Result;
    /// An empty batch of writes.
    fn batch(&self) -> Result<Self::Batch<'_>>;
}

impl WriteBatch for IoBatch<'_> {
    unsafe fn write(&mut self, sector: u64, segs: &[Segment]) -> Result {
        // SAFETY: the caller's contract is `IoBatch::write`'s.
        unsafe { IoBatch::write(self, sector, segs) }
    }

    fn bytes(&self) -> usize {
        IoBatch::bytes(self)
    }

    fn wait(&mut self) -> Result {
        IoBatch::wait(self)
    }
}

impl Array for BlockDevice {
    type Batch<'a> = IoBatch<'a>;

    fn nr_sectors(&self) -> u64 {
        BlockDevice::nr_sectors(self)
    }

    fn read(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        BlockDevice::read(self, sector, buf)
    }

    fn write(&self, sector: u64, buf: &KVec<u8>, fua: bool) -> Result {
        BlockDevice::write(self, sector, buf, fua)
    }

    fn flush(&self) -> Result {
        BlockDevice::flush(self)
    }

    fn batch(&self) -> Result<IoBatch<'_>> {
        IoBatch::new(self)
    }
}

/// An array in memory, for KUnit tests of the device layer: a
/// [`RamMedia`] addressed in sectors, and how many more writes it takes
/// through [`Array::write`] and batches before it "crashes" (drops every
/// later one with `EIO`; negative: no limit); its clones are the same
/// array.
#[cfg(CONFIG_KUNIT = "y")]
#[derive(Clone)]
pub(crate) struct RamArray(
    kernel::sync::Arc<RamMedia>,
    kernel::sync::Arc<core::sync::atomic::AtomicI64>,
);

#[cfg(CONFIG_KUNIT = "y")]
impl RamArray {
    /// `sectors` zeroed sectors.
    pub(crate) fn new(sectors: u64) -> Result<Self> {
        let len = usize::try_from(sectors.checked_mul(512).ok_or(EINVAL)?)?;
        let left = kernel::sync::Arc::new(core::sync::atomic::AtomicI64::new(-1), GFP_KERNEL)?;
        Ok(Self(RamMedia::shared(len)?, left))
    }

    /// Takes `n` more writes (each a batch's segment), then drops the
    /// rest: a power cut at that point of a run. Negative: no limit.
    pub(crate) fn crash_after(&self, n: i64) {
        self.1.store(n, core::sync::atomic::Ordering::Relaxed);
    }

    /// A write through the array's interface: `EIO`, and nothing stored,
    /// once the writes [`Self::crash_after`] allows are used up.
    fn store(&self, sector: u64, data: &[u8]) -> Result {
        use core::sync::atomic::Ordering::Relaxed;
        let left = self.1.load(Relaxed);
        if left == 0 {
            return Err(EIO);
        }
        if left > 0 {
            self.1.store(left - 1, Relaxed);
        }
        self.poke(sector, data)
    }

    /// A copy of `len` bytes at `sector`.
    pub(crate) fn peek(&self, sector: u64, len: usize) -> Result<KVec<u8>> {
        let mut buf = crate::sys::bytes::zeroed(len, GFP_KERNEL)?;
        Array::read(self, sector, &mut buf)?;
        Ok(buf)
    }

    /// Stores `data` at `sector` (also the tests' way to damage a block).
    pub(crate) fn poke(&self, sector: u64, data: &[u8]) -> Result {
        self.0
            .write(sector.checked_mul(512).ok_or(EIO)?, data)
            .map_err(|_| EIO)
    }
}

#[cfg(CONFIG_KUNIT = "y")]
impl WriteBatch for &RamArray {
    unsafe fn write(&mut self, sector: u64, segs: &[Segment]) -> Result {
        let mut at = sector;
        for s in segs {
            // SAFETY: the caller keeps the segment's memory allocated and
            // unchanged until `wait`, and it is copied here, at once.
            let data = unsafe { s.as_slice() };
            self.store(at, data)?;
            at += (data.len() / 512) as u64;
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        0
    }

    fn wait(&mut self) -> Result {
        Ok(())
    }
}

#[cfg(CONFIG_KUNIT = "y")]
impl Array for RamArray {
    type Batch<'a> = &'a RamArray;

    fn nr_sectors(&self) -> u64 {
        self.0.size() / 512
    }

    fn read(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        self.0
            .read(sector.checked_mul(512).ok_or(EIO)?, buf)
            .map_err(|_| EIO)
    }

    fn write(&self, sector: u64, buf: &KVec<u8>, _fua: bool) -> Result {
        self.store(sector, buf)
    }

    fn flush(&self) -> Result {
        Ok(())
    }

    fn batch(&self) -> Result<&RamArray> {
        Ok(self)
    }
}
