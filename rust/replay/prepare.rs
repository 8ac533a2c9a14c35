// SPDX-License-Identifier: GPL-2.0

//! Blocks prepared ahead of replay's MODIFY path.
//!
//! Most records of a long log write one whole block, and what MODIFY spends
//! on one is allocating a block buffer and reading the record's data from
//! the pmem into it. The preparer does that ahead of MODIFY, in log order,
//! for the records of the current swarm that write one whole block; MODIFY
//! then puts the buffer in the cache ([`crate::device::cache::Cache::put_whole`]).
//!
//! Two threads prepare: the preparer's own work item, on a queue of its own
//! (so on the CPU the MODIFY thread is not using), and the MODIFY thread
//! itself while it waits for a LOAD: after a swarm's last LOAD has ended,
//! MODIFY alone would otherwise do on one CPU what two can.
//!
//! At most [`PREPARE_MAX`] blocks are prepared or being prepared, so the
//! memory stays bounded; a block prepared for a record MODIFY has gone past
//! (a record skipped, or one MODIFY applied itself) is dropped.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, CondVar, Mutex},
    workqueue::{Work, WorkItem},
};

use super::message::Message;
use crate::device::Volume;
use crate::format::array::BLOCK_SIZE;
use crate::format::log::RECORD_HEADER_SIZE;
use crate::sys::bytes;
use crate::sys::noio::NoIo;

/// Most blocks prepared or being prepared (4 MiB).
pub(crate) const PREPARE_MAX: usize = 1024;

/// How far ahead of MODIFY's position the preparer's own thread starts when
/// MODIFY has caught up with it: the records in between MODIFY reads
/// itself while the preparer reads the ones after, instead of both reading
/// the same record.
const LEAD: usize = 8;

/// What [`Prep::new_swarm`] drops: the old list and blocks.
pub(crate) type OldSwarm = (KVec<(u64, u64)>, RBTree<u64, KVec<u8>>);

/// A record claimed for preparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    seq: u64,
    offset: u64,
    /// The swarm it belongs to (see [`Prep::generation`]).
    generation: u64,
}

/// What is prepared, and what is left to prepare, of the current swarm.
///
/// # Invariants
///
/// `count` is the number of `blocks` plus the claims of this `generation`
/// not yet put or abandoned; it is at most `max` after a claim. Every key
/// of `blocks` is the sequence number of an entry of `todo`. `next` only
/// grows within a generation.
pub(crate) struct Prep {
    /// The swarm's records of one whole block, in log order: sequence
    /// number and log offset.
    todo: KVec<(u64, u64)>,
    /// The next of `todo` to claim.
    next: usize,
    /// The prepared blocks, by sequence number.
    blocks: RBTree<u64, KVec<u8>>,
    count: usize,
    max: usize,
    /// MODIFY has taken (or gone past) every record up to this one.
    passed: u64,
    /// Counts the swarms: a claim of an earlier one is of no use.
    generation: u64,
    /// Whether the preparer's own thread sleeps (waiting for room, or for
    /// a swarm).
    idle: bool,
    stop: bool,
}

