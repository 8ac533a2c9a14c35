// SPDX-License-Identifier: GPL-2.0

//! The narrow interface replay drives: what a message's LOAD has to read
//! and its reading, the MODIFY of a logged record into the cache, and the
//! commit of what is replayed so far. Replay never sees [`Core`]'s state;
//! the reads here know they are replaying (a block a CP cut short by the
//! crash rewrote is proved by that CP's pending table copy, see
//! [`Core::read_array_block_as`]).

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

use super::cache::SECTORS;
use super::log::{Log, Position};
use super::{Array, Core};
use crate::format::array::BLOCK_SIZE;
use crate::format::log::Op;
use crate::sys::bytes;
use crate::sys::dax::Media;

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// The log, for replay's scan and its reads of records' data.
    pub(crate) fn log(&self) -> &Log<M> {
        &self.log
    }

    /// Data blocks the volume exposes.
    pub(crate) fn data_blocks(&self) -> u64 {
        self.layout.data_blocks
    }

    /// Most blocks the volume holds in memory before it must commit.
    pub(crate) fn cache_limit(&self) -> usize {
        self.limits.cache_blocks
    }

    /// Blocks held in memory now: cached data blocks (not those cached as
    /// pointers into the log) and table blocks.
    pub(crate) fn cached_blocks(&self) -> usize {
        let st = self.state.lock();
        st.cache.ram_blocks() + st.tables.count()
    }

    /// Blocks replay read that matched their entry in the pending table
    /// copy of a CP the crash cut short (see [`Core::read_array_block_as`]).
    pub(crate) fn replay_pending_verified(&self) -> u64 {
        self.stats.replay_pending_verified.load(Relaxed)
    }

    /// The target of the CP the crash cut short, if one was (its intent,
    /// `Log::cp_intent`): replay takes no CP before it has replayed every
    /// record before it, and then one exactly there.
    pub(crate) fn interrupted_cp(&self) -> Option<Position> {
        self.interrupted
    }

    /// Whether a message changing `partial` in part (and other blocks
    /// whole) needs a LOAD: the old contents of a block changed in part
    /// that the cache does not hold whole, proved by its table block. A
    /// block the record writes whole needs nothing from the array: the
    /// record holds all of it, and its table block is loaded by the CP
    /// that writes it back, as after any write (`cp.rs`). So a record of
    /// whole blocks needs no LOAD, and replay learns that the array cannot
    /// serve a block only where it reads one; a CP that cannot load a
    /// table fails and keeps the log, as it does for a write made after
    /// the volume appeared (design.rst, "Replay").
    pub(crate) fn needs_load(&self, partial: [Option<u64>; 2]) -> Result<bool> {
        // Whole blocks only (most records): nothing to look up.
        if partial.iter().all(Option::is_none) {
            return Ok(false);
        }
        let st = self.state.lock();
        let mut reads = false;
        for b in partial.into_iter().flatten() {
            self.layout.entry_of(b).ok_or(ENXIO)?;
            reads |= !st.cache.get(b).is_some_and(|c| c.is_full());
        }
        Ok(reads)
    }

    /// LOAD: the old contents of the blocks changed in part (`partial`)
    /// that the cache does not hold whole, proved by their table blocks
    /// (read and cached on the way, [`Core::read_array_block_as`]).
    pub(crate) fn load(&self, seq: u64, partial: [Option<u64>; 2]) -> Result {
        // Allocated only when a block is read.
        let mut buf = KVec::new();
        for b in partial.into_iter().flatten() {
            if self.state.lock().cache.get(b).is_some_and(|c| c.is_full()) {
                continue;
            }
            bytes::resize_zeroed(&mut buf, BLOCK_SIZE, GFP_KERNEL)?;
            self.read_array_block_as(b, &mut buf, true)?;
            let read = |at: u64, b: &mut [u8]| self.log.read(at, b);
            self.state
                .lock()
                .cache
                .load_base(b, &buf, seq, &read, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// MODIFY of a record that writes one whole block: the block is cached
    /// as the record's data in the log, at `at`, of record `seq`.
    pub(crate) fn modify_whole_logged(&self, block: u64, (at, seq): (u64, u64)) -> Result {
        // A record in a slot keeps its slot in use (the free slots are
        // made once replay is done: `Self::replayed_through`).
        let slot = self.log.geometry().slot_at(at);
        self.state
            .lock()
            .cache
            .put_in_slot(block, (at, seq), slot, &mut None, GFP_KERNEL)
            .map(|_| ())
    }

    /// MODIFY of the record `seq`, `op` of `nr` sectors at `sector`, whose
    /// data is at `data_at` in the log (none for a discard or write-zeroes);
    /// `scratch` holds data that spans blocks on its way to the cache.
    pub(crate) fn modify_logged(
        &self,
        (op, sector, nr): (Op, u64, u64),
        (data_at, seq): (u64, u64),
        scratch: &mut [u8],
    ) -> Result {
        let read = |at: u64, b: &mut [u8]| self.log.read(at, b);
        if op != Op::Write {
            return self
                .state
                .lock()
                .cache
                .apply(sector, nr, None, seq, &read, GFP_KERNEL);
        }
        if sector % SECTORS + nr <= SECTORS {
            // One block (most records): read from the log straight into the
            // cached block, not through a buffer.
            let mut st = self.state.lock();
            let log = &self.log;
            return st
                .cache
                .apply_in_block(sector, nr, seq, &read, GFP_KERNEL, |dst| {
                    log.read(data_at, dst)
                });
        }
        let len = usize::try_from(nr * 512)?;
        let buf = scratch.get_mut(..len).ok_or(EINVAL)?;
        self.log.read(data_at, buf)?;
        self.state
            .lock()
            .cache
            .apply(sector, nr, Some(buf), seq, &read, GFP_KERNEL)
    }

    /// Makes `pos` the log's head (nothing is in flight during replay).
    fn set_head(&self, pos: Position) {
        let mut st = self.state.lock();
        st.head = pos;
        st.reserved = pos;
    }

    /// Zeroes the in-flight window past `pos`, the valid end the replay
    /// found, before anything is appended there (`Log::erase_window`).
    pub(crate) fn erase_past(&self, pos: Position) -> Result {
        let tail = self.state.lock().tail;
        self.log.erase_window(&pos, &tail)
    }

    /// Makes `pos` the log's head: every record before it is replayed into
    /// the cache, and the next CP (asked for here) commits them.
    pub(crate) fn replayed_through(&self, pos: Position) -> Result {
        {
            let mut st = self.state.lock();
            st.head = pos;
            st.reserved = pos;
            st.kick = true;
        }
        self.free_unused_slots()?;
        self.changed.notify_all();
        Ok(())
    }

    /// Replay is done: every slot is free but those the cached blocks name
    /// (until now none was taken from the free slots).
    pub(crate) fn free_unused_slots(&self) -> Result {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        st.free_slots.rebuild(st.cache.slots_in_use())
    }

    /// Commits every record before `pos` (replayed into the cache) with a
    /// CP, which moves the log's CP marker there.
    pub(crate) fn commit_through(&self, pos: Position) -> Result {
        self.set_head(pos);
        self.checkpoint()
    }

    /// Writes back every record before `pos` (replayed into the cache) with
    /// a CP whose marker stays at `hold`, the first record replay skipped:
    /// the cache is emptied, the skipped record and everything after it
    /// stay in the log (`Core::checkpoint_holding`).
    pub(crate) fn write_back_holding(&self, pos: Position, hold: Position) -> Result {
        self.set_head(pos);
        self.checkpoint_holding(Some(hold))
    }
}
