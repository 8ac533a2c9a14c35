// SPDX-License-Identifier: GPL-2.0

//! Room in the log: when writers ask for a CP, when the CP loop makes
//! checksums ahead of it, and how much of the log a CP frees.
//!
//! The CP loop makes the checksums of the blocks cached in the log ahead of
//! the CP (`sums.rs`) only while the ring is more than half used
//! ([`sums_ahead`]), or the slots more than three quarters
//! ([`Core::sums_due`]): before that no CP is near but the timer's, a block
//! written again meanwhile would have had its checksum made for nothing,
//! and a volume whose writes fit in the log does no work beside them, as a
//! cache under its writeback watermark does none (under TCG, work on the
//! other vCPU made a QD1 write's p99 2.5 times as long, dm-writecache's
//! too: `performance.rst`).
//!
//! Writers ask for a CP once the log is more than three quarters used
//! ([`wants_cp`]). While the log is more than half used, a CP of the CP
//! loop (asked for, or come due) frees only the oldest part of it: its
//! target is a *mark*, a head the log had earlier, at least an eighth of
//! the log past the tail if there is one ([`Core::room_target`]), and it
//! commits only the blocks cached in the log whose record is before the
//! mark (`Cache::commit_before`). A block written whole again since the
//! mark needs nothing: replay from the mark applies its newest record,
//! which replaces all of it. So under writes that overwrite whole blocks
//! (most), such a CP writes back a fraction of what a CP of the whole log
//! would, and a writer waiting for room waits for a small CP, not for a CP
//! of half the log. Every other CP (`disable`, replay's, one with the log
//! at most half used, one while the cache's memory is past half its
//! limit) frees the whole log.
//!
//! A pmem log with slots (`slots.rs`) has two kinds of room: the ring's
//! bytes and the free slots. Each rule holds when either is past its
//! fraction ([`Core::cp_wanted`], [`Core::past_half`]; the checksums
//! ahead wait for the slots' three quarters), and marks and the
//! eighth a CP frees count the log's records as well as the ring's bytes
//! (ring and slots share one sequence): once the slots fill, a CP of the
//! oldest eighth of the records frees slots in a few seconds' work at
//! most, where a CP of every block in a slot would make writers wait for
//! all of them (the 768 MiB run of `make bench`, `performance.rst`).
//!
//! Why this is as safe as a CP of the whole log. After a crash in the
//! middle of it, replay redoes it as it redoes any CP (`replay/mod.rs`):
//! it replays the records up to the mark and commits every block they
//! change. The blocks this CP commits are among those (each one's record
//! is before the mark), with the same contents (nothing changed them after
//! that record), so the redo rewrites every table block this CP wrote a
//! pending copy of, with the same entries for its blocks, and a redo cut
//! short in turn still proves what this CP wrote. A block held in memory
//! (written in part) with changes on both sides of the mark could be
//! committed neither as it is (the redo would give it other contents) nor
//! left out (its older changes would be lost): the mark is never past the
//! oldest change such a block holds (`Cache::ram_since`), and without
//! such a mark the CP frees the whole log. A block cached in the log that
//! a write changes in part while the CP takes its blocks goes to the CP
//! first, as it is (`Cache::dirty_ram`).

use kernel::prelude::*;

use super::log::{Log, Position};
use super::{Array, Core, State};
use crate::sys::dax::Media;

/// Marks kept at most: with one every sixteenth of the log, more than a
/// full log's worth.
const MARKS: usize = 32;

/// Whether writers ask for a CP: the log more than three quarters used.
pub(super) fn wants_cp(used: u64, capacity: u64) -> bool {
    used > capacity / 4 * 3
}

/// Whether the CP loop makes checksums ahead of the CP: the log more than
/// half used.
pub(super) fn sums_ahead(used: u64, capacity: u64) -> bool {
    used > capacity / 2
}

/// Heads the log had, oldest first, about a sixteenth of its capacity
/// apart: where a CP that frees only the oldest part of the log may stop.
pub(super) struct Marks(KVec<Position>);

impl Marks {
    /// No marks, with room for [`MARKS`] reserved.
    pub(super) fn new() -> Result<Self> {
        Ok(Self(KVec::with_capacity(MARKS, GFP_KERNEL)?))
    }

    /// Notes `head` if it is a sixteenth of the log or more past the last
    /// mark (or past `tail`, if there is none): of the ring's bytes, or of
    /// the log's records ([`records`], with slots). Never allocates: with
    /// [`MARKS`] kept, the oldest is dropped.
    pub(super) fn note<M: Media>(&mut self, log: &Log<M>, head: Position, tail: &Position) {
        let last = self.0.last().unwrap_or(tail);
        if log.used(&head, last) < log.geometry().capacity() / 16
            && !records_apart(log, last, &head, 16)
        {
            return;
        }
        if self.0.len() == MARKS {
            let _ = self.0.remove(0);
        }
        let _ = self.0.push_within_capacity(head);
    }

    /// Drops the marks at or before `tail` (the new CP marker).
    pub(super) fn forget_through(&mut self, tail: &Position) {
        self.0.retain(|m| m.seq > tail.seq);
    }

    /// The marks, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Position> {
        self.0.iter()
    }
}

/// How many records a log with slots holds, about: its slots and as many
/// records of one block as its ring holds. 0 without slots (the room
/// rules then count the ring's bytes alone).
pub(super) fn records<M: Media>(log: &Log<M>) -> u64 {
    let geo = log.geometry();
    if geo.slots == 0 {
        return 0;
    }
    let each = u64::from(geo.block).saturating_add(64).max(1);
    u64::from(geo.slots).saturating_add(geo.capacity() / each)
}

