// SPDX-License-Identifier: GPL-2.0

//! The buffer cache of data blocks: the newest contents of every block
//! written since the last consistency point.
//!
//! Every byte here is also in the pmem log (the cache is rebuilt from it by
//! replay), so the cache may be lost at any time without losing data. A
//! block written whole by the write path is not copied into memory: the
//! cache holds where its record's data is in the log ([`Contents::Logged`]),
//! and reads and the CP copy it from there. The log space of a record the
//! cache points into is not reused before the CP that commits the block
//! ends (the log's tail moves only then), so the pointer stays good while
//! the block is cached. Other blocks (written in part, discarded, or
//! replayed) are held in memory ([`Contents::Ram`]); one written only in
//! part holds just the sectors written (`valid`); the rest comes from the
//! array when the block is read or committed. The module parameter
//! `cache_max_mb` bounds the blocks held in memory; the log's size bounds
//! the others.
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

/// Reads the log: `buf.len()` bytes at a log offset (the cache's way to the
/// data of a [`Contents::Logged`] block).
pub(crate) type ReadLog<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result;

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

/// Dirty blocks [`Cache::commit_before`] looks at in one call (under one
/// hold of the state lock).
pub(crate) const COMMIT_STEP: usize = 64;

/// A tree node for a dirty block, allocated ahead ([`Cache::put_logged`]).
pub(crate) type Spare = RBTreeNodeReservation<u64, Block>;

/// Where a cached block's bytes are.
pub(crate) enum Contents {
    /// In memory; only the sectors marked in the block's `valid` are
    /// meaningful.
    Ram(KVec<u8>),
    /// All of the block, in the log: the data of the record that wrote it.
    Logged(Logged),
}

/// Where a logged block is: its record's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Logged {
    /// Log offset of the data.
    pub(crate) at: u64,
    /// Sequence number of the record: with `at`, which record it is (an
    /// offset is used again on the next lap of the ring).
    pub(crate) seq: u64,
    /// `crc32c(0, data)`, once the CP loop has checksummed the block ahead
    /// of the CP ([`Cache::set_logged_crc0`]).
    pub(crate) crc0: Option<u32>,
}

/// One cached block.
pub(crate) struct Block {
    /// The block's bytes.
    pub(crate) data: Contents,
    /// Bit `i` set: sector `i` of the block holds the newest data (all set
    /// for a [`Contents::Logged`] block).
    pub(crate) valid: u8,
    /// Sequence number of the oldest record whose change the block holds
    /// and that no later record replaced whole: the block's contents are
    /// those of the array (or of the committing version it was made from)
    /// with the records from this one on applied. A CP that frees the log
    /// up to a record after it must commit the block
    /// ([`Cache::commit_before`]); one up to a record at or before it need
    /// not: replay from there applies every change the block holds.
    pub(crate) since: u64,
    /// The log slot (`format/log.rs`, `Geometry`) holding the record of
    /// this block that its contents start from, if one does: the block's
    /// own record for a [`Contents::Logged`] block in a slot, and a block
    /// made from one in memory by writes of part of it keeps it. The slot
    /// is in use while a cached block names it: replay needs its record
    /// until a CP commits the block or a later record replaces it whole.
    pub(crate) slot: Option<u32>,
}

impl Block {
    fn new(since: u64, flags: kernel::alloc::Flags) -> Result<Self> {
        Ok(Self {
            data: Contents::Ram(bytes::zeroed(BLOCK_SIZE, flags)?),
            valid: 0,
            since,
            slot: None,
        })
    }

    /// A copy in memory, whatever this block's contents are, as the dirty
    /// version of a committing block that the record `since` changes.
    fn copy_in_ram(
        &self,
        since: u64,
        read: ReadLog<'_>,
        flags: kernel::alloc::Flags,
    ) -> Result<Self> {
        let data = match &self.data {
            Contents::Ram(d) => {
                let mut data = KVec::with_capacity(BLOCK_SIZE, flags)?;
                bytes::extend(&mut data, d, flags)?;
                data
            }
            Contents::Logged(l) => {
                let mut data = bytes::zeroed(BLOCK_SIZE, flags)?;
                read(l.at, &mut data)?;
                data
            }
        };
        // The committing block keeps its slot until its CP ends, and
        // replay needs it no longer after.
        Ok(Self {
            data: Contents::Ram(data),
            valid: self.valid,
            since,
            slot: None,
        })
    }

    /// Whether every sector is valid.
    pub(crate) fn is_full(&self) -> bool {
        self.valid == ALL_VALID
    }

