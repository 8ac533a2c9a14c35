// SPDX-License-Identifier: GPL-2.0

//! LOADs on the volume: a work item per LOAD on the LOAD queue of
//! `swarm_width` workers, and their completions, for the MODIFY path. A
//! LOAD reads the old contents of the blocks its record changes in part,
//! with their table blocks (`device/replaying.rs`).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::{
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    time::{Delta, Instant, Monotonic},
    workqueue::{Work, WorkItem},
};

use super::message::Message;
use crate::device::Volume;
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
        let res = this.core.load(this.msg.seq, this.msg.partial_blocks());
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

#[kernel::prelude::kunit_tests(swarmlog_load_completions)]
mod completion_tests {
    use super::*;

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
}
