// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of a pmem log's slots on the write path and in CPs
//! (`slots.rs`): a write of whole blocks takes a slot a block and leaves
//! the ring alone, an overwrite frees the slot it replaces, a CP frees the
//! slots of what it commits, the checksums ahead wait for the slots' three
//! quarters, slots three quarters used ask for a CP of the log's oldest
//! part, and everything reads back from the cache, the array and a
//! reopened volume. Replay of slots (`replay/slots.rs`) runs in
//! the VM scenarios, on real devices.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{prelude::*, sync::Arc};

use super::array::RamArray;
use super::cache::SECTORS;
use super::open::format_on;
use super::tests::{
    pattern, patterned, put_patterned, read, reopen, same, Buf, TestCore, ARRAY_SECTORS, LOG_BYTES,
};
use crate::format::array::BLOCK_SIZE;
use crate::format::log::Op;
use crate::sys::dax::RamMedia;

/// A volume over an array of `sectors` whose log has slots, replay done
/// (every slot free).
fn slotted(sectors: u64) -> Result<(Arc<TestCore>, Arc<RamMedia>, RamArray)> {
    let media = RamMedia::shared(LOG_BYTES)?;
    let array = RamArray::new(sectors)?;
    format_on(media.clone(), &array, true)?;
    let core = reopen(&media, &array)?;
    core.free_unused_slots()?;
    Ok((core, media, array))
}

/// Bytes of the ring in use, and slots free.
fn room(core: &TestCore) -> (u64, usize) {
    let st = core.state.lock();
    (core.log.used(&st.head, &st.tail), st.free_slots.len())
}

#[kernel::prelude::kunit_tests(swarmlog_device_slots)]
mod paths {
    use super::*;

    #[test]
    fn overwrites_take_slots_and_no_room_in_the_ring() -> Result {
        let (core, _media, _array) = slotted(ARRAY_SECTORS)?;
        let slots = core.log.geometry().slots as usize;
        assert!(slots >= 64);
        // Block 3 five times, block 4 once, blocks 10-12 in one write.
        for w in 0..5u8 {
            core.write(&Buf::new(3 * SECTORS, BLOCK_SIZE, pattern(w))?, Op::Write)?;
        }
        core.write(&Buf::new(4 * SECTORS, BLOCK_SIZE, pattern(9))?, Op::Write)?;
        core.write(
            &Buf::new(10 * SECTORS, 3 * BLOCK_SIZE, pattern(7))?,
            Op::Write,
        )?;
        // One slot a block: the overwrites freed theirs; nothing in the ring.
        assert_eq!(room(&core), (0, slots - 5));
        assert!(same(&read(&core, 3 * SECTORS, BLOCK_SIZE)?, pattern(4)));
        assert!(same(&read(&core, 4 * SECTORS, BLOCK_SIZE)?, pattern(9)));
        assert!(same(
            &read(&core, 10 * SECTORS, 3 * BLOCK_SIZE)?,
            pattern(7)
        ));
        // A write of part of a block, and a discard: the ring.
        core.write(&Buf::new(4 * SECTORS + 1, 512, pattern(20))?, Op::Write)?;
        core.write(&Buf::new(11 * SECTORS, BLOCK_SIZE, |_| 0)?, Op::Discard)?;
        let (used, free) = room(&core);
        assert!(used > 0 && used < 2 * BLOCK_SIZE as u64);
        // Block 4, now in memory, and block 11 keep their slots: replay
        // needs their slot records under the ring's records.
        assert_eq!(free, slots - 5);
        let got = read(&core, 4 * SECTORS, BLOCK_SIZE)?;
        for (i, &x) in got.iter().enumerate() {
            let want = if i / 512 == 1 {
                pattern(20)(i % 512)
            } else {
                pattern(9)(i)
            };
            assert_eq!((i, x), (i, want));
        }
        assert!(read(&core, 11 * SECTORS, BLOCK_SIZE)?
            .iter()
            .all(|&b| b == 0));
        // Block 4 written whole again: its old slot is free, a new one used.
        core.write(&Buf::new(4 * SECTORS, BLOCK_SIZE, pattern(30))?, Op::Write)?;
        assert_eq!(room(&core).1, slots - 5);
        assert!(same(&read(&core, 4 * SECTORS, BLOCK_SIZE)?, pattern(30)));
        assert_eq!(core.stats.log_full_waits.load(Relaxed), 0);
        Ok(())
    }

    #[test]
    fn a_cp_frees_the_slots_of_what_it_commits() -> Result {
        let (core, media, array) = slotted(ARRAY_SECTORS)?;
        let slots = core.log.geometry().slots as usize;
        put_patterned(&core, 0..40)?;
        assert_eq!(room(&core).1, slots - 40);
        let check = |core: &TestCore| -> Result {
            assert!(patterned(core, 0..40)?);
            Ok(())
        };
        check(&core)?;
        core.checkpoint()?;
        assert_eq!(room(&core), (0, slots));
        assert_eq!(core.state.lock().cache.blocks(), 0);
        // From the array, verified by its tables; and after a reopen.
        check(&core)?;
        assert_eq!(core.stats.checksum_errors.load(Relaxed), 0);
        drop(core);
        let core = reopen(&media, &array)?;
        check(&core)
    }

