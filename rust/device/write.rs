// SPDX-License-Identifier: GPL-2.0

//! The write path: a write (or discard, write-zeroes) is appended to the
//! log and applied to the cache under the state lock, and acknowledged once
//! the record is durable. Flush and FUA therefore need nothing more.
//!
//! The data is copied out of the request and checksummed outside the state
//! lock, a piece per block: the record's checksum is combined from the
//! pieces' and, at the CP, a block written whole gets its table entry from
//! its piece's without being checksummed again. A write of one whole block
//! (most) is copied into a block buffer that becomes the cached block
//! itself. Writers wait while the log or the cache is full, after asking
//! the CP loop for a CP.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{alloc::KVVec, prelude::*};

use super::cache::{block_pieces, is_whole_block, Spare, SECTORS};
use super::{Array, Core, Request};
use crate::format::array::BLOCK_SIZE;
use crate::format::checksum::crc32c;
use crate::format::log::{Op, MAX_RECORD_DATA};
use crate::sys::bytes;
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
        // Outside the state lock, so that writers checksum in parallel: a
        // copy of the data (the writer may change its buffer while the
        // write is in flight; cache, record and checksum all come from this
        // copy) and the CRC-32C of each block's piece of it, from which the
        // record's checksum is combined and a whole block's table entry is
        // made at the CP.
        // Each piece: its block, its range in `data`, whether it is the
        // whole block, and its CRC-32C (seed 0).
        let mut pieces = KVec::new();
        // A write of one whole block (most): its copy is a block buffer,
        // which becomes the cached block itself (`Cache::put_whole`), so
        // the state lock is not held for a new block and a second copy.
        let one_block =
            (op == Op::Write && is_whole_block(sector, u64::from(nr))).then_some(sector / SECTORS);
        let mut block = KVec::new();
        let mut data = KVVec::new();
        // Its tree node too, in case the block is not dirty yet: dropped
        // after the state lock if unused (declared before the guard).
        let mut spare = None;
        if let Some(b) = one_block {
            spare = Some(Spare::new(GFP_KERNEL)?);
            block.reserve(BLOCK_SIZE, GFP_KERNEL)?;
            bio.for_each_chunk(|chunk| bytes::extend(&mut block, chunk, GFP_KERNEL))?;
            let crc0 = crc32c(0, &block);
            pieces.push((b, 0..BLOCK_SIZE, true, crc0), GFP_KERNEL)?;
        } else if op == Op::Write {
            data.reserve(data_len as usize, GFP_KERNEL)?;
            bio.for_each_chunk(|chunk| {
                bytes::extend(&mut data, chunk, GFP_KERNEL)?;
                Ok(())
            })?;
            for (block, range, whole) in block_pieces(sector, u64::from(nr)) {
                let crc0 = crc32c(0, data.get(range.clone()).ok_or(EINVAL)?);
                pieces.push((block, range, whole, crc0), GFP_KERNEL)?;
            }
        }
        let mut st = self.state.lock();
        let mut waited = false;
        while !(self.log.fits(&st.head, &st.tail, data_len)
            && st.cache.blocks() < self.limits.cache_blocks)
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
        // The cache first: if it cannot take the data, nothing is logged.
        if let (Some(b), Some(&(.., crc0))) = (one_block, pieces.first()) {
            st.cache.put_whole(
                b,
                core::mem::take(&mut block),
                Some(crc0),
                &mut spare,
                GFP_KERNEL,
            )?;
        } else {
            let written = (op == Op::Write).then_some(data.as_slice());
            st.cache.apply(sector, u64::from(nr), written, GFP_KERNEL)?;
            for (block, _, whole, crc0) in pieces.iter() {
                if *whole {
                    st.cache.set_block_crc0(*block, *crc0);
                }
            }
        }
        let mut head = st.head;
        // The record's data: the cached block just put, or the copy.
        let src: &[u8] = match one_block {
            Some(b) => &st.cache.get(b).ok_or(EINVAL)?.data,
            None => &data,
        };
        self.log.append(&mut head, op, sector, nr, |sink| {
            for (_, range, _, crc0) in pieces.iter() {
                sink(src.get(range.clone()).ok_or(EINVAL)?, *crc0)?;
            }
            Ok(())
        })?;
        st.head = head;
        if self.log.used(&st.head, &st.tail) > self.log.geometry().capacity() / 2 {
            st.kick = true;
            self.changed.notify_all();
        }
        drop(st);
        if op == Op::Write {
            self.stats.writes.fetch_add(1, Relaxed);
            self.stats.write_bytes.fetch_add(u64::from(size), Relaxed);
        } else {
            self.stats.discards.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}
