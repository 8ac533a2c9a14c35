// SPDX-License-Identifier: GPL-2.0

//! Consistency points: commit every logged change to the array, then move
//! the CP marker in the log past them so their log space is reused.
//!
//! A CP takes the head of the log as its target and the dirty cache as its
//! committing set (or, to free only the oldest part of the log, a mark and
//! the dirty blocks that part needs: `room.rs`), then, without holding the
//! state lock across I/O:
//!
//! 1. completes the committing blocks written in part from the array and
//!    sets every committing block's table entry: from the checksum the CP
//!    loop made ahead (`sums.rs`), or computed here without the state lock
//!    (the committing blocks do not change), so writers never wait for it;
//! 2. writes its intent (generation, target) to the log, then every table
//!    block it changed to the copy that is not in force, sealed with the
//!    new CP generation (the *pending* copy), all in flight together, and
//!    flushes the array;
//! 3. writes the committing blocks to the array in runs of consecutive
//!    blocks (up to 1 MiB, in block order, 4 to 8 MiB of them in flight at
//!    once), each straight from the cached block's memory (no copy: the
//!    committing blocks do not change until the CP ends); a block the cache
//!    holds in the log is copied out of the pmem into a buffer of the batch
//!    that writes it;
//! 4. flushes the array;
//! 5. writes the CP marker (new generation, target) to the log and drains.
//!
//! Step 2 before step 3 makes a crash in the middle provable: every block
//! the array holds then matches its entry in force or, if this CP rewrote
//! it, its entry in the pending copy; replay takes nothing else
//! (`read.rs`), and redoes this CP exactly, up to its target, before
//! anything else (`replay/mod.rs`), so that the pending copies it leaves
//! stay true.
//!
//! Only then are the blocks dropped from the cache (and freed after the state
//! lock is let go) and the log space freed. The table blocks it changed stay
//! cached, clean (`tables.rs`).
//! Writes go on meanwhile into the new dirty set and free log space. A CP
//! that fails keeps its committing set and target, and the next one retries
//! them; the log keeps the data all along.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{alloc::KVVec, prelude::*};

use super::array::WriteBatch;
use super::cache::{Contents, SECTORS};
use super::log::Position;
use super::{Array, Core, CpFault};
use crate::format::array::{Entry, TableBlock, BLOCK_SIZE};
use crate::format::checksum::seeded;
use crate::sys::bytes;
use crate::sys::dax::Media;

/// Slots a CP gives back under one taking of the state lock when it ends:
/// a few microseconds of a writer's wait.
const SLOTS_A_LOCK: usize = 1024;
use crate::sys::ffi::Segment;
use crate::sys::noio::NoIo;

/// Data blocks a CP writes before it stalls (`CpFault::Stall`).
pub(crate) const STALL_BLOCKS: u64 = 64;

/// Blocks in one CP write: 1 MiB.
const RUN_BLOCKS: usize = 256;

/// Bytes of CP writes in flight at once, at most: two batches of half as
/// much; when one is full, the CP waits for the other's writes and goes on
/// into it, so that the array always has some.
const IN_FLIGHT_BYTES: usize = 8 << 20;

/// Bytes of logged blocks one batch copies out of the pmem at most: it is
/// swapped once it holds half of [`IN_FLIGHT_BYTES`], after a run.
const STAGE_BYTES: usize = IN_FLIGHT_BYTES / 2 + RUN_BLOCKS * BLOCK_SIZE;

/// The table entry of a whole block whose `crc32c(0, data)` is `crc0`,
/// written at `generation`; `None` if that is 0, which a block of zeroes
/// has (recorded as unwritten: [`entry_for`] tells).
fn entry_from_crc0(crc0: u32, generation: u64) -> Option<Entry> {
    (crc0 != 0).then(|| Entry {
        generation,
        crc: seeded(crc0, BLOCK_SIZE as u64),
    })
}

/// The table entry of a block holding `data` written at `generation`; a
/// block of zeroes is recorded as unwritten.
fn entry_for(data: &[u8], generation: u64) -> Entry {
    if data.iter().all(|&b| b == 0) {
        Entry::default()
    } else {
        Entry::for_data(data, generation)
    }
}