impl Prep {
    /// An empty one, with at most `max` blocks prepared.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            todo: KVec::new(),
            next: 0,
            blocks: RBTree::new(),
            count: 0,
            max,
            passed: 0,
            generation: 0,
            idle: false,
            stop: false,
        }
    }

    /// A new swarm, whose records of one whole block are `todo` (sequence
    /// number and log offset, in log order; the initiator lists them as it
    /// scans). What was prepared for the swarm before is dropped, with the
    /// old list: returned, to be freed outside the lock.
    pub(crate) fn new_swarm(&mut self, todo: KVec<(u64, u64)>) -> OldSwarm {
        self.next = 0;
        self.count = 0;
        self.generation += 1;
        (
            core::mem::replace(&mut self.todo, todo),
            core::mem::replace(&mut self.blocks, RBTree::new()),
        )
    }

    /// The next record to prepare, unless `max` are prepared already: at
    /// least `lead` records past MODIFY's position.
    pub(crate) fn claim(&mut self, lead: usize) -> Option<Claim> {
        if self.count >= self.max || self.stop {
            return None;
        }
        let passed = self.passed;
        let at = self.todo.partition_point(|&(s, _)| s <= passed);
        self.next = self.next.max(at.saturating_add(lead));
        let &(seq, offset) = self.todo.get(self.next)?;
        self.next += 1;
        self.count += 1;
        Some(Claim {
            seq,
            offset,
            generation: self.generation,
        })
    }

    /// `data` is claim `c`'s block. Kept unless MODIFY went past it or a
    /// new swarm came.
    pub(crate) fn put(&mut self, c: Claim, data: KVec<u8>) {
        if c.generation != self.generation {
            return;
        }
        if c.seq <= self.passed
            || self
                .blocks
                .try_create_and_insert(c.seq, data, GFP_KERNEL)
                .is_err()
        {
            self.count = self.count.saturating_sub(1);
        }
    }

    /// Claim `c` could not be prepared (MODIFY reads the record itself, and
    /// reports what fails).
    pub(crate) fn abandon(&mut self, c: Claim) {
        if c.generation == self.generation {
            self.count = self.count.saturating_sub(1);
        }
    }

    /// MODIFY's turn has come to record `seq`: its prepared block, if any.
    pub(crate) fn take(&mut self, seq: u64) -> Option<KVec<u8>> {
        self.passed = self.passed.max(seq);
        let data = self.blocks.remove(&seq)?;
        self.count = self.count.saturating_sub(1);
        Some(data)
    }

    /// Blocks prepared or being prepared.
    #[cfg(CONFIG_KUNIT = "y")]
    fn count(&self) -> usize {
        self.count
    }
}

/// The preparer: [`Prep`] shared by the MODIFY thread and the preparer's
/// own work item, which runs until [`Preparer::stop`].
#[pin_data]
pub(crate) struct Preparer {
    core: Arc<Volume>,
    #[pin]
    inner: Mutex<Prep>,
    /// Signalled when there may be something to prepare.
    #[pin]
    changed: CondVar,
    #[pin]
    work: Work<Preparer>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for Preparer { self.work }
}

impl Preparer {
    /// A preparer for `core`'s replay.
    pub(crate) fn new(core: &Arc<Volume>) -> Result<Arc<Self>> {
        let prep = Prep::new(PREPARE_MAX);
        Arc::pin_init(
            pin_init!(Self {
                core: core.clone(),
                inner <- new_mutex!(prep),
                changed <- new_condvar!(),
                work <- kernel::new_work!("swarmlog::prepare"),
            }),
            GFP_KERNEL,
        )
    }

    /// A new swarm, whose records of one whole block are `todo`.
    pub(crate) fn new_swarm(&self, todo: KVec<(u64, u64)>) {
        let mut p = self.inner.lock();
        let old = p.new_swarm(todo);
        let wake = p.idle;
        drop(p);
        drop(old);
        if wake {
            self.changed.notify_all();
        }
    }

    /// Tells the preparer's thread to return.
    pub(crate) fn stop(&self) {
        self.inner.lock().stop = true;
        self.changed.notify_all();
    }

    /// Reads claim `c`'s block from the pmem and puts it (or abandons the
    /// claim if that fails).
    fn prepare(&self, c: Claim) {
        let data = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL).and_then(|mut data| {
            let at = c.offset + RECORD_HEADER_SIZE as u64;
            self.core.log().read(at, &mut data).map(|()| data)
        });
        let mut p = self.inner.lock();
        match data {
            Ok(data) => p.put(c, data),
            Err(_) => p.abandon(c),
        }
    }

    /// Prepares one block on the calling (MODIFY) thread: whether there was
    /// one to prepare.
    pub(crate) fn prepare_one(&self) -> bool {
        let Some(c) = self.inner.lock().claim(0) else {
            return false;
        };
        self.prepare(c);
        true
    }

    /// MODIFY's turn has come to message `m`: its prepared block, if any.
    /// A block not ready yet MODIFY reads itself: waiting for the other
    /// thread would cost it more (a wake-up across CPUs in the benchmark
    /// VM takes longer than the read).
    pub(crate) fn take(&self, m: &Message) -> Option<KVec<u8>> {
        let mut p = self.inner.lock();
        let data = p.take(m.seq);
        // The preparer's thread sleeps until half the room is free again,
        // not for each block.
        let wake = p.idle && p.count <= p.max / 2 && data.is_some();
        drop(p);
        if wake {
            self.changed.notify_all();
        }
        data
    }
}

