// SPDX-License-Identifier: GPL-2.0

//! The records of a pmem log's slots, merged into the ring's log order
//! for the swarm.
//!
//! A slot record is of one whole block, and the ring and the slots share
//! one sequence. Replay applies, for each block, its records in sequence
//! order; records of different blocks do not depend on each other. So the
//! initiator gives each slot record to the swarm just before the first
//! ring record of the same block with a later number, and the slot records
//! no ring record follows after the ring. Of a block's slot records only
//! the newest is taken: it replaces the block whole, so an older one (a
//! stale record whose slot was freed, and whose data a later use of the
//! slot may have torn) changes nothing after it. With the target of a CP
//! the crash cut short, the newest record before the target and the
//! newest from it on are taken apart: that CP is redone exactly, with
//! every block it wrote as it wrote it (`replay/mod.rs`), and the slot
//! records before its target all go to the swarms before it
//! ([`PendingSlots::before`]).

use kernel::prelude::*;

use crate::device::cache::SECTORS;
use crate::device::log::Log;
use crate::sys::dax::Media;

/// One slot record waiting for its turn in the swarm.
#[derive(Clone, Copy)]
struct Pending {
    block: u64,
    seq: u64,
    slot: u32,
    /// Given to the swarm already.
    given: bool,
}

/// The slot records a replay takes, by block.
pub(crate) struct PendingSlots {
    /// Sorted by (block, seq); at most two a block (either side of `cut`).
    by_block: KVVec<Pending>,
    /// Sequence number of the target of the CP the crash cut short, if any.
    cut: Option<u64>,
    /// The largest sequence number among them and the dropped (0 if none).
    newest: u64,
    /// Indices into `by_block` in sequence order, and how many of the
    /// first of them are given: for [`Self::floor`].
    by_seq: KVVec<u32>,
    first_left: usize,
}

impl PendingSlots {
    /// The slot records of `log` numbered `from` on (none for a log without
    /// slots), the newest of each block on each side of `cut`. A damaged
    /// slot (a table line that cannot be read, `Log::scan_slots`, or a
    /// record taken whose data the media reports bad, [`Self::of`]) fails
    /// the scan (`EIO`), or with `drop_bad` is left out.
    pub(crate) fn scan<M: Media>(
        log: &Log<M>,
        from: u64,
        cut: Option<u64>,
        drop_bad: bool,
    ) -> Result<Self> {
        let mut all = KVVec::new();
        let sectors = SECTORS;
        log.scan_slots(from, drop_bad, |slot, h| {
            all.push(
                Pending {
                    block: h.sector / sectors,
                    seq: h.seq,
                    slot,
                    given: false,
                },
                GFP_KERNEL,
            )?;
            Ok(())
        })?;
        Self::of(all, cut, drop_bad, |slot| log.slot_data_bad(slot))
    }

