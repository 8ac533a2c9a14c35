// SPDX-License-Identifier: GPL-2.0

//! The log on an ordinary block device (an SSD with power-loss protection,
//! a mirrored pair, a replicated device): [`BlockLog`], a [`Media`] written
//! with bios, and [`LogDevice`], the one of the two media a volume's log is
//! on.
//!
//! Every write is whole units (the device's logical block size) and goes
//! with FUA: durable when it completes, so [`Media::drain`] has nothing to
//! wait for. The block layer drops FUA on a device that reports no volatile
//! write cache (md, an SSD with power-loss protection), where a completed
//! write is durable already. Reads of less than a unit go through a bounce
//! buffer.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::prelude::*;

use super::bio::Chunk;
use super::blockdev::{BlockDevice, IoBatch};
use super::dax::{pieces_of, read_each, DaxMapping, Media};
use crate::format::log::Medium;

/// A log device without DAX, written with synchronous bios.
pub(crate) struct BlockLog {
    bdev: BlockDevice,
    unit: u32,
    size: u64,
    /// Test fault: records are written without FUA (debugfs
    /// `replay_fault` 5), which the lost-cache power cuts must catch.
    no_fua: AtomicBool,
}

impl BlockLog {
    /// The log on `bdev`; `EINVAL` if its logical block size is one a block
    /// log cannot use (see [`Medium::block`]).
    pub(crate) fn new(bdev: BlockDevice) -> Result<Self> {
        let unit = bdev.logical_block_size();
        if Medium::block(unit).is_none() {
            pr_err!("a log device's logical block size must be 512 to 4096 bytes, not {unit}\n");
            return Err(EINVAL);
        }
        let size = (bdev.nr_sectors() << 9) & !(u64::from(unit) - 1);
        Ok(Self {
            bdev,
            unit,
            size,
            no_fua: AtomicBool::new(false),
        })
    }

    /// Whether `v` is a multiple of the unit. (`checked_rem`: the unit is
    /// never 0, but a division the compiler cannot prove safe would link a
    /// panic path into the I/O path.)
    fn aligned(&self, v: u64) -> bool {
        v.checked_rem(u64::from(self.unit)) == Some(0)
    }

    /// Reads the units holding `[off, off + len)` into a new buffer;
    /// returns it and where `off` lies in it.
    fn read_units(&self, off: u64, len: usize) -> Result<(KVVec<u8>, usize)> {
        let unit = u64::from(self.unit);
        let end = off.checked_add(len as u64).ok_or(ERANGE)?;
        if end > self.size {
            return Err(ERANGE);
        }
        let first = off & !(unit - 1);
        let last = end.div_ceil(unit) * unit;
        let n = usize::try_from(last - first).map_err(|_| ERANGE)?;
        let mut buf = KVVec::with_capacity(n, GFP_KERNEL)?;
        buf.resize(n, 0, GFP_KERNEL)?;
        self.bdev.read_kv(first >> 9, &mut buf)?;
        Ok((buf, (off - first) as usize))
    }

    /// Writes `buf` (whole units) at `off`, with FUA unless the test fault
    /// is set.
    pub(crate) fn write_units(&self, off: u64, buf: &KVVec<u8>) -> Result {
        let len = buf.len() as u64;
        if !self.aligned(off) || !self.aligned(len) {
            return Err(EINVAL);
        }
        match off.checked_add(len) {
            Some(end) if end <= self.size => {}
            _ => return Err(ERANGE),
        }
        self.bdev
            .write_kv(off >> 9, buf, !self.no_fua.load(Relaxed))
    }
}

/// The next read of a block log's scan, in flight while the scan works on
/// the bytes of the read before: the device's transfer and the scan's
/// checksums overlap instead of taking turns.
///
/// # Invariants
///
/// While `pending` is `Some`, a read into `buf` is in flight in `batch`:
/// nothing else touches `buf` nor changes its length until `batch.wait`.
pub(crate) struct Prefetch<'a> {
    log: &'a BlockLog,
    batch: IoBatch<'a>,
    buf: KVVec<u8>,
    /// Offset and length of the read in flight.
    pending: Option<(u64, usize)>,
}