/// Where a CP frees the log up to.
#[derive(Clone, Copy)]
enum Aim {
    /// The head: the whole log.
    Whole,
    /// A mark while the log is past half used (`room.rs`), else the head.
    Room,
    /// This mark, a head the log had (`room.rs`, [`Core::older_target`]).
    Older(Position),
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// Takes a consistency point (a no-op when nothing was logged since the
    /// last one): commits every change logged and frees the whole log.
    pub(crate) fn checkpoint(&self) -> Result {
        self.checkpoint_holding(None)
    }

    /// The CP loop's CP: while the log is past half used, it frees only the
    /// log's oldest part and commits only the blocks that part needs
    /// (`room.rs`); otherwise as [`Self::checkpoint`].
    pub(super) fn checkpoint_for_room(&self) -> Result {
        self.take_cp(None, Aim::Room)
    }

    /// The CP loop's timed CP: commits the blocks holding a change of a
    /// record before `tick` (the head at the timed CP before), so that
    /// what stays dirty a whole interval reaches the array, and a block
    /// written again and again stays in the log, as it would in a cache
    /// under its writeback watermark (`room.rs`). Nothing to do if the log
    /// holds nothing from before `tick`; the whole log if `tick` cannot be
    /// a mark.
    pub(super) fn checkpoint_older_than(&self, tick: Position) -> Result {
        self.take_cp(None, Aim::Older(tick))
    }

    /// A CP whose marker stays at `hold` (a record before the head) rather
    /// than moving to the head: every cached block is written back and
    /// freed, and the log keeps every record from `hold` on. Replay uses it
    /// to keep its memory bounded while a skipped record must stay in the
    /// log (`replaying.rs`): a later replay from `hold` applies the records
    /// again, in order, which leaves every sector as the last record that
    /// writes it says, as one replay would.
    pub(crate) fn checkpoint_holding(&self, hold: Option<Position>) -> Result {
        self.take_cp(hold, Aim::Whole)
    }

