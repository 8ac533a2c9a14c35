// SPDX-License-Identifier: GPL-2.0

//! The device layer: a running volume made of a log and an array.
//!
//! [`Core`] holds the log, the array, the cache of written blocks and the
//! cache of table blocks; its state is private to this folder. Each concern
//! has its own file:
//!
//! - `write.rs`: the write path (log the request, apply it to the cache,
//!   acknowledge once the record is durable: flush and FUA need nothing
//!   more);
//! - `read.rs`: the read path (each block from the cache or from the array,
//!   verified against its checksum);
//! - `cp.rs`: consistency points and the loop that takes them;
//! - `sums.rs`: the checksums the CP loop computes ahead of the CP;
//! - `pace.rs`: the CP loop's pacing while writers are active;
//! - `tables.rs`: the table-block cache;
//! - `cache.rs`: the cache of written blocks (in memory, or pointers into
//!   the log); `log.rs`: the log at run time;
//! - `array.rs`: the array, behind a trait so that tests run on memory;
//! - `replaying.rs`: the narrow interface replay drives (it never sees
//!   [`Core`]'s fields);
//! - `open.rs`: format, and opening a volume from its two devices;
//! - `frontend.rs`: what the exposed disk hands its bios to;
//! - `stats.rs`: the counters and `status`.
//!
//! Lower layers (`sys`, `format`) never name anything here; replay and
//! the admin layer above use only what is `pub(crate)`.

mod array;
pub(crate) mod cache;
mod cp;
mod frontend;
#[cfg(CONFIG_KUNIT = "y")]
mod fuzz;
pub(crate) mod log;
mod open;
mod pace;
#[cfg(CONFIG_KUNIT = "y")]
mod persist;
mod read;
mod replaying;
mod room;
#[cfg(CONFIG_KUNIT = "y")]
mod slot_tests;
mod slots;
mod stats;
mod sums;
mod tables;
#[cfg(CONFIG_KUNIT = "y")]
mod tests;
mod write;

use kernel::{
    new_condvar, new_mutex, new_work,
    prelude::*,
    str::{CStr, CString},
    sync::{Arc, CondVar, Mutex},
    workqueue::{Work, WorkItem},
};

use crate::format::array::Layout;
use crate::format::log::CpMarker;
use crate::sys::bio::Chunk;
use crate::sys::blockdev::BlockDevice;
use crate::sys::blocklog::LogDevice;
use crate::sys::dax::Media;
use cache::{Cache, SECTORS};
use log::{Log, Position};
use stats::Stats;
use tables::Tables;

pub(crate) use array::Array;
pub(crate) use frontend::Frontend;
pub(crate) use open::{format, open};

/// The volume the module runs: its log on DAX pmem, its array a block
/// device.
pub(crate) type Volume = Core<LogDevice, BlockDevice>;

/// Condition variables the writers of a block log wait on for their
/// record's turn (`Core::turns`).
const TURNS: usize = 64;

/// How much a volume may hold in memory and how often it takes a CP (the
/// module's parameters, read at `enable`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most blocks held in memory (dirty and committing) before writers
    /// wait for a CP.
    pub(crate) cache_blocks: usize,
    /// Milliseconds between timed CPs.
    pub(crate) cp_interval_ms: u32,
    /// Percent of the time the CP loop works while it is paced
    /// (`pace.rs`); 100: never paced.
    pub(crate) cp_share: u32,
    /// A test fault of every CP; only test kernels set one.
    pub(crate) cp_fault: CpFault,
}

/// A test fault of CPs, set only in test kernels (debugfs `replay_fault`
/// 3 and 4), for scenarios to show what a power cut does to a CP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_KUNIT = "y"), allow(dead_code))]
pub(crate) enum CpFault {
    /// None.
    None,
    /// A CP stops after writing `cp::STALL_BLOCKS` of its data blocks and
    /// waits for the volume to stop, for a power cut to cut it short.
    Stall,
    /// A CP writes its marker without flushing the array first (the bug
    /// the lost-cache fault model must catch).
    NoFlush,
    /// A block log's records (and markers) are written without FUA.
    NoFua,
}

impl Limits {
    /// Most table blocks kept cached after a CP: a quarter of the cache's
    /// budget.
    fn table_blocks(&self) -> usize {
        (self.cache_blocks / 4).max(1)
    }
}

/// Everything the write path, the read path and CPs share.
struct State {
    /// Where the next record goes; every record before it is in the cache
    /// (and acknowledged).
    head: Position,
    /// Where the next record goes: past `head` by the records of a block
    /// log being written (`write.rs`), at `head` otherwise.
    reserved: Position,
    /// Records of a block log being written.
    in_flight: u64,
    /// A record of a block log failed to be written: no later write may be
    /// acknowledged (it would be past a hole in the log).
    broken: bool,
    /// Where the uncommitted records begin (the current CP marker).
    tail: Position,
    /// Slot and generation of the current CP marker.
    cp_slot: usize,
    cp_gen: u64,
    /// The head when the running (or failed, to be retried) CP began.
    cp_target: Option<Position>,
    cache: Cache,
    tables: Tables,
    /// Blocks cached in the log whose checksum the CP loop computes ahead.
    sums: sums::Sums,
    /// A CP is wanted now (log or cache full, or asked for).
    kick: bool,
    /// Heads the log had, where a CP may free it up to (`room.rs`).
    marks: room::Marks,
    /// The volume is going away: the CP loop ends, writers fail.
    stop: bool,
    /// The log's free slots (none without a slot area).
    free_slots: slots::FreeSlots,
}