impl<'a> Prefetch<'a> {
    fn new(log: &'a BlockLog) -> Result<Self> {
        Ok(Self {
            log,
            batch: IoBatch::new(&log.bdev)?,
            buf: KVVec::new(),
            pending: None,
        })
    }

    /// Starts reading the `len` bytes at `off` (whole units); a read still
    /// in flight is waited for and dropped first.
    pub(crate) fn start(&mut self, off: u64, len: usize) -> Result {
        self.cancel();
        let log = self.log;
        if !log.aligned(off) || !log.aligned(len as u64) {
            return Err(EINVAL);
        }
        match off.checked_add(len as u64) {
            Some(end) if end <= log.size => {}
            _ => return Err(ERANGE),
        }
        // Zeroed only when the length changes: the reads fill it all.
        if self.buf.len() != len {
            self.buf.clear();
            self.buf.resize(len, 0, GFP_KERNEL)?;
        }
        // INVARIANT: `pending` is set before the read starts, and `cancel`
        // or `take` waits for it before `buf` is touched again.
        self.pending = Some((off, len));
        // SAFETY: `buf` is `len` bytes of kmalloc or vmalloc memory (a
        // `KVVec`) that stays allocated and untouched until `batch.wait`
        // (type invariant; `drop` waits too).
        if let Err(e) = unsafe { self.batch.read(off >> 9, self.buf.as_mut_ptr(), len) } {
            self.cancel();
            return Err(e);
        }
        Ok(())
    }

    /// If the read in flight is of the `len` bytes at `off`: waits for it
    /// and swaps its buffer with `into`, `Ok(true)`. `Ok(false)` (and the
    /// read in flight, if any, goes on) if not; the read's error if it
    /// failed (`into` unchanged).
    pub(crate) fn take(&mut self, off: u64, len: usize, into: &mut KVVec<u8>) -> Result<bool> {
        if self.pending != Some((off, len)) {
            return Ok(false);
        }
        self.pending = None;
        self.batch.wait()?;
        core::mem::swap(&mut self.buf, into);
        Ok(true)
    }

    /// Waits for the read in flight, if any, and forgets it.
    fn cancel(&mut self) {
        if self.pending.take().is_some() {
            let _ = self.batch.wait();
        }
    }
}

impl Drop for Prefetch<'_> {
    fn drop(&mut self) {
        // `buf` is freed after this: no read may still be filling it.
        self.cancel();
    }
}

impl Media for BlockLog {
    fn size(&self) -> u64 {
        self.size
    }

    fn medium(&self) -> Medium {
        Medium::Block { unit: self.unit }
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        let (units, at) = self.read_units(off, buf.len())?;
        let src = units.get(at..at + buf.len()).ok_or(ERANGE)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// `data` must be whole units at a unit's offset (`EINVAL` if not): the
    /// log writes nothing else to a block device.
    fn write(&self, off: u64, data: &[u8]) -> Result {
        let mut buf = KVVec::with_capacity(data.len(), GFP_KERNEL)?;
        buf.extend_from_slice(data, GFP_KERNEL)?;
        self.write_units(off, &buf)
    }

    fn write_buf(&self, off: u64, buf: &KVVec<u8>) -> Result {
        self.write_units(off, buf)
    }

    /// Nothing to wait for: every write was FUA and has completed.
    fn drain(&self) {}

    fn set_no_fua(&self, on: bool) {
        self.no_fua.store(on, Relaxed);
    }

    fn prefetch(&self) -> Option<Prefetch<'_>> {
        Prefetch::new(self).ok()
    }