impl WorkItem for Preparer {
    type Pointer = Arc<Preparer>;

    fn run(this: Arc<Preparer>) {
        let _noio = NoIo::new();
        loop {
            let c = {
                let mut p = this.inner.lock();
                loop {
                    if p.stop {
                        return;
                    }
                    if let Some(c) = p.claim(LEAD) {
                        break c;
                    }
                    p.idle = true;
                    this.changed.wait(&mut p);
                    p.idle = false;
                }
            };
            this.prepare(c);
        }
    }
}

#[kernel::prelude::kunit_tests(swarmlog_prepare)]
mod tests {
    use super::*;

    /// The records of one whole block among records `seqs`, of which
    /// every third writes a part of a block.
    fn swarm(seqs: core::ops::RangeInclusive<u64>) -> Result<KVec<(u64, u64)>> {
        let mut v = KVec::new();
        for seq in seqs.filter(|s| s % 3 != 0) {
            v.push((seq, seq * 8192), GFP_KERNEL)?;
        }
        Ok(v)
    }

    fn block(b: u8) -> Result<KVec<u8>> {
        let mut v = bytes::zeroed(4, GFP_KERNEL)?;
        v.fill(b);
        Ok(v)
    }

    #[test]
    fn claims_whole_blocks_in_log_order_up_to_max() -> Result {
        let mut p = Prep::new(3);
        let _ = p.new_swarm(swarm(1..=9)?);
        let seqs: [Option<u64>; 4] = [0, 0, 0, 0].map(|_| p.claim(0).map(|c| c.seq));
        // 3 writes a part of a block; after 3 claims, 3 are being prepared.
        assert_eq!(seqs, [Some(1), Some(2), Some(4), None]);
        assert_eq!(p.count(), 3);
        Ok(())
    }

    #[test]
    fn take_returns_the_block_and_makes_room() -> Result {
        let mut p = Prep::new(2);
        let _ = p.new_swarm(swarm(1..=9)?);
        let (a, b) = (p.claim(0).ok_or(EINVAL)?, p.claim(0).ok_or(EINVAL)?);
        p.put(b, block(2)?);
        p.put(a, block(1)?);
        assert!(p.claim(0).is_none());
        assert_eq!(p.take(1).as_deref(), Some(&[1u8; 4][..]));
        // A record without a prepared block (3: part of a block).
        assert!(p.take(3).is_none());
        assert_eq!(p.count(), 1);
        assert_eq!(p.claim(0).map(|c| c.seq), Some(4));
        assert_eq!(p.take(2).as_deref(), Some(&[2u8; 4][..]));
        Ok(())
    }

    #[test]
    fn claims_lead_modify_and_drop_what_it_passed() -> Result {
        let mut p = Prep::new(8);
        let _ = p.new_swarm(swarm(1..=12)?);
        let first = p.claim(0).ok_or(EINVAL)?;
        // MODIFY applies 1 to 5 itself meanwhile.
        assert!(p.take(5).is_none());
        p.put(first, block(1)?);
        assert_eq!(p.count(), 0);
        // Whole blocks after 5: 7, 8, 10, 11. With a lead of 2, MODIFY is
        // left 7 and 8.
        assert_eq!(p.claim(2).map(|c| c.seq), Some(10));
        assert_eq!(p.claim(0).map(|c| c.seq), Some(11));
        Ok(())
    }

    #[test]
    fn a_new_swarm_drops_the_old_ones_claims() -> Result {
        let mut p = Prep::new(2);
        let _ = p.new_swarm(swarm(1..=4)?);
        let (a, b) = (p.claim(0).ok_or(EINVAL)?, p.claim(0).ok_or(EINVAL)?);
        p.put(a, block(1)?);
        let _ = p.new_swarm(swarm(5..=10)?);
        assert_eq!(p.count(), 0);
        p.put(b, block(2)?);
        p.abandon(b);
        assert_eq!(p.count(), 0);
        assert!(p.take(1).is_none());
        // The new swarm's first whole block.
        let c = p.claim(0).ok_or(EINVAL)?;
        p.abandon(c);
        assert_eq!((c.seq, p.count()), (5, 0));
        Ok(())
    }
}
