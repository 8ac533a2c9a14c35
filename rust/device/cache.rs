// SPDX-License-Identifier: GPL-2.0

//! The buffer cache of data blocks: the newest contents of every block
//! written since the last consistency point, in memory.
//!
//! Every byte here is also in the pmem log (the cache is rebuilt from it by
//! replay), so the cache may be lost at any time without losing data. A
//! block written only in part holds just the sectors written (`valid`); the
//! rest comes from the array when the block is read or committed.
//!
//! A CP moves the `dirty` set to `committing` and writes that to the array
//! while new writes start a new `dirty` set; a block written again during the
//! CP gets a copy of its committing version first (copy on write).

use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
};

use crate::format::array::BLOCK_SIZE;
use crate::sys::bytes;

/// Sectors per block.
pub(crate) const SECTORS: u64 = (BLOCK_SIZE / 512) as u64;
/// `valid` of a block with all its sectors.
pub(crate) const ALL_VALID: u8 = 0xff;

/// Whether `nr_sectors` sectors at `sector` are exactly one whole block.
pub(crate) fn is_whole_block(sector: u64, nr_sectors: u64) -> bool {
    sector % SECTORS == 0 && nr_sectors == SECTORS
}

/// The pieces of a write of `nr_sectors` sectors at `sector`, one per block
/// it touches, in order: the block, the piece's bytes within the write's
/// data, and whether the piece is the whole block.
pub(crate) fn block_pieces(
    sector: u64,
    nr_sectors: u64,
) -> impl Iterator<Item = (u64, core::ops::Range<usize>, bool)> {
    let end = sector.saturating_add(nr_sectors);
    let mut s = sector;
    core::iter::from_fn(move || {
        if s >= end {
            return None;
        }
        let n = (SECTORS - s % SECTORS).min(end - s);
        let off = ((s - sector) * 512) as usize;
        let piece = (s / SECTORS, off..off + (n * 512) as usize, n == SECTORS);
        s += n;
        Some(piece)
    })
}

/// A tree node for a dirty block, allocated ahead ([`Cache::put_whole`]).
pub(crate) type Spare = RBTreeNodeReservation<u64, Block>;

/// One cached block.
pub(crate) struct Block {
    /// The block's bytes; only sectors marked in `valid` are meaningful.
    pub(crate) data: KVec<u8>,
    /// Bit `i` set: sector `i` of the block holds the newest data.
    pub(crate) valid: u8,
    /// `crc32c(0, data)` when one write gave the whole block and the write
    /// path checksummed it ([`Cache::set_block_crc0`]): the CP makes the
    /// block's table entry from it instead of checksumming the block again.
    pub(crate) crc0: Option<u32>,
}

impl Block {
    fn new(flags: kernel::alloc::Flags) -> Result<Self> {
        Ok(Self {
            data: bytes::zeroed(BLOCK_SIZE, flags)?,
            valid: 0,
            crc0: None,
        })
    }

    fn copy(&self, flags: kernel::alloc::Flags) -> Result<Self> {
        let mut data = KVec::with_capacity(BLOCK_SIZE, flags)?;
        bytes::extend(&mut data, &self.data, flags)?;
        Ok(Self {
            data,
            valid: self.valid,
            crc0: self.crc0,
        })
    }

    /// Whether every sector is valid.
    pub(crate) fn is_full(&self) -> bool {
        self.valid == ALL_VALID
    }

    /// Fills the sectors not valid here from `old`, the block's contents on
    /// the array; the block is then full.
    pub(crate) fn merge_under(&mut self, old: &[u8]) {
        for s in 0..SECTORS as usize {
            if self.valid & (1 << s) == 0 {
                let r = s * 512..(s + 1) * 512;
                if let (Some(d), Some(o)) = (self.data.get_mut(r.clone()), old.get(r)) {
                    d.copy_from_slice(o);
                }
            }
        }
        self.valid = ALL_VALID;
    }
}

