// SPDX-License-Identifier: GPL-2.0

//! The free slots of a pmem log with a slot area (`format/log.rs`,
//! `Geometry`): where the write path puts a record of one whole block, so
//! that overwriting a block takes no room in the ring and needs no CP.
//!
//! A slot is in use while a cached block names it (`Cache`'s `Block::slot`):
//! replay needs its record until a CP commits the block (the slot is freed
//! when that CP ends, its marker past the record) or a later record
//! replaces the block whole (freed as soon as that record is durable). A
//! freed slot may keep its old header until it is used again; replay tells
//! such a record by its sequence number (`format.rst`, "Slots"). All under
//! the state lock.

use kernel::prelude::*;

/// The free slots, a stack: the one freed last is used first (its lines
/// are the likeliest to be in the CPU's cache).
///
/// # Invariants
///
/// Holds each slot below `count` at most once, and room for all of them
/// (so that freeing never allocates).
pub(crate) struct FreeSlots {
    free: KVVec<u32>,
    count: u32,
}

impl FreeSlots {
    /// None of `count` slots free yet: replay, which finds those in use,
    /// makes the others free when it is done ([`Self::rebuild`]).
    pub(crate) fn new(count: u32) -> Result<Self> {
        let free = KVVec::with_capacity(count as usize, GFP_KERNEL)?;
        // INVARIANT: empty, with room for all.
        Ok(Self { free, count })
    }

    /// Slots free now.
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }

    /// A free slot, now in use; `None` if there is none.
    pub(crate) fn take(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Gives back `slot`, no longer in use. A slot out of range, or more
    /// slots than there are (a bug), are not taken: returns whether it was.
    pub(crate) fn give(&mut self, slot: u32) -> bool {
        slot < self.count
            && self.free.len() < self.count as usize
            && self.free.push_within_capacity(slot).is_ok()
    }

    /// Makes every slot free but those `in_use` names (after replay: the
    /// slots of the blocks it cached). `EINVAL` if `in_use` names a slot
    /// out of range or one twice.
    pub(crate) fn rebuild(&mut self, in_use: impl Iterator<Item = u32>) -> Result {
        let words = (self.count as usize).div_ceil(64);
        let mut used = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        for s in in_use {
            let w = used.get_mut((s / 64) as usize).ok_or(EINVAL)?;
            let bit = 1u64 << (s % 64);
            if s >= self.count || *w & bit != 0 {
                return Err(EINVAL);
            }
            *w |= bit;
        }
        self.free.clear();
        for i in (0..self.count).rev() {
            let taken = used
                .get((i / 64) as usize)
                .is_some_and(|w| w & (1 << (i % 64)) != 0);
            if !taken {
                // Room for all: never fails.
                let _ = self.free.push_within_capacity(i);
            }
        }
        Ok(())
    }
}

#[kernel::prelude::kunit_tests(swarmlog_slots)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_and_given_back_once() -> Result {
        let mut f = FreeSlots::new(3)?;
        assert_eq!((f.len(), f.take()), (0, None));
        f.rebuild(core::iter::empty())?;
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f.take(), f.take(), f.take(), f.take()),
            (Some(0), Some(1), Some(2), None)
        );
        assert!(f.give(1));
        assert_eq!(f.take(), Some(1));
        assert!(f.give(0) && f.give(1) && f.give(2));
        // Given back in excess or out of range: not taken.
        assert!(!f.give(2));
        assert!(!f.give(7));
        assert_eq!(f.len(), 3);
        Ok(())
    }

    #[test]
    fn rebuild_frees_all_but_those_in_use() -> Result {
        let mut f = FreeSlots::new(130)?;
        f.rebuild([0u32, 64, 129].into_iter())?;
        assert_eq!(f.len(), 127);
        let mut got = KVec::new();
        while let Some(s) = f.take() {
            got.push(s, GFP_KERNEL)?;
        }
        assert!(!got.iter().any(|&s| s == 0 || s == 64 || s == 129));
        assert!(got.iter().any(|&s| s == 1) && got.iter().any(|&s| s == 128));
        // Named twice, or out of range: refused.
        assert_eq!(f.rebuild([5u32, 5].into_iter()), Err(EINVAL));
        assert_eq!(f.rebuild([130u32].into_iter()), Err(EINVAL));
        Ok(())
    }
}