    /// A CP whose marker goes to `hold`, else to its target: the head, or,
    /// with `for_room`, the mark [`Self::room_target`] gives if it gives
    /// one. A CP that failed is retried as it began.
    fn take_cp(&self, hold: Option<Position>, aim: Aim) -> Result {
        let _noio = NoIo::new();
        let _serial = self.cp_lock.lock();
        let (target, generation, part) = {
            let mut st = self.state.lock();
            let (target, part) = match st.cp_target {
                Some(t) => (t, false),
                None => {
                    if st.head == st.tail {
                        // Reads load table blocks too: keep them in
                        // budget when there is nothing to commit.
                        st.tables.trim(self.limits.table_blocks());
                        return Ok(());
                    }
                    let mark = match aim {
                        Aim::Whole => None,
                        Aim::Room => self.room_target(&st),
                        Aim::Older(tick) if tick.seq <= st.tail.seq => {
                            // Nothing logged before it is uncommitted.
                            st.tables.trim(self.limits.table_blocks());
                            return Ok(());
                        }
                        Aim::Older(tick) => self.older_target(&st, tick),
                    };
                    match mark {
                        Some(mark) => {
                            // Its blocks are taken below. What is queued
                            // for checksums stays: the blocks left dirty
                            // keep their records.
                            st.cache.begin_commit_before(mark.seq)?;
                            st.cp_target = Some(mark);
                            (mark, true)
                        }
                        None => {
                            st.cache.begin_commit()?;
                            // What is queued is committing now: this CP's
                            // to sum.
                            st.sums.clear();
                            st.cp_target = Some(st.head);
                            (st.head, false)
                        }
                    }
                }
            };
            (target, st.cp_gen + 1, part)
        };
        let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
        if part {
            // The committing set: the dirty blocks holding a change of a
            // record before the target, a few at a time under the lock
            // (writers go on between). Nothing here fails: the set is whole
            // before anything else of the CP is done, and a retry finds it so.
            let mut from = Some(0u64);
            while let Some(f) = from {
                from = self.state.lock().cache.commit_before(f);
            }
            self.stats.cp_partial.fetch_add(1, Relaxed);
        }

        // Every block complete and its entry set, then the table blocks
        // they change (pending: a generation not committed yet) on the
        // array before any data block: a block this CP rewrote matches its
        // pending entry if a crash cuts the CP short (`read.rs`).
        self.prepare_entries(generation)?;
        self.log.write_intent(generation, target)?;
        self.write_tables(generation)?;
        self.array.flush()?;
        let blocks = self.write_blocks()?;
        if self.limits.cp_fault != CpFault::NoFlush {
            self.array.flush()?;
        }
        let slot = {
            let st = self.state.lock();
            st.cp_slot
        };
        let marker = hold.unwrap_or(target);
        let slot = self.log.write_cp(slot, generation, marker)?;
        let committed = {
            let mut st = self.state.lock();
            st.cp_slot = slot;
            st.cp_gen = generation;
            st.tail = marker;
            st.marks.forget_through(&marker);
            st.cp_target = None;
            let committed = st.cache.end_commit();
            st.tables.committed(self.limits.table_blocks());
            committed
        };
        // The committed blocks' slots are free: the marker is past their
        // records. Given back a batch a lock, not all under one: a slot
        // neither named nor free yet is only unavailable meanwhile. Not
        // with a marker held before the target: replay from there takes
        // those records again, so their slots stay theirs (until replay
        // ends and rebuilds the free slots, `replaying.rs`).
        if hold.is_none() || hold == Some(target) {
            let mut slots = committed.values().filter_map(|b| b.slot).peekable();
            while slots.peek().is_some() {
                let mut st = self.state.lock();
                for s in slots.by_ref().take(SLOTS_A_LOCK) {
                    kernel::warn_on!(!st.free_slots.give(s));
                }
            }
        }
        self.changed.notify_all();
        // The CP has ended: its blocks are on the array, its log space free.
        let ended = kernel::time::Instant::<kernel::time::Monotonic>::now();
        self.stats.cp_count.fetch_add(1, Relaxed);
        self.stats.cp_blocks.fetch_add(blocks, Relaxed);
        self.stats
            .cp_duration_us
            .fetch_add((ended - start).as_micros_ceil().max(0) as u64, Relaxed);
        // Freed without the lock (a large CP has many blocks to free), and
        // counted apart (`cp_free_us`).
        drop(committed);
        self.stats
            .cp_free_us
            .fetch_add(ended.elapsed().as_micros_ceil().max(0) as u64, Relaxed);
        Ok(())
    }