    /// The newest of each block on each side of `cut` among `all`, then
    /// the data of those checked (`bad(slot)`: the media reports a bad
    /// line in the slot's block): one that is bad is refused (`EIO`), or
    /// with `drop_bad` left out, its number kept for [`Self::newest`].
    /// Only the records taken are checked: an older record of a block
    /// changes nothing after the newer one that replaces it whole, bad or
    /// not, and is never taken in its place (its slot was free, and a
    /// write into it cut short may have torn its data under its header).
    fn of(
        mut all: KVVec<Pending>,
        cut: Option<u64>,
        drop_bad: bool,
        bad: impl Fn(u32) -> bool,
    ) -> Result<Self> {
        all.sort_unstable_by_key(|p| (p.block, p.seq));
        let side = |p: &Pending| cut.is_some_and(|c| p.seq >= c);
        // Keep the last of each run of (block, side): the newest.
        let mut by_block: KVVec<Pending> = KVVec::with_capacity(all.len(), GFP_KERNEL)?;
        for p in all.into_iter() {
            match by_block.last_mut() {
                Some(q) if q.block == p.block && side(q) == side(&p) => *q = p,
                _ => by_block.push_within_capacity(p).map_err(|_| ENOMEM)?,
            }
        }
        if let Some(p) = by_block.iter().find(|p| bad(p.slot)) {
            if !drop_bad {
                pr_err!(
                    "log slot {} (record seq {}) holds data the media reports bad; \
                     not replayed\n",
                    p.slot,
                    p.seq
                );
                return Err(EIO);
            }
        }
        let mut newest = 0u64;
        by_block.retain(|p| {
            newest = newest.max(p.seq);
            if !bad(p.slot) {
                return true;
            }
            pr_warn!(
                "log slot {} (record seq {}) holds data the media reports bad; \
                 dropped as discard_corrupt asks\n",
                p.slot,
                p.seq
            );
            false
        });
        let mut by_seq = KVVec::with_capacity(by_block.len(), GFP_KERNEL)?;
        for i in 0..by_block.len() {
            by_seq
                .push_within_capacity(u32::try_from(i).map_err(|_| EINVAL)?)
                .map_err(|_| ENOMEM)?;
        }
        by_seq.sort_unstable_by_key(|&i| by_block.get(i as usize).map_or(0, |p| p.seq));
        Ok(Self {
            by_block,
            cut,
            newest,
            by_seq,
            first_left: 0,
        })
    }

    /// The largest sequence number of the records taken or dropped as
    /// damaged (0 if none): the log's head goes past it, so that no later
    /// replay takes a dropped record again.
    pub(crate) fn newest(&self) -> u64 {
        self.newest
    }

    /// Records taken.
    pub(crate) fn len(&self) -> usize {
        self.by_block.len()
    }

    /// The slot records to give to the swarm before a ring record `seq`
    /// of `blocks`: those of its blocks numbered below it not given yet,
    /// as `(seq, block, slot)`, in sequence order; marked given.
    pub(crate) fn before_ring(
        &mut self,
        blocks: core::ops::Range<u64>,
        seq: u64,
        out: &mut KVec<(u64, u64, u32)>,
    ) -> Result {
        out.clear();
        if self.by_block.is_empty() {
            return Ok(());
        }
        for b in blocks {
            let mut i = self.by_block.partition_point(|p| p.block < b);
            while let Some(p) = self.by_block.get_mut(i) {
                if p.block != b || p.seq >= seq {
                    break;
                }
                if !p.given {
                    p.given = true;
                    out.push((p.seq, p.block, p.slot), GFP_KERNEL)?;
                }
                i += 1;
            }
        }
        out.sort_unstable_by_key(|&(s, _, _)| s);
        Ok(())
    }

    /// The slot records not given yet numbered below `seq` (all of them
    /// for `u64::MAX`), as [`Self::before_ring`] gives them; marked given.
    pub(crate) fn before(&mut self, seq: u64, out: &mut KVec<(u64, u64, u32)>) -> Result {
        out.clear();
        for p in self.by_block.iter_mut() {
            if !p.given && p.seq < seq {
                p.given = true;
                out.push((p.seq, p.block, p.slot), GFP_KERNEL)?;
            }
        }
        out.sort_unstable_by_key(|&(s, _, _)| s);
        Ok(())
    }

    /// The smallest sequence number of the records not given yet
    /// (`u64::MAX` if none): a CP marker replay writes must not be past it,
    /// as they are not committed yet (each swarm's commit goes up to the
    /// record after it, [`super::initiator`]).
    pub(crate) fn floor(&mut self) -> u64 {
        while let Some(p) = self
            .by_seq
            .get(self.first_left)
            .and_then(|&i| self.by_block.get(i as usize))
        {
            if !p.given {
                return p.seq;
            }
            self.first_left += 1;
        }
        u64::MAX
    }

    /// The cut this set was made for.
    pub(crate) fn cut(&self) -> Option<u64> {
        self.cut
    }
}

#[kernel::prelude::kunit_tests(swarmlog_replay_slots)]
mod tests {
    use super::*;

    fn p(block: u64, seq: u64, slot: u32) -> Pending {
        Pending {
            block,
            seq,
            slot,
            given: false,
        }
    }

