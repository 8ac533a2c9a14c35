// SPDX-License-Identifier: GPL-2.0

//! Replay by a swarm, after a crash: the records the log holds past its CP
//! marker are applied to the volume before it is exposed. As jbd2's
//! recovery is a sequence of passes, replay is a sequence of stages, each
//! in its own file:
//!
//! 1. scan (`initiator.rs`): the initiator scans the log on its own thread
//!    and turns the records into messages (`message.rs`), delivered in
//!    swarms;
//! 2. the swarm engine (`engine.rs`): transfer, LOAD, MODIFY, suspend,
//!    retransfer, skip, panic, generic over the [`engine::FileSystem`] it
//!    drives; the volume is that file system through `adapter.rs`, whose
//!    LOADs run in parallel (`loads.rs`) while one MODIFY path applies the
//!    messages in log order (a record of one whole block is cached as a
//!    pointer to its data in the log, as the write path caches it); every
//!    transition goes to the trace (`trace.rs`);
//! 3. commit ([`replay`], this file): a CP of the replayed state, which
//!    moves the log's CP marker past the replayed records.
//!
//! Replay talks to the device only through its narrow interface
//! (`device/replaying.rs`).

mod adapter;
mod engine;
mod initiator;
mod loads;
mod message;
mod slots;
pub(crate) mod trace;

use core::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, Release},
};
use kernel::{new_condvar, new_mutex, prelude::*, sync::Arc, types::ScopeGuard};

use crate::device::log::Position;
use crate::device::Volume;
use crate::format::array::BLOCK_SIZE;
use crate::format::log::{CpMarker, ScanEnd, MAX_RECORD_DATA};
use crate::format::Invalid;
use crate::sys::bytes;
use crate::sys::wq::OwnedQueue;
use adapter::VolumeFs;
use engine::run_swarm;
use initiator::Initiator;
use loads::{Completions, LoadWork};
use message::Message;
use trace::Trace;

pub(crate) use engine::{Counters, Fault, Panic};

/// Messages in a swarm: enough to keep `swarm_width` LOADs busy (most
/// messages need no read: those that write whole blocks, and those whose
/// blocks the cache holds whole already; and at each swarm's end the LOADs
/// in flight drain to none),
/// bounded so memory does not grow with the log: 256 per LOAD slot, at
/// least 1024, at most 16384 (about 4 MiB of messages; the initiator's
/// first swarm is a sixteenth of that). Longer swarms have fewer ends,
/// where the LOADs in flight drain (the sizes tried: performance.rst).
fn swarm_size(width: usize) -> usize {
    (256 * width).clamp(1024, 16384)
}

/// The memory a replay holds besides the cache: the swarm (and the two the
/// initiator has ahead), its queues and waiter lists, the completion list,
/// MODIFY's record buffer, and a LOAD (work item, the old block it reads
/// and the two copies of its table block) per slot of `width`.
fn working_set(size: usize, width: usize) -> usize {
    use core::mem::size_of;
    let load = size_of::<LoadWork>() + 3 * BLOCK_SIZE;
    size * (3 * size_of::<Message>() + 3 * size_of::<usize>() + size_of::<(usize, Result)>())
        + MAX_RECORD_DATA as usize
        + width * load
}

/// The last replay, for `status`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) ran: bool,
    pub(crate) counters: Counters,
    pub(crate) duration_us: u64,
    /// The most memory the replay held at a swarm's end: its own buffers
    /// and the cached blocks and table blocks (bytes).
    pub(crate) peak_bytes: u64,
    /// Blocks read that a CP cut short by the crash had rewritten,
    /// proved by its pending table copy.
    pub(crate) pending_verified: u64,
    /// Mean time a LOAD waited for a worker, and spent in it (reads and
    /// checks), in microseconds.
    pub(crate) load_wait_us: u64,
    pub(crate) load_run_us: u64,
    /// Time the MODIFY thread slept waiting for LOADs, and from the last
    /// LOAD's end to the replay's (microseconds).
    pub(crate) modify_slept_us: u64,
    pub(crate) tail_us: u64,
    pub(crate) panic: Option<Panic>,
    /// The operator stopped it (`enable` 0).
    pub(crate) aborted: bool,
    /// Sequence numbers of the first and last skipped messages.
    pub(crate) first_skipped: u64,
    pub(crate) last_skipped: u64,
    pub(crate) discarded: bool,
    /// The corrupt record found, if any.
    pub(crate) corrupt: Option<Corrupt>,
    /// Whether it and the records after it were dropped on request.
    pub(crate) corrupt_discarded: bool,
}