    /// CP step 1: completes the committing blocks written in part from the
    /// array and sets every committing block's table entry, at
    /// `generation`, in the cached table blocks.
    fn prepare_entries(&self, generation: u64) -> Result {
        let mut old = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
        let mut segs = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        let mut entries = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        // Logged blocks with no checksum yet: where each is in the run and
        // in the log, and their bytes, read as one batch (allocated when
        // first needed).
        let mut logged = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        let mut logged_at = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        let mut pieces = KVVec::<u8>::new();
        let mut next = 0u64;
        let mut pacer = self.pacer();
        loop {
            self.pace(&mut pacer);
            // Under one lock: the next run, where its blocks are, which are
            // partly written, and the checksums made ahead.
            let mut missing = [0u8; RUN_BLOCKS];
            segs.clear();
            entries.clear();
            logged.clear();
            logged_at.clear();
            let run = self
                .state
                .lock()
                .cache
                .each_committing_run(next, RUN_BLOCKS, |b| {
                    let i = segs.len();
                    // Made ahead by the CP loop (`sums.rs`), or below.
                    let mut e = None;
                    match &b.data {
                        Contents::Ram(d) => {
                            *missing.get_mut(i).ok_or(EINVAL)? = !b.valid;
                            segs.push(Some(Segment::of(d)?), GFP_KERNEL)?;
                        }
                        Contents::Logged(l) => {
                            e = l.crc0.and_then(|c| entry_from_crc0(c, generation));
                            if e.is_none() {
                                logged.push(i, GFP_KERNEL)?;
                                logged_at.push(l.at, GFP_KERNEL)?;
                            }
                            segs.push(None, GFP_KERNEL)?;
                        }
                    }
                    entries.push(e, GFP_KERNEL)?;
                    Ok(())
                })?;
            let Some((first, n)) = run else {
                return Ok(());
            };
            // Complete partly written blocks from the array, in place (their
            // segments stay valid), before their entries change: a reader
            // that finds the array in flux takes the block from the cache
            // (`Core::load_block`).
            for (i, _) in missing.iter().enumerate().filter(|&(_, &m)| m != 0) {
                self.read_array_block(first + i as u64, &mut old)?;
                if let Some(b) = self.state.lock().cache.committing_mut(first + i as u64) {
                    b.merge_under(&old);
                }
            }
            // Logged blocks with no checksum yet, out of the log, without
            // the lock: their records' space is not reused before this CP
            // ends.
            if !logged.is_empty() {
                // Grown, never cleared: the reads overwrite it, and zeroing
                // it again each run cost a tenth of a CP under TCG.
                let need = logged.len() * BLOCK_SIZE;
                if pieces.len() < need {
                    pieces.resize(need, 0, GFP_KERNEL)?;
                }
                self.log
                    .read_pieces(&logged_at, BLOCK_SIZE, &mut pieces, 0)?;
                for (k, &i) in logged.iter().enumerate() {
                    let data = pieces.get(k * BLOCK_SIZE..(k + 1) * BLOCK_SIZE);
                    *entries.get_mut(i).ok_or(EINVAL)? =
                        Some(entry_for(data.ok_or(EINVAL)?, generation));
                }
            }
            // The blocks in memory, checksummed without the lock.
            for (seg, e) in segs.iter().zip(entries.iter_mut()) {
                let Some(seg) = seg else {
                    continue;
                };
                // SAFETY: a segment is a committing block's memory, which by
                // the cache's invariant nobody but this CP changes or frees
                // until `end_commit` (and this CP merged it above already).
                let data = unsafe { seg.as_slice() };
                *e = Some(entry_for(data, generation));
            }
            self.set_entries(first, &entries)?;
            next = first + n as u64;
        }
    }

