// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the write and read paths and of CPs, on a volume whose
//! log is a [`RamMedia`] and whose array is a [`RamArray`]: what was written
//! reads back from the cache, from the array after a CP and after the
//! volume is opened again; a damaged block on the array is an I/O error and
//! a counter, never wrong data; bad requests are refused.

use core::cell::RefCell;
use core::sync::atomic::Ordering::Relaxed;
use kernel::{prelude::*, sync::Arc};

use super::array::RamArray;
use super::cache::SECTORS;
use super::open::{format_on, open_on};
use super::{Core, Limits, Request};
use crate::format::array::BLOCK_SIZE;
use crate::format::log::{Op, MAX_RECORD_DATA};
use crate::sys::bio::Chunk;
use crate::sys::bytes;
use crate::sys::dax::{Media, RamMedia};

pub(super) type TestCore = Core<Arc<RamMedia>, RamArray>;

/// Log and array sizes: a log of 3 MiB, an array of 1 MiB (about 250 data
/// blocks).
pub(super) const LOG_BYTES: usize = 4096 + 3 * (64 + MAX_RECORD_DATA as usize);
pub(super) const ARRAY_SECTORS: u64 = 2048;

const LIMITS: Limits = Limits {
    cache_blocks: 64,
    cp_interval_ms: 5000,
    cp_share: 100,
    cp_fault: super::CpFault::None,
};

/// A request over a buffer, handed over in pieces of `piece` bytes (a bio's
/// segments).
pub(super) struct Buf {
    sector: u64,
    data: RefCell<KVec<u8>>,
    piece: usize,
}

impl Buf {
    pub(super) fn new(sector: u64, len: usize, fill: impl Fn(usize) -> u8) -> Result<Self> {
        let mut data = KVec::with_capacity(len, GFP_KERNEL)?;
        for i in 0..len {
            data.push(fill(i), GFP_KERNEL)?;
        }
        Ok(Self {
            sector,
            data: RefCell::new(data),
            piece: 1536,
        })
    }
}

impl Request for Buf {
    fn sector(&self) -> u64 {
        self.sector
    }

    fn size(&self) -> u32 {
        self.data.try_borrow().map_or(0, |d| d.len() as u32)
    }

    fn for_each_chunk<F: FnMut(&mut Chunk<'_>) -> Result>(&self, mut f: F) -> Result {
        let mut data = self.data.borrow_mut();
        for chunk in data.chunks_mut(self.piece) {
            f(&mut Chunk::of(chunk))?;
        }
        Ok(())
    }
}

/// A fresh volume and the devices under it.
fn fresh() -> Result<(Arc<TestCore>, Arc<RamMedia>, RamArray)> {
    let media = RamMedia::shared(LOG_BYTES)?;
    let array = RamArray::new(ARRAY_SECTORS)?;
    format_on(media.clone(), &array, false)?;
    let core = reopen(&media, &array)?;
    Ok((core, media, array))
}

/// The volume on `media` and `array`, opened again.
pub(super) fn reopen(media: &Arc<RamMedia>, array: &RamArray) -> Result<Arc<TestCore>> {
    let (core, _) = open_on(
        c"test",
        (media.clone(), array.clone()),
        ("ram-log", "ram-array"),
        LIMITS,
    )?;
    Ok(core)
}

/// Reads `len` bytes at `sector` through the read path.
pub(super) fn read(core: &TestCore, sector: u64, len: usize) -> Result<KVec<u8>> {
    let buf = Buf::new(sector, len, |_| 0xee)?;
    core.read(&buf)?;
    Ok(buf.data.into_inner())
}

/// A byte pattern unique to a write `w` and position `i`.
pub(super) fn pattern(w: u8) -> impl Fn(usize) -> u8 {
    move |i| (i / 512) as u8 ^ w.wrapping_mul(37) ^ (i as u8)
}

pub(super) fn same(got: &[u8], want: impl Fn(usize) -> u8) -> bool {
    got.iter().enumerate().all(|(i, &b)| b == want(i))
}

/// Writes each block `b` of `blocks` whole with `pattern(b)`.
pub(super) fn put_patterned(core: &TestCore, blocks: core::ops::Range<u64>) -> Result {
    for b in blocks {
        core.write(
            &Buf::new(b * SECTORS, BLOCK_SIZE, pattern(b as u8))?,
            Op::Write,
        )?;
    }
    Ok(())
}

