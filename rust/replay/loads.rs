// SPDX-License-Identifier: GPL-2.0

//! LOADs on the volume: a work item per LOAD on the LOAD queue of
//! `swarm_width` workers, or, for a LOAD whose one read is a table block, a
//! read in flight whose end queues the item that caches it; their
//! completions, for the MODIFY path; and the LOADs in flight by the table
//! blocks they read, which a later message reading only those joins.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::{
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, CondVar, Mutex},
    time::{Delta, Instant, Monotonic},
    workqueue::{Work, WorkItem},
};

use super::message::Message;
use crate::device::Volume;
use crate::sys::blockdev::{ReadItem, ReadSlot};
use crate::sys::noio::NoIo;

/// LOAD completions, from the workers to the MODIFY path.
#[pin_data]
pub(super) struct Completions {
    #[pin]
    pub(super) list: Mutex<KVec<(usize, Result)>>,
    #[pin]
    pub(super) arrived: CondVar,
    /// Nanoseconds LOADs spent queued, from their transfer to a worker
    /// taking them.
    pub(super) queued_ns: AtomicU64,
    /// Nanoseconds LOADs spent in their workers (reads, checks).
    pub(super) run_ns: AtomicU64,
    /// A completion could not be queued (the room reserved for the swarm
    /// ran out): the MODIFY path must not wait for it.
    pub(super) lost: AtomicBool,
}

#[pin_data]
pub(super) struct LoadWork {
    pub(super) core: Arc<Volume>,
    pub(super) done: Arc<Completions>,
    pub(super) idx: usize,
    pub(super) msg: Message,
    pub(super) queued: Instant<Monotonic>,
    #[pin]
    pub(super) work: Work<LoadWork>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for LoadWork { self.work }
}

impl WorkItem for LoadWork {
    type Pointer = Arc<LoadWork>;

    fn run(this: Arc<LoadWork>) {
        let _noio = NoIo::new();
        let started = Instant::<Monotonic>::now();
        let res = this.core.load(this.msg.partial_blocks());
        this.done
            .finish(this.idx, res, started - this.queued, started.elapsed());
    }
}

impl Completions {
    /// LOAD `idx` ended with `res`, having waited `queued` for a worker and
    /// run `ran`.
    pub(super) fn finish(&self, idx: usize, res: Result, queued: Delta, ran: Delta) {
        let nanos = |d: Delta| d.as_nanos().max(0) as u64;
        self.queued_ns.fetch_add(nanos(queued), Relaxed);
        self.run_ns.fetch_add(nanos(ran), Relaxed);
        let mut list = self.list.lock();
        // Room for every message of the swarm was reserved up front; if a
        // completion still finds none, it is not dropped silently: the
        // waiter is told (`wait`), rather than left asleep for it forever.
        if list.push_within_capacity((idx, res)).is_err() {
            self.lost.store(true, Relaxed);
        }
        self.arrived.notify_all();
    }

    /// The next completion, sleeping until one arrives: `(idx, result,
    /// nanoseconds slept)`. If one was lost, `ENOMEM` for no message
    /// (`usize::MAX`), which stops the swarm with that error.
    pub(super) fn wait(&self) -> (usize, Result, u64) {
        let mut slept = 0;
        let mut list = self.list.lock();
        loop {
            if let Some((idx, res)) = list.pop() {
                return (idx, res, slept);
            }
            if self.lost.load(Relaxed) {
                return (usize::MAX, Err(ENOMEM), slept);
            }
            let t = Instant::<Monotonic>::now();
            self.arrived.wait(&mut list);
            slept += t.elapsed().as_nanos().max(0) as u64;
        }
    }
}

/// A LOAD whose one read is a table block (most LOADs): the transfer
/// starts its read at once, without a worker, and the read's end queues
/// this item on the LOAD queue, which picks the copy in force and caches
/// it. So a LOAD holds no worker while its read is in flight, and no
/// worker has to wake up to start it.
#[pin_data]
pub(super) struct TableRead {
    pub(super) core: Arc<Volume>,
    pub(super) done: Arc<Completions>,
    pub(super) idx: usize,
    pub(super) msg: Message,
    /// The table block read.
    pub(super) table: u64,
    /// Where its read lands.
    pub(super) target: ReadSlot,
    pub(super) started: Instant<Monotonic>,
    #[pin]
    pub(super) work: Work<TableRead>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for TableRead { self.work }
}

impl ReadItem for TableRead {
    fn slot(&self) -> &ReadSlot {
        &self.target
    }
}

impl WorkItem for TableRead {
    type Pointer = Arc<TableRead>;

    fn run(this: Arc<TableRead>) {
        let _noio = NoIo::new();
        let res = match this.target.take() {
            Some(Ok(mut both)) => this
                .core
                .table_from(this.table, &mut both)
                .and_then(|t| this.core.cache_table(this.table, t))
                .map(|_| ()),
            Some(Err(e)) => Err(e),
            None => Err(EIO),
        };
        // Anything else the LOAD needs (nothing, unless the cache changed).
        let res = res.and_then(|()| this.core.load(this.msg.partial_blocks()));
        let waited = Delta::ZERO;
        this.done
            .finish(this.idx, res, waited, this.started.elapsed());
    }
}

/// The LOADs in flight by the table blocks they read, so that a message
/// whose only reads are table blocks one LOAD in flight is reading joins
/// that LOAD ([`Start::Joined`]) instead of reading them again (the share
/// of such second reads grows with the width: performance.rst).
pub(super) struct InFlight {
    /// Table block -> the LOAD (its message's index) reading it.
    pub(super) by_table: RBTree<u64, usize>,
    /// LOAD -> the table blocks it reads and the messages that joined it.
    pub(super) loads: RBTree<usize, Reading>,
    /// Messages that joined a LOAD still in flight.
    pub(super) riders: usize,
}

