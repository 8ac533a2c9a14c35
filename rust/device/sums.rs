// SPDX-License-Identifier: GPL-2.0

//! Checksums ahead of the CP: the CP loop, while it waits for the next CP,
//! computes the CRC-32C of the blocks the write path cached in the log
//! (`cache::Logged`), so that the CP finds most table entries made.
//!
//! The write path checksums nothing (format version 2): it queues the
//! block and its record here, without allocating (the queue's room is
//! reserved when the volume opens; when it is full, the CP checksums the
//! block itself), and, once the ring is more than half used or the slots
//! more than three quarters (`Core::sums_due`, `room.rs`), wakes the CP
//! loop for each batch queued. The CP
//! loop reads the record's data from the pmem without the state lock and
//! records the checksum only if the dirty block still is that record's
//! (`Cache::set_logged_crc0`): then no CP has begun since the write, so
//! the record's log space was not reused during the read.

use kernel::prelude::*;

use super::{Array, Core};
use crate::format::array::BLOCK_SIZE;
use crate::format::checksum::crc32c;
use crate::sys::bytes;
use crate::sys::dax::Media;

/// Blocks queued at most; beyond that the CP checksums them.
const QUEUE: usize = 4096;

/// Queued blocks that wake the CP loop.
pub(super) const BATCH: usize = 32;

/// Blocks the CP loop checksums before it looks at the state again.
const ROUND: usize = 64;

/// Blocks cached in the log whose checksum is wanted: `(block, (log offset,
/// record sequence number))`.
pub(super) struct Sums(KVec<(u64, (u64, u64))>);

impl Sums {
    /// An empty queue with its room reserved.
    pub(super) fn new() -> Result<Self> {
        Ok(Self(KVec::with_capacity(QUEUE, GFP_KERNEL)?))
    }

    /// Queues a block; returns whether a batch is complete (the queue just
    /// reached a multiple of [`BATCH`]): the CP loop, if it makes checksums
    /// now, is to be woken. Never allocates: a block that finds the queue
    /// full is left to the CP.
    pub(super) fn push(&mut self, block: u64, record: (u64, u64)) -> bool {
        self.0.push_within_capacity((block, record)).is_ok() && self.0.len() % BATCH == 0
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops everything queued: a CP has begun, and the blocks queued are
    /// committing now (the CP checksums them).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    fn pop(&mut self) -> Option<(u64, (u64, u64))> {
        self.0.pop()
    }
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// Checksums up to [`ROUND`] queued blocks (the CP loop, between CPs),
    /// taking the state lock twice for all of them: once to pick those
    /// still wanted, once to record their checksums (a writer holds it for
    /// its copy into the pmem; taking it twice a block had the CP loop spin
    /// on the mutex beside every writer). Returns how many were recorded.
    pub(super) fn sum_logged(&self) -> Result<usize> {
        let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
        let mut round = KVec::with_capacity(ROUND, GFP_KERNEL)?;
        {
            let mut st = self.state.lock();
            while round.len() < ROUND {
                let Some((block, record)) = st.sums.pop() else {
                    break;
                };
                if st.cache.wants_crc0(block, record) {
                    // Within the capacity reserved above.
                    round.push((block, record, None), GFP_ATOMIC)?;
                }
            }
        }
        for (_, record, crc0) in round.iter_mut() {
            // Without the lock: if a CP begins meanwhile and the record's
            // space is reused, what is read is wrong, but the block is no
            // longer that record's dirty block and the checksum is dropped
            // below. A poisoned line: left to the CP, which fails on it too.
            if self.log.read(record.0, &mut buf).is_ok() {
                *crc0 = Some(crc32c(0, &buf));
            }
        }
        let mut done = 0;
        {
            let mut st = self.state.lock();
            for &(block, record, crc0) in round.iter() {
                if let Some(crc0) = crc0 {
                    if st.cache.set_logged_crc0(block, record, crc0) {
                        done += 1;
                    }
                }
            }
        }
        self.stats
            .checksums_ahead
            .fetch_add(done as u64, core::sync::atomic::Ordering::Relaxed);
        Ok(done)
    }
}
