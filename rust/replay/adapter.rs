// SPDX-License-Identifier: GPL-2.0

//! The volume as the file system of replay ([`FileSystem`]): LOADs are
//! work items (`loads.rs`), MODIFY applies a record to the volume's cache
//! through the device's narrow interface, transitions go to the trace.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{
    new_work,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
};

use super::engine::FileSystem;
use super::loads::{Completions, LoadWork};
use super::message::{Message, Start, State};
use super::trace::Trace;
use super::{Progress, Report};
use crate::device::cache::{is_whole_block, SECTORS};
use crate::device::log::Position;
use crate::device::Volume;

/// Skipped records a replay names one by one in the kernel log; past them,
/// one line says more were skipped (a failed member can skip thousands,
/// and each line costs milliseconds on a serial console).
pub(super) const SKIPS_LISTED: u32 = 16;
use crate::format::log::Op;
use crate::sys::wq::OwnedQueue;

/// The volume's side of one replay.
pub(super) struct VolumeFs<'a> {
    pub(super) trace: &'a Trace,
    /// The counts `status` shows during the replay, and the abort.
    pub(super) progress: &'a Progress,
    pub(super) core: &'a Arc<Volume>,
    pub(super) queue: &'a OwnedQueue,
    pub(super) done: Arc<Completions>,
    /// Record data for MODIFY (which runs on one thread only).
    pub(super) data: core::cell::RefCell<KVec<u8>>,
    pub(super) report: &'a core::cell::RefCell<Report>,
    /// Nanoseconds the MODIFY thread slept waiting for a LOAD.
    pub(super) slept_ns: core::cell::Cell<u64>,
    /// When the MODIFY thread last took a LOAD's completion.
    pub(super) last_load: core::cell::Cell<Option<Instant<Monotonic>>>,
    /// The skipped record with the lowest sequence number so far: where a
    /// mid-replay CP must leave the log's CP marker.
    pub(super) first_skipped: core::cell::Cell<Option<Position>>,
    /// Skipped records named in the kernel log so far (at most
    /// [`SKIPS_LISTED`]; the replay's summary line counts them all).
    pub(super) skips_listed: core::cell::Cell<u32>,
}

impl VolumeFs<'_> {
    /// Queues message `idx`'s LOAD on the LOAD workqueue.
    pub(super) fn enqueue(&self, idx: usize, m: &Message) -> Result {
        let work = Arc::pin_init(
            pin_init!(LoadWork {
                core: self.core.clone(),
                done: self.done.clone(),
                idx,
                msg: *m,
                queued: Instant::now(),
                work <- new_work!("swarmlog::load"),
            }),
            GFP_KERNEL,
        )?;
        self.queue.enqueue(work).map_err(|_| EBUSY)
    }
}

impl FileSystem for VolumeFs<'_> {
    fn start_load(&self, idx: usize, m: &Message) -> Result<Start> {
        if m.blocks().end > self.core.data_blocks() {
            return Err(ENXIO);
        }
        if !self.core.needs_load(m.partial_blocks())? {
            return Ok(Start::Done);
        }
        self.enqueue(idx, m)?;
        Ok(Start::Issued)
    }

    fn wait_load(&self) -> (usize, Result) {
        let (idx, res, ns) = self.done.wait();
        self.slept_ns.set(self.slept_ns.get() + ns);
        self.last_load.set(Some(Instant::now()));
        (idx, res)
    }

    fn modify(&self, m: &Message) -> Result {
        // The record's data follows its header's room: a line on pmem, a
        // unit on a block device.
        let geo = self.core.log().geometry();
        let data_at = match geo.slot_of_header(m.offset) {
            // A slot's record: its data in the slot's block.
            Some(slot) => geo.slot_data(slot).ok_or(EINVAL)?,
            None => m.offset + geo.header_room(),
        };
        if m.op == Op::Write && is_whole_block(m.sector, u64::from(m.nr_sectors)) {
            // Cached as a pointer to the record's data, as the write path
            // caches a whole block: nothing read, nothing held in memory.
            return self
                .core
                .modify_whole_logged(m.sector / SECTORS, (data_at, m.seq));
        }
        let mut data = self.data.try_borrow_mut().map_err(|_| EBUSY)?;
        self.core.modify_logged(
            (m.op, m.sector, u64::from(m.nr_sectors)),
            (data_at, m.seq),
            &mut data,
        )
    }

    fn skipped(&self, m: &Message, err: Error) {
        let listed = self.skips_listed.get();
        match listed.cmp(&SKIPS_LISTED) {
            core::cmp::Ordering::Less => pr_warn!(
                "{}: replay: record seq {} (sectors {}-{}) skipped: its part of the array is unavailable or damaged ({:?}); the record is kept\n",
                self.core.name(),
                m.seq,
                m.sector,
                m.sector + u64::from(m.nr_sectors).saturating_sub(1),
                err
            ),
            core::cmp::Ordering::Equal => pr_warn!(
                "{}: replay: more records skipped; not listed one by one, the replay's summary counts them\n",
                self.core.name()
            ),
            core::cmp::Ordering::Greater => {}
        }
        self.skips_listed.set(listed.saturating_add(1));
        if self.first_skipped.get().is_none_or(|p| m.seq < p.seq) {
            self.first_skipped.set(Some(Position {
                offset: m.offset,
                seq: m.seq,
            }));
        }
        let Ok(mut r) = self.report.try_borrow_mut() else {
            return;
        };
        if r.first_skipped == 0 {
            r.first_skipped = m.seq;
        }
        r.last_skipped = m.seq;
    }

    fn transition(&self, m: &Message, to: State) {
        self.trace.record(m.seq, to);
        let p = self.progress;
        match to {
            State::Loading => p.loads.fetch_add(1, Relaxed),
            State::Skipped => {
                p.skipped.fetch_add(1, Relaxed);
                p.messages.fetch_add(1, Relaxed)
            }
            State::Modified => p.messages.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    fn stop_requested(&self) -> bool {
        self.progress.abort.load(Relaxed)
    }

    fn delivered(&self, msgs: &[Message]) {
        self.trace
            .record_all(msgs.iter().map(|m| m.seq), State::New);
    }
}