/// A LOAD in flight that reads table blocks.
pub(super) struct Reading {
    pub(super) tables: KVec<u64>,
    pub(super) riders: KVec<(usize, Message)>,
}

impl InFlight {
    pub(super) fn new() -> Self {
        Self {
            by_table: RBTree::new(),
            loads: RBTree::new(),
            riders: 0,
        }
    }

    /// The one LOAD in flight that reads every block of `tables`, if any.
    pub(super) fn reader_of(&self, tables: &[u64]) -> Option<usize> {
        let first = *self.by_table.get(tables.first()?)?;
        tables
            .iter()
            .all(|t| self.by_table.get(t) == Some(&first))
            .then_some(first)
    }

    /// Message `idx` joins LOAD `reader`.
    pub(super) fn join(&mut self, reader: usize, idx: usize, m: Message) -> Result {
        let r = self.loads.get_mut(&reader).ok_or(EINVAL)?;
        r.riders.push((idx, m), GFP_KERNEL)?;
        self.riders += 1;
        Ok(())
    }

    /// LOAD `idx` was issued and reads `tables` (those no other LOAD in
    /// flight reads already become its own). On failure (allocation)
    /// nothing is registered.
    pub(super) fn issued(&mut self, idx: usize, mut tables: KVec<u64>) -> Result {
        tables.retain(|t| self.by_table.get(t).is_none());
        if tables.is_empty() {
            return Ok(());
        }
        let r = Reading {
            tables,
            riders: KVec::new(),
        };
        self.loads.try_create_and_insert(idx, r, GFP_KERNEL)?;
        let mut res = Ok(());
        if let Some(r) = self.loads.get(&idx) {
            for &t in r.tables.iter() {
                if let Err(e) = self.by_table.try_create_and_insert(t, idx, GFP_KERNEL) {
                    res = Err(e);
                    break;
                }
            }
        }
        if res.is_err() {
            // Undo: the LOAD and the tables registered as its own.
            self.ended(idx);
        }
        res
    }

    /// LOAD `idx` ended: its tables are no longer in flight; returns the
    /// messages that joined it.
    pub(super) fn ended(&mut self, idx: usize) -> KVec<(usize, Message)> {
        let Some(r) = self.loads.remove(&idx) else {
            return KVec::new();
        };
        for t in r.tables.iter() {
            if self.by_table.get(t) == Some(&idx) {
                self.by_table.remove(t);
            }
        }
        self.riders -= r.riders.len();
        r.riders
    }
}

#[kernel::prelude::kunit_tests(swarmlog_in_flight)]
mod in_flight_tests {
    use super::*;

    use crate::format::log::Op;

    fn tables(t: &[u64]) -> Result<KVec<u64>> {
        let mut v = KVec::new();
        v.extend_from_slice(t, GFP_KERNEL)?;
        Ok(v)
    }

    #[test]
    fn a_completion_with_no_room_is_an_error_not_a_sleep() -> Result {
        // Room for one completion: the second finds none. Before, it was
        // dropped, and the MODIFY path slept forever waiting for it; now
        // the wait returns ENOMEM for no message, which stops the swarm.
        let done = Arc::pin_init(
            pin_init!(Completions {
                list <- kernel::new_mutex!(KVec::new()),
                arrived <- kernel::new_condvar!(),
                queued_ns: AtomicU64::new(0),
                run_ns: AtomicU64::new(0),
                lost: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )?;
        done.list.lock().reserve(1, GFP_KERNEL)?;
        let zero = Delta::from_nanos(0);
        done.finish(3, Ok(()), zero, zero);
        let (idx, res, _) = done.wait();
        assert!(idx == 3 && res.is_ok());
        done.finish(4, Err(EIO), zero, zero);
        done.finish(5, Ok(()), zero, zero);
        let (idx, res, _) = done.wait();
        assert!(idx == 4 && res == Err(EIO));
        let (idx, res, _) = done.wait();
        assert!(idx == usize::MAX && res == Err(ENOMEM));
        Ok(())
    }

    #[test]
    fn joins_only_a_load_reading_every_table() -> Result {
        let m = Message::new(1, 0, Op::Write, 0, 8);
        let mut f = InFlight::new();
        assert_eq!(f.reader_of(&[4]), None);
        f.issued(0, tables(&[4, 5])?)?;
        // 5 is read by 0 already: 1 owns only 6.
        f.issued(1, tables(&[5, 6])?)?;
        f.issued(2, KVec::new())?;
        assert_eq!(f.reader_of(&[4]), Some(0));
        assert_eq!(f.reader_of(&[4, 5]), Some(0));
        assert_eq!(f.reader_of(&[6]), Some(1));
        assert_eq!(f.reader_of(&[5, 6]), None);
        assert_eq!(f.reader_of(&[7]), None);
        assert_eq!(f.reader_of(&[]), None);
        f.join(0, 7, m)?;
        f.join(0, 8, m)?;
        assert_eq!(f.join(2, 9, m), Err(EINVAL));
        let riders = f.ended(0);
        assert_eq!(riders.iter().map(|r| r.0).sum::<usize>(), 15);
        // Its tables are no longer in flight; 1's still are.
        assert_eq!(f.reader_of(&[4]), None);
        assert_eq!(f.reader_of(&[6]), Some(1));
        assert!(f.ended(0).is_empty());
        assert!(f.ended(1).is_empty());
        assert_eq!(f.reader_of(&[6]), None);
        Ok(())
    }
}