/// Whether `to` is a `1/part` of the log's records ([`records`]) or more
/// past `from`, in sequence numbers (ring and slots share them); never
/// without slots.
fn records_apart<M: Media>(log: &Log<M>, from: &Position, to: &Position, part: u64) -> bool {
    let n = records(log);
    n != 0
        && n.checked_div(part)
            .is_some_and(|k| to.seq.saturating_sub(from.seq) >= k)
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// Whether `ring` (of bytes used and the capacity) holds for the ring,
    /// or `slots` (of slots used and their number) for the slots (never
    /// for a log without).
    fn ring_or_slots(
        &self,
        st: &State,
        ring: fn(u64, u64) -> bool,
        slots: fn(u64, u64) -> bool,
    ) -> bool {
        let total = u64::from(self.log.geometry().slots);
        let slots_used = total.saturating_sub(st.free_slots.len() as u64);
        ring(
            self.log.used(&st.head, &st.tail),
            self.log.geometry().capacity(),
        ) || (total != 0 && slots(slots_used, total))
    }

    /// Whether writers ask for a CP ([`wants_cp`]): the ring or the slots
    /// more than three quarters used.
    pub(super) fn cp_wanted(&self, st: &State) -> bool {
        self.ring_or_slots(st, wants_cp, wants_cp)
    }

    /// Whether the ring or the slots are more than half used ([`sums_ahead`]):
    /// a CP is not paced, and a CP of the CP loop frees only the log's
    /// oldest part.
    pub(super) fn past_half(&self, st: &State) -> bool {
        self.ring_or_slots(st, sums_ahead, sums_ahead)
    }

    /// Whether the CP loop makes checksums ahead now: the ring more than
    /// half used ([`sums_ahead`]), or the slots more than three quarters
    /// ([`wants_cp`]: when writers ask for a CP). A volume whose blocks
    /// fill the slots past half but fit in them (the QD1 test of `make
    /// bench`: 256 MiB of blocks, 68 % of the slots of 512 MiB of pmem)
    /// then does no work beside its writes, as dm-writecache under its
    /// watermark does none; with the slots' rule at half, the checksums
    /// made on the other vCPU took its p99 from 12 to 17 us under TCG
    /// (`performance.rst`).
    pub(super) fn sums_due(&self, st: &State) -> bool {
        self.ring_or_slots(st, sums_ahead, wants_cp)
    }

    /// Notes the head the write path just moved to as a mark, if it is far
    /// enough past the last one.
    pub(super) fn note_head(&self, st: &mut State) {
        let (head, tail) = (st.head, st.tail);
        st.marks.note(&self.log, head, &tail);
    }

    /// Where the CP loop's next CP frees the log up to: a mark, while the
    /// log is more than half used ([`Self::past_half`]) and the cache's
    /// memory at most half its limit; `None` (the whole log) otherwise, or if no mark lies between
    /// the tail and the head and at or before [`Cache::ram_since`] (no
    /// block in memory changed by records on both sides of it). The first
    /// such mark at least an eighth of the log past the tail (of the
    /// ring's bytes, or with slots of the log's records), else the last
    /// one.
    ///
    /// [`Cache::ram_since`]: super::cache::Cache::ram_since
    pub(super) fn room_target(&self, st: &State) -> Option<Position> {
        let cap = self.log.geometry().capacity();
        if !self.past_half(st) || st.cache.ram_blocks() > self.limits.cache_blocks / 2 {
            return None;
        }
        let newest = st.head.seq.min(st.cache.ram_since().saturating_add(1));
        let mut last = None;
        for m in st
            .marks
            .iter()
            .filter(|m| m.seq > st.tail.seq && m.seq < newest)
        {
            if self.log.used(m, &st.tail) >= cap / 8 || records_apart(&self.log, &st.tail, m, 8) {
                return Some(*m);
            }
            last = Some(*m);
        }
        last
    }
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// Where the timed CP whose previous one saw the head at `tick` frees
    /// the log up to: `tick`, if it can be a mark as [`Self::room_target`]'s
    /// are (past the tail, before the head and before [`Cache::ram_since`],
    /// the cache's memory at most half its limit); `None` (the whole log)
    /// otherwise.
    ///
    /// [`Cache::ram_since`]: super::cache::Cache::ram_since
    pub(super) fn older_target(&self, st: &State, tick: Position) -> Option<Position> {
        let newest = st.head.seq.min(st.cache.ram_since().saturating_add(1));
        (tick.seq > st.tail.seq
            && tick.seq < newest
            && st.cache.ram_blocks() <= self.limits.cache_blocks / 2)
            .then_some(tick)
    }
}

#[kernel::prelude::kunit_tests(swarmlog_room)]
mod tests {
    use super::*;

    #[test]
    fn writers_ask_for_a_cp_past_three_quarters() -> Result {
        assert!(!wants_cp(0, 1000));
        assert!(!wants_cp(750, 1000));
        assert!(wants_cp(751, 1000));
        assert!(wants_cp(1000, 1000));
        Ok(())
    }

    #[test]
    fn checksums_are_made_ahead_past_half() -> Result {
        assert!(!sums_ahead(0, 1000));
        assert!(!sums_ahead(500, 1000));
        assert!(sums_ahead(501, 1000));
        assert!(sums_ahead(1000, 1000));
        // Below the threshold at which writers ask for a CP: the checksums
        // are made before the CP needs them.
        assert!(sums_ahead(751, 1000) && wants_cp(751, 1000));
        assert!(sums_ahead(600, 1000) && !wants_cp(600, 1000));
        Ok(())
    }
}