/// A corrupt record: where the scan of the log ended although a valid
/// record follows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The sequence number the corrupt record should carry.
    pub(crate) seq: u64,
    /// Its log offset.
    pub(crate) offset: u64,
    /// The log offset of the valid record after it (its own if its data
    /// is unreadable).
    pub(crate) next_offset: u64,
    /// Why it does not validate: a bad line of the pmem
    /// ([`Invalid::Unreadable`], [`Invalid::DataUnreadable`]) or a check
    /// that fails.
    pub(crate) cause: Option<Invalid>,
}

/// A running replay's progress, for `status` while `enable` runs it, and
/// the operator's request to stop it. The adapter counts as the messages
/// move (`adapter.rs`), so that the counts grow within a swarm.
#[derive(Default)]
pub(crate) struct Progress {
    /// Messages applied (MODIFIED or SKIPPED).
    pub(crate) messages: AtomicU64,
    /// Messages the scan has delivered so far (a swarm or two ahead of
    /// MODIFY): the total known so far.
    pub(crate) scanned: AtomicU64,
    /// Whether the scan has reached the log's valid end: `scanned` is then
    /// the replay's total, and the time left can be estimated.
    pub(crate) scan_done: AtomicBool,
    /// Swarms begun.
    pub(crate) swarms: AtomicU64,
    /// LOADs issued.
    pub(crate) loads: AtomicU64,
    /// Messages skipped.
    pub(crate) skipped: AtomicU64,
    /// Stop as soon as the MODIFY path looks (`enable` 0 during the
    /// replay).
    pub(crate) abort: AtomicBool,
}

impl Progress {
    /// A new replay begins: everything at zero, no abort asked.
    pub(crate) fn reset(&self) {
        for v in [
            &self.messages,
            &self.scanned,
            &self.swarms,
            &self.loads,
            &self.skipped,
        ] {
            v.store(0, Relaxed);
        }
        self.scan_done.store(false, Relaxed);
        self.abort.store(false, Relaxed);
    }
}

/// How to replay.
pub(crate) struct Params<'a> {
    /// Most LOADs in flight.
    pub(crate) width: usize,
    /// Drop the records that have to be skipped.
    pub(crate) discard_skipped: bool,
    /// Replay up to a corrupt record and drop it and the records after it.
    pub(crate) discard_corrupt: bool,
    /// On a block log, check the data sum of every record before replaying
    /// it, not only of those a power cut may have torn.
    pub(crate) check_all: bool,
    /// Where the transitions go.
    pub(crate) trace: &'a Trace,
    /// Where the progress goes, and where an abort comes from.
    pub(crate) progress: &'a Progress,
    /// An injected fault (test kernels: the debugfs `replay_fault`).
    pub(crate) fault: Fault,
    /// Test kernels: a fault of every CP of the volume (debugfs
    /// `replay_fault` 3 and 4).
    pub(crate) cp_fault: crate::device::CpFault,
}

/// Why [`replay`] did not finish.
pub(crate) enum Stop {
    /// An error (allocation, log read).
    Error(Error),
    /// The panic state.
    Panic(Panic),
    /// Messages were skipped and not discarded: the log is kept.
    Skipped,
    /// A complete record is corrupt (valid records follow it): the log is
    /// kept.
    Corrupt(Corrupt),
    /// The operator stopped the replay (`enable` 0): the log keeps every
    /// record not yet committed.
    Aborted,
}