/// The dirty and committing sets.
///
/// # Invariants
///
/// A committing block's `data` is neither changed nor freed from
/// [`Cache::begin_commit`] to [`Cache::end_commit`], except through
/// [`Cache::committing_mut`]: writes go to a copy in the dirty set, and
/// nothing else takes a block out of `committing`. A CP relies on it to
/// write the committing blocks from their own memory.
pub(crate) struct Cache {
    dirty: RBTree<u64, Block>,
    committing: RBTree<u64, Block>,
    /// Blocks in both sets.
    blocks: usize,
    /// Blocks in `committing`.
    committing_blocks: usize,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Self {
            dirty: RBTree::new(),
            committing: RBTree::new(),
            blocks: 0,
            committing_blocks: 0,
        }
    }

    /// Blocks held, dirty and committing.
    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }

    /// Whether nothing is dirty.
    pub(crate) fn is_clean(&self) -> bool {
        self.dirty.is_empty()
    }

    /// The newest cached version of `block`, if any.
    pub(crate) fn get(&self, block: u64) -> Option<&Block> {
        self.dirty
            .get(&block)
            .or_else(|| self.committing.get(&block))
    }

    fn dirty_block(&mut self, block: u64, flags: kernel::alloc::Flags) -> Result<&mut Block> {
        if self.dirty.get(&block).is_none() {
            let b = match self.committing.get(&block) {
                Some(c) => c.copy(flags)?,
                None => Block::new(flags)?,
            };
            self.dirty.try_create_and_insert(block, b, flags)?;
            self.blocks += 1;
        }
        self.dirty.get_mut(&block).ok_or(ENOMEM)
    }

    /// Applies `data` (whole sectors) at `sector`; `None` writes zeroes
    /// over `nr_sectors` sectors.
    pub(crate) fn apply(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        data: Option<&[u8]>,
        flags: kernel::alloc::Flags,
    ) -> Result {
        if let Some(d) = data {
            if d.len() as u64 != nr_sectors * 512 {
                return Err(EINVAL);
            }
        }
        let mut s = sector;
        let end = sector.checked_add(nr_sectors).ok_or(EINVAL)?;
        while s < end {
            let n = (SECTORS - s % SECTORS).min(end - s);
            let off = ((s - sector) * 512) as usize;
            self.apply_in_block(s, n, flags, |dst| {
                match data {
                    Some(d) => dst.copy_from_slice(d.get(off..off + dst.len()).ok_or(EINVAL)?),
                    None => dst.fill(0),
                }
                Ok(())
            })?;
            s += n;
        }
        Ok(())
    }

    /// Applies `nr_sectors` sectors at `sector`, all in one block, whose
    /// new contents `fill` writes into the cached block: replay's MODIFY
    /// reads a record from the pmem straight into its block so. If `fill`
    /// fails, no sector of the block changes state.
    pub(crate) fn apply_in_block<F>(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        flags: kernel::alloc::Flags,
        fill: F,
    ) -> Result
    where
        F: FnOnce(&mut [u8]) -> Result,
    {
        let first = (sector % SECTORS) as usize;
        let n = usize::try_from(nr_sectors).map_err(|_| EINVAL)?;
        if n == 0 || first + n > SECTORS as usize {
            return Err(EINVAL);
        }
        let b = self.dirty_block(sector / SECTORS, flags)?;
        fill(
            b.data
                .get_mut(first * 512..(first + n) * 512)
                .ok_or(EINVAL)?,
        )?;
        for i in first..first + n {
            b.valid |= 1 << i;
        }
        b.crc0 = None;
        Ok(())
    }

    /// Makes dirty `block` the whole block `data` (a write of exactly the
    /// block; replay's MODIFY puts in a block prepared ahead), `crc0` its
    /// `crc32c(0, data)` if known. `EINVAL` if `data` is not a block. A new
    /// dirty block takes its tree node from `spare` if there is one there
    /// (the write path allocates it before it takes the state lock), else
    /// allocates it with `flags`.
    pub(crate) fn put_whole(
        &mut self,
        block: u64,
        data: KVec<u8>,
        crc0: Option<u32>,
        spare: &mut Option<Spare>,
        flags: kernel::alloc::Flags,
    ) -> Result {
        if data.len() != BLOCK_SIZE {
            return Err(EINVAL);
        }
        if let Some(b) = self.dirty.get_mut(&block) {
            b.data = data;
            b.valid = ALL_VALID;
            b.crc0 = crc0;
            return Ok(());
        }
        let b = Block {
            data,
            valid: ALL_VALID,
            crc0,
        };
        let node = match spare.take() {
            Some(s) => s,
            None => Spare::new(flags)?,
        };
        self.dirty.insert(node.into_node(block, b));
        self.blocks += 1;
        Ok(())
    }

    /// Records `crc0`, `crc32c(0, data)` of dirty `block`'s whole contents as
    /// just applied: by the write path for a piece of a write that is a
    /// whole block, by replay's MODIFY for a one-block record (whose
    /// checksum the scan checked). Ignored unless the block is whole.
    pub(crate) fn set_block_crc0(&mut self, block: u64, crc0: u32) {
        if let Some(b) = self.dirty.get_mut(&block) {
            if b.is_full() {
                b.crc0 = Some(crc0);
            }
        }
    }

    /// Gives `block` its old contents `old` (from the array), under what is
    /// already cached of it: replay's LOAD of a block a record changes in
    /// part.
    pub(crate) fn load_base(
        &mut self,
        block: u64,
        old: &[u8],
        flags: kernel::alloc::Flags,
    ) -> Result {
        let b = self.dirty_block(block, flags)?;
        b.merge_under(old);
        Ok(())
    }

    /// Starts a CP: the dirty set becomes the committing set. `EBUSY` if a
    /// CP is still committing.
    pub(crate) fn begin_commit(&mut self) -> Result {
        if !self.committing.is_empty() {
            return Err(EBUSY);
        }
        core::mem::swap(&mut self.dirty, &mut self.committing);
        self.committing_blocks = self.blocks;
        Ok(())
    }

    /// Up to `max` committing blocks from `from` on whose numbers follow each
    /// other, as `(first block, count)`.
    pub(crate) fn committing_run(&self, from: u64, max: usize) -> Option<(u64, usize)> {
        let first = *self.committing.cursor_lower_bound(&from)?.current().0;
        let mut n = 1usize;
        while n < max && self.committing.get(&(first + n as u64)).is_some() {
            n += 1;
        }
        Some((first, n))
    }

    /// A committing block.
    pub(crate) fn committing(&self, block: u64) -> Option<&Block> {
        self.committing.get(&block)
    }

    /// A committing block, to merge its missing sectors in: only the CP,
    /// before it writes the block.
    pub(crate) fn committing_mut(&mut self, block: u64) -> Option<&mut Block> {
        self.committing.get_mut(&block)
    }

    /// Ends a CP: the committing blocks are on the array now. Returns them,
    /// for the caller to free after it drops the state lock (freeing a large
    /// CP's blocks under it stalled writers for milliseconds).
    pub(crate) fn end_commit(&mut self) -> RBTree<u64, Block> {
        self.blocks -= self.committing_blocks;
        self.committing_blocks = 0;
        core::mem::replace(&mut self.committing, RBTree::new())
    }
}

