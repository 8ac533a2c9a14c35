// SPDX-License-Identifier: GPL-2.0

//! The write path: a write (or discard, write-zeroes) is appended to the
//! log and applied to the cache under the state lock, and acknowledged once
//! the record is durable. Flush and FUA therefore need nothing more.
//!
//! One copy per write: the request's data goes straight into the record in
//! pmem, and a block the write gives whole is cached as a pointer to it
//! ([`Contents::Logged`](super::cache::Contents::Logged)), not copied into
//! memory. Nothing of the data is checksummed here: the record is proved by
//! ordering (`log.rs`), and the block's checksum for the array's table is
//! made by the CP. The tree node of a block that is not dirty yet is
//! allocated before the record goes in (one before the lock for a write of
//! one block, the common case), so that nothing can fail once it is in.
//! Writers wait while the log is full, or while the blocks held in memory
//! reach `cache_max_mb`, after asking the CP loop for a CP.

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

use super::cache::{block_pieces, is_whole_block, Spare, SECTORS};
use super::{Array, Core, Request};
use crate::format::log::{Op, MAX_RECORD_DATA};
use crate::sys::dax::Media;

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// The write path: log the request, apply it to the cache, done.
    pub(super) fn write<R: Request>(&self, bio: &R, op: Op) -> Result {
        let sector = bio.sector();
        let size = bio.size();
        if size == 0 {
            // An empty flush: every acknowledged write is durable already.
            self.stats.flushes.fetch_add(1, Relaxed);
            return Ok(());
        }
        let nr = self.check_range(sector, size)?;
        let data_len = if op == Op::Write { size } else { 0 };
        if data_len > MAX_RECORD_DATA {
            return Err(EINVAL);
        }
        // A write of one whole block (most): its tree node, in case the
        // block is not dirty yet, before the lock (dropped after it if
        // unused: declared before the guard).
        let mut spare = if op == Op::Write && is_whole_block(sector, u64::from(nr)) {
            Some(Spare::new(GFP_KERNEL)?)
        } else {
            None
        };
        let mut spares = KVec::new();
        let read = |at: u64, buf: &mut [u8]| self.log.read(at, buf);
        let mut wake = false;
        let mut st = self.state.lock();
        let mut waited = false;
        while !(self.log.fits(&st.head, &st.tail, data_len)
            && st.cache.ram_blocks() < self.limits.cache_blocks)
        {
            if st.stop {
                return Err(EIO);
            }
            if !waited {
                waited = true;
                self.stats.log_full_waits.fetch_add(1, Relaxed);
            }
            // Wake the CP worker once; waking everyone at every wakeup had
            // the waiting writers wake each other without end, burning the
            // CPU the CP needs.
            if !st.kick {
                st.kick = true;
                self.changed.notify_all();
            }
            self.changed.wait(&mut st);
        }
        let mut head = st.head;
        if op != Op::Write {
            // The cache first: if it cannot take the change, nothing is
            // logged.
            st.cache
                .apply(sector, u64::from(nr), None, &read, GFP_KERNEL)?;
            self.log.append(&mut head, op, sector, nr, |_| Ok(()))?;
            st.head = head;
        } else {
            // Everything the cache needs once the record is in: the nodes
            // of the whole blocks not dirty yet (beyond the spare), and the
            // blocks written in part, in memory.
            let mut nodes = usize::from(spare.is_some());
            for (block, _, whole) in block_pieces(sector, u64::from(nr)) {
                if !whole {
                    st.cache.prepare_ram(block, &read, GFP_KERNEL)?;
                } else if !st.cache.is_dirty(block) {
                    if nodes > 0 {
                        nodes -= 1;
                    } else {
                        spares.push(Spare::new(GFP_KERNEL)?, GFP_KERNEL)?;
                    }
                }
            }
            // The one copy: the request's data into the record.
            let data_at = self.log.append(&mut head, op, sector, nr, |sink| {
                bio.for_each_chunk(|chunk| sink(chunk))
            })?;
            // In the log now: the head moves past it whatever comes next, so
            // that no later record overwrites what the cache points to.
            st.head = head;
            // The record's sequence number: the head is past it.
            let seq = head.seq - 1;
            for (block, range, whole) in block_pieces(sector, u64::from(nr)) {
                let at = data_at + range.start as u64;
                if whole {
                    if spare.is_none() {
                        spare = spares.pop();
                    }
                    st.cache
                        .put_logged(block, (at, seq), &mut spare, GFP_KERNEL)?;
                    // Its checksum, for the CP, computed by the CP loop
                    // meanwhile (`sums.rs`), woken once for a batch.
                    wake |= st.sums.push(block, (at, seq));
                } else {
                    // Prepared above: no allocation; the pmem read of what
                    // was just written.
                    let first = sector.max(block * SECTORS);
                    let n = (range.len() / 512) as u64;
                    st.cache
                        .apply_in_block(first, n, &read, GFP_KERNEL, |dst| {
                            self.log.read(at, dst)
                        })?;
                }
            }
        }
        if self.log.used(&st.head, &st.tail) > self.log.geometry().capacity() / 2 {
            st.kick = true;
            wake = true;
        }
        drop(st);
        if wake {
            self.changed.notify_all();
        }
        if op == Op::Write {
            self.stats.writes.fetch_add(1, Relaxed);
            self.stats.write_bytes.fetch_add(u64::from(size), Relaxed);
        } else {
            self.stats.discards.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}