/// A running volume over log media `M` and array `A`.
#[pin_data]
pub(crate) struct Core<M: Media, A: Array> {
    name: CString,
    log: Log<M>,
    array: A,
    layout: Layout,
    limits: Limits,
    /// The target of a CP that a crash cut short, from the log's intent
    /// (`Log::cp_intent`); `None` if none was.
    interrupted: Option<Position>,
    #[pin]
    state: Mutex<State>,
    /// Signalled when log space or cache room is freed, and when a CP is
    /// wanted or the volume stops.
    #[pin]
    changed: CondVar,
    /// Writers of a block log whose record is written, waiting for its
    /// turn to be applied: the one whose record has sequence number `s`
    /// waits on `turns[s % TURNS]` (`write.rs`), so that each record
    /// applied wakes the writer of the next, not every writer in flight.
    #[pin]
    turns: [CondVar; TURNS],
    /// Serialises CPs.
    #[pin]
    cp_lock: Mutex<()>,
    stats: Stats,
    #[pin]
    cp_work: Work<Core<M, A>>,
}

kernel::impl_has_work! {
    impl{M: Media + 'static, A: Array} HasWork<Self> for Core<M, A> { self.cp_work }
}

impl<M: Media + 'static, A: Array> WorkItem for Core<M, A> {
    type Pointer = Arc<Core<M, A>>;

    fn run(this: Arc<Core<M, A>>) {
        this.cp_loop();
    }
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// A volume `name` over `log` and `array` (laid out as `layout`), whose
    /// log's CP marker `cp` is in slot `cp_slot`, and `interrupted` the
    /// target of a CP a crash cut short: nothing logged past the marker
    /// yet (replay moves the head with [`Self::commit_through`]).
    fn new(
        name: &CStr,
        log: Log<M>,
        array: A,
        layout: Layout,
        (cp_slot, cp, interrupted): (usize, CpMarker, Option<Position>),
        limits: Limits,
    ) -> Result<Arc<Self>> {
        let tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let sums = sums::Sums::new()?;
        let marks = room::Marks::new()?;
        let free_slots = slots::FreeSlots::new(log.geometry().slots)?;
        if limits.cp_fault == CpFault::NoFua {
            log.set_no_fua(true);
        }
        Arc::pin_init(
            try_pin_init!(Core {
                name: CString::try_from(name)?,
                log,
                array,
                layout,
                limits,
                interrupted,
                state <- new_mutex!(State {
                    head: tail,
                    reserved: tail,
                    in_flight: 0,
                    broken: false,
                    tail,
                    cp_slot,
                    cp_gen: cp.generation,
                    cp_target: None,
                    cache: Cache::new(),
                    tables: Tables::new(),
                    sums,
                    kick: false,
                    marks,
                    stop: false,
                    free_slots,
                }),
                changed <- new_condvar!(),
                turns <- pin_init::pin_init_array_from_fn(|_| new_condvar!("swarmlog::turn")),
                cp_lock <- new_mutex!(()),
                stats: Stats::default(),
                cp_work <- new_work!("swarmlog::cp"),
            }),
            GFP_KERNEL,
        )
    }

    /// The volume's name, for the kernel log.
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    /// Sectors the volume exposes.
    pub(crate) fn sectors(&self) -> u64 {
        self.layout.data_blocks * SECTORS
    }

    /// Whether the log is on a block device (not pmem).
    pub(crate) fn log_on_block(&self) -> bool {
        self.log.geometry().is_block()
    }

    /// The CP generation in force.
    pub(crate) fn cp_generation(&self) -> u64 {
        self.state.lock().cp_gen
    }

    /// Stops the volume: the CP loop ends, waiting writers fail.
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake_all();
    }

    /// Wakes every waiter: the volume stops, or can take no more writes.
    fn wake_all(&self) {
        self.changed.notify_all();
        for t in self.turns.iter() {
            t.notify_all();
        }
    }

    /// Where the writer of the record with sequence number `seq` waits for
    /// its turn.
    fn turn(&self, seq: u64) -> &CondVar {
        let i = (seq % TURNS as u64) as usize;
        self.turns.get(i).unwrap_or(&self.changed)
    }

    /// The sector range `[sector, sector + bytes / 512)` in sectors, if it
    /// is whole sectors inside the volume (`EINVAL`, `EIO` if not).
    fn check_range(&self, sector: u64, bytes: u32) -> Result<u32> {
        if bytes % 512 != 0 {
            return Err(EINVAL);
        }
        let nr = bytes / 512;
        match sector.checked_add(u64::from(nr)) {
            Some(end) if end <= self.sectors() => Ok(nr),
            _ => Err(EIO),
        }
    }
}

/// A request's place and data as the write and read paths see them: a bio
/// in the module, a buffer in tests.
pub(crate) trait Request {
    /// First sector.
    fn sector(&self) -> u64;
    /// Length in bytes.
    fn size(&self) -> u32;
    /// Calls `f` on each piece of the data in order (a read fills them, a
    /// write copies them), and stops at its first error.
    fn for_each_chunk<F: FnMut(&mut Chunk<'_>) -> Result>(&self, f: F) -> Result;
}

impl Request for crate::sys::bio::Bio {
    fn sector(&self) -> u64 {
        self.sector()
    }

    fn size(&self) -> u32 {
        self.size()
    }

    fn for_each_chunk<F: FnMut(&mut Chunk<'_>) -> Result>(&self, f: F) -> Result {
        self.for_each_chunk(f)
    }
}