#[kernel::prelude::kunit_tests(swarmlog_cache)]
mod tests {
    use super::*;
    use crate::format::checksum::crc32c;

    #[test]
    fn partial_writes_track_sectors() -> Result {
        let mut c = Cache::new();
        // Sectors 6..10 straddle blocks 0 and 1.
        c.apply(6, 4, Some(&[7u8; 2048]), GFP_KERNEL)?;
        assert_eq!(c.blocks(), 2);
        assert_eq!(c.get(0).map(|b| b.valid), Some(0b1100_0000));
        assert_eq!(c.get(1).map(|b| b.valid), Some(0b0000_0011));
        assert_eq!(c.get(1).and_then(|b| b.data.get(1023).copied()), Some(7));
        c.apply(8, 8, None, GFP_KERNEL)?;
        assert!(c
            .get(1)
            .is_some_and(|b| b.is_full() && b.data.iter().all(|&x| x == 0)));
        assert!(c.apply(0, 2, Some(&[0; 512]), GFP_KERNEL).is_err());
        Ok(())
    }

    #[test]
    fn apply_in_block_fills_one_block() -> Result {
        let mut a = Cache::new();
        let mut b = Cache::new();
        a.apply(9, 3, Some(&[5u8; 1536]), GFP_KERNEL)?;
        b.apply_in_block(9, 3, GFP_KERNEL, |dst| {
            dst.fill(5);
            Ok(())
        })?;
        let (x, y) = (a.get(1).ok_or(EINVAL)?, b.get(1).ok_or(EINVAL)?);
        assert_eq!((x.valid, &x.data[..]), (y.valid, &y.data[..]));
        assert_eq!(y.valid, 0b0000_1110);
        // Not within one block, or nothing: refused.
        assert_eq!(b.apply_in_block(6, 4, GFP_KERNEL, |_| Ok(())), Err(EINVAL));
        assert_eq!(b.apply_in_block(8, 0, GFP_KERNEL, |_| Ok(())), Err(EINVAL));
        // A fill that fails leaves the block's sectors as they were.
        assert_eq!(
            b.apply_in_block(8, 8, GFP_KERNEL, |dst| {
                dst.fill(9);
                Err(EIO)
            }),
            Err(EIO)
        );
        assert_eq!(b.get(1).map(|c| c.valid), Some(0b0000_1110));
        Ok(())
    }