    /// Whole units at a unit's offset: one batch of reads straight into
    /// `buf`, a read per run of adjacent pieces, waited for once. Anything
    /// else one [`Media::read`] a piece.
    fn read_pieces(&self, ats: &[u64], piece: usize, buf: &mut KVVec<u8>, from: usize) -> Result {
        let dst = pieces_of(ats, piece, buf, from)?;
        let len = piece as u64;
        if !self.aligned(len) || ats.iter().any(|&at| !self.aligned(at)) {
            return read_each(self, ats, piece, dst);
        }
        if ats
            .iter()
            .any(|&at| at.checked_add(len).is_none_or(|end| end > self.size))
        {
            return Err(ERANGE);
        }
        let base = dst.as_mut_ptr();
        // Dropped (waiting for its reads) before `dst`'s borrow ends.
        let mut batch = IoBatch::new(&self.bdev)?;
        let mut i = 0usize;
        while let Some(&first) = ats.get(i) {
            let n = adjacent(ats, i, len);
            // `i + n <= ats.len()`, so both products are at most
            // `dst.len()`, which `pieces_of` computed without overflow.
            let (at_byte, bytes) = (i * piece, n * piece);
            // SAFETY: `base + at_byte .. + bytes` lies within `dst`, kmalloc
            // or vmalloc memory (a `KVVec`'s) borrowed exclusively by this
            // call, which the device alone touches until `batch` has waited
            // (below, or when it is dropped on an error, before returning).
            unsafe { batch.read(first >> 9, base.add(at_byte), bytes)? };
            i += n;
        }
        batch.wait()
    }

    /// Whole units at a unit's offset go straight into `buf`; anything
    /// else as [`Media::read`].
    fn read_buf(&self, off: u64, buf: &mut KVVec<u8>) -> Result {
        let len = buf.len() as u64;
        if !self.aligned(off) || !self.aligned(len) {
            return self.read(off, buf);
        }
        match off.checked_add(len) {
            Some(end) if end <= self.size => self.bdev.read_kv(off >> 9, buf),
            _ => Err(ERANGE),
        }
    }
}

/// How many of the `len`-byte pieces at `ats[i..]` lie one after another on
/// the device, from `ats[i]` on (at least 1): one read takes them all.
fn adjacent(ats: &[u64], i: usize, len: u64) -> usize {
    let Some(&first) = ats.get(i) else {
        return 0;
    };
    let mut n = 1usize;
    while let Some(&at) = ats.get(i + n) {
        let next = (n as u64)
            .checked_mul(len)
            .and_then(|d| first.checked_add(d));
        if next != Some(at) {
            break;
        }
        n += 1;
    }
    n
}

/// The device a volume's log is on: pmem through DAX, or a block device.
pub(crate) enum LogDevice {
    /// Persistent memory.
    Pmem(DaxMapping),
    /// A block device without DAX.
    Block(BlockLog),
}

impl LogDevice {
    /// The log device `bdev`: pmem if it has DAX, a block log if not.
    pub(crate) fn new(bdev: BlockDevice, holder: *mut core::ffi::c_void) -> Result<Self> {
        match DaxMapping::try_new(bdev, holder) {
            Ok(map) => Ok(Self::Pmem(map?)),
            Err(bdev) => Ok(Self::Block(BlockLog::new(bdev)?)),
        }
    }
}

impl Media for LogDevice {
    fn size(&self) -> u64 {
        match self {
            Self::Pmem(m) => m.size(),
            Self::Block(b) => b.size(),
        }
    }

    fn medium(&self) -> Medium {
        match self {
            Self::Pmem(m) => m.medium(),
            Self::Block(b) => b.medium(),
        }
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        match self {
            Self::Pmem(m) => m.read(off, buf),
            Self::Block(b) => b.read(off, buf),
        }
    }

    fn write(&self, off: u64, data: &[u8]) -> Result {
        match self {
            Self::Pmem(m) => m.write(off, data),
            Self::Block(b) => b.write(off, data),
        }
    }

    fn write_from(&self, off: u64, src: &Chunk<'_>) -> Result {
        match self {
            Self::Pmem(m) => m.write_from(off, src),
            Self::Block(b) => b.write_from(off, src),
        }
    }

    fn write_buf(&self, off: u64, buf: &KVVec<u8>) -> Result {
        match self {
            Self::Pmem(m) => m.write_buf(off, buf),
            Self::Block(b) => b.write_buf(off, buf),
        }
    }