    fn set(ps: &[Pending], cut: Option<u64>) -> Result<PendingSlots> {
        checked(ps, cut, false, &[])
    }

    /// As [`set`], the data of the slots `bad` reported bad.
    fn checked(
        ps: &[Pending],
        cut: Option<u64>,
        drop_bad: bool,
        bad: &[u32],
    ) -> Result<PendingSlots> {
        let mut all = KVVec::new();
        for &x in ps {
            all.push(x, GFP_KERNEL)?;
        }
        PendingSlots::of(all, cut, drop_bad, |slot| bad.contains(&slot))
    }

    #[test]
    fn the_newest_record_of_a_block_is_taken() -> Result {
        // Block 7 three times (slot 1 newest), block 3 once.
        let mut s = set(&[p(7, 5, 0), p(7, 9, 1), p(3, 4, 2), p(7, 2, 3)], None)?;
        assert_eq!((s.len(), s.newest()), (2, 9));
        let mut out = KVec::new();
        s.before(u64::MAX, &mut out)?;
        assert_eq!(&out[..], &[(4, 3, 2), (9, 7, 1)]);
        // Given once.
        s.before(u64::MAX, &mut out)?;
        assert!(out.is_empty());
        Ok(())
    }

    #[test]
    fn only_the_records_taken_must_have_good_data() -> Result {
        let recs = [p(7, 5, 0), p(7, 9, 1), p(3, 4, 2)];
        // Block 7's older record (slot 0) on a bad line: replaced whole by
        // the newer one, it is neither taken nor checked.
        let mut s = checked(&recs, None, false, &[0])?;
        let mut out = KVec::new();
        s.before(u64::MAX, &mut out)?;
        assert_eq!(&out[..], &[(4, 3, 2), (9, 7, 1)]);
        // Its newest (slot 1) bad: refused, or with drop_bad left out, and
        // the older one not taken in its place; the head goes past it.
        assert_eq!(checked(&recs, None, false, &[1]).err(), Some(EIO));
        let mut s = checked(&recs, None, true, &[1])?;
        assert_eq!((s.len(), s.newest()), (1, 9));
        s.before(u64::MAX, &mut out)?;
        assert_eq!(&out[..], &[(4, 3, 2)]);
        Ok(())
    }

    #[test]
    fn a_slot_record_goes_before_a_later_ring_record_of_its_block() -> Result {
        let mut s = set(&[p(7, 5, 0), p(8, 6, 1), p(9, 20, 2)], None)?;
        assert_eq!(s.floor(), 5);
        let mut out = KVec::new();
        // A ring record of blocks 7-9, number 10: blocks 7 and 8's slot
        // records first; block 9's (20) is later than it.
        s.before_ring(7..10, 10, &mut out)?;
        assert_eq!(&out[..], &[(5, 7, 0), (6, 8, 1)]);
        // What a CP marker may not pass now: block 9's record.
        assert_eq!(s.floor(), 20);
        // A ring record of block 7 again: given already.
        s.before_ring(7..8, 11, &mut out)?;
        assert!(out.is_empty());
        s.before(u64::MAX, &mut out)?;
        assert_eq!(&out[..], &[(20, 9, 2)]);
        assert_eq!(s.floor(), u64::MAX);
        Ok(())
    }

    #[test]
    fn each_side_of_a_cut_keeps_its_newest() -> Result {
        // Cut at 10: block 7's newest before it (8) and from it (12).
        let mut s = set(
            &[p(7, 5, 0), p(7, 8, 1), p(7, 12, 2), p(7, 15, 3)],
            Some(10),
        )?;
        assert_eq!((s.len(), s.cut()), (2, Some(10)));
        let mut out = KVec::new();
        s.before(10, &mut out)?;
        assert_eq!(&out[..], &[(8, 7, 1)]);
        s.before(u64::MAX, &mut out)?;
        assert_eq!(&out[..], &[(15, 7, 3)]);
        Ok(())
    }
}