    #[test]
    fn put_whole_is_a_whole_block_write() -> Result {
        let mut a = Cache::new();
        let mut b = Cache::new();
        // Over a block written in part, and a new one.
        a.apply(9, 2, Some(&[1u8; 1024]), GFP_KERNEL)?;
        b.apply(9, 2, Some(&[1u8; 1024]), GFP_KERNEL)?;
        let mut spare = Some(Spare::new(GFP_KERNEL)?);
        a.apply(8, 8, Some(&[6u8; 4096]), GFP_KERNEL)?;
        a.set_block_crc0(1, 77);
        a.apply(24, 8, Some(&[7u8; 4096]), GFP_KERNEL)?;
        b.put_whole(
            1,
            bytes::zeroed(4096, GFP_KERNEL).map(|mut v| {
                v.fill(6);
                v
            })?,
            Some(77),
            &mut spare,
            GFP_KERNEL,
        )?;
        // A block dirty already keeps its node: the spare is left.
        assert!(spare.is_some());
        b.put_whole(
            3,
            bytes::zeroed(4096, GFP_KERNEL).map(|mut v| {
                v.fill(7);
                v
            })?,
            None,
            &mut spare,
            GFP_KERNEL,
        )?;
        // A new block takes it.
        assert!(spare.is_none());
        for blk in [1, 3] {
            let (x, y) = (a.get(blk).ok_or(EINVAL)?, b.get(blk).ok_or(EINVAL)?);
            assert_eq!(
                (x.valid, x.crc0, &x.data[..]),
                (y.valid, y.crc0, &y.data[..])
            );
        }
        assert_eq!(a.blocks(), b.blocks());
        assert_eq!(
            b.put_whole(4, KVec::new(), None, &mut None, GFP_KERNEL),
            Err(EINVAL)
        );
        Ok(())
    }

    #[test]
    fn merge_fills_missing_sectors() -> Result {
        let mut c = Cache::new();
        c.apply(1, 1, Some(&[9u8; 512]), GFP_KERNEL)?;
        c.begin_commit()?;
        let old = [3u8; BLOCK_SIZE];
        let b = c.committing_mut(0).ok_or(EINVAL)?;
        b.merge_under(&old);
        assert!(b.is_full());
        assert_eq!(b.data.first().copied(), Some(3));
        assert_eq!(b.data.get(512).copied(), Some(9));
        assert_eq!(b.data.get(1024).copied(), Some(3));
        Ok(())
    }