    #[test]
    fn with_no_slot_free_a_write_goes_to_the_ring() -> Result {
        // An array with more blocks than the log has slots.
        let (core, _media, _array) = slotted(4 * ARRAY_SECTORS)?;
        let slots = u64::from(core.log.geometry().slots);
        // More blocks than slots (the array has room for them): the rest
        // go to the ring, and overwriting one of those takes a slot again
        // once one is free.
        let blocks = (slots + 8).min(core.layout.data_blocks);
        assert!(blocks > slots);
        put_patterned(&core, 0..blocks)?;
        let (used, free) = room(&core);
        assert_eq!(free, 0);
        assert!(used >= (blocks - slots) * BLOCK_SIZE as u64);
        // Block 0, in a slot, written again: no slot is free, so its new
        // record goes to the ring, and its old slot is free at once.
        core.write(&Buf::new(0, BLOCK_SIZE, pattern(99))?, Op::Write)?;
        assert_eq!(room(&core).1, 1);
        assert!(same(&read(&core, 0, BLOCK_SIZE)?, pattern(99)));
        assert!(patterned(&core, 1..blocks)?);
        Ok(())
    }

    #[test]
    fn checksums_ahead_wait_for_the_slots_three_quarters() -> Result {
        // Blocks that fill the slots past half but fit in them: no work
        // beside the writes (`Core::sums_due`); past three quarters, the
        // checksums are due with the CP the writers ask for.
        let (core, _media, _array) = slotted(4 * ARRAY_SECTORS)?;
        let slots = u64::from(core.log.geometry().slots);
        let (half, three) = (slots / 2, slots / 4 * 3);
        assert!(three < core.layout.data_blocks);
        put_patterned(&core, 0..half + 1)?;
        {
            let st = core.state.lock();
            assert!(core.past_half(&st));
            assert!(!core.sums_due(&st));
        }
        put_patterned(&core, half + 1..three)?;
        assert!(!core.sums_due(&core.state.lock()));
        put_patterned(&core, three..three + 1)?;
        let st = core.state.lock();
        assert!(core.sums_due(&st) && core.cp_wanted(&st));
        // The ring, empty, has nothing to do with it.
        assert_eq!(core.log.used(&st.head, &st.tail), 0);
        Ok(())
    }

    #[test]
    fn slots_three_quarters_used_ask_for_a_cp_of_the_oldest_part() -> Result {
        let (core, _media, _array) = slotted(4 * ARRAY_SECTORS)?;
        let slots = u64::from(core.log.geometry().slots);
        let three = slots / 4 * 3;
        assert!(three < core.layout.data_blocks);
        let first = core.state.lock().head.seq;
        put_patterned(&core, 0..three)?;
        // Three quarters of the slots in use, the ring empty: no CP yet.
        assert_eq!(room(&core), (0, (slots - three) as usize));
        assert!(!core.state.lock().kick);
        put_patterned(&core, three..three + 1)?;
        let (mark, tail) = {
            let st = core.state.lock();
            assert!(st.kick);
            (core.room_target(&st).ok_or(EINVAL)?, st.tail)
        };
        // An eighth of the log's records or more past the tail, not all.
        let records = super::super::room::records(&core.log);
        assert!(records > slots);
        assert!(mark.seq - tail.seq >= records / 8);
        assert!(mark.seq < first + three);
        core.checkpoint_for_room()?;
        assert_eq!(core.stats.cp_partial.load(Relaxed), 1);
        // The blocks of the records before the mark are committed, their
        // slots free; the others still in theirs.
        let committed = mark.seq - first;
        assert_eq!(room(&core).1 as u64, slots - (three + 1) + committed);
        assert_eq!(
            core.state.lock().cache.blocks() as u64,
            three + 1 - committed
        );
        assert!(patterned(&core, 0..three + 1)?);
        assert_eq!(core.stats.checksum_errors.load(Relaxed), 0);
        Ok(())
    }

    #[test]
    fn a_cp_holding_its_marker_back_keeps_the_slots() -> Result {
        let (core, _media, _array) = slotted(ARRAY_SECTORS)?;
        let slots = core.log.geometry().slots as usize;
        let hold = core.state.lock().tail;
        put_patterned(&core, 0..40)?;
        // Replay's CP with a skipped record to keep (`replaying.rs`): its
        // marker stays at `hold`, and a replay from there takes the slot
        // records again, so their slots are not free.
        core.checkpoint_holding(Some(hold))?;
        assert_eq!(core.state.lock().cache.blocks(), 0);
        assert_eq!(room(&core).1, slots - 40);
        // Replay's end makes free what no cached block names.
        core.free_unused_slots()?;
        assert_eq!(room(&core).1, slots);
        assert!(patterned(&core, 0..40)?);
        Ok(())
    }
}