    /// CP step 3: writes the committing blocks to the array, in runs of
    /// consecutive blocks, two batches in flight; returns how many.
    fn write_blocks(&self) -> Result<u64> {
        // The logged blocks' bytes, copied out of the pmem for the batch
        // that writes them: one buffer a batch, of which the batch uses
        // the first `used` bytes; its capacity allocated when first needed
        // and never grown past that (the batch's segments point into it),
        // and its length only grown, so that the bytes a batch before used
        // are not zeroed again. Declared before the batches, so dropped
        // after their writes.
        let mut stage = KVVec::<u8>::new();
        let mut other_stage = KVVec::<u8>::new();
        let mut used = 0usize;
        let mut batch = self.array.batch()?;
        let mut other = self.array.batch()?;
        let mut segs = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        // The run's logged blocks: where each is in the run and in the log.
        let mut logged = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        let mut logged_at = KVec::with_capacity(RUN_BLOCKS, GFP_KERNEL)?;
        let mut next = 0u64;
        let mut blocks = 0u64;
        let mut pacer = self.pacer();
        loop {
            segs.clear();
            logged.clear();
            logged_at.clear();
            let run = self
                .state
                .lock()
                .cache
                .each_committing_run(next, RUN_BLOCKS, |b| {
                    match &b.data {
                        Contents::Ram(d) => segs.push(Segment::of(d)?, GFP_KERNEL)?,
                        Contents::Logged(l) => {
                            logged.push(segs.len(), GFP_KERNEL)?;
                            logged_at.push(l.at, GFP_KERNEL)?;
                            segs.push(Segment::of(&[])?, GFP_KERNEL)?;
                        }
                    }
                    Ok(())
                })?;
            let Some((first, n)) = run else {
                break;
            };
            // Logged blocks out of the log, as one batch of reads, without
            // the lock: their records' space is not reused before this CP
            // ends.
            if !logged.is_empty() {
                if stage.capacity() == 0 {
                    stage.reserve(STAGE_BYTES, GFP_KERNEL)?;
                }
                let start = used;
                let end = start + logged.len() * BLOCK_SIZE;
                if end > stage.capacity() {
                    return Err(EINVAL);
                }
                if stage.len() < end {
                    // Within the capacity: no reallocation moves what
                    // earlier segments point to.
                    stage.resize(end, 0, GFP_KERNEL)?;
                }
                self.log
                    .read_pieces(&logged_at, BLOCK_SIZE, &mut stage, start)?;
                used = end;
                for (k, &i) in logged.iter().enumerate() {
                    let at = start + k * BLOCK_SIZE;
                    let data = stage.get(at..at + BLOCK_SIZE).ok_or(EINVAL)?;
                    *segs.get_mut(i).ok_or(EINVAL)? = Segment::of(data)?;
                }
            }
            let sector = self.layout.data_block_location(first) * SECTORS;
            // SAFETY: the segments are the committing blocks' data, which by
            // the cache's invariant nobody changes or frees until
            // `end_commit` (their missing sectors were merged in by
            // `prepare_entries`, and only a CP merges), or pieces of `stage`,
            // which is neither changed nor freed until this batch has waited
            // (below, or when it is dropped, before `stage`); only a CP calls
            // `end_commit`, holding `cp_lock` as this one does until after
            // both batches have waited for their writes (below, or when they
            // are dropped on an error, before `_serial`).
            unsafe { batch.write(sector, &segs)? };
            if batch.bytes() >= IN_FLIGHT_BYTES / 2 || used + RUN_BLOCKS * BLOCK_SIZE > STAGE_BYTES
            {
                other.wait()?;
                core::mem::swap(&mut batch, &mut other);
                core::mem::swap(&mut stage, &mut other_stage);
                // The other batch's writes are done: its stage is free.
                used = 0;
                // The other batch's writes in flight meanwhile.
                self.pace(&mut pacer);
            }
            blocks += n as u64;
            next = first + n as u64;
            if self.limits.cp_fault == CpFault::Stall && blocks >= STALL_BLOCKS {
                batch.wait()?;
                other.wait()?;
                self.stall(blocks);
                return Err(EIO);
            }
        }
        batch.wait()?;
        other.wait()?;
        Ok(blocks)
    }

    /// The test fault `CpFault::Stall`: says so, then waits until the
    /// volume stops.
    fn stall(&self, blocks: u64) {
        pr_info!(
            "{}: cp_stall: CP stalled after {} data blocks (a test fault)\n",
            self.name(),
            blocks
        );
        let mut st = self.state.lock();
        while !st.stop {
            let _ = self
                .changed
                .wait_interruptible_timeout(&mut st, kernel::time::msecs_to_jiffies(1000));
        }
    }

    /// Sets the table entries of data blocks `first`, `first + 1`, ... to
    /// `entries` (`None`: unchanged), loading their table blocks if needed;
    /// the table blocks are written by the running CP.
    fn set_entries(&self, first: u64, entries: &[Option<Entry>]) -> Result {
        // Make sure the table blocks are cached: a CP's stay so until it ends.
        self.cache_tables(first..first + entries.len() as u64)?;
        let mut st = self.state.lock();
        for (i, e) in entries.iter().enumerate() {
            let Some(e) = e else {
                continue;
            };
            let (index, slot) = self.layout.entry_of(first + i as u64).ok_or(EIO)?;
            st.tables.set(index, slot, e)?;
        }
        Ok(())
    }

