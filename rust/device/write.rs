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
//! Writers ask the CP loop for a CP once the log is three quarters used
//! (`room.rs`), and wait while it is full, or while the blocks held in
//! memory reach `cache_max_mb`.
//!
//! On a block log ([`Core::write_in_flight`]) a write of whole blocks
//! reserves its record's place under the lock and writes it without the
//! lock, several at once (each ending at most the log's window past the
//! oldest record not yet complete: the format's rule for telling a torn
//! end from corruption); the records are applied to the cache and
//! acknowledged strictly in log order. A write of part of a block, a
//! discard or a write-zeroes waits for those in flight and goes alone, as
//! on pmem.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{prelude::*, sync::MutexGuard};

use super::cache::{block_pieces, is_whole_block, Spare, SECTORS};
use super::{Array, Core, Request, State};
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
        let whole = op == Op::Write && block_pieces(sector, u64::from(nr)).all(|(_, _, w)| w);
        if self.log_on_block() && whole {
            return self.write_in_flight(bio, sector, nr);
        }
        // Blocks a write of whole blocks puts in slots, if the log has
        // them and enough are free.
        let in_slots = if whole && self.log.geometry().slots != 0 {
            usize::try_from(u64::from(nr) / SECTORS).map_err(|_| EINVAL)?
        } else {
            0
        };
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
        loop {
            if st.stop || st.broken {
                return Err(EIO);
            }
            if st.reserved != st.head {
                // Records of a block log in flight: this one goes alone,
                // after them.
                self.changed.wait(&mut st);
                continue;
            }
            if st.cache.ram_blocks() < self.limits.cache_blocks
                && ((in_slots > 0 && st.free_slots.len() >= in_slots)
                    || self.log.fits(&st.head, &st.tail, data_len))
            {
                break;
            }
            self.wait_for_room(&mut st, &mut waited);
        }
        if in_slots > 0 && st.free_slots.len() >= in_slots {
            return self.write_slots(bio, st, (sector, nr), in_slots, spare);
        }
        // Whether the CP loop makes checksums ahead already (`room.rs`):
        // if this record makes it begin, it is woken below.
        let summing = self.sums_due(&st);
        let mut head = st.head;
        // The record's sequence number, or the wrap record's just before it
        // (the two go in together): what the cache's changes by it are
        // dated with before it is in.
        let next_seq = head.seq;
        if op != Op::Write {
            // The cache first: if it cannot take the change, nothing is
            // logged.
            st.cache
                .apply(sector, u64::from(nr), None, next_seq, &read, GFP_KERNEL)?;
            self.log.append(&mut head, op, sector, nr, |_| Ok(()))?;
            st.head = head;
            st.reserved = head;
        } else {
            // Everything the cache needs once the record is in: the nodes
            // of the whole blocks not dirty yet (beyond the spare), and the
            // blocks written in part, in memory.
            let mut nodes = usize::from(spare.is_some());
            for (block, _, whole) in block_pieces(sector, u64::from(nr)) {
                if !whole {
                    st.cache.prepare_ram(block, next_seq, &read, GFP_KERNEL)?;
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
            st.reserved = head;
            // The record's sequence number: the head is past it.
            let seq = head.seq - 1;
            for (block, range, whole) in block_pieces(sector, u64::from(nr)) {
                let at = data_at + range.start as u64;
                if whole {
                    if spare.is_none() {
                        spare = spares.pop();
                    }
                    // A slot the block was in is free: this record
                    // replaces it whole.
                    if let Some(old) =
                        st.cache
                            .put_logged(block, (at, seq), &mut spare, GFP_KERNEL)?
                    {
                        kernel::warn_on!(!st.free_slots.give(old));
                    }
                    // Its checksum, for the CP, computed by the CP loop
                    // meanwhile (`sums.rs`), woken once for a batch.
                    wake |= st.sums.push(block, (at, seq)) && summing;
                } else {
                    // Prepared above: no allocation; the pmem read of what
                    // was just written.
                    let first = sector.max(block * SECTORS);
                    let n = (range.len() / 512) as u64;
                    st.cache
                        .apply_in_block(first, n, seq, &read, GFP_KERNEL, |dst| {
                            self.log.read(at, dst)
                        })?;
                }
            }
        }
        self.after_record(st, summing, wake);
        if op == Op::Write {
            self.stats.writes.fetch_add(1, Relaxed);
            self.stats.write_bytes.fetch_add(u64::from(size), Relaxed);
        } else {
            self.stats.discards.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// The write path of a write of whole blocks on a block log: its record
    /// written with the lock dropped, several in flight, applied to the
    /// cache and acknowledged in log order.
    fn write_in_flight<R: Request>(&self, bio: &R, sector: u64, nr: u32) -> Result {
        let size = bio.size();
        // A tree node for every block, in case it is not dirty when the
        // record is applied: nothing may fail once the record is written.
        let blocks = usize::try_from(u64::from(nr) / SECTORS).map_err(|_| EINVAL)?;
        let mut spares = KVec::with_capacity(blocks, GFP_KERNEL)?;
        for _ in 0..blocks {
            spares.push(Spare::new(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        let window = self.log.geometry().window;
        let mut st = self.state.lock();
        let mut waited = false;
        let r = loop {
            if st.stop || st.broken {
                return Err(EIO);
            }
            if self.log.fits(&st.reserved, &st.tail, size)
                && st.cache.ram_blocks() < self.limits.cache_blocks
            {
                let r = self.log.reserve(&st.reserved, Op::Write, sector, nr)?;
                // The format's rule: a record ends at most a window past the
                // start of the oldest record not complete (at most `head`).
                if st.reserved == st.head || self.log.used(&r.next, &st.head) <= window {
                    break r;
                }
                self.changed.wait(&mut st);
                continue;
            }
            self.wait_for_room(&mut st, &mut waited);
        };
        let start = st.reserved;
        st.reserved = r.next;
        st.in_flight += 1;
        self.stats.in_flight_peak.fetch_max(st.in_flight, Relaxed);
        drop(st);

        // The one copy: the request's data into the record, written with FUA.
        let res = self
            .log
            .write_reserved(&r, |sink| bio.for_each_chunk(|chunk| sink(chunk)));

        let mut st = self.state.lock();
        st.in_flight -= 1;
        // In log order: every record before this one is applied first.
        while st.head != start && !st.broken && !st.stop {
            self.turn(start.seq).wait(&mut st);
        }
        let data_at = match res {
            Ok(at) if st.head == start && !st.broken => at,
            Ok(_) => return Err(EIO),
            Err(e) => {
                // No write after this one may be acknowledged: the log
                // would hold a hole before it.
                st.broken = true;
                drop(st);
                self.wake_all();
                pr_err!(
                    "{}: a log record could not be written ({:?}); the volume takes no more \
                     writes\n",
                    self.name(),
                    e
                );
                return Err(e);
            }
        };
        st.head = r.next;
        let seq = r.next.seq - 1;
        let mut res = Ok(());
        for (block, range, _) in block_pieces(sector, u64::from(nr)) {
            let at = data_at + range.start as u64;
            let mut spare = spares.pop();
            // A block log has no slots: nothing to give back.
            if let Err(e) = st
                .cache
                .put_logged(block, (at, seq), &mut spare, GFP_KERNEL)
            {
                res = Err(e);
                break;
            }
            // Its checksum for the CP, made ahead by the CP loop, woken
            // below in any case.
            let _ = st.sums.push(block, (at, seq));
        }
        self.note_head(&mut st);
        if self.cp_wanted(&st) {
            st.kick = true;
        }
        drop(st);
        // The writer of the next record, and those waiting for room (the
        // window, the log, the cache), alone writes and the CP loop.
        self.turn(r.next.seq).notify_all();
        self.changed.notify_all();
        res?;
        self.stats.writes.fetch_add(1, Relaxed);
        self.stats.write_bytes.fetch_add(u64::from(size), Relaxed);
        Ok(())
    }

    /// The write path of a write of `in_slots` whole blocks (`sector`,
    /// `nr`) with as many slots free (`st` held): each block's record in a
    /// slot of its own, the slot the block was in (if it was) free once
    /// they are durable. The ring's room is not touched.
    fn write_slots<R: Request>(
        &self,
        bio: &R,
        mut st: MutexGuard<'_, State>,
        (sector, nr): (u64, u32),
        in_slots: usize,
        mut spare: Option<Spare>,
    ) -> Result {
        // Whether the checksums are due before these records, as the ring
        // path asks before its record: taken after the slots below, it
        // would count them, and the write that makes the checksums due
        // would not wake the CP loop (`after_record`).
        let summing = self.sums_due(&st);
        // The tree nodes of the blocks not dirty yet, beyond the spare,
        // and the slots: nothing may fail once the records are in.
        let mut spares = KVec::new();
        let mut nodes = usize::from(spare.is_some());
        for (block, _, _) in block_pieces(sector, u64::from(nr)) {
            if !st.cache.is_dirty(block) {
                if nodes > 0 {
                    nodes -= 1;
                } else {
                    spares.push(Spare::new(GFP_KERNEL)?, GFP_KERNEL)?;
                }
            }
        }
        let mut one = [0u32; 1];
        let mut many = KVec::new();
        let slots: &mut [u32] = if in_slots == 1 {
            &mut one
        } else {
            many.resize(in_slots, 0, GFP_KERNEL)?;
            &mut many
        };
        for s in slots.iter_mut() {
            *s = st.free_slots.take().ok_or(ENOSPC)?;
        }
        let mut head = st.head;
        let first = head.seq;
        let res = self.log.write_slots(&mut head, sector, nr, slots, |sink| {
            bio.for_each_chunk(|chunk| sink(chunk))
        });
        if let Err(e) = res {
            // Not acknowledged: the slots are free again (a header written
            // before the failure names a record replay may take, as it may
            // any write not acknowledged).
            for &s in slots.iter() {
                kernel::warn_on!(!st.free_slots.give(s));
            }
            return Err(e);
        }
        st.head = head;
        st.reserved = head;
        let geo = self.log.geometry();
        let mut wake = false;
        for (k, ((block, _, _), &slot)) in block_pieces(sector, u64::from(nr))
            .zip(slots.iter())
            .enumerate()
        {
            let at = geo.slot_data(slot).ok_or(EINVAL)?;
            let seq = first + k as u64;
            if spare.is_none() {
                spare = spares.pop();
            }
            if let Some(old) =
                st.cache
                    .put_in_slot(block, (at, seq), Some(slot), &mut spare, GFP_KERNEL)?
            {
                kernel::warn_on!(!st.free_slots.give(old));
            }
            wake |= st.sums.push(block, (at, seq)) && summing;
        }
        self.after_record(st, summing, wake);
        self.stats.writes.fetch_add(1, Relaxed);
        self.stats
            .write_bytes
            .fetch_add(u64::from(nr) * 512, Relaxed);
        Ok(())
    }

    /// Once a record is in (`st` held, then released): the head noted; the
    /// log (ring or slots) past three quarters used asks the CP loop for a
    /// CP, woken when the request is new; once the checksums queued are due
    /// (`Core::sums_due`), the CP loop is woken when they just became so
    /// (`summing`: whether they were due before the record). `wake`: a
    /// batch of checksums is due already.
    fn after_record(&self, mut st: MutexGuard<'_, State>, summing: bool, mut wake: bool) {
        self.note_head(&mut st);
        if self.cp_wanted(&st) && !st.kick {
            st.kick = true;
            wake = true;
        }
        wake |= !summing && !st.sums.is_empty() && self.sums_due(&st);
        drop(st);
        if wake {
            self.changed.notify_all();
        }
    }

    /// The log is full or the cache at its limit: asks the CP loop for a
    /// CP and waits for a change (the first wait of a write is counted).
    fn wait_for_room(&self, st: &mut MutexGuard<'_, State>, waited: &mut bool) {
        if !*waited {
            *waited = true;
            self.stats.log_full_waits.fetch_add(1, Relaxed);
        }
        // Wake the CP worker once; waking everyone at every wakeup had the
        // waiting writers wake each other without end, burning the CPU the
        // CP needs.
        if !st.kick {
            st.kick = true;
            self.changed.notify_all();
        }
        self.changed.wait(st);
    }
}