/// Replays the log from `from` with at most `p.width` LOADs in flight. With
/// `p.discard_skipped`, skipped records are dropped (after a warning each);
/// else any skipped record stops activation with the log kept. On success
/// the replayed state is committed by a CP. Returns the end of the log; a
/// log without records past `from` leaves `report` and the trace as they
/// were.
pub(crate) fn replay(
    core: &Arc<Volume>,
    from: &CpMarker,
    p: &Params<'_>,
    report: &core::cell::RefCell<Report>,
) -> Result<ScanEnd, Stop> {
    let (width, discard_skipped) = (p.width.max(1), p.discard_skipped);
    let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
    let queue = OwnedQueue::new_io(c"swarmlog-load", width.min(512) as i32).map_err(Stop::Error)?;
    let size = swarm_size(width);
    let done = Arc::pin_init(
        pin_init!(Completions {
            list <- new_mutex!(KVec::new()),
            arrived <- new_condvar!(),
            queued_ns: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        }),
        GFP_KERNEL,
    )
    .map_err(Stop::Error)?;
    done.list
        .lock()
        .reserve(size, GFP_KERNEL)
        .map_err(|_| Stop::Error(ENOMEM))?;
    let mut data = KVec::new();
    bytes::resize_zeroed(&mut data, MAX_RECORD_DATA as usize, GFP_KERNEL)
        .map_err(|_| Stop::Error(ENOMEM))?;
    let timing = done.clone();
    let fs = VolumeFs {
        trace: p.trace,
        progress: p.progress,
        core,
        queue: &queue,
        done,
        data: core::cell::RefCell::new(data),
        report,
        slept_ns: core::cell::Cell::new(0),
        last_load: core::cell::Cell::new(None),
        first_skipped: core::cell::Cell::new(None),
        skips_listed: core::cell::Cell::new(0),
    };
    let mut counters = Counters::default();
    let mut stop: Option<Stop> = None;

    let mut peak = 0usize;
    let cut = core.interrupted_cp();
    let mut cp_redone = false;
    let redone = &mut cp_redone;
    let mut run = |swarm: &mut KVec<Message>,
                   next: Option<Position>,
                   counters: &mut Counters|
     -> Result<(), Stop> {
        p.trace.next_swarm();
        p.progress.swarms.fetch_add(1, Relaxed);
        match run_swarm(&fs, swarm, width, counters, p.fault) {
            Ok(Ok(())) => {}
            Ok(Err(p)) => return Err(Stop::Panic(p)),
            Err(e) if e == ECANCELED && p.progress.abort.load(Relaxed) => {
                return Err(Stop::Aborted)
            }
            Err(e) => return Err(Stop::Error(e)),
        }
        let cached = core.cached_blocks();
        peak = peak.max(working_set(size, width) + cached * BLOCK_SIZE);
        if counters.messages / 10000
            != (counters.messages - counters.messages.min(size as u64)) / 10000
        {
            pr_info!(
                "{}: replay: {} messages in {} swarms so far\n",
                core.name(),
                counters.messages,
                counters.swarms
            );
        }
        // Keep memory bounded: commit what is replayed so far. A skipped
        // record must stay in the log: then the CP writes everything back
        // but leaves the marker at the first skipped record. The initiator
        // reads ahead of `next`, which a CP does not change.
        //
        // After a crash in the middle of a CP, its pending table copies
        // prove the blocks it rewrote (`Core::read_array_block_as`) as long
        // as no other CP overwrites them: no CP before every record before
        // its target is replayed, and then one exactly there, which redoes
        // it (the same records over the same array: the same blocks and
        // entries), so that its own pending copies, should it be cut short
        // too, prove the same blocks. The initiator ends a swarm there.
        if let Some(pos) = next {
            let redo = cut.is_some_and(|c| !*redone && pos.seq >= c.seq);
            if redo || (cached >= core.cache_limit() / 2 && (cut.is_none() || *redone)) {
                *redone |= redo;
                match fs.first_skipped.get() {
                    None => core.commit_through(pos),
                    Some(hold) => core.write_back_holding(pos, hold),
                }
                .map_err(Stop::Error)?;
            }
        }
        Ok(())
    };

    // The initiator scans on its own thread, a swarm or two ahead of the
    // MODIFY path (this thread), which takes its swarms in log order.
    let scan_queue = OwnedQueue::new_io(c"swarmlog-scan", 1).map_err(Stop::Error)?;
    let initiator = Initiator::new(core, *from, size, cut, (p.check_all, p.discard_corrupt))
        .map_err(Stop::Error)?;
    // Whatever way this function ends, the initiator is told to stop
    // (before `scan_queue` is dropped, which waits for it).
    let _stop_initiator = ScopeGuard::new_with_data(initiator.clone(), |i| i.stop());
    scan_queue
        .enqueue(initiator.clone())
        .map_err(|_| Stop::Error(EBUSY))?;
    let mut first = true;
    let mut corrupt = None;
    let as_corrupt = |e: &ScanEnd, next: Option<u64>| {
        next.map(|next_offset| Corrupt {
            seq: e.seq,
            offset: e.offset,
            next_offset,
            cause: Some(e.stop),
        })
    };
    let end = loop {
        let (scanned, end) = initiator.take();
        let Some(mut scanned) = scanned else {
            match end {
                Some(Ok((e, next, head))) => {
                    corrupt = corrupt.or(as_corrupt(&e, next));
                    break Ok(ScanEnd { seq: head, ..e });
                }
                Some(Err(e)) => {
                    // The initiator failed (allocation) or was stopped.
                    if stop.is_none() {
                        stop = Some(Stop::Error(e));
                    }
                    break Err(());
                }
                None => break Err(()),
            }
        };
        // The last swarm comes with the scan's end. A valid record behind
        // the end: the record there is corrupt, not torn, and the last
        // swarm is replayed only if it and what follows are to be dropped.
        let last = scanned.next.is_none() && matches!(end, Some(Ok(_)));
        if let (None, Some(Ok((e, next, head)))) = (scanned.next, end) {
            corrupt = as_corrupt(&e, next);
            if corrupt.is_some() && !p.discard_corrupt {
                break Ok(ScanEnd { seq: head, ..e });
            }
        }
        if first {
            first = false;
            p.trace.start();
            pr_info!(
                "{}: replaying the log from seq {} with swarm_width {width}\n",
                core.name(),
                scanned.msgs.first().map_or(0, |m| m.seq)
            );
        }
        p.progress
            .scanned
            .fetch_add(scanned.msgs.len() as u64, Relaxed);
        if last {
            // `scanned` is the total now; released with it (`status`
            // reads `scan_done` first, with acquire).
            p.progress.scan_done.store(true, Release);
        }
        if let Err(s) = run(&mut scanned.msgs, scanned.next, &mut counters) {
            stop = Some(s);
            initiator.stop();
            break Err(());
        }
    };
    if let Some(c) = corrupt {
        let mut r = report.try_borrow_mut().map_err(|_| Stop::Error(EBUSY))?;
        r.ran = true;
        r.corrupt = Some(c);
        if !p.discard_corrupt {
            // Before anything is replayed, or after the swarms so far.
            r.counters = counters;
            return Err(Stop::Corrupt(c));
        }
        r.corrupt_discarded = true;
    }
    let end = match end {
        // A clean log: nothing to replay, nothing to report. On a block
        // log the window past its end is zeroed all the same: records of
        // the crashed run may have landed there after a torn first one.
        Ok(end) if first && corrupt.is_none() => {
            core.erase_past(Position {
                offset: end.offset,
                seq: end.seq,
            })
            .map_err(Stop::Error)?;
            core.free_unused_slots().map_err(Stop::Error)?;
            return Ok(end);
        }
        Ok(end) => Some(end),
        Err(()) => None,
    };
    let (slept_ns, last_load) = (fs.slept_ns.get(), fs.last_load.get());
    initiator.stop();
    drop(scan_queue);
    // Dropping the LOAD queue waits for every LOAD still running.
    drop(queue);
    {
        let mut r = report.try_borrow_mut().map_err(|_| Stop::Error(EBUSY))?;
        r.ran = true;
        r.counters = counters;
        r.duration_us = start.elapsed().as_micros_ceil().max(0) as u64;
        r.peak_bytes = peak as u64;
        r.pending_verified = core.replay_pending_verified();
        let per_load = |ns: &AtomicU64| ns.load(Relaxed) / 1000 / counters.loads.max(1);
        r.load_wait_us = per_load(&timing.queued_ns);
        r.load_run_us = per_load(&timing.run_ns);
        r.modify_slept_us = slept_ns / 1000;
        r.tail_us = last_load.map_or(0, |t| t.elapsed().as_micros_ceil().max(0) as u64);
        match &stop {
            Some(Stop::Panic(p)) => r.panic = Some(*p),
            Some(Stop::Aborted) => {
                // Those applied, not those delivered (the whole swarm).
                r.aborted = true;
                r.counters.messages = p.progress.messages.load(Relaxed);
            }
            _ => {}
        }
    }
    if let Some(s) = stop {
        return Err(s);
    }
    let end = end.ok_or(Stop::Error(EIO))?;
    if counters.skipped > 0 {
        if !discard_skipped {
            return Err(Stop::Skipped);
        }
        report
            .try_borrow_mut()
            .map_err(|_| Stop::Error(EBUSY))?
            .discarded = true;
    }
    let pos = Position {
        offset: end.offset,
        seq: end.seq,
    };
    // On a block log, records of the crashed run may have landed past the
    // valid end without being acknowledged: gone before anything is
    // appended there (`Log::erase_window`).
    core.erase_past(pos).map_err(Stop::Error)?;
    if corrupt.is_none() && counters.skipped == 0 && (cut.is_none() || cp_redone) {
        // The replayed state is in the cache and the log keeps every record
        // of it: the volume may be exposed now, the CP loop committing it
        // as it commits writes (a crash before that replays the same log
        // again). The final CP was most of the time to available.
        core.replayed_through(pos).map_err(Stop::Error)?;
    } else {
        // Records dropped (corrupt, skipped): the CP marker must move past
        // them before anything is appended over them. Or the CP cut short
        // is still to redo: the records replayed are all before its
        // target, and a CP by the CP loop could take writes after them.
        core.commit_through(pos).map_err(Stop::Error)?;
        core.free_unused_slots().map_err(Stop::Error)?;
    }
    Ok(end)
}