    /// Writes every changed table block to its copy not in force, all in
    /// flight together.
    fn write_tables(&self, generation: u64) -> Result {
        // Each table's sealed copy and where it goes; declared before the
        // batch, so that they outlive its writes even on an error.
        let mut copies = KVec::new();
        let mut batch = self.array.batch()?;
        let mut from = 0u64;
        loop {
            let mut buf = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
            // From where the last one was found: one walk over the tables
            // per CP, not one per table written.
            let found = self.state.lock().tables.next_dirty(from, &mut buf)?;
            let Some((index, copy)) = found else {
                break;
            };
            TableBlock(&mut buf).seal(index, generation);
            let at = (self.layout.table_block_location(index) + copy) * SECTORS;
            copies.push((at, buf), GFP_KERNEL)?;
            from = index + 1;
        }
        for (at, buf) in copies.iter() {
            // SAFETY: `copies` is neither changed nor dropped before `batch`
            // has waited for its writes: below, or when it is dropped on an
            // error (it is declared after `copies`, so dropped before it).
            unsafe { batch.write(*at, &[Segment::of(buf)?])? };
        }
        batch.wait()
    }

    /// The CP loop, on the workqueue: a CP when one is wanted or every
    /// `cp_interval_ms` (module parameter), until the volume stops.
    /// Between CPs, while the checksums are due (`Core::sums_due`,
    /// `room.rs`), it checksums the blocks the write path queued
    /// (`sums.rs`).
    pub(super) fn cp_loop(&self) {
        let interval = u64::from(self.limits.cp_interval_ms);
        let mut last = kernel::time::Instant::<kernel::time::Monotonic>::now();
        let mut pacer = self.pacer();
        // The head at the last timed CP: the next commits what is older.
        let mut tick: Option<Position> = None;
        loop {
            let mut idle = false;
            let (cp, timed) = {
                let mut st = self.state.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    let since = u64::try_from(last.elapsed().as_millis()).unwrap_or(0);
                    if st.kick || since >= interval {
                        let timed = !st.kick;
                        st.kick = false;
                        break (true, timed.then_some(st.head));
                    }
                    if !st.sums.is_empty() && self.sums_due(&st) {
                        break (false, None);
                    }
                    let left = u32::try_from(interval - since).unwrap_or(u32::MAX);
                    // Idle: the next stretch of work begins after this.
                    idle = true;
                    let _ = self
                        .changed
                        .wait_interruptible_timeout(&mut st, kernel::time::msecs_to_jiffies(left));
                }
            };
            if idle {
                pacer = self.pacer();
            }
            if !cp {
                // A failure leaves the blocks to the CP, which checksums
                // what has no checksum.
                let _ = self.sum_logged();
                self.pace(&mut pacer);
                continue;
            }
            last = kernel::time::Instant::<kernel::time::Monotonic>::now();
            let res = match timed {
                None => self.checkpoint_for_room(),
                Some(head) => match tick.replace(head) {
                    Some(t) => self.checkpoint_older_than(t),
                    // The first: nothing can be older than an interval yet.
                    None => Ok(()),
                },
            };
            // The CP paced itself: the checksums ahead begin afresh.
            pacer = self.pacer();
            if let Err(e) = res {
                self.stats.cp_errors.fetch_add(1, Relaxed);
                pr_err!(
                    "{}: consistency point failed ({:?}); the log keeps the data, retrying\n",
                    self.name(),
                    e
                );
                // Do not spin on a failing array.
                let mut st = self.state.lock();
                if !st.stop {
                    let _ = self
                        .changed
                        .wait_interruptible_timeout(&mut st, kernel::time::msecs_to_jiffies(1000));
                }
            }
        }
    }
}

#[kernel::prelude::kunit_tests(swarmlog_cp)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_zeroes_are_unwritten() -> Result {
        let mut data = KVec::new();
        data.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        assert_eq!(entry_for(&data, 7), Entry::default());
        if let Some(b) = data.get_mut(100) {
            *b = 9;
        }
        let e = entry_for(&data, 7);
        assert_eq!(e, Entry::for_data(&data, 7));
        assert!(e.is_written() && e.verifies(&data));
        // From the CP loop's checksum: the same entry; none for zeroes.
        let crc0 = crate::format::checksum::crc32c(0, &data);
        assert_eq!(entry_from_crc0(crc0, 7), Some(e));
        assert_eq!(entry_from_crc0(0, 7), None);
        Ok(())
    }
}