    #[test]
    fn commit_is_copy_on_write() -> Result {
        let mut c = Cache::new();
        c.apply(0, 8, Some(&[1u8; 4096]), GFP_KERNEL)?;
        c.apply(16, 8, Some(&[2u8; 4096]), GFP_KERNEL)?;
        c.apply(40, 8, Some(&[4u8; 4096]), GFP_KERNEL)?;
        c.begin_commit()?;
        assert!(c.is_clean());
        assert_eq!(c.begin_commit(), Err(EBUSY));
        // A write during the CP lands on a copy; the committing one stays.
        c.apply(16, 1, Some(&[5u8; 512]), GFP_KERNEL)?;
        assert_eq!(c.get(2).and_then(|b| b.data.first().copied()), Some(5));
        assert_eq!(
            c.committing(2).and_then(|b| b.data.first().copied()),
            Some(2)
        );
        assert_eq!(c.get(2).map(|b| b.valid), Some(ALL_VALID));
        assert_eq!(c.committing_run(0, 8), Some((0, 1)));
        assert_eq!(c.committing_run(1, 8), Some((2, 1)));
        assert_eq!(c.committing_run(3, 8), Some((5, 1)));
        assert_eq!(c.committing_run(6, 8), None);
        drop(c.end_commit());
        assert_eq!(c.blocks(), 1);
        assert!(c.committing(0).is_none());
        assert!(c.get(2).is_some());
        Ok(())
    }

    #[test]
    fn block_pieces_and_their_checksums() -> Result {
        let mut c = Cache::new();
        // Sectors 4..20: half of block 0, all of block 1, half of block 2.
        let mut data = KVec::new();
        for i in 0..16 * 512 {
            data.push((i % 251) as u8, GFP_KERNEL)?;
        }
        c.apply(4, 16, Some(&data), GFP_KERNEL)?;
        let mut crc = crate::format::checksum::SEED;
        let mut n = 0;
        for (block, range, whole) in block_pieces(4, 16) {
            let piece = data.get(range.clone()).ok_or(EINVAL)?;
            let crc0 = crc32c(0, piece);
            crc = crate::format::checksum::shift(crc, piece.len() as u64) ^ crc0;
            assert_eq!(whole, block == 1);
            assert_eq!(range.len(), if whole { 4096 } else { 2048 });
            c.set_block_crc0(block, crc0);
            n += 1;
        }
        assert_eq!(n, 3);
        // The pieces' checksums make the whole write's.
        assert_eq!(crc, crc32c(crate::format::checksum::SEED, &data));
        // Only the whole block keeps its checksum.
        assert_eq!(c.get(0).and_then(|b| b.crc0), None);
        let whole = data.get(2048..6144).ok_or(EINVAL)?;
        assert_eq!(c.get(1).and_then(|b| b.crc0), Some(crc32c(0, whole)));
        assert_eq!(c.get(2).and_then(|b| b.crc0), None);
        // The CP's copy keeps it; a later partial write drops it.
        c.begin_commit()?;
        c.apply(9, 1, Some(&[1u8; 512]), GFP_KERNEL)?;
        assert!(c.committing(1).is_some_and(|b| b.crc0.is_some()));
        assert_eq!(c.get(1).and_then(|b| b.crc0), None);
        assert_eq!(block_pieces(8, 0).count(), 0);
        assert_eq!(block_pieces(u64::MAX - 1, 8).count(), 1);
        Ok(())
    }

    #[test]
    fn runs_are_contiguous() -> Result {
        let mut c = Cache::new();
        c.apply(0, 8 * 5, None, GFP_KERNEL)?;
        c.apply(8 * 9, 8, None, GFP_KERNEL)?;
        c.begin_commit()?;
        assert_eq!(c.committing_run(0, 3), Some((0, 3)));
        assert_eq!(c.committing_run(3, 64), Some((3, 2)));
        assert_eq!(c.committing_run(5, 64), Some((9, 1)));
        Ok(())
    }
}
