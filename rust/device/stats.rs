// SPDX-License-Identifier: GPL-2.0

//! The counters of a running volume and its `status` lines.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

use super::{Array, Core};
use crate::format::array::BLOCK_SIZE;
use crate::sys::dax::Media;

/// Counters shown in `status`.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) writes: AtomicU64,
    pub(super) write_bytes: AtomicU64,
    pub(super) discards: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) reads: AtomicU64,
    pub(super) read_bytes: AtomicU64,
    pub(super) log_full_waits: AtomicU64,
    pub(super) checksum_errors: AtomicU64,
    pub(super) io_errors: AtomicU64,
    pub(super) cp_count: AtomicU64,
    /// CPs that freed only the oldest part of the log (`room.rs`).
    pub(super) cp_partial: AtomicU64,
    pub(super) cp_blocks: AtomicU64,
    /// Time spent in CPs that committed something, in microseconds.
    pub(super) cp_duration_us: AtomicU64,
    /// Time spent freeing those CPs' blocks after them, in microseconds.
    pub(super) cp_free_us: AtomicU64,
    pub(super) cp_errors: AtomicU64,
    /// Blocks replay read that matched their entry in the pending table
    /// copy of a CP the crash cut short (`read.rs`).
    pub(super) replay_pending_verified: AtomicU64,
    pub(super) checksums_ahead: AtomicU64,
    /// Time the CP loop slept to leave writers the CPU (`pace.rs`), in
    /// microseconds.
    pub(super) cp_paced_us: AtomicU64,
    /// Most records of a block log in flight at once (`write.rs`).
    pub(super) in_flight_peak: AtomicU64,
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// Writes the `status` lines of a running volume.
    pub(crate) fn write_status(&self, w: &mut kernel::str::Formatter<'_>) -> Result {
        use kernel::fmt::Write as _;
        let (used, last_cp_seq, (blocks, ram), cp_gen, tables, slots_free) = {
            let st = self.state.lock();
            (
                self.log.used(&st.head, &st.tail),
                st.tail.seq.saturating_sub(1),
                (st.cache.blocks(), st.cache.ram_blocks()),
                st.cp_gen,
                st.tables.count(),
                st.free_slots.len(),
            )
        };
        let s = &self.stats;
        w.write_fmt(fmt!("log_used_bytes {used}\n"))?;
        w.write_fmt(fmt!(
            "log_capacity_bytes {}\n",
            self.log.geometry().capacity()
        ))?;
        let geo = self.log.geometry();
        w.write_fmt(fmt!(
            "log_medium {}\n",
            if geo.is_block() { "block" } else { "pmem" }
        ))?;
        w.write_fmt(fmt!("log_unit_bytes {}\n", geo.unit))?;
        w.write_fmt(fmt!("log_slots_total {}\n", geo.slots))?;
        w.write_fmt(fmt!("log_slots_free {slots_free}\n"))?;
        w.write_fmt(fmt!(
            "log_in_flight_peak {}\n",
            s.in_flight_peak.load(Relaxed)
        ))?;
        w.write_fmt(fmt!("cp_count {}\n", s.cp_count.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_partial {}\n", s.cp_partial.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_generation {cp_gen}\n"))?;
        w.write_fmt(fmt!("last_cp_seq {last_cp_seq}\n"))?;
        w.write_fmt(fmt!("cp_blocks {}\n", s.cp_blocks.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_duration_us {}\n", s.cp_duration_us.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_free_us {}\n", s.cp_free_us.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_paced_us {}\n", s.cp_paced_us.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_errors {}\n", s.cp_errors.load(Relaxed)))?;
        w.write_fmt(fmt!("cache_blocks {blocks}\n"))?;
        w.write_fmt(fmt!("cache_ram_blocks {ram}\n"))?;
        w.write_fmt(fmt!(
            "checksums_ahead {}\n",
            s.checksums_ahead.load(Relaxed)
        ))?;
        w.write_fmt(fmt!("table_blocks {tables}\n"))?;
        w.write_fmt(fmt!("data_blocks {}\n", self.layout.data_blocks))?;
        w.write_fmt(fmt!(
            "data_offset_bytes {}\n",
            self.layout.data_start() * BLOCK_SIZE as u64
        ))?;
        w.write_fmt(fmt!("writes {}\n", s.writes.load(Relaxed)))?;
        w.write_fmt(fmt!("write_bytes {}\n", s.write_bytes.load(Relaxed)))?;
        w.write_fmt(fmt!("discards {}\n", s.discards.load(Relaxed)))?;
        w.write_fmt(fmt!("flushes {}\n", s.flushes.load(Relaxed)))?;
        w.write_fmt(fmt!("reads {}\n", s.reads.load(Relaxed)))?;
        w.write_fmt(fmt!("read_bytes {}\n", s.read_bytes.load(Relaxed)))?;
        w.write_fmt(fmt!("log_full_waits {}\n", s.log_full_waits.load(Relaxed)))?;
        w.write_fmt(fmt!(
            "checksum_errors {}\n",
            s.checksum_errors.load(Relaxed)
        ))?;
        w.write_fmt(fmt!("io_errors {}\n", s.io_errors.load(Relaxed)))?;
        Ok(())
    }
}