    /// Whether the block is held in memory.
    pub(crate) fn in_ram(&self) -> bool {
        matches!(self.data, Contents::Ram(_))
    }

    /// Lays the block's valid sectors over `buf` (a whole block): all of
    /// it for a full block.
    pub(crate) fn overlay(&self, buf: &mut [u8], read: ReadLog<'_>) -> Result {
        match &self.data {
            Contents::Logged(l) => read(l.at, buf.get_mut(..BLOCK_SIZE).ok_or(EINVAL)?),
            Contents::Ram(d) => {
                for s in 0..SECTORS as usize {
                    if self.valid & (1 << s) != 0 {
                        let r = s * 512..(s + 1) * 512;
                        if let (Some(dst), Some(src)) = (buf.get_mut(r.clone()), d.get(r)) {
                            dst.copy_from_slice(src);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Fills the sectors not valid here from `old`, the block's contents on
    /// the array; the block is then full.
    pub(crate) fn merge_under(&mut self, old: &[u8]) {
        match &mut self.data {
            Contents::Ram(d) => merge(d, &mut self.valid, old),
            Contents::Logged(_) => self.valid = ALL_VALID,
        }
    }
}

/// Fills the sectors of `data` not marked in `valid` from `old`; all are
/// valid then.
fn merge(data: &mut [u8], valid: &mut u8, old: &[u8]) {
    for s in 0..SECTORS as usize {
        if *valid & (1 << s) == 0 {
            let r = s * 512..(s + 1) * 512;
            if let (Some(dst), Some(o)) = (data.get_mut(r.clone()), old.get(r)) {
                dst.copy_from_slice(o);
            }
        }
    }
    *valid = ALL_VALID;
}

/// The dirty and committing sets.
///
/// # Invariants
///
/// A committing block's `data` is neither changed nor freed from when it
/// becomes committing ([`Cache::begin_commit`], [`Cache::commit_before`])
/// to [`Cache::end_commit`], except through
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
    /// Blocks in both sets held in memory ([`Contents::Ram`]).
    ram: usize,
    /// Blocks in `committing` held in memory.
    committing_ram: usize,
    /// At most the oldest `since` of the dirty blocks held in memory
    /// (`u64::MAX` if there are none): a CP that frees the log up to a
    /// record after it cannot commit them as replay would redo it
    /// ([`Self::ram_since`]).
    ram_since: u64,
    /// The record up to which a CP is taking its blocks, while it is
    /// ([`Self::begin_commit_before`]).
    splitting: Option<u64>,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Self {
            dirty: RBTree::new(),
            committing: RBTree::new(),
            blocks: 0,
            committing_blocks: 0,
            ram: 0,
            committing_ram: 0,
            ram_since: u64::MAX,
            splitting: None,
        }
    }

    /// Blocks held, dirty and committing.
    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }

    /// Blocks held in memory, dirty and committing: what `cache_max_mb`
    /// bounds.
    pub(crate) fn ram_blocks(&self) -> usize {
        self.ram
    }

    /// Whether nothing is dirty.
    pub(crate) fn is_clean(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Whether `block` is in the dirty set.
    pub(crate) fn is_dirty(&self, block: u64) -> bool {
        self.dirty.get(&block).is_some()
    }

    /// The newest cached version of `block`, if any.
    pub(crate) fn get(&self, block: u64) -> Option<&Block> {
        self.dirty
            .get(&block)
            .or_else(|| self.committing.get(&block))
    }

    /// The dirty version of `block`, in memory, for a change by the record
    /// `seq`: made from its committing version or new (no sector valid) if
    /// it is not dirty, read from the log if it is there. Returns its bytes
    /// and `valid`.
    fn dirty_ram(
        &mut self,
        block: u64,
        seq: u64,
        read: ReadLog<'_>,
        flags: kernel::alloc::Flags,
    ) -> Result<(&mut KVec<u8>, &mut u8)> {
        // A logged block that the CP being started takes
        // ([`Self::commit_before`]) goes to it as it is, before it changes:
        // the change goes to a copy, as for any committing block.
        if let Some(upto) = self.splitting {
            if self
                .dirty
                .get(&block)
                .is_some_and(|b| b.since < upto && !b.in_ram())
            {
                self.take(block);
            }
        }
        let since = match self.dirty.get_mut(&block) {
            Some(b) => {
                // Records come in log order, so this changes nothing but
                // for a LOAD's record arriving ahead of an earlier MODIFY.
                b.since = b.since.min(seq);
                if let Contents::Logged(l) = b.data {
                    let mut data = bytes::zeroed(BLOCK_SIZE, flags)?;
                    read(l.at, &mut data)?;
                    b.data = Contents::Ram(data);
                    self.ram += 1;
                }
                b.since
            }
            None => {
                let b = match self.committing.get(&block) {
                    Some(c) => c.copy_in_ram(seq, read, flags)?,
                    None => Block::new(seq, flags)?,
                };
                self.dirty.try_create_and_insert(block, b, flags)?;
                self.blocks += 1;
                self.ram += 1;
                seq
            }
        };
        self.ram_since = self.ram_since.min(since);
        match self.dirty.get_mut(&block) {
            Some(Block {
                data: Contents::Ram(d),
                valid,
                ..
            }) => Ok((d, valid)),
            _ => Err(ENOMEM),
        }
    }

    /// Makes sure dirty `block` is in memory (so that a later
    /// [`Self::apply_in_block`] of it by the record `seq` allocates nothing
    /// and reads nothing).
    pub(crate) fn prepare_ram(
        &mut self,
        block: u64,
        seq: u64,
        read: ReadLog<'_>,
        flags: kernel::alloc::Flags,
    ) -> Result {
        self.dirty_ram(block, seq, read, flags).map(|_| ())
    }

    /// Applies the record `seq`'s `data` (whole sectors) at `sector`;
    /// `None` writes zeroes over `nr_sectors` sectors.
    pub(crate) fn apply(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        data: Option<&[u8]>,
        seq: u64,
        read: ReadLog<'_>,
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
            self.apply_in_block(s, n, seq, read, flags, |dst| {
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
    /// new contents (the record `seq`'s) `fill` writes into the cached
    /// block (in memory): replay's MODIFY and the write path read a record
    /// from the pmem straight into its block so. If `fill` fails, no sector
    /// of the block changes state.
    pub(crate) fn apply_in_block<F>(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        seq: u64,
        read: ReadLog<'_>,
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
        let (data, valid) = self.dirty_ram(sector / SECTORS, seq, read, flags)?;
        fill(data.get_mut(first * 512..(first + n) * 512).ok_or(EINVAL)?)?;
        for i in first..first + n {
            *valid |= 1 << i;
        }
        Ok(())
    }

    /// Puts `b` in the dirty set as `block`, replacing the dirty version if
    /// there is one, else in the node `spare` holds (allocated with `flags`
    /// if it holds none).
    fn put(
        &mut self,
        block: u64,
        b: Block,
        spare: &mut Option<Spare>,
        flags: kernel::alloc::Flags,
    ) -> Result<Option<u32>> {
        let in_ram = b.in_ram();
        if let Some(d) = self.dirty.get_mut(&block) {
            let was_in_ram = d.in_ram();
            let old = core::mem::replace(d, b).slot;
            match (was_in_ram, in_ram) {
                (true, false) => self.ram -= 1,
                (false, true) => self.ram += 1,
                _ => {}
            }
            if self.ram == self.committing_ram {
                self.ram_since = u64::MAX;
            }
            return Ok(old);
        }
        let node = match spare.take() {
            Some(s) => s,
            None => Spare::new(flags)?,
        };
        self.dirty.insert(node.into_node(block, b));
        self.blocks += 1;
        if in_ram {
            self.ram += 1;
        }
        Ok(None)
    }

    /// Makes dirty `block` the whole block whose bytes are at log offset
    /// `at`, in the record `seq` (the write path's record of it). A new
    /// dirty block takes its tree node from `spare` if there is one there,
    /// else allocates it with `flags`: the write path allocates them before
    /// it appends, so that this cannot fail once the record is in the log.
    ///
    /// Returns the slot the dirty version it replaces named, if it named
    /// one: free now, as the new record replaces the whole block.
    pub(crate) fn put_logged(
        &mut self,
        block: u64,
        at_seq: (u64, u64),
        spare: &mut Option<Spare>,
        flags: kernel::alloc::Flags,
    ) -> Result<Option<u32>> {
        self.put_in_slot(block, at_seq, None, spare, flags)
    }

    /// [`Self::put_logged`] of a record in log slot `slot` (its data at
    /// `at`), if it is in one.
    pub(crate) fn put_in_slot(
        &mut self,
        block: u64,
        (at, seq): (u64, u64),
        slot: Option<u32>,
        spare: &mut Option<Spare>,
        flags: kernel::alloc::Flags,
    ) -> Result<Option<u32>> {
        // The record replaces the whole block: no older change is needed.
        let b = Block {
            data: Contents::Logged(Logged {
                at,
                seq,
                crc0: None,
            }),
            valid: ALL_VALID,
            since: seq,
            slot,
        };
        self.put(block, b, spare, flags)
    }

    /// The slots the cached blocks name (dirty and committing), in no
    /// order: those in use.
    pub(crate) fn slots_in_use(&self) -> impl Iterator<Item = u32> + '_ {
        Iterator::chain(self.dirty.values(), self.committing.values()).filter_map(|b| b.slot)
    }

    /// Records `crc0`, `crc32c(0, data)` of the record data at `at` of
    /// record `seq`, for dirty `block` if it still is that record's: the CP
    /// then makes its table entry from it. Returns whether it was recorded.
    /// A block that is committing is not changed (the CP checksums it).
    pub(crate) fn set_logged_crc0(&mut self, block: u64, (at, seq): (u64, u64), crc0: u32) -> bool {
        match self.dirty.get_mut(&block) {
            Some(Block {
                data: Contents::Logged(l),
                ..
            }) if (l.at, l.seq) == (at, seq) => {
                l.crc0 = Some(crc0);
                true
            }
            _ => false,
        }
    }

    /// Whether dirty `block` is the record `seq`'s data at `at`, not yet
    /// checksummed.
    pub(crate) fn wants_crc0(&self, block: u64, (at, seq): (u64, u64)) -> bool {
        matches!(
            self.dirty.get(&block),
            Some(Block { data: Contents::Logged(l), .. }) if (l.at, l.seq, l.crc0) == (at, seq, None)
        )
    }

    /// Gives `block` its old contents `old` (from the array), under what is
    /// already cached of it: replay's LOAD of a block the record `seq`
    /// changes in part.
    pub(crate) fn load_base(
        &mut self,
        block: u64,
        old: &[u8],
        seq: u64,
        read: ReadLog<'_>,
        flags: kernel::alloc::Flags,
    ) -> Result {
        let (data, valid) = self.dirty_ram(block, seq, read, flags)?;
        merge(data, valid, old);
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
        self.committing_ram = self.ram;
        self.ram_since = u64::MAX;
        Ok(())
    }

    /// A record no dirty block in memory holds a change older than (a
    /// bound, not exact: `u64::MAX` if none is in memory). A CP may free
    /// the log only up to a record at or before it: a block in memory with
    /// changes on both sides of the CP's target could be committed neither
    /// as it is (replay's redo of the CP, should a crash cut it short,
    /// would give it other contents, `room.rs`) nor left out (its older
    /// changes would be lost).
    pub(crate) fn ram_since(&self) -> u64 {
        self.ram_since
    }

    /// Starts a CP that frees the log only up to the record `upto` (a
    /// sequence number, at most [`Self::ram_since`]): [`Self::commit_before`]
    /// then takes its blocks. `EBUSY` if a CP is still committing.
    pub(crate) fn begin_commit_before(&mut self, upto: u64) -> Result {
        if !self.committing.is_empty() {
            return Err(EBUSY);
        }
        self.splitting = Some(upto);
        Ok(())
    }

    /// Goes on with the CP [`Self::begin_commit_before`] started: moves
    /// the dirty blocks that hold a change of a record before its `upto`
    /// ([`Block::since`]: blocks cached in the log, at most one record
    /// each) to the committing set, among [`COMMIT_STEP`] dirty blocks at
    /// most from block `from` on; the others stay dirty. Returns the block
    /// to go on from, `None` once every dirty block has been looked at and
    /// the set is whole. Nothing is allocated: a block moves with its tree
    /// node.
    ///
    /// The caller lets go of the state lock between calls. A block changed
    /// meanwhile (by a record at or after `upto`, as every record since
    /// the CP began is) keeps its `since` if it is written in part, and is
    /// then taken first, as it is ([`Self::dirty_ram`]); written whole, it
    /// takes that record's `since`, and no change of it before `upto` is
    /// needed any more.
    pub(crate) fn commit_before(&mut self, from: u64) -> Option<u64> {
        let upto = self.splitting?;
        // The blocks to move.
        let mut moving = [0u64; COMMIT_STEP];
        let mut n = 0usize;
        let mut next = None;
        if let Some(mut cur) = self.dirty.cursor_lower_bound_mut(&from) {
            let mut seen = 0usize;
            loop {
                let (&block, b) = cur.current();
                if seen == COMMIT_STEP {
                    next = Some(block);
                    break;
                }
                seen += 1;
                if b.since < upto {
                    if let Some(m) = moving.get_mut(n) {
                        *m = block;
                        n += 1;
                    }
                }
                cur = match cur.move_next() {
                    Some(c) => c,
                    None => break,
                };
            }
        }
        for &block in moving.iter().take(n) {
            self.take(block);
        }
        if next.is_none() {
            self.splitting = None;
        }
        next
    }

    /// Moves dirty `block` to the committing set, with its tree node.
    fn take(&mut self, block: u64) {
        let in_ram = self.dirty.get(&block).is_some_and(|b| b.in_ram());
        if let Some(node) = self.dirty.remove_node(&block) {
            // Not committing: a block is taken once, and its dirty version
            // is made only after that.
            let _ = self.committing.insert(node);
            self.committing_blocks += 1;
            if in_ram {
                self.committing_ram += 1;
            }
        }
    }

    /// Up to `max` committing blocks from `from` on whose numbers follow each
    /// other, as `(first block, count)`, calling `each` on every block of
    /// the run in order, in one walk of the tree (a CP gathers its runs so,
    /// under the state lock, rather than by a lookup a block). Stops at the
    /// first error `each` returns.
    pub(crate) fn each_committing_run(
        &mut self,
        from: u64,
        max: usize,
        mut each: impl FnMut(&Block) -> Result,
    ) -> Result<Option<(u64, usize)>> {
        let Some(mut cur) = self.committing.cursor_lower_bound_mut(&from) else {
            return Ok(None);
        };
        let first = *cur.current().0;
        let mut n = 0usize;
        loop {
            each(cur.current().1)?;
            n += 1;
            if n >= max || cur.peek_next().map(|(k, _)| *k) != Some(first + n as u64) {
                return Ok(Some((first, n)));
            }
            cur = match cur.move_next() {
                Some(c) => c,
                None => return Ok(Some((first, n))),
            };
        }
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
        self.ram -= self.committing_ram;
        self.committing_ram = 0;
        core::mem::replace(&mut self.committing, RBTree::new())
    }
}

#[kernel::prelude::kunit_tests(swarmlog_cache)]
mod tests {
    use super::*;

    /// A reader for caches that hold nothing logged.
    fn no_log(_: u64, _: &mut [u8]) -> Result {
        Err(EIO)
    }

    /// A cached block's bytes in memory (empty for a logged one).
    fn ram(b: &Block) -> &[u8] {
        match &b.data {
            Contents::Ram(d) => d,
            Contents::Logged(_) => &[],
        }
    }

    #[test]
    fn partial_writes_track_sectors() -> Result {
        let mut c = Cache::new();
        // Sectors 6..10 straddle blocks 0 and 1.
        c.apply(6, 4, Some(&[7u8; 2048]), 1, &no_log, GFP_KERNEL)?;
        assert_eq!((c.blocks(), c.ram_blocks()), (2, 2));
        assert_eq!(c.get(0).map(|b| b.valid), Some(0b1100_0000));
        assert_eq!(c.get(1).map(|b| b.valid), Some(0b0000_0011));
        assert_eq!(c.get(1).and_then(|b| ram(b).get(1023).copied()), Some(7));
        c.apply(8, 8, None, 1, &no_log, GFP_KERNEL)?;
        assert!(c
            .get(1)
            .is_some_and(|b| b.is_full() && ram(b).iter().all(|&x| x == 0)));
        assert!(c
            .apply(0, 2, Some(&[0; 512]), 1, &no_log, GFP_KERNEL)
            .is_err());
        Ok(())
    }

    #[test]
    fn apply_in_block_fills_one_block() -> Result {
        let mut a = Cache::new();
        let mut b = Cache::new();
        a.apply(9, 3, Some(&[5u8; 1536]), 1, &no_log, GFP_KERNEL)?;
        b.apply_in_block(9, 3, 1, &no_log, GFP_KERNEL, |dst| {
            dst.fill(5);
            Ok(())
        })?;
        let (x, y) = (a.get(1).ok_or(EINVAL)?, b.get(1).ok_or(EINVAL)?);
        assert_eq!((x.valid, ram(x)), (y.valid, ram(y)));
        assert_eq!(y.valid, 0b0000_1110);
        // Not within one block, or nothing: refused.
        let nothing = |_: &mut [u8]| Ok(());
        assert_eq!(
            b.apply_in_block(6, 4, 1, &no_log, GFP_KERNEL, nothing),
            Err(EINVAL)
        );
        assert_eq!(
            b.apply_in_block(8, 0, 1, &no_log, GFP_KERNEL, nothing),
            Err(EINVAL)
        );
        // A fill that fails leaves the block's sectors as they were.
        assert_eq!(
            b.apply_in_block(8, 8, 1, &no_log, GFP_KERNEL, |dst| {
                dst.fill(9);
                Err(EIO)
            }),
            Err(EIO)
        );
        assert_eq!(b.get(1).map(|c| c.valid), Some(0b0000_1110));
        Ok(())
    }

    #[test]
    fn logged_blocks_are_read_from_the_log() -> Result {
        // A log of three blocks: block k holds the byte 10 + k.
        let mut log = KVec::new();
        for k in 0..3u8 {
            for _ in 0..BLOCK_SIZE {
                log.push(10 + k, GFP_KERNEL)?;
            }
        }
        let read = |at: u64, buf: &mut [u8]| -> Result {
            let at = usize::try_from(at)?;
            buf.copy_from_slice(log.get(at..at + buf.len()).ok_or(ERANGE)?);
            Ok(())
        };
        let mut c = Cache::new();
        let mut spare = Some(Spare::new(GFP_KERNEL)?);
        c.put_logged(5, (0, 1), &mut spare, GFP_KERNEL)?;
        assert!(spare.is_none());
        c.put_logged(6, (4096, 2), &mut None, GFP_KERNEL)?;
        // Logged blocks are cached, full, and not in memory.
        assert_eq!((c.blocks(), c.ram_blocks()), (2, 0));
        let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
        let b5 = c.get(5).ok_or(EINVAL)?;
        assert!(b5.is_full() && !b5.in_ram());
        b5.overlay(&mut buf, &read)?;
        assert!(buf.iter().all(|&x| x == 10));
        // A write in part of a logged block brings it into memory from the
        // log, under the new sectors.
        c.apply(6 * 8 + 1, 1, Some(&[1u8; 512]), 1, &read, GFP_KERNEL)?;
        assert_eq!(c.ram_blocks(), 1);
        let b6 = c.get(6).ok_or(EINVAL)?;
        assert!(b6.is_full() && b6.in_ram());
        assert_eq!(ram(b6).first().copied(), Some(11));
        assert_eq!(ram(b6).get(512).copied(), Some(1));
        assert_eq!(ram(b6).get(1024).copied(), Some(11));
        // A whole write over a block in memory makes it logged again; a
        // block dirty already keeps its node: the spare is left.
        let mut spare = Some(Spare::new(GFP_KERNEL)?);
        c.put_logged(6, (8192, 3), &mut spare, GFP_KERNEL)?;
        assert!(spare.is_some());
        assert_eq!((c.blocks(), c.ram_blocks()), (2, 0));
        // During a CP: a write in part of a logged committing block goes to
        // a copy in memory; the committing one stays logged.
        c.begin_commit()?;
        c.apply(5 * 8, 1, Some(&[2u8; 512]), 1, &read, GFP_KERNEL)?;
        assert!(c.committing(5).is_some_and(|b| !b.in_ram()));
        let b5 = c.get(5).ok_or(EINVAL)?;
        assert_eq!(ram(b5).first().copied(), Some(2));
        assert_eq!(ram(b5).get(512).copied(), Some(10));
        assert_eq!((c.blocks(), c.ram_blocks()), (3, 1));
        drop(c.end_commit());
        assert_eq!((c.blocks(), c.ram_blocks()), (1, 1));
        // A partly written block in memory lays only its sectors over.
        buf.fill(0);
        c.get(5).ok_or(EINVAL)?.overlay(&mut buf, &read)?;
        assert_eq!(buf.first().copied(), Some(2));
        // A log that cannot be read: the block stays as it was.
        c.put_logged(7, (0, 4), &mut None, GFP_KERNEL)?;
        assert_eq!(
            c.apply(7 * 8, 1, Some(&[3u8; 512]), 1, &no_log, GFP_KERNEL),
            Err(EIO)
        );
        assert!(c.get(7).is_some_and(|b| !b.in_ram()));
        Ok(())
    }

    #[test]
    fn a_logged_blocks_checksum_is_kept_for_its_record_only() -> Result {
        let mut c = Cache::new();
        c.put_logged(5, (4096, 7), &mut None, GFP_KERNEL)?;
        assert!(c.wants_crc0(5, (4096, 7)));
        // Another record (a later lap at the same offset), another block,
        // or a block not cached: refused.
        assert!(!c.set_logged_crc0(5, (4096, 8), 1));
        assert!(!c.set_logged_crc0(6, (4096, 7), 1));
        assert!(c.wants_crc0(5, (4096, 7)));
        assert!(c.set_logged_crc0(5, (4096, 7), 0x1234));
        assert!(!c.wants_crc0(5, (4096, 7)));
        let crc = |c: &Cache, b: u64| match c.get(b).map(|b| &b.data) {
            Some(Contents::Logged(l)) => l.crc0,
            _ => None,
        };
        assert_eq!(crc(&c, 5), Some(0x1234));
        // Written again: the new record's block has none.
        c.put_logged(5, (8192, 9), &mut None, GFP_KERNEL)?;
        assert_eq!(crc(&c, 5), None);
        // Committing blocks are the CP's: not changed.
        c.begin_commit()?;
        assert!(!c.wants_crc0(5, (8192, 9)));
        assert!(!c.set_logged_crc0(5, (8192, 9), 1));
        assert_eq!(crc(&c, 5), None);
        Ok(())
    }

    #[test]
    fn merge_fills_missing_sectors() -> Result {
        let mut c = Cache::new();
        c.apply(1, 1, Some(&[9u8; 512]), 1, &no_log, GFP_KERNEL)?;
        c.begin_commit()?;
        let old = [3u8; BLOCK_SIZE];
        let b = c.committing_mut(0).ok_or(EINVAL)?;
        b.merge_under(&old);
        assert!(b.is_full());
        assert_eq!(ram(b).first().copied(), Some(3));
        assert_eq!(ram(b).get(512).copied(), Some(9));
        assert_eq!(ram(b).get(1024).copied(), Some(3));
        Ok(())
    }

    #[test]
    fn commit_is_copy_on_write() -> Result {
        let mut c = Cache::new();
        c.apply(0, 8, Some(&[1u8; 4096]), 1, &no_log, GFP_KERNEL)?;
        c.apply(16, 8, Some(&[2u8; 4096]), 1, &no_log, GFP_KERNEL)?;
        c.apply(40, 8, Some(&[4u8; 4096]), 1, &no_log, GFP_KERNEL)?;
        c.begin_commit()?;
        assert!(c.is_clean());
        assert_eq!(c.begin_commit(), Err(EBUSY));
        // A write during the CP lands on a copy; the committing one stays.
        c.apply(16, 1, Some(&[5u8; 512]), 1, &no_log, GFP_KERNEL)?;
        assert_eq!(c.get(2).and_then(|b| ram(b).first().copied()), Some(5));
        assert_eq!(
            c.committing(2).and_then(|b| ram(b).first().copied()),
            Some(2)
        );
        assert_eq!(c.get(2).map(|b| b.valid), Some(ALL_VALID));
        assert_eq!(c.each_committing_run(0, 8, |_| Ok(()))?, Some((0, 1)));
        assert_eq!(c.each_committing_run(1, 8, |_| Ok(()))?, Some((2, 1)));
        assert_eq!(c.each_committing_run(3, 8, |_| Ok(()))?, Some((5, 1)));
        assert_eq!(c.each_committing_run(6, 8, |_| Ok(()))?, None);
        drop(c.end_commit());
        assert_eq!((c.blocks(), c.ram_blocks()), (1, 1));
        assert!(c.committing(0).is_none());
        assert!(c.get(2).is_some());
        Ok(())
    }

    #[test]
    fn a_cp_of_the_oldest_records_takes_the_blocks_they_changed() -> Result {
        let read = |_: u64, b: &mut [u8]| {
            b.fill(0);
            Ok(())
        };
        let since = |c: &Cache, b: u64| c.get(b).map(|b| b.since);
        let mut c = Cache::new();
        // Records 1 to 7: block 1 whole (1) and whole again (4); block 2 in
        // part (2), then whole (5); block 3 whole (3); block 4 in part (6);
        // block 5 whole (7).
        c.put_logged(1, (0, 1), &mut None, GFP_KERNEL)?;
        c.apply(2 * 8 + 1, 1, Some(&[2u8; 512]), 2, &read, GFP_KERNEL)?;
        assert_eq!(c.ram_since(), 2);
        c.put_logged(3, (4096, 3), &mut None, GFP_KERNEL)?;
        c.put_logged(1, (8192, 4), &mut None, GFP_KERNEL)?;
        c.put_logged(2, (12288, 5), &mut None, GFP_KERNEL)?;
        // No block in memory: no bound.
        assert_eq!(c.ram_since(), u64::MAX);
        c.apply(4 * 8 + 7, 1, Some(&[6u8; 512]), 6, &read, GFP_KERNEL)?;
        c.put_logged(5, (16384, 7), &mut None, GFP_KERNEL)?;
        // A record written whole dates the block anew; one in part keeps
        // the older date.
        let dates = [1u64, 2, 3, 4, 5].map(|b| since(&c, b));
        assert_eq!(dates, [Some(4), Some(5), Some(3), Some(6), Some(7)]);
        assert_eq!(c.ram_since(), 6);
        // A CP up to record 5 takes the blocks changed by records 1 to 4
        // and not replaced whole since: 1 (4) and 3 (3). Block 3, written
        // in part before the CP looked at it, goes to it as it was, and
        // the change to a copy dated by its record.
        c.begin_commit_before(5)?;
        c.apply(3 * 8 + 7, 1, Some(&[8u8; 512]), 8, &read, GFP_KERNEL)?;
        assert!(c.committing(3).is_some_and(|b| !b.in_ram()));
        assert_eq!(since(&c, 3), Some(8));
        assert_eq!(c.commit_before(0), None);
        assert!(c.committing(1).is_some() && !c.is_dirty(1));
        assert!([2u64, 4, 5]
            .iter()
            .all(|&b| c.is_dirty(b) && c.committing(b).is_none()));
        assert_eq!((c.blocks(), c.ram_blocks()), (6, 2));
        assert_eq!(c.begin_commit_before(9), Err(EBUSY));
        drop(c.end_commit());
        assert_eq!((c.blocks(), c.ram_blocks()), (4, 2));
        assert!(c.get(1).is_none());

        // Many blocks, a few at a time, with writes between the calls.
        let mut c = Cache::new();
        for b in 1..=200u64 {
            c.put_logged(b, (b * 4096, b), &mut None, GFP_KERNEL)?;
        }
        c.begin_commit_before(150)?;
        let mut from = Some(0u64);
        let mut calls = 0;
        while let Some(f) = from {
            from = c.commit_before(f);
            calls += 1;
            if calls == 1 {
                // Block 10 was looked at and taken: written whole again,
                // it is dirty anew. Block 199 was not looked at yet: a
                // whole write keeps it dirty. Block 120, neither yet: a
                // write in part takes it first, as it was.
                assert!(c.committing(10).is_some());
                c.put_logged(10, (0, 201), &mut None, GFP_KERNEL)?;
                c.put_logged(199, (0, 202), &mut None, GFP_KERNEL)?;
                c.apply(120 * 8, 1, Some(&[1u8; 512]), 203, &read, GFP_KERNEL)?;
            }
        }
        assert!(calls >= 200 / COMMIT_STEP);
        assert_eq!(c.commit_before(0), None);
        assert!((1..150u64).all(|b| c.committing(b).is_some_and(|b| !b.in_ram())));
        assert!((150..=200u64).all(|b| c.committing(b).is_none() && c.is_dirty(b)));
        assert_eq!((since(&c, 10), since(&c, 120)), (Some(201), Some(203)));
        assert_eq!((c.blocks(), c.ram_blocks()), (202, 1));
        drop(c.end_commit());
        assert_eq!((c.blocks(), c.ram_blocks()), (53, 1));
        Ok(())
    }

    #[test]
    fn block_pieces_cut_at_blocks() -> Result {
        // Sectors 4..20: half of block 0, all of block 1, half of block 2.
        let mut n = 0;
        for (block, range, whole) in block_pieces(4, 16) {
            assert_eq!(whole, block == 1);
            assert_eq!(range.len(), if whole { 4096 } else { 2048 });
            assert_eq!(range.start, [0, 2048, 6144][n]);
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(block_pieces(8, 0).count(), 0);
        assert_eq!(block_pieces(u64::MAX - 1, 8).count(), 1);
        Ok(())
    }

    #[test]
    fn runs_are_contiguous() -> Result {
        let mut c = Cache::new();
        c.apply(0, 8 * 5, None, 1, &no_log, GFP_KERNEL)?;
        c.apply(8 * 9, 8, None, 1, &no_log, GFP_KERNEL)?;
        c.begin_commit()?;
        assert_eq!(c.each_committing_run(0, 3, |_| Ok(()))?, Some((0, 3)));
        assert_eq!(c.each_committing_run(3, 64, |_| Ok(()))?, Some((3, 2)));
        assert_eq!(c.each_committing_run(5, 64, |_| Ok(()))?, Some((9, 1)));
        assert_eq!(c.each_committing_run(10, 64, |_| Ok(()))?, None);
        // Each block of the run, in order; an error stops the walk.
        let mut seen = 0;
        c.each_committing_run(1, 64, |b| {
            seen += 1;
            assert!(b.is_full());
            Ok(())
        })?;
        assert_eq!(seen, 4);
        let r = c.each_committing_run(0, 64, |_| {
            seen += 1;
            if seen == 6 {
                return Err(EIO);
            }
            Ok(())
        });
        assert_eq!((r, seen), (Err(EIO), 6));
        Ok(())
    }
}