    fn drain(&self) {
        match self {
            Self::Pmem(m) => m.drain(),
            Self::Block(b) => b.drain(),
        }
    }

    fn bad(&self, off: u64, len: u64) -> bool {
        match self {
            Self::Pmem(m) => m.bad(off, len),
            Self::Block(b) => b.bad(off, len),
        }
    }

    fn set_no_fua(&self, on: bool) {
        match self {
            Self::Pmem(m) => m.set_no_fua(on),
            Self::Block(b) => b.set_no_fua(on),
        }
    }

    fn read_buf(&self, off: u64, buf: &mut KVVec<u8>) -> Result {
        match self {
            Self::Pmem(m) => m.read_buf(off, buf),
            Self::Block(b) => b.read_buf(off, buf),
        }
    }

    fn prefetch(&self) -> Option<Prefetch<'_>> {
        match self {
            Self::Pmem(m) => m.prefetch(),
            Self::Block(b) => b.prefetch(),
        }
    }

    fn read_pieces(&self, ats: &[u64], piece: usize, buf: &mut KVVec<u8>, from: usize) -> Result {
        match self {
            Self::Pmem(m) => m.read_pieces(ats, piece, buf, from),
            Self::Block(b) => b.read_pieces(ats, piece, buf, from),
        }
    }
}

#[kernel::prelude::kunit_tests(swarmlog_blocklog)]
mod tests {
    use super::*;
    use crate::sys::dax::RamMedia;

    #[test]
    fn adjacent_pieces_are_one_read() -> Result {
        let ats = [0u64, 4096, 8192, 20480, 24576, 0, 8192];
        // From each start: the run that one read takes.
        let mut runs = KVec::new();
        let mut i = 0;
        while i < ats.len() {
            let n = adjacent(&ats, i, 4096);
            runs.push((i, n), GFP_KERNEL)?;
            i += n;
        }
        assert_eq!(&runs[..], &[(0, 3), (3, 2), (5, 1), (6, 1)]);
        // Backwards or overlapping pieces are not adjacent; past the end,
        // nothing.
        assert_eq!(adjacent(&[8192, 4096], 0, 4096), 1);
        assert_eq!(adjacent(&[0, 2048], 0, 4096), 1);
        assert_eq!(adjacent(&[u64::MAX - 4095, 0], 0, 4096), 1);
        assert_eq!(adjacent(&ats, ats.len(), 4096), 0);
        Ok(())
    }

    #[test]
    fn pieces_land_in_order_from_their_offset() -> Result {
        let media = RamMedia::new(4 * 4096)?;
        let mut block = KVec::new();
        for k in 0..4u8 {
            block.clear();
            block.resize(4096, k + 1, GFP_KERNEL)?;
            media.write(u64::from(k) * 4096, &block)?;
        }
        let mut buf = KVVec::new();
        buf.resize(100 + 3 * 4096, 0xee, GFP_KERNEL)?;
        media.read_pieces(&[8192, 0, 12288], 4096, &mut buf, 100)?;
        // Bytes before `from` untouched; then the pieces in the order asked.
        assert!(buf.iter().take(100).all(|&b| b == 0xee));
        for (k, want) in [3u8, 1, 4].into_iter().enumerate() {
            let piece = buf
                .get(100 + k * 4096..100 + (k + 1) * 4096)
                .ok_or(EINVAL)?;
            assert!(piece.iter().all(|&b| b == want));
        }
        // A buffer one byte too short, or pieces of no size: refused.
        let fits = buf.len() - 2 * 4096;
        assert_eq!(media.read_pieces(&[0, 4096], 4096, &mut buf, fits), Ok(()));
        assert_eq!(
            media.read_pieces(&[0, 4096], 4096, &mut buf, fits + 1),
            Err(EINVAL)
        );
        assert_eq!(media.read_pieces(&[0], 0, &mut buf, 0), Err(EINVAL));
        // A piece past the device's end: the read's error.
        assert_eq!(media.read_pieces(&[16384], 4096, &mut buf, 0), Err(ERANGE));
        Ok(())
    }
}
