// SPDX-License-Identifier: GPL-2.0

//! Consistency points: commit every logged change to the array, then move
//! the CP marker in the log past them so their log space is reused.
//!
//! A CP takes the head of the log as its target and the dirty cache as its
//! committing set, then, without holding the state lock across I/O:
//!
//! 1. writes the committing blocks to the array in runs of consecutive
//!    blocks (up to 1 MiB, in block order), filling the sectors of partly
//!    written blocks from the array first;
//! 2. writes every table block it changed to the copy that is not in force,
//!    sealed with the new CP generation;
//! 3. flushes the array;
//! 4. writes the CP marker (new generation, target) to the log and drains.
//!
//! Only then are the blocks dropped from the cache and the log space freed.
//! Writes go on meanwhile into the new dirty set and free log space. A CP
//! that fails keeps its committing set and target, and the next one retries
//! them; the log keeps the data all along.

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

use crate::cache::SECTORS;
use crate::metadata::{Entry, TableBlock, BLOCK_SIZE};
use crate::noio::NoIo;
use crate::volume::Core;

/// Blocks in one CP write: 1 MiB.
const RUN_BLOCKS: usize = 256;

impl Core {
    /// Takes a consistency point (a no-op when nothing was logged since the
    /// last one).
    pub(crate) fn checkpoint(&self) -> Result {
        let _noio = NoIo::new();
        let _serial = self.cp_lock.lock();
        let (target, generation) = {
            let mut st = self.state.lock();
            let target = match st.cp_target {
                Some(t) => t,
                None => {
                    if st.head == st.tail {
                        return Ok(());
                    }
                    st.cache.begin_commit()?;
                    st.cp_target = Some(st.head);
                    st.head
                }
            };
            (target, st.cp_gen + 1)
        };
        let start = kernel::time::Instant::<kernel::time::Monotonic>::now();

        let mut run = KVec::with_capacity(RUN_BLOCKS * BLOCK_SIZE, GFP_KERNEL)?;
        let mut old = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        old.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        let mut partial = [0u8; RUN_BLOCKS];
        let mut next = 0u64;
        let mut blocks = 0u64;
        loop {
            // Copy a run of committing blocks out under the lock.
            run.clear();
            let (first, n) = {
                let st = self.state.lock();
                let Some((first, n)) = st.cache.committing_run(next, RUN_BLOCKS) else {
                    break;
                };
                for i in 0..n {
                    let b = st.cache.committing(first + i as u64).ok_or(EINVAL)?;
                    run.extend_from_slice(&b.data, GFP_KERNEL)?;
                    if let Some(p) = partial.get_mut(i) {
                        *p = !b.valid;
                    }
                }
                (first, n)
            };
            // Complete partly written blocks from the array.
            for i in 0..n {
                let missing = partial.get(i).copied().unwrap_or(0);
                if missing == 0 {
                    continue;
                }
                self.read_array_block(first + i as u64, &mut old)?;
                for s in 0..SECTORS as usize {
                    if missing & (1 << s) != 0 {
                        let at = i * BLOCK_SIZE + s * 512;
                        let src = old.get(s * 512..(s + 1) * 512).ok_or(EINVAL)?;
                        run.get_mut(at..at + 512)
                            .ok_or(EINVAL)?
                            .copy_from_slice(src);
                    }
                }
            }
            // New table entries; a block of zeroes is recorded as unwritten.
            for (i, data) in run.chunks(BLOCK_SIZE).enumerate() {
                let e = if data.iter().all(|&b| b == 0) {
                    Entry::default()
                } else {
                    Entry::for_data(data, generation)
                };
                self.set_entry(first + i as u64, &e)?;
            }
            let sector = self.layout.data_block_location(first) * SECTORS;
            self.array.write(sector, &run, false)?;
            blocks += n as u64;
            next = first + n as u64;
        }

        self.write_tables(generation)?;
        self.array.flush()?;
        let slot = {
            let st = self.state.lock();
            st.cp_slot
        };
        let slot = self.log.write_cp(slot, generation, target)?;
        {
            let mut st = self.state.lock();
            st.cp_slot = slot;
            st.cp_gen = generation;
            st.tail = target;
            st.cp_target = None;
            st.cache.end_commit();
            let mut cur = st.tables.cursor_front_mut();
            while let Some(mut c) = cur {
                let t = c.current_mut().1;
                if t.dirty {
                    t.dirty = false;
                    t.current = 1 - t.current.min(1);
                }
                cur = c.move_next();
            }
        }
        self.changed.notify_all();
        self.stats.cp_count.fetch_add(1, Relaxed);
        self.stats.cp_blocks.fetch_add(blocks, Relaxed);
        self.stats
            .cp_duration_us
            .fetch_add(start.elapsed().as_micros_ceil().max(0) as u64, Relaxed);
        Ok(())
    }

    /// Sets the table entry of data block `block`, loading its table block
    /// if needed; the table block is written by the running CP.
    fn set_entry(&self, block: u64, e: &Entry) -> Result {
        let (index, slot) = self.layout.entry_of(block).ok_or(EIO)?;
        // Make sure the table block is cached.
        self.entry(block)?;
        let mut st = self.state.lock();
        let t = st.tables.get_mut(&index).ok_or(EIO)?;
        TableBlock(&mut t.data).set(slot, e);
        t.dirty = true;
        Ok(())
    }

    /// Writes every changed table block to its copy not in force.
    fn write_tables(&self, generation: u64) -> Result {
        let mut buf = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        let mut from = 0u64;
        loop {
            let (index, copy) = {
                let st = self.state.lock();
                let Some((k, t)) = st.tables.iter().find(|(k, t)| **k >= from && t.dirty) else {
                    return Ok(());
                };
                buf.clear();
                buf.extend_from_slice(&t.data, GFP_KERNEL)?;
                (*k, 1 - t.current.min(1))
            };
            TableBlock(&mut buf).seal(index, generation);
            let at = (self.layout.table_block_location(index) + copy as u64) * SECTORS;
            self.array.write(at, &buf, false)?;
            from = index + 1;
        }
    }
}