/// Whether each block `b` of `blocks` reads back as `pattern(b)`.
pub(super) fn patterned(core: &TestCore, blocks: core::ops::Range<u64>) -> Result<bool> {
    for b in blocks {
        if !same(&read(core, b * SECTORS, BLOCK_SIZE)?, pattern(b as u8)) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[kernel::prelude::kunit_tests(swarmlog_device)]
mod paths {
    use super::*;

    #[test]
    fn a_cp_holding_its_marker_writes_back_and_keeps_the_records() -> Result {
        // Replay with a skipped record: the CP writes everything back and
        // frees the cache, but the marker stays at the skipped record, so
        // it and every record after it are still there to replay. (Before,
        // replay took no CP at all once a record was skipped, holding every
        // replayed block in memory.)
        let (core, media, array) = fresh()?;
        core.write(&Buf::new(0, BLOCK_SIZE, pattern(1))?, Op::Write)?;
        let hold = core.state.lock().head;
        core.write(&Buf::new(8, BLOCK_SIZE, pattern(2))?, Op::Write)?;
        core.write(&Buf::new(17, 512, pattern(3))?, Op::Write)?;
        let head = core.state.lock().head;
        assert_eq!(core.state.lock().cache.blocks(), 3);
        core.checkpoint_holding(Some(hold))?;
        assert_eq!(core.state.lock().cache.blocks(), 0);
        let log = super::super::log::Log::open(media.clone()).map_err(|_| EINVAL)?;
        let (_, m) = log.cp_marker()?;
        assert_eq!((m.offset, m.seq), (hold.offset, hold.seq));
        let end = log.scan(&m, |_| Ok::<(), Error>(()))?;
        assert_eq!(
            (end.records, end.offset, end.seq),
            (2, head.offset, head.seq)
        );
        // The array has all three: a volume opened afresh (nothing cached)
        // reads them from it.
        drop(core);
        let core = reopen(&media, &array)?;
        assert!(same(&read(&core, 0, BLOCK_SIZE)?, pattern(1)));
        assert!(same(&read(&core, 8, BLOCK_SIZE)?, pattern(2)));
        assert!(same(&read(&core, 17, 512)?, pattern(3)));
        Ok(())
    }

    #[test]
    fn a_cp_cut_short_anywhere_leaves_every_block_provable() -> Result {
        // Blocks 0 to 7 and what the second CP does to them: 0 and 1
        // written whole again (1 with its checksum made ahead), one sector
        // of 2, 3 discarded, one sector of 4 (never written before), 5
        // whole (new); 6 and 7 untouched. The CP is cut short after each
        // of its array writes in turn; each time, replay's reads of every
        // block give its old or its new contents, proved by the table copy
        // in force or by the CP's pending one, and a damaged block is an
        // error. (Before, the CP wrote the data before the table blocks,
        // and replay took any block that did not match as "unverified".)
        const N: u64 = 8;
        let mut points = 0i64;
        let mut proved = 0u64;
        loop {
            let (core, media, array) = fresh()?;
            for b in [0u64, 1, 2, 3, 6, 7] {
                let w = Buf::new(b * SECTORS, BLOCK_SIZE, pattern(b as u8))?;
                core.write(&w, Op::Write)?;
            }
            core.checkpoint()?;
            let mut old = KVec::new();
            for b in 0..N {
                old.push(read(&core, b * SECTORS, BLOCK_SIZE)?, GFP_KERNEL)?;
            }
            core.write(&Buf::new(SECTORS, BLOCK_SIZE, pattern(11))?, Op::Write)?;
            core.sum_logged()?;
            core.write(&Buf::new(0, BLOCK_SIZE, pattern(10))?, Op::Write)?;
            core.write(&Buf::new(2 * SECTORS + 3, 512, pattern(12))?, Op::Write)?;
            core.write(&Buf::new(3 * SECTORS, BLOCK_SIZE, |_| 0)?, Op::Discard)?;
            core.write(&Buf::new(4 * SECTORS + 5, 512, pattern(14))?, Op::Write)?;
            core.write(&Buf::new(5 * SECTORS, BLOCK_SIZE, pattern(15))?, Op::Write)?;
            let mut new = KVec::new();
            for b in 0..N {
                new.push(read(&core, b * SECTORS, BLOCK_SIZE)?, GFP_KERNEL)?;
            }
            let target = core.state.lock().head;
            array.crash_after(points);
            let cut = core.checkpoint();
            array.crash_after(-1);
            drop(core);
            let core = reopen(&media, &array)?;
            if cut.is_ok() {
                // Past its last write: the CP ended, nothing is pending.
                assert_eq!(core.interrupted_cp(), None);
                break;
            }
            assert_eq!(core.interrupted_cp(), Some(target));
            let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
            for b in 0..N {
                let r = core.read_array_block_as(b, &mut buf, true);
                let o = old.get(b as usize).ok_or(EINVAL)?;
                let n = new.get(b as usize).ok_or(EINVAL)?;
                assert_eq!((points, b, r), (points, b, Ok(())));
                assert!(buf.as_slice() == o.as_slice() || buf.as_slice() == n.as_slice());
            }
            assert_eq!(core.stats.checksum_errors.load(Relaxed), 0);
            proved += core.replay_pending_verified();
            // A byte changed in block 6 (untouched) and in block 1 (which
            // the CP rewrites): errors, counted, never taken.
            for b in [6u64, 1] {
                let at = core.layout.data_block_location(b) * SECTORS;
                let mut blk = array.peek(at, BLOCK_SIZE)?;
                if let Some(x) = blk.get_mut(7) {
                    *x ^= 0x40;
                }
                array.poke(at, &blk)?;
                let r = core.read_array_block_as(b, &mut buf, true);
                assert_eq!((points, b, r), (points, b, Err(EIO)));
            }
            assert_eq!(core.stats.checksum_errors.load(Relaxed), 2);
            points += 1;
        }
        pr_info!(
            "# a_cp_cut_short_anywhere_leaves_every_block_provable: {} crash points, {} blocks proved by a pending table copy\n",
            points,
            proved
        );
        assert!(points >= 5 && proved > 0);
        Ok(())
    }

    #[test]
    fn writes_read_back_from_cache_array_and_after_reopen() -> Result {
        let (core, media, array) = fresh()?;
        // One whole block, one partial sector range across a block
        // boundary, one unaligned multi-block write.
        let writes = [
            (8u64, BLOCK_SIZE, 1u8),
            (13, 3 * 512, 2),
            (40, 5 * BLOCK_SIZE + 1024, 3),
        ];
        for &(sector, len, w) in &writes {
            core.write(&Buf::new(sector, len, pattern(w))?, Op::Write)?;
        }
        let check = |core: &TestCore| -> Result {
            for &(sector, len, w) in &writes {
                let got = read(core, sector, len)?;
                if sector == 8 {
                    // Sectors 13-15 of block 1 were overwritten by write 2.
                    let (a, _) = got.split_at(5 * 512);
                    assert!(same(a, pattern(w)));
                } else {
                    assert!(same(&got, pattern(w)));
                }
            }
            // Never written: zeroes.
            assert!(read(core, 200 * SECTORS, BLOCK_SIZE)?
                .iter()
                .all(|&b| b == 0));
            Ok(())
        };
        check(&core)?;
        assert_eq!(core.stats.writes.load(Relaxed), 3);
        core.checkpoint()?;
        assert_eq!(core.state.lock().cache.blocks(), 0);
        check(&core)?;
        let cp_gen = core.cp_generation();
        drop(core);
        let core = reopen(&media, &array)?;
        assert_eq!(core.cp_generation(), cp_gen);
        check(&core)
    }

    #[test]
    fn a_damaged_block_is_an_error_not_data() -> Result {
        let (core, _media, array) = fresh()?;
        core.write(&Buf::new(16, BLOCK_SIZE, pattern(9))?, Op::Write)?;
        core.checkpoint()?;
        let at = core.layout.data_block_location(2) * SECTORS;
        let mut block = array.peek(at, BLOCK_SIZE)?;
        assert!(same(&block, pattern(9)));
        if let Some(b) = block.get_mut(100) {
            *b ^= 1;
        }
        array.poke(at, &block)?;
        assert_eq!(read(&core, 16, BLOCK_SIZE).err(), Some(EIO));
        assert_eq!(core.stats.checksum_errors.load(Relaxed), 1);
        // A write of the whole block heals it.
        core.write(&Buf::new(16, BLOCK_SIZE, pattern(10))?, Op::Write)?;
        assert!(same(&read(&core, 16, BLOCK_SIZE)?, pattern(10)));
        Ok(())
    }

    #[test]
    fn discard_and_write_zeroes_read_as_zeroes() -> Result {
        let (core, _media, _array) = fresh()?;
        core.write(&Buf::new(0, 4 * BLOCK_SIZE, pattern(4))?, Op::Write)?;
        core.checkpoint()?;
        core.write(&Buf::new(8, BLOCK_SIZE, |_| 0)?, Op::Discard)?;
        core.write(&Buf::new(17, 512, |_| 0)?, Op::WriteZeroes)?;
        let check = |core: &TestCore| -> Result {
            let got = read(core, 0, 4 * BLOCK_SIZE)?;
            for (i, &b) in got.iter().enumerate() {
                let zero = (8 * 512..16 * 512).contains(&i) || (17 * 512..18 * 512).contains(&i);
                assert_eq!(b, if zero { 0 } else { pattern(4)(i) });
            }
            Ok(())
        };
        check(&core)?;
        assert_eq!(core.stats.discards.load(Relaxed), 2);
        core.checkpoint()?;
        check(&core)
    }

    #[test]
    fn bad_requests_are_refused_and_change_nothing() -> Result {
        let (core, _media, _array) = fresh()?;
        let end = core.sectors();
        // Past the end, across the end, not whole sectors.
        assert_eq!(
            core.write(&Buf::new(end, 512, |_| 1)?, Op::Write).err(),
            Some(EIO)
        );
        assert_eq!(
            core.write(&Buf::new(end - 1, 1024, |_| 1)?, Op::Write)
                .err(),
            Some(EIO)
        );
        assert_eq!(
            core.write(&Buf::new(0, 100, |_| 1)?, Op::Write).err(),
            Some(EINVAL)
        );
        assert_eq!(read(&core, end, 512).err(), Some(EIO));
        assert_eq!(core.stats.writes.load(Relaxed), 0);
        let st = core.state.lock();
        assert_eq!(st.head, st.tail);
        assert_eq!(st.cache.blocks(), 0);
        drop(st);
        // An empty write is a flush: counted, nothing logged.
        core.write(&Buf::new(0, 0, |_| 0)?, Op::Write)?;
        assert_eq!(core.stats.flushes.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn a_block_log_keeps_records_and_stops_at_a_failed_one() -> Result {
        // A block log of 512-byte units (4 MiB of records: its window
        // twice over).
        let media = RamMedia::shared_block(4096 + (4 << 20) + 4096, 512)?;
        let array = RamArray::new(ARRAY_SECTORS)?;
        format_on(media.clone(), &array, false)?;
        let core = reopen(&media, &array)?;
        assert!(core.log_on_block());
        // Whole blocks (written in flight), part of a block and a discard
        // (alone).
        core.write(&Buf::new(8, BLOCK_SIZE, pattern(1))?, Op::Write)?;
        core.write(&Buf::new(16, 2 * BLOCK_SIZE, pattern(2))?, Op::Write)?;
        core.write(&Buf::new(33, 3 * 512, pattern(3))?, Op::Write)?;
        core.write(&Buf::new(64, BLOCK_SIZE, |_| 0)?, Op::Discard)?;
        assert!(same(&read(&core, 8, BLOCK_SIZE)?, pattern(1)));
        assert!(same(&read(&core, 16, 2 * BLOCK_SIZE)?, pattern(2)));
        assert!(same(&read(&core, 33, 3 * 512)?, pattern(3)));
        // Four records, each a header unit and its data in units; the scan
        // checks each one's data against its sum.
        let (_, cp) = core.log.cp_marker()?;
        let end = core.log.scan(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!(end.records, 4);
        let unit = 512u64;
        let want = 4 * unit + (BLOCK_SIZE as u64 + 2 * BLOCK_SIZE as u64 + 3 * 512);
        assert_eq!(end.offset, cp.offset + want);
        assert_eq!(core.state.lock().head.offset, end.offset);
        // A record that cannot be written: that write fails, and so does
        // every write after it (none may be acknowledged past a hole).
        media.fail_writes(true);
        let r = core.write(&Buf::new(80, BLOCK_SIZE, pattern(4))?, Op::Write);
        assert!(matches!(r, Err(e) if e == EIO));
        media.fail_writes(false);
        for (sector, len) in [(88, BLOCK_SIZE), (97, 512)] {
            let r = core.write(&Buf::new(sector, len, pattern(5))?, Op::Write);
            assert!(matches!(r, Err(e) if e == EIO));
        }
        // What was acknowledged still reads back, and is in the log.
        assert!(same(&read(&core, 16, 2 * BLOCK_SIZE)?, pattern(2)));
        let end = core.log.scan(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!(end.records, 4);
        Ok(())
    }

    #[test]
    fn a_cp_is_paced_only_while_the_log_has_room() -> Result {
        let (core, _media, _array) = fresh()?;
        assert!(core.has_room());
        // A CP asked for: never paced.
        core.state.lock().kick = true;
        assert!(!core.has_room());
        core.state.lock().kick = false;
        // Written past half the log: past the pacing limit, though the
        // writers ask for a CP only past three quarters (`room.rs`).
        let cap = core.log.geometry().capacity();
        let mut n = 0u64;
        loop {
            let used = {
                let st = core.state.lock();
                core.log.used(&st.head, &st.tail)
            };
            if used > cap / 2 {
                assert!(!core.has_room());
                assert_eq!(core.state.lock().kick, used > cap / 4 * 3);
            } else {
                assert!(core.has_room());
            }
            if used > cap / 4 * 3 {
                break;
            }
            core.write(
                &Buf::new((n % 64) * SECTORS, BLOCK_SIZE, pattern(n as u8))?,
                Op::Write,
            )?;
            n += 1;
            assert!(n < 10_000);
        }
        assert!(core.state.lock().kick);
        core.state.lock().kick = false;
        assert!(!core.has_room());
        // A CP frees the log: room again.
        core.checkpoint()?;
        assert!(core.has_room());
        Ok(())
    }

    /// A volume whose log is past three quarters used: blocks 30 to 40
    /// written whole once (and, with `early_part`, block 41 in part), then
    /// blocks 0 to 23 written whole round and round, and at the end one of
    /// them in part, block 42 in part and block 43 discarded. Returns the
    /// volume's contents of blocks 0 to 43 as the write path left them.
    fn past_three_quarters(core: &TestCore, early_part: bool) -> Result<KVec<KVec<u8>>> {
        put_patterned(core, 30..41)?;
        if early_part {
            core.write(&Buf::new(41 * SECTORS + 1, 1024, pattern(41))?, Op::Write)?;
        }
        let cap = core.log.geometry().capacity();
        let mut n = 0u64;
        while !core.state.lock().kick {
            let w = Buf::new((n * 7) % 24 * SECTORS, BLOCK_SIZE, pattern(n as u8))?;
            core.write(&w, Op::Write)?;
            n += 1;
            assert!(n < 10_000);
        }
        core.write(&Buf::new(5 * SECTORS + 3, 512, pattern(97))?, Op::Write)?;
        core.write(&Buf::new(42 * SECTORS + 6, 512, pattern(98))?, Op::Write)?;
        core.write(&Buf::new(43 * SECTORS, BLOCK_SIZE, |_| 0)?, Op::Discard)?;
        let used = {
            let st = core.state.lock();
            core.log.used(&st.head, &st.tail)
        };
        assert!(used > cap / 4 * 3 && used < cap);
        let mut contents = KVec::new();
        for b in 0..44u64 {
            contents.push(read(core, b * SECTORS, BLOCK_SIZE)?, GFP_KERNEL)?;
        }
        Ok(contents)
    }

    /// What replay makes of blocks 0 to 43: the array's contents (a volume
    /// opened afresh, nothing cached), then every record from the log's CP
    /// marker on applied in order.
    fn replayed(media: &Arc<RamMedia>, array: &RamArray) -> Result<KVec<KVec<u8>>> {
        let core = reopen(media, array)?;
        let mut image = KVec::new();
        for b in 0..44u64 {
            image.push(read(&core, b * SECTORS, BLOCK_SIZE)?, GFP_KERNEL)?;
        }
        drop(core);
        let log = super::super::log::Log::open(media.clone()).map_err(|_| EINVAL)?;
        let (_, m) = log.cp_marker()?;
        let room = log.geometry().header_room();
        log.scan(&m, |f| -> Result {
            let h = &f.header;
            if h.op == Op::Wrap {
                return Ok(());
            }
            let mut data = bytes::zeroed(h.nr_sectors as usize * 512, GFP_KERNEL)?;
            if h.op == Op::Write {
                media.read(f.offset + room, &mut data)?;
            }
            for (i, chunk) in data.chunks(512).enumerate() {
                let s = h.sector + i as u64;
                if let Some(blk) = image.get_mut((s / SECTORS) as usize) {
                    let at = (s % SECTORS) as usize * 512;
                    blk.get_mut(at..at + 512)
                        .ok_or(EINVAL)?
                        .copy_from_slice(chunk);
                }
            }
            Ok(())
        })?;
        Ok(image)
    }

    #[test]
    fn a_cp_for_room_frees_the_oldest_records_only() -> Result {
        // A CP of the CP loop with the log past half used frees the log up
        // to a mark, and writes back only the blocks whose changes before
        // the mark were not replaced whole since; the array and the records
        // left in the log still give every block's newest contents, and
        // the blocks it wrote are blocks those records changed (so that
        // replay's redo of it, after a crash, rewrites all of them).
        let (core, media, array) = fresh()?;
        let want = past_three_quarters(&core, false)?;
        let cap = core.log.geometry().capacity();
        let (tail, head) = {
            let st = core.state.lock();
            (st.tail, st.head)
        };
        let at = |b: u64| core.layout.data_block_location(b) * SECTORS;
        let log = super::super::log::Log::open(media.clone()).map_err(|_| EINVAL)?;
        let (_, from) = log.cp_marker()?;
        let mut before = KVec::new();
        for b in 0..44u64 {
            before.push(array.peek(at(b), BLOCK_SIZE)?, GFP_KERNEL)?;
        }
        core.checkpoint_for_room()?;
        assert_eq!(core.stats.cp_partial.load(Relaxed), 1);
        let mark = core.state.lock().tail;
        assert!(mark.seq > tail.seq && mark.seq < head.seq);
        assert!(core.log.used(&mark, &tail) >= cap / 8);
        assert!(core.state.lock().cache.blocks() > 0);
        // The blocks the records before the mark change.
        let mut changed = [false; 44];
        log.scan(&from, |f| -> Result {
            let h = &f.header;
            if h.seq < mark.seq && h.op != Op::Wrap {
                for s in h.sector..h.sector + u64::from(h.nr_sectors) {
                    if let Some(c) = changed.get_mut((s / SECTORS) as usize) {
                        *c = true;
                    }
                }
            }
            Ok(())
        })?;
        let mut written = 0;
        for b in 0..44u64 {
            let now = array.peek(at(b), BLOCK_SIZE)?;
            if now != *before.get(b as usize).ok_or(EINVAL)? {
                assert_eq!((b, changed.get(b as usize)), (b, Some(&true)));
                written += 1;
            }
        }
        // 30 to 40; none of 0 to 23, each written whole again after the
        // mark, nor 42 and 43, changed after it only.
        assert_eq!(written, 11);
        assert_eq!(core.stats.cp_blocks.load(Relaxed), 11);
        drop(core);
        let got = replayed(&media, &array)?;
        for b in 0..44usize {
            assert_eq!((b, got.get(b) == want.get(b)), (b, true));
        }

        // A block in memory with a change before any mark (41): the CP
        // frees the whole log, as it could not commit that block as
        // replay would redo it.
        let (core, media, array) = fresh()?;
        let want = past_three_quarters(&core, true)?;
        let head = core.state.lock().head;
        core.checkpoint_for_room()?;
        assert_eq!(core.stats.cp_partial.load(Relaxed), 0);
        assert_eq!(core.state.lock().tail, head);
        drop(core);
        let got = replayed(&media, &array)?;
        for b in 0..44usize {
            assert_eq!((b, got.get(b) == want.get(b)), (b, true));
        }
        Ok(())
    }

    #[test]
    fn a_cp_for_room_cut_short_leaves_every_block_provable() -> Result {
        // As a_cp_cut_short_anywhere_leaves_every_block_provable, for a CP
        // that frees the log up to a mark: each block reads as its old or
        // its new contents, proved, and the interrupted CP's target is the
        // mark.
        let mut points = 0i64;
        loop {
            let (core, media, array) = fresh()?;
            let want = past_three_quarters(&core, false)?;
            let mut old = KVec::new();
            for b in 0..44u64 {
                let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
                core.read_array_block(b, &mut buf)?;
                old.push(buf, GFP_KERNEL)?;
            }
            array.crash_after(points);
            let cut = core.checkpoint_for_room();
            array.crash_after(-1);
            let mark = core.state.lock().cp_target;
            drop(core);
            let core = reopen(&media, &array)?;
            if cut.is_ok() {
                assert_eq!(core.interrupted_cp(), None);
                break;
            }
            assert!(mark.is_some());
            assert_eq!(core.interrupted_cp(), mark);
            let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
            for b in 0..44u64 {
                let r = core.read_array_block_as(b, &mut buf, true);
                assert_eq!((points, b, r), (points, b, Ok(())));
                let o = old.get(b as usize).ok_or(EINVAL)?;
                let n = want.get(b as usize).ok_or(EINVAL)?;
                assert!(buf.as_slice() == o.as_slice() || buf.as_slice() == n.as_slice());
            }
            assert_eq!(core.stats.checksum_errors.load(Relaxed), 0);
            points += 1;
        }
        assert!(points >= 5);
        Ok(())
    }

    #[test]
    fn a_cp_frees_the_log_and_moves_its_marker() -> Result {
        let (core, media, array) = fresh()?;
        put_patterned(&core, 0..20)?;
        let used = {
            let st = core.state.lock();
            core.log.used(&st.head, &st.tail)
        };
        assert!(used >= 20 * BLOCK_SIZE as u64);
        let head = core.state.lock().head;
        core.checkpoint()?;
        let st = core.state.lock();
        assert_eq!(st.tail, head);
        assert_eq!(core.log.used(&st.head, &st.tail), 0);
        drop(st);
        // The log's marker says so too: a reopened volume starts there.
        drop(core);
        let (_, cp) = open_on(
            c"test",
            (media.clone(), array.clone()),
            ("ram-log", "ram-array"),
            LIMITS,
        )?;
        assert_eq!((cp.offset, cp.seq), (head.offset, head.seq));
        Ok(())
    }

    #[test]
    fn whole_blocks_are_cached_in_the_log_not_in_memory() -> Result {
        let (core, media, array) = fresh()?;
        // More whole blocks than the cache may hold in memory (64): none
        // waits, none is in memory.
        let n = 150u64;
        for b in 0..n {
            core.write(
                &Buf::new(b * SECTORS, BLOCK_SIZE, pattern(b as u8))?,
                Op::Write,
            )?;
        }
        {
            let st = core.state.lock();
            assert_eq!((st.cache.blocks(), st.cache.ram_blocks()), (n as usize, 0));
        }
        assert_eq!(core.stats.log_full_waits.load(Relaxed), 0);
        // The CP loop's checksums ahead of the CP (it is not running here):
        // a round of 64 of the blocks queued, the newest first; the CP
        // makes their entries from them, and checksums the others.
        assert_eq!(core.sum_logged()?, 64);
        // A sector of each of three of them written again: those come into
        // memory, read from the log under the new sector.
        for b in [3u64, 70, 149] {
            core.write(&Buf::new(b * SECTORS + 2, 512, pattern(200))?, Op::Write)?;
        }
        assert_eq!(core.state.lock().cache.ram_blocks(), 3);
        let check = |core: &TestCore| -> Result {
            for b in 0..n {
                let got = read(core, b * SECTORS, BLOCK_SIZE)?;
                for (i, &x) in got.iter().enumerate() {
                    let again = [3u64, 70, 149].contains(&b) && i / 512 == 2;
                    let want = if again {
                        pattern(200)(i % 512)
                    } else {
                        pattern(b as u8)(i)
                    };
                    assert_eq!((b, i, x), (b, i, want));
                }
            }
            Ok(())
        };
        check(&core)?;
        // The CP copies the logged blocks out of the log and checksums them
        // for the tables: they read back verified from the array.
        core.checkpoint()?;
        assert_eq!(core.state.lock().cache.blocks(), 0);
        check(&core)?;
        assert_eq!(core.stats.checksum_errors.load(Relaxed), 0);
        drop(core);
        let core = reopen(&media, &array)?;
        check(&core)
    }
}
